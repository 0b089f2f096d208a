"""HTTP routes under /api/genomics (thin layer over the Python API).

Paths in request bodies are files on the server (BAM, FASTA, VCF); bad input raises ``SmartcareError``,
which the service turns into RFC 9457 problem+json.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter()


class CallRequest(BaseModel):
    ref: str = Field(description="Reference FASTA path on the server")
    bam: str = Field(description="Indexed BAM path on the server")
    regions: str | None = Field(None, description="chr:start-end (1-based) or a BED path")
    model: str = Field("variant-caller", description="variant-caller or classical")


class EvaluateRequest(BaseModel):
    truth: str
    query: str
    bed: str | None = None
    ref: str | None = None


class ObservationRequest(BaseModel):
    record: dict[str, Any] = Field(description="contig, pos (0-based), ref, alts, gt, ad, dp, gq, qual")
    alt_index: int = 1
    patient: str | None = None


@router.get("/variant-caller")
def variant_caller_card() -> dict:
    """Card of the shipped variant-calling network."""
    from smartcare.core.registry import load_card

    return load_card("variant-caller")


@router.post("/call")
def call_variants(body: CallRequest) -> dict:
    """Call variants (one process) and return them as records."""
    from smartcare.genomics.pipeline import RunConfig, call_variants

    calls, _ = call_variants(body.ref, body.bam, body.regions, RunConfig(model=body.model))
    return {"calls": [c.to_dict() for c in calls]}


@router.post("/evaluate")
def evaluate(body: EvaluateRequest) -> dict:
    """TP/FP/FN, precision, recall, F1, GT concordance for SNPs and indels."""
    from smartcare.genomics.evaluate import evaluate as run_evaluate

    return run_evaluate(body.truth, body.query, body.bed, body.ref)


@router.post("/observation")
def observation(body: ObservationRequest) -> dict:
    """A called variant as a FHIR R4 Observation (Genomics Reporting IG variant profile)."""
    from smartcare.genomics.fhir import to_fhir_observation

    return to_fhir_observation(body.record, alt_index=body.alt_index, patient=body.patient)
