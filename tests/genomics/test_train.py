"""Training runs end to end on a tiny slice; the shipped model has a complete card."""

from __future__ import annotations

import torch

from smartcare.core import registry
from smartcare.genomics.call import CallerConfig, PileupCNN
from smartcare.genomics.examples import ExampleConfig
from smartcare.genomics.train import CallerTrainConfig, train_caller


def test_train_caller_tiny_run_writes_model_and_card(tmp_path, small_bam, sim_dir):
    cfg = CallerTrainConfig(split_at=25_000, end=39_700, epochs=1, hidden=4)
    card = train_caller(sim_dir / "ref.fa", [small_bam], sim_dir / "truth.vcf.gz", cfg, command="test",
                        weights_root=tmp_path, name="tiny")
    assert (tmp_path / "tiny" / "model.safetensors").is_file()
    loaded = registry.load("tiny", root=tmp_path)
    model = PileupCNN(CallerConfig(**loaded.card["config"]))
    model.load_state_dict(loaded.tensors)
    assert card["split"]["train_examples"] > 20 and card["split"]["validation_examples"] > 5
    calling = card["metrics"]["validation"]["calling"]["small30x/classical"]
    assert calling["SNP"]["TP"] > 5 and calling["SNP"]["FP"] == 0


def test_shipped_variant_caller_card():
    card = registry.load_card("variant-caller")
    for field in registry.CARD_FIELDS:
        assert field in card
    assert card["examples"] == ExampleConfig().info()  # the examples stage makes what the model expects
    assert "train-caller" in card["command"] and card["split"]["train"].startswith("[0,")
    tensors = registry.load_tensors("variant-caller")
    assert sum(t.numel() for t in tensors.values()) == card["parameters"] < 1_000_000
    model = PileupCNN(CallerConfig(**card["config"]))
    model.load_state_dict(tensors)
    assert model(torch.zeros(2, *card["examples"]["shape"]), torch.full((2, 9), -0.1)).shape == (2, 3)
    for run in card["metrics"]["validation"]["calling"].values():
        assert run["SNP"]["f1"] >= 0.99
