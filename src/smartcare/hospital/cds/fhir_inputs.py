"""Read score inputs from FHIR R4 JSON resources (dicts), keeping the references each value came from.

Observations are matched by LOINC (``tables/fhir_inputs.json``), the most recent one wins, and values are
converted to the input's unit by UCUM code. Conditions are matched by SNOMED CT code or ICD-10 prefix
(refuted / entered-in-error ones are ignored; ``within_days`` entries need an onset or recorded date that
recent). In-progress Procedures are matched by SNOMED CT (mechanical ventilation, CPAP). Medications are
matched by ingredient class through ``rxnorm.py``; vasoactive dose rates (ug/kg/min, SOFA) come from
MedicationAdministration ``dosage.rateQuantity``. Patient gives ``age`` (at ``at``, default today) and ``sex``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

from smartcare.hospital.cds import rxnorm
from smartcare.hospital.cds.scores import Evidence

TABLES = Path(__file__).with_name("tables")
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
ICD10 = ("http://hl7.org/fhir/sid/icd-10-cm", "http://hl7.org/fhir/sid/icd-10")
MED_TYPES = ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration")

CONVERT = {
    "f_to_c": lambda v: (v - 32) * 5 / 9,
    "bun_mmol_to_mg": lambda v: v * 2.8,
    "creat_umol_to_mg": lambda v: v / 88.4,
    "bili_umol_to_mg": lambda v: v / 17.1,
    "glucose_mmol_to_mg": lambda v: v * 18.0,
    "div10": lambda v: v / 10,
    "x1000": lambda v: v * 1000,
    "x100": lambda v: v * 100,
    "in_to_cm": lambda v: v * 2.54,
    "lb_to_kg": lambda v: v * 0.453592,
    "kpa_to_mmhg": lambda v: v * 7.50062,
    "div1000": lambda v: v / 1000,
    "same": lambda v: v,
}


@cache
def mapping() -> dict:
    return json.loads((TABLES / "fhir_inputs.json").read_text(encoding="utf-8"))


@cache
def _loinc_index() -> dict[str, str]:
    return {code: name for name, spec in mapping()["observations"].items() for code in spec.get("loinc", [])}


def flatten(obj: Any) -> list[dict]:
    """All resources in ``obj``: a resource, a Bundle (entries unwrapped, nested Bundles too) or a list."""
    out: list[dict] = []
    if isinstance(obj, list):
        for item in obj:
            out.extend(flatten(item))
    elif isinstance(obj, Mapping):
        if obj.get("resourceType") == "Bundle" or "entry" in obj and "resourceType" not in obj:
            for e in obj.get("entry") or []:
                out.extend(flatten(e.get("resource", e) if isinstance(e, Mapping) else e))
        elif "resourceType" in obj:
            out.append(dict(obj))
        elif isinstance(obj.get("resource"), Mapping):
            out.extend(flatten(obj["resource"]))
    return out


def ref(resource: Mapping) -> str:
    rid = resource.get("id")
    return f"{resource.get('resourceType')}/{rid}" if rid else str(resource.get("resourceType"))


def when(resource: Mapping) -> str:
    """Sortable clinical time of a resource ('' if none)."""
    for key in ("effectiveDateTime", "issued", "authoredOn", "recordedDate", "onsetDateTime", "whenHandedOver"):
        if resource.get(key):
            return str(resource[key])
    period = resource.get("effectivePeriod") or {}
    return str(period.get("start") or "")


def codes(concept: Mapping | None, system: str | tuple[str, ...]) -> list[str]:
    systems = (system,) if isinstance(system, str) else system
    if not isinstance(concept, Mapping):  # DSTU3 plain-code fields, absent values
        return []
    return [str(c.get("code")) for c in (concept or {}).get("coding", []) if c.get("system") in systems]


def age_at(birth: str, at: date) -> int:
    b = date.fromisoformat(birth[:10]) if len(birth) >= 10 else date(int(birth[:4]), 7, 1)
    return at.year - b.year - ((at.month, at.day) < (b.month, b.day))


def _quantity(name: str, q: Mapping) -> float | None:
    if q.get("value") is None:
        return None
    v = float(q["value"])
    conv = mapping()["observations"][name].get("convert", {})
    unit = q.get("code") or q.get("unit")
    if unit in conv:
        v = CONVERT[conv[unit]](v)
    return v


def _observation_values(obs: Mapping) -> list[tuple[str, Any]]:
    """(input name, value) pairs carried by one Observation, including panel components."""
    index = _loinc_index()
    out: list[tuple[str, Any]] = []
    parts = [obs] + list(obs.get("component") or [])
    for part in parts:
        for code in codes(part.get("code"), LOINC):
            name = index.get(code)
            if name is None:
                continue
            spec = mapping()["observations"][name]
            if "answers" in spec and part.get("valueCodeableConcept"):
                for c in part["valueCodeableConcept"].get("coding", []):
                    if c.get("code") in spec["answers"]:
                        out.append((name, spec["answers"][c["code"]]))
            elif part.get("valueQuantity"):
                v = _quantity(name, part["valueQuantity"])
                if v is not None:
                    out.append((name, v))
    return out


def _recent(resource: Mapping, at: date, days: int | None) -> bool:
    if days is None:
        return True
    onset = parse_date(resource.get("onsetDateTime") or resource.get("recordedDate"))
    return onset is not None and 0 <= (at - onset).days <= days


def _condition_matches(cond: Mapping, at: date | None = None) -> list[str]:
    vs = cond.get("verificationStatus")
    status = [vs] if isinstance(vs, str) else codes(vs, "http://terminology.hl7.org/CodeSystem/condition-ver-status")
    if status and status[0] in ("refuted", "entered-in-error"):
        return []
    sn = set(codes(cond.get("code"), SNOMED))
    icd = codes(cond.get("code"), ICD10)
    out = []
    for name, spec in mapping()["conditions"].items():
        if sn & set(spec["snomed"]) or any(c.startswith(p) for c in icd for p in spec["icd10"]):
            if _recent(cond, at or date.today(), spec.get("within_days")):
                out.append(name)
    return out


def extract_inputs(resources: Any, at: date | None = None) -> dict[str, Evidence]:
    """Score inputs read from FHIR resources (see module doc); each value keeps its references."""
    at = at or date.today()
    res = flatten(resources)
    out: dict[str, Evidence] = {}
    latest: dict[str, str] = {}
    for r in res:
        rt = r.get("resourceType")
        if rt == "Patient":
            if r.get("birthDate"):
                out["age"] = Evidence(age_at(r["birthDate"], at), (ref(r),), f"birthDate {r['birthDate']}")
            if r.get("gender") in ("male", "female"):
                out["sex"] = Evidence(r["gender"], (ref(r),))
        elif rt == "Observation" and r.get("status") not in ("entered-in-error", "cancelled"):
            for name, value in _observation_values(r):
                t = when(r)
                if name not in latest or t >= latest[name]:
                    latest[name] = t
                    out[name] = Evidence(value, (ref(r),), t)
        elif rt == "Condition":
            for name in _condition_matches(r, at):
                prev = out.get(name)
                refs = (prev.references if prev else ()) + (ref(r),)
                out[name] = Evidence(True, refs)
        elif rt == "Procedure" and r.get("status") == "in-progress":
            sn = set(codes(r.get("code"), SNOMED))
            for name, spec in mapping()["procedures"].items():
                if not name.startswith("_") and sn & set(spec):
                    out[name] = Evidence(True, (ref(r),))
    meds = [
        r
        for r in res
        if r.get("resourceType") in MED_TYPES and r.get("status") not in ("entered-in-error", "cancelled", "stopped")
    ]
    by_class = rxnorm.classes_of_resources(meds)
    for name, classes in mapping()["medications"].items():
        hits = [m for c in classes for m in by_class.get(c, [])]
        if hits:
            out[name] = Evidence(True, tuple(dict.fromkeys(ref(m) for m in hits)))
    out.update(_dose_rates(meds))
    _derive(out)
    return out


def _dose_rates(meds: list[dict]) -> dict[str, Evidence]:
    """Latest vasoactive infusion rate (ug/kg/min) per ingredient from MedicationAdministration resources."""
    wanted = {ing: name for name, ing in mapping()["medication_rates"].items() if not name.startswith("_")}
    out: dict[str, Evidence] = {}
    latest: dict[str, str] = {}
    for m in meds:
        if m.get("resourceType") != "MedicationAdministration":
            continue
        rate = (m.get("dosage") or {}).get("rateQuantity") or {}
        unit = str(rate.get("code") or rate.get("unit") or "").replace("mcg", "ug")
        if rate.get("value") is None or unit != "ug/kg/min":
            continue
        for ing in rxnorm.resolve_resource(m):
            name = wanted.get(ing.name)
            t = when(m)
            if name and (name not in latest or t >= latest[name]):
                latest[name] = t
                out[name] = Evidence(float(rate["value"]), (ref(m),), t)
    return out


def _derive(out: dict[str, Evidence]) -> None:
    """Inputs computed from others: oxygen use from O2 flow / FiO2."""
    flow, fio2 = out.get("o2_flow"), out.get("fio2")
    if flow is not None or fio2 is not None:
        on = (flow is not None and flow.value > 0) or (fio2 is not None and fio2.value > 21)
        refs = (flow.references if flow else ()) + (fio2.references if fio2 else ())
        out["o2"] = Evidence("oxygen" if on else "air", refs)


def parse_date(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).date()
    except ValueError:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None


def score_from_fhir(name: str, resources: Any, at: date | None = None, extra: Mapping[str, Any] | None = None):
    """Compute score ``name`` from FHIR resources (plus ``extra`` inputs, e.g. ``news2_scale``)."""
    from smartcare.hospital.cds.calculators import calculate

    inputs: dict[str, Any] = dict(extract_inputs(resources, at))
    inputs.update(extra or {})
    return calculate(name, inputs)
