"""Train, evaluate and ship the DRIVE vessel U-Net (``weights/drive-vessels/``).

Patch training (random FOV-centred crops with flips and 90-degree rotations, BCE + soft Dice loss) through
``core.training.fit``; the epoch with the best validation F1 on held-out training images is kept, the
decision threshold is chosen on those images, and the official test split is scored once at the end
against the first observer, with the second observer as the human reference.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from smartcare.core.errors import SmartcareError
from smartcare.core.progress import progress
from smartcare.core.registry import load_card, load_tensors, save_model
from smartcare.core.training import TrainConfig, fit
from smartcare.imaging.segment import (
    SegConfig,
    best_threshold,
    build_segmenter,
    config_from_card,
    config_to_dict,
    load_drive,
    predict_vessels,
    segmentation_metrics,
    vessel_features,
)


@dataclass(frozen=True)
class SegTrainSettings:
    """One reproducible segmenter training run; ``command()`` is the CLI call that repeats it."""

    epochs: int = 12  # epochs of ``steps`` batches each; the best validation-F1 epoch is kept
    steps: int = 40  # batches per epoch
    batch_size: int = 16  # patches per batch
    patch: int = 64  # square patch side (multiple of the U-Net stride product)
    lr: float = 2e-3  # AdamW learning rate
    val_ids: tuple[int, ...] = (39, 40)  # training images held out for model and threshold selection
    max_minutes: float = 0.0  # stop taking new epochs after this wall time (0 = no limit)
    seed: int = 0  # seeds initialisation, patch sampling and augmentation
    device: str = "cpu"  # cpu, cuda or auto
    name: str = "drive-vessels"  # registry name
    channels: tuple[int, ...] = (8, 16, 32, 64)  # U-Net widths, recorded in the command
    tta: bool = True  # flip test-time augmentation when scoring val/test
    resume: bool = False  # continue from run_dir/last.pt (a chain of time-limited runs)
    ship: bool = True  # score val/test and write weights/<name>/ (False: intermediate link of a chain)

    def command(self) -> str:
        parts = ["smartcare imaging train-segmenter", f"--epochs {self.epochs}", f"--steps {self.steps}",
                 f"--batch-size {self.batch_size}", f"--patch {self.patch}", f"--lr {self.lr:g}",
                 f"--channels {','.join(map(str, self.channels))}", f"--seed {self.seed}",
                 f"--device {self.device}"]
        if not self.tta:
            parts.append("--no-tta")
        if self.resume:
            parts.append("--resume")
        if not self.ship:
            parts.append("--no-ship")
        if self.resume or not self.ship:
            parts.append("--run-dir RUN_DIR")
        if self.max_minutes:
            parts.append(f"--max-minutes {self.max_minutes:g}")
        if self.name != "drive-vessels":
            parts.append(f"--name {self.name}")
        return " ".join(parts)


class TimeUp(Exception):
    """Raised by a sampler at the start of a pass once its wall-time budget is spent."""


def fit_until(model, loader, *, loss_fn, score_fn, config: TrainConfig) -> tuple[int, list[dict]]:
    """``core.training.fit`` that stops cleanly when ``loader`` raises ``TimeUp`` between epochs.

    ``config.run_dir`` must be set: on ``TimeUp`` the best state is restored from its ``last.pt``.
    Returns ``(best_epoch, history)``.
    """
    try:
        result = fit(model, loader, None, loss_fn=loss_fn, score_fn=score_fn, config=config)
        return result.best_epoch, result.history
    except TimeUp:
        state = torch.load(config.run_dir / "last.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(state["best_state"])
        return state["best_epoch"], state["history"]


class PatchSampler:
    """Iterable of ``steps`` batches ``(x, y)``: x (B, C, p, p) features, y (B, 1, p, p) vessel labels.

    Patch centres are drawn uniformly from FOV pixels; each patch gets a random flip and 90-degree
    rotation (vessel maps have no preferred orientation). Each pass draws fresh patches from a generator
    seeded once, so a run is reproducible.
    """

    def __init__(self, feats: list[np.ndarray], labels: list[np.ndarray], fovs: list[np.ndarray], *,
                 steps: int, batch_size: int, patch: int, seed: int, deadline: float | None = None):
        half = patch // 2
        self.feats = [np.pad(f, ((0, 0), (half, half), (half, half))) for f in feats]  # (C, H+p, W+p)
        self.labels = [np.pad(y, half).astype(np.float32) for y in labels]
        self.centres = [np.argwhere(f) for f in fovs]  # (K, 2) row, col
        self.steps, self.batch_size, self.patch = steps, batch_size, patch
        self.rng = np.random.default_rng(seed)
        self.deadline, self.passes = deadline, 0

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        if self.deadline and self.passes and time.time() > self.deadline:
            raise TimeUp
        self.passes += 1
        p = self.patch
        for _ in range(self.steps):
            xs, ys = [], []
            for _ in range(self.batch_size):
                i = int(self.rng.integers(len(self.feats)))
                r, c = self.centres[i][self.rng.integers(len(self.centres[i]))]
                x = self.feats[i][:, r:r + p, c:c + p]  # (C, p, p): padded coords put the centre mid-patch
                y = self.labels[i][None, r:r + p, c:c + p]  # (1, p, p)
                k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
                x, y = np.rot90(x, k, axes=(1, 2)), np.rot90(y, k, axes=(1, 2))
                if flip:
                    x, y = x[:, :, ::-1], y[:, :, ::-1]
                xs.append(np.ascontiguousarray(x))
                ys.append(np.ascontiguousarray(y))
            yield torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def vessel_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    """Binary cross-entropy + soft Dice (Milletari et al., 3DV 2016) on a batch of patches."""
    x, y = batch
    logits = model(x)
    prob = torch.sigmoid(logits)
    dice = 1 - (2 * (prob * y).sum() + 1) / (prob.sum() + y.sum() + 1)
    return F.binary_cross_entropy_with_logits(logits, y) + dice


def _predict_all(model, feats, device, roi, tta, desc="predict") -> np.ndarray:
    return np.stack([predict_vessels(model, f, roi=roi, tta=tta, device=device)
                     for f in progress(feats, desc=desc, total=len(feats))])


def train_segmenter(settings: SegTrainSettings, config: SegConfig = SegConfig(),
                    weights_root: Path | str | None = None, data_root: Path | str | None = None,
                    run_dir: Path | None = None, log=print) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train on DRIVE training images (minus ``val_ids``), score the official test split, ship the model.

    Returns ``(model, card)``; the card's ``metrics`` hold ``val``, ``test`` (vs the first observer, in the
    FOV) and ``second_observer`` (the second observer scored the same way).
    """
    s = replace(settings, channels=tuple(config.channels))
    if s.patch % int(np.prod(config.strides)) or s.epochs < 1 or s.steps < 1 or s.batch_size < 1:
        raise SmartcareError("patch must be a multiple of the U-Net stride product; epochs, steps and "
                             "batch size must be >= 1")
    start = time.time()
    train = load_drive("train", data_root)
    ids = train["ids"].tolist()
    missing = [i for i in s.val_ids if i not in ids]
    if missing:
        raise SmartcareError(f"validation ids {missing} are not DRIVE training ids (21-40)")
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="smartcare-seg-"))
    cache = run_dir / "features_train.npy"  # links of a resumed chain reuse the features
    if cache.is_file():
        feats = list(np.load(cache))
    else:
        log("computing features for 20 training images")
        feats = [vessel_features(im, fov) for im, fov in zip(train["images"], train["fov_mask"], strict=True)]
        run_dir.mkdir(parents=True, exist_ok=True)
        np.save(cache, np.stack(feats))
    is_val = np.isin(train["ids"], s.val_ids)
    tr = [i for i in range(len(ids)) if not is_val[i]]
    va = [i for i in range(len(ids)) if is_val[i]]
    torch.manual_seed(s.seed)
    model = build_segmenter(config)
    deadline = start + 60 * s.max_minutes if s.max_minutes else None
    done = 0  # epochs already run in earlier links of a resumed chain: fresh patches for the new ones
    if s.resume and run_dir is not None and (run_dir / "metrics.jsonl").is_file():
        done = len((run_dir / "metrics.jsonl").read_text().splitlines())
    sampler = PatchSampler([feats[i] for i in tr], [train["manual1"][i] for i in tr],
                           [train["fov_mask"][i] for i in tr], steps=s.steps, batch_size=s.batch_size,
                           patch=s.patch, seed=s.seed + 1000 * done, deadline=deadline)
    def score(model, _loader, device) -> float:
        prob = _predict_all(model, [feats[i] for i in va], device, config.roi, tta=False, desc="val")
        _, f1 = best_threshold(train["manual1"][va], prob, train["fov_mask"][va])
        log(f"  val F1 {f1:.4f}  ({time.time() - start:.0f} s)")
        return f1

    cfg = TrainConfig(epochs=s.epochs, lr=s.lr, weight_decay=1e-4, patience=s.epochs, seed=s.seed,
                      device=s.device, run_dir=run_dir, resume=s.resume, desc="segmenter")
    with open(run_dir / "commands.txt", "a") as fh:  # every link of a resumed chain, in order
        fh.write(s.command() + "\n")
    best_epoch, history = fit_until(model, sampler, loss_fn=vessel_loss, score_fn=score, config=cfg)
    if not s.ship:
        log(f"stopped after {len(history)} epochs (best {best_epoch}); checkpoint in {run_dir}, not shipped")
        return model, {}
    device = next(model.parameters()).device
    prob_val = _predict_all(model, [feats[i] for i in va], device, config.roi, tta=s.tta, desc="val")
    threshold, _ = best_threshold(train["manual1"][va], prob_val, train["fov_mask"][va])
    val = segmentation_metrics(train["manual1"][va], prob_val, train["fov_mask"][va], threshold)
    test, human = evaluate_test(model, config, threshold, device, data_root, tta=s.tta)
    model.cpu()
    card = {
        "task": "image-segmentation", "architecture": "MONAI UNet (2D) on CLAHE/top-hat/Frangi features",
        "config": config_to_dict(config), "threshold": threshold, "tta": s.tta,
        "classes": ["background", "vessel"],
        "training_data": "DRIVE training images 21-40 (Staal et al. 2004), first observer",
        "split": {"train": [ids[i] for i in tr], "val": list(s.val_ids), "test": "DRIVE test 01-20 (official)"},
        "command": " && ".join((run_dir / "commands.txt").read_text().split("\n")[:-1]), "seed": s.seed,
        "training": {"epochs_run": len(history), "best_epoch": best_epoch, "steps": s.steps,
                     "batch_size": s.batch_size, "patch": s.patch, "lr": s.lr,
                     "history": history, "seconds": round(time.time() - start, 1)},
        "metrics": {"val": val, "test": test, "second_observer": human},
    }
    save_model(s.name, model.state_dict(), card, root=weights_root)
    return model, card


def evaluate_test(model: torch.nn.Module, config: SegConfig, threshold: float, device="cpu",
                  data_root: Path | str | None = None, tta: bool = True) -> tuple[dict, dict]:
    """Score the model on the 20 DRIVE test images (first observer, FOV) and the second observer."""
    test = load_drive("test", data_root)
    feats = [vessel_features(im, fov) for im, fov in zip(test["images"], test["fov_mask"], strict=True)]
    prob = _predict_all(model, feats, device, config.roi, tta=tta, desc="test")
    ours = segmentation_metrics(test["manual1"], prob, test["fov_mask"], threshold)
    human = segmentation_metrics(test["manual1"], test["manual2"].astype(np.float32), test["fov_mask"], 0.5,
                                 with_auc=False)
    return ours, human


def load_segmenter(name: str = "drive-vessels", root: Path | str | None = None,
                   device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild a shipped segmenter from ``weights/<name>/``: ``(model in eval mode, card)``."""
    card = load_card(name, root)
    if card.get("task") != "image-segmentation":
        raise SmartcareError(f"model {name!r} is a {card.get('task')!r} model, not a segmenter")
    model = build_segmenter(config_from_card(card))
    model.load_state_dict(load_tensors(name, root))
    from smartcare.core.device import choose_device

    return model.to(choose_device(device)).eval(), card


def with_overrides(settings: SegTrainSettings, **kw) -> SegTrainSettings:
    return replace(settings, **{k: v for k, v in kw.items() if v is not None})


def rescore_segmenter(name: str = "drive-vessels", tta: bool | None = None, root: Path | str | None = None,
                      data_root: Path | str | None = None, log=print) -> dict[str, Any]:
    """Re-choose the threshold of a shipped segmenter on its validation images, rescore the test split and
    the second observer, and rewrite its card (weights unchanged). Returns the updated card."""
    model, card = load_segmenter(name, root)
    config = config_from_card(card)
    tta = bool(card.get("tta", True)) if tta is None else tta
    train = load_drive("train", data_root)
    va = [i for i, k in enumerate(train["ids"].tolist()) if k in card["split"]["val"]]
    feats = [vessel_features(train["images"][i], train["fov_mask"][i]) for i in va]
    prob_val = _predict_all(model, feats, "cpu", config.roi, tta=tta, desc="val")
    threshold, _ = best_threshold(train["manual1"][va], prob_val, train["fov_mask"][va])
    log(f"threshold {threshold:.2f} chosen on val ids {card['split']['val']}")
    card["metrics"]["val"] = segmentation_metrics(train["manual1"][va], prob_val, train["fov_mask"][va], threshold)
    card["metrics"]["test"], card["metrics"]["second_observer"] = evaluate_test(model, config, threshold, "cpu",
                                                                                 data_root, tta=tta)
    card.update(threshold=threshold, tta=tta,
                rescored_by=f"smartcare imaging rescore-segmenter --model {name}" + ("" if tta else " --no-tta"))
    save_model(name, load_tensors(name, root), card, root=root)
    return card

