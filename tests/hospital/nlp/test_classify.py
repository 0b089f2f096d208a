"""MTSamples specialty classification: de-duplication and split invariants; TF-IDF baseline (slow)."""

from __future__ import annotations

import pytest

from smartcare.hospital.nlp.classify import load_mtsamples, metrics, tfidf_logreg


@pytest.fixture(scope="module")
def frame(shared_data):
    return load_mtsamples(shared_data / "hospital/mtsamples/mtsamples_train.csv")


def test_dedup_and_split_without_leakage(frame):
    assert frame.text.is_unique and len(frame) == 1886
    train, test = set(frame.text[frame.split == "train"]), set(frame.text[frame.split == "test"])
    assert not train & test and 300 < len(test) < 450
    assert all(lab in labs or lab == "Other" for lab, labs in zip(frame.label, frame.labels, strict=True))
    # the primary label is the specific one, not the generic "Surgery" bucket
    both = frame[frame.labels.apply(lambda ls: set(ls) == {"Surgery", "Orthopedic"})]
    assert len(both) > 0 and (both.label == "Orthopedic").all()


def test_metrics_set_accuracy():
    m = metrics(["a", "b"], ["a", "c"], [("a",), ("b", "c")])
    assert m["accuracy"] == 0.5 and m["set_accuracy"] == 1.0


@pytest.mark.slow
def test_tfidf_baseline(frame):
    m = tfidf_logreg(frame)
    print(m)
    assert m["macro_f1"] > 0.55 and m["set_accuracy"] > 0.75
