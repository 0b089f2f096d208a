"""Every calculator exposes the inputs it reads (from its table / formula), and strict calls refuse others."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartcare.hospital.cds import formulas
from smartcare.hospital.cds.calculators import (
    UnknownInputError,
    calculate,
    calculator_inputs,
    check_inputs,
    list_calculators,
)

TABLES = Path(formulas.__file__).with_name("tables")


def _table_input_names(node, out: set[str]) -> None:
    """Every ``"input"`` value and ``when`` key in a table (an independent walk of the JSON)."""
    if isinstance(node, list):
        for x in node:
            _table_input_names(x, out)
    elif isinstance(node, dict):
        if isinstance(node.get("input"), str):
            out.add(node["input"])
        out.update(node.get("when") or {})
        for v in node.values():
            _table_input_names(v, out)


@pytest.mark.parametrize("name", list_calculators())
def test_every_calculator_lists_the_inputs_its_definition_reads(name):
    names = calculator_inputs(name)
    assert names and all(kinds for kinds in names.values())
    table = next((json.loads(p.read_text()) for p in TABLES.glob("*.json")
                  if json.loads(p.read_text()).get("name") == name), None)
    if table is not None:
        wanted: set[str] = set()
        _table_input_names(table["criteria"], wanted)
        assert wanted <= set(names)
    else:  # a formula: calling it with every listed input gives a number, with one fewer it is missing
        full = {k: ("female" if k == "sex" else False if kinds == ["bool"] else 1.2)
                for k, kinds in names.items()}
        assert calculate(name, full, strict=True).total is not None
        required = [k for k, kinds in names.items() if kinds != ["bool"]]
        partial = {k: v for k, v in full.items() if k != required[0]}
        assert calculate(name, partial, strict=True).missing == [required[0]]


def test_strict_refuses_unknown_names_and_out_of_domain_values():
    with pytest.raises(UnknownInputError, match="unknown input 'respiratory_rate'; valid inputs: rr"):
        calculate("NEWS2", {"respiratory_rate": 30}, strict=True)
    with pytest.raises(UnknownInputError, match="acvpu='drowsy' is not allowed"):
        check_inputs("NEWS2", {"acvpu": "drowsy"})
    with pytest.raises(UnknownInputError, match="female, male"):
        check_inputs("CKD-EPI", {"sex": "woman"})
    check_inputs("CURB-65", {"acvpu": "alert", "confusion": True, "age": "70"})  # full ACVPU domain; numeric text
    check_inputs("SOFA", {"sbp": 80, "dbp": 40, "mechanical_ventilation": 1})  # sources of derived inputs
    # not strict (inputs extracted from FHIR): names the calculator does not read are ignored
    assert calculate("qSOFA", {"rr": 24, "sbp": 95, "gcs": 15, "weight_kg": 80}).total == 2


def test_the_hand_computed_vectors_use_only_valid_inputs(shared_data):
    """The published vectors name every input the way the calculators expect (strict mode accepts them)."""
    from smartcare.hospital.cds.medcalc import VECTOR_ALIAS

    spec = json.loads((shared_data / "hospital/risk-score-definitions/risk_scores.json").read_text())
    n = 0
    for name, score in spec.items():
        for vec in score.get("test_vectors", []) if isinstance(score, dict) else []:
            inputs = {VECTOR_ALIAS.get(k, k): v for k, v in vec["inputs"].items()}
            assert calculate(name, inputs, strict=True).total == vec["expected_total"], (name, vec)
            n += 1
    assert n == 22
