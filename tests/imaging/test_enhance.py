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
    table = compare(net, images=[("drive-01", clean_crop)], methods=("noisy", "ours"), log=lambda *_: None)
    for cond in ("gaussian-15", "gaussian-25", "gaussian-50", "poisson-30"):
        got = table[cond]["drive"]
        assert got["ours"]["psnr"] > got["noisy"]["psnr"] + 3, (cond, got)


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
    (row8,) = enhance_file(src, tmp_path / "out8.png", sigma=25, self_ensemble=True)
    out8 = np.asarray(Image.open(row8["output"]))
    assert psnr_ssim(clean_crop, out8)[0] > psnr_ssim(clean_crop, noisy)[0] + 3 and not np.array_equal(out8, out)
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
