"""Demo data for ``make run``: a few patient records in the embedded FHIR store.

With the shared data present, the first Synthea R4 transaction Bundles are loaded; without it, a small
generated set (three patients with vital signs, conditions and medications) is loaded instead. Loading
is skipped when the store already holds patients, so ``make run`` can be repeated.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from smartcare.core.data import dataset_path
from smartcare.core.errors import DatasetMissingError
from smartcare.core.settings import Settings
from smartcare.hospital.fhir.db import engine_for
from smartcare.hospital.fhir.loader import load_bundle
from smartcare.hospital.fhir.searchset import search_bundle

# LOINC codes of the vital signs in the generated records (value, unit).
_VITALS = {
    "9279-1": ("Respiratory rate", "/min"), "59408-5": ("Oxygen saturation", "%"),
    "8480-6": ("Systolic blood pressure", "mm[Hg]"), "8867-4": ("Heart rate", "/min"),
    "8310-5": ("Body temperature", "Cel"),
}
_PATIENTS = [
    # name, gender, birth date, vitals in _VITALS order, SNOMED conditions, RxNorm medications
    ("Ada Demo", "female", "1948-03-02", (24, 93, 98, 112, 38.6), [("49436004", "Atrial fibrillation")],
     [("855332", "warfarin sodium 5 MG Oral Tablet")]),
    ("Ben Demo", "male", "1975-11-20", (16, 98, 124, 72, 36.8), [("38341003", "Hypertensive disorder")], []),
    ("Cleo Demo", "female", "1990-06-14", (20, 95, 105, 96, 37.9), [("233604007", "Pneumonia")], []),
]


def generated_bundle(today: dt.date | None = None) -> dict[str, Any]:
    """A transaction Bundle of the generated demo patients (no shared data needed)."""
    when = (today or dt.date.today()).isoformat()
    entries = []

    def add(resource: dict[str, Any]) -> str:
        full = f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(resource, sort_keys=True))}"
        entries.append({"fullUrl": full, "resource": resource,
                        "request": {"method": "POST", "url": resource["resourceType"]}})
        return full

    for name, gender, birth, vitals, conditions, meds in _PATIENTS:
        given, family = name.split()
        pid = add({"resourceType": "Patient", "name": [{"given": [given], "family": family}],
                   "gender": gender, "birthDate": birth,
                   "identifier": [{"system": "urn:smartcare:demo", "value": name.replace(" ", "-").lower()}]})
        for (code, (display, unit)), value in zip(_VITALS.items(), vitals, strict=True):
            add({"resourceType": "Observation", "status": "final", "subject": {"reference": pid},
                 "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                           "code": "vital-signs"}]}],
                 "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}]},
                 "effectiveDateTime": when,
                 "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org",
                                   "code": unit}})
        for code, display in conditions:
            add({"resourceType": "Condition", "subject": {"reference": pid},
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": display}]}})
        for code, display in meds:
            add({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                 "subject": {"reference": pid},
                 "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                           "code": code, "display": display}]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def synthea_bundles(settings: Settings, limit: int) -> list[Path]:
    """The first ``limit`` Synthea bundles of the shared data; raises DatasetMissingError without it."""
    folder = dataset_path("hospital/synthea-r4-smart-sample", settings.data) / "bundles"
    return sorted(folder.glob("*.json"))[:limit]


def load_demo(settings: Settings, limit: int = 5) -> dict[str, Any]:
    """Fill the store with demo patients unless it already has some; returns what was done."""
    url = settings.resolved_database_url()
    if url.startswith("sqlite:///"):
        settings.var.mkdir(parents=True, exist_ok=True)
    engine = engine_for(url)
    with Session(engine) as session:
        existing = search_bundle(session, "Patient", [("_summary", "count"), ("_total", "accurate")], "")
        existing = existing.get("total", 0)
    if existing:
        return {"source": "existing", "patients": existing, "resources": 0}
    try:
        bundles = [json.loads(p.read_text()) for p in synthea_bundles(settings, limit)]
        source = "synthea"
    except DatasetMissingError:
        bundles, source = [generated_bundle()], "generated"
    total = 0
    with Session(engine) as session:
        for bundle in bundles:
            total += sum(load_bundle(session, bundle).values())
    # Embed the loaded notes and narratives once, so the first note search is immediate.
    from smartcare.hospital.nlp.notesync import sync
    from smartcare.hospital.nlp.vectorstore import VectorStore, minilm

    notes = sync(VectorStore(engine, minilm()))
    return {"source": source, "bundles": len(bundles), "resources": total, "notes_indexed": notes["embedded"]}
