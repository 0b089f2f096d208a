"""Device choice: ``cpu``, ``cuda`` or ``auto``."""

from __future__ import annotations

import torch

from smartcare.core.errors import SmartcareError


def choose_device(name: str = "auto") -> torch.device:
    """Return the torch device for ``name``.

    ``auto`` picks CUDA when available, else CPU. Asking for ``cuda`` on a machine without it raises
    ``SmartcareError`` instead of failing later inside a kernel.
    """
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SmartcareError("--device cuda was requested but no CUDA device is available")
        return torch.device(name)
    raise SmartcareError(f"unknown device {name!r}: use cpu, cuda or auto")
