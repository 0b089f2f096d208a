"""MTSamples specialty classification: (a) TF-IDF + LR, (b) MiniLM linear probe, (c) fine-tuned MiniLM,
(d) their ensemble, on one de-duplicated split, with 95% bootstrap intervals.

The split is ``classify.load_mtsamples`` (texts de-duplicated, 20% test by text hash). (a) and (c) are the
shipped models (``weights/mtsamples-specialty-tfidf``, ``weights/mtsamples-specialty-minilm``; when the
fine-tuned model was not shipped, the run under ``var/mtsamples-minilm-ft*`` that ``mtsamples-train`` left
with the best validation macro-F1 is used). (b) is refitted here (frozen all-MiniLM-L6-v2 embeddings,
128 tokens, logistic regression). The ensemble weight of (d) is re-tuned on the validation split carved
from train, never on test. The "peer" is the TF-IDF baseline; intervals are percentile bootstraps over
test texts (1000 resamples), and the difference rows are paired bootstraps.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from benchmarks.harness import markdown_table
from smartcare.core.errors import ModelNotFoundError
from smartcare.core.metrics import bootstrap_ci
from smartcare.core.registry import load_card
from smartcare.hospital.nlp import classify, finetune, specialty

NAME = "hospital_mtsamples"
TITLE = "Hospital NLP: MTSamples specialty, TF-IDF vs MiniLM probe vs fine-tuned MiniLM (macro-F1, accuracy)"
VAR = Path(__file__).resolve().parent.parent / "var"  # unshipped fine-tunes: var/mtsamples-minilm-ft*/
N_BOOT = 1000


def _macro_f1(y, p) -> float:
    return float(f1_score(y, p, average="macro"))


def _accuracy(y, p) -> float:
    return float(accuracy_score(y, p))


def _ft_runs() -> list[Path]:
    return [p.parent.parent for p in VAR.glob(f"mtsamples-minilm-ft*/{finetune.FT_NAME}/card.json")]


def _load_ft():
    try:
        return finetune.load_finetuned(), "weights/" + finetune.FT_NAME
    except ModelNotFoundError:
        runs = _ft_runs()
        if not runs:  # a fresh checkout: train (c) with the command's defaults, as its card says (~30 min CPU)
            print("hospital_mtsamples: no fine-tuned MiniLM under var/; running `smartcare hospital mtsamples-train`")
            subprocess.run([str(Path(sys.executable).parent / "smartcare"), "hospital", "mtsamples-train",
                            "--run-dir", str(VAR / "mtsamples-minilm-ft")], check=True)
            runs = _ft_runs()
        best = max(runs, key=lambda r: load_card(finetune.FT_NAME, r)["metrics"]["validation"]["macro_f1"])
        return finetune.load_finetuned(best), f"var/{best.name}/{finetune.FT_NAME} (best on validation, not shipped)"


def _paired_diff(y, pa, pb, metric) -> tuple[float, float, float]:
    """Bootstrap of metric(y, pa) - metric(y, pb) over the same resampled rows."""
    rows = np.arange(len(y))
    return bootstrap_ci(lambda i, _: metric(y[i], pa[i]) - metric(y[i], pb[i]), rows, rows, n_boot=N_BOOT)


def run() -> dict:
    frame = classify.load_mtsamples()
    classes = specialty.classes_of(frame)
    test = (frame.split == "test").to_numpy()
    y = frame.label[test].to_numpy()
    texts = frame.text[test].tolist()
    # (a) shipped TF-IDF
    z_tfidf, tfidf_classes = classify.tfidf_logits(texts)
    assert tfidf_classes == classes
    p_tfidf = classify.softmax(z_tfidf)
    # (b) linear probe on frozen MiniLM embeddings (refitted: the probe is not shipped)
    emb = classify.embed(frame.text.tolist())  # (N, 384)
    probe = classify.fit_probe(frame, emb)
    pred_probe = probe.predict(emb[test])
    # (c) fine-tuned MiniLM
    (model, tokenizer, card), source = _load_ft()
    assert card["classes"] == classes
    p_ft = classify.softmax(finetune.finetuned_logits(texts, model, tokenizer, card))
    # (d) ensemble, weight tuned on validation only
    val = finetune.val_mask(frame, card["config"]["val_fraction"])
    fit_rows = (frame.split == "train").to_numpy() & ~val
    y_val = frame.label[val].map({c: i for i, c in enumerate(classes)}).fillna(-1).astype(int).to_numpy()
    p_ft_val = classify.softmax(finetune.finetuned_logits(frame.text[val].tolist(), model, tokenizer, card))
    w, _ = specialty.tune_weight(specialty.tfidf_proba(frame, fit_rows, val, classes), p_ft_val, y_val)
    name = np.asarray(classes, dtype=object)
    preds = {
        "a_tfidf_logreg": name[p_tfidf.argmax(1)],
        "b_minilm_probe": np.asarray(pred_probe, dtype=object),
        "c_minilm_finetuned": name[p_ft.argmax(1)],
        "d_ensemble": name[(w * p_tfidf + (1 - w) * p_ft).argmax(1)],
    }
    rows, metrics = [], {}
    for key, pred in preds.items():
        f1 = bootstrap_ci(_macro_f1, y, pred, n_boot=N_BOOT)
        acc = bootstrap_ci(_accuracy, y, pred, n_boot=N_BOOT)
        full = classify.metrics(y, pred, frame.labels[test])
        rows.append({"model": key, "macro_f1": f1[0], "macro_f1_95ci": f"{f1[1]:.3f}-{f1[2]:.3f}",
                     "accuracy": acc[0], "accuracy_95ci": f"{acc[1]:.3f}-{acc[2]:.3f}",
                     "set_accuracy": full["set_accuracy"]})
        metrics |= {f"{key}_macro_f1": round(f1[0], 4), f"{key}_macro_f1_lo": round(f1[1], 4),
                    f"{key}_macro_f1_hi": round(f1[2], 4), f"{key}_accuracy": round(acc[0], 4),
                    f"{key}_accuracy_lo": round(acc[1], 4), f"{key}_accuracy_hi": round(acc[2], 4)}
    diffs = []
    for key in ("b_minilm_probe", "c_minilm_finetuned", "d_ensemble"):
        d = _paired_diff(y, preds[key], preds["a_tfidf_logreg"], _macro_f1)
        diffs.append({"comparison": f"{key} - a_tfidf_logreg", "macro_f1_diff": d[0],
                      "95ci": f"{d[1]:+.3f} to {d[2]:+.3f}"})
    import pandas as pd

    return {
        "metrics": {**metrics, "ensemble_weight_tfidf": w, "test_texts": int(test.sum()),
                    "finetuned_source": source},
        "peer": {"tfidf_logreg_macro_f1": metrics["a_tfidf_logreg_macro_f1"],
                 "tfidf_logreg_accuracy": metrics["a_tfidf_logreg_accuracy"]},
        "ratios": {f"{k}_over_tfidf_macro_f1": round(metrics[f"{k}_macro_f1"] / metrics["a_tfidf_logreg_macro_f1"], 4)
                   for k in ("b_minilm_probe", "c_minilm_finetuned", "d_ensemble")},
        "tables": {"test split (95% bootstrap CI)": markdown_table(pd.DataFrame(rows)),
                   "paired difference in macro-F1 vs TF-IDF": markdown_table(pd.DataFrame(diffs))},
        "notes": f"{int(test.sum())} de-duplicated test texts, {len(classes)} classes; fine-tuned model: "
                 f"{source}, card config {card['config']}. Validation = "
                 f"{int(val.sum())} train texts (salted hash); ensemble TF-IDF weight {w} tuned there.",
    }
