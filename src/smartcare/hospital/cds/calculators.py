"""One entry point over table-driven scores and formula calculators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.formulas import FORMULAS, compute_formula
from smartcare.hospital.cds.scores import ScoreResult, UnknownScoreError, compute, list_tables, name_key


def list_calculators() -> list[str]:
    """Every calculator name: score tables first, then formulas."""
    return list_tables() + list(FORMULAS)


def calculate(name: str, inputs: Mapping[str, Any]) -> ScoreResult:
    """Compute calculator ``name`` (case/punctuation ignored) from ``inputs`` (name -> value or Evidence).

    Raises:
        UnknownScoreError: ``name`` is neither a score table nor a formula.
        SmartcareError: an input has a value of the wrong type (text where a number is needed).
    """
    try:
        formulas = {name_key(k): k for k in FORMULAS}
        if name_key(name) in formulas:
            return compute_formula(formulas[name_key(name)], inputs)
        try:
            return compute(name, inputs)
        except UnknownScoreError:
            raise UnknownScoreError(f"unknown calculator {name!r}; known: {', '.join(list_calculators())}") from None
    except (ValueError, TypeError) as err:
        if isinstance(err, SmartcareError):
            raise
        given = ", ".join(f"{k}={v}" for k, v in inputs.items() if isinstance(v, str) and k != "sex")
        raise SmartcareError(f"{name}: an input has a value of the wrong type ({err})"
                             + (f"; text inputs given: {given}" if given else "")) from None
