"""Denoising: noise models, the FFDNet-style network, classical baselines, the shipped model, files and HTTP."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from smartcare.core.errors import SmartcareError
from smartcare.imaging.enhance import (
    DenoiseConfig,
    FFDNet,
    add_gaussian,
    add_poisson,
    anscombe,
    benchmark_images,
    bm3d_denoise,
    centre_crop,
    denoise,
    drive_green,
    inverse_anscombe,
    nlm,
    psnr_ssim,
)
from smartcare.imaging.enhance_train import NoisyPatches, compare, denoise_loss


@pytest.fixture(scope="module")
def clean_crop(shared_data):
    return centre_crop(drive_green("test", shared_data)[0][1], 64)


def test_noise_models_have_the_stated_statistics():
    rng = np.random.default_rng(0)
    flat = np.full((200, 200), 100.0, np.float32)
    assert np.std(add_gaussian(flat, 25, rng) - flat) == pytest.approx(25, rel=0.02)
    noisy = add_poisson(flat, 30, rng)
    assert noisy.mean() == pytest.approx(100, rel=0.02)
    assert noisy.std() == pytest.approx(np.sqrt(100 * 255 / 30), rel=0.05)  # var = v * 255 / peak
    counts = rng.poisson(20.0, 100_000).astype(np.float64)
    assert inverse_anscombe(anscombe(np.full(3, 20.0)))[0] == pytest.approx(20.0, abs=0.3)
    assert np.std(anscombe(counts)) == pytest.approx(1.0, abs=0.03)  # variance stabilised


def test_psnr_of_a_known_error():
    clean = np.full((16, 16), 100.0)
    psnr, ssim = psnr_ssim(clean, clean + 5)
    assert psnr == pytest.approx(20 * np.log10(255 / 5)) and 0 < ssim <= 1


def test_ffdnet_keeps_odd_shapes_and_is_residual():
    torch.manual_seed(0)
    net = FFDNet(DenoiseConfig(depth=3, width=8))
    x = torch.rand(2, 1, 33, 47)
    out = net(x, torch.full_like(x, 0.1))
    assert out.shape == x.shape
    with torch.no_grad():
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
    np.testing.assert_allclose(denoise(net, x[0, 0].numpy() * 255, 25.0), x[0, 0].numpy() * 255, atol=1e-3)
    with pytest.raises(SmartcareError):
        DenoiseConfig(depth=1)


def test_noisy_patches_and_loss():
    rng = np.random.default_rng(0)
    loader = NoisyPatches([rng.random((40, 40)).astype(np.float32) * 255], steps=2, batch_size=3, patch=16, seed=0)
    batches = list(loader)
    assert len(batches) == 2 and all(t.shape == (3, 1, 16, 16) for t in batches[0])
    noisy, smap, clean = batches[0]
    assert float(clean.max()) <= 1.0 and float(smap.min()) >= 0
    assert torch.isfinite(denoise_loss(FFDNet(DenoiseConfig(depth=3, width=8)), batches[0]))
    with pytest.raises(SmartcareError, match="at least"):
        NoisyPatches([np.zeros((8, 8))], steps=1, batch_size=1, patch=16, seed=0)


def test_classical_baselines_remove_noise(clean_crop):
    noisy = add_gaussian(clean_crop, 25, np.random.default_rng(1))
    base = psnr_ssim(clean_crop, noisy)[0]
    assert psnr_ssim(clean_crop, nlm(noisy, 25))[0] > base + 5
    assert psnr_ssim(clean_crop, bm3d_denoise(noisy, 25))[0] > base + 8


def test_benchmark_images_are_fixed_real_crops(shared_data):
    imgs = benchmark_images(shared_data)
    assert [n for n, _ in imgs] == ["drive-01", "drive-02", "drive-03", "drive-04", "ct-1", "ct-2", "ct-3"]
    assert all(im.shape == (256, 256) and 0 <= im.min() and im.max() <= 255 for _, im in imgs)


def test_shipped_denoiser_beats_the_noisy_input_and_records_its_comparison(clean_crop):
    from smartcare.imaging.enhance_apply import load_denoiser

    net, card = load_denoiser("denoise")
    assert card["task"] == "image-denoising" and "psnr_sigma25" in card["metrics"]["val"]
    unguided, _ = load_denoiser("denoise-unet")
    table = compare(net, images=[("drive-01", clean_crop)], methods=("noisy", "ours"), log=lambda *_: None,
                    others={"unguided": unguided})
    for cond in ("gaussian-15", "gaussian-25", "gaussian-50", "poisson-30"):
        got = table[cond]["drive"]
        assert got["ours"]["psnr"] > got["noisy"]["psnr"] + 3, (cond, got)
        assert got["unguided"]["psnr"] > got["noisy"]["psnr"] + 3, (cond, got)


def test_enhance_file_and_http(tmp_path, clean_crop):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from smartcare.imaging.api import router
    from smartcare.imaging.enhance_apply import enhance_file

    noisy = np.clip(add_gaussian(clean_crop, 25, np.random.default_rng(2)), 0, 255).astype(np.uint8)
    src = tmp_path / "noisy.png"
    Image.fromarray(noisy).save(src)
    (row,) = enhance_file(src, tmp_path / "out.png", sigma=25)
    out = np.asarray(Image.open(row["output"]))
    assert out.shape == noisy.shape and psnr_ssim(clean_crop, out)[0] > psnr_ssim(clean_crop, noisy)[0] + 3
    (row1,) = enhance_file(src, tmp_path / "out1.png", sigma=25, self_ensemble=False)
    out1 = np.asarray(Image.open(row1["output"]))  # the guided model's default is the 8-fold self-ensemble
    assert psnr_ssim(clean_crop, out1)[0] > psnr_ssim(clean_crop, noisy)[0] + 3 and not np.array_equal(out1, out)
    with pytest.raises(SmartcareError, match="sigma"):
        enhance_file(src, tmp_path / "o2.png", sigma=500)
    app = FastAPI()
    app.include_router(router, prefix="/api/imaging")
    client = TestClient(app)
    res = client.post("/api/imaging/enhance?sigma=25", files={"file": ("noisy.png", src.read_bytes(), "image/png")})
    assert res.status_code == 200, res.text
    body = res.json()
    assert body["images"][0]["sigma"] == 25 and body["images"][0]["denoised_png"].startswith("data:image/png")
    res = client.post("/api/imaging/segment?tta=false",
                      files={"file": ("noisy.png", src.read_bytes(), "image/png")})
    assert res.status_code == 200, res.text
    seg = res.json()["images"][0]
    assert seg["fhir_bundle"]["resourceType"] == "Bundle"
    assert Image.open(io.BytesIO(__import__("base64").b64decode(seg["mask_png"].split(",")[1]))).size == (64, 64)


def test_unet_denoiser_shapes_residual_and_self_ensemble():
    from smartcare.imaging.enhance import DenoiseUNet, build_denoiser

    torch.manual_seed(0)
    cfg = DenoiseConfig(arch="unet", channels=(8, 16, 32), blocks=1)
    net = build_denoiser(cfg)
    assert isinstance(net, DenoiseUNet)
    x = torch.rand(2, 1, 37, 50)
    assert net(x, torch.full_like(x, 0.1)).shape == x.shape  # padded to a multiple of 8 inside
    img = x[0, 0].numpy() * 255
    plain, x8 = denoise(net, img, 25.0), denoise(net, img, 25.0, self_ensemble=True)
    assert plain.shape == x8.shape == img.shape and not np.allclose(plain, x8)  # 8 transforms averaged
    with torch.no_grad():
        net.tail.weight.zero_()
        net.tail.bias.zero_()
    np.testing.assert_allclose(denoise(net, img, 25.0, self_ensemble=True), img, atol=1e-3)  # identity + 0 noise
    with pytest.raises(SmartcareError, match="architecture"):
        DenoiseConfig(arch="transformer")


def test_fit_plan_cosine_schedule_and_loss_switch():
    from smartcare.imaging.enhance_fit import FitPlan

    plan = FitPlan(epochs=10, steps=10, lr=1e-3, schedule="cosine", loss="l1-l2")
    assert plan.lr_at(0) == pytest.approx(1e-3) and plan.lr_at(50) == pytest.approx(0.505e-3)
    assert plan.lr_at(100) == pytest.approx(1e-5) and plan.lr_at(30) > plan.lr_at(60)
    assert plan.loss_at(49) == "l1" and plan.loss_at(50) == "l2"
    assert FitPlan(epochs=1, steps=1, lr=2e-3, schedule="constant").lr_at(0) == 2e-3
    with pytest.raises(SmartcareError, match="schedule"):
        FitPlan(epochs=1, steps=1, lr=1e-3, schedule="step")


def test_train_denoiser_no_ship_leaves_weights_alone(tmp_path):
    import json

    from typer.testing import CliRunner

    from smartcare.imaging.cli import app
    from smartcare.imaging.enhance_apply import load_denoiser

    args = ["train-denoiser", "--arch", "unet", "--channels", "8,16", "--epochs", "1", "--steps", "2",
            "--batch-size", "2", "--patch", "32", "--schedule", "cosine", "--loss", "l1-l2", "--no-compare",
            "--threads", "1", "--weights-root", str(tmp_path / "w")]
    res = CliRunner().invoke(app, [*args, "--no-ship", "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert "weights were not written" in res.output and not (tmp_path / "w").exists()
    card = json.loads((tmp_path / "run" / "card.json").read_text())
    assert "--no-ship" in card["command"] and card["config"]["arch"] == "unet"
    res = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "run2")])  # shipping writes the model
    assert res.exit_code == 0, res.output
    net, card = load_denoiser("denoise", tmp_path / "w")
    assert card["config"]["channels"] == [8, 16] and "--no-ship" not in card["command"]
    assert card["training"]["schedule"] == "cosine"
    res = CliRunner().invoke(app, ["train-denoiser", "--channels", "8,x", "--arch", "unet", "--no-ship"])
    assert res.exit_code == 2 and "--channels" in res.output


def test_guided_unet_reads_its_guide_and_can_start_from_an_unguided_model():
    from smartcare.imaging.enhance import build_denoiser, init_from_unguided

    torch.manual_seed(0)
    plain = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16)))
    net = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16), guide="bm3d"))
    assert net.guided and net.head.in_channels == 9 and not getattr(plain, "guided", False)
    rng = np.random.default_rng(0)
    img, g1, g2 = (rng.random((30, 41)) * 255 for _ in range(3))
    assert not np.allclose(denoise(net, img, 25.0, guide=g1), denoise(net, img, 25.0, guide=g2))  # guide is read
    init_from_unguided(net, plain.state_dict())  # guide weights zero: exactly the unguided network
    for kw in ({}, {"self_ensemble": True}):
        np.testing.assert_allclose(denoise(net, img, 25.0, guide=g1, **kw), denoise(plain, img, 25.0, **kw),
                                   atol=1e-4)
    with pytest.raises(SmartcareError, match="same --channels"):
        init_from_unguided(net, build_denoiser(DenoiseConfig(arch="unet", channels=(8, 32))).state_dict())
    with pytest.raises(SmartcareError, match="guide"):
        net(torch.rand(1, 1, 16, 16), torch.rand(1, 1, 16, 16))
    with pytest.raises(SmartcareError, match="unet"):
        DenoiseConfig(arch="ffdnet", guide="bm3d")
    with pytest.raises(SmartcareError, match="guide"):
        DenoiseConfig(arch="unet", guide="nlm")


@pytest.mark.parametrize("blocks", [2, 3])
def test_a_deeper_guided_unet_starts_as_the_shallower_unguided_one(blocks):
    from smartcare.imaging.enhance import build_denoiser, init_from_unguided

    torch.manual_seed(1)
    plain = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16, 32)))
    deep = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16, 32), blocks=blocks, guide="bm3d"))
    rng = np.random.default_rng(1)
    img, guide = rng.random((37, 50)) * 255, rng.random((37, 50)) * 255
    assert not np.allclose(denoise(deep, img, 25.0, guide=guide), denoise(plain, img, 25.0), atol=1e-2)
    init_from_unguided(deep, plain.state_dict())
    np.testing.assert_allclose(denoise(deep, img, 25.0, guide=guide), denoise(plain, img, 25.0), atol=1e-4)
    new_block = deep.down[0][1].body  # a block the shallow model lacks: it starts as an identity ...
    assert torch.count_nonzero(new_block[2].weight) == 0 and torch.count_nonzero(new_block[0].weight) > 0
    with torch.no_grad():  # ... and, once trained, changes the output
        new_block[2].weight.normal_(0, 0.05)
    assert not np.allclose(denoise(deep, img, 25.0, guide=guide), denoise(plain, img, 25.0), atol=1e-2)
    with pytest.raises(SmartcareError, match="no more --blocks"):  # fewer blocks than trained: refused
        init_from_unguided(build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16, 32), guide="bm3d")),
                           build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16, 32), blocks=2)).state_dict())


def test_self_ensemble_is_on_by_default_for_a_guided_model_only():
    from smartcare.imaging.enhance import build_denoiser
    from smartcare.imaging.enhance_apply import denoise_image

    torch.manual_seed(2)
    img = (np.random.default_rng(2).random((24, 40)) * 255).astype(np.uint8)
    for guide in ("bm3d", ""):
        net = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16), guide=guide))
        default, plain, x8 = (denoise_image(net, img, 25.0, self_ensemble=v)[0] for v in (None, False, True))
        assert not np.array_equal(plain, x8)
        np.testing.assert_array_equal(default, x8 if guide else plain)


def test_guided_denoise_computes_bm3d_when_no_guide_is_given(clean_crop):
    from smartcare.imaging.enhance import bm3d_guide, build_denoiser

    net = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16), guide="bm3d"))
    noisy = add_gaussian(clean_crop, 25, np.random.default_rng(3))
    guide = bm3d_guide(noisy, 25.0)
    np.testing.assert_allclose(guide, bm3d_denoise(noisy, 25.0), atol=1e-2)
    np.testing.assert_allclose(denoise(net, noisy, 25.0), denoise(net, noisy, 25.0, guide=guide), atol=1e-2)
    assert psnr_ssim(clean_crop, guide)[0] > psnr_ssim(clean_crop, noisy)[0] + 8
    counts = add_poisson(clean_crop, 30.0, np.random.default_rng(4))
    assert psnr_ssim(clean_crop, bm3d_guide(counts, 0.0, poisson_peak=30.0))[0] > psnr_ssim(clean_crop, counts)[0] + 5


def test_bank_patches_keep_clean_noisy_and_guide_aligned():
    from smartcare.imaging.enhance import build_denoiser
    from smartcare.imaging.enhance_train import build_guided_bank

    rng = np.random.default_rng(0)
    ramp = np.add.outer(np.arange(48.0), np.arange(48.0) * 3).astype(np.float32)  # no symmetry
    bank = [(ramp, ramp + 1, np.full_like(ramp, 5.0), ramp * 2)]
    loader = NoisyPatches([ramp], steps=3, batch_size=4, patch=16, seed=1, bank=bank)
    for noisy, smap, clean, guide in loader:
        assert noisy.shape == guide.shape == (4, 1, 16, 16)
        torch.testing.assert_close(noisy, clean + 1 / 255)  # same crop, rotation and flip for all four
        torch.testing.assert_close(guide, clean * 2)
        assert torch.allclose(smap, torch.full_like(smap, 5 / 255))
    guided = build_denoiser(DenoiseConfig(arch="unet", channels=(8, 16), guide="bm3d"))
    assert torch.isfinite(denoise_loss(guided, next(iter(loader))))
    images = [rng.random((40, 40)).astype(np.float32) * 255, np.full((50, 50), 100.0, np.float32)]
    real = build_guided_bank(images, [0.0, 1.0], n=2, crop=32, seed=0, workers=1)
    for clean, noisy, smap, guide in real:  # all from the flat image (weight 1); BM3D beats the noise
        assert clean.shape == noisy.shape == smap.shape == guide.shape == (32, 32)
        assert np.all(clean == 100) and np.abs(guide - 100).mean() < np.abs(noisy - 100).mean() + 1e-6
    with pytest.raises(SmartcareError, match="at least"):
        NoisyPatches([ramp], steps=1, batch_size=1, patch=64, seed=0, bank=bank)


@pytest.mark.parametrize("data", ["drive+ct+other", "drive+ctx+other"])
def test_training_images_hold_no_test_image(shared_data, data):
    from smartcare.imaging.enhance_train import GROUP_WEIGHTS, PYDICOM_CT_EXTRA, training_images

    images, weights, val = training_images(shared_data, data)
    extra = len(PYDICOM_CT_EXTRA) if data == "drive+ctx+other" else 0
    assert len(images) == len(training_images(shared_data)[0]) + extra  # the JPEG-coded CT slices decode
    assert len(images) == len(weights) and sum(weights) == pytest.approx(sum(GROUP_WEIGHTS.values()))
    assert len(val) == 3 and all(v.shape == (256, 256) for v in val)
    assert all(0 <= im.min() and im.max() <= 255 and min(im.shape) >= 64 for im in images)
    from smartcare.imaging.enhance import ct_slices

    held_out = [im for _, im in ct_slices(shared_data) + drive_green("test", shared_data)]
    for im in images:  # neither a test image (whole CT slices, DRIVE test) nor the validation CT slice
        assert not any(im.shape == t.shape and np.array_equal(im, t) for t in held_out)
        assert im.shape != (512, 512) or not np.array_equal(centre_crop(im, 256), val[2])


def test_train_guided_denoiser_cli_records_the_guide(tmp_path):
    import json

    from typer.testing import CliRunner

    from smartcare.imaging.cli import app
    from smartcare.imaging.enhance_apply import denoise_image

    args = ["train-denoiser", "--arch", "unet", "--channels", "8,16", "--guide", "bm3d", "--bank", "3",
            "--bank-crop", "40", "--workers", "1", "--epochs", "1", "--steps", "2", "--batch-size", "2",
            "--patch", "32", "--no-compare", "--threads", "1", "--weights-root", str(tmp_path / "w")]
    res = CliRunner().invoke(app, [*args, "--run-dir", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    card = json.loads((tmp_path / "w" / "denoise" / "card.json").read_text())
    assert card["config"]["guide"] == "bm3d" and "--guide bm3d --bank 3 --bank-crop 40" in card["command"]
    assert "BM3D-guided" in card["architecture"]
    from smartcare.imaging.enhance_apply import load_denoiser

    net, _ = load_denoiser("denoise", tmp_path / "w")
    with pytest.raises(SmartcareError, match="adapt"):
        denoise_image(net, np.zeros((16, 16), np.uint8), sigma=25, adapt_steps=5)
    res = CliRunner().invoke(app, [*args[:-2], "--bank-crop", "16", "--no-ship"])
    assert res.exit_code == 2 and "--bank-crop" in res.output
    assert list((tmp_path / "run").glob("bank-3-40-0.npz"))  # kept for a rerun
    res = CliRunner().invoke(app, [*args[:-2], "--init", "denoise-unet", "--weights-root", str(tmp_path / "w2"),
                                   "--run-dir", str(tmp_path / "run")])  # the shipped unguided model: 32-256 wide
    assert res.exit_code == 2 and "same --channels" in res.output
    res = CliRunner().invoke(app, [*args[:-2], "--init", "denoise", "--no-ship"])  # the shipped guided one
    assert res.exit_code == 2 and "not an unguided denoiser" in res.output
