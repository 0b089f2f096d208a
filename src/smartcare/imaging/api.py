"""HTTP routes under /api/imaging (thin layer over the Python API)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Annotated, Any

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
    warnings: list[str] = []  # input checks against the model card's ``expects`` (input_check)
    fhir_bundle: dict[str, Any] | None = None  # with ?fhir=true: DiagnosticReport + Observation + Device


class ClassifyResponse(BaseModel):
    model: str
    classes: list[str]
    expects: dict[str, Any] | None = None  # what input the model was trained on (card field)
    warnings: list[str] = []  # every prediction's warnings, once each
    predictions: list[Prediction]


def _save_upload(upload: UploadFile, folder: Path, limit: int) -> Path:
    """Copy the upload to ``folder`` under a safe name with its suffix; 413 when over ``limit`` bytes."""
    name = Path(upload.filename or "upload").name
    suffix = "".join(Path(name).suffixes[-2:]) if name.lower().endswith(".nii.gz") else Path(name).suffix
    if suffix[1:].isdigit():  # DICOM files are often named by UID (1.2.840...): no suffix, read by content
        suffix = ""
    if suffix.lower() not in UPLOAD_SUFFIXES and suffix:
        raise HTTPException(415, f"unsupported file type {suffix!r}; send DICOM, PNG, NPZ or NIfTI")
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name[: len(name) - len(suffix)] if suffix else name).strip("._")
    (folder / "upload").mkdir(exist_ok=True)  # apart from the routes' output folders
    target = folder / "upload" / f"{stem[:100] or 'upload'}{suffix.lower()}"  # user's name in results and errors
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
             key: Annotated[str | None, Query(description="array name inside an NPZ")] = None,
             fhir: Annotated[bool, Query(description="add a FHIR R4 DiagnosticReport bundle per image")] = False,
             allow_mismatch: Annotated[bool, Query(
                 description="score a DICOM whose modality and channels both differ from the model's")] = False,
             ) -> ClassifyResponse:
    """Classify an uploaded image (or NPZ stack) with a shipped classifier.

    The input is checked against the model card's ``expects``: mismatches are listed in ``warnings``; a
    DICOM of another modality and channel count is refused (422) unless ``allow_mismatch``."""
    from smartcare.imaging.classify import classify_inputs
    from smartcare.imaging.report import classification_report, dicom_context
    from smartcare.imaging.train import load_classifier

    _, card = load_classifier(model, settings.weights)
    original = Path(file.filename or "upload").name
    with tempfile.TemporaryDirectory() as tmp:
        path = _save_upload(file, Path(tmp), settings.max_request_bytes)
        table, headers = classify_inputs(model, path, key=key, weights_root=settings.weights,
                                         allow_mismatch=allow_mismatch)
    classes = list(card.get("classes", []))
    preds = [Prediction(index=int(r["index"]), source=str(r["source"]).replace(path.name, original, 1),
                        pred=int(r["pred"]), label=classes[int(r["pred"])] if classes else str(r["pred"]),
                        probabilities=[float(r[c]) for c in table.columns if c.startswith("p_")],
                        warnings=[w.replace(path.name, original) for w in str(r.get("warnings", "")).split(" | ") if w])
             for r in table.to_dict("records")]
    if fhir:
        names = classes or [str(k) for k in range(len(preds[0].probabilities) if preds else 0)]
        for p, header in zip(preds, headers, strict=True):
            p.fhir_bundle = classification_report(p.probabilities, names, card, source=p.source,
                                                  warnings=p.warnings, **dicom_context(header))
    return ClassifyResponse(model=model, classes=classes, expects=card.get("expects"), predictions=preds,
                            warnings=list(dict.fromkeys(w for p in preds for w in p.warnings)))
