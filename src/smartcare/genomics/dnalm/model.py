"""Networks: a BERT-style DNA encoder (``transformers`` ``BertConfig``), a sequence classifier over any
Hugging Face encoder, and a CNN baseline.

The encoder follows BERT (Devlin et al. 2019) as used for DNA by DNABERT (Ji et al. 2021); the default
size is CPU-sized (4 layers, hidden 256) and larger configs run unchanged on CUDA. The CNN baseline is a
DeepBind/Basset-style stack of 1-D convolutions over nucleotide embeddings with global max pooling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, BertConfig, BertForMaskedLM, PretrainedConfig

from smartcare.core.errors import SmartcareError


@dataclass(frozen=True)
class EncoderConfig:
    """Size of the BERT-style encoder."""

    hidden: int = 256  # hidden size
    layers: int = 4  # transformer blocks
    heads: int = 4  # attention heads (hidden must divide by it)
    intermediate: int = 1024  # feed-forward width
    max_positions: int = 512  # learned absolute positions (tokens, incl. [CLS]/[SEP])
    dropout: float = 0.1  # hidden and attention dropout

    def __post_init__(self):
        if self.hidden % self.heads:
            raise SmartcareError(f"hidden size {self.hidden} is not divisible by {self.heads} heads")


TINY = EncoderConfig(hidden=32, layers=2, heads=2, intermediate=64, max_positions=128, dropout=0.0)


def bert_config(cfg: EncoderConfig, vocab_size: int, pad_token_id: int = 0) -> BertConfig:
    return BertConfig(vocab_size=vocab_size, hidden_size=cfg.hidden, num_hidden_layers=cfg.layers,
                      num_attention_heads=cfg.heads, intermediate_size=cfg.intermediate,
                      max_position_embeddings=cfg.max_positions, hidden_dropout_prob=cfg.dropout,
                      attention_probs_dropout_prob=cfg.dropout, pad_token_id=pad_token_id,
                      type_vocab_size=1)


def build_mlm(cfg: EncoderConfig, vocab_size: int, pad_token_id: int = 0) -> BertForMaskedLM:
    """A randomly initialised ``BertForMaskedLM`` for masked-LM pretraining."""
    return BertForMaskedLM(bert_config(cfg, vocab_size, pad_token_id))


class SequenceClassifier(nn.Module):
    """Any HF encoder (``BertModel``, ``EsmModel``, ...) + masked mean pooling + a linear head.

    ``forward(input_ids (B, T), attention_mask (B, T)) -> logits (B, n_classes)``. Mean pooling over
    tokens follows the DNA foundation-model benchmark (Nature Communications 2025).
    """

    def __init__(self, encoder: nn.Module, n_classes: int = 2, dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        hidden = encoder.config.hidden_size
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (B, T, H)
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, T, 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        return self.head(self.dropout(pooled))  # (B, C)


@dataclass(frozen=True)
class CnnConfig:
    """Size of the CNN baseline."""

    embed: int = 16  # nucleotide embedding size (a learned one-hot)
    channels: int = 128  # filters per conv layer
    kernel: int = 9  # conv kernel width in nucleotides
    layers: int = 3  # conv layers
    dropout: float = 0.2  # before the head


class CnnClassifier(nn.Module):
    """Conv1d stack over single-nucleotide token embeddings, global max + mean pooling, linear head.

    ``forward(input_ids (B, T), attention_mask (B, T)) -> logits (B, n_classes)``.
    """

    def __init__(self, vocab_size: int, cfg: CnnConfig = CnnConfig(), n_classes: int = 2):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(vocab_size, cfg.embed, padding_idx=0)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv1d(cfg.embed if i == 0 else cfg.channels, cfg.channels, cfg.kernel,
                                    padding=cfg.kernel // 2), nn.BatchNorm1d(cfg.channels), nn.GELU())
            for i in range(cfg.layers))
        self.dropout = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(2 * cfg.channels, n_classes)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        m = attention_mask.unsqueeze(1).to(torch.float32)  # (B, 1, T)
        h = self.embed(input_ids).transpose(1, 2)  # (B, E, T)
        for block in self.convs:
            h = block(h) * m  # (B, C, T); padding zeroed so it matches the convolution's own zero padding
        hmax = h.masked_fill(m == 0, float("-inf")).amax(-1)  # (B, C)
        hmean = (h * m).sum(-1) / m.sum(-1).clamp(min=1.0)  # (B, C)
        return self.head(self.dropout(torch.cat([hmax, hmean], dim=1)))  # (B, C_out)


def encoder_from_config(config: dict) -> nn.Module:
    """A randomly initialised HF base model (``BertModel``, ``EsmModel``) from a ``config.json`` dict."""
    config = dict(config)
    model_type = config.pop("model_type", None)
    if not model_type:
        raise SmartcareError("encoder config lacks model_type")
    hf_config: PretrainedConfig = AutoConfig.for_model(model_type, **config)
    return AutoModel.from_config(hf_config, add_pooling_layer=False)


def cnn_config_dict(cfg: CnnConfig) -> dict:
    return asdict(cfg)
