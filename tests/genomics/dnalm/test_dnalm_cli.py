"""`smartcare genomics dnalm predict` with the shipped dnalm-prom-core-all weights."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from typer.testing import CliRunner

from smartcare.cli import app
from smartcare.core import metrics, registry

MODEL = "dnalm-prom-core-all"


def test_shipped_card_and_size():
    card = registry.load_card(MODEL)
    folder = registry.weights_dir() / MODEL
    assert (folder / "model.safetensors").stat().st_size <= 25 * 1024 * 1024
    assert {"mcc", "auc"} <= set(card["metrics"]["dev"])
    assert card["command"].startswith("smartcare genomics dnalm finetune")
    assert (folder / "tokenizer" / "tokenizer.json").is_file()


def test_predict_csv_end_to_end_scores_dev_sequences(tmp_path, shared_data):
    dev = pd.read_csv(shared_data / "genomics/gue_dnabert2_subset/prom_prom_core_all/dev.csv").iloc[:300]
    dev[["sequence"]].to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["genomics", "dnalm", "predict", "--model", MODEL, "--input",
                                      str(tmp_path / "in.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert list(df.columns) == ["index", "sequence_id", "pred", "p_0", "p_1"]
    assert len(df) == 300 and df["index"].tolist() == list(range(300))
    assert ((df["p_0"] + df["p_1"] - 1).abs() < 1e-5).all()
    assert metrics.auc(dev["label"].to_numpy(), df["p_1"].to_numpy()) > 0.75  # trained, not random


def test_predict_fasta_keeps_ids(tmp_path):
    fa = tmp_path / "in.fa"
    fa.write_text(">seqA some description\nACGTACGTTTGACCAGGCT\nacgtNNNNacgt\n>seqB\nTATAAAAGGCGCGC\n")
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["genomics", "dnalm", "predict", "--model", MODEL, "--input", str(fa),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    df = pd.read_csv(out)
    assert df["sequence_id"].tolist() == ["seqA", "seqB"]
    assert set(df["pred"]) <= {0, 1}


@pytest.mark.parametrize("content, message", [
    ("seq\nACGT\n", "no 'sequence' column"),
    ("sequence\nACGTXACGT\n", "'X' at position 4"),
    ("sequence\nACGT\n\"\"\n", "is empty"),
])
def test_bad_input_is_a_clear_error_and_writes_nothing(tmp_path, content, message):
    (tmp_path / "in.csv").write_text(content)
    out = tmp_path / "out.csv"
    result = CliRunner().invoke(app, ["genomics", "dnalm", "predict", "--model", MODEL, "--input",
                                      str(tmp_path / "in.csv"), "--out", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in result.output
    assert not out.exists()


def test_bad_input_exit_code_through_main(tmp_path, monkeypatch, capsys):
    from smartcare.cli import main

    (tmp_path / "in.txt").write_text("ACGT")
    monkeypatch.setattr(sys, "argv", ["smartcare", "genomics", "dnalm", "predict", "--model", MODEL, "--input",
                                      str(tmp_path / "in.txt"), "--out", str(tmp_path / "o.csv")])
    with pytest.raises(SystemExit) as exit_info:
        main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and "must be .csv" in err and "Traceback" not in err


@pytest.mark.parametrize("name", [c["name"] for c in registry.list_models() if c["name"].startswith("dnalm-")])
def test_every_shipped_dnalm_model_loads_and_predicts(name):
    from smartcare.genomics.dnalm.predict import load_classifier, predict

    card = registry.load_card(name)
    assert {"mcc", "auc"} <= set(card["metrics"]["dev"]) and card["comparison_dev"]
    df = predict(load_classifier(name), ["ACGTACGTTTGACCAGGCTATAAAAGG", "ggcgcgNNNNcgcgcc"])
    assert df.shape == (2, 5) and ((df["p_0"] + df["p_1"] - 1).abs() < 1e-5).all()
