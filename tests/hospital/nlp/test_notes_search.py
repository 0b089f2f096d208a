"""Note embeddings stored beside the FHIR resources: kept in step with writes, searched per patient."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.api import router as fhir_router
from smartcare.hospital.fhir.deps import get_engine
from smartcare.hospital.fhir.embedding_table import resource_embedding as emb
from smartcare.hospital.fhir.store import FhirStore
from smartcare.hospital.nlp import api as nlp_api
from smartcare.hospital.nlp.notesync import resource_text, subject_of, sync
from smartcare.hospital.nlp.vectorstore import VectorStore, chunk_spans
from smartcare.service.errors import install_error_handlers

from .conftest import fresh_engine

NOTES = {
    "n-cardio": ("p1", "Chest pain on exertion. ECG shows ST elevation. Troponin raised. Cardiology consulted."),
    "n-ortho": ("p1", "Fell on outstretched hand. Wrist swollen. X-ray: distal radius fracture, cast applied."),
    "n-resp": ("p2", "Productive cough and fever for three days. Crackles at the right base. Chest X-ray pneumonia."),
}


def document(rid: str, patient: str, text: str) -> dict:
    data = base64.b64encode(text.encode()).decode()
    return {"resourceType": "DocumentReference", "id": rid, "status": "current",
            "subject": {"reference": f"Patient/{patient}"},
            "content": [{"attachment": {"contentType": "text/plain", "data": data}}]}


def write(engine, op: str, *args) -> None:
    with Session(engine) as session:
        store = FhirStore(session)
        getattr(store, op)(*args)
        store.commit()


def rows(engine, rid: str) -> list:
    with engine.connect() as conn:
        return conn.execute(select(emb).where(emb.c.res_id == rid).order_by(emb.c.chunk)).all()


def test_chunk_spans_cover_long_text_with_offsets():
    text = "  ".join(f"w{i}" for i in range(320))
    spans = chunk_spans(text)
    assert len(spans) == 3 and spans[0][0] == 0 and spans[-1][1] == len(text)
    assert text[slice(*spans[1])].split()[0] == "w100" and len(text[slice(*spans[1])].split()) == 150
    assert chunk_spans("   ") == [] and chunk_spans("one") == [(0, 3)]


def test_resource_text_and_subject():
    doc = document("d", "p9", "Hello note")
    assert resource_text(doc) == "Hello note" and subject_of(doc) == "Patient/p9"
    plan = {"resourceType": "CarePlan", "subject": {"reference": "Patient/x"},
            "text": {"div": "<div xmlns='http://www.w3.org/1999/xhtml'>Care plan for <b>asthma</b> &amp; cough</div>"}}
    assert resource_text(plan) == "Care plan for asthma & cough"
    bad = {"resourceType": "DocumentReference", "content": [{"attachment": {"contentType": "application/pdf",
                                                                            "data": "JVBERi0="}}]}
    assert resource_text(bad) == "" and resource_text({"resourceType": "Observation"}) == ""


def test_sync_tracks_create_update_delete(engine, hashing_encoder):
    vs = VectorStore(engine, hashing_encoder)
    for rid, (pid, text) in NOTES.items():
        write(engine, "update", "DocumentReference", rid, document(rid, pid, text))
    write(engine, "update", "Observation", "o1", {"resourceType": "Observation", "id": "o1", "status": "final",
                                                  "code": {"text": "x"}})
    assert sync(vs) == {"embedded": 3, "reused": 0, "no_text": 0, "removed": 0}
    assert sync(vs) == {"embedded": 0, "reused": 0, "no_text": 0, "removed": 0}  # idempotent
    stored = rows(engine, "n-ortho")
    assert [(r.chunk, r.char_start, r.char_end, r.version, r.subject) for r in stored] == [
        (0, 0, len(NOTES["n-ortho"][1]), 1, "Patient/p1")]
    np.testing.assert_array_equal(stored[0].embedding, hashing_encoder.encode([NOTES["n-ortho"][1]])[0])

    hits = vs.search("radius fracture of the wrist", k=3)
    assert hits[0]["reference"] == "DocumentReference/n-ortho" and hits[0]["chunk"]["text"] == NOTES["n-ortho"][1]
    mine = vs.search("fever cough chest", k=5, subject="Patient/p1")
    assert sorted(h["id"] for h in mine) == ["n-cardio", "n-ortho"] and {h["subject"] for h in mine} == {"Patient/p1"}

    before = vs.vectors("DocumentReference", "n-ortho")
    new_text = "Urinary frequency and dysuria. Urine culture sent, started on nitrofurantoin."
    write(engine, "update", "DocumentReference", "n-ortho", document("n-ortho", "p1", new_text))
    assert sync(vs)["embedded"] == 1
    after = vs.vectors("DocumentReference", "n-ortho")
    assert not np.allclose(before, after) and rows(engine, "n-ortho")[0].version == 2
    np.testing.assert_allclose(after[0], hashing_encoder.encode([new_text])[0], rtol=1e-6)
    assert vs.search("dysuria urine culture", k=1)[0]["reference"] == "DocumentReference/n-ortho"

    same = document("n-ortho", "p1", new_text) | {"status": "superseded"}  # new version, same text
    write(engine, "update", "DocumentReference", "n-ortho", same)
    assert sync(vs) == {"embedded": 0, "reused": 1, "no_text": 0, "removed": 0}
    assert rows(engine, "n-ortho")[0].version == 3

    write(engine, "delete", "DocumentReference", "n-cardio")
    assert sync(vs)["removed"] == 1 and rows(engine, "n-cardio") == []
    assert all(h["reference"] != "DocumentReference/n-cardio" for h in vs.search("chest pain troponin", k=5))


def test_plain_corpus_is_stored_and_replaced(engine, hashing_encoder):
    from smartcare.hospital.nlp.vectorstore import Note

    vs = VectorStore(engine, hashing_encoder)
    long_note = " ".join(["filler"] * 400 + ["renal", "colic", "stone"])
    n = vs.add_texts([Note("Text", "a", "chest pain radiating to arm"), Note("Text", "b", long_note)], "demo")
    assert n == 1 + len(chunk_spans(long_note))
    hit = vs.search("renal stone", k=1, corpus="demo")[0]
    assert hit["id"] == "b" and hit["chunk"]["index"] == len(chunk_spans(long_note)) - 1
    assert long_note[hit["chunk"]["start"]:hit["chunk"]["end"]].endswith("renal colic stone")
    vs.add_texts([Note("Text", "a", "renal stone and renal colic")], "demo")  # replaces note a
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).where(emb.c.corpus == "demo", emb.c.res_id == "a")).scalar()
    assert count == 1 and vs.search("renal colic", k=1, corpus="demo")[0]["id"] == "a"
    assert sync(VectorStore(engine, hashing_encoder))["removed"] == 0  # corpus rows are not FHIR rows
    assert vs.add_texts([Note("Text", "d", "first text"), Note("Text", "d", "second text")], "demo") == 1
    assert rows(engine, "d")[0].chunk_text == "second text"  # a repeated id: the last one wins
    with pytest.raises(ValueError, match="reserved"):
        vs.add_texts([Note("Text", "x", "y")], "fhir")


@pytest.mark.postgres
def test_sqlite_and_postgres_rank_alike(tmp_path_factory, pg_url, hashing_encoder):
    queries = ["broken wrist cast", "pneumonia with fever", "st elevation chest pain", "x-ray"]
    rankings = []
    for kind in ("sqlite", "postgres"):
        eng, cleanup = fresh_engine(kind, tmp_path_factory, pg_url)
        try:
            for rid, (pid, text) in NOTES.items():
                write(eng, "update", "DocumentReference", rid, document(rid, pid, text))
            vs = VectorStore(eng, hashing_encoder)
            sync(vs)
            rankings.append([[(h["reference"], h["score"]) for h in vs.search(q, k=3)] for q in queries])
        finally:
            cleanup()
    assert rankings[0] == rankings[1]
    assert rankings[0][0][0][0] == "DocumentReference/n-ortho"


def test_http_search_over_fhir_notes_and_corpus(engine, hashing_encoder):
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(fhir_router, prefix="/fhir")
    app.include_router(nlp_api.router, prefix="/api/hospital")
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[nlp_api.get_encoder] = lambda: hashing_encoder
    c = TestClient(app)
    text = "Patient seen for migraine with aura, photophobia; started sumatriptan."
    r = c.put("/fhir/DocumentReference/http-1", json=document("http-1", "p7", text),
              headers={"content-type": "application/fhir+json"})
    assert r.status_code in (200, 201), r.text
    res = c.get("/api/hospital/notes/search", params={"q": "migraine aura", "patient": "Patient/p7", "k": 5}).json()
    assert res["patient"] == "Patient/p7"
    assert [h["reference"] for h in res["results"]] == ["DocumentReference/http-1"]
    assert res["results"][0]["chunk"] == {"index": 0, "start": 0, "end": len(text), "text": text}
    assert c.delete("/fhir/DocumentReference/http-1").status_code in (200, 204)
    assert c.get("/api/hospital/notes/search", params={"q": "migraine", "patient": "p7"}).json()["results"] == []

    body = {"corpus": "triage", "notes": [{"id": "t1", "text": "knee pain after fall"},
                                          {"id": "t2", "text": "cough and fever"}]}
    assert c.post("/api/hospital/notes/index", json=body).json()["indexed"] == 2
    hits = c.get("/api/hospital/notes/search", params={"q": "fever with cough", "k": 1}).json()["results"]
    assert hits[0]["reference"] == "Text/t2" and hits[0]["corpus"] == "triage"
    assert c.get("/api/hospital/notes/search", params={"q": " "}).status_code == 422
    assert c.get("/api/hospital/notes/search", params={"q": "x", "k": 0}).status_code == 422
    assert c.get("/api/hospital/notes/search", params={"q": "x", "patient": "Group/1"}).status_code == 422
    assert c.post("/api/hospital/notes/index", json={}).status_code == 422
    assert c.post("/api/hospital/notes/index", json={"corpus": "fhir", "notes": body["notes"]}).status_code == 422
    assert c.post("/api/hospital/notes/sync").json() == {"embedded": 0, "reused": 0, "no_text": 0, "removed": 0}


def test_cli_index_csv_corpus_and_search(engine, hashing_encoder, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from smartcare.core.cli import CommandApp
    from smartcare.hospital.nlp import notes_cli

    app = CommandApp()
    notes_cli.register(app)
    monkeypatch.setattr(notes_cli, "_store", lambda: VectorStore(engine, hashing_encoder))
    csv = tmp_path / "notes.csv"
    csv.write_text('note_id,body\nc1,"Knee effusion after a twisting injury."\nc2,"Asthma attack, wheeze."\nc3,\n')
    run = CliRunner().invoke
    args = ["--corpus", "cli", "--text-column", "body", "--id-column", "note_id"]
    r = run(app, ["notes-index", "--csv", str(csv), *args])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) | {"seconds": 0} == {"corpus": "cli", "notes": 2, "chunks": 2, "seconds": 0}
    r = run(app, ["notes-search", "wheeze asthma", "-k", "1", "--corpus", "cli"])
    assert r.exit_code == 0 and json.loads(r.output)[0]["reference"] == "Text/c2"
    r = run(app, ["notes-index", "--csv", str(csv), "--text-column", "nope"])
    assert r.exit_code == 2 and "no column 'nope'" in r.output
    r = run(app, ["notes-search", "x", "--patient", "Group/1"])
    assert r.exit_code == 2 and "not a Patient id" in r.output
    r = run(app, ["notes-index"])
    assert r.exit_code == 0 and set(json.loads(r.output)) >= {"embedded", "removed", "seconds"}


def test_sync_in_background(engine, hashing_encoder):
    from smartcare.hospital.nlp.notesync import sync_in_background

    write(engine, "update", "DocumentReference", "bg-1", document("bg-1", "p3", "Background indexed gout flare."))
    sync_in_background(VectorStore(engine, hashing_encoder)).join(timeout=30)
    assert [r.chunk for r in rows(engine, "bg-1")] == [0]


def test_reset_db_drops_and_recreates_the_embedding_table(tmp_path, hashing_encoder):
    from smartcare.hospital.fhir.db import engine_for, reset_db
    from smartcare.hospital.nlp.vectorstore import Note

    url = f"sqlite:///{tmp_path / 'reset.db'}"
    VectorStore(engine_for(url), hashing_encoder).add_texts([Note("Text", "r1", "some words")], "reset")
    reset_db(url)
    with engine_for(url).connect() as conn:
        assert conn.execute(select(func.count()).select_from(emb)).scalar_one() == 0


def test_sync_sees_writes_made_through_another_engine(tmp_path, hashing_encoder):
    from smartcare.hospital.fhir.db import init_db, make_engine

    url = f"sqlite:///{tmp_path / 'two.db'}"
    mine, other = init_db(make_engine(url)), make_engine(url)  # two engines stand in for two processes
    vs = VectorStore(mine, hashing_encoder)
    write(other, "update", "DocumentReference", "x1", document("x1", "p1", "Gout of the big toe."))
    assert sync(vs)["embedded"] == 1 and sync(vs)["embedded"] == 0
    write(other, "update", "DocumentReference", "x2", document("x2", "p1", "Cellulitis of the shin."))
    write(other, "delete", "DocumentReference", "x1")
    assert sync(vs) == {"embedded": 1, "reused": 0, "no_text": 0, "removed": 1}
    mine.dispose()
    other.dispose()


def test_concurrent_syncs_leave_one_row_per_chunk(engine, hashing_encoder, tmp_path):
    import threading

    for i in range(40):
        write(engine, "update", "DocumentReference", f"cc-{i}", document(f"cc-{i}", "p5", f"note {i} about item{i}"))
    stores = [VectorStore(engine, hashing_encoder) for _ in range(4)]
    errors: list[BaseException] = []

    def run(vs):
        try:
            sync(vs, batch=8)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(vs,)) for vs in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    with engine.connect() as conn:
        n = conn.execute(select(func.count()).where(emb.c.res_id.like("cc-%"))).scalar_one()
    assert n == 40
