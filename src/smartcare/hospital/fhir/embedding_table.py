"""The ``resource_embedding`` table: text-chunk embeddings stored beside the FHIR resources.

One row per chunk of a resource's text (or of a note of a plain-text corpus) and per encoder model.
The vector column is a numpy ``float32`` blob on SQLite and a ``REAL[]`` array on PostgreSQL (the
pgvector extension is not packaged for Debian 12, so arrays are the portable choice); search ranks by
cosine in numpy (:mod:`smartcare.hospital.nlp.vectorstore`). Created by migration ``0003``; this
module only mirrors it on :data:`~smartcare.hospital.fhir.db.METADATA` for queries and ``reset_db``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import REAL, Column, Index, Integer, LargeBinary, String, Table, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.types import TypeDecorator

from smartcare.hospital.fhir.db import METADATA

FHIR_CORPUS = "fhir"  # corpus name of the rows that mirror stored FHIR resources


class EmbeddingType(TypeDecorator):
    """A 1-d float32 vector: ``LargeBinary`` (raw float32 bytes) on SQLite, ``REAL[]`` on PostgreSQL.

    Binds any 1-d array-like; returns a ``np.ndarray`` of dtype float32, shape (D,)."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(REAL))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        vec = np.asarray(value, dtype=np.float32).reshape(-1)  # (D,)
        return vec.tolist() if dialect.name == "postgresql" else vec.tobytes()

    def process_result_value(self, value: Any, dialect) -> np.ndarray | None:
        if value is None:
            return None
        if isinstance(value, bytes | bytearray | memoryview):
            return np.frombuffer(bytes(value), dtype=np.float32)
        return np.asarray(value, dtype=np.float32)


resource_embedding = Table(
    "resource_embedding",
    METADATA,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("corpus", String(64), nullable=False),  # FHIR_CORPUS or the name of a plain-text corpus
    Column("res_type", String(64), nullable=False),  # FHIR type, or "Text" for corpus notes
    Column("res_id", String(255), nullable=False),
    Column("version", Integer, nullable=False),  # meta.versionId of the embedded version (1 for texts)
    Column("subject", String(255)),  # "Patient/<id>" the note is about, when known
    Column("model", String(128), nullable=False),
    Column("dim", Integer, nullable=False),
    Column("text_hash", String(64), nullable=False),  # sha256 of the whole text: unchanged text, no re-embedding
    Column("chunk", Integer, nullable=False),  # 0, 1, ...; -1 marks a resource with no text to embed
    Column("char_start", Integer, nullable=False),
    Column("char_end", Integer, nullable=False),
    Column("chunk_text", Text, nullable=False),
    Column("embedding", EmbeddingType(), nullable=False),
    UniqueConstraint("corpus", "model", "res_type", "res_id", "chunk", name="uq_resource_embedding_chunk"),
    Index("ix_resource_embedding_subject", "corpus", "model", "subject"),
    Index("ix_resource_embedding_resource", "res_type", "res_id"),
)
