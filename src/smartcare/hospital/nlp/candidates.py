"""From NLP to FHIR: candidate Condition / MedicationStatement resources with provenance, held for review.

Only affirmed mentions about the patient (not negated, not hypothetical, experiencer patient) become
candidates. Each candidate carries its provenance (the note reference, character offsets and the text)
both as an extension on the resource and as a FHIR R4 Provenance. Candidates sit in a ``ReviewQueue``;
nothing is written to the record: accepting one returns the resource for the caller to POST to ``/fhir``.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime

from smartcare.core.errors import SmartcareError
from smartcare.hospital.nlp.pipeline import Entity, extract

PROVENANCE_URL = "https://smartcare.example.org/fhir/StructureDefinition/nlp-provenance"


class CandidateNotFoundError(SmartcareError):
    status = 404
    title = "Candidate not found"


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


STATUSES = ("pending", "accepted", "rejected")


class ReviewQueue:
    """In-memory review queue: candidates are pending until accepted or rejected (thread-safe)."""

    def __init__(self) -> None:
        self._items: dict[str, dict] = {}
        self._lock = threading.Lock()

    def add(self, candidates: list[dict]) -> list[dict]:
        with self._lock:
            for c in candidates:
                c = {"id": c["resource"]["id"], "status": "pending", **c}
                self._items[c["id"]] = c
            return [self._items[c["resource"]["id"]] for c in candidates]

    def list(self, status: str | None = None) -> list[dict]:
        """Candidates with ``status`` (pending, accepted, rejected); ``None``, ``""`` or ``"all"``: every one.

        Raises ``SmartcareError`` for any other status, rather than answering an empty list.
        """
        status = None if status in ("", "all") else status
        if status is not None and status not in STATUSES:
            raise SmartcareError(f"unknown candidate status {status!r}; use one of {', '.join(STATUSES)} or all")
        with self._lock:
            return [c for c in self._items.values() if status is None or c["status"] == status]

    def decide(self, cid: str, accept: bool) -> dict:
        with self._lock:
            item = self._items.get(cid)
            if item is None:
                raise CandidateNotFoundError(f"no candidate {cid!r} in the review queue")
            if item["status"] != "pending":
                raise SmartcareError(f"candidate {cid!r} is already {item['status']}")
            item["status"] = "accepted" if accept else "rejected"
            return item
