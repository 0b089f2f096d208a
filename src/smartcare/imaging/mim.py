"""Masked-image-modelling pretraining of the ViT encoder (SimMIM: Xie et al., "SimMIM: a Simple Framework
for Masked Image Modeling", CVPR 2022).

A random subset of patches is replaced by a learned mask token; a linear head predicts the hidden patches'
pixels and the loss is the mean L1 error over hidden patches only. Labels are never used.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from smartcare.core.progress import progress
from smartcare.core.training import seed_everything
from smartcare.imaging.networks import ViTClassifier, patchify


@dataclass(frozen=True)
class MIMConfig:
    """Settings of one SimMIM pretraining run."""

    epochs: int = 20  # passes over the unlabelled images
    mask_ratio: float = 0.5  # fraction of patches hidden per image
    batch_size: int = 128  # images per step
    lr: float = 1e-3  # peak AdamW learning rate (cosine decay after a 1-epoch warm-up)
    weight_decay: float = 0.05  # AdamW weight decay
    seed: int = 0  # seeds masks, augmentation and initialisation


def random_patch_mask(batch: int, num_patches: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(B, N) bool with exactly round(ratio * N) True entries per row (True = hidden)."""
    k = max(1, int(round(ratio * num_patches)))
    noise = torch.rand(batch, num_patches, generator=generator)
    idx = noise.argsort(dim=1)[:, :k]  # (B, k)
    mask = torch.zeros(batch, num_patches, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


def mim_loss(model: ViTClassifier, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean L1 error on hidden patches. x (B, C, H, W), mask (B, N) bool."""
    target = patchify(x, model.config.patch_size)  # (B, N, p*p*C)
    pred = model.reconstruct(x, mask)  # (B, N, p*p*C)
    err = (pred - target).abs().mean(dim=-1)  # (B, N)
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp(min=1.0)


def cosine_lr(step: int, total: int, warmup: int, peak: float) -> float:
    """Linear warm-up to ``peak`` then cosine decay to 1 % of it."""
    if step < warmup:
        return peak * (step + 1) / warmup
    t = (step - warmup) / max(1, total - warmup)
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * t)))


def pretrain_mim(model: ViTClassifier, dataset, config: MIMConfig, device: torch.device,
                 batch_augment=None) -> list[dict]:
    """Pretrain ``model``'s encoder in place on ``dataset`` (items ``{"image": (1, H, W) tensor}``).

    ``batch_augment(x, generator)`` optionally augments each batch. Returns the per-epoch history
    ``[{"epoch", "mim_loss", "seconds"}]``.
    """
    seed_everything(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(config.seed))
    model.to(device).train()
    params = [p for n, p in model.named_parameters() if not n.startswith("head.")]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay, betas=(0.9, 0.95))
    total, step, history = config.epochs * len(loader), 0, []
    for epoch in range(config.epochs):
        t0, running, n = time.time(), 0.0, 0
        for batch in progress(loader, desc=f"mim epoch {epoch + 1}/{config.epochs}"):
            x = batch["image"] if batch_augment is None else batch_augment(batch["image"], gen)
            x = x.to(device)
            mask = random_patch_mask(x.shape[0], model.config.num_patches, config.mask_ratio, gen).to(device)
            for group in opt.param_groups:
                group["lr"] = cosine_lr(step, total, len(loader), config.lr)
            loss = mim_loss(model, x, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            running, n, step = running + float(loss.detach()), n + 1, step + 1
        history.append({"epoch": epoch, "mim_loss": running / max(n, 1), "seconds": time.time() - t0})
        print(f"mim epoch={epoch} loss={history[-1]['mim_loss']:.4f} seconds={history[-1]['seconds']:.1f}", flush=True)
    return history


def masked_reconstruction_error(model: ViTClassifier, images: torch.Tensor, ratio: float, seed: int = 0) -> float:
    """Mean L1 error on hidden patches for a fixed random mask (a pretraining progress check)."""
    gen = torch.Generator().manual_seed(seed)
    mask = random_patch_mask(images.shape[0], model.config.num_patches, ratio, gen)
    model.eval()
    with torch.no_grad():
        return float(mim_loss(model, images, mask))

