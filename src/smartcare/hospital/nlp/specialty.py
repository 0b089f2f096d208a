"""MTSamples specialty, (c) and (d): fine-tune MiniLM, tune a TF-IDF + MiniLM ensemble, pick what to ship.

All choices (early stopping, the ensemble weight, which model is best) use the validation split carved from
TRAIN (``finetune.val_mask``); the test split of ``classify.load_mtsamples`` is only scored. For validation
the TF-IDF model is refitted on train minus validation; on test it is the model fitted on all of train (the
shipped ``mtsamples-specialty-tfidf``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.hospital.nlp import classify
from smartcare.hospital.nlp.finetune import (
    FinetuneConfig,
    apply_delta,
    base_encoder,
    finetuned_logits,
    to_fp16_delta,
    train,
    val_mask,
)

WEIGHT_GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)  # TF-IDF share of the ensemble probabilities
SLICE = 32  # first test texts whose predictions the card records (a fast reproducibility check)


def classes_of(frame: pd.DataFrame) -> list[str]:
    """Class list shared by every model: sorted primary labels of the train split (= the LR's ``classes_``)."""
    return sorted(frame.loc[frame.split == "train", "label"].unique())


def tfidf_proba(frame: pd.DataFrame, fit_rows: np.ndarray, rows: np.ndarray, classes: list[str],
                seed: int = 0) -> np.ndarray:
    """TF-IDF + LR fitted on ``fit_rows``; probabilities (N, C) of ``rows`` over ``classes`` (0 if unseen)."""
    sub = frame.assign(split=np.where(fit_rows, "train", "other"))
    vec, clf = classify.fit_tfidf(sub, seed=seed)
    p = clf.predict_proba(vec.transform(frame.text[rows]))  # (N, C_seen)
    out = np.zeros((p.shape[0], len(classes)))
    out[:, [classes.index(c) for c in clf.classes_]] = p
    return out


def tune_weight(p_tfidf: np.ndarray, p_ft: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Ensemble weight w (TF-IDF share) maximising macro-F1 on (p, y); ties go to the smaller w."""
    from sklearn.metrics import f1_score

    scores = [f1_score(y, (w * p_tfidf + (1 - w) * p_ft).argmax(1), average="macro") for w in WEIGHT_GRID]
    k = int(np.argmax(scores))
    return float(WEIGHT_GRID[k]), float(scores[k])


def _score(frame: pd.DataFrame, rows: np.ndarray, proba: np.ndarray, classes: list[str]) -> dict:
    sub = frame[rows]
    return classify.metrics(sub.label, [classes[i] for i in proba.argmax(1)], sub.labels)


def run(frame: pd.DataFrame, config: FinetuneConfig = FinetuneConfig(), run_dir: Path | None = None,
        resume: bool = False):
    """Fine-tune on train minus validation, then score TF-IDF, MiniLM-ft and their ensemble.

    Returns ``(model, classes, report)``; ``report`` holds validation and test metrics per model, the tuned
    ensemble weight, the model chosen on validation (``best``) and the training history. The model holds
    its fp16-rounded weights, i.e. exactly what ``finetune.ship_finetuned`` writes.
    """
    classes = classes_of(frame)
    index = {c: i for i, c in enumerate(classes)}
    y = frame.label.map(index).fillna(-1).astype(int).to_numpy()
    val = val_mask(frame, config.val_fraction)
    fit_rows = (frame.split == "train").to_numpy() & ~val
    test = (frame.split == "test").to_numpy()
    encoder, tokenizer = base_encoder()
    model, history = train(frame.text[fit_rows].tolist(), y[fit_rows], frame.text[val].tolist(), y[val],
                           len(classes), config, run_dir=run_dir, resume=resume,
                           encoder_and_tokenizer=(encoder, tokenizer))
    apply_delta(model, to_fp16_delta(model))  # score exactly what ships
    card = {"head_tokens": config.head_tokens, "tail_tokens": config.tail_tokens}
    ft = {name: classify.softmax(finetuned_logits(frame.text[rows].tolist(), model, tokenizer, card, config.device))
          for name, rows in (("validation", val), ("test", test))}
    tf = {"validation": tfidf_proba(frame, fit_rows, val, classes, config.seed),
          "test": tfidf_proba(frame, (frame.split == "train").to_numpy(), test, classes, config.seed)}
    w, _ = tune_weight(tf["validation"], ft["validation"], y[val])
    report: dict = {"fit_texts": int(fit_rows.sum()), "validation_texts": int(val.sum()),
                    "test_texts": int(test.sum()), "ensemble_weight_tfidf": w, "history": history}
    for split, rows in (("validation", val), ("test", test)):
        report[split] = {
            "tfidf_logreg": _score(frame, rows, tf[split], classes),
            "minilm_ft": _score(frame, rows, ft[split], classes),
            "ensemble": _score(frame, rows, w * tf[split] + (1 - w) * ft[split], classes),
        }
    for name, p in (("minilm_ft", ft["test"]), ("ensemble", w * tf["test"] + (1 - w) * ft["test"])):
        report.setdefault("test_slice_predictions", {})[name] = [classes[i] for i in p[:SLICE].argmax(1)]
    v = report["validation"]
    report["best"] = max(v, key=lambda k: (v[k]["macro_f1"], k == "tfidf_logreg"))  # ties keep the simpler model
    return model, classes, report
