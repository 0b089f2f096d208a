"""Table-driven scores: published test vectors, boundaries, missing inputs, FHIR extraction."""

from __future__ import annotations

import json

import pytest

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.calculators import calculate, list_calculators
from smartcare.hospital.cds.fhir_inputs import extract_inputs, score_from_fhir
from smartcare.hospital.cds.scores import Evidence, UnknownScoreError, compute

ALIAS = {
    "scale": "news2_scale",
    "antiplatelet": "antiplatelet_or_nsaid",
    "renal": "renal_disease",
    "liver": "liver_disease",
    "urea_mmol_L": "urea_mmol_l",
    "bun_mg_dL": "bun_mg_dl",
}
SCORES = ["NEWS2", "qSOFA", "CHA2DS2-VASc", "HAS-BLED", "CURB-65"]


@pytest.fixture(scope="module")
def definitions(shared_data):
    return json.loads((shared_data / "hospital/risk-score-definitions/risk_scores.json").read_text())


def test_every_hand_computed_vector_passes(definitions):
    n = 0
    for name in SCORES:
        for vec in definitions[name]["test_vectors"]:
            result = compute(name, {ALIAS.get(k, k): v for k, v in vec["inputs"].items()})
            assert result.total == vec["expected_total"], (name, vec)
            if "expected_risk" in vec:
                assert result.band == vec["expected_risk"], (name, vec)
            if "positive" in vec:
                assert (result.band == "positive") is vec["positive"], (name, vec)
            n += 1
    assert n == 22


@pytest.mark.parametrize(
    "param,key", [("rr", "rr"), ("hr", "hr"), ("sbp", "sbp"), ("temp", "temp"), ("spo2_scale1", "spo2")]
)
def test_news2_boundaries(definitions, param, key):
    crit = {
        "rr": "respiration_rate",
        "hr": "pulse",
        "sbp": "systolic_bp",
        "temp": "temperature",
        "spo2_scale1": "spo2_scale1",
    }[param]
    for value, points in definitions["NEWS2"]["boundary_checks"][param].items():
        result = compute("NEWS2", {key: float(value)})
        got = {c.id: c.points for c in result.criteria}[crit]
        assert got == points, (param, value)


def test_missing_inputs_are_listed_with_assumptions():
    result = compute("NEWS2", {"rr": 18})
    assert set(result.missing) >= {"spo2", "sbp", "hr", "temp"}
    assert any("o2" in a and "air" in a for a in result.assumptions)
    assert result.total == 0 and result.band == "low"
    d = result.to_dict()
    assert d["citation"].startswith("Royal College of Physicians")
    assert {c["id"] for c in d["criteria"]} >= {"respiration_rate", "temperature"}


def test_news2_red_score_and_scale2_air():
    red = compute("NEWS2", {"rr": 16, "spo2": 97, "sbp": 120, "hr": 80, "temp": 37, "acvpu": "voice"})
    assert (red.total, red.band) == (3, "low-medium")
    air = compute("NEWS2", {"news2_scale": 2, "o2": "air", "spo2": 97, "rr": 16, "sbp": 120, "hr": 80, "temp": 37})
    assert air.total == 0


def test_cha2ds2_vasc_interpretation_depends_on_sex():
    assert compute("CHA2DS2-VASc", {"age": 60, "sex": "female"}).band == "low"
    assert compute("CHA2DS2-VASc", {"age": 60, "sex": "male", "hypertension": True}).band == "intermediate"


def test_unknown_score_and_bad_choice():
    with pytest.raises(UnknownScoreError, match="unknown"):
        calculate("APGAR-9000", {})
    with pytest.raises(SmartcareError, match="not one of"):
        compute("NEWS2", {"acvpu": "sleepy"})
    assert len(list_calculators()) >= 25


def _obs(oid, loinc, value, unit, when="2024-05-01T10:00:00Z", components=None):
    res = {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": loinc}]},
    }
    if value is not None:
        res["valueQuantity"] = {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
    if components:
        res["component"] = components
    return res


def test_news2_from_fhir_observations_with_references():
    bp = _obs(
        "bp",
        "85354-9",
        None,
        None,
        components=[
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": {"value": 88, "code": "mm[Hg]"},
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": {"value": 50, "code": "mm[Hg]"},
            },
        ],
    )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": r}
            for r in [
                {"resourceType": "Patient", "id": "p1", "birthDate": "1950-01-01", "gender": "female"},
                _obs("rr-old", "9279-1", 30, "/min", when="2024-04-01T10:00:00Z"),
                _obs("rr", "9279-1", 26, "/min"),
                _obs("spo2", "59408-5", 91, "%"),
                bp,
                _obs("hr", "8867-4", 135, "/min"),
                _obs("t", "8310-5", 94.6, "[degF]"),
                _obs("o2", "3151-8", 2, "L/min"),
            ]
        ],
    }
    result = score_from_fhir("NEWS2", bundle)
    pts = {c.id: c.points for c in result.criteria}
    assert pts["respiration_rate"] == 3 and pts["temperature"] == 3  # 94.6 F = 34.8 C
    assert pts["air_or_oxygen"] == 2 and pts["systolic_bp"] == 3
    refs = {c.id: c.references for c in result.criteria}
    assert refs["respiration_rate"] == ["Observation/rr"] and refs["systolic_bp"] == ["Observation/bp"]
    assert result.total == 17 and result.band == "high"
    assert "acvpu" in result.missing


def test_cha2ds2_vasc_and_has_bled_from_conditions_and_medications():
    resources = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1949-06-01", "gender": "male"},
        {
            "resourceType": "Condition",
            "id": "htn",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "59621000"}]},
        },
        {
            "resourceType": "Condition",
            "id": "dm",
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "E11.9"}]},
        },
        {
            "resourceType": "Condition",
            "id": "refuted",
            "verificationStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "refuted"}]
            },
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "230690007"}]},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "asa",
            "status": "active",
            "medicationCodeableConcept": {
                "coding": [
                    {
                        "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                        "code": "243670",
                        "display": "aspirin 81 MG Oral Tablet",
                    }
                ]
            },
        },
    ]
    from datetime import date

    inputs = extract_inputs(resources, at=date(2024, 6, 2))
    assert inputs["age"] == Evidence(75, ("Patient/p",), "birthDate 1949-06-01")
    cha = calculate("CHA2DS2-VASc", inputs)
    assert cha.total == 4  # HTN 1 + age>=75 2 + DM 1; refuted stroke ignored
    bled = calculate("HAS-BLED", inputs)
    drugs = {c.id: c for c in bled.criteria}["drugs"]
    assert drugs.points == 1 and drugs.references == ["MedicationRequest/asa"]


def test_formulas_need_their_inputs():
    r = calculate("CKD-EPI", {"creatinine_mg_dl": 1.0, "age": 50})
    assert r.total is None and r.missing == ["sex"]
    r = calculate("CKD-EPI", {"creatinine_mg_dl": 1.0, "age": 50, "sex": "male"})
    assert r.total == pytest.approx(91.7, abs=0.2) and r.band == "G1"
    assert calculate("QTc-Bazett", {"qt_ms": 400, "hr": 60}).total == pytest.approx(400.0)
