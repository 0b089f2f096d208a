"""Does an input look like what a shipped model was trained on? Warnings and refusals before inference.

Each imaging model card has an ``expects`` field::

    {"description": "frontal chest X-ray ...", "modalities": ["CR", "DX"] or null (any),
     "channels": 1 or 3 or null (any), "photometric": ["MONOCHROME1", ...] or null (any)}

Policy (issue 6 QA): a model given the wrong kind of image still returns confident numbers, so
- DICOM whose Modality is a real modality outside ``modalities`` AND whose samples per pixel differ from
  ``channels`` is refused (``InputMismatchError``, a ``SmartcareError``: CLI exit 2, HTTP 422): e.g. a
  1-channel CT to the colour fundus vessel model, or a colour ophthalmic photograph to a chest X-ray
  classifier. Nothing about such a result is meaningful. ``allow_mismatch=True`` turns it into a warning.
- A modality mismatch alone (a CT or MR slice to the chest X-ray classifier), a channel count or a
  PhotometricInterpretation outside the expected ones gives a warning: the result is returned, flagged.
- Modality ``OT`` (other) or missing cannot confirm the kind of image: a warning.
- Non-DICOM input has no modality: a warning on an obviously wrong channel count (colour where grayscale is
  expected, unless R = G = B; grayscale where colour is expected) and on a multi-slice volume given to a
  2D model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smartcare.core.errors import SmartcareError

UNKNOWN_MODALITIES = {"", "OT"}  # "other": says nothing about what the image shows
HEADER_KEYS = ("Modality", "PhotometricInterpretation", "SamplesPerPixel", "PatientID", "IssuerOfPatientID",
               "StudyInstanceUID", "StudyDate", "StudyTime", "TimezoneOffsetFromUTC", "AccessionNumber",
               "SeriesInstanceUID")


class InputMismatchError(SmartcareError):
    """The input is not the kind of image the model was trained on, so its output would be meaningless."""

    title = "Input does not match the model"


def dicom_header(path: Path | str) -> dict[str, str] | None:
    """The header fields used here (``HEADER_KEYS``, as strings, '' when absent) of a DICOM file, or None
    when ``path`` is not a DICOM file. For a folder (one series), the first DICOM file in it."""
    from smartcare.imaging.io import is_dicom

    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and is_dicom(p))
        if not files:
            return None
        path = files[0]
    if not path.is_file() or path.name.lower().endswith((".npz", ".png", ".nii", ".nii.gz", ".nrrd")):
        return None
    if not (path.name.lower().endswith((".dcm", ".dicom")) or is_dicom(path)):
        return None
    from smartcare.imaging.dicom import read_dataset

    ds = read_dataset(path, stop_before_pixels=True)
    return {k: str(ds.get(k, "") or "").strip() for k in HEADER_KEYS}


def _what(expects: dict[str, Any]) -> str:
    return str(expects.get("description") or "its training images")


def check_dicom(expects: dict[str, Any] | None, header: dict[str, str], name: str, model: str,
                allow_mismatch: bool = False) -> list[str]:
    """Warnings for a DICOM input against the card's ``expects``; raises ``InputMismatchError`` (see module)."""
    if not expects:
        return []
    warnings: list[str] = []
    modality = header.get("Modality", "").upper()
    allowed = expects.get("modalities")
    channels = expects.get("channels")
    try:
        samples = int(header.get("SamplesPerPixel") or 1)
    except ValueError:
        samples = 1
    photometric = header.get("PhotometricInterpretation", "").upper()
    modality_bad = bool(allowed) and modality not in UNKNOWN_MODALITIES and modality not in allowed
    channels_bad = channels is not None and samples != int(channels)
    if modality_bad and channels_bad:
        message = (f"{name}: DICOM Modality {modality} with {samples} sample(s) per pixel, but model {model!r} "
                   f"expects {_what(expects)} (Modality {'/'.join(allowed)}, {channels} channel(s)); "
                   "its output would be meaningless")
        if not allow_mismatch:
            raise InputMismatchError(message + " (pass --allow-mismatch to run it anyway)")
        warnings.append(message)
        return warnings
    if modality_bad:
        warnings.append(f"{name}: DICOM Modality {modality} but model {model!r} expects {_what(expects)} "
                        f"(Modality {'/'.join(allowed)}); the result is outside what the model was trained on")
    elif allowed and modality in UNKNOWN_MODALITIES:
        warnings.append(f"{name}: DICOM Modality {modality or 'missing'} does not confirm the image is "
                        f"{_what(expects)} (Modality {'/'.join(allowed)})")
    if channels_bad:
        warnings.append(f"{name}: {samples} sample(s) per pixel ({photometric or 'no photometric'}), but model "
                        f"{model!r} expects {channels} channel(s): {_what(expects)}")
    elif expects.get("photometric") and photometric and photometric not in expects["photometric"]:
        warnings.append(f"{name}: PhotometricInterpretation {photometric}, model {model!r} expects "
                        f"{'/'.join(expects['photometric'])}")
    return warnings


def check_pixels(expects: dict[str, Any] | None, image: np.ndarray, name: str, model: str,
                 channel_axis: int = 0, slices: int = 1) -> list[str]:
    """Warnings for a non-DICOM image against ``expects["channels"]``.

    ``image`` holds its channels on ``channel_axis`` (a 2D array is one channel); ``slices`` > 1 marks a
    volume given to a 2D model.
    """
    if not expects:
        return []
    warnings: list[str] = []
    arr = np.asarray(image)
    n = 1 if arr.ndim == 2 else int(arr.shape[channel_axis])
    if n in (3, 4):  # colour where R = G = B is a grayscale image stored as RGB
        rgb = np.moveaxis(arr, channel_axis, 0)[:3]
        n = 1 if np.array_equal(rgb[0], rgb[1]) and np.array_equal(rgb[1], rgb[2]) else 3
    want = expects.get("channels")
    if want == 1 and n == 3:
        warnings.append(f"{name}: colour image, but model {model!r} expects {_what(expects)}; "
                        "it was converted to grayscale")
    elif want == 3 and n == 1:
        warnings.append(f"{name}: single-channel image, but model {model!r} expects {_what(expects)}")
    if slices > 1 and expects.get("dimensions", 2) == 2:
        warnings.append(f"{name}: a volume of {slices} slices, but model {model!r} expects 2D images "
                        f"({_what(expects)}); each slice was processed on its own")
    return warnings
