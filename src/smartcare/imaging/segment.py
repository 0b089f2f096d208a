"""Retinal vessel segmentation on DRIVE with a MONAI U-Net: data, features, model, inference, metrics.

DRIVE: Staal et al., "Ridge-based vessel segmentation in color images of the retina", IEEE TMI 23(4), 2004
(official split: 20 training images, ids 21-40; 20 test images, ids 01-20, with a second observer).
The network is MONAI's ``UNet`` (Ronneberger et al., MICCAI 2015; residual units after Kerfoot et al.
2018) fed three feature channels per pixel: CLAHE-equalised green channel, a black top-hat and a
multiscale Frangi vesselness (Frangi et al., MICCAI 1998). Inference is MONAI's
``sliding_window_inference`` with Gaussian blending and optional flip test-time augmentation. Metrics are
counted inside the field of view (FOV) only, as in the DRIVE protocol. Training lives in
``imaging.segment_train``; file in/file out in ``imaging.segment_apply``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError
from smartcare.imaging.io import read_npz

DRIVE_KEYS = ("images", "manual1", "fov_mask", "ids")


@dataclass(frozen=True)
class SegConfig:
    """The vessel U-Net and its input features."""

    in_channels: int = 3  # CLAHE green, black top-hat, Frangi vesselness
    channels: tuple[int, ...] = (16, 32, 64, 128)  # feature maps per U-Net level
    strides: tuple[int, ...] = (1, 2, 2)  # level 0 stays at full resolution for 1-2 px vessels
    num_res_units: int = 1  # residual units per block (MONAI UNet)
    dropout: float = 0.0  # dropout inside the U-Net
    roi: int = 128  # sliding-window tile size at inference

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.channels) - 1:
            raise SmartcareError(f"U-Net needs len(strides) == len(channels) - 1, got {self.strides} and "
                                 f"{self.channels}")


def build_segmenter(config: SegConfig) -> nn.Module:
    """MONAI 2D ``UNet``: (B, in_channels, H, W) -> vessel logits (B, 1, H, W); H, W multiples of the stride
    product (sliding-window tiles guarantee it)."""
    from monai.networks.nets import UNet

    return UNet(spatial_dims=2, in_channels=config.in_channels, out_channels=1, channels=config.channels,
                strides=config.strides, num_res_units=config.num_res_units, dropout=config.dropout)


def config_from_card(card: dict[str, Any]) -> SegConfig:
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in card.get("config", {}).items()}
    try:
        return SegConfig(**cfg)
    except TypeError as err:
        raise SmartcareError(f"model card holds a bad segmentation config: {err}") from err


def config_to_dict(config: SegConfig) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


# ----------------------------------------------------------------------------------------------- data


def load_drive(split: str, root: Path | str | None = None) -> dict[str, np.ndarray]:
    """DRIVE ``split`` ("train" or "test") -> dict of arrays.

    Keys: ``images`` (N, 584, 565, 3) uint8 RGB, ``manual1`` (N, H, W) uint8 {0,1} first observer,
    ``fov_mask`` (N, H, W) uint8 {0,1}, ``ids`` (N,) and, for test, ``manual2`` (second observer).
    Raises ``DatasetMissingError`` when ``imaging/drive`` is absent, ``SmartcareError`` for a bad split.
    """
    if split not in ("train", "test"):
        raise SmartcareError(f"DRIVE split must be 'train' or 'test', not {split!r}")
    path = dataset_path("imaging/drive", root) / f"drive_{split}.npz"
    keys = DRIVE_KEYS + (("manual2",) if split == "test" else ())
    return {k: read_npz(path, k) for k in keys}


def estimate_fov(rgb: np.ndarray) -> np.ndarray:
    """FOV mask of a fundus photograph (H, W, 3) uint8 -> (H, W) bool: red channel above a dark threshold,
    largest component kept, holes filled."""
    from scipy import ndimage

    red = ndimage.uniform_filter(rgb[..., 0].astype(np.float32), 5)
    mask = red > max(20.0, 0.1 * float(np.percentile(red, 99)))
    labels, n = ndimage.label(mask)
    if n > 1:
        sizes = ndimage.sum(mask, labels, range(1, n + 1))
        mask = labels == (int(np.argmax(sizes)) + 1)
    mask = ndimage.binary_erosion(ndimage.binary_fill_holes(mask), iterations=2)
    return mask if mask.any() else np.ones(rgb.shape[:2], bool)


def vessel_features(rgb: np.ndarray, fov: np.ndarray | None = None) -> np.ndarray:
    """Fundus image -> network input (3, H, W) float32, each channel z-scored inside the FOV, 0 outside.

    ``rgb`` is (H, W, 3) uint8 RGB or (H, W) grayscale (used as the green channel). Channels: CLAHE green
    (Zuiderveld 1994), black top-hat with a disk of radius 7 (vessels are dark), Frangi vesselness at
    sigmas 1-3 on the equalised image.
    """
    from skimage import exposure, filters, morphology

    green = rgb[..., 1] if rgb.ndim == 3 else rgb
    green = green.astype(np.float32) / (255.0 if green.dtype == np.uint8 else max(float(green.max()), 1e-6))
    fov = estimate_fov(rgb) if fov is None and rgb.ndim == 3 else fov
    fov = np.ones(green.shape, bool) if fov is None else fov.astype(bool)
    inside = green[fov]
    green = np.where(fov, green, float(inside.mean()) if inside.size else 0.0)  # no FOV edge for CLAHE
    clahe = exposure.equalize_adapthist(green, clip_limit=0.01, kernel_size=max(8, min(green.shape) // 8))
    tophat = morphology.black_tophat(clahe, morphology.disk(7))
    frangi = filters.frangi(clahe, sigmas=(1, 2, 3), black_ridges=True)
    feats = np.stack([clahe, tophat, frangi ** 0.5]).astype(np.float32)  # (3, H, W)
    for c in range(feats.shape[0]):
        vals = feats[c][fov]
        feats[c] = (feats[c] - vals.mean()) / (vals.std() + 1e-6)
    return feats * fov[None]


# ----------------------------------------------------------------------------------------- inference


@torch.no_grad()
def predict_vessels(model: nn.Module, feats: np.ndarray, *, roi: int = 128, tta: bool = True,
                    device: torch.device | str = "cpu", sw_batch_size: int = 8) -> np.ndarray:
    """Vessel probability (H, W) float32 in [0, 1] for features (C, H, W), by sliding-window inference.

    Tiles of ``roi`` x ``roi`` overlap by 25% and are blended with a Gaussian; ``tta`` averages the four
    flips (none, H, W, HW).
    """
    from monai.inferers import sliding_window_inference

    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(feats))[None].to(device)  # (1, C, H, W)
    flips = [(), (2,), (3,), (2, 3)] if tta else [()]
    total = torch.zeros(x.shape[2:], device=device)
    for dims in flips:
        xi = torch.flip(x, dims) if dims else x
        logits = sliding_window_inference(xi, roi_size=(roi, roi), sw_batch_size=sw_batch_size, predictor=model,
                                          overlap=0.25, mode="gaussian")
        prob = torch.sigmoid(logits)
        total += (torch.flip(prob, dims) if dims else prob)[0, 0]
    return (total / len(flips)).float().cpu().numpy()


# ------------------------------------------------------------------------------------------- metrics


def confusion(truth: np.ndarray, pred: np.ndarray, fov: np.ndarray) -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) of binary ``pred`` against ``truth``, counted inside ``fov``."""
    t, p, f = truth.astype(bool), pred.astype(bool), fov.astype(bool)
    tp = int(np.sum(t & p & f))
    fp = int(np.sum(~t & p & f))
    fn = int(np.sum(t & ~p & f))
    return tp, fp, fn, int(f.sum()) - tp - fp - fn


def scores_from_counts(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """F1 (= Dice), accuracy, sensitivity, specificity and precision from pooled counts."""
    n = tp + fp + fn + tn
    return {"f1": 2 * tp / max(2 * tp + fp + fn, 1), "acc": (tp + tn) / max(n, 1),
            "se": tp / max(tp + fn, 1), "sp": tn / max(tn + fp, 1), "precision": tp / max(tp + fp, 1)}


def segmentation_metrics(truth: np.ndarray, prob: np.ndarray, fov: np.ndarray, threshold: float = 0.5,
                         with_auc: bool = True, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Pooled FOV metrics of probability maps ``prob`` (N, H, W) against ``truth`` (N, H, W).

    Returns F1/Dice, accuracy, Se, Sp, precision (pixels pooled over images, as in the DRIVE literature),
    AUC over all FOV pixels (when ``with_auc``), and a 95% percentile bootstrap interval over images for
    F1 and accuracy (``f1_ci``, ``acc_ci``).
    """
    truth, prob, fov = np.asarray(truth), np.asarray(prob), np.asarray(fov).astype(bool)
    if truth.shape != prob.shape or truth.shape != fov.shape:
        raise SmartcareError(f"shapes differ: truth {truth.shape}, prediction {prob.shape}, FOV {fov.shape}")
    truth, prob, fov = truth.reshape((-1,) + truth.shape[-2:]), prob.reshape((-1,) + prob.shape[-2:]), \
        fov.reshape((-1,) + fov.shape[-2:])  # (N, H, W)
    counts = np.array([confusion(t, p >= threshold, f) for t, p, f in zip(truth, prob, fov, strict=True)])
    out: dict[str, Any] = scores_from_counts(*counts.sum(0).tolist())
    out["threshold"], out["n_images"] = float(threshold), len(counts)
    if with_auc:
        from smartcare.core.metrics import auc

        out["auc"] = auc(truth[fov].astype(np.uint8), prob[fov])
    rng = np.random.default_rng(seed)
    boots = [scores_from_counts(*counts[rng.integers(0, len(counts), len(counts))].sum(0).tolist())
             for _ in range(n_boot if len(counts) > 1 else 0)]
    for key in ("f1", "acc"):
        vals = [b[key] for b in boots]
        out[f"{key}_ci"] = [float(np.quantile(vals, 0.025)), float(np.quantile(vals, 0.975))] if vals else None
    return out


def best_threshold(truth: np.ndarray, prob: np.ndarray, fov: np.ndarray) -> tuple[float, float]:
    """Threshold in [0.05, 0.95] maximising pooled F1 inside the FOV: ``(threshold, f1)``."""
    fov = np.asarray(fov).astype(bool)
    t, p = np.asarray(truth)[fov].astype(bool), np.asarray(prob)[fov]
    best = (0.5, -1.0)
    for th in np.round(np.arange(0.05, 0.951, 0.01), 2):
        pred = p >= th
        tp = np.sum(pred & t)
        f1 = 2 * tp / max(pred.sum() + t.sum(), 1)
        if f1 > best[1]:
            best = (float(th), float(f1))
    return best


def overlay(rgb: np.ndarray, mask: np.ndarray, color: tuple[int, int, int] = (0, 255, 80),
            alpha: float = 0.6) -> np.ndarray:
    """(H, W, 3) uint8 image (or (H, W) gray) with ``mask`` (H, W) blended in ``color`` -> (H, W, 3) uint8."""
    base = np.repeat(rgb[..., None], 3, axis=-1) if rgb.ndim == 2 else rgb[..., :3]
    out = base.astype(np.float32)
    m = mask.astype(bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    return out.clip(0, 255).astype(np.uint8)
