"""Train, evaluate and ship the 28x28 MedMNIST classifiers (CNN baseline, and ViT pretrained by MIM).

``train(TrainSettings(...))`` runs optional SimMIM pretraining on the training images (ViT only), then
supervised fine-tuning with a cosine schedule, keeps the epoch with the best validation AUC, reports AUC
and ACC with percentile bootstrap CIs, and writes ``weights/<name>/`` with a card through the registry.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset

from smartcare.core import metrics
from smartcare.core.device import choose_device
from smartcare.core.errors import SmartcareError
from smartcare.core.progress import progress
from smartcare.core.registry import load_card, load_tensors, save_model
from smartcare.core.training import seed_everything
from smartcare.imaging.medmnist import available_splits, dataset_info, load_split
from smartcare.imaging.mim import MIMConfig, cosine_lr, pretrain_mim
from smartcare.imaging.networks import build_model, config_dict, make_config
from smartcare.imaging.transforms import classification_pipeline

# Per-architecture optimiser defaults: (learning rate, weight decay).
OPTIM_DEFAULTS = {"cnn": (2e-3, 5e-4), "vit": (5e-4, 0.05)}


@dataclass(frozen=True)
class TrainSettings:
    """One reproducible training run; ``command()`` renders it as the CLI call that repeats it."""

    dataset: str = "pneumoniamnist"  # a MedMNIST dataset under SMARTCARE_DATA/imaging/
    arch: str = "cnn"  # "cnn" (MONAI ResNet) or "vit" (ViT, optionally MIM-pretrained)
    epochs: int = 30  # supervised epochs; the best validation-AUC epoch is kept
    pretrain_epochs: int = 0  # SimMIM epochs on the training images before fine-tuning (vit only)
    batch_size: int = 128  # images per step
    lr: float | None = None  # peak AdamW learning rate; None uses OPTIM_DEFAULTS[arch]
    weight_decay: float | None = None  # AdamW weight decay; None uses OPTIM_DEFAULTS[arch]
    class_balanced: bool = True  # weight the loss by inverse class frequency
    label_smoothing: float = 0.05  # cross-entropy label smoothing
    seed: int = 0  # seeds initialisation, shuffling, augmentation and MIM masks
    device: str = "cpu"  # cpu, cuda or auto
    name: str = ""  # registry name; empty means the dataset name
    model_config: tuple[tuple[str, Any], ...] = ()  # overrides of the network config, e.g. (("depth", 2),)

    def validated(self) -> TrainSettings:
        dataset_info(self.dataset)
        if self.arch not in OPTIM_DEFAULTS:
            raise SmartcareError(f"unknown architecture {self.arch!r}; choose cnn or vit")
        if self.pretrain_epochs and self.arch != "vit":
            raise SmartcareError("--pretrain-epochs (masked-image modelling) applies to --arch vit only")
        if self.epochs < 1 or self.pretrain_epochs < 0 or self.batch_size < 1:
            raise SmartcareError("epochs must be >= 1, pretrain-epochs >= 0 and batch-size >= 1")
        lr, wd = OPTIM_DEFAULTS[self.arch]
        return replace(self, lr=self.lr or lr, weight_decay=self.weight_decay if self.weight_decay is not None
                       else wd, name=self.name or self.dataset)

    def command(self) -> str:
        parts = ["smartcare imaging train", f"--dataset {self.dataset}", f"--arch {self.arch}",
                 f"--epochs {self.epochs}"]
        if self.arch == "vit":
            parts.append(f"--pretrain-epochs {self.pretrain_epochs}")
        if self.batch_size != TrainSettings.batch_size:
            parts.append(f"--batch-size {self.batch_size}")
        if self.lr is not None:
            parts.append(f"--lr {self.lr:g}")
        parts += [f"--seed {self.seed}", f"--device {self.device}"]
        if self.name and self.name != self.dataset:
            parts.append(f"--name {self.name}")
        return " ".join(parts)


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8-range images (N, H, W) -> float32 tensor (N, 1, H, W) in [-1, 1] (the MONAI eval pipeline)."""
    x = classification_pipeline(train=False)({"image": np.asarray(images, dtype=np.float32)})["image"]
    return x[:, None]  # (N, 1, H, W)


class ImageDataset(Dataset):
    """Images (N, H, W) in 0..255 and optional labels -> items ``{"image": (1, H, W), "label"}``.

    Augmentation is applied per batch by ``batch_augment`` (same transforms as the MONAI training
    pipeline, vectorised: on 2 shared CPU cores the per-image pipeline cost more than the network).
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None):
        self.images = to_model_input(images)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        item = {"image": self.images[i]}
        if self.labels is not None:
            item["label"] = int(self.labels[i])
        return item


def batch_augment(x: torch.Tensor, gen: torch.Generator, p_affine: float = 0.8) -> torch.Tensor:
    """Random affine (rotation +-10 deg, scale +-10 %, shift +-2 px, with probability ``p_affine``) and
    left-right flip (p = 0.5), drawn per image. x (B, C, H, W) -> same shape."""
    b, _, h, w = x.shape
    u = lambda *shape: torch.rand(*shape, generator=gen) * 2 - 1  # noqa: E731  uniform(-1, 1)
    on = (torch.rand(b, generator=gen) < p_affine).float()
    angle, scale = u(b) * 0.17 * on, 1 + u(b) * 0.1 * on
    shift = u(b, 2) * on[:, None] * torch.tensor([2.0 / (w / 2), 2.0 / (h / 2)])  # (B, 2) normalised
    flip = torch.where(torch.rand(b, generator=gen) < 0.5, -1.0, 1.0)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos * flip, -sin, shift[:, 0]], 1),
                         torch.stack([sin * flip, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    grid = F.affine_grid(theta.to(x.device), list(x.shape), align_corners=False)  # (B, H, W, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def predict_proba(model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu",
                  batch_size: int = 512, tta: bool = True) -> np.ndarray:
    """Class probabilities (N, C) for uint8-range images (N, H, W); ``tta`` averages with the
    left-right flipped image."""
    device = torch.device(device)
    x_all = to_model_input(images)  # (N, 1, H, W)
    model.to(device).eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x_all), batch_size):
            x = x_all[start:start + batch_size].to(device)  # (B, 1, H, W)
            p = torch.softmax(model(x), dim=1)
            if tta:
                p = 0.5 * (p + torch.softmax(model(torch.flip(x, dims=[3])), dim=1))
            out.append(p.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 2), dtype=np.float32)


def evaluate(model: nn.Module, images: np.ndarray, labels: np.ndarray, device="cpu",
             n_boot: int = 1000) -> dict[str, Any]:
    """MedMNIST metrics: AUC of the positive-class score and ACC at threshold 0.5, each as
    ``[point, lo, hi]`` (95 % percentile bootstrap, ``smartcare.core.metrics.bootstrap_ci``)."""
    p1 = predict_proba(model, images, device)[:, 1]
    return {"n": int(len(labels)),
            "auc": list(metrics.bootstrap_ci(metrics.auc, labels, p1, n_boot=n_boot)),
            "acc": list(metrics.bootstrap_ci(metrics.accuracy, labels, (p1 >= 0.5).astype(int), n_boot=n_boot))}


def _class_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    return torch.tensor(len(labels) / (num_classes * np.maximum(counts, 1.0)), dtype=torch.float32)


def fine_tune(model: nn.Module, train_ds: ImageDataset, val: tuple[np.ndarray, np.ndarray],
              s: TrainSettings, device: torch.device) -> list[dict]:
    """Supervised training with AdamW + cosine schedule; leaves ``model`` at its best-val-AUC epoch."""
    seed_everything(s.seed)
    loader = DataLoader(train_ds, batch_size=s.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(s.seed))
    num_classes = int(max(train_ds.labels.max(), val[1].max())) + 1
    weight = _class_weights(train_ds.labels, num_classes).to(device) if s.class_balanced else None
    loss_fn = nn.CrossEntropyLoss(weight=weight, label_smoothing=s.label_smoothing)
    opt = torch.optim.AdamW(model.parameters(), lr=s.lr, weight_decay=s.weight_decay)
    gen = torch.Generator().manual_seed(s.seed + 1)
    total, step, best, best_state, history = s.epochs * len(loader), 0, -1.0, None, []
    for epoch in range(s.epochs):
        model.train()
        t0, running, n = time.time(), 0.0, 0
        for batch in progress(loader, desc=f"{s.arch} epoch {epoch + 1}/{s.epochs}"):
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, total, len(loader), s.lr)
            x = batch_augment(batch["image"], gen).to(device)
            loss = loss_fn(model(x), batch["label"].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            running, n, step = running + float(loss.detach()), n + 1, step + 1
        p1 = predict_proba(model, val[0], device)[:, 1]
        row = {"epoch": epoch, "train_loss": running / max(n, 1), "val_auc": metrics.auc(val[1], p1),
               "val_acc": metrics.accuracy(val[1], (p1 >= 0.5).astype(int)), "seconds": time.time() - t0}
        history.append(row)
        print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
              flush=True)
        if row["val_auc"] > best:
            best = row["val_auc"]
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return history


def train(settings: TrainSettings, weights_root: Path | str | None = None) -> tuple[nn.Module, dict]:
    """Run ``settings`` end to end and ship the model; returns (model, card)."""
    s = settings.validated()
    device = choose_device(s.device)
    seed_everything(s.seed)
    info = dataset_info(s.dataset)
    train_x, train_y = load_split(s.dataset, "train")
    val_x, val_y = load_split(s.dataset, "val")
    model = build_model(s.arch, dict(s.model_config)).to(device)
    net_config = config_dict(make_config(s.arch, dict(s.model_config)))
    t0 = time.time()
    mim_history: list[dict] = []
    if s.pretrain_epochs:
        mim_cfg = MIMConfig(epochs=s.pretrain_epochs, batch_size=s.batch_size, seed=s.seed)
        mim_history = pretrain_mim(model, ImageDataset(train_x, None), mim_cfg, device, batch_augment)
    history = fine_tune(model, ImageDataset(train_x, train_y), (val_x, val_y), s, device)
    split_metrics = {"val": evaluate(model, val_x, val_y, device)}
    if "test" in available_splits(s.dataset):
        test_x, test_y = load_split(s.dataset, "test")
        split_metrics["test"] = evaluate(model, test_x, test_y, device)
    card = {
        "name": s.name, "task": "image-classification", "architecture": s.arch,
        "network_config": net_config, "classes": list(info.classes),
        "input": {"height": 28, "width": 28, "channels": 1, "range": "0..255 grayscale",
                  "normalisation": "x / 127.5 - 1", "tta": "mean with left-right flip"},
        "training_data": f"MedMNIST v2 {s.dataset} (SMARTCARE_DATA/imaging/{s.dataset}/{info.file})",
        "split": {"train": int(len(train_y)), "val": int(len(val_y)),
                  "selection": "epoch with the best val AUC"},
        "command": settings.command(), "metrics": split_metrics, "seed": s.seed,
        "settings": {k: v for k, v in asdict(s).items() if k != "model_config"},
        "pretraining": {"method": "SimMIM", "epochs": s.pretrain_epochs, "history": mim_history}
        if s.pretrain_epochs else None,
        "history": history, "train_seconds": round(time.time() - t0, 1),
        "published_test_baselines": info.baselines,
    }
    save_model(s.name, model.state_dict(), card, root=weights_root)
    return model, card


def load_classifier(name: str, root: Path | str | None = None) -> tuple[nn.Module, dict]:
    """Rebuild a shipped classifier from ``weights/<name>/`` (card + safetensors)."""
    card = load_card(name, root)
    if card.get("task") != "image-classification":
        raise SmartcareError(f"model {name!r} is a {card.get('task')!r} model, not an image classifier")
    model = build_model(card["architecture"], card.get("network_config"))
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in load_tensors(name, root).items()})
    return model.eval(), card
