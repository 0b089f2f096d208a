"""Classify images with a shipped classifier: NPZ stacks, PNG, DICOM files, or folders of them.

``load_images`` turns any input into 2D images with a source label each; ``classify_path`` runs a shipped
model (``weights/<name>/``) and returns one row per image: ``index, source, pred, p_0, p_1, ...``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from smartcare.core.errors import SmartcareError
from smartcare.imaging.input_check import check_dicom, check_pixels, dicom_header
from smartcare.imaging.io import is_dicom, read_image, read_npz
from smartcare.imaging.transforms import classifier_input_pipeline
from smartcare.imaging.volume import ImageReadError, Volume

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom", ".npz")


@dataclass(frozen=True)
class ImageBatch:
    """Images ready for a 28x28 classifier and where each came from."""

    images: np.ndarray  # (N, size, size) float32 in 0..255
    sources: list[str]  # one label per image, e.g. "a.npz:test_images[3]" or "b.dcm"
    warnings: list[list[str]] = field(default_factory=list)  # input-check warnings per image (input_check)
    headers: list[dict[str, str] | None] = field(default_factory=list)  # DICOM header fields per image, or None


def _npz_images(path: Path, key: str | None) -> tuple[list[np.ndarray], list[str], list[tuple]]:
    arr = read_npz(path, key)
    name = f"{path.name}:{key}" if key else path.name
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim == 4 and arr.shape[-1] in (1, 3):
        arr = np.moveaxis(arr, -1, 1)  # (N, C, H, W)
    elif arr.ndim == 3:
        arr = arr[:, None]  # (N, 1, H, W)
    else:
        raise ImageReadError(f"{name}: expected images shaped (N, H, W) or (N, H, W, C), got {arr.shape}")
    if arr.dtype != np.uint8:
        if arr.dtype.kind == "f" and arr.size and 0.0 <= float(arr.min()) and float(arr.max()) <= 1.0:
            arr = np.round(arr * 255.0).astype(np.uint8)
        else:
            raise ImageReadError(f"{name}: expected uint8 images (0..255) or floats in [0, 1], got {arr.dtype}")
    return list(arr), [f"{name}[{i}]" for i in range(len(arr))], [(np.dtype(np.uint8), False)] * len(arr)


def _volume_images(vol: Volume, path: Path) -> tuple[list[np.ndarray], list[str], list[tuple]]:
    arr = vol.array
    invert = vol.meta.get("photometric") == "MONOCHROME1"
    if arr.ndim == 4 and arr.shape[0] in (3, 4):  # (C, Z, Y, X) colour
        slices = [arr[:, z] for z in range(arr.shape[1])]
    elif arr.ndim == 3:
        slices = [arr[z][None] for z in range(arr.shape[0])]  # (1, Y, X) each
    else:
        raise ImageReadError(f"{path.name}: cannot classify an image of shape {arr.shape}; expected 2D images")
    names = [path.name] if len(slices) == 1 else [f"{path.name}[{z}]" for z in range(len(slices))]
    dtype = np.dtype(np.uint8) if arr.dtype == np.uint8 else np.dtype(np.float32)
    return slices, names, [(dtype, invert)] * len(slices)


def _files_in(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")
                   and (p.suffix.lower() in IMAGE_SUFFIXES or is_dicom(p)))
    if not files:
        raise ImageReadError(f"{folder}: no PNG, DICOM or NPZ files in this folder")
    return files


def _pixel_warnings(f: Path, label: str, imgs: list[np.ndarray], expects: dict[str, Any] | None,
                    model: str) -> list[str]:
    """Input-check warnings for one non-DICOM file: channel count, and slices of a volume."""
    if not expects or not imgs:
        return []
    return check_pixels(expects, imgs[0], label, model, slices=1 if f.suffix.lower() == ".npz" else len(imgs))


def load_images(path: Path | str, key: str | None = None, size: int = 28, expects: dict[str, Any] | None = None,
                model: str = "", allow_mismatch: bool = False) -> ImageBatch:
    """Read NPZ / PNG / DICOM files (or a folder of them) into (N, size, size) images in 0..255.

    Colour becomes grayscale, non-uint8 data is min-max scaled per image, DICOM MONOCHROME1 is inverted,
    and images are resized to ``size`` with area interpolation (MONAI ``Resized``). With ``expects`` (a model
    card's field) each file is checked first (``input_check``): warnings per image, or
    ``InputMismatchError`` for input the model cannot meaningfully score.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file or folder")
    files = _files_in(path) if path.is_dir() else [path]
    pipeline = classifier_input_pipeline(size)
    images, sources, warnings, headers = [], [], [], []
    for f in files:
        label = f.name if path.is_file() else str(f.relative_to(path))
        header = None if f.suffix.lower() == ".npz" else dicom_header(f)
        # DICOM: checked (and maybe refused) from the header before the pixels are read
        file_warnings = check_dicom(expects, header, label, model, allow_mismatch) if header is not None else []
        if f.suffix.lower() == ".npz":
            imgs, names, kinds = _npz_images(f, key)
        else:
            imgs, names, kinds = _volume_images(read_image(f), f)
        if header is None:
            file_warnings = _pixel_warnings(f, label, imgs, expects, model)
        for img, name, (dtype, invert) in zip(imgs, names, kinds, strict=True):
            out = pipeline({"image": np.asarray(img), "dtype": dtype, "invert": invert})["image"]
            images.append(np.asarray(out)[0])
            sources.append(name if path.is_file() else str(f.relative_to(path)) + name[len(f.name):])
            warnings.append(list(file_warnings))
            headers.append(header)
    if not images:
        raise ImageReadError(f"{path}: no images found")
    return ImageBatch(np.stack(images).astype(np.float32), sources, warnings, headers)


def predictions_table(probs: np.ndarray, sources: list[str],
                      warnings: list[list[str]] | None = None) -> pd.DataFrame:
    """(N, C) probabilities -> DataFrame ``index, source, pred, p_0 .. p_{C-1}`` (the issue's PRED.csv).

    A last column ``warnings`` (each image's input-check warnings joined by " | ") is added only when some
    image has one, so the table keeps its documented shape for inputs the model expects.
    """
    table = pd.DataFrame({"index": np.arange(len(sources)), "source": sources,
                          "pred": probs.argmax(axis=1).astype(int)})
    for k in range(probs.shape[1]):
        table[f"p_{k}"] = probs[:, k].astype(float)
    if warnings and any(warnings):
        table["warnings"] = [" | ".join(w) for w in warnings]
    return table


def _predict_chunk(model_name: str, weights_root, device: str, images: np.ndarray) -> np.ndarray:
    """Probabilities (N, C) of one chunk of images; loads the model itself (runs as a Ray task too)."""
    from smartcare.core.device import choose_device
    from smartcare.imaging.train import load_classifier, predict_proba

    model, _ = load_classifier(model_name, weights_root)
    return predict_proba(model, images, choose_device(device))


def classify_path(model_name: str, path: Path | str, key: str | None = None, device: str = "cpu",
                  weights_root: Path | str | None = None, use_ray: bool = False,
                  chunk: int = 512, allow_mismatch: bool = False) -> pd.DataFrame:
    """Classify every image in ``path`` with shipped model ``model_name``; see ``predictions_table``.

    ``use_ray`` spreads chunks of ``chunk`` images over Ray tasks (``SMARTCARE_RAY_ADDRESS`` or a local
    cluster); the table equals the local one. Inputs are checked against the card's ``expects``
    (``input_check``); ``allow_mismatch`` turns a refusal into a warning.
    """
    return classify_inputs(model_name, path, key, device, weights_root, use_ray, chunk, allow_mismatch)[0]


def classify_inputs(model_name: str, path: Path | str, key: str | None = None, device: str = "cpu",
                    weights_root: Path | str | None = None, use_ray: bool = False, chunk: int = 512,
                    allow_mismatch: bool = False) -> tuple[pd.DataFrame, list[dict[str, str] | None]]:
    """``classify_path`` plus each row's DICOM header fields (None for non-DICOM), for FHIR reports."""
    from functools import partial

    from smartcare.core.distributed import ray_map
    from smartcare.core.registry import load_card

    card = load_card(model_name, weights_root)
    size = int(card.get("input", {}).get("height", 28))
    batch = load_images(path, key=key, size=size, expects=card.get("expects"), model=model_name,
                        allow_mismatch=allow_mismatch)
    chunks = [batch.images[i:i + chunk] for i in range(0, len(batch.images), chunk)]  # (n, H, W) each
    run = partial(_predict_chunk, model_name, weights_root, device)
    parts = ray_map(run, chunks) if use_ray else [run(c) for c in chunks]
    probs = np.concatenate(parts)  # (N, C)
    if probs.shape[1] != len(card.get("classes", [])) and card.get("classes"):
        raise SmartcareError(f"model {model_name!r} returned {probs.shape[1]} classes, card lists "
                             f"{len(card['classes'])}")
    return predictions_table(probs, batch.sources, batch.warnings), batch.headers


class _Bf16ChannelsLast(torch.nn.Module):
    """Wraps a 2D classifier: input (B, C, H, W) float32 -> channels_last, forward under bfloat16 autocast,
    logits returned as float32 (B, num_classes)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)  # (B, C, H, W), NHWC strides
        with torch.autocast(x.device.type, dtype=torch.bfloat16):
            return self.model(x).float()  # (B, num_classes)


def optimise_for_inference(model: torch.nn.Module) -> torch.nn.Module:
    """A faster inference copy of ``model`` (left unchanged): channels_last weights and bfloat16 autocast.

    In: a 2D classifier taking (B, C, H, W). Out: an eval-mode module with the same call signature and
    float32 logits, equal to eager within bfloat16 rounding (probabilities differ by ~1e-2 at most on the
    shipped PneumoniaMNIST model). Fast on CPUs with native bf16 (AVX512-BF16/AMX); measured in
    ``benchmarks/imaging_inference.py``.
    """
    import copy

    fast = copy.deepcopy(model).eval().to(memory_format=torch.channels_last)  # .to() mutates in place
    return _Bf16ChannelsLast(fast).eval()
