"""Tiny-config networks and masking: shapes and invariants."""

from __future__ import annotations

import pytest
import torch
from transformers import BertModel

from smartcare.core.errors import SmartcareError
from smartcare.genomics.dnalm.model import (
    TINY,
    CnnClassifier,
    CnnConfig,
    EncoderConfig,
    SequenceClassifier,
    bert_config,
    build_mlm,
    encoder_from_config,
)
from smartcare.genomics.dnalm.pretrain import mask_tokens
from smartcare.genomics.dnalm.tokenizers import char_tokenizer

SEQS = ["ACGTACGTTTGACC", "GGGCCCATAT", "TTTTACGCGCGATCGATCGA"]


@pytest.fixture(scope="module")
def tok():
    return char_tokenizer()


def _padding_invariant(model, tok):
    model.eval()
    enc = tok(SEQS, max_length=64)
    with torch.no_grad():
        batch = model(enc["input_ids"], enc["attention_mask"])  # (3, 2), padded to the longest
        alone = model(*tok(SEQS[:1], max_length=64).values())  # (1, 2), no padding
    assert batch.shape == (3, 2)
    torch.testing.assert_close(batch[:1], alone, atol=1e-5, rtol=1e-4)


def test_transformer_classifier_shapes_and_padding_invariance(tok):
    torch.manual_seed(0)
    enc = BertModel(bert_config(TINY, tok.vocab_size), add_pooling_layer=False)
    _padding_invariant(SequenceClassifier(enc), tok)


def test_cnn_shapes_and_padding_invariance(tok):
    torch.manual_seed(0)
    _padding_invariant(CnnClassifier(tok.vocab_size, CnnConfig(channels=8, layers=2, kernel=5)), tok)


def test_mlm_logits_cover_the_vocab(tok):
    model = build_mlm(TINY, tok.vocab_size)
    enc = tok(SEQS, max_length=32)
    out = model(**enc)
    assert out.logits.shape == (3, enc["input_ids"].shape[1], tok.vocab_size)  # (B, T, V)


def test_encoder_rebuilds_from_its_config(tok):
    enc = BertModel(bert_config(TINY, tok.vocab_size), add_pooling_layer=False)
    again = encoder_from_config(enc.config.to_dict())
    assert set(again.state_dict()) == set(enc.state_dict())


def test_config_validation():
    with pytest.raises(SmartcareError, match="divisible"):
        EncoderConfig(hidden=30, heads=4)


def test_masking_respects_special_tokens_and_padding(tok):
    enc = tok(SEQS * 20, max_length=32)
    gen = torch.Generator().manual_seed(0)
    masked, labels = mask_tokens(enc["input_ids"], enc["attention_mask"], tok, 0.15, gen)
    chosen = labels != -100
    special = torch.isin(enc["input_ids"], torch.tensor(tok.hf.all_special_ids))
    assert not (chosen & special).any()
    assert torch.equal(labels[chosen], enc["input_ids"][chosen])
    assert torch.equal(masked[~chosen], enc["input_ids"][~chosen])
    frac = chosen.sum().item() / (enc["attention_mask"].bool() & ~special).sum().item()
    assert 0.10 < frac < 0.20
    assert (masked[chosen] == tok.hf.mask_token_id).float().mean() > 0.6
