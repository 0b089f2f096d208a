"""Image denoising: noise models, real clean images, a learned denoiser, classical baselines, PSNR/SSIM.

The learned model follows FFDNet (Zhang, Zuo & Zhang, "FFDNet: Toward a Fast and Flexible Solution for
CNN-Based Image Denoising", IEEE TIP 2018), a DnCNN-style residual CNN (Zhang et al., IEEE TIP 2017) that
works on the 4 pixel-unshuffled sub-images plus a noise-level map, so one network covers Gaussian noise
of any sigma and signal-dependent (Poisson) noise through a per-pixel sigma map. ``DenoiseUNet`` (the
shipped model) keeps that input and replaces the plain conv stack by a residual U-Net after DRUNet.
Baselines: non-local means (Buades et al., CVPR 2005; scikit-image) and BM3D (Dabov et al., IEEE TIP
2007; PyPI ``bm3d``); Poisson noise is handled for them by the Anscombe transform with the closed-form
unbiased inverse of Makitalo & Foi (IEEE TIP 2011). All images are on the 0-255 scale.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from smartcare.core.data import dataset_path
from smartcare.core.errors import SmartcareError
from smartcare.imaging.io import read_dicom, read_dicom_series, read_npz

CT_WINDOW = (-1000.0, 1000.0)  # HU mapped linearly to 0-255 for the CT test images (wide, little clipping)


@dataclass(frozen=True)
class DenoiseConfig:
    """The denoiser: ``ffdnet`` (plain conv stack) or ``unet`` (residual U-Net), both sigma-conditioned."""

    depth: int = 8  # ffdnet: conv layers at half resolution
    width: int = 32  # ffdnet: feature maps per layer
    max_sigma: float = 75.0  # the noise map is sigma / 255; training draws sigma up to ~55
    arch: str = "ffdnet"  # ffdnet or unet
    channels: tuple[int, ...] = (32, 64, 128)  # unet: widths per level (level 1 at half resolution)
    blocks: int = 1  # unet: residual blocks per level and side
    batch_norm: bool = True  # ffdnet: BN between convs (as in DnCNN/FFDNet)
    guide: str = ""  # unet only: "bm3d" = the network also reads BM3D's estimate and corrects it

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if self.arch not in ("ffdnet", "unet"):
            raise SmartcareError(f"unknown denoiser architecture {self.arch!r}: use ffdnet or unet")
        if self.depth < 2 or self.width < 4:
            raise SmartcareError("denoiser needs depth >= 2 and width >= 4")
        if self.arch == "unet" and (not self.channels or min(self.channels) < 4 or self.blocks < 1):
            raise SmartcareError("unet denoiser needs channels >= 4 and blocks >= 1")
        if self.guide not in ("", "bm3d"):
            raise SmartcareError(f"unknown denoiser guide {self.guide!r}: use bm3d or none")
        if self.guide and self.arch != "unet":
            raise SmartcareError("a guided denoiser needs --arch unet")


class FFDNet(nn.Module):
    """(B, 1, H, W) noisy image in [0, 1] and (B, 1, H, W) sigma map (sigma/255) -> denoised (B, 1, H, W).

    H and W are padded to even sizes internally. The network predicts the noise, which is subtracted.
    """

    guided = False  # reads no BM3D estimate (see DenoiseUNet)

    def __init__(self, config: DenoiseConfig):
        super().__init__()
        w = config.width
        layers: list[nn.Module] = [nn.Conv2d(5, w, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(config.depth - 2):  # conv (+ batch norm) + ReLU, as in DnCNN/FFDNet
            if config.batch_norm:
                layers += [nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            else:
                layers += [nn.Conv2d(w, w, 3, padding=1), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(w, 4, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, noisy: torch.Tensor, sigma_map: torch.Tensor) -> torch.Tensor:
        h, w = noisy.shape[-2:]
        ph, pw = h % 2, w % 2
        x = F.pad(noisy, (0, pw, 0, ph), mode="replicate")
        s = F.pad(sigma_map, (0, pw, 0, ph), mode="replicate")
        sub = F.pixel_unshuffle(x, 2)  # (B, 4, H/2, W/2)
        s2 = F.avg_pool2d(s, 2)  # (B, 1, H/2, W/2)
        noise = F.pixel_shuffle(self.body(torch.cat([sub, s2], 1)), 2)  # (B, 1, H, W)
        return (x - noise)[..., :h, :w]


class ResBlock(nn.Module):
    """conv-ReLU-conv with an identity shortcut (as in DRUNet's blocks)."""

    def __init__(self, c: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class DenoiseUNet(nn.Module):
    """Sigma-conditioned residual U-Net after DRUNet (Zhang et al., "Plug-and-Play Image Restoration with
    Deep Denoiser Prior", IEEE TPAMI 2021): residual blocks, strided-conv downsampling, transposed-conv
    upsampling and additive skips, no batch norm. To keep the cost of FFDNet's class it starts, as FFDNet
    does, from the 4 pixel-unshuffled sub-images plus the sigma map at half resolution. Same interface as
    ``FFDNet``: it predicts the noise, which is subtracted.

    With ``config.guide == "bm3d"`` it also reads a classical estimate of the clean image (BM3D's, passed
    as ``guide``), pixel-unshuffled like the input, as 4 more input channels: a learned combination of
    the network and BM3D (in the spirit of Choi, Elgendy & Chan, "Optimal Combination of Image
    Denoisers", IEEE TIP 2019). ``init_from_unguided`` starts it from a trained unguided model.
    """

    def __init__(self, config: DenoiseConfig):
        super().__init__()
        ch, nb = config.channels, config.blocks
        self.factor = 2 ** len(ch)  # full-resolution padding multiple
        self.guided = bool(config.guide)
        self.head = nn.Conv2d(9 if self.guided else 5, ch[0], 3, padding=1)
        self.down = nn.ModuleList(
            nn.Sequential(*[ResBlock(ch[i]) for _ in range(nb)], nn.Conv2d(ch[i], ch[i + 1], 2, stride=2))
            for i in range(len(ch) - 1))
        self.body = nn.Sequential(*[ResBlock(ch[-1]) for _ in range(nb)])
        self.up = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(ch[i + 1], ch[i], 2, stride=2), *[ResBlock(ch[i]) for _ in range(nb)])
            for i in range(len(ch) - 1))
        self.tail = nn.Conv2d(ch[0], 4, 3, padding=1)

    def forward(self, noisy: torch.Tensor, sigma_map: torch.Tensor, guide: torch.Tensor | None = None
                ) -> torch.Tensor:
        if self.guided and guide is None:
            raise SmartcareError("this denoiser corrects a BM3D estimate: pass guide=")
        h, w = noisy.shape[-2:]
        ph, pw = -h % self.factor, -w % self.factor
        x = F.pad(noisy, (0, pw, 0, ph), mode="replicate")
        s = F.pad(sigma_map, (0, pw, 0, ph), mode="replicate")
        inputs = [F.pixel_unshuffle(x, 2), F.avg_pool2d(s, 2)]
        if self.guided:
            inputs.append(F.pixel_unshuffle(F.pad(guide, (0, pw, 0, ph), mode="replicate"), 2))
        feat = self.head(torch.cat(inputs, 1))
        skips = []
        for down in self.down:
            skips.append(feat)
            feat = down(feat)
        feat = self.body(feat)
        for up, skip in zip(reversed(self.up), reversed(skips), strict=True):
            feat = up(feat) + skip
        noise = F.pixel_shuffle(self.tail(feat), 2)
        return (x - noise)[..., :h, :w]


def _deepened(state: dict[str, torch.Tensor], mine: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A U-Net state with ``nb`` residual blocks per stage, renamed and filled for one with more blocks:
    the trained blocks keep their places (first in each stage) and the new ones start as identities
    (second convolution zero), so the deeper network computes exactly what the trained one did
    (Chen, Goodfellow & Shlens, "Net2Net", ICLR 2016, as in zero-initialised residual branches)."""
    nb = len({k.split(".")[1] for k in state if k.startswith("body.")})
    mb = len({k.split(".")[1] for k in mine if k.startswith("body.")})
    if nb == mb:
        return state
    out = {}
    for key, value in state.items():
        part = key.split(".")
        if part[0] == "down" and int(part[2]) == nb:  # the stride-2 convolution after the blocks
            part[2] = str(mb)
        out[".".join(part)] = value
    for key, value in mine.items():
        if key not in out:  # a new block: its first conv as initialised, its second conv zero
            out[key] = torch.zeros_like(value) if ".body.2." in key else value.clone()
    return out


def init_from_unguided(model: DenoiseUNet, state: dict[str, torch.Tensor]) -> None:
    """Load a trained unguided U-Net of the same widths into a guided one; the guide's input weights start
    at zero, so the guided model starts as exactly that network. ``model`` may have more residual blocks
    per stage than the trained one (``--blocks``): the new blocks start as identities (``_deepened``)."""
    state = dict(state)
    head = state.get("head.weight")
    mine = model.state_dict()
    error = "--init needs an unguided unet denoiser of the same --channels and no more --blocks"
    if head is None or head.shape[1] != 5:
        raise SmartcareError(error)
    state = _deepened(state, mine)
    if set(state) != set(mine):
        raise SmartcareError(error)
    state["head.weight"] = torch.cat([head, torch.zeros_like(mine["head.weight"][:, 5:])], 1)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise SmartcareError(error) from err


def build_denoiser(config: DenoiseConfig) -> nn.Module:
    return DenoiseUNet(config) if config.arch == "unet" else FFDNet(config)


def config_to_dict(config: DenoiseConfig) -> dict[str, Any]:
    out = asdict(config)
    out["channels"] = list(config.channels)
    return out


# ---------------------------------------------------------------------------------------------- noise


def add_gaussian(clean: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise of std ``sigma`` (0-255 scale); not clipped, as in DnCNN/BM3D tables."""
    return clean.astype(np.float32) + rng.normal(0.0, sigma, clean.shape).astype(np.float32)


def add_poisson(clean: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson (shot) noise: a pixel of value v on 0-255 receives Poisson(v / 255 * peak) photons."""
    counts = rng.poisson(np.clip(clean, 0, 255).astype(np.float64) / 255.0 * peak)
    return (counts / peak * 255.0).astype(np.float32)


def poisson_sigma_map(noisy: np.ndarray, peak: float) -> np.ndarray:
    """Per-pixel noise std (0-255) of Poisson noise, estimated from the 3x3-smoothed noisy image."""
    from scipy import ndimage

    level = np.clip(ndimage.uniform_filter(noisy.astype(np.float32), 3), 0, None)
    return np.sqrt(level * 255.0 / peak).astype(np.float32)


def anscombe(counts: np.ndarray) -> np.ndarray:
    return 2.0 * np.sqrt(np.clip(counts, 0, None) + 3.0 / 8.0)


def inverse_anscombe(z: np.ndarray) -> np.ndarray:
    """Closed-form approximation of the exact unbiased inverse (Makitalo & Foi 2011)."""
    z = np.maximum(z, 0.8)
    s = np.sqrt(1.5)
    return 0.25 * z**2 + 0.25 * s / z - 1.375 / z**2 + 0.625 * s / z**3 - 0.125


# --------------------------------------------------------------------------------------------- images


def drive_green(split: str, root: Path | str | None = None) -> list[tuple[str, np.ndarray]]:
    """DRIVE green channels (0-255 float32), named ``drive-<id>``; train ids 21-40, test ids 01-20."""
    path = dataset_path("imaging/drive", root) / f"drive_{split}.npz"
    images, ids = read_npz(path, "images"), read_npz(path, "ids")
    return [(f"drive-{int(i):02d}", im[..., 1].astype(np.float32)) for im, i in zip(images, ids, strict=True)]


def ct_to_byte(hu: np.ndarray, window: tuple[float, float] = CT_WINDOW) -> np.ndarray:
    lo, hi = window
    return ((np.clip(hu.astype(np.float32), lo, hi) - lo) / (hi - lo) * 255.0).astype(np.float32)


def ct_slices(root: Path | str | None = None) -> list[tuple[str, np.ndarray]]:
    """The three real CT slices of ``dicom_nifti_io/ct_3slice`` in HU, windowed to 0-255."""
    vol = read_dicom_series(dataset_path("imaging/dicom_nifti_io", root) / "ct_3slice")
    return [(f"ct-{z + 1}", ct_to_byte(vol.array[z])) for z in range(vol.array.shape[-3])]


def ct_small(root: Path | str | None = None) -> np.ndarray:
    """pydicom's CT_small (one real 128 px CT slice, not in the test set), windowed like the test CT."""
    return ct_to_byte(read_dicom(dataset_path("imaging/dicom_nifti_io", root) / "CT_small.dcm").array[0])


def centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape
    top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
    return image[top:top + size, left:left + size]


def benchmark_images(root: Path | str | None = None, n_drive: int = 4, crop: int = 256
                     ) -> list[tuple[str, np.ndarray]]:
    """The fixed test set: ``crop``-pixel centre crops of the first ``n_drive`` DRIVE test green channels and
    of the three CT slices. None of these images is used for training."""
    imgs = drive_green("test", root)[:n_drive] + ct_slices(root)
    return [(name, centre_crop(im, crop)) for name, im in imgs]


# ------------------------------------------------------------------------------------------- denoising


def bm3d_guide(noisy: np.ndarray, sigma: float | np.ndarray, poisson_peak: float | None = None) -> np.ndarray:
    """BM3D's estimate, the input a guided denoiser corrects: through the Anscombe transform when the noise
    is Poisson of a known ``poisson_peak``, else at the root-mean-square of ``sigma`` (a number or map)."""
    if poisson_peak is not None:
        return classical_poisson(bm3d_denoise, noisy, poisson_peak).astype(np.float32)
    level = float(np.sqrt(np.mean(np.square(np.asarray(sigma, np.float64)))))
    return bm3d_denoise(noisy, max(level, 0.5)).astype(np.float32)  # bm3d needs a positive sigma


@torch.no_grad()
def denoise(model: nn.Module, noisy: np.ndarray, sigma: float | np.ndarray, device="cpu",
            self_ensemble: bool = False, guide: np.ndarray | None = None) -> np.ndarray:
    """Denoise one image (H, W) on 0-255 given its noise std ``sigma`` (a number or an (H, W) map).

    ``self_ensemble`` averages the outputs for the 8 flips/90-degree rotations of the input, each mapped
    back (the standard test-time "x8" trick of Lim et al., EDSR, CVPR-W 2017): 8 times the cost.
    A guided model (``DenoiseConfig.guide``) also needs BM3D's estimate: ``guide``, computed here by
    ``bm3d_guide`` when not given.
    """
    def tensor(a) -> torch.Tensor:
        return torch.from_numpy(np.array(a, dtype=np.float32) / 255.0)[None, None].to(device)  # a copy

    x = tensor(noisy)
    s = tensor(np.broadcast_to(np.asarray(sigma, np.float32), noisy.shape))
    extra = []
    if model.guided:
        extra = [tensor(bm3d_guide(noisy, sigma) if guide is None else guide)]
    model.eval()
    if not self_ensemble:
        return model(x, s, *extra)[0, 0].float().cpu().numpy() * 255.0
    total = torch.zeros_like(x)
    for flip in (False, True):
        ins = [t.flip(-1) if flip else t for t in (x, s, *extra)]
        for k in range(4):
            out = torch.rot90(model(*(torch.rot90(t, k, (-2, -1)) for t in ins)), -k, (-2, -1))
            total += out.flip(-1) if flip else out
    return (total / 8)[0, 0].float().cpu().numpy() * 255.0


def estimate_noise_sigma(image: np.ndarray) -> float:
    """Gaussian noise std (0-255) by the wavelet MAD estimator (Donoho & Johnstone 1994; scikit-image)."""
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(image.astype(np.float64) / 255.0)) * 255.0


def nlm(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """Non-local means with scikit-image's recommended h = 0.8 sigma (fast mode, 5x5 patches, 13x13 search)."""
    from skimage.restoration import denoise_nl_means

    s = sigma / 255.0
    out = denoise_nl_means(noisy.astype(np.float64) / 255.0, h=0.8 * s, sigma=s, fast_mode=True,
                           patch_size=5, patch_distance=6)
    return out * 255.0


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(noisy.astype(np.float64) / 255.0, sigma_psd=sigma / 255.0)) * 255.0


def classical_poisson(method, noisy: np.ndarray, peak: float) -> np.ndarray:
    """Run a Gaussian denoiser on Poisson data through the Anscombe transform (unit noise std)."""
    z = anscombe(noisy / 255.0 * peak)
    scale = float(z.max()) or 1.0
    den = method(z / scale * 255.0, 255.0 / scale) / 255.0 * scale  # unit std in the z domain
    return inverse_anscombe(den) / peak * 255.0


def psnr_ssim(clean: np.ndarray, estimate: np.ndarray) -> tuple[float, float]:
    """PSNR (dB) and SSIM (Wang et al., IEEE TIP 2004) on the 0-255 scale; the estimate is clipped."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    est = np.clip(estimate, 0, 255)
    return (float(peak_signal_noise_ratio(clean, est, data_range=255.0)),
            float(structural_similarity(clean, est, data_range=255.0)))
