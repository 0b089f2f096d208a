"""Imaging AI results as FHIR R4 resources (plain JSON dicts; no dependency on the hospital domain).

A result becomes a transaction ``Bundle`` holding one ``DiagnosticReport`` (FHIR R4 §8.3, status
``preliminary`` because no clinician has verified it), its ``Observation`` results (§8.4) and a ``Device``
(§8.12) naming the model (referenced from ``Observation.device``), all linked by ``urn:uuid`` references
so that a FHIR server assigns ids on POST.
Codes without an agreed terminology use the local system ``SMARTCARE_CODES``; the report code is LOINC
18748-4 "Diagnostic imaging study".
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import numpy as np

from smartcare.core.errors import SmartcareError

SMARTCARE_CODES = "https://smartcare.example/fhir/CodeSystem/imaging-ai"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/observation-interpretation"


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def _quantity(value: float, unit: str, code: str | None = None) -> dict[str, Any]:
    q: dict[str, Any] = {"value": round(float(value), 6), "unit": unit, "system": UCUM}
    q["code"] = code or unit
    return q


def _device(card: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Device", "status": "active",
            "deviceName": [{"name": str(card.get("name", "unknown model")), "type": "model-name"}],
            "version": [{"value": str(card.get("smartcare_version", ""))}],
            "note": [{"text": f"{card.get('architecture', '')}; trained by: {card.get('command', '')}"}]}


def _bundle(report: dict[str, Any], observations: list[dict[str, Any]], device: dict[str, Any]) -> dict:
    entries = []
    for res in [device, *observations, report]:
        url = res.pop("_fullUrl")
        entries.append({"fullUrl": url, "resource": res,
                        "request": {"method": "POST", "url": res["resourceType"]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _report(subject: str | None, observations: list[dict], conclusion: str,
            study_uid: str | None, issued: str, source: str | None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "_fullUrl": _urn(), "resourceType": "DiagnosticReport", "status": "preliminary",
        "category": [_concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")],
        "code": _concept(LOINC, "18748-4", "Diagnostic imaging study"),
        "issued": issued, "effectiveDateTime": issued,
        # no performer: R4 allows only Practitioner/Role, Organization or CareTeam there; each Observation
        # names the model in Observation.device
        "result": [{"reference": o["_fullUrl"]} for o in observations],
        "conclusion": conclusion,
    }
    if subject:
        report["subject"] = {"reference": subject}
    if study_uid:
        report["identifier"] = [{"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}]
    if source:
        report["presentedForm"] = [{"contentType": "text/plain; charset=utf-8", "title": f"AI result for {source}",
                                    "data": base64.b64encode(conclusion.encode("utf-8")).decode("ascii")}]
    return report


def _observation(code: dict, device_url: str, subject: str | None, issued: str, **value) -> dict[str, Any]:
    obs: dict[str, Any] = {"_fullUrl": _urn(), "resourceType": "Observation", "status": "preliminary",
                           "category": [_concept("http://terminology.hl7.org/CodeSystem/observation-category",
                                                 "imaging", "Imaging")],
                           "code": code, "issued": issued, "effectiveDateTime": issued,
                           "device": {"reference": device_url}, "method": {"text": "AI model inference"}}
    if subject:
        obs["subject"] = {"reference": subject}
    obs.update(value)
    return obs


def classification_report(probabilities: Sequence[float], class_names: Sequence[str], card: dict[str, Any], *,
                          subject: str | None = None, study_uid: str | None = None,
                          source: str | None = None) -> dict[str, Any]:
    """One image's class probabilities -> transaction Bundle (DiagnosticReport + Observation + Device).

    The Observation's value is the predicted class; one component per class carries its probability.
    Raises ``SmartcareError`` when the probabilities do not match the class names or are not a distribution.
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 1 or len(p) != len(class_names) or len(p) < 2:
        raise SmartcareError(f"need one probability per class ({len(class_names)} names), got shape {p.shape}")
    if np.any(p < 0) or abs(p.sum() - 1) > 1e-3:
        raise SmartcareError(f"class probabilities must be >= 0 and sum to 1 (sum {p.sum():.4f})")
    issued = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    device = _device(card) | {"_fullUrl": _urn()}
    k = int(np.argmax(p))
    obs = _observation(
        _concept(SMARTCARE_CODES, f"{card.get('name', 'model')}-class", f"{card.get('name', 'model')} class"),
        device["_fullUrl"], subject, issued,
        valueCodeableConcept=_concept(SMARTCARE_CODES, str(class_names[k]), str(class_names[k])),
        component=[{"code": _concept(SMARTCARE_CODES, f"p-{name}", f"probability of {name}"),
                    "valueQuantity": _quantity(pk, "1")} for name, pk in zip(class_names, p, strict=True)])
    conclusion = f"{class_names[k]} (probability {p[k]:.3f}; model {card.get('name')}, not clinically verified)"
    report = _report(subject, [obs], conclusion, study_uid, issued, source)
    return _bundle(report, [obs], device)


def segmentation_report(mask: np.ndarray, card: dict[str, Any], *, probability: np.ndarray | None = None,
                        fov: np.ndarray | None = None, pixel_spacing_mm: tuple[float, float] | None = None,
                        label: str = "retinal vessels", subject: str | None = None,
                        study_uid: str | None = None, source: str | None = None) -> dict[str, Any]:
    """A binary mask (H, W) -> transaction Bundle with Observations of the segmented structure:

    - area fraction inside ``fov`` (or the whole image), in %;
    - pixel count, and area in mm2 when ``pixel_spacing_mm`` (row, column) is known;
    - mean probability inside the mask, when ``probability`` is given.
    """
    m = np.asarray(mask).astype(bool)
    if m.ndim != 2:
        raise SmartcareError(f"segmentation mask must be 2D (H, W), got shape {m.shape}")
    region = np.ones_like(m) if fov is None else np.asarray(fov).astype(bool)
    if region.shape != m.shape:
        raise SmartcareError(f"FOV shape {region.shape} differs from mask shape {m.shape}")
    issued = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    device = _device(card) | {"_fullUrl": _urn()}
    n = int(m[region].sum())
    frac = 100.0 * n / max(int(region.sum()), 1)
    components = [{"code": _concept(SMARTCARE_CODES, "pixel-count", f"{label} pixel count"),
                   "valueQuantity": _quantity(n, "{pixels}")}]
    if pixel_spacing_mm is not None:
        components.append({"code": _concept(SMARTCARE_CODES, "area", f"{label} area"),
                           "valueQuantity": _quantity(n * pixel_spacing_mm[0] * pixel_spacing_mm[1],
                                                      "mm2", "mm2")})
    if probability is not None and n:
        components.append({"code": _concept(SMARTCARE_CODES, "mean-probability", "mean model probability"),
                           "valueQuantity": _quantity(float(np.asarray(probability)[m & region].mean()), "1")})
    obs = _observation(_concept(SMARTCARE_CODES, "area-fraction", f"{label} area fraction"),
                       device["_fullUrl"], subject, issued, valueQuantity=_quantity(frac, "%"),
                       component=components)
    conclusion = (f"{label}: {frac:.2f}% of the {'field of view' if fov is not None else 'image'} "
                  f"({n} pixels); model {card.get('name')}, not clinically verified")
    report = _report(subject, [obs], conclusion, study_uid, issued, source)
    return _bundle(report, [obs], device)


def report_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The DiagnosticReport inside a bundle made here."""
    for entry in bundle.get("entry", []):
        if entry["resource"]["resourceType"] == "DiagnosticReport":
            return entry["resource"]
    raise SmartcareError("bundle holds no DiagnosticReport")
