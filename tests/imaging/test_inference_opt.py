"""``optimise_for_inference``: bf16 + channels_last copy of a classifier matches eager within bf16 rounding."""

from __future__ import annotations

import torch

from smartcare.imaging.classify import optimise_for_inference
from smartcare.imaging.networks import CNNConfig, build_cnn


def test_optimised_cnn_matches_eager_and_leaves_model_alone():
    torch.manual_seed(0)
    model = build_cnn(CNNConfig(widths=(4, 8, 8, 8), layers=(1, 1, 1, 1))).eval()
    x = torch.randn(6, 1, 28, 28)  # (B, C, H, W)
    with torch.no_grad():
        eager = torch.softmax(model(x), dim=1)
        fast_logits = optimise_for_inference(model)(x)
    assert fast_logits.shape == (6, 2) and fast_logits.dtype == torch.float32
    assert torch.allclose(torch.softmax(fast_logits, dim=1), eager, atol=3e-2)
    weight = next(p for p in model.parameters() if p.dim() == 4)
    assert weight.is_contiguous()  # the caller's model keeps its default memory format
