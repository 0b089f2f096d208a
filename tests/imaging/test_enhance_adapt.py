"""Test-time R2R adaptation of the denoiser: a tiny U-Net on a tiny synthetic image."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smartcare.core.errors import SmartcareError
from smartcare.imaging.enhance import DenoiseConfig, add_gaussian, build_denoiser, denoise
from smartcare.imaging.enhance_adapt import AdaptSettings, adapt, adapt_and_denoise, r2r_loss

SIGMA = 25.0


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = build_denoiser(DenoiseConfig(arch="unet", channels=(4, 8), blocks=1)).eval()
    yy, xx = np.mgrid[0:32, 0:40]
    clean = (128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)).astype(np.float32)  # (32, 40), not square
    noisy = add_gaussian(clean, SIGMA, np.random.default_rng(0))
    return model, noisy


def fixed_r2r(model, noisy) -> float:
    """R2R loss averaged over the same 8 recorruptions for every model compared."""
    gen = torch.Generator().manual_seed(123)
    y = torch.from_numpy(noisy / 255.0)[None, None]  # (1, 1, H, W)
    with torch.no_grad():
        return float(np.mean([float(r2r_loss(model.eval(), y, SIGMA / 255.0, 0.5, gen)) for _ in range(8)]))


def test_adaptation_lowers_the_r2r_loss_and_leaves_the_model_alone(tiny):
    model, noisy = tiny
    before = {k: v.clone() for k, v in model.state_dict().items()}
    adapted, losses = adapt(model, noisy, SIGMA, AdaptSettings(steps=40, lr=3e-3, batch=2, seed=0))
    assert len(losses) == 40 and all(np.isfinite(losses))
    assert fixed_r2r(adapted, noisy) < 0.9 * fixed_r2r(model, noisy)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # a copy was tuned
    assert not adapted.training


def test_adapt_and_denoise_keeps_the_shape_and_is_seeded(tiny):
    model, noisy = tiny
    out = adapt_and_denoise(model, noisy, SIGMA, steps=3, lr=1e-3, seed=1, patch=16, batch=2)
    assert out.shape == noisy.shape and out.dtype == np.float32
    again = adapt_and_denoise(model, noisy, SIGMA, steps=3, lr=1e-3, seed=1, patch=16, batch=2)
    np.testing.assert_array_equal(out, again)
    np.testing.assert_array_equal(adapt_and_denoise(model, noisy, SIGMA, steps=0), denoise(model, noisy, SIGMA))


def test_decoder_only_adaptation_freezes_the_encoder(tiny):
    model, noisy = tiny
    adapted, _ = adapt(model, noisy, SIGMA, AdaptSettings(steps=2, lr=1e-2, params="decoder"))
    assert torch.equal(adapted.head.weight, model.head.weight)
    assert not torch.equal(adapted.tail.weight, model.tail.weight)


@pytest.mark.parametrize("kwargs", [{"steps": -1}, {"lr": 0.0}, {"alpha": 0.0}, {"params": "nope"}])
def test_bad_settings_raise_a_clear_error(tiny, kwargs):
    model, noisy = tiny
    with pytest.raises(SmartcareError):
        adapt(model, noisy, SIGMA, AdaptSettings(**kwargs))


def test_bad_inputs_raise_a_clear_error(tiny):
    model, noisy = tiny
    with pytest.raises(SmartcareError, match="2D"):
        adapt_and_denoise(model, noisy[None], SIGMA, steps=1)
    with pytest.raises(SmartcareError, match="sigma"):
        adapt_and_denoise(model, noisy, 0.0, steps=1)


def test_enhance_cli_adapt_steps(tmp_path):
    from PIL import Image
    from typer.testing import CliRunner

    from smartcare.imaging.cli import app

    rng = np.random.default_rng(0)
    img = np.clip(128 + 25 * rng.standard_normal((48, 40)), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(tmp_path / "n.png")
    runner = CliRunner()
    res = runner.invoke(app, ["enhance", "--input", str(tmp_path / "n.png"), "--out", str(tmp_path / "o.png"),
                              "--adapt-steps", "2"])
    assert res.exit_code == 2 and "--adapt-steps needs --sigma" in res.output
    assert not (tmp_path / "o.png").exists()
    res = runner.invoke(app, ["enhance", "--input", str(tmp_path / "n.png"), "--out", str(tmp_path / "o.png"),
                              "--sigma", "25", "--adapt-steps", "2"])  # the shipped model is BM3D-guided
    assert res.exit_code == 2 and "BM3D-guided" in res.output and not (tmp_path / "o.png").exists()
    res = runner.invoke(app, ["enhance", "--input", str(tmp_path / "n.png"), "--out", str(tmp_path / "o.png"),
                              "--sigma", "25", "--adapt-steps", "2", "--model", "denoise-unet"])
    assert res.exit_code == 0, res.output
    assert np.asarray(Image.open(tmp_path / "o.png")).shape == img.shape
