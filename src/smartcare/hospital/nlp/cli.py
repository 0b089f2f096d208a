"""``smartcare hospital nlp``: ConText assertions and entities for a CSV of clinical text."""

from __future__ import annotations

import json
from pathlib import Path

import typer


def nlp(
    input: Path = typer.Option(..., "--input", help="CSV with one text per row."),
    out: Path = typer.Option(..., "--out", help="Output CSV (input columns + assertion columns + entities)."),
    text_column: str = typer.Option("sentence", help="Column holding the text."),
    target_column: str = typer.Option("condition", help="Column naming the target mention; '' for none."),
) -> None:
    """Per row: negated, historical, hypothetical, experiencer of the target, and entities with offsets."""
    from smartcare.hospital.nlp.pipeline import annotate_csv

    n = annotate_csv(input, out, text_column, target_column or None)
    typer.echo(f"wrote {n} rows to {out}")


def nlp_eval(path: Path = typer.Option(None, "--csv", help="NegEx-annotated CSV; default: the shared set.")) -> None:
    """Negation P/R/F1, temporality and experiencer accuracy on the NegEx reference standard."""
    from smartcare.hospital.nlp.evaluate import evaluate_negex

    typer.echo(json.dumps(evaluate_negex(path), indent=2))


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


def register(app: typer.Typer) -> None:
    app.command("nlp")(nlp)
    app.command("nlp-eval")(nlp_eval)
    app.command("mtsamples-eval")(mtsamples_eval)
