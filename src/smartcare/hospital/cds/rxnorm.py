"""Resolve medication codings (RxNorm clinical drugs, ingredients or free text) to ingredients and classes.

Resolution order for one ``CodeableConcept``:

1. an RxNorm code found in the HL7 PDDI-CDS IG value sets (``pddi-cds-hooks/pddi_valueset_codes.csv``,
   CC0) when that dataset is present: value set ``Valueset_ibuprofen`` names the ingredient;
2. an RxNorm ingredient code listed in ``tables/ingredients.json``;
3. the coding display / concept text, matched word-wise against known ingredient names (the curated
   vocabulary plus, when present, the ingredient names of the ONC DDI lists).

The dose form in the display ("Topical Gel", "Ophthalmic Solution") sets the route; ophthalmic, otic and
topical products are flagged ``systemic=False`` (PDDI-CDS IG, Warfarin + NSAIDs use case, footnote 1).
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from smartcare.core.data import dataset_path
from smartcare.core.errors import DatasetMissingError

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
TABLES = Path(__file__).with_name("tables")


@dataclass(frozen=True)
class Ingredient:
    """An ingredient of an ordered product: name, RxNorm IN code if known, classes, and route."""

    name: str
    rxcui: str | None
    classes: tuple[str, ...]
    systemic: bool = True
    route: str = "systemic"


@cache
def vocabulary() -> dict:
    return json.loads((TABLES / "ingredients.json").read_text(encoding="utf-8"))


@cache
def _classes_of() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for cls, names in vocabulary()["classes"].items():
        for n in names:
            out.setdefault(n, []).append(cls)
    return {k: tuple(v) for k, v in out.items()}


@cache
def valueset_codes(root: str | None = None) -> dict[str, tuple[str, str]]:
    """RxNorm code -> (ingredient name, display) from the PDDI-CDS value sets; empty if the data is absent."""
    try:
        path = dataset_path("hospital/pddi-cds-hooks", root) / "pddi_valueset_codes.csv"
    except DatasetMissingError:
        return {}
    syn = vocabulary()["synonyms"]
    out: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["system"] != RXNORM:
                continue
            name = row["valueset_name"].removeprefix("Valueset_").removesuffix("_exclude").replace("_", " ").lower()
            out.setdefault(row["code"], (syn.get(name, name), row["display"]))
    return out


@cache
def valueset(name: str, root: str | None = None) -> tuple[str, ...]:
    """Codes (any code system) of one PDDI-CDS IG value set, e.g. ``Valueset_Hx_UGIB_snomed``; () if absent."""
    try:
        path = dataset_path("hospital/pddi-cds-hooks", root) / "pddi_valueset_codes.csv"
    except DatasetMissingError:
        return ()
    with path.open(encoding="utf-8") as fh:
        return tuple(r["code"] for r in csv.DictReader(fh) if r["valueset_name"] == name)


@cache
def onc_names(root: str | None = None) -> frozenset[str]:
    """Ingredient names in the ONC DDI lists (lower case); empty if the dataset is absent."""
    try:
        base = dataset_path("hospital/ddi-onc-pddi", root)
    except DatasetMissingError:
        return frozenset()
    names: set[str] = set()
    for fname in ("onc_high_priority_pairs.csv", "onc_non_interruptive_pairs.csv"):
        with (base / fname).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                names.add(row["drug1_name"].strip().lower())
                names.add(row["drug2_name"].strip().lower())
    return frozenset(names)


@cache
def _name_pattern() -> re.Pattern:
    names = set(_classes_of()) | set(vocabulary()["synonyms"]) | set(vocabulary()["rxcui"]) | set(onc_names())
    names |= {"acetaminophen"}
    alts = sorted((re.escape(n) for n in names if len(n) > 2), key=len, reverse=True)
    return re.compile(r"\b(" + "|".join(alts) + r")\b", re.IGNORECASE)


def route_of(display: str) -> str:
    """Route implied by a clinical-drug display: one of the non-systemic routes or ``systemic``."""
    low = display.lower()
    for route in vocabulary()["non_systemic_routes"]:
        if route in low:
            return route
    if re.search(r"\b(gel|cream|ointment|lotion|patch)\b", low) and "oral" not in low:
        return "topical"
    return "systemic"


def make_ingredient(name: str, display: str = "") -> Ingredient:
    name = vocabulary()["synonyms"].get(name.lower(), name.lower())
    route = route_of(display) if display else "systemic"
    return Ingredient(name, vocabulary()["rxcui"].get(name), _classes_of().get(name, ()), route == "systemic", route)


def names_in_text(text: str) -> list[str]:
    """Known ingredient names found as whole words in ``text`` (normalised, de-duplicated)."""
    syn = vocabulary()["synonyms"]
    out: list[str] = []
    for m in _name_pattern().finditer(text):
        n = syn.get(m.group(1).lower(), m.group(1).lower())
        if n not in out:
            out.append(n)
    return out


def resolve_concept(concept: Mapping | None) -> list[Ingredient]:
    """Ingredients of a FHIR CodeableConcept (``medicationCodeableConcept``); [] when unresolvable."""
    if not concept:
        return []
    codings = concept.get("coding") or []
    text = " ".join([concept.get("text") or ""] + [c.get("display") or "" for c in codings]).strip()
    vs = valueset_codes()
    by_code = {v: k for k, v in vocabulary()["rxcui"].items()}
    for c in codings:
        code = str(c.get("code", "")).strip()
        if code in vs:
            name, display = vs[code]
            return [make_ingredient(name, c.get("display") or display)]
        if code in by_code:
            return [make_ingredient(by_code[code], text)]
    return [make_ingredient(n, text) for n in names_in_text(text)]


def resolve_resource(resource: Mapping) -> list[Ingredient]:
    """Ingredients of a MedicationRequest / MedicationStatement / -Dispense / -Administration."""
    concept = resource.get("medicationCodeableConcept")
    if concept is None and isinstance(resource.get("medication"), Mapping):
        concept = resource["medication"].get("concept")  # R5-style CodeableReference
    return resolve_concept(concept)


def classes_of_resources(resources: Iterable[Mapping]) -> dict[str, list[Mapping]]:
    """Class name -> the medication resources whose (systemic) ingredients fall in it."""
    out: dict[str, list[Mapping]] = {}
    for res in resources:
        for ing in resolve_resource(res):
            if not ing.systemic:
                continue
            for cls in ing.classes:
                out.setdefault(cls, []).append(res)
    return out
