"""Drug-drug interaction checking against the ONC high-priority and non-interruptive lists.

Knowledge: Phansalkar S et al., "High-priority drug-drug interactions for use in electronic health
records", JAMIA 2012;19:735-743, and "Drug-drug interactions that should be non-interruptive in order to
reduce alert fatigue in EHRs", JAMIA 2013;20:489-493, as ingredient pairs mapped to DrugBank by Ayvaz S et
al., J Biomed Inform 2015;55:206-217 (``hospital/ddi-onc-pddi``). Medications are resolved to ingredients
by ``rxnorm.py``; each hit becomes a FHIR R4 DetectedIssue (FHIR R4 §DetectedIssue).
"""

from __future__ import annotations

import csv
import itertools
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from smartcare.core.data import dataset_path
from smartcare.hospital.cds import rxnorm
from smartcare.hospital.cds.fhir_inputs import MED_TYPES, flatten, ref

ONC_CITATIONS = {
    "high_priority": "Phansalkar S et al. High-priority drug-drug interactions for use in electronic health records. "
    "JAMIA 2012;19(5):735-743.",
    "non_interruptive": "Phansalkar S et al. Drug-drug interactions that should be non-interruptive in order to reduce "
    "alert fatigue in electronic health records. JAMIA 2013;20(3):489-493.",
}
MAPPING_CITATION = (
    "Ayvaz S et al. Toward a complete dataset of drug-drug interaction information from publicly "
    "available sources. J Biomed Inform 2015;55:206-217."
)
SEVERITY = {"high_priority": "high", "non_interruptive": "low"}


@dataclass(frozen=True)
class PairRecord:
    drug1: str
    drug2: str
    drugbank1: str
    drugbank2: str
    onc_list: str


@dataclass
class Interaction:
    """One interacting pair found in a medication list."""

    ingredient_a: str
    ingredient_b: str
    severity: str  # high | moderate | low (FHIR DetectedIssue.severity)
    source: str  # e.g. "onc:high_priority" or "pddi-cds:warfarin-nsaids"
    evidence: list[str]
    references: list[str] = field(default_factory=list)
    detail: str = ""
    drugbank: tuple[str, str] = ("", "")


@cache
def onc_pairs(root: str | None = None) -> dict[frozenset[str], PairRecord]:
    """ONC pairs keyed by the frozenset of lower-case ingredient names (high priority wins on overlap)."""
    base = Path(dataset_path("hospital/ddi-onc-pddi", root))
    out: dict[frozenset[str], PairRecord] = {}
    for fname in ("onc_non_interruptive_pairs.csv", "onc_high_priority_pairs.csv"):
        with (base / fname).open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                a, b = row["drug1_name"].strip().lower(), row["drug2_name"].strip().lower()
                if a == b:
                    continue
                out[frozenset((a, b))] = PairRecord(
                    a, b, row["drug1_drugbank_id"], row["drug2_drugbank_id"], row["onc_list"]
                )
    return out


def _ingredients(resources: Iterable[Mapping]) -> list[tuple[rxnorm.Ingredient, Mapping]]:
    out = []
    for res in resources:
        for ing in rxnorm.resolve_resource(res):
            out.append((ing, res))
    return out


def check_medications(resources, *, include_non_interruptive: bool = True) -> list[Interaction]:
    """Interacting ingredient pairs among the medication resources in ``resources`` (any FHIR shape).

    Non-systemic products (ophthalmic, topical ...) are still checked but the severity drops one level.
    Returns one Interaction per distinct ingredient pair, references naming the resources involved.
    """
    meds = [r for r in flatten(resources) if r.get("resourceType") in MED_TYPES]
    pairs = onc_pairs()
    found: dict[frozenset[str], Interaction] = {}
    for (ia, ra), (ib, rb) in itertools.combinations(_ingredients(meds), 2):
        if ia.name == ib.name:
            continue
        key = frozenset((ia.name, ib.name))
        rec = pairs.get(key)
        if rec is None or (rec.onc_list == "non_interruptive" and not include_non_interruptive):
            continue
        severity = SEVERITY[rec.onc_list]
        if severity == "high" and not (ia.systemic and ib.systemic):
            severity = "moderate"
        hit = found.get(key)
        if hit is None:
            hit = found[key] = Interaction(
                ia.name,
                ib.name,
                severity,
                f"onc:{rec.onc_list}",
                [ONC_CITATIONS[rec.onc_list], MAPPING_CITATION],
                detail=f"{ia.name} + {ib.name}: ONC {rec.onc_list.replace('_', '-')} interaction "
                f"({'interruptive alert' if rec.onc_list == 'high_priority' else 'informational, do not interrupt'}).",
                drugbank=(rec.drugbank1, rec.drugbank2),
            )
        for r in (ra, rb):
            if ref(r) not in hit.references:
                hit.references.append(ref(r))
    order = {"high": 0, "moderate": 1, "low": 2}
    return sorted(found.values(), key=lambda i: (order[i.severity], i.ingredient_a, i.ingredient_b))


def detected_issue(interaction: Interaction, patient: str | None = None, issue_id: str | None = None) -> dict:
    """A FHIR R4 DetectedIssue for one interaction (status preliminary, code DRG drug interaction alert)."""
    issue = {
        "resourceType": "DetectedIssue",
        "id": issue_id or str(uuid.uuid4()),
        "status": "preliminary",
        "code": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "DRG",
                    "display": "Drug Interaction Alert",
                }
            ]
        },
        "severity": interaction.severity,
        "implicated": [{"reference": r} for r in interaction.references if "/" in r],
        "detail": interaction.detail
        or f"Potential interaction: {interaction.ingredient_a} + {interaction.ingredient_b}",
        "reference": "https://www.healthit.gov/topic/safety/drug-drug-interactions",
        "evidence": [{"detail": [{"display": e}]} for e in interaction.evidence],
        "extension": [
            {
                "url": "https://smartcare.example.org/fhir/StructureDefinition/ddi-source",
                "valueString": interaction.source,
            }
        ],
    }
    if patient:
        issue["patient"] = {"reference": patient if "/" in patient else f"Patient/{patient}"}
    if not issue["implicated"]:
        del issue["implicated"]
    return issue
