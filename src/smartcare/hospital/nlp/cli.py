"""``smartcare hospital nlp``: ConText assertions and entities for a CSV of clinical text."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def nlp(
    input: Path = typer.Option(..., "--input", help="CSV with one text per row."),
    out: Path = typer.Option(..., "--out", help="Output CSV (input columns + assertion columns + entities)."),
    text_column: str = typer.Option("sentence", help="Column holding the text."),
    target_column: str = typer.Option("", help="Column naming the target mention per row (e.g. condition); "
                                      "without it each row reports its first entity."),
) -> None:
    """Per row: negated, historical, hypothetical, experiencer of the target, and entities with offsets."""
    from smartcare.hospital.nlp.pipeline import annotate_csv

    n = annotate_csv(input, out, text_column, target_column or None)
    typer.echo(f"wrote {n} rows to {out}")


def nlp_eval(
    path: Path = typer.Option(None, "--csv", help="NegEx-annotated CSV; default: the shared set."),
    split: str = typer.Option("all", "--split", help="dev | heldout | all (seeded half-split by sentence)."),
) -> None:
    """Negation P/R/F1, temporality and experiencer accuracy on the NegEx reference standard."""
    from smartcare.hospital.nlp.evaluate import evaluate_negex

    typer.echo(json.dumps(evaluate_negex(path, split), indent=2))


def mtsamples_eval(
    csv: Path = typer.Option(None, "--csv", help="MTSamples CSV; default: the shared training file."),
    embeddings: Path = typer.Option(None, help="Cache of MiniLM embeddings (.npy), reused when present."),
    ship: bool = typer.Option(False, "--ship", help="Save the better model (by test macro-F1) to weights/."),
) -> None:
    """MTSamples specialty: (a) TF-IDF + LR, (b) linear probe on MiniLM embeddings, same de-duplicated split."""
    import numpy as np

    from smartcare.hospital.nlp import classify

    frame = classify.load_mtsamples(csv)
    if embeddings is not None and embeddings.exists():
        emb = np.load(embeddings)
    else:
        emb = classify.embed(frame.text.tolist())
        if embeddings is not None:
            np.save(embeddings, emb)
    if emb.shape[0] != len(frame):
        raise typer.BadParameter(f"{embeddings} holds {emb.shape[0]} rows, expected {len(frame)}")
    result = {
        "texts": len(frame),
        "test_texts": int((frame.split == "test").sum()),
        "tfidf_logreg": classify.tfidf_logreg(frame),
        "minilm_probe": classify.minilm_probe(frame, emb),
        "minilm_max_seq_length": 128,
    }
    typer.echo(json.dumps(result, indent=2))
    if ship:
        scores = {"test": result["tfidf_logreg"], "test_minilm_probe": result["minilm_probe"]}
        if result["tfidf_logreg"]["macro_f1"] >= result["minilm_probe"]["macro_f1"]:
            folder = classify.ship_tfidf(*classify.fit_tfidf(frame), scores)
        else:
            folder = classify.ship_probe(classify.fit_probe(frame, emb), {"test": result["minilm_probe"]})
        typer.echo(f"saved {folder}")


def mtsamples_train(
    model: str = typer.Option("minilm-ft", "--model", help="minilm-ft: fine-tune MiniLM (+ TF-IDF ensemble)."),
    csv: Path = typer.Option(None, "--csv", help="MTSamples CSV; default: the shared training file."),
    device: str = typer.Option("auto", "--device", help="cpu, cuda or auto."),
    epochs: int = typer.Option(8, help="Upper bound on epochs (early stopping on validation macro-F1)."),
    train_layers: int = typer.Option(2, help="Top transformer layers to train (6 = whole encoder, for GPUs)."),
    lr: float = typer.Option(2e-4, help="AdamW learning rate of the trained layers."),
    head_lr: float = typer.Option(5e-3, help="AdamW learning rate of the classification head."),
    batch_size: int = typer.Option(16, help="Notes per step."),
    head_tokens: int = typer.Option(128, help="Word pieces kept from the start of each note."),
    tail_tokens: int = typer.Option(128, help="Word pieces kept from the end of each note (0: head only)."),
    max_minutes: float = typer.Option(28.0, help="Wall-clock budget of the training loop."),
    max_steps: int = typer.Option(None, help="Stop after this many steps (smoke runs)."),
    seed: int = typer.Option(0, help="Random seed."),
    run_dir: Path = typer.Option(Path("var/mtsamples-minilm-ft"), help="Checkpoint, log, report and model."),
    resume: bool = typer.Option(False, "--resume", help="Continue from RUN_DIR/last.pt."),
    ship: bool = typer.Option(False, "--ship", help="Ship to weights/ if best on validation and on test."),
) -> None:
    """MTSamples specialty (c)/(d): fine-tune MiniLM on the de-duplicated split, ensemble with TF-IDF, ship."""
    from smartcare.core.registry import list_models, load_card
    from smartcare.hospital.nlp import classify, finetune, specialty

    if model != "minilm-ft":
        raise typer.BadParameter(f"unknown --model {model!r}; use minilm-ft (TF-IDF ships via mtsamples-eval)")
    config = finetune.FinetuneConfig(head_tokens=head_tokens, tail_tokens=tail_tokens, epochs=epochs, lr=lr,
                                     head_lr=head_lr, train_layers=train_layers,
                                     batch_size=batch_size, seed=seed, device=device,
                                     max_seconds=max_minutes * 60, max_steps=max_steps)
    frame = classify.load_mtsamples(csv)
    net, classes, report = specialty.run(frame, config, run_dir=run_dir, resume=resume)
    best, test = report["best"], report["test"]
    command = (f"smartcare hospital mtsamples-train --model minilm-ft --device {device} --epochs {epochs} "
               f"--train-layers {train_layers} --lr {lr:g} --head-lr {head_lr:g} --batch-size {batch_size} "
               f"--head-tokens {head_tokens} --tail-tokens {tail_tokens} --max-minutes {max_minutes:g} --seed {seed}")
    card = {"command": command + (" --ship" if ship else ""),
            "metrics": {"validation": report["validation"][best if best != "tfidf_logreg" else "minilm_ft"],
                        "test": test[best if best != "tfidf_logreg" else "minilm_ft"],
                        "test_minilm_ft_alone": test["minilm_ft"], "test_tfidf_logreg": test["tfidf_logreg"]},
            "ensemble_weight_tfidf": report["ensemble_weight_tfidf"] if best == "ensemble" else 0.0,
            "test_slice": {"rows": "first 32 test texts in load_mtsamples order", "predictions":
                           report["test_slice_predictions"]["ensemble" if best == "ensemble" else "minilm_ft"]},
            "history": report["history"]}
    shipped = ship and best != "tfidf_logreg" and test[best]["macro_f1"] > test["tfidf_logreg"]["macro_f1"]
    if shipped and finetune.FT_NAME in {c["name"] for c in list_models()}:  # keep a better shipped run
        shipped = card["metrics"]["validation"]["macro_f1"] > load_card(finetune.FT_NAME)["metrics"]["validation"][
            "macro_f1"]
    folder = finetune.ship_finetuned(net, classes, config, card, root=None if shipped else run_dir)
    report["saved"] = str(folder)
    report["shipped"] = shipped
    (run_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    typer.echo(json.dumps({k: v for k, v in report.items() if k != "history"}, indent=2))


def mtsamples_classify(
    text: list[str] = typer.Argument(..., help="One or more note texts."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda or auto."),
) -> None:
    """Specialty of each text from the best shipped MTSamples model (fine-tuned MiniLM when shipped)."""
    from smartcare.hospital.nlp.classify import predict_best

    typer.echo(json.dumps(predict_best(list(text), device=device), indent=2))


def register(app: typer.Typer) -> None:
    app.command("nlp")(nlp)
    app.command("nlp-eval")(nlp_eval)
    app.command("mtsamples-eval")(mtsamples_eval)
    app.command("mtsamples-train")(mtsamples_train)
    app.command("mtsamples-classify")(mtsamples_classify)
