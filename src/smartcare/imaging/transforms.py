"""Intensity windowing and MONAI ``Compose`` dictionary pipelines.

Array operations (``window``) are kept apart from their dictionary wrappers (``Windowd``), which only
map the operation over keys (STYLE.md 3). CT window presets follow the usual radiology settings
(Radiopaedia, "Windowing (CT)"): level/width in Hounsfield units.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.transforms import (
    Compose,
    EnsureTyped,
    MapTransform,
    RandAffined,
    RandFlipd,
    ScaleIntensityRanged,
)

from smartcare.core.errors import SmartcareError

# name -> (level, width) in HU
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
}


def window_bounds(preset: str | tuple[float, float]) -> tuple[float, float]:
    """(low, high) HU of a preset name or an explicit ``(level, width)``."""
    if isinstance(preset, str):
        if preset not in WINDOW_PRESETS:
            raise SmartcareError(f"unknown window preset {preset!r}; choose one of {', '.join(WINDOW_PRESETS)}")
        level, width = WINDOW_PRESETS[preset]
    else:
        level, width = preset
    if width <= 0:
        raise SmartcareError(f"window width must be positive, got {width}")
    return level - width / 2.0, level + width / 2.0


def window(hu: np.ndarray, preset: str | tuple[float, float]) -> np.ndarray:
    """Map HU values to [0, 1] through a window: below low -> 0, above high -> 1, linear between.

    Input any shape; output float32 of the same shape.
    """
    low, high = window_bounds(preset)
    out = (np.asarray(hu, dtype=np.float32) - low) / (high - low)
    return np.clip(out, 0.0, 1.0)


class Windowd(MapTransform):
    """Dictionary wrapper of ``window`` for the given keys."""

    def __init__(self, keys: Sequence[Hashable] | Hashable, preset: str | tuple[float, float],
                 allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        window_bounds(preset)  # validate early
        self.preset = preset

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            value = d[key]
            arr = value.numpy() if isinstance(value, torch.Tensor) else value
            d[key] = window(arr, self.preset)
        return d


def ct_window_pipeline(preset: str, keys: Sequence[str] = ("image",)) -> Compose:
    """Windowing pipeline for CT volumes in HU -> float32 in [0, 1]."""
    return Compose([Windowd(keys, preset), EnsureTyped(keys, track_meta=False)])


def classification_pipeline(train: bool, keys: Sequence[str] = ("image",)) -> Compose:
    """Per-image pipeline for the 28x28 classifiers.

    Input dict ``{"image": uint8 or float array (1, H, W) in 0..255}``; output ``image`` float32 tensor
    (1, H, W) in [-1, 1]. With ``train=True`` it adds a random affine (rotation +-10 deg, scale +-10 %,
    shift +-2 px) and a left-right flip.
    """
    steps = [ScaleIntensityRanged(keys, a_min=0.0, a_max=255.0, b_min=-1.0, b_max=1.0, clip=True)]
    if train:
        steps += [
            RandAffined(keys, prob=0.8, rotate_range=0.17, scale_range=0.1, translate_range=2.0,
                        padding_mode="border", mode="bilinear"),
            RandFlipd(keys, prob=0.5, spatial_axis=1),
        ]
    steps.append(EnsureTyped(keys, dtype=torch.float32, track_meta=False))
    return Compose(steps)
