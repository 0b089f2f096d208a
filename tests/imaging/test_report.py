"""FHIR R4 DiagnosticReport bundles built from imaging results (plain dicts, validated with fhir.resources)."""

from __future__ import annotations

import numpy as np
import pytest

from smartcare.core.errors import SmartcareError
from smartcare.imaging.report import classification_report, report_of, segmentation_report

CARD = {"name": "drive-vessels", "architecture": "MONAI UNet", "command": "smartcare imaging train-segmenter",
        "smartcare_version": "0.1.0"}


def _resources(bundle, kind):
    return [e for e in bundle["entry"] if e["resource"]["resourceType"] == kind]


def test_classification_bundle_links_report_observation_and_device():
    bundle = classification_report([0.2, 0.8], ["normal", "pneumonia"], CARD | {"name": "pneumoniamnist"},
                                   subject="Patient/123", study_uid="1.2.3.4")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "transaction"
    report = report_of(bundle)
    (obs_entry,) = _resources(bundle, "Observation")
    (dev_entry,) = _resources(bundle, "Device")
    assert report["result"] == [{"reference": obs_entry["fullUrl"]}]
    assert "performer" not in report  # R4 DiagnosticReport.performer cannot be a Device
    assert report["subject"] == {"reference": "Patient/123"}
    assert report["status"] == "preliminary" and "pneumonia" in report["conclusion"]
    obs = obs_entry["resource"]
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == "pneumonia"
    probs = [c["valueQuantity"]["value"] for c in obs["component"]]
    assert probs == pytest.approx([0.2, 0.8])
    assert obs["device"]["reference"] == dev_entry["fullUrl"]


def test_segmentation_bundle_counts_the_mask():
    mask = np.zeros((10, 10), bool)
    mask[2:4, 2:7] = True  # 10 pixels
    fov = np.zeros((10, 10), bool)
    fov[:5] = True  # 50 pixels, all mask pixels inside
    prob = np.where(mask, 0.9, 0.1)
    bundle = segmentation_report(mask, CARD, probability=prob, fov=fov, pixel_spacing_mm=(0.5, 0.25))
    obs = _resources(bundle, "Observation")[0]["resource"]
    assert obs["valueQuantity"]["value"] == pytest.approx(20.0) and obs["valueQuantity"]["unit"] == "%"
    comps = {c["code"]["coding"][0]["code"]: c["valueQuantity"]["value"] for c in obs["component"]}
    assert comps["pixel-count"] == 10
    assert comps["area"] == pytest.approx(10 * 0.5 * 0.25)
    assert comps["mean-probability"] == pytest.approx(0.9)


def test_bundles_are_valid_fhir_r4():
    from fhir.resources.R4B.bundle import Bundle

    for bundle in (classification_report([0.6, 0.4], ["a", "b"], CARD),
                   segmentation_report(np.eye(8, dtype=bool), CARD)):
        parsed = Bundle.model_validate(bundle)
        assert len(parsed.entry) == 3


@pytest.mark.parametrize("probs,names", [([0.5, 0.6], ["a", "b"]), ([1.0], ["a"]), ([0.5, 0.5], ["a"])])
def test_bad_probabilities_are_rejected(probs, names):
    with pytest.raises(SmartcareError):
        classification_report(probs, names, CARD)


def test_bad_mask_is_rejected():
    with pytest.raises(SmartcareError, match="2D"):
        segmentation_report(np.zeros((2, 3, 3)), CARD)
    with pytest.raises(SmartcareError, match="FOV shape"):
        segmentation_report(np.zeros((3, 3)), CARD, fov=np.ones((4, 4)))


def test_presented_form_carries_the_conclusion_text():
    import base64

    bundle = segmentation_report(np.eye(8, dtype=bool), CARD, source="fundus.png")
    report = report_of(bundle)
    (form,) = report["presentedForm"]
    assert base64.b64decode(form["data"]).decode("utf-8") == report["conclusion"]
    assert form["title"] == "AI result for fundus.png"
