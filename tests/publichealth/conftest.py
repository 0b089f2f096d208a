"""Fixtures shared by the public-health tests."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.publichealth.api import router
from smartcare.service.errors import install_error_handlers


@pytest.fixture(scope="module")
def client() -> TestClient:
    """The public-health router alone, with the service's problem+json error handlers."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router, prefix="/api/publichealth")
    return TestClient(app, raise_server_exceptions=False)
