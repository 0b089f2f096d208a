"""NLP-to-FHIR candidates: provenance, filtering of negated / family mentions, and the review queue."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from smartcare.core.errors import SmartcareError
from smartcare.hospital.fhir.db import history, init_db, make_engine, resources
from smartcare.hospital.fhir.deps import get_engine
from smartcare.hospital.nlp import api as nlp_api
from smartcare.hospital.nlp.candidates import CandidateDecidedError, ReviewQueue, candidates_from_note
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


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def new_engine(request, tmp_path, pg_url) -> Iterator:
    """A factory of engines on ONE fresh migrated database (each call: a new engine, as after a restart)."""
    made = []
    if request.param == "sqlite":
        url, kwargs = f"sqlite:///{tmp_path / 'fhir.db'}", {}
    else:
        schema = f"cand_test_{uuid.uuid4().hex[:10]}"
        admin = make_engine(pg_url)
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
        url, kwargs = pg_url, {"connect_args": {"options": f"-csearch_path={schema}"}}

    def factory():
        eng = init_db(make_engine(url, **kwargs))
        made.append(eng)
        return eng

    yield factory
    for eng in made:
        eng.dispose()
    if request.param != "sqlite":
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _app(engine) -> TestClient:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(nlp_api.router, prefix="/api/hospital")
    app.dependency_overrides[get_engine] = lambda: engine
    return TestClient(app)


def _counts(engine) -> dict[str, int]:
    with engine.connect() as conn:
        rows = conn.execute(select(resources.c.res_type, func.count()).group_by(resources.c.res_type))
        return {t: int(n) for t, n in rows}


DOC = {
    "resourceType": "DocumentReference",
    "id": "n7",
    "status": "current",
    "content": [{"attachment": {"contentType": "text/plain", "data": base64.b64encode(NOTE.encode()).decode()}}],
}


def test_review_queue_endpoints_persist_and_write_through_the_store(new_engine):
    c = _app(new_engine())
    queued = c.post("/api/hospital/nlp/candidates", json={"patient": "p1", "document": DOC}).json()["queued"]
    assert len(queued) == 2 and all(q["status"] == "pending" for q in queued)
    cond = next(q for q in queued if q["resource"]["resourceType"] == "Condition")
    span = cond["offsets"]
    assert cond["note"] == "DocumentReference/n7" and NOTE[span["start"]:span["end"]] == "chest pain"

    c2 = _app(new_engine())  # a new app on a new engine (a restart / another worker) sees the same queue
    assert {q["id"] for q in c2.get("/api/hospital/nlp/candidates").json()["candidates"]} == {q["id"] for q in queued}
    assert _counts(new_engine()) == {}  # queueing writes nothing to the record

    accepted = c2.post(f"/api/hospital/nlp/candidates/{cond['id']}", json={"decision": "accept", "reviewer": "dr x"})
    body = accepted.json()
    assert accepted.status_code == 200 and body["status"] == "accepted" and body["reviewer"] == "dr x"
    assert body["written"]["resource"] == f"Condition/{cond['id']}/_history/1" and body["decided"]
    eng = new_engine()
    assert _counts(eng) == {"Condition": 1, "Provenance": 1}
    with eng.connect() as conn:
        stored = {r.res_type: r.content for r in conn.execute(select(resources))}
        assert conn.execute(select(func.count()).select_from(history)).scalar_one() == 2
    assert stored["Condition"]["subject"] == {"reference": "Patient/p1"}
    assert stored["Provenance"]["target"] == [{"reference": f"Condition/{cond['id']}"}]
    assert stored["Provenance"]["agent"][-1]["who"]["display"] == "dr x"

    med = next(q for q in queued if q["resource"]["resourceType"] == "MedicationStatement")
    rejected = c.post(f"/api/hospital/nlp/candidates/{med['id']}", json={"decision": "reject"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["written"] is None
    assert _counts(eng) == {"Condition": 1, "Provenance": 1}  # rejecting writes nothing

    for cid, was in ((cond["id"], "accepted"), (med["id"], "rejected")):
        for decision in ("accept", "reject"):
            again = c.post(f"/api/hospital/nlp/candidates/{cid}", json={"decision": decision})
            assert again.status_code == 409 and f"already {was}" in again.json()["detail"]
    assert _counts(eng) == {"Condition": 1, "Provenance": 1}
    assert c.get("/api/hospital/nlp/candidates").json()["candidates"] == []
    assert len(c.get("/api/hospital/nlp/candidates?status=all&patient=p1").json()["candidates"]) == 2
    assert c.get(f"/api/hospital/nlp/candidates/{med['id']}").json()["status"] == "rejected"
    assert c.post("/api/hospital/nlp/candidates/nope", json={"decision": "accept"}).status_code == 404
    assert c.post("/api/hospital/nlp/candidates", json={"patient": "p1", "text": "x"}).status_code == 422
    assert c.get("/api/hospital/nlp/candidates?status=bogus").status_code == 422


def test_a_candidate_that_fails_validation_stays_pending_and_writes_nothing(new_engine):
    eng = new_engine()
    queue = ReviewQueue(eng)
    cand = candidates_from_note("Asthma.", "p1", "DocumentReference/n1")[0]
    cand["resource"]["verificationStatus"] = "confirmed"  # not a CodeableConcept: invalid FHIR
    [item] = queue.add([cand])
    with pytest.raises(SmartcareError, match="cannot be written to the FHIR store"):
        queue.decide(item["id"], accept=True)
    assert queue.get(item["id"])["status"] == "pending" and _counts(eng) == {}


def test_concurrent_decisions_on_one_candidate_have_exactly_one_winner(new_engine):
    eng_a, eng_b = new_engine(), new_engine()
    queue_a, queue_b = ReviewQueue(eng_a), ReviewQueue(eng_b)
    first, second = queue_a.add(candidates_from_note("Asthma, uses albuterol inhaler.", "p1", "DocumentReference/n1"))

    # deterministic: A holds its decision open; B's accept waits on the row, then finds it decided
    outcome: dict = {}

    def accept_b() -> None:
        try:
            outcome["b"] = queue_b.decide(first["id"], accept=True)
        except SmartcareError as err:
            outcome["b"] = err

    with Session(eng_a) as session:
        won = queue_a.decide_in(session, first["id"], accept=True, reviewer="a")
        worker = threading.Thread(target=accept_b)
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive()  # blocked behind A's uncommitted decision
        session.commit()
    worker.join(30)
    assert won["status"] == "accepted" and isinstance(outcome["b"], CandidateDecidedError)
    assert queue_b.get(first["id"])["reviewer"] == "a"

    # free-running race: several workers, each on its own engine
    results: list = []
    barrier = threading.Barrier(4)

    def race(queue: ReviewQueue) -> None:
        barrier.wait()
        try:
            results.append(queue.decide(second["id"], accept=True))
        except CandidateDecidedError as err:
            results.append(err)

    threads = [threading.Thread(target=race, args=(ReviewQueue(new_engine()),)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(isinstance(r, dict) for r in results) == 1 and len(results) == 4
    assert _counts(eng_b) == {"Condition": 1, "MedicationStatement": 1, "Provenance": 2}


def test_review_queue_rejects_an_unknown_status(new_engine):
    queue = ReviewQueue(new_engine())
    queue.add(candidates_from_note("Asthma, uses albuterol inhaler.", "Patient/p1", "DocumentReference/n1"))
    assert len(queue.list("pending")) == 2 and len(queue.list("all")) == 2 and queue.list("accepted") == []
    with pytest.raises(SmartcareError, match="unknown candidate status 'bogus'"):
        queue.list("bogus")
