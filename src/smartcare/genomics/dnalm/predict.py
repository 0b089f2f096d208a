"""Predict with a fine-tuned DNA classifier: a shipped model (``weights/<name>/``), a folder written by
``save_classifier``, or a Hugging Face sequence-classification checkpoint folder
(``*ForSequenceClassification`` in ``config.json``, e.g. a DNABERT-2 / Nucleotide Transformer fine-tune).

A shipped model folder holds ``model.safetensors`` + ``card.json`` (``smartcare.core.registry``) and the
tokenizer files under ``tokenizer/``; the card's ``model_config`` says how to rebuild the network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file
from torch import nn

from smartcare.core import registry
from smartcare.core.errors import ModelNotFoundError, SmartcareError
from smartcare.genomics.dnalm.finetune import encode, predict_proba
from smartcare.genomics.dnalm.model import CnnClassifier, CnnConfig, SequenceClassifier, encoder_from_config
from smartcare.genomics.dnalm.tokenizers import DnaTokenizer, load_tokenizer

OUTPUT_COLUMNS = ("index", "sequence_id", "pred", "p_0", "p_1")


class _HfSequenceClassifier(nn.Module):
    """Adapter: ``forward(input_ids, attention_mask) -> logits`` over an HF ``*ForSequenceClassification``."""

    def __init__(self, hf_model: nn.Module):
        super().__init__()
        self.hf = hf_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.hf(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, C)


@dataclass
class Classifier:
    """A ready-to-use classifier: network (eval mode, CPU), tokenizer, token limit and card."""

    model: nn.Module
    tokenizer: DnaTokenizer
    max_tokens: int
    card: dict[str, Any]


def rebuild(model_config: dict[str, Any]) -> nn.Module:
    """An untrained network from a card's ``model_config`` (``kind`` transformer or cnn)."""
    kind = model_config.get("kind")
    if kind == "cnn":
        return CnnClassifier(int(model_config["vocab_size"]), CnnConfig(**model_config["cnn"]))
    if kind == "transformer":
        return SequenceClassifier(encoder_from_config(model_config["encoder"]))
    raise SmartcareError(f"model card has unknown model_config kind {kind!r}")


def token_limit(model_config: dict[str, Any]) -> int:
    """Longest input in tokens: the encoder's position table, or 100 kb for the CNN (any length works)."""
    if model_config.get("kind") == "transformer":
        return int(model_config["encoder"].get("max_position_embeddings", 512))
    return 100_000


def save_classifier(name: str, model: nn.Module, tok: DnaTokenizer, model_config: dict[str, Any],
                    card: dict[str, Any], max_tokens: int, root: Path | str | None = None) -> Path:
    """Ship a classifier as ``weights/<name>/`` (registry ``save_model``) plus ``tokenizer/``."""
    card = dict(card, model_config=model_config, train_max_tokens=max_tokens,
                output_columns=list(OUTPUT_COLUMNS))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    folder = registry.save_model(name, state, card, root=root)
    tok.save(folder / "tokenizer")
    return folder


def _from_folder(folder: Path, card: dict[str, Any]) -> Classifier:
    model = rebuild(card["model_config"])
    state = load_file(str(folder / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.endswith(("num_batches_tracked", "position_ids"))]
    if missing or unexpected:
        raise SmartcareError(f"weights in {folder} do not fit the card's model_config "
                             f"(missing {missing[:3]}, unexpected {unexpected[:3]})")
    tok = load_tokenizer(folder / "tokenizer")
    return Classifier(model.eval(), tok, token_limit(card["model_config"]), card)


def load_classifier(name_or_path: str | Path, root: Path | str | None = None) -> Classifier:
    """Load a shipped model by name, a ``save_classifier`` folder or an HF classification checkpoint."""
    path = Path(name_or_path)
    if path.is_dir() and (path / "card.json").is_file():
        return _from_folder(path, json.loads((path / "card.json").read_text()))
    if path.is_dir() and (path / "config.json").is_file():
        cfg = json.loads((path / "config.json").read_text())
        if not any(a.endswith("ForSequenceClassification") for a in cfg.get("architectures") or []):
            raise SmartcareError(f"{path} holds no sequence-classification head (architectures "
                                 f"{cfg.get('architectures')}): fine-tune it first with "
                                 f"`smartcare genomics dnalm finetune --init {path}`")
        from transformers import AutoModelForSequenceClassification

        hf = AutoModelForSequenceClassification.from_pretrained(str(path), local_files_only=True,
                                                                trust_remote_code=False)
        card = {"name": path.name, "architecture": cfg.get("architectures"), "source": str(path)}
        max_tokens = int(cfg.get("max_position_embeddings", 512))
        return Classifier(_HfSequenceClassifier(hf).eval(), load_tokenizer(path), max_tokens, card)
    if path.is_dir() or path.suffix:
        raise ModelNotFoundError(f"{path} is neither a shipped model folder (card.json) nor a Hugging Face "
                                 "checkpoint (config.json)")
    card = registry.load_card(str(name_or_path), root)
    if card.get("model_config") is None:
        raise SmartcareError(f"model {name_or_path!r} is not a DNA language model classifier")
    return _from_folder(registry.weights_dir(root) / str(name_or_path), card)


def predict(clf: Classifier, sequences: list[str], sequence_ids: list[str] | None = None,
            batch_size: int = 256) -> pd.DataFrame:
    """Class probabilities for ``sequences``: columns ``index, sequence_id, pred, p_0, p_1``.

    Bad symbols raise ``SmartcareError`` naming the sequence before any output is produced.
    """
    if not sequences:
        raise SmartcareError("no sequences to predict")
    ids = sequence_ids if sequence_ids is not None else [str(i) for i in range(len(sequences))]
    for i, s in enumerate(sequences):
        if not str(s).strip():
            raise SmartcareError(f"sequence {ids[i]!r} (row {i}) is empty")
        try:
            clf.tokenizer.prepare(s)
        except SmartcareError as err:
            raise SmartcareError(f"sequence {ids[i]!r} (row {i}): {err}") from err
    proba = np.concatenate([  # tokenized batch by batch: padding only to the longest in each batch
        predict_proba(clf.model, encode(clf.tokenizer, sequences[i:i + batch_size], clf.max_tokens), batch_size)
        for i in range(0, len(sequences), batch_size)])
    return pd.DataFrame({"index": np.arange(len(sequences)), "sequence_id": ids, "pred": proba.argmax(1),
                         "p_0": proba[:, 0], "p_1": proba[:, 1]})


class _Bf16Autocast(nn.Module):
    """Runs ``forward(input_ids, attention_mask)`` under bfloat16 autocast; logits come back float32."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        with torch.autocast(input_ids.device.type, dtype=torch.bfloat16):
            return self.model(input_ids, attention_mask).float()  # (B, C)


def optimise_for_inference(clf: Classifier) -> Classifier:
    """A copy of ``clf`` whose network runs under bfloat16 autocast (``clf`` is left unchanged).

    Probabilities equal eager float32 within bfloat16 rounding (~1e-2); fast on CPUs with native bf16
    (AVX512-BF16/AMX). Measured in ``benchmarks/genomics_dnalm.py``.
    """
    import copy

    return Classifier(_Bf16Autocast(copy.deepcopy(clf.model).eval()).eval(), clf.tokenizer, clf.max_tokens,
                      clf.card)
