"""Formula-based calculators (eGFR, creatinine clearance, MELD-Na, QTc, ...).

Coefficients and citations live in ``tables/formulas.json``; each function takes the same ``inputs``
mapping as the table-driven scores (name -> value or Evidence) and returns a ScoreResult whose
``criteria`` list the inputs used. A required input that is missing gives ``total=None`` and is listed
in ``missing`` (nothing is guessed for a formula).
"""

from __future__ import annotations

import ast
import inspect
import json
import math
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.scores import CriterionResult, Evidence, ScoreResult

TABLES = Path(__file__).with_name("tables")


@cache
def coefficients() -> dict:
    return json.loads((TABLES / "formulas.json").read_text(encoding="utf-8"))


class _Missing(Exception):
    pass


class _Reader:
    """Reads required inputs, recording what was used and what was missing."""

    def __init__(self, inputs: Mapping[str, Any]):
        self.inputs = {k: (v if isinstance(v, Evidence) else Evidence(v)) for k, v in inputs.items() if v is not None}
        self.used: list[CriterionResult] = []
        self.missing: list[str] = []

    def get(self, name: str, label: str | None = None, default: Any = None, required: bool = True) -> Any:
        ev = self.inputs.get(name)
        if ev is None or ev.value is None:
            if required and default is None:
                self.missing.append(name)
                return None
            return default
        self.used.append(CriterionResult(name, label or name, 0, ev.value, list(ev.references)))
        return ev.value

    def require(self) -> None:
        if self.missing:
            raise _Missing


def _band(bands: list[Mapping], value: float) -> str | None:
    for b in bands:
        if "min" not in b or value >= b["min"]:
            return b["label"]
    return None


def _sex(r: _Reader) -> str | None:
    s = r.get("sex", "Sex")
    s = s.strip().lower() if isinstance(s, str) else s
    if s is not None and s not in ("female", "male"):
        raise SmartcareError(f"sex: {s!r} is not one of female, male")
    return s


def ckd_epi(r: _Reader, c: Mapping) -> float:
    scr, age, sex = r.get("creatinine_mg_dl", "Serum creatinine (mg/dL)"), r.get("age", "Age"), _sex(r)
    r.require()
    k, a = c["kappa"][sex], c["alpha"][sex]
    egfr = c["a"] * min(scr / k, 1) ** a * max(scr / k, 1) ** c["beta"] * c["age_base"] ** age
    return egfr * (c["female_factor"] if sex == "female" else 1)


def cockcroft_gault(r: _Reader, c: Mapping) -> float:
    age, sex = r.get("age", "Age"), _sex(r)
    wt, ht = r.get("weight_kg", "Weight (kg)"), r.get("height_cm", "Height (cm)")
    scr = r.get("creatinine_mg_dl", "Serum creatinine (mg/dL)")
    r.require()
    bmi = wt / (ht / 100) ** 2
    ibw = c["ibw_base"][sex] + c["ibw_per_inch_over_60"] * (ht / 2.54 - 60)
    if bmi < c["bmi_underweight_below"]:
        adj = wt
    elif bmi < c["bmi_overweight_from"]:
        adj = min(ibw, wt)
    else:
        adj = ibw + c["adjusted_weight_fraction"] * (wt - ibw)
    return (140 - age) * adj * (c["female_factor"] if sex == "female" else 1) / (scr * c["divisor"])


def meld_na(r: _Reader, c: Mapping) -> float:
    cr, bili = r.get("creatinine_mg_dl", "Creatinine (mg/dL)"), r.get("bilirubin_mg_dl", "Bilirubin (mg/dL)")
    inr, na = r.get("inr", "INR"), r.get("sodium", "Sodium (mmol/L)")
    dialysis = r.get("dialysis_twice_past_week", "Dialysis >= 2x or CVVHD >= 24 h in past week", default=False)
    r.require()
    floor = c["lab_floor"]
    cr = c["creatinine_cap"] if dialysis else min(max(cr, floor), c["creatinine_cap"])
    bili, inr = max(bili, floor), max(inr, floor)
    na = min(max(na, c["na_low"]), c["na_high"])
    meld_i = round(
        10
        * (
            c["c_creatinine"] * math.log(cr)
            + c["c_bilirubin"] * math.log(bili)
            + c["c_inr"] * math.log(inr)
            + c["constant"]
        ),
        1,
    )
    if meld_i > c["na_threshold"]:
        meld_i = meld_i + c["na_coeff"] * (c["na_high"] - na) - c["na_interaction"] * meld_i * (c["na_high"] - na)
    return float(min(round(meld_i), c["max"]))


def qtc_bazett(r: _Reader, c: Mapping) -> float:
    qt, hr = r.get("qt_ms", "QT interval (ms)"), r.get("hr", "Heart rate (/min)")
    r.require()
    return qt / math.sqrt(60.0 / hr)


def mean_arterial_pressure(r: _Reader, c: Mapping) -> float:
    sbp, dbp = r.get("sbp", "Systolic BP (mmHg)"), r.get("dbp", "Diastolic BP (mmHg)")
    r.require()
    return 2 * dbp / 3 + sbp / 3


def bmi(r: _Reader, c: Mapping) -> float:
    wt, ht = r.get("weight_kg", "Weight (kg)"), r.get("height_cm", "Height (cm)")
    r.require()
    return wt / (ht / 100) ** 2


def anion_gap(r: _Reader, c: Mapping) -> float:
    na, cl, hco3 = r.get("sodium", "Sodium"), r.get("chloride", "Chloride"), r.get("bicarbonate", "Bicarbonate")
    r.require()
    return na - (cl + hco3)


def serum_osmolality(r: _Reader, c: Mapping) -> float:
    na, bun, glu = (
        r.get("sodium", "Sodium"),
        r.get("bun_mg_dl", "BUN (mg/dL)"),
        r.get("glucose_mg_dl", "Glucose (mg/dL)"),
    )
    r.require()
    return 2 * na + bun / c["bun_divisor"] + glu / c["glucose_divisor"]


def calcium_correction(r: _Reader, c: Mapping) -> float:
    ca, alb = r.get("calcium", "Calcium (mg/dL)"), r.get("albumin_g_dl", "Albumin (g/dL)")
    r.require()
    return ca + c["factor"] * (c["normal_albumin"] - alb)


def sodium_correction(r: _Reader, c: Mapping) -> float:
    na, glu = r.get("sodium", "Sodium"), r.get("glucose_mg_dl", "Glucose (mg/dL)")
    r.require()
    return na + c["factor"] * (glu - c["glucose_base"])


FORMULAS: dict[str, tuple[Callable[[_Reader, Mapping], float], str]] = {
    "CKD-EPI": (ckd_epi, "mL/min/1.73m2"),
    "Cockcroft-Gault": (cockcroft_gault, "mL/min"),
    "MELD-Na": (meld_na, "points"),
    "QTc-Bazett": (qtc_bazett, "ms"),
    "MAP": (mean_arterial_pressure, "mmHg"),
    "BMI": (bmi, "kg/m2"),
    "Anion-Gap": (anion_gap, "mmol/L"),
    "Serum-Osmolality": (serum_osmolality, "mOsm/kg"),
    "Calcium-Correction": (calcium_correction, "mg/dL"),
    "Sodium-Correction": (sodium_correction, "mmol/L"),
}


def compute_formula(name: str, inputs: Mapping[str, Any]) -> ScoreResult:
    """Evaluate formula ``name`` (a key of FORMULAS) on ``inputs``; total None if inputs are missing."""
    fn, unit = FORMULAS[name]
    c = coefficients()[name]
    r = _Reader(inputs)
    try:
        total: float | None = round(fn(r, c), 3)
    except _Missing:
        total = None
    assumptions = [f"{m} not recorded; {name} cannot be computed" for m in r.missing]
    return ScoreResult(
        score=name,
        total=total,
        criteria=r.used,
        missing=r.missing,
        assumptions=assumptions,
        band=_band(c.get("bands", []), total) if total is not None else None,
        interpretation=c["title"],
        citation=c["citation"],
        unit=unit,
    )


def formula_inputs(name: str) -> dict[str, str]:
    """The inputs formula ``name`` reads, found in its code: every ``r.get("...")``, also in helpers it calls.

    Maps each name to its kind: ``"bool"`` when read with a boolean ``default``, else ``"number"``."""
    names: dict[str, str] = {}
    todo, seen = [FORMULAS[name][0]], set()
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        for node in ast.walk(ast.parse(inspect.getsource(fn))):
            if not isinstance(node, ast.Call):
                continue
            f = node.func
            if isinstance(f, ast.Attribute) and f.attr == "get" and isinstance(f.value, ast.Name) and f.value.id == "r":
                if node.args and isinstance(node.args[0], ast.Constant):
                    default = [k.value for k in node.keywords if k.arg == "default"]
                    is_bool = bool(default) and isinstance(default[0], ast.Constant) and isinstance(
                        default[0].value, bool)
                    names[node.args[0].value] = "bool" if is_bool else "number"
            elif isinstance(f, ast.Name) and callable(globals().get(f.id)) and f.id.startswith("_"):
                todo.append(globals()[f.id])
    return names
