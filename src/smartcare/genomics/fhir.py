"""A called variant as a FHIR R4 Observation shaped per the HL7 Genomics Reporting IG "Variant" profile.

Plain dicts only (no import of the hospital package); the hospital FHIR store accepts them as JSON.
Components use the IG's LOINC codes: 48013-7 reference sequence, 62374-4 assembly, 92822-6 coordinate
system (1-based character counting, LA30102-0), 81254-5 allele start-end, 69547-8 ref allele, 69551-0 alt
allele, 53034-5 allelic state, 81258-6 allele fraction, 82121-5 allelic read depth, 48002-0 source class.
"""

from __future__ import annotations

from typing import Any

from smartcare.core.errors import SmartcareError

VARIANT_PROFILE = "http://hl7.org/fhir/uv/genomics-reporting/StructureDefinition/variant"
LOINC = "http://loinc.org"


def _cc(code: str, display: str, system: str = LOINC) -> dict:
    return {"coding": [{"system": system, "code": code, "display": display}]}


def _component(code: str, display: str, **value: Any) -> dict:
    return {"code": _cc(code, display), **value}


def to_fhir_observation(record: Any, *, alt_index: int = 1, patient: str | None = None,
                        assembly: tuple[str, str] | None = None) -> dict:
    """FHIR R4 Observation (dict) for one alt allele of a called variant.

    Args:
        record: a ``VariantCall`` or a dict with contig, pos (0-based), ref, alts, gt, and optionally
            ad, dp, gq, qual, filter (as from ``vcf.read_calls``).
        alt_index: which alt (1-based) the Observation describes.
        patient: Patient id for ``subject``; omitted when None.
        assembly: (LOINC answer code, display) of the assembly, e.g. ("LA14029-5", "GRCh37").
    Raises:
        SmartcareError: the record lacks a field, or ``alt_index`` is not one of its alts.
    """
    r = record.to_dict() if hasattr(record, "to_dict") else dict(record)
    try:
        contig, pos, ref, alts, gt = r["contig"], int(r["pos"]), r["ref"], list(r["alts"]), tuple(r["gt"])
    except (KeyError, TypeError, ValueError) as err:
        raise SmartcareError(f"variant record lacks contig/pos/ref/alts/gt: {err}") from err
    if not 1 <= alt_index <= len(alts):
        raise SmartcareError(f"alt_index {alt_index} out of range: the record has {len(alts)} alt(s)")
    copies = sum(1 for a in gt if a == alt_index)
    if copies == 0:
        raise SmartcareError(f"genotype {gt} does not carry alt {alt_index}; nothing to report as present")
    state = ("LA6705-3", "Homozygous") if copies == 2 else ("LA6706-1", "Heterozygous")
    components = [
        _component("48013-7", "Genomic reference sequence [ID]", valueCodeableConcept={"text": contig}),
        _component("92822-6", "Genomic coordinate system [Type]",
                   valueCodeableConcept=_cc("LA30102-0", "1-based character counting")),
        _component("81254-5", "Genomic allele start-end",
                   valueRange={"low": {"value": pos + 1}, "high": {"value": pos + len(ref)}}),
        _component("69547-8", "Genomic ref allele [ID]", valueString=ref),
        _component("69551-0", "Genomic alt allele [ID]", valueString=alts[alt_index - 1]),
        _component("53034-5", "Allelic state", valueCodeableConcept=_cc(*state)),
        _component("48002-0", "Genomic source class [Type]",
                   valueCodeableConcept=_cc("LA6683-2", "Germline")),
    ]
    if assembly:
        components.insert(1, _component("62374-4", "Human reference sequence assembly version",
                                        valueCodeableConcept=_cc(*assembly)))
    ad = list(r.get("ad") or [])
    if len(ad) > alt_index and sum(ad) > 0:
        components.append(_component("81258-6", "Sample variant allelic frequency [NFr]",
                                     valueQuantity={"value": round(ad[alt_index] / sum(ad), 4),
                                                    "system": "http://unitsofmeasure.org", "code": "1"}))
        components.append(_component("82121-5", "Allelic read depth",
                                     valueQuantity={"value": int(ad[alt_index]),
                                                    "system": "http://unitsofmeasure.org", "code": "1"}))
    obs = {
        "resourceType": "Observation",
        "meta": {"profile": [VARIANT_PROFILE]},
        "status": "final",
        "category": [
            _cc("laboratory", "Laboratory", "http://terminology.hl7.org/CodeSystem/observation-category"),
            _cc("GE", "Genetics", "http://terminology.hl7.org/CodeSystem/v2-0074"),
        ],
        "code": _cc("69548-6", "Genetic variant assessment"),
        "valueCodeableConcept": _cc("LA9633-4", "Present"),
        "component": components,
    }
    notes = [f"{k.upper()}={r[k]}" for k in ("qual", "gq", "dp") if r.get(k) is not None]
    if r.get("filter"):
        notes.append(f"FILTER={r['filter'] if isinstance(r['filter'], str) else ';'.join(r['filter'])}")
    if notes:
        obs["note"] = [{"text": "smartcare variant call: " + ", ".join(notes)}]
    if patient:
        obs["subject"] = {"reference": f"Patient/{patient}"}
    return obs
