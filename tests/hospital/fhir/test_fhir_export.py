"""Bulk $export (system, Patient and Group level) with the async 202 + Content-Location pattern."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.fhir.api import router
from smartcare.hospital.fhir.deps import get_engine
from smartcare.hospital.fhir.export import get_export_dir

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


def _export(client, url: str) -> dict[str, list[dict]]:
    r = client.get(url, headers=ASYNC)
    assert r.status_code == 202, r.text
    status_url = r.headers["content-location"].replace("http://testserver", "")
    poll = client.get(status_url)
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
