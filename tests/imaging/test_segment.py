"""Vessel segmentation: tiny-config shapes and invariants, metrics on known masks, the shipped model on DRIVE."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from smartcare.core.errors import SmartcareError
from smartcare.imaging.segment import (
    SegConfig,
    best_threshold,
    build_segmenter,
    confusion,
    load_drive,
    overlay,
    predict_vessels,
    segmentation_metrics,
    vessel_features,
)
from smartcare.imaging.segment_train import PatchSampler, vessel_loss

TINY = SegConfig(channels=(4, 8, 16), strides=(1, 2), num_res_units=0, roi=32)


@pytest.fixture(scope="module")
def drive_test(shared_data):
    return load_drive("test", shared_data)


def test_unet_keeps_the_spatial_shape_and_sliding_window_covers_odd_sizes():
    torch.manual_seed(0)
    net = build_segmenter(TINY)
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 32, 32)
    prob = predict_vessels(net, np.random.default_rng(0).normal(size=(3, 45, 70)).astype(np.float32), roi=32)
    assert prob.shape == (45, 70) and prob.min() >= 0 and prob.max() <= 1


def test_flip_tta_of_a_flip_equivariant_input_is_symmetric():
    net = build_segmenter(TINY)
    feats = np.random.default_rng(1).normal(size=(3, 32, 32)).astype(np.float32)
    feats = feats + feats[:, ::-1, :] + feats[:, :, ::-1] + feats[:, ::-1, ::-1]  # symmetric under both flips
    prob = predict_vessels(net, feats, roi=32, tta=True)
    np.testing.assert_allclose(prob, prob[::-1, ::-1], atol=1e-5)


def test_bad_config_is_rejected():
    with pytest.raises(SmartcareError, match="strides"):
        SegConfig(channels=(8, 16), strides=(1, 2))


def test_metrics_on_known_masks():
    truth = np.zeros((1, 4, 4), np.uint8)
    truth[0, 0, :] = 1  # 4 vessel pixels
    pred = np.zeros((1, 4, 4), np.float32)
    pred[0, 0, :2] = 1.0  # 2 true positives
    pred[0, 3, 3] = 1.0  # 1 false positive, outside the FOV below
    fov = np.ones((1, 4, 4), bool)
    assert confusion(truth[0], pred[0] > 0.5, fov[0]) == (2, 1, 2, 11)
    m = segmentation_metrics(truth, pred, fov, n_boot=0)
    assert m["f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2)) and m["acc"] == pytest.approx(13 / 16)
    fov[0, 3, 3] = False  # the false positive no longer counts
    m = segmentation_metrics(truth, pred, fov, n_boot=0)
    assert m["f1"] == pytest.approx(4 / 6) and m["se"] == 0.5 and m["sp"] == 1.0
    perfect = segmentation_metrics(truth, truth.astype(np.float32) * 0.9, np.ones((1, 4, 4), bool), n_boot=0)
    assert perfect["f1"] == 1.0 and perfect["auc"] == 1.0
    with pytest.raises(SmartcareError, match="shapes differ"):
        segmentation_metrics(truth, pred[:, :2], fov)


def test_best_threshold_separates_scores():
    truth = np.array([[[0, 0, 1, 1]]])
    prob = np.array([[[0.1, 0.3, 0.5, 0.9]]])
    th, f1 = best_threshold(truth, prob, np.ones_like(truth, bool))
    assert 0.3 < th <= 0.5 and f1 == 1.0


def test_patch_sampler_keeps_labels_aligned_under_rotation_and_flip():
    rng = np.random.default_rng(0)
    label = (rng.random((40, 50)) > 0.7).astype(np.uint8)
    feats = np.stack([label.astype(np.float32)] * 3)  # every channel equals the label
    sampler = PatchSampler([feats], [label], [np.ones_like(label)], steps=3, batch_size=4, patch=16, seed=0)
    batches = list(sampler)
    assert len(batches) == 3
    for x, y in batches:
        assert x.shape == (4, 3, 16, 16) and y.shape == (4, 1, 16, 16)
        assert torch.equal(x[:, :1], y)
    net = build_segmenter(TINY)
    loss = vessel_loss(net, (torch.randn(2, 3, 32, 32), (torch.rand(2, 1, 32, 32) > 0.8).float()))
    assert loss.ndim == 0 and torch.isfinite(loss)


def test_features_are_normalised_inside_the_fov_and_zero_outside(drive_test):
    img, fov = drive_test["images"][0][200:328, 200:328], drive_test["fov_mask"][0][200:328, 200:328]
    feats = vessel_features(img, fov)
    assert feats.shape == (3, 128, 128) and feats.dtype == np.float32
    inside = feats[:, fov.astype(bool)]
    np.testing.assert_allclose(inside.mean(axis=1), 0, atol=1e-3)
    assert np.all(feats[:, ~fov.astype(bool)] == 0)
    assert overlay(img, np.ones((128, 128), bool)).shape == (128, 128, 3)


def test_second_observer_agreement_is_the_known_human_level(drive_test):
    m = segmentation_metrics(drive_test["manual1"], drive_test["manual2"].astype(np.float32),
                             drive_test["fov_mask"], with_auc=False, n_boot=50)
    assert drive_test["images"].shape == (20, 584, 565, 3)
    assert 0.93 < m["acc"] < 0.96  # ~0.947 reported by Staal et al. 2004
    assert 0.75 < m["f1"] < 0.82


def test_shipped_model_segments_a_real_drive_test_image(drive_test):
    from smartcare.imaging.segment_apply import segment_array
    from smartcare.imaging.segment_train import load_segmenter

    net, card = load_segmenter("drive-vessels")
    assert card["metrics"]["test"]["f1"] > 0.78 and card["task"] == "image-segmentation"
    prob, mask, fov = segment_array(net, card, drive_test["images"][0], tta=False)
    m = segmentation_metrics(drive_test["manual1"][0], mask.astype(np.float32), drive_test["fov_mask"][0],
                             with_auc=False, n_boot=0)
    assert m["f1"] > 0.79, m  # 0.818 for image 01 with the shipped model
    assert np.mean(fov == drive_test["fov_mask"][0].astype(bool)) > 0.98  # the estimated FOV matches


def test_segment_file_writes_pngs_and_a_dicom_seg(tmp_path, shared_data, drive_test):
    import pydicom

    from smartcare.imaging.segment_apply import segment_file

    src = tmp_path / "fundus.png"
    Image.fromarray(drive_test["images"][1][150:278, 150:278]).save(src)
    rows = segment_file(src, tmp_path / "mask.png", overlay_path=tmp_path / "over.png", tta=False)
    assert Image.open(tmp_path / "mask.png").size == (128, 128)
    assert set(np.unique(np.asarray(Image.open(tmp_path / "mask.png")))) <= {0, 255}
    assert np.asarray(Image.open(tmp_path / "over.png")).shape == (128, 128, 3)
    assert 0 <= rows[0]["vessel_fraction_fov"] <= 1 and (tmp_path / "mask_prob.png").is_file()
    # a CT is not a fundus photograph: refused unless allowed (input_check); the SEG writer is still exercised
    rows = segment_file(shared_data / "imaging/dicom_nifti_io/CT_small.dcm", tmp_path / "dcm", tta=False,
                        allow_mismatch=True)
    assert "DICOM Modality CT" in rows[0]["warnings"][0]
    seg = pydicom.dcmread(rows[0]["dicom_seg"])
    assert seg.Modality == "SEG" and seg.SegmentSequence[0].SegmentLabel == "vessels"
    from smartcare.imaging.dicom import read_dicom_seg, read_dicom_series

    ct = read_dicom_series([shared_data / "imaging/dicom_nifti_io/CT_small.dcm"])
    back = read_dicom_seg(rows[0]["dicom_seg"], reference=ct)  # (S, Z, Y, X) on the CT grid
    mask = np.asarray(Image.open(tmp_path / "dcm" / "CT_small_mask.png")) > 0
    assert back.array.shape == (1, *ct.spatial_shape) and np.array_equal(back.array[0, 0] > 0, mask)
    with pytest.raises(SmartcareError, match="give --out a folder"):
        segment_file(shared_data / "imaging/drive/drive_test.npz", tmp_path / "x.png", key="images")


def test_cli_reports_a_bad_file_without_traceback(tmp_path):
    from typer.testing import CliRunner

    from smartcare.imaging.cli import app

    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    result = CliRunner().invoke(app, ["segment", "--input", str(bad), "--out", str(tmp_path / "m.png")])
    assert result.exit_code == 2 and "not a readable image" in result.output
    assert not (tmp_path / "m.png").exists()
