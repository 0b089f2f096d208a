"""The service: health, readiness, errors as problem+json, size limit, logs without bodies, landing page."""

from __future__ import annotations

import logging

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from smartcare.core.errors import SmartcareError
from smartcare.core.settings import Settings
from smartcare.service.app import create_app


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    var = tmp_path_factory.mktemp("var")
    app = create_app(Settings(var=var, max_request_bytes=1000))
    probe = APIRouter()

    @probe.post("/_probe/echo")
    def echo(payload: dict) -> dict:
        if payload.get("bad"):
            raise SmartcareError("field 'bad' must not be set")
        return {"n": len(payload)}

    app.include_router(probe)
    return TestClient(app, raise_server_exceptions=False)


def test_health_and_ready(client):
    assert client.get("/health").json()["status"] == "ok"
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["database"] == "sqlite"


def test_openapi_docs(client):
    assert client.get("/docs").status_code == 200
    assert "/health" in client.get("/openapi.json").json()["paths"]


def test_bad_input_is_problem_json(client):
    r = client.post("/_probe/echo", json={"bad": True})
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "field 'bad' must not be set"


def test_validation_error_is_problem_json(client):
    r = client.post("/_probe/echo", content=b"[1]", headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["title"] == "Request validation failed"


def test_not_found_is_problem_json(client):
    r = client.get("/no/such/path")
    assert r.status_code == 404
    assert r.json()["status"] == 404


def test_request_size_limit(client):
    r = client.post("/_probe/echo", json={"x": "a" * 5000})
    assert r.status_code == 413
    assert "exceeds the limit of 1000 bytes" in r.json()["detail"]


def test_logs_never_contain_bodies_or_queries(client, caplog):
    secret = "PatientNameSmith"
    logger = logging.getLogger("smartcare.access")
    logger.addHandler(caplog.handler)
    try:
        client.post(f"/_probe/echo?name={secret}", json={"name": secret})
    finally:
        logger.removeHandler(caplog.handler)
    lines = [r for r in caplog.records if r.name == "smartcare.access"]
    assert lines, "no access log line written"
    for rec in lines:
        assert secret not in rec.getMessage() and secret not in str(rec.fields)
    assert lines[-1].fields["path"] == "/_probe/echo" and lines[-1].fields["status"] == 200


def test_landing_lists_domains_and_links(client):
    html = client.get("/").text
    for name in ("imaging", "genomics", "hospital", "publichealth", "/docs"):
        assert name in html


def test_unreachable_database_is_503_with_a_reason_not_500(tmp_path):
    dead = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere?connect_timeout=2"
    client = TestClient(create_app(Settings(var=tmp_path, database_url=dead)))
    r = client.get("/ready")
    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
    assert "database is unreachable" in r.json()["detail"]
    r = client.get("/fhir/Patient")
    assert r.status_code == 503 and r.json()["resourceType"] == "OperationOutcome"
    assert r.json()["issue"][0]["code"] == "transient" and "127.0.0.1" not in r.text


def test_malformed_json_body_is_400_naming_the_problem(client):
    r = client.post("/_probe/echo", content=b'{"a": 1,,}', headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
    assert "not valid JSON" in r.json()["detail"]
    assert client.post("/_probe/echo", json=["not", "an", "object"]).status_code == 422  # valid JSON, wrong shape
