"""Evaluate our calculators on MedCalc-Bench rows, using the ``Relevant Entities`` column as input.

MedCalc-Bench (Khandekar et al., NeurIPS 2024 Datasets & Benchmarks, arXiv 2406.12036) gives, per row, a
calculator, the extracted parameters (a Python-literal dict of ``name: [value, unit]`` / bool / str) and
the ground-truth answer with lower/upper limits. A row agrees when an integer answer matches exactly, or a
decimal answer falls within [Lower Limit, Upper Limit].
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.calculators import calculate

CALCULATORS = {
    "CHA2DS2-VASc Score for Atrial Fibrillation Stroke Risk": "CHA2DS2-VASc",
    "HAS-BLED Score for Major Bleeding Risk": "HAS-BLED",
    "CURB-65 Score for Pneumonia Severity": "CURB-65",
    "SIRS Criteria": "SIRS",
    "Glasgow Coma Score (GCS)": "GCS",
    "Wells' Criteria for Pulmonary Embolism": "Wells-PE",
    "Wells' Criteria for DVT": "Wells-DVT",
    "HEART Score for Major Cardiac Events": "HEART",
    "Child-Pugh Score for Cirrhosis Mortality": "Child-Pugh",
    "Centor Score (Modified/McIsaac) for Strep Pharyngitis": "Centor-McIsaac",
    "PERC Rule for Pulmonary Embolism": "PERC",
    "Revised Cardiac Risk Index for Pre-Operative Risk": "RCRI",
    "PSI Score: Pneumonia Severity Index for CAP": "PSI",
    "Glasgow-Blatchford Bleeding Score (GBS)": "Glasgow-Blatchford",
    "Charlson Comorbidity Index (CCI)": "Charlson",
    "CKD-EPI Equations for Glomerular Filtration Rate": "CKD-EPI",
    "Creatinine Clearance (Cockcroft-Gault Equation)": "Cockcroft-Gault",
    "MELD Na (UNOS/OPTN)": "MELD-Na",
    "QTc Bazett Calculator": "QTc-Bazett",
    "Mean Arterial Pressure (MAP)": "MAP",
    "Body Mass Index (BMI)": "BMI",
    "Anion Gap": "Anion-Gap",
    "Serum Osmolality": "Serum-Osmolality",
    "Calcium Correction for Hypoalbuminemia": "Calcium-Correction",
    "Sodium Correction for Hyperglycemia": "Sodium-Correction",
}

# entity name -> our input name (shared by every calculator unless overridden below)
ENTITIES = {
    "age": "age",
    "sex": "sex",
    "Heart Rate or Pulse": "hr",
    "respiratory rate": "rr",
    "Systolic Blood Pressure": "sbp",
    "Diastolic Blood Pressure": "dbp",
    "Temperature": "temp",
    "White blood cell count": "wbc_per_ul",
    "PaCO₂": "paco2",
    "Blood Urea Nitrogen (BUN)": "bun_mg_dl",
    "Confusion": "confusion",
    "creatinine": "creatinine_mg_dl",
    "Pre-operative creatinine": "creatinine_mg_dl",
    "weight": "weight_kg",
    "height": "height_cm",
    "Sodium": "sodium",
    "Chloride": "chloride",
    "Bicarbonate": "bicarbonate",
    "Glucose": "glucose_mg_dl",
    "Albumin": "albumin_g_dl",
    "Calcium": "calcium",
    "Bilirubin": "bilirubin_mg_dl",
    "international normalized ratio": "inr",
    "Hemoglobin": "hemoglobin_g_dl",
    "QT interval": "qt_ms",
    "O₂ saturation percentage": "spo2",
    "Congestive Heart Faliure": "chf",
    "Stroke": "prior_stroke",
    "Transient Ischemic Attacks History": "tia",
    "Thromboembolism history": "thromboembolism",
    "Vascular disease history": "vascular_disease",
    "Diabetes history": "diabetes",
    "Hypertension history": "hypertension",
    "Medication usage predisposing to bleeding": "antiplatelet_or_nsaid",
    "Liver disease criteria for the HAS-BLED rule": "liver_disease",
    "Number of Alcoholic Drinks Per Week": "alcohol_drinks_per_week",
    "Labile international normalized ratio": "labile_inr",
    "Renal disease criteria for the HAS-BLED rule": "renal_disease",
    "Prior major bleeding or predisposition to bleeding": "bleeding_history",
    "Best eye response": "gcs_eye",
    "Best verbal response": "gcs_verbal",
    "Best motor response": "gcs_motor",
    "Clinical signs and symptoms of Deep Vein Thrombosis": "dvt_signs",
    "Pulmonary Embolism is #1 diagnosis OR equally likely": "pe_most_likely",
    "Immobilization for at least 3 days": "immobilization_3d",
    "Surgery in the previous 4 weeks": "recent_surgery_4w",
    "Previously Documented Pulmonary Embolism": "prior_pe",
    "Previously documented Deep Vein Thrombosis": "prior_dvt",
    "Hemoptysis": "hemoptysis",
    "Malignancy with treatment within 6 months or palliative": "active_cancer",
    "Active cancer": "active_cancer",
    "Bedridden recently >3 days or major surgery within 12 weeks": "bedridden_3d",
    "Major surgery within 12 weeks": "major_surgery_12w",
    "Paralysis, paresis, or recent plaster immobilization of the lower extremity": "leg_paralysis_cast",
    "Alternative diagnosis to Deep Vein Thrombosis as likely or more likely": "alternative_dx_likely",
    "Calf swelling >3 centimeters compared to the other leg": "calf_swelling_3cm",
    "Collateral (nonvaricose) superficial veins present": "collateral_veins",
    "Entire Leg Swollen": "entire_leg_swollen",
    "Localized tenderness along the deep venous system": "deep_vein_tenderness",
    "Pitting edema, confined to symptomatic leg": "pitting_edema",
    "Suspicion History": "heart_history",
    "Electrocardiogram Test": "heart_ecg",
    "Initial troponin": "heart_troponin",
    "parent or sibling with Cardiovascular disease before age 65": "family_history_cvd",
    "atherosclerotic disease": "atherosclerotic_disease",
    "hypercholesterolemia": "hypercholesterolemia",
    "obesity": "obesity",
    "smoking": "smoking",
    "Ascites": "ascites",
    "Encephalopathy": "encephalopathy",
    "Cough Absent": "cough_absent",
    "Exudate or swelling on tonsils": "tonsillar_exudate",
    "Tender/swollen anterior cervical lymph nodes": "anterior_cervical_nodes",
    "Unilateral Leg Swelling": "unilateral_leg_swelling",
    "Hormone use": "hormone_use",
    "Recent surgery or trauma": "recent_surgery_trauma",
    "History of cerebrovascular disease": "cerebrovascular_disease",
    "Cerebrovascular disease history": "cerebrovascular_disease",
    "Pre-operative treatment with insulin": "insulin_treatment",
    "Congestive Heart Failure criteria for the Cardiac Risk Index rule": "chf",
    "History of ischemic heart disease": "ischemic_heart_disease",
    "Elevated-risk surgery": "elevated_risk_surgery",
    "Hepatic disease history": "liver_disease",
    "Recent syncope": "syncope",
    "Cardiac failure present": "chf",
    "Melena present": "melena",
    "Cerebrovascular Accident": "prior_stroke",
    "Lymphoma": "lymphoma",
    "Leukemia": "leukemia",
    "Solid tumor": "solid_tumor",
    "Dementia": "dementia",
    "Myocardial infarction": "prior_mi",
    "Hemiplegia": "hemiplegia",
    "Chronic Obstructive Pulmonary Disease": "copd",
    "Moderate to severe Chronic Kidney Disease": "ckd_moderate_severe",
    "Diabetes mellitus criteria for CCI rule": "diabetes_cci",
    "Connective tissue disease": "connective_tissue_disease",
    "Peptic ulcer disease": "peptic_ulcer",
    "Liver disease severity": "liver_disease_severity",
    "Peripheral vascular disease": "peripheral_vascular_disease",
    "AIDS": "aids",
    "Continuous veno-venous hemodialysis for ≥24 hours in the past week": "dialysis_twice_past_week",
    "Dialysis at least twice in the past week": "dialysis_twice_past_week",
    "Nursing home resident": "nursing_home",
    "Renal disease": "renal_disease",
    "Altered mental status": "altered_mentation",
    "Pleural effusion on x-ray": "pleural_effusion",
    "pH": "ph",
    "Hematocrit": "hematocrit",
    "Partial pressure of oxygen (PaO₂) for Apache II": "pao2",
}
OVERRIDES = {
    "PSI": {"Liver disease severity": "liver_disease", "Neoplastic disease": "active_cancer"},
    "HAS-BLED": {"Hypertension history": "uncontrolled_hypertension"},
    "HEART": {"Diabetes mellitus criteria for CCI rule": "diabetes"},
}
CATEGORIES = {
    "encephalopathy": {"no encephalopathy": "none", "grade 0": "none"},
    "solid_tumor": {True: "localized", False: "none", "metastatic": "metastatic", "localized": "localized"},
}


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
            value = cats.get(value, value)
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
