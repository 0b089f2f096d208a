"""Train and ship the denoiser (``weights/denoise/``), and compare it with NLM and BM3D in one run.

Training images: DRIVE training green channels (ids 21-38) and the pydicom CT/MR test images; validation:
DRIVE 39-40 at sigma 25. Patches are random crops from all training images with a random flip and
90-degree rotation. Each patch gets Gaussian noise with sigma drawn from [0, 55] or, one time in
four, Poisson noise with a peak drawn from [10, 120] photons; the network sees the matching sigma map.
The comparison (``compare``) scores noisy input, NLM, BM3D and ours on the fixed test crops
(``enhance.benchmark_images``: DRIVE test and the three CT slices) by PSNR and SSIM.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from smartcare.core.errors import SmartcareError
from smartcare.core.progress import progress
from smartcare.core.registry import save_model
from smartcare.imaging.enhance import (
    DenoiseConfig,
    add_gaussian,
    add_poisson,
    benchmark_images,
    bm3d_denoise,
    build_denoiser,
    centre_crop,
    classical_poisson,
    config_to_dict,
    denoise,
    drive_green,
    nlm,
    other_slices,
    poisson_sigma_map,
    psnr_ssim,
)
from smartcare.imaging.enhance_fit import FitPlan, Stop, fit_scheduled, pixel_loss

SIGMAS = (15.0, 25.0, 50.0)
METHODS = {  # the rows of the comparison table
    "noisy": "the noisy input",
    "nlm": "non-local means (scikit-image), classical",
    "bm3d": "BM3D (PyPI bm3d), classical",
    "ours": "the learned denoiser, one forward pass",
    "ours-x8": "the learned denoiser with the 8-fold flip/rot90 self-ensemble (test-time averaging, 8x cost)",
}
POISSON_PEAK = 30.0  # photons at full white for the Poisson test condition


@dataclass(frozen=True)
class DenoiseTrainSettings:
    """One reproducible denoiser training run."""

    epochs: int = 20  # epochs of ``steps`` batches; best validation PSNR kept
    steps: int = 40  # batches per epoch
    batch_size: int = 16  # patches per batch
    patch: int = 64  # patch side (even)
    lr: float = 1e-3  # AdamW (peak) learning rate
    schedule: str = "constant"  # constant or cosine (per step, down to 1% of lr)
    loss: str = "l2"  # l2, l1, or l1-l2 (L1 for the first half of the steps, then L2)
    max_minutes: float = 0.0  # stop starting epochs after this wall time (0 = none)
    seed: int = 0  # seeds initialisation, patches and noise
    device: str = "cpu"  # cpu, cuda or auto
    name: str = "denoise"  # registry name
    depth: int = 8  # network depth, recorded in the command (the config passed in must match)
    width: int = 32  # network width, recorded in the command
    arch: str = "ffdnet"  # recorded in the command
    channels: tuple[int, ...] = (32, 64, 128)  # unet widths, recorded in the command
    blocks: int = 1  # unet residual blocks, recorded in the command
    resume: bool = False  # continue from run_dir/last.pt (a chain of time-limited runs)
    ship: bool = True  # write weights/<name>/ (False: train and evaluate only)

    def command(self) -> str:
        net = ([f"--arch unet --channels {','.join(map(str, self.channels))} --blocks {self.blocks}"]
               if self.arch == "unet" else [f"--depth {self.depth}", f"--width {self.width}"])
        parts = ["smartcare imaging train-denoiser", *net,
                 f"--epochs {self.epochs}", f"--steps {self.steps}",
                 f"--batch-size {self.batch_size}", f"--patch {self.patch}", f"--lr {self.lr:g}",
                 f"--schedule {self.schedule}", f"--loss {self.loss}",
                 f"--seed {self.seed}", f"--device {self.device}"]
        if not self.ship:
            parts.append("--no-ship")
        if self.max_minutes:
            parts.append(f"--max-minutes {self.max_minutes:g}")
        if self.resume:
            parts.append("--resume --run-dir RUN_DIR")
        if self.name != "denoise":
            parts.append(f"--name {self.name}")
        return " ".join(parts)


class NoisyPatches:
    """Iterable of ``steps`` batches (noisy, sigma_map, clean), each (B, 1, p, p) in [0, 1]."""

    def __init__(self, images: list[np.ndarray], *, steps: int, batch_size: int, patch: int, seed: int,
                 deadline: float | None = None):
        self.images = [im for im in images if min(im.shape) >= patch]
        if not self.images:
            raise SmartcareError(f"no training image is at least {patch} pixels on a side")
        self.steps, self.batch_size, self.patch, self.deadline = steps, batch_size, patch, deadline
        self.rng = np.random.default_rng(seed)
        self.passes = 0

    def __len__(self) -> int:
        return self.steps

    def _one(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng, p = self.rng, self.patch
        im = self.images[int(rng.integers(len(self.images)))]
        r, c = int(rng.integers(im.shape[0] - p + 1)), int(rng.integers(im.shape[1] - p + 1))
        clean = np.rot90(im[r:r + p, c:c + p], int(rng.integers(4)))
        clean = np.ascontiguousarray(clean[:, ::-1] if rng.integers(2) else clean)
        if rng.random() < 0.25:
            peak = float(rng.uniform(10, 120))
            noisy = add_poisson(clean, peak, rng)
            smap = poisson_sigma_map(noisy, peak)
        else:
            sigma = float(rng.uniform(0, 55))
            noisy = add_gaussian(clean, sigma, rng)
            smap = np.full(clean.shape, sigma, np.float32)
        return noisy, smap, clean

    def __iter__(self):
        if self.deadline and self.passes and time.time() > self.deadline:
            raise Stop
        self.passes += 1
        for _ in range(self.steps):
            parts = [self._one() for _ in range(self.batch_size)]
            yield tuple(torch.from_numpy(np.stack([q[k] for q in parts])[:, None] / 255.0).float()
                        for k in range(3))  # each (B, 1, p, p)


def denoise_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    noisy, smap, clean = batch
    return pixel_loss("l2", model(noisy, smap), clean)


def training_images(root: Path | str | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(train, val) clean images on 0-255; val = DRIVE 39-40 centre crops."""
    drive = drive_green("train", root)
    train = [im for name, im in drive if name not in ("drive-39", "drive-40")]
    val = [centre_crop(im, 256) for name, im in drive if name in ("drive-39", "drive-40")]
    return train + [im for _, im in other_slices(root)], val


def train_denoiser(settings: DenoiseTrainSettings, config: DenoiseConfig = DenoiseConfig(),
                   weights_root: Path | str | None = None, data_root: Path | str | None = None,
                   run_dir: Path | None = None, log=print, with_compare: bool = True
                   ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the denoiser, optionally run the NLM/BM3D comparison, and ship it unless ``settings.ship``
    is False (then weights/ is left untouched and the card is only returned)."""
    s = replace(settings, depth=config.depth, width=config.width, arch=config.arch, channels=config.channels,
                blocks=config.blocks)
    if s.patch % 2 or s.epochs < 1 or s.steps < 1 or s.batch_size < 1:
        raise SmartcareError("patch must be even; epochs, steps and batch size must be >= 1")
    start = time.time()
    train, val = training_images(data_root)
    deadline = start + 60 * s.max_minutes if s.max_minutes else None
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="smartcare-denoise-"))
    done = 0  # epochs run by earlier links of a resumed chain: fresh patches for the new ones
    if s.resume and (run_dir / "metrics.jsonl").is_file():
        done = len((run_dir / "metrics.jsonl").read_text().splitlines())
    loader = NoisyPatches(train, steps=s.steps, batch_size=s.batch_size, patch=s.patch, seed=s.seed + 1000 * done,
                          deadline=deadline)
    rng = np.random.default_rng(s.seed + 1)
    val_noisy = [add_gaussian(v, 25.0, rng) for v in val]
    def score(model, device) -> float:
        value = float(np.mean([psnr_ssim(c, denoise(model, n, 25.0, device))[0]
                               for c, n in zip(val, val_noisy, strict=True)]))
        log(f"  val PSNR at sigma 25: {value:.2f} dB ({time.time() - start:.0f} s)")
        return value

    torch.manual_seed(s.seed)
    model = build_denoiser(config)
    plan = FitPlan(epochs=s.epochs, steps=s.steps, lr=s.lr, schedule=s.schedule, loss=s.loss, seed=s.seed,
                   device=s.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "commands.txt", "a") as fh:  # every link of a resumed chain, in order
        fh.write(s.command() + "\n")
    best_epoch, history = fit_scheduled(model, loader, score, plan, run_dir, resume=s.resume)
    model.cpu().eval()
    arch = ("residual U-Net after DRUNet (pixel-unshuffle + sigma map, no BN)" if config.arch == "unet"
            else "FFDNet-style residual CNN (pixel-unshuffle + sigma map)")
    card = {
        "task": "image-denoising", "architecture": arch,
        "config": config_to_dict(config), "scale": "0-255 input and output",
        "training_data": "DRIVE training green channels 21-38; pydicom CT_small, MR_small, emri_small",
        "split": {"train": "DRIVE 21-38 + pydicom images", "val": "DRIVE 39-40 (256 crops, sigma 25)",
                  "test": "256 centre crops of DRIVE test 01-04 green and ct_3slice 1-3 (HU -1000..1000)"},
        "command": " && ".join((run_dir / "commands.txt").read_text().split("\n")[:-1]), "seed": s.seed,
        "training": {"epochs_run": len(history), "best_epoch": best_epoch, "steps": s.steps,
                     "batch_size": s.batch_size, "patch": s.patch, "lr": s.lr, "schedule": s.schedule,
                     "loss": s.loss, "history": history,
                     "seconds": round(time.time() - start, 1)},
        "metrics": {"val": {"psnr_sigma25": max(h["val_score"] for h in history)}},
    }
    if with_compare:
        card["metrics"]["test"] = compare(model, data_root=data_root, seed=s.seed, log=log)
        card["methods"] = METHODS
    if s.ship:
        save_model(s.name, model.state_dict(), card, root=weights_root)
    return model, card


def compare(model: torch.nn.Module | None, data_root: Path | str | None = None, seed: int = 0,
            sigmas=SIGMAS, peak: float = POISSON_PEAK, images=None,
            methods=("noisy", "nlm", "bm3d", "ours", "ours-x8"),
            log=print) -> dict[str, Any]:
    """PSNR/SSIM of each method on each noise condition, averaged over the test images, per image set.

    Returns ``{condition: {set: {method: {"psnr": .., "ssim": ..}}}}`` with conditions ``gaussian-15`` ..
    ``poisson-30`` and sets ``drive``, ``ct`` and ``all``. ``ours-x8`` is the learned model with the
    8-fold flip/rotation self-ensemble (``enhance.denoise(self_ensemble=True)``), 8 times the cost.
    """
    images = images if images is not None else benchmark_images(data_root)
    rng = np.random.default_rng(seed + 7)
    conditions = [(f"gaussian-{int(s)}", "gaussian", s) for s in sigmas] + [(f"poisson-{int(peak)}", "poisson",
                                                                             peak)]
    rows: list[dict[str, Any]] = []
    for cond, kind, level in progress(conditions, desc="compare", total=len(conditions)):
        for name, clean in images:
            noisy = add_gaussian(clean, level, rng) if kind == "gaussian" else add_poisson(clean, level, rng)
            for method in methods:
                if method == "noisy":
                    est = noisy
                elif method in ("ours", "ours-x8"):
                    smap = level if kind == "gaussian" else poisson_sigma_map(noisy, level)
                    est = denoise(model, noisy, smap, self_ensemble=method == "ours-x8")
                else:
                    fn = nlm if method == "nlm" else bm3d_denoise
                    est = fn(noisy, level) if kind == "gaussian" else classical_poisson(fn, noisy, level)
                p, q = psnr_ssim(clean, est)
                rows.append({"condition": cond, "set": name.split("-")[0], "image": name, "method": method,
                             "psnr": p, "ssim": q})
        log(f"  {cond}: " + "  ".join(
            f"{m} {np.mean([r['psnr'] for r in rows if r['condition'] == cond and r['method'] == m]):.2f}"
            for m in methods))
    out: dict[str, Any] = {}
    for cond, _, _ in conditions:
        out[cond] = {}
        for group in ("drive", "ct", "all"):
            sel = [r for r in rows if r["condition"] == cond and (group == "all" or r["set"] == group)]
            if not sel:
                continue
            out[cond][group] = {m: {"psnr": float(np.mean([r["psnr"] for r in sel if r["method"] == m])),
                                    "ssim": float(np.mean([r["ssim"] for r in sel if r["method"] == m]))}
                                for m in methods}
    out["images"] = [name for name, _ in images]
    return out
