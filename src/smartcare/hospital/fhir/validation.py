"""Structural validation of R4 resource JSON.

Approach (see the README): the R4B models of ``fhir.resources`` 8.x check required elements,
datatypes, cardinality and unknown elements. R4B is a technical correction of R4 with a handful of
documented differences (FHIR R4B "Differences from R4"); those are handled here as data:

- resource types that exist in R4 but were removed or remodelled in R4B (``R4_ONLY_TYPES``,
  plus ``Evidence``/``EvidenceVariable`` whose R4 shape differs completely) get only the
  checks every resource gets: a JSON object, a known ``resourceType`` and a valid ``id``.

Every one of the 564 official R4 examples passes (tests/hospital/fhir/test_examples.py). Resources
that :mod:`fastcheck` can prove valid skip building the models (the same answer, several times faster).
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from functools import lru_cache
from typing import Any

from smartcare.hospital.fhir import fastcheck
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.searchparams import resource_types

ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# In R4 4.0.1 but removed or reshaped in R4B 4.3.0 (R4B "Differences from R4").
R4_ONLY_TYPES = frozenset(
    {
        "EffectEvidenceSynthesis",
        "RiskEvidenceSynthesis",
        "MedicinalProduct",
        "MedicinalProductAuthorization",
        "MedicinalProductContraindication",
        "MedicinalProductIndication",
        "MedicinalProductIngredient",
        "MedicinalProductInteraction",
        "MedicinalProductManufactured",
        "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical",
        "MedicinalProductUndesirableEffect",
        "SubstanceSpecification",
        "Evidence",
        "EvidenceVariable",
    }
)
# R4 types that have no search parameter of their own (so are not in the searchparam table).
_EXTRA_TYPES = {"Binary", "Bundle", "Parameters", "OperationOutcome", "DomainResource", "Resource"}


@lru_cache(maxsize=1)
def known_types() -> frozenset[str]:
    """Every R4 resource type name this server accepts."""
    return frozenset(resource_types()) | _EXTRA_TYPES | R4_ONLY_TYPES


def _path(rtype: str, loc: tuple[Any, ...]) -> str:
    out = rtype
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif not str(part).startswith("function-"):
            out += f".{part}"
    return out


def validate(resource: Any, expected_type: str | None = None) -> None:
    """Raise :class:`FhirError` 400 (with element paths) unless ``resource`` is valid R4 JSON."""
    if not isinstance(resource, dict):
        raise FhirError(400, "A resource must be a JSON object", code="structure")
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str) or rtype not in known_types():
        raise FhirError(
            400, f"Unknown or missing resourceType {rtype!r}", code="structure", expression=["resourceType"]
        )
    if expected_type and rtype != expected_type:
        raise FhirError(
            400,
            f"Resource type {rtype} does not match the URL type {expected_type}",
            code="structure",
            expression=["resourceType"],
        )
    rid = resource.get("id")
    if rid is not None and (not isinstance(rid, str) or not ID_RE.match(rid)):
        raise FhirError(400, f"Invalid resource id {rid!r}", code="value", expression=[f"{rtype}.id"])
    for i, inner in enumerate(resource.get("contained") or []):
        inner_type = inner.get("resourceType") if isinstance(inner, dict) else None
        if not isinstance(inner_type, str) or inner_type not in known_types():
            raise FhirError(400, f"Contained resource {i} has an unknown or missing resourceType {inner_type!r}",
                            code="structure", expression=[f"{rtype}.contained[{i}].resourceType"])
    if rtype in R4_ONLY_TYPES or rtype in ("DomainResource", "Resource"):
        return
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    try:
        cls = get_fhir_model_class(rtype)
    except (KeyError, ValueError):
        return
    if fastcheck.surely_valid(cls, resource):  # agrees with pydantic; only failures need the models
        return
    _install_memo()
    token = _MEMO_ON.set(True)
    try:
        cls.model_validate(resource)
    except ValidationError as err:
        errors = err.errors()
        issues = [
            {
                "severity": "error",
                "code": "structure",
                "diagnostics": e["msg"],
                "expression": [_path(rtype, e["loc"])],
            }
            for e in errors[1:20]
        ]
        first = errors[0]
        raise FhirError(
            400,
            f"{_path(rtype, first['loc'])}: {first['msg']}",
            code="structure",
            expression=[_path(rtype, first["loc"])],
            issues=issues,
        ) from None
    except (TypeError, ValueError) as err:
        raise FhirError(400, f"Invalid {rtype}: {err}", code="structure") from None
    finally:
        _MEMO_ON.reset(token)


# Memo of nested-element validation. fhir_core validates every complex element (Coding, Reference,
# Period...) by calling ``FhirBase.fhir_model_validator(value, model_class)``, a pure function of
# its arguments that returns a model instance or raises. Resources repeat the same elements (codes,
# the subject reference, the encounter reference): in the Synthea set 85 % of the nested validations
# have been seen before. While :func:`validate` runs (and only then: other users of fhir.resources
# in the process get the library's own behaviour), a successful result is remembered by
# (validator class, model class, JSON text of the value); failures are never remembered, so error
# reports are unchanged. The instances are only read by the enclosing model, which is thrown away.
_MEMO: dict[tuple[Any, Any, str], Any] = {}
_MEMO_MAX = 20_000  # entries; the memo is emptied when full
_MEMO_ON: ContextVar[bool] = ContextVar("smartcare_fhir_validation_memo", default=False)


@lru_cache(maxsize=1)
def _install_memo() -> None:
    from fhir_core.types import FhirBase

    original = FhirBase.__dict__["fhir_model_validator"].__func__
    if getattr(original, "smartcare_memo", False):  # installed already (two threads racing here)
        return

    def fhir_model_validator(cls, value, model_klass):
        if type(value) is not dict or not _MEMO_ON.get():
            return original(cls, value, model_klass)
        try:
            key = (cls, model_klass, json.dumps(value))
        except (TypeError, ValueError):  # not plain JSON: validate without the memo
            return original(cls, value, model_klass)
        hit = _MEMO.get(key)
        if hit is None:
            hit = original(cls, value, model_klass)
            if len(_MEMO) >= _MEMO_MAX:
                _MEMO.clear()
            _MEMO[key] = hit
        return hit

    fhir_model_validator.smartcare_memo = True
    FhirBase.fhir_model_validator = classmethod(fhir_model_validator)
