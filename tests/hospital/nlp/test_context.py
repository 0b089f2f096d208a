"""ConText on the NegEx reference standard, the note pipeline and the `smartcare hospital nlp` command."""

from __future__ import annotations

import csv
import json

import pytest
from typer.testing import CliRunner

from smartcare.hospital.nlp.context import annotate, find_target, normalize
from smartcare.hospital.nlp.evaluate import evaluate_negex
from smartcare.hospital.nlp.pipeline import extract
from smartcare.hospital.nlp.rules import build_context_rules


def test_negex_reference_standard(shared_data):
    m = evaluate_negex(shared_data / "hospital/negex-annotations/negex_rsAnnotations_train.csv")
    print(json.dumps({k: v for k, v in m.items() if k != "baselines"}))
    assert m["n"] == 1898
    assert m["f1"] >= 0.97 > m["baselines"]["GeneralNegEx"]["f1"]
    assert m["precision"] >= 0.96 and m["recall"] >= 0.97
    assert m["temporality_accuracy"] >= 0.92 and m["experiencer_accuracy"] >= 0.99


def test_shipped_rules_match_the_trigger_lists(shared_data):
    rules = build_context_rules(shared_data / "hospital/negex-annotations")
    shipped = json.loads(
        (
            __import__("smartcare.hospital.nlp.context", fromlist=["RESOURCES"]).RESOURCES / "context_rules.json"
        ).read_text()
    )["context_rules"]
    assert rules == shipped


@pytest.mark.parametrize(
    "sentence,target,expect",
    [
        ("No evidence of pneumonia.", "pneumonia", {"negated": 1}),
        ("Pneumonia was ruled out.", "pneumonia", {"negated": 1}),
        ("History of myocardial infarction.", "myocardial infarction", {"historical": 1}),
        ("Return if fever develops.", "fever", {"hypothetical": 1}),
        ("Mother had breast cancer.", "breast cancer", {"experiencer": "other"}),
        ("No fever but has cough.", "cough", {"negated": 0}),
        ("Neck supple, no lymphadenopathy", "Neck supple, no lymphadenopathy", {"negated": 0}),
    ],
)
def test_assertions(sentence, target, expect):
    a = annotate(sentence, target).to_dict()
    for k, v in expect.items():
        assert a[k] == v, (sentence, a)


def test_offsets_survive_whitespace_normalisation():
    text = "Lungs clear,   no   WHEEZES or rales."
    norm, index = normalize(text)
    assert norm == "Lungs clear, no WHEEZES or rales."
    a = annotate(text, "wheezes")
    assert text[a.start : a.end] == "WHEEZES" and a.negated == 1
    assert find_target("abc", "zzz") == (-1, -1)


def test_note_pipeline_sections_targets_context():
    note = (
        "HISTORY OF PRESENT ILLNESS: chest pain. He denies fever. Started aspirin.\n"
        "PAST MEDICAL HISTORY: hypertension.\nFAMILY HISTORY: mother had stroke.\nPLAN: echocardiogram."
    )
    ents = {e.text.lower(): e for e in extract(note)}
    assert ents["chest pain"].label == "PROBLEM" and ents["chest pain"].negated == 0
    assert ents["fever"].negated == 1
    assert ents["aspirin"].label == "MEDICATION" and ents["echocardiogram"].label == "PROCEDURE"
    assert ents["hypertension"].historical == 1 and ents["hypertension"].section == "past_medical_history"
    assert ents["stroke"].experiencer == "other"
    e = ents["aspirin"]
    assert note[e.start : e.end] == "aspirin"


def test_nlp_cli_writes_csv(tmp_path):
    from smartcare.cli import app

    src = tmp_path / "in.csv"
    with src.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id", "sentence", "condition"])
        w.writerow([1, "Patient denies chest pain.", "chest pain"])
        w.writerow([2, "Family history of diabetes.", "diabetes"])
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        app,
        [
            "hospital",
            "nlp",
            "--input",
            str(src),
            "--text-column",
            "sentence",
            "--target-column",
            "condition",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert rows[0]["negated"] == "1" and rows[1]["experiencer"] == "other"
    ents = json.loads(rows[0]["entities"])
    assert ents[0]["text"] == "chest pain" and ents[0]["start"] == 15
    bad = CliRunner().invoke(
        app, ["hospital", "nlp", "--input", str(src), "--text-column", "nope", "--out", str(tmp_path / "x.csv")]
    )
    assert bad.exit_code != 0 and "column 'nope'" in str(bad.exception)  # main() turns it into exit 2
    assert not (tmp_path / "x.csv").exists()
