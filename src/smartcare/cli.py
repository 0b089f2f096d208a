"""`smartcare`: the command line (Typer). One sub-app per domain plus serve, models and data."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from smartcare.core import registry
from smartcare.core.cli import CommandApp
from smartcare.core.data import data_root, list_datasets
from smartcare.core.errors import SmartcareError
from smartcare.genomics.cli import app as genomics_app
from smartcare.hospital.cli import app as hospital_app
from smartcare.imaging.cli import app as imaging_app
from smartcare.publichealth.cli import app as publichealth_app

app = CommandApp(help="smartcare: transformer models at work across smart healthcare.", no_args_is_help=True)
models_app = CommandApp(help="Shipped models and their cards.", no_args_is_help=True)
data_app = CommandApp(help="Shared datasets.", no_args_is_help=True)
demo_app = CommandApp(help="Demo data for `make run`.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(data_app, name="data")
app.add_typer(demo_app, name="demo")
app.add_typer(imaging_app, name="imaging", help="Medical imaging: read, classify, segment, enhance.")
app.add_typer(genomics_app, name="genomics", help="Genomics: variant calling, DNA language models.")
app.add_typer(hospital_app, name="hospital", help="Smart hospital: FHIR record, decision support, NLP.")
app.add_typer(publichealth_app, name="publichealth", help="Public health: outbreaks, Rt, forecasts.")
console = Console()


@app.command()
def serve(host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
          database_url: Annotated[str, typer.Option(help="SQLAlchemy URL (default: SQLite in var/).")] = ""):
    """Start the HTTP service (FHIR, CDS Hooks, domain APIs, web UI)."""
    import uvicorn

    from smartcare.core.settings import Settings
    from smartcare.service.app import create_app

    settings = Settings(database_url=database_url) if database_url else Settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@models_app.command("list")
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False):
    """List shipped models (weights/<name>/card.json)."""
    cards = registry.list_models()
    if as_json:
        typer.echo(json.dumps(cards, indent=2))
        return
    if not cards:
        typer.echo("no models shipped yet (weights/ is empty)")
        return
    table = Table()
    table.add_column("name", no_wrap=True)  # names are what users type next: never cut them
    for col in ("task", "architecture", "parameters", "date"):
        table.add_column(col, overflow="fold")
    for c in cards:
        table.add_row(str(c.get("name")), str(c.get("task")), str(c.get("architecture")),
                      str(c.get("parameters")), str(c.get("date")))
    console.print(table)


@models_app.command("show")
def models_show(name: str):
    """Print a model's card."""
    typer.echo(json.dumps(registry.load_card(name), indent=2))


@data_app.command("check")
def data_check():
    """List which shared datasets are present under SMARTCARE_DATA."""
    rows = list_datasets()
    if not rows:
        raise SmartcareError(f"no shared data index at {data_root() / 'README.md'}: set SMARTCARE_DATA")
    table = Table("dataset", "size", "present")
    for r in rows:
        table.add_row(r.name, r.size, "yes" if r.present else "MISSING")
    console.print(table)
    present = sum(r.present for r in rows)
    typer.echo(f"{present}/{len(rows)} datasets present under {data_root()}")


@demo_app.command("load")
def demo_load(limit: Annotated[int, typer.Option(help="Synthea bundles to load from the shared data.")] = 5):
    """Load demo patients into the configured database (Synthea when present, else generated)."""
    from smartcare.core.settings import get_settings
    from smartcare.service.demo import load_demo

    done = load_demo(get_settings(), limit=limit)
    if done["source"] == "existing":
        typer.echo(f"demo data already loaded ({done['patients']} patients)")
    else:
        typer.echo(f"loaded {done['resources']} resources from {done['bundles']} {done['source']} bundle(s); "
                   f"embedded {done['notes_indexed']} note(s) for semantic search")


def main() -> None:
    """Entry point. Every command is wrapped by ``CommandApp``: bad input exits 2 with one line."""
    app()
