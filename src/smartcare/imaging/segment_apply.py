"""Vessel segmentation of files: PNG/TIFF/JPEG, NPZ stacks, DICOM and NIfTI in; PNGs, DICOM SEG, NIfTI out.

For each input image the outputs are a binary mask PNG (0/255), a probability PNG (0-255) and an overlay
PNG. A DICOM input also gets a DICOM SEG (binary, one segment) made with highdicom (``seg_dicom``), and a
NIfTI input a NIfTI mask on the input's affine. Every output is written to a temporary name and renamed, so a failure
leaves no half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from smartcare.core.errors import SmartcareError
from smartcare.imaging.input_check import check_dicom, check_pixels, dicom_header
from smartcare.imaging.io import is_dicom, read_image, read_npz
from smartcare.imaging.seg_dicom import write_dicom_seg
from smartcare.imaging.segment import estimate_fov, overlay, predict_vessels, vessel_features


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Any 2D/RGB image -> uint8; non-uint8 data are scaled between their 0.5th and 99.5th percentiles."""
    if image.dtype == np.uint8:
        return image
    lo, hi = np.percentile(image, [0.5, 99.5])
    return (np.clip((image.astype(np.float64) - lo) / max(hi - lo, 1e-6), 0, 1) * 255).astype(np.uint8)


SEGMENT_MIN_PX = 32  # smallest side the vessel features (top-hat disk 7, Frangi) and U-Net are used on


def images_from(path: Path, key: str | None = None, min_size: int = SEGMENT_MIN_PX,
                purpose: str = "segment") -> list[tuple[str, np.ndarray]]:
    """Input file -> list of (name, image) with image (H, W, 3) RGB or (H, W) gray, uint8.

    Images with a side under ``min_size`` pixels are refused as too small to ``purpose``."""
    stem = path.name.split(".")[0]
    if path.name.lower().endswith(".npz"):
        arr = read_npz(path, key)
        if arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] == 3):
            arr = arr[None]
        if arr.ndim not in (3, 4):
            raise SmartcareError(f"{path.name}: expected images (N, H, W) or (N, H, W, 3), got {arr.shape}")
        return [(f"{stem}_{i:03d}", to_uint8(a)) for i, a in enumerate(arr)]
    vol = read_image(path, key)
    arr = vol.array
    if arr.ndim == 4 and arr.shape[0] in (3, 4):  # (C, Z, Y, X) colour
        planes = [np.moveaxis(arr[:3, z], 0, -1) for z in range(arr.shape[1])]  # (Y, X, 3)
    else:
        arr = arr.reshape((-1,) + arr.shape[-2:])  # (Z, Y, X)
        planes = list(arr)
    if min(planes[0].shape[:2]) < min_size:
        raise SmartcareError(f"{path.name}: image {planes[0].shape[:2]} is too small to {purpose} "
                             f"(need >= {min_size} px per side)")
    if len(planes) == 1:
        return [(stem, to_uint8(planes[0]))]
    return [(f"{stem}_{z:03d}", to_uint8(p)) for z, p in enumerate(planes)]


def _write_png(array: np.ndarray, path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)


def segment_array(model, card: dict[str, Any], image: np.ndarray, *, tta: bool = True,
                  device="cpu") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image (H, W, 3) or (H, W) uint8 -> (probability float32, mask bool, fov bool), each (H, W)."""
    fov = estimate_fov(image) if image.ndim == 3 else np.ones(image.shape, bool)
    prob = predict_vessels(model, vessel_features(image, fov), roi=card.get("config", {}).get("roi", 128),
                           tta=tta, device=device)
    return prob, (prob >= float(card.get("threshold", 0.5))) & fov, fov


def input_warnings(input: Path, images: list[tuple[str, np.ndarray]], card: dict[str, Any], model: str,
                   allow_mismatch: bool = False, header: dict | None = None) -> list[str]:
    """Check ``input`` against the card's ``expects`` (``input_check``): warnings, or ``InputMismatchError``.
    ``header`` is the input's DICOM header fields (``dicom_header``), None for other files."""
    expects = card.get("expects")
    if header is not None:
        return check_dicom(expects, header, input.name, model, allow_mismatch)
    if not images:
        return []
    volume = not input.name.lower().endswith(".npz")
    return check_pixels(expects, images[0][1], input.name, model, channel_axis=-1,
                        slices=len(images) if volume else 1)


def segment_file(input: Path | str, out: Path | str, *, model: str = "drive-vessels",
                 overlay_path: Path | str | None = None, key: str | None = None, tta: bool = True,
                 device: str = "cpu", weights_root: Path | str | None = None,
                 allow_mismatch: bool = False) -> list[dict[str, Any]]:
    """Segment every image in ``input`` and write outputs; returns one record of written paths per image.

    ``out`` ending in ``.png`` names the mask of a single image (siblings ``*_prob.png`` and
    ``*_overlay.png``); otherwise it is a folder receiving ``<name>_mask.png``, ``_prob.png`` and
    ``_overlay.png`` per image. Each record has ``warnings`` from the input check against the card's
    ``expects``; a DICOM of another modality and channel count (e.g. a CT) is refused with
    ``InputMismatchError`` unless ``allow_mismatch``.
    """
    from smartcare.core.registry import load_card
    from smartcare.imaging.segment_train import load_segmenter

    input, out = Path(input), Path(out)
    card = load_card(model, weights_root)
    header = dicom_header(input)
    warnings = input_warnings(input, [], card, model, allow_mismatch, header)  # DICOM: before reading pixels
    images = images_from(input, key)
    if header is None:
        warnings = input_warnings(input, images, card, model)
    single = out.suffix.lower() == ".png"
    if single and len(images) != 1:
        raise SmartcareError(f"{input.name} holds {len(images)} images; give --out a folder, not a PNG")
    if overlay_path is not None and not single:
        raise SmartcareError("--overlay names one PNG; use it with a single image and --out MASK.png")
    net, card = load_segmenter(model, weights_root, device)
    rows, masks = [], []
    for name, image in images:
        prob, mask, fov = segment_array(net, card, image, tta=tta, device=device)
        masks.append(mask)
        if single:
            paths = {"mask": out, "probability": out.with_name(out.stem + "_prob.png"),
                     "overlay": Path(overlay_path) if overlay_path else out.with_name(out.stem + "_overlay.png")}
        else:
            paths = {k: out / f"{name}_{suffix}.png" for k, suffix in
                     (("mask", "mask"), ("probability", "prob"), ("overlay", "overlay"))}
        _write_png((mask * 255).astype(np.uint8), paths["mask"])
        _write_png((np.clip(prob, 0, 1) * 255).round().astype(np.uint8), paths["probability"])
        _write_png(overlay(image, mask), paths["overlay"])
        rows.append({"image": name, "vessel_fraction_fov": float(mask[fov].mean()) if fov.any() else 0.0,
                     **{k: str(v) for k, v in paths.items()}, "warnings": list(warnings)})
    base = out.with_suffix("") if single else out / input.name.split(".")[0]
    if is_dicom(input) and input.is_file():
        # multi-frame sources without patient geometry get a synthetic, documented one (seg_dicom)
        rows[0]["dicom_seg"] = str(write_dicom_seg(input, np.stack(masks), card,
                                                   base.with_name(base.name + "_seg.dcm")))
    elif input.name.lower().endswith((".nii", ".nii.gz")):
        rows[0]["nifti_mask"] = str(write_nifti_mask(input, np.stack(masks), base.with_name(base.name +
                                                                                             "_mask.nii.gz")))
    return rows


def write_nifti_mask(source: Path, masks: np.ndarray, path: Path) -> Path:
    """Masks (Z, Y, X) -> NIfTI uint8 on the source file's affine (axes back in NIfTI (X, Y, Z) order)."""
    import nibabel as nib

    img = nib.load(str(source))
    data = np.ascontiguousarray(masks.astype(np.uint8).T)  # (X, Y, Z)
    if data.shape != img.shape[:3]:
        raise SmartcareError(f"{source.name}: mask shape {data.shape} does not match the image {img.shape[:3]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name.replace(".nii.gz", ".tmp.nii.gz"))
    nib.save(nib.Nifti1Image(data, img.affine), str(tmp))
    tmp.replace(path)
    return path


def segmentation_bundles(rows: list[dict[str, Any]], card: dict[str, Any], input: Path | str) -> list[dict]:
    """FHIR R4 transaction Bundles, one per ``segment_file`` record, read back from the written PNGs, with the
    DICOM patient, study and date of ``input`` where it has them and the record's input-check warnings."""
    from PIL import Image

    from smartcare.imaging.report import dicom_context, segmentation_report

    ctx = dicom_context(dicom_header(Path(input)))
    return [segmentation_report(np.asarray(Image.open(r["mask"])) > 0, card, source=r["image"],
                                probability=np.asarray(Image.open(r["probability"]), dtype=np.float32) / 255.0,
                                warnings=r.get("warnings", ()), **ctx)
            for r in rows]
