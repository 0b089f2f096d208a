"""`smartcare imaging classify` and POST /api/imaging/classify with the shipped weights."""

from __future__ import annotations

import io
import shutil

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from smartcare.core import metrics
from smartcare.core.registry import load_card
from smartcare.imaging.cli import app
from smartcare.imaging.medmnist import load_split
from smartcare.imaging.train import load_classifier, predict_proba

runner = CliRunner()
COLUMNS = ["index", "source", "pred", "p_0", "p_1"]  # + "warnings" only when an input raised one


@pytest.fixture(scope="module")
def val(shared_data):
    return load_split("pneumoniamnist", "val", root=shared_data)


def _check(table: pd.DataFrame, n: int) -> None:
    assert list(table.columns) == COLUMNS and len(table) == n
    np.testing.assert_allclose(table[["p_0", "p_1"]].sum(axis=1), 1.0, atol=1e-5)
    assert (table["pred"] == table[["p_0", "p_1"]].to_numpy().argmax(axis=1)).all()


def test_classify_npz_with_key(val, tmp_path):
    np.savez(tmp_path / "x.npz", test_images=val[0][:6], test_labels=val[1][:6])
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["classify", "--model", "pneumoniamnist", "--input", str(tmp_path / "x.npz"),
                              "--key", "test_images", "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out)
    _check(table, 6)
    assert table["source"][2] == "x.npz:test_images[2]"


def test_classify_folder_of_png_and_dicom(val, shared_data, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.kron(val[0][i], np.ones((4, 4), np.uint8))).save(folder / f"cxr{i}.png")  # 112x112
    shutil.copy(shared_data / "imaging" / "dicom_nifti_io" / "CT_small.dcm", folder / "ct.dcm")
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["classify", "--input", str(folder), "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, keep_default_na=False)
    _check(table.drop(columns="warnings"), 3)  # the CT is not a chest X-ray: a warnings column is added
    assert list(table["source"]) == ["ct.dcm", "cxr0.png", "cxr1.png"]
    assert "DICOM Modality CT" in table["warnings"][0] and list(table["warnings"][1:]) == ["", ""]


def test_corrupt_dicom_is_a_clear_cli_error(shared_data, tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes((shared_data / "imaging" / "dicom_nifti_io" / "CT_small.dcm").read_bytes()[:20000])
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["classify", "--input", str(bad), "--out", str(out)])
    assert res.exit_code == 2
    assert "corrupt or truncated" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_shipped_weights_reproduce_card_val_metrics(val):
    model, card = load_classifier("pneumoniamnist")
    assert card == load_card("pneumoniamnist")
    p1 = predict_proba(model, val[0])[:, 1]
    assert metrics.auc(val[1], p1) == pytest.approx(card["metrics"]["val"]["auc"][0], abs=1e-6)
    assert metrics.auc(val[1], p1) > 0.95


@pytest.fixture(scope="module")
def cxr_png(val) -> bytes:
    """The first validation X-ray as PNG bytes, for uploads."""
    buf = io.BytesIO()
    Image.fromarray(val[0][0]).save(buf, format="PNG")
    return buf.getvalue()


def test_http_classify_png_and_bad_upload(cxr_png):
    from smartcare.service.app import create_app

    client = TestClient(create_app())
    r = client.post("/api/imaging/classify", files={"file": ("cxr.png", cxr_png, "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["classes"] == ["normal", "pneumonia"] and len(body["predictions"]) == 1
    assert body["predictions"][0]["source"] == "cxr.png"
    assert sum(body["predictions"][0]["probabilities"]) == pytest.approx(1.0, abs=1e-5)
    r = client.post("/api/imaging/classify", files={"file": ("x.dcm", b"not a dicom file", "application/dicom")})
    assert r.status_code == 422 and "not a DICOM file" in r.json()["detail"]


def test_http_upload_keeps_the_users_file_name(val, shared_data):
    from smartcare.service.app import create_app

    client = TestClient(create_app())
    r = client.post("/api/imaging/classify", files={"file": ("my scan.png", b"garbage", "image/png")})
    assert r.status_code == 422 and r.json()["detail"].startswith("my_scan.png is not a readable image file")
    assert "/tmp" not in r.json()["detail"] and "upload" not in r.json()["detail"]
    dcm = (shared_data / "imaging" / "dicom_nifti_io" / "CT_small.dcm").read_bytes()
    r = client.post("/api/imaging/classify", files={"file": ("1.2.840.113619.2.5", dcm, "application/dicom")})
    assert r.status_code == 200, r.text  # a UID-named DICOM is read by content, not refused as '.5'
    assert r.json()["predictions"][0]["source"] == "1.2.840.113619.2.5"


def test_http_classify_can_return_a_diagnostic_report(cxr_png):
    from smartcare.service.app import create_app

    client = TestClient(create_app())
    r = client.post("/api/imaging/classify?fhir=true", files={"file": ("cxr.png", cxr_png, "image/png")})
    assert r.status_code == 200, r.text
    pred = r.json()["predictions"][0]
    kinds = [e["resource"]["resourceType"] for e in pred["fhir_bundle"]["entry"]]
    assert kinds == ["Device", "Observation", "DiagnosticReport"]
    obs = pred["fhir_bundle"]["entry"][1]["resource"]
    assert obs["valueCodeableConcept"]["coding"][0]["code"] == pred["label"]
    r = client.post("/api/imaging/classify", files={"file": ("cxr.png", cxr_png, "image/png")})
    assert r.json()["predictions"][0]["fhir_bundle"] is None
