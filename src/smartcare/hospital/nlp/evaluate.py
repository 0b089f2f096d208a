"""Score ConText assertions on the NegEx reference standard (``hospital/negex-annotations``).

Published baselines on the full 2,376-mention kit (chapmanbe/negex READMEs): GeneralNegEx 1.2 negation
F1 0.947 (P 0.935, R 0.959); genConText negation F1 0.981 (P 0.984, R 0.978).

Held-out protocol: the rows are split in two halves by sentence (a SHA-256 hash of the seeded,
whitespace-normalised, lower-cased sentence; every mention of one sentence falls in the same half). Rule
changes are made looking only at errors in ``dev``; ``heldout`` measures how well they generalise.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError
from smartcare.hospital.nlp.context import annotate, context_pipeline

BASELINES = {
    "GeneralNegEx": {"precision": 0.935, "recall": 0.959, "f1": 0.947},
    "genConText": {"precision": 0.984, "recall": 0.978, "f1": 0.981},
}
SPLITS = ("dev", "heldout", "all")
SPLIT_SEED = 20240501  # fixed once, before any rule was tuned on dev; never change it


def split_of(sentence: str, seed: int = SPLIT_SEED) -> str:
    """``"dev"`` or ``"heldout"``: the half a sentence belongs to (stable across runs and machines)."""
    key = " ".join(str(sentence).lower().split())
    digest = hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()
    return "dev" if int(digest[:8], 16) % 2 == 0 else "heldout"


def score(rows: list[dict]) -> dict:
    """Negation P/R/F1 and temporality / experiencer accuracy of predicted rows.

    Each row holds the gold ``negation_status`` / ``temporality`` / ``experiencer`` and the predicted
    ``negated`` / ``historical`` / ``hypothetical`` / ``pred_experiencer``. Temporality: historical ->
    "Historical", hypothetical -> "Not particular", else "Recent". Experiencer: "Patient" vs anything else.
    """
    tp = fp = fn = tn = temporal_ok = exp_ok = 0
    for r in rows:
        gold, pred = r["negation_status"] == "Negated", bool(r["negated"])
        tp += pred and gold
        fp += pred and not gold
        fn += (not pred) and gold
        tn += (not pred) and not gold
        pred_t = "Historical" if r["historical"] else ("Not particular" if r["hypothetical"] else "Recent")
        temporal_ok += pred_t == r["temporality"]
        exp_ok += (r["pred_experiencer"] == "patient") == (r["experiencer"] == "Patient")
    p, rec = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    n = max(len(rows), 1)
    return {
        "n": len(rows),
        "tp": int(tp),
        "fp": int(fp),
        "fn": int(fn),
        "tn": int(tn),
        "precision": round(p, 4),
        "recall": round(rec, 4),
        "f1": round(2 * p * rec / max(p + rec, 1e-9), 4),
        "temporality_accuracy": round(temporal_ok / n, 4),
        "experiencer_accuracy": round(exp_ok / n, 4),
    }


def predict_negex(path: Path | str | None = None, rules_path: str | None = None) -> list[dict]:
    """Every annotated row with its split and the ConText prediction (``negated``, ``historical``, ...).

    ``rules_path``: one rules JSON instead of the shipped rules (e.g. the bare NegEx/genConText lists).
    """
    import pandas as pd

    path = Path(path) if path else dataset_path("hospital/negex-annotations") / "negex_rsAnnotations_train.csv"
    if not path.exists():
        raise SmartcareError(f"NegEx annotation CSV not found: {path}")
    frame = pd.read_csv(path)
    missing = {"sentence", "condition", "negation_status", "temporality", "experiencer"} - set(frame.columns)
    if missing:
        raise SmartcareError(f"{path} lacks column(s) {', '.join(sorted(missing))}")
    nlp = context_pipeline(rules_path)
    rows = []
    for rec in frame.to_dict("records"):
        a = annotate(str(rec["sentence"]), str(rec["condition"]), nlp)
        rows.append(
            {
                **rec,
                "split": split_of(rec["sentence"]),
                "negated": a.negated,
                "historical": a.historical,
                "hypothetical": a.hypothetical,
                "pred_experiencer": a.experiencer,
                "modifiers": "|".join(a.modifiers),
            }
        )
    return rows


def evaluate_negex(path: Path | str | None = None, split: str = "all") -> dict:
    """Negation precision/recall/F1 and temporality / experiencer accuracy on one split of the mentions."""
    if split not in SPLITS:
        raise SmartcareError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    rows = [r for r in predict_negex(path) if split == "all" or r["split"] == split]
    return {"split": split, **score(rows), "baselines": BASELINES}


def evaluate_splits(path: Path | str | None = None, rules_path: str | None = None) -> dict[str, dict]:
    """``evaluate_negex`` for dev, heldout and all from one pass over the rows."""
    rows = predict_negex(path, rules_path)
    return {s: score([r for r in rows if s == "all" or r["split"] == s]) for s in SPLITS}
