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


def register(app: typer.Typer) -> None:
    app.command("nlp")(nlp)
    app.command("nlp-eval")(nlp_eval)
