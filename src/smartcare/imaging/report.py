"""Imaging AI results as FHIR R4 resources (plain JSON dicts; no dependency on the hospital domain).

A result becomes a transaction ``Bundle`` holding one ``DiagnosticReport`` (FHIR R4 §8.3, status
``preliminary`` because no clinician has verified it), its ``Observation`` results (§8.4) and a ``Device``
(§8.12) naming the model (referenced from ``Observation.device``), all linked by ``urn:uuid`` references
so that a FHIR server assigns ids on POST.
Codes without an agreed terminology use the local system ``SMARTCARE_CODES``; the report code is LOINC
18748-4 "Diagnostic imaging study".

For DICOM input, ``dicom_context(header)`` turns the header into what the report carries: the patient as a
logical (identifier) reference from PatientID (no Patient resource or id is invented), the study as an
``imagingStudy`` logical reference by StudyInstanceUID (also ``Observation.derivedFrom``), the accession
number as ``basedOn`` (ServiceRequest identifier) and ``effectiveDateTime`` from StudyDate/StudyTime. FHIR
requires a time zone on a time, so the time is kept only with TimezoneOffsetFromUTC; otherwise the date.
Input-check warnings (``input_check``) go into ``Observation.note`` and the conclusion.
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


def _reference(subject: str | dict | None) -> dict | None:
    """A literal reference string ("Patient/123") or a Reference dict (e.g. identifier-based) -> Reference."""
    if not subject:
        return None
    return {"reference": subject} if isinstance(subject, str) else dict(subject)


def _dicom_datetime(date: str, time: str = "", tz: str = "") -> str | None:
    """DICOM DA/TM/offset -> FHIR dateTime; the time only with a zone (FHIR requires one), else the date."""
    if len(date) != 8 or not date.isdigit():
        return None
    out = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    hhmmss = time.split(".")[0]
    if not tz or len(tz) != 5 or tz[0] not in "+-" or not tz[1:].isdigit():
        return out
    if len(hhmmss) not in (2, 4, 6) or not hhmmss.isdigit():
        return out
    hhmmss = hhmmss.ljust(6, "0")
    frac = time.split(".")[1] if "." in time else ""
    frac = f".{frac[:3]}" if frac.isdigit() else ""
    return f"{out}T{hhmmss[:2]}:{hhmmss[2:4]}:{hhmmss[4:]}{frac}{tz[:3]}:{tz[3:]}"


def dicom_context(header: dict[str, str] | None) -> dict[str, Any]:
    """DICOM header fields (``input_check.dicom_header``) -> keyword arguments for the report builders:
    ``subject`` (identifier reference from PatientID), ``study_uid``, ``effective`` and ``accession``.
    Empty fields are left out; an empty header gives ``{}``."""
    if not header:
        return {}
    ctx: dict[str, Any] = {}
    pid = header.get("PatientID", "").strip()
    if pid:
        ident: dict[str, Any] = {"type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "MR",
                                                  "Medical record number"), "value": pid}
        if header.get("IssuerOfPatientID"):
            ident["assigner"] = {"display": header["IssuerOfPatientID"]}
        ctx["subject"] = {"type": "Patient", "identifier": ident}
    if header.get("StudyInstanceUID"):
        ctx["study_uid"] = header["StudyInstanceUID"]
    effective = _dicom_datetime(header.get("StudyDate", ""), header.get("StudyTime", ""),
                                header.get("TimezoneOffsetFromUTC", ""))
    if effective:
        ctx["effective"] = effective
    if header.get("AccessionNumber"):
        ctx["accession"] = header["AccessionNumber"]
    return ctx


def _study_ref(study_uid: str) -> dict[str, Any]:
    return {"type": "ImagingStudy", "identifier": {"system": "urn:dicom:uid", "value": f"urn:oid:{study_uid}"}}


def _report(subject: str | dict | None, observations: list[dict], conclusion: str,
            study_uid: str | None, issued: str, source: str | None, effective: str | None = None,
            accession: str | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {
        "_fullUrl": _urn(), "resourceType": "DiagnosticReport", "status": "preliminary",
        "category": [_concept("http://terminology.hl7.org/CodeSystem/v2-0074", "RAD", "Radiology")],
        "code": _concept(LOINC, "18748-4", "Diagnostic imaging study"),
        "issued": issued, "effectiveDateTime": effective or issued,
        # no performer: R4 allows only Practitioner/Role, Organization or CareTeam there; each Observation
        # names the model in Observation.device
        "result": [{"reference": o["_fullUrl"]} for o in observations],
        "conclusion": conclusion,
    }
    if subject:
        report["subject"] = _reference(subject)
    if study_uid:
        report["imagingStudy"] = [_study_ref(study_uid)]
    if accession:
        report["basedOn"] = [{"type": "ServiceRequest", "identifier": {
            "type": _concept("http://terminology.hl7.org/CodeSystem/v2-0203", "ACSN", "Accession ID"),
            "value": accession}}]
    if source:
        report["presentedForm"] = [{"contentType": "text/plain; charset=utf-8", "title": f"AI result for {source}",
                                    "data": base64.b64encode(conclusion.encode("utf-8")).decode("ascii")}]
    return report


def _observation(code: dict, device_url: str, subject: str | dict | None, issued: str, *,
                 effective: str | None = None, study_uid: str | None = None, warnings: Sequence[str] = (),
                 **value) -> dict[str, Any]:
    obs: dict[str, Any] = {"_fullUrl": _urn(), "resourceType": "Observation", "status": "preliminary",
                           "category": [_concept("http://terminology.hl7.org/CodeSystem/observation-category",
                                                 "imaging", "Imaging")],
                           "code": code, "issued": issued, "effectiveDateTime": effective or issued,
                           "device": {"reference": device_url}, "method": {"text": "AI model inference"}}
    if subject:
        obs["subject"] = _reference(subject)
    if study_uid:
        obs["derivedFrom"] = [_study_ref(study_uid)]
    if warnings:
        obs["note"] = [{"text": f"Input check: {w}"} for w in warnings]
    obs.update(value)
    return obs


def _with_warnings(conclusion: str, warnings: Sequence[str]) -> str:
    return conclusion + "".join(f". WARNING: {w}" for w in warnings)


def classification_report(probabilities: Sequence[float], class_names: Sequence[str], card: dict[str, Any], *,
                          subject: str | dict | None = None, study_uid: str | None = None,
                          source: str | None = None, effective: str | None = None, accession: str | None = None,
                          warnings: Sequence[str] = ()) -> dict[str, Any]:
    """One image's class probabilities -> transaction Bundle (DiagnosticReport + Observation + Device).

    ``subject``/``study_uid``/``effective``/``accession`` usually come from ``dicom_context``; ``warnings``
    (input checks) are noted on the Observation and appended to the conclusion.

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
        device["_fullUrl"], subject, issued, effective=effective, study_uid=study_uid, warnings=warnings,
        valueCodeableConcept=_concept(SMARTCARE_CODES, str(class_names[k]), str(class_names[k])),
        component=[{"code": _concept(SMARTCARE_CODES, f"p-{name}", f"probability of {name}"),
                    "valueQuantity": _quantity(pk, "1")} for name, pk in zip(class_names, p, strict=True)])
    conclusion = f"{class_names[k]} (probability {p[k]:.3f}; model {card.get('name')}, not clinically verified)"
    report = _report(subject, [obs], _with_warnings(conclusion, warnings), study_uid, issued, source, effective,
                     accession)
    return _bundle(report, [obs], device)


def segmentation_report(mask: np.ndarray, card: dict[str, Any], *, probability: np.ndarray | None = None,
                        fov: np.ndarray | None = None, pixel_spacing_mm: tuple[float, float] | None = None,
                        label: str = "retinal vessels", subject: str | dict | None = None,
                        study_uid: str | None = None, source: str | None = None, effective: str | None = None,
                        accession: str | None = None, warnings: Sequence[str] = ()) -> dict[str, Any]:
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
                       device["_fullUrl"], subject, issued, effective=effective, study_uid=study_uid,
                       warnings=warnings, valueQuantity=_quantity(frac, "%"),
                       component=components)
    conclusion = (f"{label}: {frac:.2f}% of the {'field of view' if fov is not None else 'image'} "
                  f"({n} pixels); model {card.get('name')}, not clinically verified")
    report = _report(subject, [obs], _with_warnings(conclusion, warnings), study_uid, issued, source, effective,
                     accession)
    return _bundle(report, [obs], device)


def report_of(bundle: dict[str, Any]) -> dict[str, Any]:
    """The DiagnosticReport inside a bundle made here."""
    for entry in bundle.get("entry", []):
        if entry["resource"]["resourceType"] == "DiagnosticReport":
            return entry["resource"]
    raise SmartcareError("bundle holds no DiagnosticReport")
