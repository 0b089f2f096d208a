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


def test_ship_and_predict_probe_roundtrip(tmp_path):
    import pandas as pd

    from smartcare.core.registry import load_card
    from smartcare.hospital.nlp.classify import PROBE_NAME, embed, encoder, fit_probe, predict_specialty, ship_probe

    texts = [
        "Cardiac catheterization showed coronary stenosis.",
        "Echocardiogram: reduced ejection fraction.",
        "Total knee arthroplasty for osteoarthritis.",
        "ORIF of distal radius fracture.",
        "Atrial fibrillation with rapid ventricular response.",
        "Arthroscopic meniscus repair of the knee.",
    ]
    frame = pd.DataFrame(
        {
            "text": texts,
            "label": ["Cardio", "Cardio", "Ortho", "Ortho", "Cardio", "Ortho"],
            "labels": [("Cardio",), ("Cardio",), ("Ortho",), ("Ortho",), ("Cardio",), ("Ortho",)],
            "split": ["train"] * 6,
        }
    )
    model = encoder()
    clf = fit_probe(frame, embed(texts, model))
    folder = ship_probe(clf, {"macro_f1": 1.0}, root=tmp_path)
    assert (folder / "model.safetensors").exists()
    card = load_card(PROBE_NAME, tmp_path)
    assert card["classes"] == ["Cardio", "Ortho"] and card["parameters"] == 384 + 1  # binary: one weight row
    assert predict_specialty(["hip replacement surgery", "coronary artery disease"], tmp_path, model) == [
        "Ortho",
        "Cardio",
    ]


def test_shipped_tfidf_model_reproduces_its_card(frame):
    from smartcare.core.registry import load_card
    from smartcare.hospital.nlp.classify import TFIDF_NAME, metrics, predict_tfidf

    card = load_card(TFIDF_NAME)
    test = frame[frame.split == "test"]
    got = metrics(test.label, predict_tfidf(test.text.tolist()), test.labels)
    assert got == card["metrics"]["test"]
    assert card["metrics"]["test"]["macro_f1"] >= card["metrics"]["test_minilm_probe"]["macro_f1"]
