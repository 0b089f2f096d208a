"""From NLP to FHIR: candidate Condition / MedicationStatement resources with provenance, held for review.

Only affirmed mentions about the patient (not negated, not hypothetical, experiencer patient) become
candidates. Each candidate carries its provenance (the note reference, character offsets and the text)
both as an extension on the resource and as a FHIR R4 Provenance. Candidates sit in a ``ReviewQueue``
stored in the FHIR database (table ``nlp_candidate``), so the queue survives restarts and is shared by
every worker. Nothing is written to the record until a reviewer accepts a candidate: accepting writes the
resource and its Provenance through the FHIR store and marks the candidate in ONE transaction; rejecting
writes no resource. A candidate is decided once: a second decision is a conflict (409), also when two
reviewers decide at the same moment (the pending -> decided update is guarded, so exactly one wins).
"""

from __future__ import annotations

import base64
import copy
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smartcare.core.errors import SmartcareError
from smartcare.hospital.fhir.candidate_table import CANDIDATE_STATUSES, nlp_candidate
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.store import FhirStore
from smartcare.hospital.nlp.pipeline import Entity, extract

PROVENANCE_URL = "https://smartcare.example.org/fhir/StructureDefinition/nlp-provenance"


class CandidateNotFoundError(SmartcareError):
    status = 404
    title = "Candidate not found"


class CandidateDecidedError(SmartcareError):
    """The candidate was already accepted or rejected (HTTP 409 Conflict)."""

    status = 409
    title = "Candidate already decided"


def note_text(document: Mapping) -> str:
    """Plain text of a DocumentReference (``content[].attachment.data`` base64, text/plain) or a ``text`` field."""
    if document.get("resourceType") != "DocumentReference":
        raise SmartcareError("expected a DocumentReference resource")
    for content in document.get("content") or []:
        att = content.get("attachment") or {}
        if att.get("data"):
            try:
                return base64.b64decode(att["data"]).decode("utf-8")
            except (ValueError, UnicodeDecodeError):
                raise SmartcareError("DocumentReference attachment.data is not base64 UTF-8 text") from None
    raise SmartcareError("DocumentReference has no inline text attachment (content[].attachment.data)")


def _provenance_ext(e: Entity, note_ref: str) -> dict:
    parts = [
        {"url": "note", "valueReference": {"reference": note_ref}},
        {"url": "start", "valueInteger": e.start},
        {"url": "end", "valueInteger": e.end},
        {"url": "text", "valueString": e.text},
    ]
    if e.section:
        parts.append({"url": "section", "valueString": e.section})
    return {"url": PROVENANCE_URL, "extension": parts}


def candidate_resource(e: Entity, patient: str, note_ref: str) -> dict | None:
    """A Condition (PROBLEM) or MedicationStatement (MEDICATION) for one affirmed patient mention, else None."""
    if e.negated or e.hypothetical or e.experiencer != "patient":
        return None
    rid = str(uuid.uuid4())
    subject = {"reference": patient if "/" in patient else f"Patient/{patient}"}
    if e.label == "PROBLEM":
        return {
            "resourceType": "Condition",
            "id": rid,
            "subject": subject,
            "code": {"text": e.text.lower()},
            "verificationStatus": {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "unconfirmed"}
                ]
            },
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-category",
                            "code": "problem-list-item",
                        }
                    ]
                }
            ],
            "note": [{"text": "historical mention" if e.historical else "current mention"}],
            "evidence": [{"detail": [{"reference": note_ref}]}],
            "extension": [_provenance_ext(e, note_ref)],
        }
    if e.label == "MEDICATION":
        return {
            "resourceType": "MedicationStatement",
            "id": rid,
            "status": "unknown",
            "subject": subject,
            "medicationCodeableConcept": {"text": e.text.lower()},
            "derivedFrom": [{"reference": note_ref}],
            "extension": [_provenance_ext(e, note_ref)],
        }
    return None


def provenance(resource: Mapping, note_ref: str) -> dict:
    """A FHIR R4 Provenance: the candidate was derived by smartcare NLP from ``note_ref``."""
    return {
        "resourceType": "Provenance",
        "target": [{"reference": f"{resource['resourceType']}/{resource['id']}"}],
        "recorded": datetime.now(UTC).isoformat(timespec="seconds"),
        "activity": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation", "code": "DERIVE"}]
        },
        "agent": [{"who": {"display": "smartcare clinical NLP (medspaCy ConText)"}}],
        "entity": [{"role": "source", "what": {"reference": note_ref}}],
    }


def candidates_from_note(text: str, patient: str, note_ref: str) -> list[dict]:
    """Candidates (resource + provenance) for every affirmed problem / medication mention in ``text``."""
    out = []
    for e in extract(text):
        res = candidate_resource(e, patient, note_ref)
        if res is not None:
            out.append({"resource": res, "provenance": provenance(res, note_ref)})
    return out


STATUSES = CANDIDATE_STATUSES


def _offsets(resource: Mapping) -> tuple[int | None, int | None]:
    for ext in resource.get("extension") or []:
        if ext.get("url") == PROVENANCE_URL:
            parts = {e["url"]: e for e in ext.get("extension") or []}
            return (parts.get("start", {}).get("valueInteger"), parts.get("end", {}).get("valueInteger"))
    return None, None


def _when(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _item(row) -> dict[str, Any]:
    return {
        "id": row.id,
        "status": row.status,
        "resource": row.resource,
        "provenance": row.provenance,
        "note": row.note,
        "offsets": {"start": row.char_start, "end": row.char_end},
        "created": _when(row.created),
        "decided": _when(row.decided),
        "reviewer": row.reviewer,
        "written": row.written,
    }


def _verified_provenance(prov: Mapping, reviewer: str | None, when: datetime) -> dict:
    """The candidate's Provenance as written on acceptance: recorded now, the reviewer as verifier."""
    out = copy.deepcopy(dict(prov))
    out.pop("id", None)
    out["recorded"] = when.isoformat(timespec="seconds")
    if reviewer:
        role = {"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "verifier"}
        out["agent"] = [*out.get("agent", []), {"type": {"coding": [role]}, "who": {"display": reviewer}}]
    return out


class ReviewQueue:
    """The review queue in the FHIR database (``nlp_candidate``): pending until accepted or rejected."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, candidates: list[dict]) -> list[dict]:
        """Queue ``candidates`` (``{"resource", "provenance"}``, as made by :func:`candidates_from_note`)."""
        when = datetime.now(UTC)
        rows = []
        for c in candidates:
            res = c["resource"]
            start, end = _offsets(res)
            note = (c["provenance"].get("entity") or [{}])[0].get("what", {}).get("reference", "")
            rows.append({
                "id": res["id"], "status": "pending", "res_type": res["resourceType"],
                "patient": (res.get("subject") or {}).get("reference"), "note": note,
                "char_start": start, "char_end": end, "resource": res, "provenance": c["provenance"],
                "created": when, "decided": None, "reviewer": None, "written": None,
            })
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(nlp_candidate), rows)
        return [self.get(r["id"]) for r in rows]

    def get(self, cid: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(nlp_candidate).where(nlp_candidate.c.id == cid)).first()
        if row is None:
            raise CandidateNotFoundError(f"no candidate {cid!r} in the review queue")
        return _item(row)

    def list(self, status: str | None = None, patient: str | None = None) -> list[dict]:
        """Candidates with ``status`` (pending, accepted, rejected); ``None``, ``""`` or ``"all"``: every one.

        ``patient`` (``Patient/<id>`` or ``<id>``) keeps that patient's candidates. Raises
        ``SmartcareError`` for any other status, rather than answering an empty list.
        """
        status = None if status in ("", "all") else status
        if status is not None and status not in STATUSES:
            raise SmartcareError(f"unknown candidate status {status!r}; use one of {', '.join(STATUSES)} or all")
        query = select(nlp_candidate).order_by(nlp_candidate.c.created, nlp_candidate.c.id)
        if status is not None:
            query = query.where(nlp_candidate.c.status == status)
        if patient:
            query = query.where(nlp_candidate.c.patient == (patient if "/" in patient else f"Patient/{patient}"))
        with self.engine.connect() as conn:
            return [_item(r) for r in conn.execute(query)]

    def decide_in(self, session: Session, cid: str, accept: bool, reviewer: str | None = None) -> dict:
        """Decide candidate ``cid`` inside ``session`` without committing (see :meth:`decide`).

        The guarded ``UPDATE ... WHERE status = 'pending'`` locks the row: a concurrent decision waits,
        then finds it decided. Accepting writes the resource (with the candidate's id) and its Provenance
        through :class:`FhirStore` on the same session.
        """
        when = datetime.now(UTC)
        decided = session.execute(
            update(nlp_candidate)
            .where(nlp_candidate.c.id == cid, nlp_candidate.c.status == "pending")
            .values(status="accepted" if accept else "rejected", decided=when, reviewer=reviewer)
        )
        if decided.rowcount != 1:
            row = session.execute(select(nlp_candidate.c.status).where(nlp_candidate.c.id == cid)).first()
            if row is None:
                raise CandidateNotFoundError(f"no candidate {cid!r} in the review queue")
            raise CandidateDecidedError(f"candidate {cid!r} is already {row.status}")
        if accept:
            row = session.execute(select(nlp_candidate).where(nlp_candidate.c.id == cid)).one()
            store = FhirStore(session)
            try:
                res = store.create(copy.deepcopy(row.resource), rid=cid)
                prov = store.create(_verified_provenance(row.provenance, reviewer, when), owned=True)
                store.flush()
            except IntegrityError:
                raise CandidateDecidedError(f"{row.res_type}/{cid} already exists in the FHIR store") from None
            except FhirError as err:
                raise SmartcareError(f"candidate {cid!r} cannot be written to the FHIR store: {err}") from None
            written = {
                "resource": f"{res.stored.res_type}/{res.stored.res_id}/_history/{res.stored.version}",
                "provenance": f"Provenance/{prov.stored.res_id}",
            }
            session.execute(update(nlp_candidate).where(nlp_candidate.c.id == cid).values(written=written))
        row = session.execute(select(nlp_candidate).where(nlp_candidate.c.id == cid)).one()
        return _item(row)

    def decide(self, cid: str, accept: bool, reviewer: str | None = None) -> dict:
        """Accept (write the resource + Provenance to the FHIR store) or reject candidate ``cid``, atomically.

        Raises:
            CandidateNotFoundError: no such candidate (404).
            CandidateDecidedError: it was already accepted or rejected (409).
            SmartcareError: the resource is not valid FHIR (nothing is written, it stays pending).
        """
        with Session(self.engine) as session:
            try:
                item = self.decide_in(session, cid, accept, reviewer)
                session.commit()
            except BaseException:
                session.rollback()
                raise
        return item
