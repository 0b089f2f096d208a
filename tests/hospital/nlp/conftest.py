"""NLP test fixtures: a migrated FHIR database (SQLite or PostgreSQL) and a tiny deterministic encoder."""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from sqlalchemy import Engine, text

from smartcare.hospital.fhir.db import init_db, make_engine
from smartcare.hospital.nlp.vectorstore import TextEncoder


def hashing_encode(texts: list[str]) -> np.ndarray:
    """Bag of hashed lower-case words, L2-normalised: (N, 64)."""
    out = np.zeros((len(texts), 64), dtype=np.float32)  # (N, 64)
    for i, t in enumerate(texts):
        for w in t.lower().split():
            out[i, zlib.crc32(w.strip(".,;:").encode()) % 64] += 1
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="session")
def hashing_encoder() -> TextEncoder:
    return TextEncoder("hash-64", 64, hashing_encode)


def fresh_engine(kind: str, tmp_path_factory, pg_url: str) -> tuple[Engine, object]:
    """A migrated empty database and a cleanup callable (PostgreSQL: a throwaway schema)."""
    if kind == "sqlite":
        eng = init_db(make_engine(f"sqlite:///{tmp_path_factory.mktemp('notes') / 'fhir.db'}"))
        return eng, eng.dispose
    schema = f"notes_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    eng = init_db(make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"}))

    def cleanup() -> None:
        eng.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()

    return eng, cleanup


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path_factory, pg_url) -> Iterator[Engine]:
    eng, cleanup = fresh_engine(request.param, tmp_path_factory, pg_url)
    yield eng
    cleanup()
