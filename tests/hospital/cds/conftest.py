"""The CDS Hooks app with a fake FHIR server behind ``fhirServer``, shared by the hooks tests."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.cds import hooks, hooks_api
from smartcare.service.errors import install_error_handlers

Handler = Callable[[httpx.Request], httpx.Response]


def hooks_app(handler: Handler) -> FastAPI:
    """The hooks router whose outgoing FHIR requests are answered by ``handler`` (an httpx MockTransport)."""
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(hooks_api.router, prefix="/cds-services")
    cache = hooks.CoordinationCache()
    app.dependency_overrides[hooks_api.get_cache] = lambda: cache

    def mock_client():
        with httpx.Client(transport=httpx.MockTransport(handler)) as c:
            yield c

    app.dependency_overrides[hooks_api.get_http_client] = mock_client
    return app


@pytest.fixture()
def hooks_client() -> Callable[[Handler], TestClient]:
    """``hooks_client(handler)``: a TestClient of :func:`hooks_app`."""
    return lambda handler: TestClient(hooks_app(handler))
