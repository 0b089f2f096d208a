"""HTTP routes under /api/hospital and the `smartcare hospital score / ddi-check` commands."""

from __future__ import annotations

import json

from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcare.hospital.api import router
from smartcare.service.errors import install_error_handlers

MEDS = [
    {
        "resourceType": "MedicationRequest",
        "id": "a",
        "status": "active",
        "medicationCodeableConcept": {"text": "amiodarone 200 MG Oral Tablet"},
    },
    {
        "resourceType": "MedicationRequest",
        "id": "b",
        "status": "active",
        "medicationCodeableConcept": {"text": "escitalopram 10 MG Oral Tablet"},
    },
]


def _client():
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router, prefix="/api/hospital")
    return TestClient(app)


def test_score_and_ddi_routes(shared_data):
    c = _client()
    assert "NEWS2" in c.get("/api/hospital/scores").json()["calculators"]
    r = c.post("/api/hospital/scores/CURB-65", json={"inputs": {"age": 70, "rr": 32, "sbp": 85, "confusion": True}})
    body = r.json()
    assert r.status_code == 200 and body["total"] == 4 and body["band"] == "severe"
    assert "bun_mg_dl" in body["missing"] and body["citation"].startswith("Lim WS")
    bad = c.post("/api/hospital/scores/NEWS2", json={"inputs": {"acvpu": "sleepy"}})
    assert bad.status_code == 422 and "sleepy" in bad.json()["detail"]
    assert c.post("/api/hospital/scores/nope", json={}).status_code == 404
    typed = c.post("/api/hospital/scores/NEWS2", json={"inputs": {"rr": "abc"}})
    assert typed.status_code == 422 and "wrong type" in typed.json()["detail"] and "rr=abc" in typed.json()["detail"]
    unwrapped = c.post("/api/hospital/scores/NEWS2", json={"rr": 24})
    assert unwrapped.status_code == 422
    ddi = c.post("/api/hospital/ddi-check", json={"resources": MEDS, "patient": "p9"}).json()["interactions"]
    assert ddi[0]["severity"] == "high" and ddi[0]["detectedIssue"]["patient"]["reference"] == "Patient/p9"


def test_nlp_route():
    r = _client().post("/api/hospital/nlp/extract", json={"text": "Denies chest pain.", "target": "chest pain"})
    assert r.status_code == 200 and r.json()["target"]["negated"] == 1
    assert r.json()["entities"][0]["label"] == "PROBLEM"


def test_cli_score_and_ddi_check(tmp_path, shared_data):
    from smartcare.cli import app

    bundle = tmp_path / "meds.json"
    bundle.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": m} for m in MEDS]})
    )
    out = tmp_path / "issues.json"
    res = CliRunner().invoke(app, ["hospital", "ddi-check", str(bundle), "--out", str(out), "--patient", "p1"])
    assert res.exit_code == 0 and "amiodarone + escitalopram" in res.output
    issues = json.loads(out.read_text())
    assert issues["entry"][0]["resource"]["resourceType"] == "DetectedIssue"
    res = CliRunner().invoke(
        app, ["hospital", "score", "qSOFA", "-i", "rr=24", "-i", "sbp=95", "-i", "gcs=15", "--json"]
    )
    assert res.exit_code == 0 and json.loads(res.output)["total"] == 2
    res = CliRunner().invoke(app, ["hospital", "score", "qSOFA", "-i", "rr"])
    assert res.exit_code == 2 and "NAME=VALUE" in res.output and "Traceback" not in res.output


def test_cli_score_with_a_non_numeric_value_is_a_clear_error():
    from smartcare.cli import app

    res = CliRunner().invoke(app, ["hospital", "score", "NEWS2", "-i", "rr=abc"])
    assert res.exit_code == 2, res.output
    assert "NEWS2: an input has a value of the wrong type" in res.output and "rr=abc" in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)


def test_cli_ddi_check_without_medications_and_into_a_new_folder(tmp_path):
    from smartcare.cli import app

    patient = tmp_path / "patient.json"
    patient.write_text(json.dumps({"resourceType": "Patient", "id": "p"}))
    res = CliRunner().invoke(app, ["hospital", "ddi-check", str(patient)])
    assert res.exit_code == 2 and "no medication resources" in res.output
    meds = tmp_path / "meds.json"
    meds.write_text(json.dumps(MEDS))
    out = tmp_path / "new" / "issues.json"
    res = CliRunner().invoke(app, ["hospital", "ddi-check", str(meds), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert json.loads(out.read_text())["resourceType"] == "Bundle" and not out.with_name("issues.json.part").exists()


def test_unknown_input_names_and_values_are_refused_over_http():
    c = _client()
    r = c.post("/api/hospital/scores/NEWS2", json={"inputs": {"respiratory_rate": 30}})
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "respiratory_rate" in detail and "valid inputs: rr" in detail and "spo2" in detail
    r = c.post("/api/hospital/scores/CHA2DS2-VASc", json={"inputs": {"sex": "F"}})
    assert r.status_code == 422 and "female, male" in r.json()["detail"]
    r = c.post("/api/hospital/scores/Wells-PE", json={"inputs": {"hemoptysis": "maybe"}})
    assert r.status_code == 422 and "hemoptysis" in r.json()["detail"] and "bool" in r.json()["detail"]
    assert c.post("/api/hospital/scores/NEWS2", json={"inputs": {"rr": 30}}).json()["total"] == 3
    listed = c.get("/api/hospital/scores/NEWS2/inputs").json()["inputs"]
    assert listed["rr"] == ["number"] and "voice" in listed["acvpu"]
    assert c.get("/api/hospital/scores/nope/inputs").status_code == 404


def test_cli_refuses_an_unknown_input_name():
    from smartcare.cli import app

    res = CliRunner().invoke(app, ["hospital", "score", "NEWS2", "-i", "respiratory_rate=30"])
    assert res.exit_code == 2, res.output
    assert "unknown input 'respiratory_rate'" in res.output and "valid inputs: rr, news2_scale" in res.output
    res = CliRunner().invoke(app, ["hospital", "score-inputs", "MELD-Na"])
    assert res.exit_code == 0 and "dialysis_twice_past_week: bool" in res.output and "sodium: number" in res.output
