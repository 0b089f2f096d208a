"""``/api/hospital/nlp/...``: entity extraction and the NLP-to-FHIR review queue (thin layer)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from smartcare.core.errors import SmartcareError
from smartcare.hospital.nlp.candidates import ReviewQueue, candidates_from_note, note_text
from smartcare.hospital.nlp.embeddings import NoteIndex

router = APIRouter(tags=["nlp"])
_QUEUE = ReviewQueue()
_INDEX: list[NoteIndex] = []


def get_queue() -> ReviewQueue:
    return _QUEUE


def get_index() -> NoteIndex:
    """The process-wide note index, with the MiniLM encoder loaded on first use."""
    if not _INDEX:
        from smartcare.hospital.nlp.embeddings import minilm_encoder

        _INDEX.append(NoteIndex(minilm_encoder()))
    return _INDEX[0]


QueueDep = Annotated[ReviewQueue, Depends(get_queue)]
IndexDep = Annotated[NoteIndex, Depends(get_index)]


class NoteItem(BaseModel):
    id: str = Field(..., min_length=1)
    text: str = Field(..., min_length=1, max_length=200_000)


class IndexIn(BaseModel):
    notes: list[NoteItem] = Field(default_factory=list, description="Plain texts with ids.")
    documents: list[dict[str, Any]] = Field(default_factory=list, description="DocumentReferences (inline text).")


class NoteIn(BaseModel):
    text: str = Field(..., min_length=1, max_length=200_000, description="Clinical note text.")
    target: str | None = Field(None, description="Optional target phrase to assert (ConText).")


class CandidatesIn(BaseModel):
    patient: str = Field(..., description="Patient id or reference.")
    text: str | None = Field(None, max_length=200_000, description="Note text (or give `document`).")
    document: dict[str, Any] | None = Field(None, description="A DocumentReference with inline text.")
    note_reference: str | None = Field(None, description="Reference of the note, e.g. DocumentReference/12.")


class Decision(BaseModel):
    decision: Literal["accept", "reject"]


@router.post("/nlp/extract")
def extract(body: NoteIn) -> dict:
    """Problems, medications and procedures with offsets, section and negated/historical/hypothetical/experiencer."""
    from smartcare.hospital.nlp.context import annotate
    from smartcare.hospital.nlp.pipeline import extract as run

    out: dict = {"entities": [asdict(e) for e in run(body.text)]}
    if body.target:
        out["target"] = annotate(body.text, body.target).to_dict()
    return out


@router.post("/nlp/candidates")
def propose(body: CandidatesIn, queue: QueueDep) -> dict:
    """Queue candidate Condition / MedicationStatement resources from a note for review (nothing is written)."""
    if (body.text is None) == (body.document is None):
        raise SmartcareError("give exactly one of `text` or `document`")
    text = body.text if body.text is not None else note_text(body.document)
    ref = body.note_reference or (f"DocumentReference/{body.document.get('id')}" if body.document else "")
    if not ref:
        raise SmartcareError("`note_reference` is required with `text` (provenance needs the note)")
    return {"queued": queue.add(candidates_from_note(text, body.patient, ref))}


@router.get("/nlp/candidates")
def pending(queue: QueueDep, status: str | None = "pending") -> dict:
    """Candidates in the review queue (default: pending)."""
    return {"candidates": queue.list(status)}


@router.post("/nlp/candidates/{cid}")
def decide(cid: str, body: Decision, queue: QueueDep) -> dict:
    """Accept (returns the resource + Provenance to POST to /fhir) or reject a candidate."""
    return queue.decide(cid, body.decision == "accept")


@router.post("/notes/index")
def index_notes(body: IndexIn, index: IndexDep) -> dict:
    """Embed notes (texts or DocumentReferences) into the search index."""
    items = [(n.id, n.text) for n in body.notes]
    items += [(f"DocumentReference/{d.get('id')}", note_text(d)) for d in body.documents]
    if not items:
        raise SmartcareError("give `notes` or `documents` to index")
    return {"indexed": len(items), "windows": index.add(items)}


@router.get("/notes/search")
def search_notes(q: str, index: IndexDep, k: int = 5) -> dict:
    """Semantic search (MiniLM cosine) over the indexed notes."""
    if not 1 <= k <= 100:
        raise SmartcareError("k must be between 1 and 100")
    return {"query": q, "results": index.search(q, k)}
