"""Pretrain -> fine-tune -> predict with tiny configs; external HF checkpoints (DNABERT-2 BERT form,
Nucleotide Transformer / ESM form) saved in tmp_path."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    EsmConfig,
    EsmForMaskedLM,
    EsmTokenizer,
)

from smartcare.core.errors import SmartcareError
from smartcare.genomics.dnalm.finetune import FinetuneConfig, finetune, load_encoder
from smartcare.genomics.dnalm.model import TINY, CnnConfig
from smartcare.genomics.dnalm.predict import load_classifier, predict, save_classifier
from smartcare.genomics.dnalm.pretrain import PretrainConfig, pretrain
from smartcare.genomics.dnalm.tokenizers import train_bpe

DOCS = ["ACGTTGCAAGGCTTACCGATCGATTTACGGGCCCATATTAGC" * 3, "TTTTACGCGCGATCGATCGAGGGCCCAAATTTGGG" * 4] * 5
FAST = dict(task="prom_core_tata", max_train=120, max_steps=4, eval_every=2, batch_size=16, max_tokens=48)


def _check(out):
    dev = out["metrics"]["dev"]
    assert dev["n"] == 613 and 0.0 <= dev["auc"] <= 1.0 and -1.0 <= dev["mcc"] <= 1.0
    assert out["steps"] == 4


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, shared_data):
    run = tmp_path_factory.mktemp("pretrain")
    cfg = PretrainConfig(run_dir=run, tokenizer="bpe", bpe_vocab=40, encoder=TINY, window_bp=30, max_tokens=16,
                         batch_size=8, steps_per_epoch=3, epochs=2, device="cpu")
    first = pretrain(cfg, DOCS, DOCS[:2])
    assert first.epochs_run == 2
    resumed = pretrain(PretrainConfig(**{**cfg.__dict__, "epochs": 3, "resume": True}), DOCS, DOCS[:2])
    return run, resumed


def test_pretraining_logs_checkpoints_and_resumes(pretrained):
    run, resumed = pretrained
    assert [h["epoch"] for h in resumed.history] == [0, 1, 2]  # epochs 0-1 restored, epoch 2 trained
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in lines] == [0, 1, 2] and all(np.isfinite(r["train_loss"]) for r in lines)
    assert (run / "hf" / "config.json").is_file() and (run / "hf" / "tokenizer.json").is_file()
    assert load_encoder(run / "hf").config.hidden_size == TINY.hidden


def test_finetune_from_pretrained_and_ship_round_trip(pretrained, tmp_path):
    run, _ = pretrained
    out = finetune(FinetuneConfig(model="transformer", init=run / "hf", **FAST))
    _check(out)
    card = {"task": "t", "architecture": "a", "training_data": "d", "split": "s", "command": "c",
            "metrics": out["metrics"], "seed": 0}
    save_classifier("tiny", out["model"], out["tokenizer"], out["model_config"], card, 48, root=tmp_path)
    clf = load_classifier("tiny", root=tmp_path)
    seqs = ["ACGTACGTAGGCTA", "ttgacNNNNcgt"]
    df = predict(clf, seqs, ["a", "b"])
    assert list(df.columns) == ["index", "sequence_id", "pred", "p_0", "p_1"]
    np.testing.assert_allclose(df["p_0"] + df["p_1"], 1.0, atol=1e-6)
    direct = torch.softmax(out["model"].eval()(*out["tokenizer"](seqs, 48).values()), -1)[:, 1]
    np.testing.assert_allclose(df["p_1"], direct.detach().numpy(), atol=1e-6)


def test_scratch_transformer_and_cnn_share_the_loop():
    _check(finetune(FinetuneConfig(model="transformer", tokenizer="kmer3n", encoder=TINY, **FAST)))
    _check(finetune(FinetuneConfig(model="cnn", cnn=CnnConfig(channels=8, layers=1, kernel=5), **FAST)))


def test_external_dnabert2_bert_form_checkpoint(tmp_path):
    """DNABERT-2 layout without its custom code: BertForMaskedLM config + BPE tokenizer.json."""
    bpe = train_bpe(DOCS, vocab_size=40)
    cfg = BertConfig(vocab_size=len(bpe.hf), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    BertForMaskedLM(cfg).save_pretrained(str(tmp_path))
    bpe.hf.save_pretrained(str(tmp_path))  # plain HF files only, as a downloaded checkpoint has
    _check(finetune(FinetuneConfig(model="transformer", init=tmp_path, **FAST)))


def _nt_vocab(path):
    kmers = ["".join(p) for p in itertools.product("ACGT", repeat=6)]
    path.write_text("\n".join(["<unk>", "<pad>", "<mask>", "<cls>", "<eos>", "<bos>", *kmers,
                               "A", "T", "C", "G", "N"]) + "\n")


def test_external_nucleotide_transformer_esm_checkpoint(tmp_path):
    _nt_vocab(tmp_path / "vocab.txt")
    tok = EsmTokenizer(str(tmp_path / "vocab.txt"))
    assert tok.tokenize("ACGTACGGGTTTA") == ["ACGTAC", "GGGTTT", "A"]  # NT: 6-mers, single-base tail
    cfg = EsmConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=64, max_position_embeddings=66, pad_token_id=1, mask_token_id=2,
                    position_embedding_type="rotary", token_dropout=False)
    EsmForMaskedLM(cfg).save_pretrained(str(tmp_path))
    tok.save_pretrained(str(tmp_path))
    out = finetune(FinetuneConfig(model="transformer", init=tmp_path, **FAST))
    _check(out)
    assert out["model_config"]["encoder"]["model_type"] == "esm"


def test_checkpoint_in_custom_layout_is_refused(tmp_path):
    cfg = BertConfig(vocab_size=20, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64)
    (tmp_path / "config.json").write_text(cfg.to_json_string())
    save_file({"bert.encoder.layer.0.attention.self.Wqkv.weight": torch.zeros(96, 32)},
              str(tmp_path / "model.safetensors"))
    with pytest.raises(SmartcareError, match="custom code"):
        load_encoder(tmp_path)


def test_hf_classification_checkpoint_predicts_and_mlm_only_is_refused(tmp_path):
    bpe = train_bpe(DOCS, vocab_size=40)
    cfg = BertConfig(vocab_size=len(bpe.hf), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, num_labels=2)
    BertForSequenceClassification(cfg).save_pretrained(str(tmp_path / "cls"))
    bpe.hf.save_pretrained(str(tmp_path / "cls"))
    df = predict(load_classifier(tmp_path / "cls"), ["ACGTTGCA", "GGGCCCAT", "acgt"])
    assert df.shape == (3, 5) and set(df["pred"]) <= {0, 1}
    BertForMaskedLM(cfg).save_pretrained(str(tmp_path / "mlm"))
    with pytest.raises(SmartcareError, match="no sequence-classification head"):
        load_classifier(tmp_path / "mlm")


def test_wall_clock_cap_stops_training():
    out = finetune(FinetuneConfig(model="cnn", cnn=CnnConfig(channels=8, layers=1, kernel=5),
                                  **{**FAST, "max_minutes": 1e-9}))
    assert out["steps"] == 0 and all(h["train_loss"] == 0.0 for h in out["history"])
