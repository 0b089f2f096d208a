"""MedCalc-Bench agreement with Relevant Entities as structured input; every disagreement is explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.medcalc import (
    CALCULATORS,
    agreement,
    check_vectors,
    entities_to_inputs,
    evaluate,
    summary,
)

LABEL_ERRORS = json.loads((Path(__file__).with_name("medcalc_label_errors.json")).read_text())

# calculator -> (rows, rows that agree with the ground truth); every other row is a documented label error
EXPECTED = {
    "APACHE II": (12, 0),
    "Anion-Gap": (10, 10),
    "BMI": (13, 13),
    "CHA2DS2-VASc": (12, 12),
    "CKD-EPI": (15, 14),
    "CURB-65": (15, 15),
    "Calcium-Correction": (12, 12),
    "Caprini": (12, 0),
    "Centor-McIsaac": (14, 14),
    "Charlson": (10, 3),
    "Child-Pugh": (13, 3),
    "Cockcroft-Gault": (13, 13),
    "GCS": (11, 0),
    "Glasgow-Blatchford": (15, 13),
    "HAS-BLED": (10, 10),
    "HEART": (15, 15),
    "MAP": (13, 13),
    "MELD-Na": (5, 1),
    "PERC": (16, 16),
    "PSI": (13, 12),
    "QTc-Bazett": (15, 15),
    "RCRI": (16, 16),
    "SIRS": (16, 6),
    "SOFA": (10, 1),
    "Serum-Osmolality": (14, 14),
    "Sodium-Correction": (16, 16),
    "Wells-DVT": (16, 16),
    "Wells-PE": (14, 14),
}


@pytest.fixture(scope="module")
def results(shared_data):
    return evaluate(shared_data / "hospital/medcalc-bench-scores/medcalc_test_subset.csv")


def test_every_calculator_in_the_set_is_covered(results):
    assert len(CALCULATORS) == 28
    assert {r.calculator for r in results} == set(EXPECTED)
    assert len(results) == 366


def test_agreement_per_calculator_is_exact(results):
    table = summary(results, LABEL_ERRORS)
    print(
        "\n" + "\n".join(f"{k:20s} {v['agree']:>3d}/{v['rows']:<3d} {v['rate']:.3f}" for k, v in sorted(table.items()))
    )
    assert {k: (v["rows"], v["agree"]) for k, v in table.items()} == EXPECTED
    assert sum(v["agree"] for v in table.values()) == 287
    assert {k: v["rate"] for k, v in agreement(results).items()} == {k: v["rate"] for k, v in table.items()}


def test_every_disagreement_is_a_documented_label_error(results):
    wrong = {str(r.row): r for r in results if not r.agree}
    assert set(wrong) == set(LABEL_ERRORS)
    for row, r in wrong.items():
        assert LABEL_ERRORS[row]["calculator"] == r.calculator
        assert LABEL_ERRORS[row]["ours"] == r.ours and LABEL_ERRORS[row]["why"]
        assert LABEL_ERRORS[row]["truth"] == r.truth


@pytest.mark.parametrize("calculator", sorted(EXPECTED))
def test_full_agreement_once_documented_rows_are_excluded(results, calculator):
    kept = [r for r in results if r.calculator == calculator and str(r.row) not in LABEL_ERRORS]
    assert all(r.agree for r in kept), [r.row for r in kept if not r.agree]
    assert len(kept) == EXPECTED[calculator][1]


def test_new_scores_label_errors_quote_the_recomputed_total():
    for row, e in LABEL_ERRORS.items():
        if e["calculator"] in ("SOFA", "APACHE II", "Caprini"):
            assert e["why"].endswith(f"= {e['ours']:g}") or f"= {e['ours']:g} " in e["why"], row


def test_entity_mapping_for_new_calculators():
    sofa = entities_to_inputs(
        "SOFA",
        {"Platelet count": [88400.0, "µL"], "norEPINEPHrine": [0.1, "mcg/kg/min"], "FiO₂": [41.0, "%"]},
    )
    assert sofa == {"platelets": 88.4, "norepinephrine_ug_kg_min": 0.1, "fio2": 41.0}
    assert entities_to_inputs("APACHE II", {"Surgery Type": "Nonoperative "}) == {"admission_type": "nonoperative"}
    assert entities_to_inputs("Caprini", {"Surgery Type": "major"}) == {"caprini_surgery_type": "major"}


def test_hand_computed_vectors_through_check_vectors(shared_data):
    vectors = check_vectors(shared_data / "hospital/risk-score-definitions/risk_scores.json")
    assert len(vectors) == 22 and all(v["passed"] for v in vectors)


def test_missing_files_give_clear_errors(tmp_path):
    with pytest.raises(SmartcareError, match="MedCalc-Bench file not found"):
        evaluate(tmp_path / "nope.csv")
    with pytest.raises(SmartcareError, match="risk score definitions not found"):
        check_vectors(tmp_path / "nope.json")
