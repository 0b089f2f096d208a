"""Training loop for the denoiser with a per-step learning-rate schedule and a loss switch.

``core.training.fit`` keeps one learning rate for the whole run; denoisers gain from annealing it
(cosine decay, Loshchilov & Hutter, "SGDR", ICLR 2017) and from an L1 phase followed by an L2 phase
(L2 is what PSNR measures). This loop does that and otherwise follows ``fit``: seeded, a progress bar,
AdamW, gradient clipping, per-epoch validation with the best state kept, ``run_dir/last.pt`` checkpoints
for resuming and a ``metrics.jsonl`` log. Step ``t`` of ``T = epochs * steps`` uses
``lr * (floor + (1 - floor) * (1 + cos(pi t / T)) / 2)`` under ``cosine`` and ``lr`` under ``constant``.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.nn import functional as F

from smartcare.core.device import choose_device
from smartcare.core.errors import SmartcareError
from smartcare.core.progress import progress
from smartcare.core.training import load_checkpoint, save_checkpoint, seed_everything

LOSSES = ("l2", "l1", "l1-l2")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class FitPlan:
    epochs: int
    steps: int  # batches per epoch
    lr: float
    schedule: str = "cosine"
    loss: str = "l1-l2"  # l1-l2: L1 for the first ``l1_fraction`` of the steps, then L2
    l1_fraction: float = 0.5
    floor: float = 0.01  # final learning rate as a fraction of ``lr`` (cosine)
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    desc: str = "denoiser"

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise SmartcareError(f"unknown schedule {self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if self.loss not in LOSSES:
            raise SmartcareError(f"unknown loss {self.loss!r}: use one of {', '.join(LOSSES)}")

    def lr_at(self, step: int) -> float:
        if self.schedule == "constant":
            return self.lr
        frac = min(step / max(self.epochs * self.steps, 1), 1.0)
        return self.lr * (self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * frac)))

    def loss_at(self, step: int) -> str:
        if self.loss == "l1-l2":
            return "l1" if step < self.l1_fraction * self.epochs * self.steps else "l2"
        return self.loss


def pixel_loss(kind: str, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.l1_loss(pred, target) if kind == "l1" else F.mse_loss(pred, target)


class Stop(Exception):
    """Raised by a sampler at the start of a pass once its wall-time budget is spent."""


def fit_scheduled(model: torch.nn.Module, loader: Iterable, score_fn: Callable[[torch.nn.Module, torch.device], float],
                  plan: FitPlan, run_dir: Path, resume: bool = False) -> tuple[int, list[dict]]:
    """Train ``model`` on ``(noisy, sigma_map, clean, *guides)`` batches (``model(noisy, sigma_map, *guides)``);
    leave it holding the best-validation state.

    Returns ``(best_epoch, history)``. Stops early, cleanly, when ``loader`` raises ``Stop``.
    """
    seed_everything(plan.seed)
    device = choose_device(plan.device)
    model.to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=plan.lr, weight_decay=0.0)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt = run_dir / "last.pt"
    start, best, best_epoch, best_state, history = 0, -math.inf, -1, None, []
    if resume and ckpt.exists():
        start, best, best_epoch, best_state, history = load_checkpoint(ckpt, model, opt, device)
    for epoch in range(start, plan.epochs):
        model.train()
        t0, total, n = time.time(), 0.0, 0
        try:
            batches = progress(loader, desc=f"{plan.desc} epoch {epoch + 1}/{plan.epochs}")
            for k, (noisy, smap, clean, *guides) in enumerate(batches):
                step = epoch * plan.steps + k
                for group in opt.param_groups:
                    group["lr"] = plan.lr_at(step)
                pred = model(noisy.to(device), smap.to(device), *(g.to(device) for g in guides))
                loss = pixel_loss(plan.loss_at(step), pred, clean.to(device))
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), plan.grad_clip)
                opt.step()
                total, n = total + float(loss.detach()), n + 1
        except Stop:
            break
        model.eval()
        with torch.no_grad():
            score = score_fn(model, device)
        row = {"epoch": epoch, "train_loss": total / max(n, 1), "val_score": score,
               "lr": plan.lr_at((epoch + 1) * plan.steps - 1), "seconds": round(time.time() - t0, 2)}
        history.append(row)
        if score > best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        with open(run_dir / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        save_checkpoint(ckpt, model, opt, epoch, best, best_epoch, best_state, history)
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_epoch, history
