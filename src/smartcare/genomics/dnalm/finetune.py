"""Fine-tune a sequence classifier on a GUE task (Zhou et al., DNABERT-2, ICLR 2024).

Three model kinds share one loop (``smartcare.core.training.fit``) and one budget (``max_steps`` optimizer
steps of ``batch_size`` sequences):

* ``transformer`` with ``init`` = a Hugging Face checkpoint folder: our pretrained encoder (``pretrain``
  writes ``run_dir/hf``) or an external DNABERT-2 / Nucleotide Transformer checkpoint;
* ``transformer`` with ``init=None``: the same BERT encoder randomly initialised (from scratch), with the
  tokenizer given by ``tokenizer`` (a folder or a name);
* ``cnn``: the CNN baseline over single-nucleotide tokens.

Model selection (early stopping, best step) uses ``val_fraction`` of the *train* split; the GUE ``dev``
split is only scored at the end, so dev numbers are not tuned on.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smartcare.core import metrics
from smartcare.core.errors import SmartcareError
from smartcare.core.training import TrainConfig, fit
from smartcare.genomics.dnalm.data import load_gue
from smartcare.genomics.dnalm.model import (
    CnnClassifier,
    CnnConfig,
    EncoderConfig,
    SequenceClassifier,
    bert_config,
)
from smartcare.genomics.dnalm.pretrain import score_after_training
from smartcare.genomics.dnalm.tokenizers import DnaTokenizer, build_tokenizer, char_tokenizer, load_tokenizer


@dataclass(frozen=True)
class FinetuneConfig:
    """One fine-tuning run."""

    task: str = "prom_core_all"  # GUE task
    model: str = "transformer"  # transformer or cnn
    init: Path | None = None  # HF checkpoint folder to start from; None trains from scratch
    tokenizer: str = "char"  # scratch transformer only: tokenizer folder or name (char, kmer6, ...)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)  # scratch transformer size
    cnn: CnnConfig = field(default_factory=CnnConfig)  # CNN baseline size
    max_steps: int = 2000  # optimizer steps in total (the shared budget)
    eval_every: int = 250  # steps between validation + checkpoint
    batch_size: int = 64  # sequences per step
    max_tokens: int = 512  # truncation length in tokens incl. specials
    lr: float = 3e-4  # AdamW learning rate
    val_fraction: float = 0.05  # part of train held out for model selection
    max_train: int | None = None  # use only the first N train sequences (tests); None: all
    max_minutes: float | None = None  # wall-clock cap (None: none)
    patience: int = 4  # validations without improvement before stopping
    seed: int = 0  # split, init, order
    device: str = "auto"  # cpu, cuda or auto
    run_dir: Path | None = None  # last.pt + metrics.jsonl; None keeps nothing on disk
    resume: bool = False  # continue from run_dir/last.pt


class ShuffledBatches:
    """``steps`` batches drawn without replacement (reshuffled each pass) from tokenized data."""

    def __init__(self, enc: dict[str, torch.Tensor], labels: torch.Tensor, batch_size: int, steps: int,
                 deadline: float | None = None):
        self.enc, self.labels, self.bs, self.steps, self.deadline = enc, labels, batch_size, steps, deadline
        self.order = torch.empty(0, dtype=torch.long)
        self.yielded = 0  # batches handed out so far (the steps actually taken)
        self.stepped = False  # whether a batch was handed out since the last validation

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for _ in range(self.steps):
            if self.deadline is not None and time.time() > self.deadline:
                return
            if len(self.order) < self.bs:
                self.order = torch.cat([self.order, torch.randperm(len(self.labels))])
            idx, self.order = self.order[:self.bs], self.order[self.bs:]
            self.yielded += 1
            self.stepped = True
            yield {"input_ids": self.enc["input_ids"][idx], "attention_mask": self.enc["attention_mask"][idx],
                   "labels": self.labels[idx]}


def encode(tok: DnaTokenizer, seqs: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """Tokenize all sequences at once, padded to the longest (B, T)."""
    return tok(list(seqs), max_length=max_tokens)


def load_encoder(folder: Path | str) -> nn.Module:
    """Base encoder of a local HF checkpoint (BERT-architecture DNABERT-2, Nucleotide Transformer / ESM).

    DNABERT-2's published weights need its custom modelling code (ALiBi, fused QKV), which we do not run
    (``trust_remote_code=False``, offline); a checkpoint whose weights do not match the standard
    ``transformers`` architecture named in ``config.json`` raises ``SmartcareError``.
    """
    from transformers import AutoModel

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise SmartcareError(f"{folder} is not a Hugging Face checkpoint folder (no config.json)")
    try:
        model, info = AutoModel.from_pretrained(str(folder), local_files_only=True, trust_remote_code=False,
                                                output_loading_info=True, add_pooling_layer=False)
    except (OSError, ValueError, KeyError) as err:
        raise SmartcareError(f"cannot load checkpoint {folder}: {err}") from err
    n_params = len(model.state_dict())
    missing = [k for k in info.get("missing_keys", []) if "position_ids" not in k]
    if len(missing) > 0.2 * n_params:
        raise SmartcareError(
            f"checkpoint {folder} does not match the standard {model.config.model_type} architecture "
            f"({len(missing)} of {n_params} weights missing, e.g. {missing[:3]}); DNABERT-2's original "
            "weights need its custom code: convert them to the transformers BERT layout first")
    return model


def build_classifier(cfg: FinetuneConfig) -> tuple[nn.Module, DnaTokenizer, dict[str, Any]]:
    """Model, tokenizer and the ``model_config`` record that ``predict.load_classifier`` rebuilds from."""
    torch.manual_seed(cfg.seed)
    if cfg.model == "cnn":
        tok = char_tokenizer()
        model = CnnClassifier(tok.vocab_size, cfg.cnn)
        return model, tok, {"kind": "cnn", "vocab_size": tok.vocab_size, "cnn": asdict(cfg.cnn)}
    if cfg.model != "transformer":
        raise SmartcareError(f"unknown model kind {cfg.model!r}: use transformer or cnn")
    if cfg.init is not None:
        tok = load_tokenizer(cfg.init)
        encoder = load_encoder(cfg.init)
    else:
        from transformers import BertModel

        is_dir = Path(cfg.tokenizer).is_dir()
        tok = load_tokenizer(cfg.tokenizer) if is_dir else build_tokenizer(cfg.tokenizer)
        hf_cfg = bert_config(cfg.encoder, tok.vocab_size, tok.pad_token_id)
        encoder = BertModel(hf_cfg, add_pooling_layer=False)
    model = SequenceClassifier(encoder)
    return model, tok, {"kind": "transformer", "encoder": encoder.config.to_dict()}


def predict_proba(model: nn.Module, enc: dict[str, torch.Tensor], batch_size: int = 256,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Class probabilities (N, C) in eval mode, batched."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(enc["input_ids"]), batch_size):
            ids = enc["input_ids"][i:i + batch_size].to(device)
            am = enc["attention_mask"][i:i + batch_size].to(device)
            out.append(torch.softmax(model(ids, am).float(), dim=-1).cpu())
    return torch.cat(out).numpy()


def scores(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    pred = proba.argmax(1)
    return {"mcc": metrics.mcc(y, pred), "auc": metrics.auc(y, proba[:, 1]),
            "accuracy": metrics.accuracy(y, pred), "n": int(len(y))}


def _ce_loss(model, batch) -> torch.Tensor:
    return nn.functional.cross_entropy(model(batch["input_ids"], batch["attention_mask"]), batch["labels"])


def finetune(cfg: FinetuneConfig) -> dict[str, Any]:
    """Train on GUE ``train`` (minus a validation slice), score on ``dev``.

    Returns ``{"model", "tokenizer", "model_config", "metrics": {"val": ..., "dev": ...}, "seconds",
    "steps", "history"}``.
    """
    t0 = time.time()
    model, tok, model_config = build_classifier(cfg)
    seqs, y = load_gue(cfg.task, "train")
    if cfg.max_train:
        seqs, y = seqs[:cfg.max_train], y[:cfg.max_train]
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(len(y))
    n_val = max(int(round(cfg.val_fraction * len(y))), 2)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    enc = encode(tok, seqs, cfg.max_tokens)
    sub = lambda e, idx: {k: v[torch.as_tensor(idx)] for k, v in e.items()}  # noqa: E731
    tr_enc, val_enc = sub(enc, tr_idx), sub(enc, val_idx)
    deadline = t0 + 60 * cfg.max_minutes if cfg.max_minutes else None
    train = ShuffledBatches(tr_enc, torch.as_tensor(y[tr_idx]), cfg.batch_size, cfg.eval_every, deadline)
    y_val = y[val_idx]

    def val_auc(m, _loader, device) -> float:
        return metrics.auc(y_val, predict_proba(m, val_enc, device=device)[:, 1])

    epochs = max(1, -(-cfg.max_steps // cfg.eval_every))
    tcfg = TrainConfig(epochs=epochs, lr=cfg.lr, weight_decay=0.01, patience=cfg.patience, seed=cfg.seed,
                       device=cfg.device, run_dir=cfg.run_dir, resume=cfg.resume,
                       desc=f"dnalm finetune {cfg.model} {cfg.task}")
    result = fit(model, train, None, loss_fn=_ce_loss, score_fn=score_after_training(val_auc, train), config=tcfg)
    device = next(model.parameters()).device
    dev_seqs, dev_y = load_gue(cfg.task, "dev")
    dev_proba = predict_proba(model, encode(tok, dev_seqs, cfg.max_tokens), device=device)
    model.cpu()
    return {"model": model, "tokenizer": tok, "model_config": model_config,
            "metrics": {"val": scores(y_val, predict_proba(model, val_enc)), "dev": scores(dev_y, dev_proba)},
            "seconds": round(time.time() - t0, 1), "steps": train.yielded,
            "best_epoch": result.best_epoch, "history": result.history}
