"""Clinical scores: hand-computed vectors and MedCalc-Bench agreement per calculator.

- ``risk-score-definitions/risk_scores.json``: every hand-computed vector (NEWS2, qSOFA, CHA2DS2-VASc,
  HAS-BLED, CURB-65), passed / total;
- ``medcalc-bench-scores/medcalc_test_subset.csv`` with the ``Relevant Entities`` column as structured
  input: rows, agreement and rate per calculator, the disagreements documented as ground-truth label
  errors in ``tests/hospital/cds/medcalc_label_errors.json`` (each with its recomputation), and the
  agreement once those rows are excluded.

Peer: the MedCalc-Bench paper's best LLM (GPT-4 one-shot chain of thought, about 50.9% overall on the
full test set, recalled from Khandekar et al. 2024, Table 2, not re-verified) reads the notes instead of
the extracted entities, so it is context, not a like-for-like comparison.
"""

from __future__ import annotations

import json
from pathlib import Path

from smartcare.hospital.cds.medcalc import check_vectors, evaluate, summary

NAME = "hospital_cds"
TITLE = "Hospital CDS: clinical score vectors and MedCalc-Bench agreement per calculator"
LABEL_ERRORS = Path(__file__).resolve().parents[1] / "tests/hospital/cds/medcalc_label_errors.json"


def _table(rows: list[list]) -> str:
    head = ["calculator", "rows", "agree", "agree %", "label errors documented", "undocumented", "agree % excl. errors"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def run() -> dict:
    vectors = check_vectors()
    label_errors = json.loads(LABEL_ERRORS.read_text(encoding="utf-8"))
    per = summary(evaluate(), label_errors)
    rows = []
    for name, d in sorted(per.items()):
        rows.append(
            [
                name,
                d["rows"],
                d["agree"],
                f"{100 * d['rate']:.1f}",
                d["label_errors"],
                d["undocumented"],
                f"{100 * d['rate_excluding_label_errors']:.1f}",
            ]
        )
    n, agree = sum(d["rows"] for d in per.values()), sum(d["agree"] for d in per.values())
    errs, undoc = sum(d["label_errors"] for d in per.values()), sum(d["undocumented"] for d in per.values())
    rows.append(["**total**", n, agree, f"{100 * agree / n:.1f}", errs, undoc, f"{100 * agree / (n - errs):.1f}"])
    table = _table(rows)
    print(table)
    passed = sum(v["passed"] for v in vectors)
    print(f"risk_scores.json vectors: {passed}/{len(vectors)}")
    return {
        "metrics": {
            "risk_score_vectors_passed": passed,
            "risk_score_vectors_total": len(vectors),
            "medcalc_calculators": len(per),
            "medcalc_rows": n,
            "medcalc_agree": agree,
            "medcalc_agreement": round(agree / n, 4),
            "medcalc_label_errors_documented": errs,
            "medcalc_undocumented_disagreements": undoc,
            "medcalc_agreement_excluding_label_errors": round(agree / (n - errs), 4),
            "calculators_at_100pct": sum(1 for d in per.values() if d["rate"] == 1.0),
        },
        "peer": {"medcalc_bench_paper_gpt4_one_shot_cot_overall (notes, full set; recalled)": 0.509},
        "tables": {"MedCalc-Bench agreement per calculator (Relevant Entities as input)": table},
        "notes": (
            "A row agrees when an integer answer matches exactly or a decimal answer falls within the row's "
            "[Lower Limit, Upper Limit]. Every disagreement is a documented ground-truth label error with the "
            "reason and our recomputation from the cited score definition "
            "(tests/hospital/cds/medcalc_label_errors.json); rows are never special-cased."
        ),
    }
