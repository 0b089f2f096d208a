"""``/api/hospital/nlp/...``: entity extraction and the NLP-to-FHIR review queue (thin layer)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from smartcare.core.errors import SmartcareError
from smartcare.hospital.fhir.deps import EngineDep
from smartcare.hospital.fhir.embedding_table import FHIR_CORPUS
from smartcare.hospital.nlp.candidates import ReviewQueue, candidates_from_note, note_text
from smartcare.hospital.nlp.vectorstore import Note, TextEncoder, VectorStore, patient_reference

router = APIRouter(tags=["nlp"])
_ENCODER: list[TextEncoder] = []


def get_queue(engine: EngineDep) -> ReviewQueue:
    """The review queue in the FHIR database (the same engine as ``/fhir``)."""
    return ReviewQueue(engine)


def get_encoder() -> TextEncoder:
    """The process-wide MiniLM encoder, loaded on first use (tests override this dependency)."""
    if not _ENCODER:
        from smartcare.hospital.nlp.vectorstore import minilm

        _ENCODER.append(minilm())
    return _ENCODER[0]


def get_vectors(engine: EngineDep, encoder: Annotated[TextEncoder, Depends(get_encoder)]) -> VectorStore:
    """Note embeddings in the FHIR database (the same engine as ``/fhir``)."""
    return VectorStore(engine, encoder)


QueueDep = Annotated[ReviewQueue, Depends(get_queue)]
VectorsDep = Annotated[VectorStore, Depends(get_vectors)]


class NoteItem(BaseModel):
    id: str = Field(..., min_length=1, max_length=255)
    text: str = Field(..., min_length=1, max_length=200_000)
    patient: str | None = Field(None, description="Patient the note is about (Patient/<id> or <id>).")


class IndexIn(BaseModel):
    corpus: str = Field("default", description="Corpus name (not 'fhir': stored resources index themselves).")
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
    reviewer: str | None = Field(None, max_length=255, description="Who decided (recorded, and the verifier).")


@router.post("/nlp/extract")
def extract(body: NoteIn) -> dict:
    """Problems, medications and procedures with offsets, section and negated/historical/hypothetical/experiencer."""
    from smartcare.hospital.nlp.context import annotate
    from smartcare.hospital.nlp.pipeline import extract as run

    out: dict = {"entities": [asdict(e) for e in run(body.text)]}
    if body.target:
        out["target"] = annotate(body.text, body.target).to_dict()
    return out


class SpecialtyIn(BaseModel):
    texts: list[str] = Field(..., min_length=1, max_length=256, description="Notes to classify.")


@router.post("/nlp/specialty")
def specialty(body: SpecialtyIn) -> dict:
    """Medical specialty of each note (MTSamples classes) from the best shipped model, with its probability."""
    from smartcare.hospital.nlp.classify import predict_best

    return {"predictions": predict_best(body.texts)}


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
def pending(queue: QueueDep, status: str | None = "pending", patient: str | None = None) -> dict:
    """Candidates in the review queue (default: pending; ``status=all`` for every one)."""
    return {"candidates": queue.list(status, patient)}


@router.get("/nlp/candidates/{cid}")
def candidate(cid: str, queue: QueueDep) -> dict:
    """One candidate with its status, resource, provenance and decision."""
    return queue.get(cid)


@router.post("/nlp/candidates/{cid}")
def decide(cid: str, body: Decision, queue: QueueDep) -> dict:
    """Accept (writes the resource + its Provenance to the FHIR store, one transaction) or reject (writes
    nothing) a pending candidate; 409 if it was already decided."""
    return queue.decide(cid, body.decision == "accept", body.reviewer)


@router.post("/notes/index")
def index_notes(body: IndexIn, vectors: VectorsDep) -> dict:
    """Embed plain notes or posted DocumentReferences into a named corpus (stored in the database).

    Resources stored through ``/fhir`` need no call here: they are indexed in the ``fhir`` corpus."""
    from smartcare.hospital.nlp.notesync import subject_of

    items = [Note("Text", n.id, n.text, subject=patient_reference(n.patient)) for n in body.notes]
    for d in body.documents:
        if not d.get("id"):
            raise SmartcareError("each DocumentReference in `documents` needs an `id`")
        items.append(Note("DocumentReference", str(d["id"]), note_text(d), subject=subject_of(d)))
    if not items:
        raise SmartcareError("give `notes` or `documents` to index")
    return {"corpus": body.corpus, "indexed": len(items), "windows": vectors.add_texts(items, body.corpus)}


@router.post("/notes/sync")
def sync_notes(vectors: VectorsDep) -> dict:
    """Embed stored FHIR notes that are new or changed and drop those deleted; returns the counts."""
    from smartcare.hospital.nlp.notesync import sync

    return sync(vectors)


@router.get("/notes/search")
def search_notes(
    q: str,
    vectors: VectorsDep,
    k: int = 5,
    patient: str | None = None,
    corpus: str | None = None,
) -> dict:
    """Semantic search (MiniLM cosine): a note's score is its best chunk, which is returned with offsets.

    ``patient`` (``Patient/123`` or ``123``) restricts to notes about that patient; ``corpus`` to one
    corpus (``fhir`` = resources stored through ``/fhir``). Stored FHIR notes are brought up to date first."""
    if not q.strip():
        raise SmartcareError("query `q` is empty")
    if not 1 <= k <= 100:
        raise SmartcareError("k must be between 1 and 100")
    subject = patient_reference(patient)
    if corpus in (None, FHIR_CORPUS):
        from smartcare.hospital.nlp.notesync import sync

        sync(vectors)
    return {"query": q, "patient": subject, "results": vectors.search(q, k, corpus=corpus, subject=subject)}
