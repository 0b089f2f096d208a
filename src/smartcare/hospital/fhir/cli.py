"""``smartcare hospital fhir-load`` / ``fhir-reset``: fill or empty the FHIR store."""

from __future__ import annotations

from pathlib import Path

import typer
from sqlalchemy.orm import Session

from smartcare.core.settings import get_settings
from smartcare.hospital.fhir.db import dangling_references, engine_for, reset_db


def fhir_load(
    paths: list[Path] = typer.Argument(..., help="Bundle/resource JSON files or folders of them."),
    database_url: str = typer.Option("", help="SQLAlchemy URL; default: the configured database."),
    no_validate: bool = typer.Option(False, help="Skip structural validation (faster bulk loads)."),
) -> None:
    """Load FHIR Bundles (e.g. Synthea transaction Bundles) or single resources into the store."""
    from smartcare.hospital.fhir.loader import load_paths

    url = database_url or get_settings().resolved_database_url()
    with Session(engine_for(url)) as session:
        counts = load_paths(session, paths, validate=not no_validate)
        dangling = dangling_references(session)
    total = sum(counts.values())
    typer.echo(f"loaded {total} resources: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    typer.echo(f"{dangling} references point at resources not in the store")


def fhir_reset(
    database_url: str = typer.Option("", help="SQLAlchemy URL; default: the configured database."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Drop every FHIR table and recreate an empty store."""
    url = database_url or get_settings().resolved_database_url()
    if not yes:
        typer.confirm(f"Delete all FHIR data in {url.split('@')[-1]}?", abort=True)
    reset_db(url)
    typer.echo("FHIR store reset")


def register(app: typer.Typer) -> None:
    """Add the FHIR commands to the ``smartcare hospital`` app."""
    app.command("fhir-load")(fhir_load)
    app.command("load", help="Alias of fhir-load.")(fhir_load)
    app.command("fhir-reset")(fhir_reset)
