"""HTTP routes POST /api/imaging/segment and /api/imaging/enhance (thin layer over the Python API).

Each takes one uploaded image (DICOM, PNG/TIFF/JPEG, NIfTI or NPZ; size limited by
``SMARTCARE_MAX_REQUEST_BYTES``) and returns JSON whose outputs are PNGs inlined as ``data:`` URLs.
``/segment`` also returns, per image, a FHIR R4 transaction Bundle (DiagnosticReport + Observation).
"""

from __future__ import annotations

import base64
import tempfile
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, UploadFile
from pydantic import BaseModel

from smartcare.core.settings import SettingsDep

router = APIRouter()


class SegmentedImage(BaseModel):
    image: str
    vessel_fraction_fov: float
    mask_png: str  # data:image/png;base64,...
    probability_png: str
    overlay_png: str
    fhir_bundle: dict[str, Any]
    warnings: list[str] = []  # the input is not what the model expects (kept in the FHIR report too)


class SegmentResponse(BaseModel):
    model: str
    threshold: float
    images: list[SegmentedImage]


class EnhancedImage(BaseModel):
    image: str
    sigma: float
    denoised_png: str


class EnhanceResponse(BaseModel):
    model: str
    images: list[EnhancedImage]


def _data_url(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _save(file: UploadFile, folder: Path, limit: int) -> Path:
    from smartcare.imaging.api import _save_upload  # the classify route's checked upload writer

    return _save_upload(file, folder, limit)


@router.post("/segment", response_model=SegmentResponse)
def segment(file: Annotated[UploadFile, File(description="fundus image (PNG/TIFF/JPEG), DICOM, NIfTI or NPZ")],
            settings: SettingsDep,
            model: Annotated[str, Query(description="shipped segmentation model")] = "drive-vessels",
            key: Annotated[str | None, Query(description="array name inside an NPZ")] = None,
            tta: Annotated[bool, Query(description="average over flips")] = True,
            allow_mismatch: Annotated[bool, Query(description="run even when the input is not what the model "
                                                              "expects")] = False) -> SegmentResponse:
    """Segment retinal vessels: mask, probability and overlay PNGs plus a FHIR DiagnosticReport bundle."""
    from smartcare.imaging.segment_apply import segment_file, segmentation_bundles
    from smartcare.imaging.segment_train import load_segmenter

    _, card = load_segmenter(model, settings.weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = _save(file, Path(tmp), settings.max_request_bytes)
        rows = segment_file(path, Path(tmp) / "out", model=model, key=key, tta=tta, weights_root=settings.weights,
                            allow_mismatch=allow_mismatch)
        bundles = segmentation_bundles(rows, card, path)
        images = [SegmentedImage(image=row["image"], vessel_fraction_fov=row["vessel_fraction_fov"],
                                 mask_png=_data_url(row["mask"]), probability_png=_data_url(row["probability"]),
                                 overlay_png=_data_url(row["overlay"]), fhir_bundle=bundle,
                                 warnings=list(row.get("warnings") or []))
                  for row, bundle in zip(rows, bundles, strict=True)]
    return SegmentResponse(model=model, threshold=float(card.get("threshold", 0.5)), images=images)


@router.post("/enhance", response_model=EnhanceResponse)
def enhance(file: Annotated[UploadFile, File(description="PNG/TIFF/JPEG, DICOM, NIfTI or NPZ image")],
            settings: SettingsDep,
            model: Annotated[str, Query(description="shipped denoising model")] = "denoise",
            sigma: Annotated[float | None, Query(description="Gaussian noise std on 0-255; default estimated")] = None,
            poisson_peak: Annotated[float | None, Query(description="photons at white (Poisson noise)")] = None,
            key: Annotated[str | None, Query(description="array name inside an NPZ")] = None) -> EnhanceResponse:
    """Denoise an uploaded image with the shipped denoiser; returns the result as PNG data URLs."""
    from smartcare.imaging.enhance_apply import enhance_file

    with tempfile.TemporaryDirectory() as tmp:
        path = _save(file, Path(tmp), settings.max_request_bytes)
        rows = enhance_file(path, Path(tmp) / "out", model=model, sigma=sigma, poisson_peak=poisson_peak, key=key,
                            weights_root=settings.weights)
        images = [EnhancedImage(image=r["image"], sigma=r["sigma"], denoised_png=_data_url(r["output"]))
                  for r in rows]
    return EnhanceResponse(model=model, images=images)
