"""Input checks against the cards' ``expects`` (modality, channels), DICOM context in FHIR reports, the
denoiser's minimum size, and the cards' ``reproduce`` commands (issue 6 QA pass)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pydicom
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from typer.testing import CliRunner

from smartcare.core.registry import load_card
from smartcare.imaging.cli import app
from smartcare.imaging.input_check import InputMismatchError, check_dicom, check_pixels, dicom_header
from smartcare.imaging.report import dicom_context, report_of

runner = CliRunner()
CXR = load_card("pneumoniamnist")["expects"]
FUNDUS = load_card("drive-vessels")["expects"]


@pytest.fixture(scope="module")
def io_dir(shared_data):
    return shared_data / "imaging" / "dicom_nifti_io"


def _colour_photo_dicom(path, modality: str = "OP"):
    """A small RGB DICOM (e.g. an ophthalmic photograph), written with pydicom."""
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.5.1"  # Ophthalmic Photography 8 Bit
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientID, ds.StudyInstanceUID = modality, "EYE-7", generate_uid()
    ds.SeriesInstanceUID, ds.StudyDate = generate_uid(), "20240102"
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.Rows = ds.Columns = 40
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit, ds.PixelRepresentation = 7, 0
    rgb = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    ds.PixelData = rgb.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def test_every_shipped_imaging_card_states_what_it_expects():
    for name in ("pneumoniamnist", "breastmnist", "drive-vessels", "denoise"):
        expects = load_card(name)["expects"]
        assert expects["description"] and set(expects) >= {"modalities", "channels", "photometric"}
    assert CXR["modalities"] == ["CR", "DX"] and CXR["channels"] == 1
    assert "OP" in FUNDUS["modalities"] and FUNDUS["channels"] == 3


def test_dicom_policy_warns_or_refuses(io_dir):
    ct = dicom_header(io_dir / "CT_small.dcm")
    assert ct["Modality"] == "CT" and ct["SamplesPerPixel"] == "1"
    (warning,) = check_dicom(CXR, ct, "ct.dcm", "pneumoniamnist")  # modality only: a warning
    assert "DICOM Modality CT" in warning and "chest X-ray" in warning
    with pytest.raises(InputMismatchError, match="meaningless.*--allow-mismatch"):  # modality and channels
        check_dicom(FUNDUS, ct, "ct.dcm", "drive-vessels")
    assert "meaningless" in check_dicom(FUNDUS, ct, "ct.dcm", "drive-vessels", allow_mismatch=True)[0]
    cr = ct | {"Modality": "CR"}
    assert check_dicom(CXR, cr, "cxr.dcm", "pneumoniamnist") == []
    assert "does not confirm" in check_dicom(CXR, ct | {"Modality": "OT"}, "x.dcm", "pneumoniamnist")[0]
    assert check_dicom(load_card("denoise")["expects"], ct, "ct.dcm", "denoise") == []
    assert dicom_header(io_dir / "ct_3slice")["Modality"] == "CT"  # a series folder: its first file
    assert dicom_header(io_dir / "anatomical.nii") is None


def test_pixel_checks_count_real_colour_only():
    gray_as_rgb = np.repeat(np.arange(64, dtype=np.uint8).reshape(1, 8, 8), 3, axis=0)  # (3, 8, 8), R=G=B
    assert check_pixels(CXR, gray_as_rgb, "g.png", "pneumoniamnist") == []
    colour = np.random.default_rng(0).integers(0, 255, (3, 8, 8), dtype=np.uint8)
    assert "colour image" in check_pixels(CXR, colour, "c.png", "pneumoniamnist")[0]
    assert "single-channel" in check_pixels(FUNDUS, np.zeros((8, 8)), "g.png", "drive-vessels")[0]
    assert check_pixels(FUNDUS, np.zeros((8, 8, 3)) + [1, 2, 3], "f.png", "drive-vessels", channel_axis=-1) == []
    assert "volume of 5 slices" in check_pixels(CXR, np.zeros((1, 8, 8)), "v.nii", "pneumoniamnist", slices=5)[0]


def test_classify_ct_warns_and_writes_a_valid_fhir_report(io_dir, tmp_path):
    from fhir.resources.R4B.bundle import Bundle

    out, fhir = tmp_path / "pred.csv", tmp_path / "report.json"
    res = runner.invoke(app, ["classify", "--input", str(io_dir / "CT_small.dcm"), "--out", str(out),
                              "--fhir", str(fhir)])
    assert res.exit_code == 0, res.output
    assert "WARNING: CT_small.dcm: DICOM Modality CT" in res.output
    table = pd.read_csv(out)
    assert "DICOM Modality CT" in table["warnings"][0]
    (bundle,) = json.loads(fhir.read_text())
    Bundle.model_validate(bundle)  # structurally valid FHIR R4(B)
    kinds = [e["resource"]["resourceType"] for e in bundle["entry"]]
    assert "Patient" not in kinds and "ImagingStudy" not in kinds  # nothing invented, logical references only
    report = report_of(bundle)
    assert report["subject"]["identifier"]["value"] == "1CT1" and "reference" not in report["subject"]
    assert report["imagingStudy"][0]["identifier"]["value"] == "urn:oid:1.3.6.1.4.1.5962.1.2.1.20040119072730.12322"
    assert report["effectiveDateTime"] == "2004-01-19T07:27:30-05:00"  # StudyDate/Time + TimezoneOffsetFromUTC
    assert "WARNING" in report["conclusion"]
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    assert obs["subject"] == report["subject"] and "DICOM Modality CT" in obs["note"][0]["text"]
    assert obs["derivedFrom"] == report["imagingStudy"]


def test_dicom_context_without_time_zone_or_patient(io_dir):
    ctx = dicom_context(dicom_header(io_dir / "ct_3slice" / "01.dcm"))
    assert ctx["effective"] == "2003-04-17" and ctx["accession"] == "03086212"  # no zone: the date only
    assert ctx["subject"]["identifier"]["value"] == "99000"
    emri = dicom_context(dicom_header(io_dir / "emri_small.dcm"))  # PatientID empty: no subject at all
    assert "subject" not in emri and emri["effective"] == "2000-01-01"
    assert dicom_context(None) == {}


def test_colour_photograph_refused_by_the_chest_xray_classifier(tmp_path):
    src = _colour_photo_dicom(tmp_path / "eye.dcm")
    out = tmp_path / "pred.csv"
    res = runner.invoke(app, ["classify", "--input", str(src), "--out", str(out)])
    assert res.exit_code == 2 and "Modality OP with 3 sample(s)" in res.output and "Traceback" not in res.output
    assert not out.exists()
    res = runner.invoke(app, ["classify", "--input", str(src), "--out", str(out), "--allow-mismatch"])
    assert res.exit_code == 0 and "WARNING" in res.output and len(pd.read_csv(out)) == 1


def test_segment_refuses_ct_and_bundles_carry_dicom_context(io_dir, tmp_path):
    from fhir.resources.R4B.bundle import Bundle

    from smartcare.imaging.segment_apply import segmentation_bundles

    res = runner.invoke(app, ["segment", "--input", str(io_dir / "CT_small.dcm"), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "drive-vessels" in res.output and "meaningless" in res.output
    assert not (tmp_path / "o").exists()
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:12] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    Image.fromarray(mask // 2).save(tmp_path / "p.png")
    rows = [{"image": "CT_small", "mask": str(tmp_path / "m.png"), "probability": str(tmp_path / "p.png"),
             "warnings": ["CT_small.dcm: DICOM Modality CT"]}]
    (bundle,) = segmentation_bundles(rows, load_card("drive-vessels"), io_dir / "CT_small.dcm")
    Bundle.model_validate(bundle)
    report = report_of(bundle)
    assert report["subject"]["identifier"]["value"] == "1CT1" and report["effectiveDateTime"].startswith("2004")
    assert "12.5" in report["conclusion"]  # 32 of 256 pixels


def test_http_classify_lists_warnings_and_dicom_context(io_dir, tmp_path):
    from smartcare.service.app import create_app

    client = TestClient(create_app())
    dcm = (io_dir / "CT_small.dcm").read_bytes()
    r = client.post("/api/imaging/classify?fhir=true", files={"file": ("scan.dcm", dcm, "application/dicom")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expects"]["modalities"] == ["CR", "DX"]
    assert body["warnings"] and body["warnings"][0].startswith("scan.dcm: DICOM Modality CT")
    assert body["predictions"][0]["warnings"] == body["warnings"]
    report = report_of(body["predictions"][0]["fhir_bundle"])
    assert report["subject"]["identifier"]["value"] == "1CT1"
    eye = _colour_photo_dicom(tmp_path / "eye.dcm").read_bytes()
    r = client.post("/api/imaging/classify", files={"file": ("eye.dcm", eye, "application/dicom")})
    assert r.status_code == 422 and "eye.dcm: DICOM Modality OP" in r.json()["detail"]
    r = client.post("/api/imaging/classify?allow_mismatch=true", files={"file": ("eye.dcm", eye, "application/dicom")})
    assert r.status_code == 200 and "meaningless" in r.json()["warnings"][0]


def test_enhance_small_images(tmp_path):
    small = np.random.default_rng(0).integers(0, 255, (28, 28), dtype=np.uint8)
    Image.fromarray(small).save(tmp_path / "s.png")
    res = runner.invoke(app, ["enhance", "--input", str(tmp_path / "s.png"), "--out", str(tmp_path / "o.png"),
                              "--sigma", "25"])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == (28, 28)
    Image.fromarray(small[:4, :4]).save(tmp_path / "t.png")
    res = runner.invoke(app, ["enhance", "--input", str(tmp_path / "t.png"), "--out", str(tmp_path / "t_o.png")])
    assert res.exit_code == 2 and "too small to denoise (need >= 8 px per side)" in res.output


def test_reproduce_commands_parse_and_match_the_training_record():
    import shlex

    import typer

    group = typer.main.get_command(app)
    seg = load_card("drive-vessels")
    cmd = seg["reproduce"]["command"]
    assert "--max-minutes" not in cmd and "--resume" not in cmd
    ctx = group.commands["train-segmenter"].make_context("train-segmenter", shlex.split(cmd)[3:])
    t = seg["training"]
    assert ctx.params["epochs"] == t["epochs_run"] == len(t["history"]) == 257
    assert (ctx.params["steps"], ctx.params["batch_size"], ctx.params["patch"]) == (t["steps"], t["batch_size"],
                                                                                    t["patch"])
    assert ctx.params["tta"] is seg["tta"] is False and seg["reproduce"]["identical_to_shipped_weights"] is False
    for name, threads in (("denoise-unet", 1), ("denoise", 2)):  # unguided, then BM3D-guided from it
        den = load_card(name)
        cmd = den["reproduce"]["command"]
        assert "--max-minutes" not in cmd
        ctx = group.commands["train-denoiser"].make_context("train-denoiser", shlex.split(cmd)[3:])
        rec = group.commands["train-denoiser"].make_context("train-denoiser", shlex.split(den["command"])[3:])
        assert ctx.params["epochs"] == den["training"]["epochs_run"] and ctx.params["threads"] == threads
        assert ctx.params["name"] == name and ctx.params["guide"] == den["config"].get("guide", "")
        differ = {k for k in ctx.params if ctx.params[k] != rec.params[k]}
        assert differ <= {"threads", "max_minutes"}, differ  # only what the card's notes explain
        assert ctx.params["blocks"] == den["config"]["blocks"] and ctx.params["channels"] == ",".join(
            map(str, den["config"]["channels"]))
    assert ctx.params["init"] == "denoise-unet" and ctx.params["bank"] == 2400  # the guided card's bank
    assert ctx.params["data"] == "drive+ctx+other" and "bank-2400-128-0.npz" in den["reproduce"]["bank_note"]


def test_segment_mismatch_override_on_cli_and_http(io_dir, tmp_path):
    from smartcare.service.app import create_app

    out = tmp_path / "o"
    res = runner.invoke(app, ["segment", "--input", str(io_dir / "CT_small.dcm"), "--out", str(out),
                              "--no-tta", "--allow-mismatch", "--fhir", str(tmp_path / "r.json")])
    assert res.exit_code == 0, res.output
    assert "WARNING: CT_small.dcm" in res.output and "meaningless" in res.output
    (bundle,) = json.loads((tmp_path / "r.json").read_text())
    assert report_of(bundle)["subject"]["identifier"]["value"] == "1CT1"
    client = TestClient(create_app())
    dcm = (io_dir / "CT_small.dcm").read_bytes()
    r = client.post("/api/imaging/segment?tta=false", files={"file": ("scan.dcm", dcm, "application/dicom")})
    assert r.status_code == 422 and "meaningless" in r.json()["detail"]
    r = client.post("/api/imaging/segment?tta=false&allow_mismatch=true",
                    files={"file": ("scan.dcm", dcm, "application/dicom")})
    assert r.status_code == 200, r.text
    img = r.json()["images"][0]
    assert img["warnings"] and "meaningless" in img["warnings"][0]
    assert report_of(img["fhir_bundle"])["subject"]["identifier"]["value"] == "1CT1"
