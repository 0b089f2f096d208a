"""core: data locator, registry, metrics and the training loop (tiny configs)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from smartcare.core import metrics, registry
from smartcare.core.data import dataset_path, list_datasets
from smartcare.core.device import choose_device
from smartcare.core.errors import DatasetMissingError, ModelNotFoundError, SmartcareError
from smartcare.core.training import TrainConfig, fit


def test_dataset_path_found_and_missing(shared_data):
    assert dataset_path("publichealth/flusight_hosp", shared_data).is_dir()
    with pytest.raises(DatasetMissingError, match="'imaging/nope' not found.*SMARTCARE_DATA"):
        dataset_path("imaging/nope", shared_data)
    names = {d.name for d in list_datasets(shared_data)}
    assert "genomics/sim_chr20_art30x" in names


def test_device_choice():
    assert choose_device("cpu").type == "cpu"
    assert choose_device("auto").type in ("cpu", "cuda")
    with pytest.raises(SmartcareError):
        choose_device("tpu")


def test_registry_roundtrip(tmp_path):
    card = {"task": "demo", "architecture": "linear", "training_data": "none", "split": "none",
            "command": "n/a", "metrics": {}, "seed": 0}
    tensors = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    registry.save_model("tiny", tensors, card, root=tmp_path)
    assert [c["name"] for c in registry.list_models(tmp_path)] == ["tiny"]
    loaded = registry.load("tiny", root=tmp_path)
    assert loaded.card["parameters"] == 6
    assert torch.equal(loaded.tensors["w"], tensors["w"])
    with pytest.raises(ModelNotFoundError, match="known: tiny"):
        registry.load_card("other", root=tmp_path)
    with pytest.raises(SmartcareError, match="lacks"):
        registry.save_model("bad", tensors, {"task": "x"}, root=tmp_path)


def test_registry_loads_hf_checkpoint_folder(tmp_path):
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=16, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=16)
    BertModel(cfg).save_pretrained(tmp_path / "ckpt")
    model = registry.load(tmp_path / "ckpt")
    assert model.config.hidden_size == 8


def test_metrics_and_bootstrap():
    y = np.array([0, 0, 1, 1, 1, 0, 1, 0])
    s = np.array([0.1, 0.3, 0.8, 0.7, 0.4, 0.6, 0.9, 0.2])
    assert metrics.auc(y, s) == pytest.approx(15 / 16)
    assert metrics.accuracy(y, s) == pytest.approx(0.75)
    assert metrics.f1(y, s) == pytest.approx(0.75)
    assert metrics.mcc(y, s) == pytest.approx(0.5)
    assert metrics.dice([1, 1, 0, 0], [1, 0, 1, 0]) == pytest.approx(0.5)
    point, lo, hi = metrics.bootstrap_ci(metrics.auc, y, s, n_boot=200)
    assert lo <= point <= hi and 0 <= lo and hi <= 1


def _linear(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Linear(4, 1)


def _toy_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).float()
    return [(x[i:i + 16], y[i:i + 16]) for i in range(0, 64, 16)]


def _loss(model, batch):
    x, y = batch
    return torch.nn.functional.binary_cross_entropy_with_logits(model(x).squeeze(-1), y)


def _score(model, loader, device):
    ys, ss = zip(*[(y, model(x.to(device)).squeeze(-1).cpu()) for x, y in loader], strict=True)
    return metrics.auc(torch.cat(ys).numpy(), torch.cat(ss).numpy())


def test_training_is_deterministic_and_resumes(tmp_path):
    data = _toy_data()
    runs = []
    for _ in range(2):
        model = _linear()
        cfg = TrainConfig(epochs=3, lr=0.05, seed=1, device="cpu", patience=5)
        fit(model, data, data, loss_fn=_loss, score_fn=_score, config=cfg)
        runs.append(model.weight.detach().clone())
    assert torch.equal(runs[0], runs[1])

    # two epochs, then resume to four, equals four straight epochs
    straight = _linear()
    fit(straight, data, data, loss_fn=_loss, score_fn=None,
        config=TrainConfig(epochs=4, lr=0.05, seed=2, device="cpu", patience=9, run_dir=tmp_path / "a"))
    part = _linear()
    fit(part, data, data, loss_fn=_loss, score_fn=None,
        config=TrainConfig(epochs=2, lr=0.05, seed=2, device="cpu", patience=9, run_dir=tmp_path / "b"))
    resumed = _linear()
    result = fit(resumed, data, data, loss_fn=_loss, score_fn=None,
                 config=TrainConfig(epochs=4, lr=0.05, seed=2, device="cpu", patience=9,
                                    run_dir=tmp_path / "b", resume=True))
    assert result.epochs_run == 4
    assert torch.allclose(straight.weight, resumed.weight)
    log = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1, 2, 3]


def test_early_stopping():
    data = _toy_data()
    model = _linear()
    result = fit(model, data, data, loss_fn=_loss, score_fn=lambda m, loader, d: 0.5,
                 config=TrainConfig(epochs=50, patience=2, device="cpu"))
    assert result.epochs_run == 3 and result.best_epoch == 0


def test_time_budget_stops_training():
    data = _toy_data()
    result = fit(_linear(), data, data, loss_fn=_loss, score_fn=None,
                 config=TrainConfig(epochs=50, patience=99, device="cpu", max_seconds=0.0))
    assert result.epochs_run == 1


def test_command_app_turns_bad_input_into_exit_2_without_traceback():
    from typer.testing import CliRunner

    from smartcare.core.cli import CommandApp
    from smartcare.core.errors import SmartcareError

    app = CommandApp()

    @app.command("boom")
    def boom(name: str = "x") -> None:
        raise SmartcareError(f"bad thing in {name}")

    @app.command("crash")
    def crash() -> None:
        raise RuntimeError("a real bug")

    result = CliRunner().invoke(app, ["boom", "--name", "file.dcm"])
    assert result.exit_code == 2
    assert "error: bad thing in file.dcm" in result.output
    assert "Traceback" not in result.output
    # Only bad input is softened: a programming error still propagates.
    crashed = CliRunner().invoke(app, ["crash"])
    assert isinstance(crashed.exception, RuntimeError)
