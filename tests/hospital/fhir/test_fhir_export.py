"""Bulk $export (system, Patient and Group level) with the async 202 + Content-Location pattern."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.fhir.api import router
from smartcare.hospital.fhir.deps import get_engine
from smartcare.hospital.fhir.export import ExportSettings, get_export_dir, get_export_settings

ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}


@pytest.fixture(scope="module")
def bulk(engine, tmp_path_factory) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    out = tmp_path_factory.mktemp("export")
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_export_dir] = lambda: out
    with TestClient(app) as c:
        for pid in ("e1", "e2"):
            c.put(f"/fhir/Patient/{pid}", json={"resourceType": "Patient", "id": pid})
            c.put(
                f"/fhir/Observation/o{pid}",
                json={
                    "resourceType": "Observation",
                    "id": f"o{pid}",
                    "status": "final",
                    "code": {"text": "x"},
                    "subject": {"reference": f"Patient/{pid}"},
                },
            )
        c.put("/fhir/Organization/eorg", json={"resourceType": "Organization", "id": "eorg"})
        c.put(
            "/fhir/Group/g1",
            json={
                "resourceType": "Group",
                "id": "g1",
                "type": "person",
                "actual": True,
                "member": [{"entity": {"reference": "Patient/e1"}}],
            },
        )
        yield c


def _kickoff(client, url: str) -> str:
    r = client.get(url, headers=ASYNC)
    assert r.status_code == 202, r.text
    return r.headers["content-location"].replace("http://testserver", "")


def _export(client, url: str) -> dict[str, list[dict]]:
    poll = client.get(_kickoff(client, url))
    assert poll.status_code == 200  # the background task has finished once TestClient returns
    manifest = poll.json()
    assert manifest["requiresAccessToken"] is False and manifest["transactionTime"].endswith("Z")
    out = {}
    for item in manifest["output"]:
        body = client.get(item["url"].replace("http://testserver", "")).text
        rows = [json.loads(line) for line in body.splitlines()]
        assert len(rows) == item["count"]
        out[item["type"]] = rows
    return out


def test_system_patient_group_export(bulk):
    system = _export(bulk, "/fhir/$export")
    assert {"Patient", "Observation", "Organization", "Group"} <= set(system)
    patient = _export(bulk, "/fhir/Patient/$export")
    assert {r["id"] for r in patient["Patient"]} >= {"e1", "e2"} and "Organization" not in patient
    group = _export(bulk, "/fhir/Group/g1/$export?_type=Observation")
    assert set(group) == {"Observation"} and [r["id"] for r in group["Observation"]] == ["oe1"]


def test_export_errors(bulk):
    assert bulk.get("/fhir/$export").status_code == 400  # no Prefer: respond-async
    assert bulk.get("/fhir/Group/nope/$export", headers=ASYNC).status_code == 404
    assert bulk.get("/fhir/$export?_outputFormat=text/csv", headers=ASYNC).status_code == 400
    assert bulk.get("/fhir/$export-poll-status/not-a-job").status_code == 404


def test_manifest_states_expiry_and_delete_cancels(bulk, tmp_path_factory):
    status_url = _kickoff(bulk, "/fhir/$export?_type=Patient")
    poll = bulk.get(status_url)
    expires = datetime.fromisoformat(poll.json()["extension"]["expires"].replace("Z", "+00:00"))
    left = (expires - datetime.now(UTC)).total_seconds()
    assert 3500 < left <= 3600  # the default TTL is one hour
    assert abs((parsedate_to_datetime(poll.headers["expires"]) - expires).total_seconds()) < 1
    file_url = poll.json()["output"][0]["url"].replace("http://testserver", "")
    assert "expires" in bulk.get(file_url).headers
    assert bulk.delete(status_url).status_code == 202
    assert bulk.get(status_url).status_code == 404 and bulk.get(file_url).status_code == 404


@pytest.fixture(scope="module")
def short_lived(engine, tmp_path_factory):
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    out = tmp_path_factory.mktemp("export-ttl")
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_export_dir] = lambda: out
    app.dependency_overrides[get_export_settings] = lambda: ExportSettings(ttl_seconds=2)
    with TestClient(app) as c:
        yield c, out


def test_expired_export_is_404_and_deleted(short_lived):
    client, out = short_lived
    status_url = _kickoff(client, "/fhir/$export?_type=Patient")
    poll = client.get(status_url)
    assert poll.status_code == 200
    file_url = poll.json()["output"][0]["url"].replace("http://testserver", "")
    expires = datetime.fromisoformat(poll.json()["extension"]["expires"].replace("Z", "+00:00"))
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    r = client.get(status_url)
    assert r.status_code == 404 and "expired" in r.json()["issue"][0]["diagnostics"]
    assert client.get(file_url).status_code == 404
    assert list(out.iterdir()) == []  # the files are gone
