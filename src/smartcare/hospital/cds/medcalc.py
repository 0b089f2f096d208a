"""Evaluate our calculators on MedCalc-Bench rows, using the ``Relevant Entities`` column as input.

MedCalc-Bench (Khandekar et al., NeurIPS 2024 Datasets & Benchmarks, arXiv 2406.12036) gives, per row, a
calculator, the extracted parameters (a Python-literal dict of ``name: [value, unit]`` / bool / str) and
the ground-truth answer with lower/upper limits. A row agrees when an integer answer matches exactly, or a
decimal answer falls within [Lower Limit, Upper Limit].
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.calculators import calculate

TABLE = json.loads((Path(__file__).with_name("tables") / "medcalc_bench.json").read_text(encoding="utf-8"))
CALCULATORS: dict[str, str] = TABLE["calculators"]  # MedCalc-Bench calculator name -> ours
ENTITIES: dict[str, str] = TABLE["entities"]  # entity name -> our input name, shared by every calculator
OVERRIDES: dict[str, dict[str, str]] = TABLE["overrides"]  # per-calculator entity names
CATEGORIES: dict[str, dict[str, str]] = TABLE["categories"]  # input -> {entity value -> our choice}


def _unit_value(name: str, value: float, unit: str) -> float:
    u = unit.lower().replace(" ", "")
    if name == "temp" and "fahr" in u:
        return (value - 32) * 5 / 9
    if name == "creatinine_mg_dl" and ("µmol" in u or "umol" in u):
        return value / 88.4
    if name == "bun_mg_dl" and "mmol" in u:
        return value * 2.8
    if name == "glucose_mg_dl" and "mmol" in u:
        return value * 18.0
    if name in ("albumin_g_dl", "hemoglobin_g_dl") and u == "g/l":
        return value / 10
    if name == "bilirubin_mg_dl" and ("µmol" in u or "umol" in u):
        return value / 17.1
    if name == "calcium" and "mmol" in u:
        return value * 4.008
    if name == "weight_kg" and u in ("lbs", "lb"):
        return value * 0.453592
    if name == "weight_kg" and u == "g":
        return value / 1000
    if name == "height_cm" and u == "in":
        return value * 2.54
    if name == "height_cm" and u == "m":
        return value * 100
    if name == "height_cm" and u == "ft":
        return value * 30.48
    if name == "wbc_per_ul" and value < 200:  # given as 10^9/L (10^3/uL)
        return value * 1000
    if name == "platelets" and value > 2000:  # given per uL; scores use 10^3/uL
        return value / 1000
    if name == "age" and "month" in u:
        return value / 12
    return value


def entities_to_inputs(calculator: str, entities: Mapping[str, Any]) -> dict[str, Any]:
    """Our calculator inputs from one row's ``Relevant Entities`` dict."""
    names = {**ENTITIES, **OVERRIDES.get(calculator, {})}
    out: dict[str, Any] = {}
    for key, raw in entities.items():
        name = names.get(key)
        if name is None:
            continue
        if isinstance(raw, list | tuple) and len(raw) == 2 and isinstance(raw[1], str):
            value: Any = _unit_value(name, float(raw[0]), raw[1])
        elif isinstance(raw, str):
            low = raw.strip().lower()
            value = None if low.startswith(("not ment", "not testable")) else low
            try:
                value = float(low) if value is not None else None
            except ValueError:
                pass
        else:
            value = raw
        cats = CATEGORIES.get(name)
        if cats is not None:
            value = cats.get(str(value).lower() if isinstance(value, bool) else value, value)
        if name == "dialysis_twice_past_week" and out.get(name):
            continue
        out[name] = value
    return out


@dataclass
class RowResult:
    row: int
    calculator: str
    ours: float | None
    truth: float
    lower: float
    upper: float
    agree: bool
    output_type: str


def evaluate_row(row: Mapping[str, Any]) -> RowResult | None:
    """Score one MedCalc-Bench row; None when we have no such calculator."""
    calc = CALCULATORS.get(row["Calculator Name"])
    if calc is None:
        return None
    entities = ast.literal_eval(row["Relevant Entities"])
    result = calculate(calc, entities_to_inputs(calc, entities))
    truth, lo, hi = float(row["Ground Truth Answer"]), float(row["Lower Limit"]), float(row["Upper Limit"])
    ours = result.total
    if ours is None:
        agree = False
    elif row["Output Type"] == "integer":
        agree = round(float(ours)) == round(truth)
    else:
        agree = lo <= float(ours) <= hi
    return RowResult(int(row["Row Number"]), calc, ours, truth, lo, hi, agree, row["Output Type"])


def evaluate(path: Path | str | None = None) -> list[RowResult]:
    """Evaluate every supported row of ``medcalc_test_subset.csv`` (default: the shared dataset)."""
    import pandas as pd

    path = Path(path) if path else dataset_path("hospital/medcalc-bench-scores") / "medcalc_test_subset.csv"
    if not path.exists():
        raise SmartcareError(f"MedCalc-Bench file not found: {path}")
    frame = pd.read_csv(path)
    results = [evaluate_row(r) for r in frame.to_dict("records")]
    return [r for r in results if r is not None]


def agreement(results: list[RowResult]) -> dict[str, dict[str, float]]:
    """Per calculator: n, agree, rate."""
    out: dict[str, dict[str, float]] = {}
    for r in results:
        d = out.setdefault(r.calculator, {"n": 0, "agree": 0})
        d["n"] += 1
        d["agree"] += int(r.agree)
    for d in out.values():
        d["rate"] = round(d["agree"] / d["n"], 3)
    return out


def summary(results: list[RowResult], label_errors: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per calculator: rows, agree, rate, documented label errors, and the rate once those are excluded.

    ``label_errors`` maps row number (str) to ``{"calculator", "ours", "truth", "why"}``; a documented row
    counts as a label error only when we still disagree on it.
    """
    out: dict[str, dict[str, float]] = {}
    for r in results:
        d = out.setdefault(r.calculator, {"rows": 0, "agree": 0, "label_errors": 0, "undocumented": 0})
        d["rows"] += 1
        d["agree"] += int(r.agree)
        if not r.agree:
            d["label_errors" if str(r.row) in label_errors else "undocumented"] += 1
    for d in out.values():
        d["rate"] = round(d["agree"] / d["rows"], 3)
        kept = d["rows"] - d["label_errors"]
        d["rate_excluding_label_errors"] = round(d["agree"] / kept, 3) if kept else 1.0
    return out


# risk_scores.json input names -> ours
VECTOR_ALIAS = {
    "scale": "news2_scale",
    "antiplatelet": "antiplatelet_or_nsaid",
    "renal": "renal_disease",
    "liver": "liver_disease",
    "urea_mmol_L": "urea_mmol_l",
    "bun_mg_dL": "bun_mg_dl",
}


def check_vectors(path: Path | str | None = None) -> list[dict[str, Any]]:
    """Run every hand-computed vector of ``risk-score-definitions/risk_scores.json``.

    Returns one dict per vector: score, expected, got, band and ``passed`` (total, and the expected risk
    band or positive flag when the vector gives one).
    """
    path = Path(path) if path else dataset_path("hospital/risk-score-definitions") / "risk_scores.json"
    if not path.exists():
        raise SmartcareError(f"risk score definitions not found: {path}")
    out = []
    for name, spec in json.loads(path.read_text(encoding="utf-8")).items():
        for vec in spec.get("test_vectors", []) if isinstance(spec, Mapping) else []:
            res = calculate(name, {VECTOR_ALIAS.get(k, k): v for k, v in vec["inputs"].items()})
            ok = res.total == vec["expected_total"]
            if "expected_risk" in vec:
                ok = ok and res.band == vec["expected_risk"]
            if "positive" in vec:
                ok = ok and (res.band == "positive") is vec["positive"]
            out.append(
                {"score": name, "expected": vec["expected_total"], "got": res.total, "band": res.band, "passed": ok}
            )
    return out
