"""The in-memory image type shared by every reader: voxels plus their place in patient space."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from smartcare.core.errors import SmartcareError


class ImageReadError(SmartcareError):
    """A file cannot be read as an image: not that format, corrupt, truncated, or inconsistent geometry."""

    title = "Unreadable image"


@dataclass(frozen=True, eq=False)
class Volume:
    """Voxels with geometry, in the ITK/DICOM convention.

    ``array`` is indexed ``(..., Z, Y, X)``: the last three axes are spatial (slice, row, column); leading
    axes, if any, are time, channel or segment. ``spacing`` is ``(sx, sy, sz)`` in mm, ``origin`` is the
    patient-space position (LPS, DICOM PS3.3 C.7.6.2.1.1) of voxel ``(0, 0, 0)``, and ``direction`` is a
    (3, 3) matrix whose columns are the LPS unit vectors of the x, y and z index axes.
    """

    array: np.ndarray
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0)
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    direction: np.ndarray = field(default_factory=lambda: np.eye(3))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.array.ndim < 3:
            raise ValueError(f"Volume needs at least 3 axes (Z, Y, X), got shape {self.array.shape}")

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping index (x, y, z, 1) to LPS millimetres."""
        out = np.eye(4)
        out[:3, :3] = np.asarray(self.direction) * np.asarray(self.spacing)[None, :]
        out[:3, 3] = self.origin
        return out

    @property
    def spatial_shape(self) -> tuple[int, int, int]:
        """(Z, Y, X)."""
        return tuple(int(n) for n in self.array.shape[-3:])

    def same_grid(self, other: Volume, atol: float = 1e-3) -> bool:
        """True when both volumes have the same spatial shape and affine (within ``atol`` mm)."""
        return self.spatial_shape == other.spatial_shape and bool(np.allclose(self.affine, other.affine,
                                                                                 atol=atol))

    def describe(self) -> str:
        arr = self.array
        lines = [f"shape {arr.shape} {arr.dtype} (axes ..., Z, Y, X)",
                 f"spacing (x, y, z) mm {tuple(round(float(s), 4) for s in self.spacing)}",
                 f"origin LPS mm {tuple(round(float(s), 3) for s in self.origin)}",
                 f"direction {np.round(np.asarray(self.direction), 4).tolist()}"]
        if arr.size:
            lines.append(f"values min {float(arr.min()):g} max {float(arr.max()):g}")
        lines += [f"{k}: {v}" for k, v in self.meta.items() if isinstance(v, str | int | float)]
        return "\n".join(lines)


def geometry_from_affine(affine: np.ndarray) -> tuple[tuple, tuple, np.ndarray]:
    """Split a 4x4 index-to-LPS affine into (spacing, origin, direction)."""
    m = np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if np.any(spacing == 0):
        raise ImageReadError(f"affine has a zero-length axis: {affine.tolist()}")
    return tuple(float(s) for s in spacing), tuple(float(v) for v in affine[:3, 3]), m / spacing[None, :]
