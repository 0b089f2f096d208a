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
    Resized,
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


def to_grayscale(image: np.ndarray) -> np.ndarray:
    """(C, Y, X) with C = 1, 3 or 4 -> (1, Y, X) float32; colour uses ITU-R BT.601 luma weights."""
    image = np.asarray(image, dtype=np.float32)
    if image.shape[0] == 1:
        return image
    if image.shape[0] in (3, 4):
        return (0.299 * image[0] + 0.587 * image[1] + 0.114 * image[2])[None]
    raise SmartcareError(f"cannot make a grayscale image from {image.shape[0]} channels")


def to_byte_range(image: np.ndarray, source_dtype: np.dtype, invert: bool = False) -> np.ndarray:
    """Intensities -> 0..255 float32: uint8 data is kept, anything else is min-max scaled per image;
    ``invert`` flips it (DICOM MONOCHROME1, where high values are dark)."""
    image = np.asarray(image, dtype=np.float32)
    if np.dtype(source_dtype) != np.uint8:
        lo, hi = float(image.min()), float(image.max())
        image = (image - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(image)
    return 255.0 - image if invert else image


class Grayscaled(MapTransform):
    """Dictionary wrapper of ``to_grayscale``."""

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = to_grayscale(d[key])
        return d


class ByteRanged(MapTransform):
    """Dictionary wrapper of ``to_byte_range``; reads ``dtype`` and ``invert`` from the item."""

    def __call__(self, data: Mapping) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = to_byte_range(d[key], d.get("dtype", np.float32), bool(d.get("invert", False)))
        return d


def classifier_input_pipeline(size: int = 28, keys: Sequence[str] = ("image",)) -> Compose:
    """Any 2D image ``{"image": (C, Y, X), "dtype", "invert"}`` -> ``image`` (1, size, size) float32 in
    0..255, the range of the MedMNIST training images (area interpolation, as MedMNIST was resized)."""
    return Compose([Grayscaled(keys), ByteRanged(keys),
                    Resized(keys, spatial_size=(size, size), mode="area"),
                    EnsureTyped(keys, data_type="numpy", dtype=np.float32, track_meta=False)])
