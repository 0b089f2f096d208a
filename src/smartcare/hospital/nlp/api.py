"""``/api/hospital/nlp/extract``: entities and ConText assertions for a note (thin layer)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter(tags=["nlp"])


class NoteIn(BaseModel):
    text: str = Field(..., min_length=1, max_length=200_000, description="Clinical note text.")
    target: str | None = Field(None, description="Optional target phrase to assert (ConText).")


@router.post("/nlp/extract")
def extract(body: NoteIn) -> dict:
    """Problems, medications and procedures with offsets, section and negated/historical/hypothetical/experiencer."""
    from smartcare.hospital.nlp.context import annotate
    from smartcare.hospital.nlp.pipeline import extract as run

    out: dict = {"entities": [asdict(e) for e in run(body.text)]}
    if body.target:
        out["target"] = annotate(body.text, body.target).to_dict()
    return out
