"""Score ConText assertions on the NegEx reference standard (``hospital/negex-annotations``).

Published baselines on the full 2,376-mention kit (chapmanbe/negex READMEs): GeneralNegEx 1.2 negation
F1 0.947 (P 0.935, R 0.959); genConText negation F1 0.981 (P 0.984, R 0.978).
"""

from __future__ import annotations

from pathlib import Path

from smartcare.core.data import dataset_path
from smartcare.hospital.nlp.context import annotate, context_pipeline

BASELINES = {
    "GeneralNegEx": {"precision": 0.935, "recall": 0.959, "f1": 0.947},
    "genConText": {"precision": 0.984, "recall": 0.978, "f1": 0.981},
}


def evaluate_negex(path: Path | str | None = None) -> dict:
    """Negation precision/recall/F1 and temporality / experiencer accuracy on the annotated mentions.

    Temporality: historical -> "Historical", hypothetical -> "Not particular", else "Recent".
    Experiencer: "Patient" vs anything else.
    """
    import pandas as pd

    path = Path(path) if path else dataset_path("hospital/negex-annotations") / "negex_rsAnnotations_train.csv"
    frame = pd.read_csv(path)
    nlp = context_pipeline()
    tp = fp = fn = tn = temporal_ok = exp_ok = 0
    for sentence, target, neg, temp, exp in zip(
        frame.sentence, frame.condition, frame.negation_status, frame.temporality, frame.experiencer, strict=True
    ):
        a = annotate(str(sentence), str(target), nlp)
        gold = neg == "Negated"
        tp += a.negated and gold
        fp += a.negated and not gold
        fn += (not a.negated) and gold
        tn += (not a.negated) and not gold
        pred_t = "Historical" if a.historical else ("Not particular" if a.hypothetical else "Recent")
        temporal_ok += pred_t == temp
        exp_ok += (a.experiencer == "patient") == (exp == "Patient")
    p, r = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    n = len(frame)
    return {
        "n": n,
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": round(p, 4),
        "recall": round(r, 4),
        "f1": round(2 * p * r / max(p + r, 1e-9), 4),
        "temporality_accuracy": round(temporal_ok / n, 4),
        "experiencer_accuracy": round(exp_ok / n, 4),
        "baselines": BASELINES,
    }
