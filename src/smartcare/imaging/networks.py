"""Image classifiers built from MONAI parts: a small 2D ResNet (CNN baseline) and a Vision Transformer.

The ViT follows Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021), built from MONAI's
``PatchEmbeddingBlock`` and ``TransformerBlock``. It accepts a boolean patch mask so that the same encoder
serves masked-image-modelling pretraining (SimMIM: Xie et al., CVPR 2022; see ``imaging.mim``) and
fine-tuning.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from monai.networks.blocks import PatchEmbeddingBlock, TransformerBlock
from monai.networks.nets import ResNet
from torch import nn

from smartcare.core.errors import SmartcareError


@dataclass(frozen=True)
class CNNConfig:
    """A MONAI ``ResNet`` with basic blocks, sized for 28x28 inputs."""

    in_channels: int = 1  # grayscale
    num_classes: int = 2  # one logit per class
    widths: tuple[int, ...] = (16, 32, 64, 128)  # channels of the four stages
    layers: tuple[int, ...] = (2, 2, 2, 2)  # basic blocks per stage (ResNet-18 layout)


@dataclass(frozen=True)
class ViTConfig:
    """A small ViT over non-overlapping square patches."""

    image_size: int = 28  # input height = width
    patch_size: int = 4  # 28 / 4 = 7 -> 49 tokens
    in_channels: int = 1  # grayscale
    num_classes: int = 2  # one logit per class
    hidden_size: int = 128  # token width
    depth: int = 4  # transformer blocks
    num_heads: int = 4  # attention heads (hidden_size must divide by it)
    mlp_ratio: float = 2.0  # MLP width / hidden_size
    dropout: float = 0.1  # dropout in attention/MLP during fine-tuning

    def __post_init__(self) -> None:
        if self.image_size % self.patch_size:
            raise SmartcareError(f"image_size {self.image_size} is not a multiple of patch_size {self.patch_size}")
        if self.hidden_size % self.num_heads:
            raise SmartcareError(f"hidden_size {self.hidden_size} is not a multiple of num_heads {self.num_heads}")

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_patches(self) -> int:
        return self.grid**2


def build_cnn(config: CNNConfig) -> nn.Module:
    """MONAI ``ResNet`` (He et al., CVPR 2016) in 2D with a 3x3 stride-1 stem and no max-pool, so a 28x28
    input keeps enough resolution. Input (B, C, H, W) -> logits (B, num_classes)."""
    return ResNet(block="basic", layers=list(config.layers), block_inplanes=list(config.widths),
                  spatial_dims=2, n_input_channels=config.in_channels, conv1_t_size=3, conv1_t_stride=1,
                  no_max_pool=True, num_classes=config.num_classes)


class ViTClassifier(nn.Module):
    """ViT encoder with a mask token (for MIM), a pixel-reconstruction head and a classification head."""

    def __init__(self, config: ViTConfig):
        super().__init__()
        self.config = config
        c = config
        self.patch_embed = PatchEmbeddingBlock(in_channels=c.in_channels, img_size=c.image_size,
                                               patch_size=c.patch_size, hidden_size=c.hidden_size,
                                               num_heads=c.num_heads, proj_type="conv",
                                               pos_embed_type="learnable", dropout_rate=0.0, spatial_dims=2)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, c.hidden_size))
        mlp_dim = int(c.hidden_size * c.mlp_ratio)
        self.blocks = nn.ModuleList(
            TransformerBlock(c.hidden_size, mlp_dim, c.num_heads, dropout_rate=c.dropout, qkv_bias=True)
            for _ in range(c.depth))
        self.norm = nn.LayerNorm(c.hidden_size)
        # SimMIM's one-layer prediction head: token -> its patch's pixels.
        self.mim_head = nn.Linear(c.hidden_size, c.patch_size**2 * c.in_channels)
        self.head = nn.Linear(c.hidden_size, c.num_classes)
        nn.init.trunc_normal_(self.mask_token, std=0.02)

    def encode(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, C, H, W), mask (B, N) bool (True = hidden) -> tokens (B, N, D)."""
        tokens = self.patch_embed(x)  # (B, N, D), position embedding added
        if mask is not None:
            m = mask.unsqueeze(-1).to(tokens.dtype)  # (B, N, 1)
            pos = self.patch_embed.position_embeddings  # (1, N, D)
            tokens = tokens * (1 - m) + (self.mask_token + pos) * m
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens)

    def reconstruct(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Predicted pixels of every patch: (B, N, patch_size**2 * C)."""
        return self.mim_head(self.encode(x, mask))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) -> logits (B, num_classes), from the mean of the patch tokens."""
        return self.head(self.encode(x).mean(dim=1))


def patchify(x: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, p*p*C) in the row-major patch order of the conv patch embedding."""
    b, c, h, w = x.shape
    p = patch_size
    x = x.reshape(b, c, h // p, p, w // p, p)  # (B, C, gh, p, gw, p)
    x = x.permute(0, 2, 4, 3, 5, 1)  # (B, gh, gw, p, p, C)
    return x.reshape(b, (h // p) * (w // p), p * p * c)  # (B, N, p*p*C)


ARCHITECTURES = {"cnn": (CNNConfig, build_cnn), "vit": (ViTConfig, ViTClassifier)}


def make_config(arch: str, overrides: dict | None = None) -> CNNConfig | ViTConfig:
    """The config of ``arch`` ("cnn" or "vit") with ``overrides`` (e.g. from a model card) applied."""
    if arch not in ARCHITECTURES:
        raise SmartcareError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHITECTURES)}")
    cfg = {k: tuple(v) if isinstance(v, list) else v for k, v in (overrides or {}).items()}
    try:
        return ARCHITECTURES[arch][0](**cfg)
    except TypeError as err:
        raise SmartcareError(f"bad {arch} network config: {err}") from err


def build_model(arch: str, overrides: dict | None = None) -> nn.Module:
    """Build ``arch`` from its config with ``overrides`` applied ("ensemble": see ``imaging.ensemble``)."""
    if arch == "ensemble":
        from smartcare.imaging.ensemble import build_ensemble

        return build_ensemble(overrides or {})
    config = make_config(arch, overrides)
    return ARCHITECTURES[arch][1](config)


def config_dict(config) -> dict:
    """A JSON-ready dict of a network config."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
