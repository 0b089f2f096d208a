"""One training loop for every domain's PyTorch models.

Seeded and deterministic on CPU, with a tqdm progress bar, early stopping on a validation score,
checkpoint + resume (``last.pt``), the best state kept in memory, and a per-epoch JSON log.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smartcare.core.device import choose_device
from smartcare.core.progress import progress


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run."""

    epochs: int = 10  # upper bound on epochs
    lr: float = 1e-3  # AdamW learning rate
    weight_decay: float = 1e-4  # AdamW weight decay
    patience: int = 3  # epochs without a better validation score before stopping
    seed: int = 0  # seeds python, numpy and torch
    device: str = "auto"  # cpu, cuda or auto
    run_dir: Path | None = None  # where last.pt and metrics.jsonl go; None keeps nothing on disk
    resume: bool = False  # continue from run_dir/last.pt when present
    grad_clip: float | None = 1.0  # max gradient norm, None disables clipping
    higher_is_better: bool = True  # direction of score_fn
    max_seconds: float | None = None  # stop after the epoch that crosses this wall-clock budget
    desc: str = "train"  # progress-bar label


@dataclass
class TrainResult:
    best_score: float
    best_epoch: int
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch; make CPU kernels deterministic."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def _to(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to(v, device) for v in batch)
    return batch


def save_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer, epoch: int, best: float,
                    best_epoch: int, best_state: dict | None, history: list[dict], **extra: Any) -> None:
    """Write ``last.pt``: everything :func:`load_checkpoint` needs to resume after ``epoch``."""
    torch.save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": epoch, "best": best,
                "best_epoch": best_epoch, "best_state": best_state, "history": history,
                "rng": torch.get_rng_state(), **extra}, path)


def load_checkpoint(path: Path, model: torch.nn.Module, opt: torch.optim.Optimizer,
                    device: torch.device) -> tuple[int, float, int, dict | None, list[dict]]:
    """Restore model, optimiser and RNG from ``path``; returns (start epoch, best, best epoch, best state,
    history)."""
    state = torch.load(path, map_location=device, weights_only=False)
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optim"])
    torch.set_rng_state(state["rng"])
    return state["epoch"] + 1, state["best"], state["best_epoch"], state["best_state"], state["history"]


def fit(model: torch.nn.Module, train_loader: Iterable, val_loader: Iterable | None, *,
        loss_fn: Callable[[torch.nn.Module, Any], torch.Tensor],
        score_fn: Callable[[torch.nn.Module, Iterable, torch.device], float] | None,
        config: TrainConfig) -> TrainResult:
    """Train ``model`` and leave it holding the best validation state.

    Args:
        loss_fn: ``(model, batch) -> scalar loss`` on a batch already moved to the device.
        score_fn: ``(model, val_loader, device) -> float`` validation score; ``None`` uses minus the
            mean training loss.
    Returns:
        TrainResult with the best score and epoch and the per-epoch history (also appended as JSON lines
        to ``run_dir/metrics.jsonl``).
    """
    seed_everything(config.seed)
    device = choose_device(config.device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sign = 1.0 if config.higher_is_better else -1.0
    start, best, best_epoch, best_state, history = 0, -float("inf"), -1, None, []
    ckpt = config.run_dir / "last.pt" if config.run_dir else None
    if config.run_dir:
        config.run_dir.mkdir(parents=True, exist_ok=True)
    if config.resume and ckpt and ckpt.exists():
        start, best, best_epoch, best_state, history = load_checkpoint(ckpt, model, opt, device)
    began = time.time()
    for epoch in range(start, config.epochs):
        model.train()
        t0, total, n = time.time(), 0.0, 0
        for batch in progress(train_loader, desc=f"{config.desc} epoch {epoch + 1}/{config.epochs}"):
            loss = loss_fn(model, _to(batch, device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            total, n = total + float(loss.detach()), n + 1
        train_loss = total / max(n, 1)
        model.eval()
        with torch.no_grad():
            score = score_fn(model, val_loader, device) if score_fn else -train_loss
        row = {"epoch": epoch, "train_loss": train_loss, "val_score": score, "seconds": time.time() - t0}
        history.append(row)
        if sign * score > best:
            best, best_epoch = sign * score, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        if config.run_dir:
            with open(config.run_dir / "metrics.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            save_checkpoint(ckpt, model, opt, epoch, best, best_epoch, best_state, history,
                            config={k: str(v) for k, v in asdict(config).items()})
        if epoch - best_epoch >= config.patience:
            break
        if config.max_seconds is not None and time.time() - began >= config.max_seconds:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return TrainResult(sign * best, best_epoch, len(history), history)
