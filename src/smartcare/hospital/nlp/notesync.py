"""Keep the chunk embeddings of stored FHIR resources in step with the store.

:func:`sync` compares the live resources of the indexed types (:data:`INDEXED`) with the embedding
rows: a resource whose current ``meta.versionId`` has no rows is (re-)embedded, unless its text hash
is unchanged, in which case the rows are only moved to the new version; rows whose resource is
deleted, expunged or superseded are removed. It is idempotent and safe to run from several threads
or processes (one writer per engine in a process; a lost race is skipped, the winner wrote the rows).
Search calls it first, so results never show a stale or deleted note; ``smartcare hospital
notes-index`` and :func:`sync_in_background` run it ahead of time.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
import threading
import weakref
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, and_, delete, exists, false, func, select, update
from sqlalchemy.exc import IntegrityError

from smartcare.hospital.fhir.db import history, resources
from smartcare.hospital.fhir.embedding_table import FHIR_CORPUS
from smartcare.hospital.fhir.embedding_table import resource_embedding as emb
from smartcare.hospital.nlp.vectorstore import Note, VectorStore, text_hash

# Resource type -> where its text lives: "attachment" (inline base64 text attachments) or
# "narrative" (text.div, tags stripped). Synthea R4 bundles carry narrative only on CarePlan/Patient.
INDEXED: dict[str, tuple[str, ...]] = {
    "DocumentReference": ("attachment",),
    "DiagnosticReport": ("attachment",),
    "CarePlan": ("narrative",),
    "Composition": ("narrative",),
}
_TAG = re.compile(r"<[^>]+>")
_LOCKS: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()
# SQLite only, per engine and model: (newest history row, newest embedding row) after the last full sync.
# Every FHIR write appends a history row and SQLite commits writers in key order, so while both are
# unchanged there is nothing to do (O(1) per search). On PostgreSQL keys are taken before commit and a
# slower transaction can commit a smaller key later, so every sync compares the tables.
_MARKS: weakref.WeakKeyDictionary[Engine, dict[str, tuple]] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def _attachments(resource: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    if resource.get("resourceType") == "DocumentReference":
        return [c.get("attachment") or {} for c in resource.get("content") or [] if isinstance(c, dict)]
    return [a for a in resource.get("presentedForm") or [] if isinstance(a, dict)]


def _decode(att: Mapping[str, Any]) -> str:
    kind = str(att.get("contentType") or "text/plain").split(";")[0].strip().lower()
    if not att.get("data") or not kind.startswith("text/"):
        return ""
    try:
        text = base64.b64decode(att["data"], validate=False).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ""  # a stored resource with undecodable data is simply not searchable
    return html.unescape(_TAG.sub(" ", text)) if kind in ("text/html", "text/xml") else text


def resource_text(resource: Mapping[str, Any]) -> str:
    """The searchable text of a resource per :data:`INDEXED` ('' when it has none)."""
    parts: list[str] = []
    for source in INDEXED.get(str(resource.get("resourceType")), ()):
        if source == "attachment":
            parts += [t for t in map(_decode, _attachments(resource)) if t.strip()]
        elif source == "narrative":
            div = (resource.get("text") or {}).get("div") or ""
            flat = " ".join(html.unescape(_TAG.sub(" ", div)).split())
            parts += [flat] if flat else []
    return "\n\n".join(parts)


def subject_of(resource: Mapping[str, Any]) -> str | None:
    """``Patient/<id>`` from ``subject`` (or ``patient``) when it is a Patient reference."""
    for key in ("subject", "patient"):
        ref = str((resource.get(key) or {}).get("reference") or "")
        parts = ref.rstrip("/").split("/")
        if len(parts) >= 2 and parts[-2] == "Patient":
            return f"Patient/{parts[-1]}"
    return None


def _lock(engine: Engine) -> threading.Lock:
    with _GUARD:
        return _LOCKS.setdefault(engine, threading.Lock())


def _mark(engine: Engine) -> tuple:
    with engine.connect() as conn:
        return (conn.execute(select(func.max(history.c.hpk))).scalar(),
                conn.execute(select(func.max(emb.c.id))).scalar())


def sync(store: VectorStore, *, batch: int = 64) -> dict[str, int]:
    """Bring the FHIR corpus rows of ``store``'s model up to date; returns counts ``embedded``
    (resources embedded), ``reused`` (same text, version moved), ``no_text`` (indexed types without
    text, marked so they are not read again until they change) and ``removed`` (rows dropped)."""
    engine, model = store.engine, store.encoder.name
    counts = {"embedded": 0, "reused": 0, "no_text": 0, "removed": 0}
    current = exists().where(emb.c.corpus == FHIR_CORPUS, emb.c.model == model,
                             emb.c.res_type == resources.c.res_type, emb.c.res_id == resources.c.res_id,
                             emb.c.version == resources.c.version)
    with _lock(engine):
        before = _mark(engine) if engine.dialect.name == "sqlite" else None
        marks = _MARKS.setdefault(engine, {})
        if before is not None and marks.get(model) == before:
            return counts
        with engine.connect() as conn:
            stale = conn.execute(select(resources.c.pk).where(
                resources.c.res_type.in_(list(INDEXED)), resources.c.deleted == false(), ~current)
                .order_by(resources.c.pk)).scalars().all()
        for i in range(0, len(stale), batch):
            for key, n in _sync_batch(store, stale[i : i + batch]).items():
                counts[key] += n
        live = exists().where(resources.c.res_type == emb.c.res_type, resources.c.res_id == emb.c.res_id,
                              resources.c.version == emb.c.version, resources.c.deleted == false())
        with engine.connect() as conn:  # read first: a search with nothing to drop takes no write lock
            gone = conn.execute(select(emb.c.id).where(emb.c.corpus == FHIR_CORPUS, ~live)).scalars().all()
        for i in range(0, len(gone), 500):
            with engine.begin() as conn:
                counts["removed"] += conn.execute(delete(emb).where(emb.c.id.in_(gone[i : i + 500]))).rowcount
        if before is not None:  # a write during this sync leaves the marks unequal
            marks[model] = (before[0], _mark(engine)[1])
    return counts


def _sync_batch(store: VectorStore, pks: list[int]) -> dict[str, int]:
    model = store.encoder.name
    with store.engine.connect() as conn:
        found = conn.execute(select(resources.c.res_type, resources.c.res_id, resources.c.version,
                                    resources.c.content).where(resources.c.pk.in_(pks))).all()
        notes = [Note(r.res_type, r.res_id, resource_text(r.content or {}), r.version, subject_of(r.content or {}))
                 for r in found]
        old = {(r.res_type, r.res_id): r.text_hash for r in conn.execute(
            select(emb.c.res_type, emb.c.res_id, emb.c.text_hash).distinct().where(
                emb.c.corpus == FHIR_CORPUS, emb.c.model == model, emb.c.res_id.in_([n.res_id for n in notes])))}
    reuse = [n for n in notes if old.get((n.res_type, n.res_id)) == text_hash(n.text)]
    rows = store.rows([n for n in notes if n not in reuse], FHIR_CORPUS)  # encode before any write lock
    try:
        with store.engine.begin() as conn:
            for n in reuse:
                conn.execute(update(emb).where(and_(
                    emb.c.corpus == FHIR_CORPUS, emb.c.model == model, emb.c.res_type == n.res_type,
                    emb.c.res_id == n.res_id)).values(version=n.version, subject=n.subject))
            store.replace(conn, rows, FHIR_CORPUS)
    except IntegrityError:  # another process indexed the same versions first
        return {}
    blank = sum(r["chunk"] < 0 for r in rows)
    return {"embedded": len(notes) - len(reuse) - blank, "reused": len(reuse), "no_text": blank}


def sync_in_background(store: VectorStore) -> threading.Thread:
    """Run :func:`sync` on a daemon thread (e.g. after a FHIR write is committed); returns the thread."""
    thread = threading.Thread(target=sync, args=(store,), name="notes-sync", daemon=True)
    thread.start()
    return thread
