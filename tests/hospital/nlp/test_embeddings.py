"""Note search: the index logic with a tiny deterministic encoder, and one real MiniLM ranking check."""

from __future__ import annotations

import zlib

import numpy as np
from fastapi import FastAPI
from fastapi.testclient import TestClient

from smartcare.hospital.nlp import api as nlp_api
from smartcare.hospital.nlp.embeddings import NoteIndex, windows
from smartcare.service.errors import install_error_handlers


def hashing_encoder(texts):
    out = np.zeros((len(texts), 64), dtype=np.float32)  # (N, 64)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, zlib.crc32(w.encode()) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def test_index_add_replace_search_save_load(tmp_path):
    idx = NoteIndex(hashing_encoder)
    long_note = " ".join(["filler"] * 400 + ["renal", "colic", "stone"])
    assert idx.add([("a", "chest pain radiating to arm"), ("b", long_note)]) == 1 + len(windows(long_note))
    assert idx.search("renal stone")[0]["id"] == "b"  # found in the last window
    idx.add([("a", "renal stone and renal colic")])  # replaces note a
    assert idx.ids.count("a") == 1 and idx.search("renal colic", k=1)[0]["id"] == "a"
    path = idx.save(tmp_path / "idx.npz")
    again = NoteIndex.load(path, hashing_encoder)
    assert again.search("renal colic", k=1)[0]["id"] == "a" and again.vectors.shape == idx.vectors.shape


def test_search_routes_with_overridden_index():
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(nlp_api.router, prefix="/api/hospital")
    idx = NoteIndex(hashing_encoder)
    app.dependency_overrides[nlp_api.get_index] = lambda: idx
    c = TestClient(app)
    r = c.post(
        "/api/hospital/notes/index",
        json={"notes": [{"id": "n1", "text": "knee pain after fall"}, {"id": "n2", "text": "cough and fever"}]},
    )
    assert r.json()["indexed"] == 2
    res = c.get("/api/hospital/notes/search", params={"q": "fever with cough", "k": 1}).json()["results"]
    assert res[0]["id"] == "n2"
    assert c.get("/api/hospital/notes/search", params={"q": " "}).status_code == 422
    assert c.post("/api/hospital/notes/index", json={}).status_code == 422


def test_minilm_ranks_by_meaning():
    from smartcare.hospital.nlp.embeddings import minilm_encoder

    idx = NoteIndex(minilm_encoder())
    idx.add(
        [
            ("mi", "Acute myocardial infarction treated with PCI."),
            ("fx", "Distal radius fracture, cast applied."),
            ("uti", "Dysuria and urinary frequency, urine culture sent."),
        ]
    )
    assert idx.vectors.shape == (3, 384)
    assert idx.search("heart attack", k=1)[0]["id"] == "mi"
    assert idx.search("broken wrist", k=1)[0]["id"] == "fx"
