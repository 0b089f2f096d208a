"""``/api/hospital/scores`` and ``/api/hospital/ddi-check``: thin HTTP layer over scores and interactions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from smartcare.hospital.cds.calculators import calculate, calculator_inputs, check_inputs, list_calculators
from smartcare.hospital.cds.fhir_inputs import extract_inputs
from smartcare.hospital.cds.interactions import check_medications, detected_issue

router = APIRouter(tags=["cds"])


class ScoreRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # {"rr": 24} without the "inputs" wrapper is an error, not ignored
    resources: Any = Field(None, description="FHIR Bundle, resource or list of resources to read inputs from.")
    inputs: dict[str, Any] = Field(default_factory=dict, description="Explicit inputs (override FHIR values).")


class DDIRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resources: Any = Field(..., description="FHIR Bundle or list holding medication resources.")
    patient: str | None = None
    include_non_interruptive: bool = True


@router.get("/scores")
def scores() -> dict:
    """Names of the available calculators."""
    return {"calculators": list_calculators()}


@router.get("/scores/{name}/inputs")
def score_inputs(name: str) -> dict:
    """The inputs calculator ``name`` reads (from its table or formula), each with the values it accepts."""
    return {"calculator": name, "inputs": calculator_inputs(name)}


@router.post("/scores/{name}")
def score(name: str, body: ScoreRequest) -> dict:
    """Compute calculator ``name``: points per criterion with FHIR references, missing inputs, band, citation.

    An explicit input the calculator does not read, or a value outside its domain, is a 422 that lists
    the valid inputs (never silently scored as "assumed normal")."""
    check_inputs(name, body.inputs)
    values: dict[str, Any] = dict(extract_inputs(body.resources)) if body.resources is not None else {}
    values.update(body.inputs)
    return calculate(name, values).to_dict()


@router.post("/ddi-check")
def ddi_check(body: DDIRequest) -> dict:
    """Interacting pairs in a medication list, each with a FHIR DetectedIssue."""
    hits = check_medications(body.resources, include_non_interruptive=body.include_non_interruptive)
    return {
        "interactions": [
            {
                "ingredients": [h.ingredient_a, h.ingredient_b],
                "severity": h.severity,
                "source": h.source,
                "evidence": h.evidence,
                "references": h.references,
                "detectedIssue": detected_issue(h, body.patient),
            }
            for h in hits
        ]
    }
