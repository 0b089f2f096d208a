"""Self-supervised test-time adaptation of the shipped denoiser on the one noisy image it must denoise.

Recorrupted-to-Recorrupted (Pang, Zhan, Zhang, Zhou & Chen, "Recorrupted-to-Recorrupted: Unsupervised
Deep Learning for Image Denoising", CVPR 2021): for y = x + n with n ~ N(0, sigma^2) and a fresh
z ~ N(0, sigma^2), the pair y1 = y + alpha z, y2 = y - z / alpha has independent noises, so
E ||f(y1) - y2||^2 = E ||f(y1) - x||^2 + const. Minimising that loss over random recorruptions (and random
flips/rotations of the image) is therefore an unbiased proxy of the clean MSE at noise level
sigma * sqrt(1 + alpha^2); the network is sigma-conditioned, so it is trained at that level and then
applied to y at sigma. The clean image is never seen. Only Gaussian noise of known sigma is covered.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from smartcare.core.errors import SmartcareError
from smartcare.imaging.enhance import denoise

PARAM_SETS = ("all", "decoder")  # which weights adapt: all, or the up path + tail (+ body) only


@dataclass(frozen=True)
class AdaptSettings:
    """One test-time adaptation run (validated in ``check``)."""

    steps: int = 100  # Adam steps (0 = no adaptation, plain ``denoise``)
    lr: float = 3e-5  # Adam learning rate (constant); chosen on validation images at sigma 25
    alpha: float = 0.5  # R2R recorruption strength
    patch: int = 128  # side of the random training crops (0 or >= the image side: the whole image)
    batch: int = 4  # crops (or augmented copies of the image) per step
    params: str = "all"  # all or decoder
    seed: int = 0  # seeds the recorruption noise, crops and flips

    def check(self) -> None:
        if self.steps < 0 or self.lr <= 0 or self.alpha <= 0 or self.batch < 1 or self.patch < 0:
            raise SmartcareError("adaptation needs steps >= 0, lr > 0, alpha > 0, batch >= 1 and patch >= 0")
        if self.params not in PARAM_SETS:
            raise SmartcareError(f"unknown adaptation parameter set {self.params!r}: use {', '.join(PARAM_SETS)}")


def r2r_loss(model: nn.Module, y: torch.Tensor, sigma: float, alpha: float, generator: torch.Generator
             ) -> torch.Tensor:
    """R2R loss of a (B, 1, H, W) noisy batch in [0, 1] with Gaussian noise std ``sigma`` (0-1 scale)."""
    z = torch.randn(y.shape, generator=generator) * sigma  # (B, 1, H, W)
    y1, y2 = y + alpha * z, y - z / alpha
    smap = torch.full_like(y, sigma * math.sqrt(1 + alpha**2))  # the noise level of y1
    return torch.mean((model(y1, smap) - y2) ** 2)


def _batch(y: torch.Tensor, s: AdaptSettings, generator: torch.Generator) -> torch.Tensor:
    """Random crops (or the whole image) of (1, 1, H, W), each randomly flipped and rotated: (B, 1, p, p)."""
    h, w = y.shape[-2:]
    out = []
    for _ in range(s.batch):
        if s.patch and s.patch < min(h, w):
            r = int(torch.randint(h - s.patch + 1, (1,), generator=generator))
            c = int(torch.randint(w - s.patch + 1, (1,), generator=generator))
            crop = y[..., r:r + s.patch, c:c + s.patch]
        else:
            crop = y
        k, flip = (int(v) for v in torch.randint(4, (2,), generator=generator))
        if crop.shape[-1] != crop.shape[-2]:
            k = 2 * (k % 2)  # a non-square crop keeps its shape: 0 or 180 degrees only
        crop = torch.rot90(crop, k, (-2, -1))
        out.append(crop.flip(-1) if flip % 2 else crop)
    return torch.cat(out, 0)


def _trainable(model: nn.Module, params: str) -> list[nn.Parameter]:
    if params == "all":
        return list(model.parameters())
    names = ("up.", "tail.", "body.")
    chosen = [p for n, p in model.named_parameters() if n.startswith(names)]
    if not chosen:
        raise SmartcareError("the 'decoder' parameter set needs the U-Net denoiser (up/tail/body layers)")
    return chosen


def adapt(model: nn.Module, noisy: np.ndarray, sigma: float, settings: AdaptSettings,
          log_every: int = 0, log=print) -> tuple[nn.Module, list[float]]:
    """Fine-tune a copy of ``model`` on one (H, W) noisy image (0-255, Gaussian std ``sigma``) by R2R.

    Returns ``(adapted copy in eval mode, R2R loss per step)``; ``model`` itself is left unchanged.
    Raises ``SmartcareError`` for bad settings, a non-2D image or sigma <= 0.
    """
    settings.check()
    if noisy.ndim != 2:
        raise SmartcareError(f"adaptation needs one 2D image, got shape {noisy.shape}")
    if not sigma > 0:
        raise SmartcareError("adaptation needs the Gaussian noise level: sigma > 0")
    net = copy.deepcopy(model).train()
    for p in net.parameters():
        p.requires_grad_(False)
    trainable = _trainable(net, settings.params)
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.Adam(trainable, lr=settings.lr)
    gen = torch.Generator().manual_seed(settings.seed)
    y = torch.from_numpy(np.ascontiguousarray(noisy, dtype=np.float32) / 255.0)[None, None]  # (1, 1, H, W)
    losses = []
    for step in range(settings.steps):
        loss = r2r_loss(net, _batch(y, settings, gen), sigma / 255.0, settings.alpha, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        if log_every and (step + 1) % log_every == 0:
            log(f"  adapt step {step + 1}: R2R loss {np.mean(losses[-log_every:]):.6f}")
    return net.eval(), losses


def adapt_and_denoise(model: nn.Module, noisy: np.ndarray, sigma: float, steps: int = 100, lr: float = 3e-5,
                      seed: int = 0, self_ensemble: bool = False, **options) -> np.ndarray:
    """Adapt a copy of ``model`` to ``noisy`` (see ``adapt``; ``options`` are other ``AdaptSettings``
    fields), then denoise it: (H, W) on 0-255 in, (H, W) float on 0-255 out. ``steps=0`` is plain
    ``enhance.denoise``; ``self_ensemble`` averages the 8 flips/rotations as there."""
    settings = AdaptSettings(steps=steps, lr=lr, seed=seed, **options)
    net = adapt(model, noisy, sigma, settings)[0] if steps else model
    return denoise(net, noisy, sigma, self_ensemble=self_ensemble)
