"""HTTP routes under /api/imaging (thin layer over the Python API)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, HTTPException, Query, UploadFile
from pydantic import BaseModel

from smartcare.core.settings import SettingsDep
from smartcare.imaging.classify import IMAGE_SUFFIXES
from smartcare.imaging.seg_api import router as seg_router

router = APIRouter()
router.include_router(seg_router)

UPLOAD_SUFFIXES = IMAGE_SUFFIXES + (".nii", ".gz", ".nrrd")


class Prediction(BaseModel):
    index: int
    source: str
    pred: int
    label: str
    probabilities: list[float]


class ClassifyResponse(BaseModel):
    model: str
    classes: list[str]
    predictions: list[Prediction]


def _save_upload(upload: UploadFile, folder: Path, limit: int) -> Path:
    """Copy the upload to ``folder`` under a safe name with its suffix; 413 when over ``limit`` bytes."""
    name = Path(upload.filename or "upload").name
    suffix = "".join(Path(name).suffixes[-2:]) if name.lower().endswith(".nii.gz") else Path(name).suffix
    if suffix.lower() not in UPLOAD_SUFFIXES and suffix:
        raise HTTPException(415, f"unsupported file type {suffix!r}; send DICOM, PNG, NPZ or NIfTI")
    target = folder / f"upload{suffix.lower()}"
    size = 0
    with open(target, "wb") as fh:
        while chunk := upload.file.read(1 << 20):
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"upload is larger than the {limit} byte limit")
            fh.write(chunk)
    if size == 0:
        raise HTTPException(422, "the uploaded file is empty")
    return target


@router.post("/classify", response_model=ClassifyResponse)
def classify(file: Annotated[UploadFile, File(description="DICOM, PNG or NPZ image")],
             settings: SettingsDep,
             model: Annotated[str, Query(description="shipped model name")] = "pneumoniamnist",
             key: Annotated[str | None, Query(description="array name inside an NPZ")] = None) -> ClassifyResponse:
    """Classify an uploaded image (or NPZ stack) with a shipped classifier."""
    from smartcare.imaging.classify import classify_path
    from smartcare.imaging.train import load_classifier

    _, card = load_classifier(model, settings.weights)
    with tempfile.TemporaryDirectory() as tmp:
        path = _save_upload(file, Path(tmp), settings.max_request_bytes)
        table = classify_path(model, path, key=key, weights_root=settings.weights)
    classes = list(card.get("classes", []))
    original = Path(file.filename or "upload").name
    preds = [Prediction(index=int(r["index"]), source=str(r["source"]).replace(path.name, original, 1),
                        pred=int(r["pred"]), label=classes[int(r["pred"])] if classes else str(r["pred"]),
                        probabilities=[float(r[c]) for c in table.columns if c.startswith("p_")])
             for r in table.to_dict("records")]
    return ClassifyResponse(model=model, classes=classes, predictions=preds)
