"""NLP-to-FHIR candidates: provenance, filtering of negated / family mentions, and the review queue."""

from __future__ import annotations

import base64

from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.nlp import api as nlp_api
from smartcare.hospital.nlp.candidates import ReviewQueue, candidates_from_note
from smartcare.service.errors import install_error_handlers

NOTE = "HPI: chest pain, no fever. Takes aspirin daily.\nFAMILY HISTORY: mother had stroke."


def test_candidates_only_for_affirmed_patient_mentions():
    cands = candidates_from_note(NOTE, "p1", "DocumentReference/n1")
    kinds = {
        (
            c["resource"]["resourceType"],
            c["resource"].get("code", c["resource"].get("medicationCodeableConcept"))["text"],
        )
        for c in cands
    }
    assert kinds == {("Condition", "chest pain"), ("MedicationStatement", "aspirin")}  # no fever, no stroke
    cond = next(c for c in cands if c["resource"]["resourceType"] == "Condition")
    ext = {e["url"]: e for e in cond["resource"]["extension"][0]["extension"]}
    start, end = ext["start"]["valueInteger"], ext["end"]["valueInteger"]
    assert NOTE[start:end] == "chest pain" and ext["note"]["valueReference"]["reference"] == "DocumentReference/n1"
    assert cond["resource"]["verificationStatus"]["coding"][0]["code"] == "unconfirmed"
    assert cond["provenance"]["entity"][0]["what"]["reference"] == "DocumentReference/n1"
    from fhir.resources.R4B.condition import Condition
    from fhir.resources.R4B.medicationstatement import MedicationStatement
    from fhir.resources.R4B.provenance import Provenance

    for c in cands:  # valid FHIR R4 resources
        {"Condition": Condition, "MedicationStatement": MedicationStatement}[
            c["resource"]["resourceType"]
        ].model_validate(c["resource"])
        Provenance.model_validate(c["provenance"])


def test_review_queue_endpoints():
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(nlp_api.router, prefix="/api/hospital")
    queue = ReviewQueue()
    app.dependency_overrides[nlp_api.get_queue] = lambda: queue
    c = TestClient(app)
    doc = {
        "resourceType": "DocumentReference",
        "id": "n7",
        "status": "current",
        "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(NOTE.encode()).decode()}}],
    }
    queued = c.post("/api/hospital/nlp/candidates", json={"patient": "p1", "document": doc}).json()["queued"]
    assert len(queued) == 2 and all(q["status"] == "pending" for q in queued)
    assert len(c.get("/api/hospital/nlp/candidates").json()["candidates"]) == 2
    accepted = c.post(f"/api/hospital/nlp/candidates/{queued[0]['id']}", json={"decision": "accept"}).json()
    assert accepted["status"] == "accepted" and accepted["resource"]["subject"] == {"reference": "Patient/p1"}
    again = c.post(f"/api/hospital/nlp/candidates/{queued[0]['id']}", json={"decision": "reject"})
    assert again.status_code == 422 and "already accepted" in again.json()["detail"]
    assert c.post("/api/hospital/nlp/candidates/nope", json={"decision": "accept"}).status_code == 404
    assert c.post("/api/hospital/nlp/candidates", json={"patient": "p1", "text": "x"}).status_code == 422


def test_review_queue_rejects_an_unknown_status():
    import pytest

    from smartcare.core.errors import SmartcareError

    queue = ReviewQueue()
    queue.add(candidates_from_note("Asthma, uses albuterol inhaler.", "Patient/p1", "DocumentReference/n1"))
    assert len(queue.list("pending")) == 2 and len(queue.list("all")) == 2 and queue.list("accepted") == []
    with pytest.raises(SmartcareError, match="unknown candidate status 'bogus'"):
        queue.list("bogus")
