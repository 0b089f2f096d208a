"""Tiny-config tests of the classifiers, SimMIM pretraining and the training pieces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from smartcare.core.errors import SmartcareError
from smartcare.imaging.mim import MIMConfig, mim_loss, pretrain_mim, random_patch_mask
from smartcare.imaging.networks import ViTConfig, build_model, patchify
from smartcare.imaging.train import ImageDataset, TrainSettings, batch_augment, fine_tune, predict_proba

TINY_VIT = {"hidden_size": 16, "depth": 1, "num_heads": 2, "mlp_ratio": 2.0}
TINY_CNN = {"widths": [4, 8, 8, 8], "layers": [1, 1, 1, 1]}


@pytest.mark.parametrize("arch, cfg", [("cnn", TINY_CNN), ("vit", TINY_VIT)])
def test_classifier_shapes(arch, cfg):
    model = build_model(arch, cfg).eval()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 2)


def test_vit_config_is_validated():
    with pytest.raises(SmartcareError, match="multiple of patch_size"):
        ViTConfig(patch_size=5)
    with pytest.raises(SmartcareError, match="unknown architecture"):
        build_model("mlp")


def test_patchify_matches_conv_patch_order():
    x = torch.arange(2 * 28 * 28, dtype=torch.float32).reshape(2, 1, 28, 28)
    p = patchify(x, 4)
    assert p.shape == (2, 49, 16)
    torch.testing.assert_close(p[0, 1], x[0, 0, 0:4, 4:8].reshape(-1))  # second patch: top row, next column
    torch.testing.assert_close(p[1, 7], x[1, 0, 4:8, 0:4].reshape(-1))  # eighth patch: second row


def test_patch_mask_hides_exact_fraction():
    mask = random_patch_mask(5, 49, 0.5, torch.Generator().manual_seed(0))
    assert mask.shape == (5, 49) and (mask.sum(1) == 24).all()


def test_mim_loss_ignores_visible_patches_and_pretraining_reduces_it():
    torch.manual_seed(0)
    model = build_model("vit", TINY_VIT)
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    none = torch.zeros(8, 49, dtype=torch.bool)
    assert float(mim_loss(model, x, none).detach()) == 0.0
    images = np.tile(np.linspace(0, 255, 28, dtype=np.float32), (16, 28, 1))  # smooth, learnable
    ds = ImageDataset(images, None)
    mask = random_patch_mask(16, 49, 0.5, torch.Generator().manual_seed(1))
    before = float(mim_loss(model.eval(), ds.images, mask))
    history = pretrain_mim(model, ds, MIMConfig(epochs=4, batch_size=8, lr=3e-3), torch.device("cpu"))
    after = float(mim_loss(model.eval(), ds.images, mask))
    assert len(history) == 4 and after < before


def test_batch_augment_keeps_shape_and_range():
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    out = batch_augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= -1.0 and out.max() <= 1.0
    same = batch_augment(x, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, same)  # seeded


def test_fine_tune_learns_a_trivial_task_and_predicts_probabilities():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 32)
    images = np.where(labels[:, None, None] == 1, 200, 40) + rng.integers(0, 20, (32, 28, 28))
    images = images.astype(np.uint8)
    s = TrainSettings(arch="cnn", epochs=2, batch_size=8, lr=3e-3, weight_decay=0.0).validated()
    model = build_model("cnn", TINY_CNN)
    history = fine_tune(model, ImageDataset(images, labels), (images, labels), s, torch.device("cpu"))
    probs = predict_proba(model, images)
    assert probs.shape == (32, 2) and np.allclose(probs.sum(1), 1.0, atol=1e-5)
    assert max(h["val_auc"] for h in history) > 0.95


def test_train_settings_command_and_validation():
    s = TrainSettings(dataset="breastmnist", arch="vit", epochs=5, pretrain_epochs=2)
    assert s.command() == ("smartcare imaging train --dataset breastmnist --arch vit --epochs 5 "
                           "--pretrain-epochs 2 --seed 0 --device cpu")
    with pytest.raises(SmartcareError, match="vit only"):
        TrainSettings(arch="cnn", pretrain_epochs=3).validated()
    with pytest.raises(SmartcareError, match="unknown dataset"):
        TrainSettings(dataset="mnist").validated()


def test_ensemble_averages_member_probabilities(tmp_path, shared_data):
    from smartcare.core.registry import save_model
    from smartcare.imaging.ensemble import make_ensemble
    from smartcare.imaging.medmnist import load_split
    from smartcare.imaging.train import load_classifier

    x, _ = load_split("breastmnist", "val", root=shared_data)
    probs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_model("cnn", TINY_CNN).eval()
        card = {"task": "image-classification", "architecture": "cnn", "network_config": TINY_CNN,
                "classes": ["malignant", "normal+benign"], "input": {"height": 28}, "training_data": "t",
                "split": {}, "command": "smartcare imaging train", "metrics": {}, "seed": seed}
        save_model(f"m{seed}", model.state_dict(), card, root=tmp_path)
        probs.append(predict_proba(load_classifier(f"m{seed}", tmp_path)[0], x))
    card = make_ensemble("breastmnist", ["m0", "m1"], "ens", root=tmp_path, out_root=tmp_path)
    assert set(card["metrics"]) == {"val", "test"}
    assert card["member_commands"][1].endswith("--name m1")
    ens, _ = load_classifier("ens", tmp_path)
    np.testing.assert_allclose(predict_proba(ens, x), np.mean(probs, axis=0), atol=2e-3)  # fp16 weights
