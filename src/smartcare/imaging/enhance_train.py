"""Train and ship the denoiser (``weights/denoise/``), and compare it with NLM and BM3D in one run.

Training images, in three groups drawn with fixed weights (``GROUP_WEIGHTS``): DRIVE training green
channels (ids 21-38); real CT slices (pydicom's CT_small and, from the PyPI ``pydicom-data`` wheel, a
head CT, an abdominal CT and one of two brain CT slices, all windowed like the test CT; ``--data
drive+ctx+other`` adds a thoracic-spine and a second head CT slice, JPEG-coded); other real
grey-scale studies from ``pydicom-data`` (two MR images, two radiographs). Validation: DRIVE 39-40 and
the held-out second brain CT slice, 256 px centre crops at sigma 25. None of the test images (DRIVE
test, ``ct_3slice``) is used. Patches are random crops with a random flip and 90-degree rotation. Each
patch gets Gaussian noise with sigma drawn from [0, 55] or, one time in four, Poisson noise with a peak
drawn from [10, 120] photons; the network sees the matching sigma map. A BM3D-guided model
(``DenoiseConfig.guide``) trains on a bank of crops whose BM3D estimates are computed once, in parallel,
before training (``build_guided_bank``); its patches are cut from those crops.
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
    bm3d_guide,
    build_denoiser,
    centre_crop,
    classical_poisson,
    config_to_dict,
    ct_small,
    ct_to_byte,
    denoise,
    drive_green,
    nlm,
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
    "ours-x8": ("the learned denoiser with the 8-fold flip/rot90 self-ensemble (8 network passes; for a guided "
                "model one BM3D run, about 1.13x the time of one pass, and enhance's default)"),
    "unguided": "the unguided U-Net (weights/denoise-unet: no BM3D inside), one forward pass",
}
POISSON_PEAK = 30.0  # photons at full white for the Poisson test condition
DEFAULT_DATA = "drive+ct+other"  # the default --data (one of DATA_SETS)


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
    guide: str = ""  # "bm3d": a BM3D-guided model, recorded in the command
    bank: int = 600  # guided: crops in the BM3D bank
    bank_crop: int = 128  # guided: bank crop side (>= patch)
    workers: int = 2  # guided: processes that build the bank
    init: str = ""  # guided: start from this shipped unguided denoiser (registry name)
    data: str = DEFAULT_DATA  # training set, one of DATA_SETS
    resume: bool = False  # continue from run_dir/last.pt (a chain of time-limited runs)
    ship: bool = True  # write weights/<name>/ (False: train and evaluate only)

    def command(self) -> str:
        net = ([f"--arch unet --channels {','.join(map(str, self.channels))} --blocks {self.blocks}"]
               if self.arch == "unet" else [f"--depth {self.depth}", f"--width {self.width}"])
        if self.guide:
            net.append(f"--guide {self.guide} --bank {self.bank} --bank-crop {self.bank_crop}")
        if self.init:
            net.append(f"--init {self.init}")
        if self.data != DEFAULT_DATA:
            net.append(f"--data {self.data}")
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


GROUP_WEIGHTS = {"drive": 0.4, "ct": 0.45, "other": 0.15}  # share of training patches per image group
PYDICOM_CT = ("693_UNCR.dcm", "eCT_Supplemental.dcm", "explicit_VR-UN.dcm")  # pydicom-data CT slices
# two more CT slices for --data drive+ctx+other: a thoracic spine/back (JPEG lossless) and a head (JPEG 2000),
# decoded by the pylibjpeg plugins of the imaging extra
PYDICOM_CT_EXTRA = ("bad_sequence.dcm", "J2K_pixelrep_mismatch.dcm")
PYDICOM_OTHER = ("MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "RG1_UNCR.dcm", "RG3_UNCR.dcm")
VAL_CT = ("eCT_Supplemental.dcm", 1)  # this frame is validation, not training
# --data name -> its pydicom-data CT slices; drive+ctsmall (None) is the earlier set
# that denoise-unet was trained on: DRIVE and CT_small only, drawn equally
DATA_SETS = {"drive+ct+other": PYDICOM_CT, "drive+ctx+other": PYDICOM_CT + PYDICOM_CT_EXTRA, "drive+ctsmall": None}


def training_data(data: str) -> str:
    """The card's one-line account of the training set ``data``."""
    if DATA_SETS[data] is None:
        return "DRIVE training green channels 21-38 and pydicom CT_small, drawn equally"
    return ("DRIVE training green channels 21-38; CT: pydicom CT_small, pydicom-data " + ", ".join(DATA_SETS[data])
            + " (HU -1000..1000); other: pydicom-data " + ", ".join(PYDICOM_OTHER)
            + f"; patch shares by group {GROUP_WEIGHTS}")


def corrupt(clean: np.ndarray, rng: np.random.Generator
            ) -> tuple[np.ndarray, np.ndarray, float | None]:
    """(noisy, sigma map, Poisson peak or None): Gaussian noise with sigma in [0, 55], or one time in four
    Poisson noise with a peak in [10, 120] photons."""
    if rng.random() < 0.25:
        peak = float(rng.uniform(10, 120))
        noisy = add_poisson(clean, peak, rng)
        return noisy, poisson_sigma_map(noisy, peak), peak
    sigma = float(rng.uniform(0, 55))
    return add_gaussian(clean, sigma, rng), np.full(clean.shape, sigma, np.float32), None


def _bank_item(job: tuple[np.ndarray, int]) -> tuple[np.ndarray, ...]:
    """One bank entry (clean, noisy, sigma map, BM3D guide) from a clean crop; run in a worker process."""
    clean, seed = job
    noisy, smap, peak = corrupt(clean, np.random.default_rng(seed))
    return clean, noisy, smap, bm3d_guide(noisy, smap, peak)


def build_guided_bank(images: list[np.ndarray], weights: list[float], n: int, crop: int, seed: int,
                      workers: int = 2) -> list[tuple[np.ndarray, ...]]:
    """``n`` random ``crop``-pixel crops with their noise and BM3D estimate (the slow part, 1-2 s a crop,
    spread over ``workers`` processes with a progress bar)."""
    from concurrent.futures import ProcessPoolExecutor

    rng = np.random.default_rng(seed + 555)
    p = np.asarray(weights, np.float64) / np.sum(weights)
    jobs = []
    for k in range(n):
        im = images[int(rng.choice(len(images), p=p))]
        r, c = int(rng.integers(im.shape[0] - crop + 1)), int(rng.integers(im.shape[1] - crop + 1))
        jobs.append((np.ascontiguousarray(im[r:r + crop, c:c + crop]), seed * 100_003 + k))
    if workers <= 1:
        return [_bank_item(j) for j in progress(jobs, desc="BM3D bank", total=n)]
    with ProcessPoolExecutor(workers) as pool:
        return list(progress(pool.map(_bank_item, jobs, chunksize=4), desc="BM3D bank", total=n))


class NoisyPatches:
    """Iterable of ``steps`` batches (noisy, sigma_map, clean[, guide]), each (B, 1, p, p) in [0, 1].

    Plain: patches of ``images`` (drawn with ``weights``) with fresh noise. With a ``bank``
    (``build_guided_bank``): patches of the bank's crops, with their fixed noise and BM3D guide."""

    def __init__(self, images: list[np.ndarray], *, steps: int, batch_size: int, patch: int, seed: int,
                 deadline: float | None = None, weights: list[float] | None = None,
                 bank: list[tuple[np.ndarray, ...]] | None = None):
        keep = [k for k, im in enumerate(images) if min(im.shape) >= patch]
        self.images = [images[k] for k in keep]
        self.bank = None if bank is None else [item for item in bank if min(item[0].shape) >= patch]
        if not (self.images if bank is None else self.bank):
            raise SmartcareError(f"no training image is at least {patch} pixels on a side")
        w = None if weights is None else np.asarray([weights[k] for k in keep], np.float64)
        self.p = None if w is None or not len(w) else w / w.sum()  # None: every image equally likely
        self.steps, self.batch_size, self.patch, self.deadline = steps, batch_size, patch, deadline
        self.rng = np.random.default_rng(seed)
        self.passes = 0

    def __len__(self) -> int:
        return self.steps

    def _cut(self, arrays: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """The same random patch, rotation and flip of each array."""
        rng, p = self.rng, self.patch
        h, w = arrays[0].shape
        r, c = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        out = []
        for a in arrays:
            a = np.rot90(a[r:r + p, c:c + p], k)
            out.append(np.ascontiguousarray(a[:, ::-1] if flip else a))
        return out

    def _one(self) -> tuple[np.ndarray, ...]:
        if self.bank is not None:
            clean, noisy, smap, guide = self._cut(self.bank[int(self.rng.integers(len(self.bank)))])
            return noisy, smap, clean, guide
        n = len(self.images)
        pick = self.rng.integers(n) if self.p is None else self.rng.choice(n, p=self.p)
        (clean,) = self._cut((self.images[int(pick)],))
        noisy, smap, _ = corrupt(clean, self.rng)
        return noisy, smap, clean

    def __iter__(self):
        if self.deadline and self.passes and time.time() > self.deadline:
            raise Stop
        self.passes += 1
        for _ in range(self.steps):
            parts = [self._one() for _ in range(self.batch_size)]
            yield tuple(torch.from_numpy(np.stack([q[k] for q in parts])[:, None] / 255.0).float()
                        for k in range(len(parts[0])))  # each (B, 1, p, p)


def denoise_loss(model: torch.nn.Module, batch) -> torch.Tensor:
    noisy, smap, clean, *guides = batch
    return pixel_loss("l2", model(noisy, smap, *guides), clean)


def _grey(arr: np.ndarray) -> np.ndarray:
    """A non-CT study to 0-255 between its 0.5th and 99.5th percentiles, halved when over 1,000 px."""
    arr = arr.astype(np.float32)
    if min(arr.shape) > 1000:
        h, w = arr.shape[0] // 2 * 2, arr.shape[1] // 2 * 2
        arr = arr[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))
    lo, hi = np.percentile(arr, [0.5, 99.5])
    return (np.clip(arr, lo, hi) - lo) / max(float(hi - lo), 1e-6) * 255.0


def pydicom_data_images(ct_names: tuple[str, ...] = PYDICOM_CT
                        ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(CT slices of ``ct_names``, other studies, the validation CT slice) from the PyPI ``pydicom-data``
    wheel (and pydicom's own test files)."""
    try:
        import data_store  # noqa: F401  (the pydicom-data wheel; pydicom finds its files through it)
        from pydicom.data import get_testdata_file
    except ImportError:
        raise SmartcareError("denoiser training needs the pydicom-data package: pip install pydicom-data") from None
    from smartcare.imaging.io import read_dicom

    def frames(name: str) -> np.ndarray:
        path = get_testdata_file(name, read=False)
        if path is None:
            raise SmartcareError(f"pydicom-data holds no {name}: reinstall pydicom-data")
        return read_dicom(path).array

    ct, val = [], None
    for name in ct_names:
        for k, frame in enumerate(frames(name)):
            if (name, k) == VAL_CT:
                val = centre_crop(ct_to_byte(frame), 256)
            else:
                ct.append(ct_to_byte(frame))
    return ct, [_grey(frames(name)[0]) for name in PYDICOM_OTHER], val


def training_images(root: Path | str | None = None, data: str = DEFAULT_DATA
                    ) -> tuple[list[np.ndarray], list[float] | None, list[np.ndarray]]:
    """(train images, their sampling weights, val crops) on 0-255; see the module docstring. ``data``
    ``drive+ctsmall`` is the earlier set: DRIVE 21-38 and CT_small drawn equally, DRIVE 39-40 to validate
    (weights None)."""
    if data not in DATA_SETS:
        raise SmartcareError(f"unknown --data {data!r}: use one of {', '.join(DATA_SETS)}")
    drive = drive_green("train", root)
    train = [im for name, im in drive if name not in ("drive-39", "drive-40")]
    val = [centre_crop(im, 256) for name, im in drive if name in ("drive-39", "drive-40")]
    if DATA_SETS[data] is None:
        return train + [ct_small(root)], None, val
    ct, other, val_ct = pydicom_data_images(DATA_SETS[data])
    ct.append(ct_small(root))
    groups = {"drive": train, "ct": ct, "other": other}
    images = [im for g in groups.values() for im in g]
    weights = [GROUP_WEIGHTS[name] / len(g) for name, g in groups.items() for _ in g]
    return images, weights, val + [val_ct]


def _init_from(model: torch.nn.Module, name: str) -> None:
    """Start a guided model from the shipped unguided denoiser ``name``."""
    from smartcare.core.registry import load_card, load_tensors
    from smartcare.imaging.enhance import init_from_unguided

    card = load_card(name)
    if card.get("task") != "image-denoising" or card.get("config", {}).get("guide"):
        raise SmartcareError(f"--init {name}: not an unguided denoiser")
    init_from_unguided(model, load_tensors(name))


def _cached_bank(run_dir: Path, train: list[np.ndarray], weights: list[float], s: DenoiseTrainSettings
                 ) -> list[tuple[np.ndarray, ...]]:
    """The BM3D bank, kept in ``run_dir`` so that a resumed or repeated run does not recompute it."""
    path = run_dir / f"bank-{s.bank}-{s.bank_crop}-{s.seed}.npz"
    if path.is_file():
        with np.load(path) as z:
            return list(zip(*(z[k] for k in ("clean", "noisy", "smap", "guide")), strict=True))
    bank = build_guided_bank(train, weights, s.bank, s.bank_crop, s.seed, workers=s.workers)
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **{k: np.stack([b[i] for b in bank]) for i, k in enumerate(("clean", "noisy", "smap", "guide"))})
    tmp.replace(path)
    return bank


def train_denoiser(settings: DenoiseTrainSettings, config: DenoiseConfig = DenoiseConfig(),
                   weights_root: Path | str | None = None, data_root: Path | str | None = None,
                   run_dir: Path | None = None, log=print, with_compare: bool = True
                   ) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train the denoiser, optionally run the NLM/BM3D comparison, and ship it unless ``settings.ship``
    is False (then weights/ is left untouched and the card is only returned)."""
    s = replace(settings, depth=config.depth, width=config.width, arch=config.arch, channels=config.channels,
                blocks=config.blocks, guide=config.guide)
    if s.patch % 2 or s.epochs < 1 or s.steps < 1 or s.batch_size < 1:
        raise SmartcareError("patch must be even; epochs, steps and batch size must be >= 1")
    if s.guide and (s.bank < 1 or s.bank_crop < s.patch):
        raise SmartcareError("a guided denoiser needs --bank >= 1 and --bank-crop >= --patch")
    if s.init and not s.guide:
        raise SmartcareError("--init starts a guided denoiser (--guide bm3d) from an unguided one")
    torch.manual_seed(s.seed)
    model = build_denoiser(config)
    if s.init:  # before the slow bank, so that a wrong --init fails at once
        _init_from(model, s.init)
    start = time.time()
    train, weights, val = training_images(data_root, s.data)
    deadline = start + 60 * s.max_minutes if s.max_minutes else None
    run_dir = run_dir or Path(tempfile.mkdtemp(prefix="smartcare-denoise-"))
    done = 0  # epochs run by earlier links of a resumed chain: fresh patches for the new ones
    if s.resume and (run_dir / "metrics.jsonl").is_file():
        done = len((run_dir / "metrics.jsonl").read_text().splitlines())
    bank = _cached_bank(run_dir, train, weights, s) if s.guide else None
    loader = NoisyPatches(train, steps=s.steps, batch_size=s.batch_size, patch=s.patch, seed=s.seed + 1000 * done,
                          deadline=deadline, weights=weights, bank=bank)
    rng = np.random.default_rng(s.seed + 1)
    val_noisy = [add_gaussian(v, 25.0, rng) for v in val]
    val_guide = [bm3d_guide(n, 25.0) if s.guide else None for n in val_noisy]
    def score(model, device) -> float:
        value = float(np.mean([psnr_ssim(c, denoise(model, n, 25.0, device, guide=g))[0]
                               for c, n, g in zip(val, val_noisy, val_guide, strict=True)]))
        log(f"  val PSNR at sigma 25: {value:.2f} dB ({time.time() - start:.0f} s)")
        return value

    plan = FitPlan(epochs=s.epochs, steps=s.steps, lr=s.lr, schedule=s.schedule, loss=s.loss, seed=s.seed,
                   device=s.device)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "commands.txt", "a") as fh:  # every link of a resumed chain, in order
        fh.write(s.command() + "\n")
    best_epoch, history = fit_scheduled(model, loader, score, plan, run_dir, resume=s.resume)
    model.cpu().eval()
    arch = ("residual U-Net after DRUNet (pixel-unshuffle + sigma map, no BN)" if config.arch == "unet"
            else "FFDNet-style residual CNN (pixel-unshuffle + sigma map)")
    if config.guide:
        arch += "; BM3D-guided: reads BM3D's estimate too and predicts its error (BM3D runs at inference)"
    card = {
        "task": "image-denoising", "architecture": arch,
        "config": config_to_dict(config), "scale": "0-255 input and output",
        "training_data": training_data(s.data),
        "split": {"train": "DRIVE 21-38 + " + ("pydicom CT_small" if DATA_SETS[s.data] is None
                                               else "pydicom/pydicom-data CT, MR and radiographs"),
                  "val": "DRIVE 39-40" + ("" if DATA_SETS[s.data] is None else f" + {VAL_CT[0]} frame {VAL_CT[1]}")
                         + " (256 crops, sigma 25)",
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
            log=print, others: dict[str, torch.nn.Module] | None = None) -> dict[str, Any]:
    """PSNR/SSIM of each method on each noise condition, averaged over the test images, per image set.

    Returns ``{condition: {set: {method: {"psnr": .., "ssim": ..}}}}`` with conditions ``gaussian-15`` ..
    ``poisson-30`` and sets ``drive``, ``ct`` and ``all``. ``ours-x8`` is the learned model with the
    8-fold flip/rotation self-ensemble (``enhance.denoise(self_ensemble=True)``), 8 times the cost.
    ``others`` adds more learned models as extra methods (one forward pass each) on the same noisy images.
    """
    others = others or {}
    methods = (*methods, *others)
    images = images if images is not None else benchmark_images(data_root)
    rng = np.random.default_rng(seed + 7)
    conditions = [(f"gaussian-{int(s)}", "gaussian", s) for s in sigmas] + [(f"poisson-{int(peak)}", "poisson",
                                                                             peak)]
    need_bm3d = "bm3d" in methods or any(n.guided for n in (model, *others.values()) if n is not None)
    rows: list[dict[str, Any]] = []
    for cond, kind, level in progress(conditions, desc="compare", total=len(conditions)):
        for name, clean in images:
            noisy = add_gaussian(clean, level, rng) if kind == "gaussian" else add_poisson(clean, level, rng)
            # BM3D once per noisy image: its own row and the guided models' input
            bm3d_est = bm3d_guide(noisy, level, None if kind == "gaussian" else level) if need_bm3d else None
            for method in methods:
                if method == "noisy":
                    est = noisy
                elif method in ("ours", "ours-x8") or method in others:
                    net = others.get(method, model)
                    smap = level if kind == "gaussian" else poisson_sigma_map(noisy, level)
                    guide = bm3d_est if net.guided else None
                    est = denoise(net, noisy, smap, self_ensemble=method == "ours-x8", guide=guide)
                elif method == "bm3d":
                    est = bm3d_est
                else:
                    est = nlm(noisy, level) if kind == "gaussian" else classical_poisson(nlm, noisy, level)
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
