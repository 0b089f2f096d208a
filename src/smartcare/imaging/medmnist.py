"""MedMNIST v2 loaders (Yang et al., Scientific Data 10:41, 2023) for the shared 28x28 datasets.

Files are read from ``SMARTCARE_DATA/imaging/<name>/``; nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError


@dataclass(frozen=True)
class MedMNISTInfo:
    """What the loader needs to know about one MedMNIST dataset."""

    file: str  # npz file inside imaging/<name>/
    classes: tuple[str, ...]  # class names by label index
    baselines: dict  # published test AUC/ACC (MedMNIST v2 Table), method -> {"auc", "acc"}


DATASETS: dict[str, MedMNISTInfo] = {
    "pneumoniamnist": MedMNISTInfo(
        "pneumoniamnist_train_val.npz", ("normal", "pneumonia"),
        {"ResNet-18 (28)": {"auc": 0.944, "acc": 0.854}, "ResNet-50 (224)": {"auc": 0.962, "acc": 0.884},
         "Google AutoML Vision": {"auc": 0.991, "acc": 0.946}}),
    "breastmnist": MedMNISTInfo(
        "breastmnist.npz", ("malignant", "normal+benign"),
        {"ResNet-18 (28)": {"auc": 0.901, "acc": 0.863}, "Google AutoML Vision": {"auc": 0.919, "acc": 0.861}}),
}


def dataset_info(name: str) -> MedMNISTInfo:
    if name not in DATASETS:
        raise SmartcareError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return DATASETS[name]


def load_split(name: str, split: str, root: Path | str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) int64 of ``split`` ("train", "val" or "test").

    Raises:
        DatasetMissingError: the dataset folder is absent.
        SmartcareError: the split is not in the file (PneumoniaMNIST's test split is held out).
    """
    info = dataset_info(name)
    path = dataset_path(f"imaging/{name}", root) / info.file
    with np.load(path) as npz:
        if f"{split}_images" not in npz:
            raise SmartcareError(f"{path.name} has no {split!r} split (keys: {', '.join(npz.files)})")
        images = np.asarray(npz[f"{split}_images"], dtype=np.uint8)
        labels = np.asarray(npz[f"{split}_labels"]).reshape(-1).astype(np.int64)
    if images.ndim != 3 or len(images) != len(labels):
        raise SmartcareError(f"{path.name}: {split} images {images.shape} do not match labels {labels.shape}")
    return images, labels


def available_splits(name: str, root: Path | str | None = None) -> list[str]:
    path = dataset_path(f"imaging/{name}", root) / dataset_info(name).file
    with np.load(path) as npz:
        return [s for s in ("train", "val", "test") if f"{s}_images" in npz]
