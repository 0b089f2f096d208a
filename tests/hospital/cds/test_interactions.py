"""Ingredient resolution, ONC interaction checking and DetectedIssue output."""

from __future__ import annotations

from smartcare.hospital.cds import rxnorm
from smartcare.hospital.cds.interactions import check_medications, detected_issue, onc_pairs


def _med(mid, code, display, rtype="MedicationRequest"):
    return {
        "resourceType": rtype,
        "id": mid,
        "status": "active",
        "medicationCodeableConcept": {"coding": [{"system": rxnorm.RXNORM, "code": code, "display": display}]},
    }


def test_clinical_drug_codes_resolve_to_ingredients(shared_data):
    # value-set code -> ingredient; display text -> ingredient; route from the dose form
    assert [i.name for i in rxnorm.resolve_concept({"coding": [{"system": rxnorm.RXNORM, "code": "834022"}]})] == [
        "ketorolac"
    ]
    gel = rxnorm.resolve_concept(
        {"coding": [{"code": "855635", "display": "Diclofenac Sodium 0.01 MG/MG Topical Gel [Voltaren]"}]}
    )
    assert gel[0].name == "diclofenac" and gel[0].systemic is False and gel[0].route == "topical"
    warf = rxnorm.resolve_concept({"coding": [{"code": "855350", "display": "Warfarin Sodium 0.5 MG Oral Tablet"}]})
    assert warf[0].name == "warfarin" and warf[0].rxcui == "11289" and "vitamin_k_antagonist" in warf[0].classes
    cyc = rxnorm.resolve_concept(
        {"coding": [{"code": "835925", "display": "cyclosporine, modified 50 MG Oral Capsule"}]}
    )
    assert cyc[0].name == "cyclosporine"
    eye = rxnorm.resolve_concept({"coding": [{"code": "402092"}]})  # Restasis: ophthalmic cyclosporine
    assert eye[0].name == "cyclosporine" and not eye[0].systemic
    assert rxnorm.resolve_concept({"text": "a mystery tonic"}) == []


def test_onc_lists_loaded(shared_data):
    pairs = onc_pairs()
    assert len(pairs) == 3249  # 4,031 listed pairs, symmetric duplicates merged
    assert pairs[frozenset(("amiodarone", "escitalopram"))].onc_list == "high_priority"


def test_check_medications_and_detected_issue(shared_data):
    meds = [
        _med("a", "833528", "amiodarone hydrochloride 200 MG Oral Tablet"),
        _med("b", "351249", "escitalopram 10 MG Oral Tablet", "MedicationStatement"),
        _med("c", "197361", "amlodipine 5 MG Oral Tablet"),
    ]
    hits = check_medications({"resourceType": "Bundle", "entry": [{"resource": m} for m in meds]})
    assert [(h.ingredient_a, h.ingredient_b, h.severity) for h in hits] == [("amiodarone", "escitalopram", "high")]
    issue = detected_issue(hits[0], patient="p1")
    assert issue["resourceType"] == "DetectedIssue" and issue["severity"] == "high"
    assert issue["patient"] == {"reference": "Patient/p1"}
    assert {i["reference"] for i in issue["implicated"]} == {"MedicationRequest/a", "MedicationStatement/b"}
    assert issue["code"]["coding"][0]["code"] == "DRG"
    from fhir.resources.R4B.detectedissue import DetectedIssue

    DetectedIssue.model_validate(issue)  # a valid FHIR R4 DetectedIssue
    assert any("Phansalkar" in e["detail"][0]["display"] for e in issue["evidence"])


def test_non_interruptive_pairs_are_low_and_optional(shared_data):
    meds = [_med("t", "1", "Tolmetin 200 MG Oral Tablet"), _med("l", "2", "Alprenolol 50 MG Oral Tablet")]
    assert [h.severity for h in check_medications(meds)] == ["low"]
    assert check_medications(meds, include_non_interruptive=False) == []
