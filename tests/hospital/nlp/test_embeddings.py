"""Note search: the in-memory index with a tiny encoder; MiniLM vectors stored in the database and searched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import init_db, make_engine, resources
from smartcare.hospital.fhir.loader import load_bundle
from smartcare.hospital.nlp.embeddings import NoteIndex, windows
from smartcare.hospital.nlp.notesync import sync
from smartcare.hospital.nlp.vectorstore import Note, VectorStore, minilm

from .conftest import hashing_encode


def test_index_add_replace_search_save_load(tmp_path):
    idx = NoteIndex(hashing_encode)
    long_note = " ".join(["filler"] * 400 + ["renal", "colic", "stone"])
    assert windows(long_note)[-1].endswith("renal colic stone") and windows("  a  b ") == ["a b"]
    assert idx.add([("a", "chest pain radiating to arm"), ("b", long_note)]) == 1 + len(windows(long_note))
    assert idx.search("renal stone")[0]["id"] == "b"  # found in the last window
    idx.add([("a", "renal stone and renal colic")])  # replaces note a
    assert idx.ids.count("a") == 1 and idx.search("renal colic", k=1)[0]["id"] == "a"
    path = idx.save(tmp_path / "idx.npz")
    again = NoteIndex.load(path, hashing_encode)
    assert again.search("renal colic", k=1)[0]["id"] == "a" and again.vectors.shape == idx.vectors.shape


@pytest.fixture(scope="module")
def minilm_store(tmp_path_factory):
    eng = init_db(make_engine(f"sqlite:///{tmp_path_factory.mktemp('minilm') / 'fhir.db'}"))
    yield VectorStore(eng, minilm())
    eng.dispose()


def test_minilm_vectors_stored_equal_fresh_and_rank_by_meaning(minilm_store):
    notes = [
        ("mi", "Acute myocardial infarction treated with PCI."),
        ("fx", "Distal radius fracture, cast applied."),
        ("uti", "Dysuria and urinary frequency, urine culture sent."),
    ]
    minilm_store.add_texts([Note("Text", i, t) for i, t in notes], "minilm")
    stored = np.vstack([minilm_store.vectors("Text", i, "minilm") for i, _ in notes])  # (3, 384)
    assert stored.shape == (3, 384) and stored.dtype == np.float32
    np.testing.assert_allclose(stored, minilm_store.encoder.encode([t for _, t in notes]), atol=1e-5)
    assert minilm_store.search("heart attack", k=1, corpus="minilm")[0]["id"] == "mi"
    assert minilm_store.search("broken wrist", k=1, corpus="minilm")[0]["id"] == "fx"


def test_minilm_search_of_synthea_care_plans_per_patient(minilm_store, shared_data):
    folder = shared_data / "hospital" / "synthea-r4-smart-sample" / "bundles"
    patients = []
    with Session(minilm_store.engine) as session:
        for name in ("Jonah_Ruecker_54cf16f2-bd9b-422b-93e4-d135858c438b",
                     "Rufus_Kihn_6b950b05-7dbf-450f-bca9-f05acff7a452"):
            load_bundle(session, json.loads((folder / f"{name}.json").read_text()))
            patients.append(session.execute(select(resources.c.res_id).where(
                resources.c.res_type == "Patient").order_by(resources.c.pk.desc())).scalars().first())
    counts = sync(minilm_store)
    assert counts["embedded"] == 7 and counts["no_text"] > 0  # 4 + 3 CarePlans; DiagnosticReports have no text
    assert sync(minilm_store) == {"embedded": 0, "reused": 0, "no_text": 0, "removed": 0}
    jonah = f"Patient/{patients[0]}"
    top = minilm_store.search("chest infection with cough", k=1, corpus="fhir", subject=jonah)[0]
    assert top["reference"].startswith("CarePlan/") and "bronchitis" in top["chunk"]["text"].lower()
    top = minilm_store.search("memory loss in old age", k=1, corpus="fhir", subject=jonah)[0]
    assert "dement" in top["chunk"]["text"].lower()
    hits = minilm_store.search("broken collarbone", k=10, corpus="fhir", subject=f"Patient/{patients[1]}")
    assert len(hits) == 3 and "clavicle" in hits[0]["chunk"]["text"].lower()
