"""Table-driven scores: published test vectors, boundaries, missing inputs, FHIR extraction."""

from __future__ import annotations

import json

import pytest

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.calculators import calculate, list_calculators
from smartcare.hospital.cds.fhir_inputs import extract_inputs, score_from_fhir
from smartcare.hospital.cds.medcalc import VECTOR_ALIAS
from smartcare.hospital.cds.scores import Evidence, UnknownScoreError, compute

SCORES = ["NEWS2", "qSOFA", "CHA2DS2-VASc", "HAS-BLED", "CURB-65"]


@pytest.fixture(scope="module")
def definitions(shared_data):
    return json.loads((shared_data / "hospital/risk-score-definitions/risk_scores.json").read_text())


def test_every_hand_computed_vector_passes(definitions):
    n = 0
    for name in SCORES:
        for vec in definitions[name]["test_vectors"]:
            result = compute(name, {VECTOR_ALIAS.get(k, k): v for k, v in vec["inputs"].items()})
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


# ---- SOFA, APACHE II, Caprini: hand-made FHIR inputs and band edges -------------------------------------
SCT, ICD = "http://snomed.info/sct", "http://hl7.org/fhir/sid/icd-10-cm"
RXN = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _cond(rid, system, code, onset=None):
    res = {"resourceType": "Condition", "id": rid, "code": {"coding": [{"system": system, "code": code}]}}
    if onset:
        res["onsetDateTime"] = onset
    return res


def _pts(result):
    return {c.id: c.points for c in result.criteria}


def test_sofa_from_fhir_with_vasopressor_rate_and_ventilation():
    from datetime import date

    resources = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01", "gender": "male"},
        _obs("pao2", "2703-7", 9.0, "kPa"),  # 67.5 mmHg
        _obs("fio2", "3150-0", 60, "%"),  # PaO2/FiO2 = 112.5
        _obs("plt", "777-3", 45, "10*3/uL"),
        _obs("bili", "1975-2", 120, "umol/L"),  # 7.0 mg/dL
        _obs("gcs", "9269-2", 9, "{score}"),
        _obs("cr", "2160-0", 400, "umol/L"),  # 4.5 mg/dL
        {
            "resourceType": "Procedure",
            "id": "vent",
            "status": "in-progress",
            "code": {"coding": [{"system": SCT, "code": "40617009"}]},
        },
        {
            "resourceType": "MedicationAdministration",
            "id": "ne",
            "status": "in-progress",
            "effectiveDateTime": "2026-11-28T07:00:00Z",
            "medicationCodeableConcept": {"coding": [{"system": RXN, "code": "7512", "display": "norepinephrine"}]},
            "dosage": {"rateQuantity": {"value": 0.2, "unit": "ug/kg/min", "code": "ug/kg/min"}},
        },
    ]
    r = score_from_fhir("SOFA", resources, at=date(2026, 11, 28))
    assert _pts(r) == {"respiration": 3, "coagulation": 3, "liver": 3, "cardiovascular": 4, "cns": 3, "renal": 3}
    assert r.total == 19 and r.band == "very high" and "Vincent" in r.citation
    refs = {c.id: c.references for c in r.criteria}
    assert refs["respiration"] == ["Observation/pao2", "Observation/fio2", "Procedure/vent"]
    assert refs["cardiovascular"] == ["MedicationAdministration/ne"]
    assert {c.id: c.value for c in r.criteria}["respiration"]["pf_ratio"] == pytest.approx(112.5, abs=0.01)


@pytest.mark.parametrize(
    "inputs,criterion,points",
    [
        ({"pao2": 120, "fio2": 40}, "respiration", 1),  # P/F 300 is not < 300
        ({"pao2": 119.6, "fio2": 40}, "respiration", 2),
        ({"pao2": 60, "fio2": 40, "mechanical_ventilation": False}, "respiration", 2),  # < 200 without support
        ({"pao2": 60, "fio2": 40, "cpap": True}, "respiration", 3),
        ({"pao2": 39.6, "fio2": 40, "mechanical_ventilation": True}, "respiration", 4),
        ({"dopamine_ug_kg_min": 5}, "cardiovascular", 2),
        ({"dopamine_ug_kg_min": 5.1}, "cardiovascular", 3),
        ({"dobutamine_ug_kg_min": 2, "norepinephrine_ug_kg_min": 0.1}, "cardiovascular", 3),
        ({"epinephrine_ug_kg_min": 0.11}, "cardiovascular", 4),
        ({"sbp": 90, "dbp": 60}, "cardiovascular", 0),  # MAP exactly 70 is not < 70
        ({"sbp": 89, "dbp": 60}, "cardiovascular", 1),
        ({"platelets": 150}, "coagulation", 0),
        ({"platelets": 149}, "coagulation", 1),
        ({"platelets": 19}, "coagulation", 4),
        ({"bilirubin_mg_dl": 1.19}, "liver", 0),
        ({"bilirubin_mg_dl": 12.0}, "liver", 4),
        ({"gcs": 15}, "cns", 0),
        ({"gcs": 6}, "cns", 3),
        ({"gcs": 5}, "cns", 4),
        ({"creatinine_mg_dl": 1.2}, "renal", 1),
        ({"creatinine_mg_dl": 1.0, "urine_output_ml_day": 499}, "renal", 3),
        ({"urine_output_ml_day": 199}, "renal", 4),
    ],
)
def test_sofa_band_edges(inputs, criterion, points):
    assert _pts(calculate("SOFA", inputs))[criterion] == points


def test_sofa_missing_inputs_are_listed():
    r = calculate("SOFA", {"gcs": 15})
    assert r.total == 0 and r.band == "low"
    assert {"platelets", "bilirubin_mg_dl", "creatinine_mg_dl", "urine_output_ml_day"} <= set(r.missing)
    assert any("not recorded" in a for a in r.assumptions)


def test_apache_ii_from_fhir_with_acute_renal_failure_and_derived_aa_gradient():
    from datetime import date

    resources = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1960-06-01", "gender": "female"},  # 66 y: 5
        _obs("t", "8310-5", 39.5, "Cel"),  # 3
        _obs("sbp", "8480-6", 90, "mm[Hg]"),
        _obs("dbp", "8462-4", 50, "mm[Hg]"),  # MAP 63.3: 2
        _obs("hr", "8867-4", 125, "/min"),  # 2
        _obs("rr", "9279-1", 30, "/min"),  # 1
        _obs("fio2", "3150-0", 60, "%"),
        _obs("pao2", "2703-7", 70, "mm[Hg]"),
        _obs("paco2", "2019-8", 40, "mm[Hg]"),  # A-a = 0.6 x 713 - 50 - 70 = 307.8: 2
        _obs("ph", "2744-1", 7.30, "[pH]"),  # 2
        _obs("na", "2951-2", 128, "mmol/L"),  # 2
        _obs("k", "2823-3", 3.2, "mmol/L"),  # 1
        _obs("cr", "2160-0", 2.2, "mg/dL"),  # 3, doubled for acute renal failure: 6
        _obs("hct", "4544-3", 28, "%"),  # 2
        _obs("wbc", "6690-2", 22, "10*3/uL"),  # 22000: 2
        _obs("gcs", "9269-2", 13, "{score}"),  # 15 - 13 = 2
        _cond("aki", ICD, "N17.9"),
        _cond("cirrhosis", ICD, "K74.60"),  # severe organ insufficiency
    ]
    r = score_from_fhir(
        "APACHE II", resources, at=date(2026, 11, 28), extra={"admission_type": "emergency postoperative"}
    )
    assert _pts(r) == {
        "temperature": 3,
        "map": 2,
        "heart_rate": 2,
        "respiratory_rate": 1,
        "oxygenation": 2,
        "ph": 2,
        "sodium": 2,
        "potassium": 1,
        "creatinine": 6,
        "hematocrit": 2,
        "wbc": 2,
        "gcs": 2,
        "age": 5,
        "chronic_health": 5,
    }
    assert r.total == 37 and r.band == "> 34" and "Knaus" in r.citation
    refs = {c.id: c.references for c in r.criteria}
    assert refs["oxygenation"] == ["Observation/fio2", "Observation/paco2", "Observation/pao2"]
    assert refs["chronic_health"] == ["Condition/cirrhosis"]


@pytest.mark.parametrize(
    "inputs,criterion,points",
    [
        ({"temp": 38.4}, "temperature", 0),
        ({"temp": 38.5}, "temperature", 1),
        ({"temp": 29.9}, "temperature", 4),
        ({"fio2": 50, "aa_gradient": 499}, "oxygenation", 3),
        ({"fio2": 50, "aa_gradient": 199, "pao2": 50}, "oxygenation", 0),  # A-a rules at FiO2 >= 50%
        ({"fio2": 49, "pao2": 55}, "oxygenation", 3),
        ({"fio2": 49, "pao2": 54}, "oxygenation", 4),
        ({"pao2": 70}, "oxygenation", 1),  # FiO2 missing: room air assumed
        ({"pao2": 71}, "oxygenation", 0),
        ({"creatinine_mg_dl": 1.5}, "creatinine", 2),
        ({"creatinine_mg_dl": 1.5, "acute_renal_failure": True}, "creatinine", 4),
        ({"creatinine_mg_dl": 0.5, "acute_renal_failure": False}, "creatinine", 2),
        ({"sodium": 110}, "sodium", 4),
        ({"sodium": 111}, "sodium", 3),
        ({"gcs": 3}, "gcs", 12),
        ({"age": 44}, "age", 0),
        ({"age": 75}, "age", 6),
        ({"chronic_organ_insufficiency": True, "admission_type": "elective postoperative"}, "chronic_health", 2),
        ({"chronic_organ_insufficiency": False, "admission_type": "nonoperative"}, "chronic_health", 0),
    ],
)
def test_apache_ii_band_edges(inputs, criterion, points):
    assert _pts(calculate("APACHE II", inputs))[criterion] == points


def test_apache_ii_assumes_room_air_when_fio2_is_missing():
    r = calculate("APACHE II", {"pao2": 60})
    assert "fio2" in r.missing and any("fio2 not recorded, assumed 21" in a for a in r.assumptions)


def test_caprini_from_fhir_with_recent_conditions_and_female_items():
    from datetime import date

    resources = [
        {"resourceType": "Patient", "id": "p", "birthDate": "1960-01-01", "gender": "female"},  # 66 y: 2
        _cond("pna", ICD, "J18.9", onset="2026-11-18"),  # 10 days ago: 1
        _cond("sepsis-old", ICD, "A41.9", onset="2026-09-01"),  # 88 days ago: not in the last month
        _cond("dvt", ICD, "Z86.718"),
        _cond("pe", ICD, "I26.99"),  # DVT and PE history: one 3-point item
        _cond("varices", ICD, "I83.90"),  # 1
        _cond("crohn", ICD, "K50.90"),  # 1
        _cond("ca", ICD, "C50.911"),  # 2
        _obs("bmi", "39156-5", 31, "kg/m2"),  # 1
        {
            "resourceType": "MedicationRequest",
            "id": "e2",
            "status": "active",
            "medicationCodeableConcept": {"coding": [{"system": RXN, "display": "estradiol 1 MG Oral Tablet"}]},
        },  # 1
    ]
    extra = {"caprini_surgery_type": "major", "mobility": "confined to bed >72 hours"}  # 2 + 2
    r = score_from_fhir("Caprini", resources, at=date(2026, 11, 28), extra=extra)
    pts = {k: v for k, v in _pts(r).items() if v}
    assert pts == {
        "age": 2,
        "surgery": 2,
        "recent_pneumonia": 1,
        "varicose_veins": 1,
        "history_vte": 3,
        "mobility": 2,
        "ibd": 1,
        "bmi": 1,
        "malignancy": 2,
        "hormones": 1,
    }
    assert r.total == 16 and r.band == "high" and "Caprini" in r.citation
    refs = {c.id: c.references for c in r.criteria}
    assert refs["history_vte"] == ["Condition/dvt", "Condition/pe"] and refs["hormones"] == ["MedicationRequest/e2"]
    assert "sepsis_1m" in r.missing


@pytest.mark.parametrize("age,points", [(40, 0), (41, 1), (60, 1), (61, 2), (74, 2), (75, 3)])
def test_caprini_age_bands(age, points):
    assert _pts(calculate("Caprini", {"age": age, "sex": "male"}))["age"] == points


@pytest.mark.parametrize(
    "inputs,total,band",
    [
        ({"age": 30, "sex": "male"}, 0, "very low"),
        ({"age": 30, "sex": "male", "bmi": 25, "caprini_surgery_type": "minor", "varicose_veins": True}, 2, "low"),
        (
            {"age": 30, "sex": "male", "bmi": 25.1, "caprini_surgery_type": "minor", "varicose_veins": True},
            3,
            "moderate",
        ),
        ({"age": 30, "sex": "male", "prior_dvt": True, "central_venous_access": True}, 5, "high"),
        ({"age": 30, "sex": "male", "pregnant_or_postpartum": True}, 0, "very low"),  # female-only item
        ({"age": 30, "sex": "female", "pregnant_or_postpartum": True}, 1, "low"),
    ],
)
def test_caprini_bands(inputs, total, band):
    r = calculate("Caprini", inputs)
    assert (r.total, r.band) == (total, band)


def test_caprini_without_sex_scores_female_items_zero_and_says_so():
    r = calculate("Caprini", {"age": 30, "hormone_use": True})
    assert r.total == 0 and "sex" in r.missing
    assert any("needs sex" in a for a in r.assumptions)


def test_new_scores_are_listed():
    assert {"SOFA", "APACHE II", "Caprini"} <= set(list_calculators())
