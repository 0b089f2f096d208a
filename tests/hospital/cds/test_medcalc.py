"""MedCalc-Bench agreement with Relevant Entities as structured input; every disagreement is explained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcare.hospital.cds.medcalc import agreement, evaluate

LABEL_ERRORS = json.loads((Path(__file__).with_name("medcalc_label_errors.json")).read_text())
MAIN = {"CHA2DS2-VASc", "HAS-BLED", "CURB-65"}


@pytest.fixture(scope="module")
def results(shared_data):
    return evaluate(shared_data / "hospital/medcalc-bench-scores/medcalc_test_subset.csv")


def test_agreement_per_calculator(results):
    table = agreement(results)
    print("\n" + "\n".join(f"{k:20s} {v['agree']:>3d}/{v['n']:<3d} {v['rate']:.3f}" for k, v in sorted(table.items())))
    assert len(table) == 25
    for name in MAIN:
        assert table[name]["rate"] == 1.0, name
    perfect = [k for k, v in table.items() if v["rate"] == 1.0 and k not in MAIN]
    assert len(perfect) >= 10, perfect
    assert sum(v["agree"] for v in table.values()) == 286 and sum(v["n"] for v in table.values()) == 332


def test_every_disagreement_is_a_documented_label_error(results):
    wrong = {str(r.row): r for r in results if not r.agree}
    assert set(wrong) == set(LABEL_ERRORS)
    for row, r in wrong.items():
        assert LABEL_ERRORS[row]["calculator"] == r.calculator
        assert LABEL_ERRORS[row]["ours"] == r.ours and LABEL_ERRORS[row]["why"]


def test_agreement_is_full_once_label_errors_are_excluded(results):
    kept = [r for r in results if str(r.row) not in LABEL_ERRORS]
    assert all(r.agree for r in kept) and len(kept) == 286
