"""FHIR test fixtures: one fresh database per test module, on SQLite and on PostgreSQL.

The PostgreSQL variant runs in its own schema (dropped afterwards) and is marked ``postgres``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from smartcare.hospital.fhir.api import router
from smartcare.hospital.fhir.db import init_db, make_engine
from smartcare.hospital.fhir.deps import get_engine


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory, pg_url) -> Iterator[Engine]:
    """A migrated, empty FHIR database for this module."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("fhir") / "fhir.db"
        eng = init_db(make_engine(f"sqlite:///{path}"))
        yield eng
        eng.dispose()
        return
    schema = f"fhir_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng = init_db(make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"}))
    yield eng
    eng.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture(scope="module")
def client(engine) -> Iterator[TestClient]:
    """A TestClient on an app that mounts the FHIR router at /fhir over ``engine``."""
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    app.dependency_overrides[get_engine] = lambda: engine
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="session")
def examples_dir(shared_data) -> Path:
    return shared_data / "hospital" / "fhir-r4-examples" / "examples"


@pytest.fixture(scope="session")
def synthea_dir(shared_data) -> Path:
    return shared_data / "hospital" / "synthea-r4-smart-sample"
