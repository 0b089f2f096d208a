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


# --- (c) fine-tuned MiniLM: tiny config for the mechanics, the shipped model for reproducibility ---


@pytest.fixture(scope="module")
def tokenizer():
    from smartcare.hospital.nlp.finetune import base_encoder

    return base_encoder()[1]


def _tiny_encoder(vocab_size: int):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    return BertModel(cfg, add_pooling_layer=False)


def test_head_tail_truncation(tokenizer):
    from smartcare.hospital.nlp.finetune import encode_head_tail

    long = " ".join(f"w{i}" for i in range(300))
    ids, mask = encode_head_tail(tokenizer, [long, "short note"], head=8, tail=6)
    assert ids.shape == mask.shape == (2, 14)
    row = ids[0].tolist()
    assert row[0] == tokenizer.cls_token_id and row[-1] == tokenizer.sep_token_id
    pieces = tokenizer(long, add_special_tokens=False)["input_ids"]
    assert row[1:8] == pieces[:7] and row[8:13] == pieces[-5:]
    assert mask[1].sum() == len(tokenizer("short note")["input_ids"]) and ids[1, -1] == tokenizer.pad_token_id


def test_tiny_finetune_step_lowers_loss_and_shapes(tokenizer):
    import numpy as np
    import torch

    from smartcare.hospital.nlp.finetune import FinetuneConfig, SpecialtyModel, encode_head_tail, train

    texts = ["chest pain troponin stent", "knee fracture cast", "coronary angiogram", "hip arthroplasty"]
    y = np.array([0, 1, 0, 1])
    torch.manual_seed(0)
    model = SpecialtyModel(_tiny_encoder(tokenizer.vocab_size), n_classes=3)
    ids, mask = encode_head_tail(tokenizer, texts, 8, 4)
    model.eval()  # no dropout: the same batch before and after one step
    loss_fn = torch.nn.CrossEntropyLoss()
    before = loss_fn(model(ids, mask), torch.as_tensor(y))
    assert model.n_frozen == 0 and model(ids, mask).shape == (4, 3)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    before.backward()
    opt.step()
    assert loss_fn(model(ids, mask), torch.as_tensor(y)).detach().item() < before.item()
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    # the training loop itself: one step, one history row, validation scored
    cfg = FinetuneConfig(head_tokens=8, tail_tokens=4, epochs=1, batch_size=2, max_steps=1, device="cpu",
                         train_layers=1)
    net, history = train(texts, y, texts[:2], y[:2], 3, cfg,
                         encoder_and_tokenizer=(_tiny_encoder(tokenizer.vocab_size), tokenizer))
    assert len(history) == 1 and history[0]["steps"] == 1 and 0.0 <= history[0]["val_macro_f1"] <= 1.0
    assert net.n_frozen == 1 and not any(p.requires_grad for p in net.encoder.encoder.layer[0].parameters())
    net.eval()  # the cached path (frozen features, then the top) is the full forward
    assert torch.allclose(net.top(net.features(ids, mask), mask), net(ids, mask), atol=1e-5)


def test_fp16_delta_roundtrip_and_mismatch(tokenizer):
    import torch

    from smartcare.core.errors import SmartcareError
    from smartcare.hospital.nlp.finetune import SpecialtyModel, apply_delta, encode_head_tail, to_fp16_delta

    torch.manual_seed(1)
    a = SpecialtyModel(_tiny_encoder(tokenizer.vocab_size), 3).eval()
    delta = to_fp16_delta(a)
    assert delta["encoder.encoder.layer.0.attention.self.query.weight"].dtype == torch.float16
    assert delta["head.weight"].dtype == torch.float32 and not any("embeddings" in k for k in delta)
    torch.manual_seed(2)
    b = apply_delta(SpecialtyModel(_tiny_encoder(tokenizer.vocab_size), 3), delta).eval()
    b.encoder.embeddings.load_state_dict(a.encoder.embeddings.state_dict())  # ships as the packaged encoder
    ids, mask = encode_head_tail(tokenizer, ["atrial fibrillation on warfarin"], 16, 0)
    assert torch.allclose(a(ids, mask), b(ids, mask), atol=1e-2)
    with pytest.raises(SmartcareError, match="shape"):
        apply_delta(SpecialtyModel(_tiny_encoder(tokenizer.vocab_size), 4), delta)


def test_validation_split_is_carved_from_train(frame):
    from smartcare.hospital.nlp.finetune import val_mask

    val = val_mask(frame, 0.15)
    assert (frame.split[val] == "train").all()
    assert 0.10 < val.sum() / (frame.split == "train").sum() < 0.20


def test_best_shipped_model_reproduces_its_card_on_a_test_slice(frame):
    import json

    from typer.testing import CliRunner

    from smartcare.cli import app
    from smartcare.core.registry import load_card
    from smartcare.hospital.nlp.classify import TFIDF_NAME, best_model_name, predict_best, predict_tfidf
    from smartcare.hospital.nlp.finetune import FT_NAME

    texts = frame.text[frame.split == "test"].tolist()[:32]  # the slice the card records
    got = predict_best(texts)
    name = best_model_name()
    if name == FT_NAME:
        assert [r["specialty"] for r in got] == load_card(FT_NAME)["test_slice"]["predictions"]
    else:
        assert name == TFIDF_NAME and [r["specialty"] for r in got] == predict_tfidf(texts)
    assert all(r["model"] == name and 0 < r["probability"] <= 1 for r in got)
    result = CliRunner().invoke(app, ["hospital", "mtsamples-classify", texts[0], texts[1]])
    assert result.exit_code == 0, result.output
    assert [r["specialty"] for r in json.loads(result.stdout)] == [r["specialty"] for r in got[:2]]
    bad = CliRunner().invoke(app, ["hospital", "mtsamples-classify", "  "])
    assert bad.exit_code == 2 and "non-empty" in bad.output


def test_ensemble_weight_is_tuned_towards_the_better_model():
    import numpy as np

    from smartcare.hospital.nlp.specialty import tune_weight

    y = np.array([0, 1, 2])
    right, wrong = np.eye(3), np.roll(np.eye(3), 1, axis=1)  # (3, 3) probabilities
    assert tune_weight(right, wrong, y) == (0.55, 1.0)  # TF-IDF right: the smallest winning TF-IDF share
    assert tune_weight(wrong, right, y) == (0.0, 1.0)


def test_ship_and_load_finetuned_minilm_roundtrip(tmp_path):
    import torch

    from smartcare.hospital.nlp.classify import best_model_name, predict_best
    from smartcare.hospital.nlp.finetune import (
        FT_NAME,
        FinetuneConfig,
        SpecialtyModel,
        apply_delta,
        base_encoder,
        finetuned_logits,
        load_finetuned,
        ship_finetuned,
        to_fp16_delta,
    )

    torch.manual_seed(0)
    encoder, tokenizer = base_encoder()
    model = SpecialtyModel(encoder, 2, train_layers=1).eval()
    apply_delta(model, to_fp16_delta(model))  # what ships
    config = FinetuneConfig(head_tokens=16, tail_tokens=8, train_layers=1)
    folder = ship_finetuned(model, ["Cardio", "Ortho"], config, {"command": "test", "metrics": {}}, root=tmp_path)
    assert (folder / "model.safetensors").stat().st_size < 25e6
    loaded, _, card = load_finetuned(tmp_path)
    texts = ["Coronary angiography showed a stenosis.", "Fracture of the distal radius, cast applied."]
    expected = finetuned_logits(texts, model, tokenizer, card)  # (2, 2)
    assert expected.shape == (2, 2) and card["parameters"] < 2e6  # one layer + head, not the whole encoder
    assert torch.allclose(torch.as_tensor(finetuned_logits(texts, loaded, tokenizer, card)),
                          torch.as_tensor(expected), atol=1e-5)
    assert best_model_name(tmp_path) == FT_NAME
    got = predict_best(texts, root=tmp_path)
    assert [r["specialty"] for r in got] == [card["classes"][i] for i in expected.argmax(1)]


def test_finetune_checkpoint_resume(tokenizer, tmp_path):
    import numpy as np
    import torch

    from smartcare.hospital.nlp.finetune import FinetuneConfig, train, trainable_state

    texts, y = ["chest pain", "knee fracture", "angiogram", "hip arthroplasty"], np.array([0, 1, 0, 1])
    cfg = FinetuneConfig(head_tokens=8, tail_tokens=0, epochs=1, batch_size=2, device="cpu", train_layers=1)
    pair = lambda: (_tiny_encoder(tokenizer.vocab_size), tokenizer)  # noqa: E731
    torch.manual_seed(0)
    first, history = train(texts, y, texts, y, 2, cfg, run_dir=tmp_path, encoder_and_tokenizer=pair())
    assert (tmp_path / "last.pt").exists() and len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1
    torch.manual_seed(0)
    again, resumed = train(texts, y, texts, y, 2, cfg, run_dir=tmp_path, resume=True, encoder_and_tokenizer=pair())
    assert resumed == history  # nothing left to train: the best state comes back from the checkpoint
    a, b = trainable_state(first), trainable_state(again)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_specialty_endpoint_uses_the_shipped_best_model():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from smartcare.hospital.nlp.api import router
    from smartcare.service.errors import install_error_handlers

    app = FastAPI()
    install_error_handlers(app)
    app.include_router(router, prefix="/api/hospital")
    client = TestClient(app)
    note = ("PREOPERATIVE DIAGNOSIS: Cataract, right eye. PROCEDURE: Phacoemulsification with intraocular lens "
            "implantation. The eye was prepped and draped; the lens was placed in the capsular bag.")
    r = client.post("/api/hospital/nlp/specialty", json={"texts": [note]})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    assert pred["model"] == "mtsamples-specialty-tfidf" and 0 < pred["probability"] <= 1
    assert pred["specialty"] in {"Ophthalmology", "Surgery"}
    assert client.post("/api/hospital/nlp/specialty", json={"texts": []}).status_code == 422
    assert client.post("/api/hospital/nlp/specialty", json={"texts": ["   "]}).status_code == 422
