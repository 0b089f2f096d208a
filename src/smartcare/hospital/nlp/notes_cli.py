"""``smartcare hospital notes-index`` / ``notes-search``: note embeddings in the FHIR database."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from smartcare.core.errors import SmartcareError


def _store():
    from smartcare.core.settings import get_settings
    from smartcare.hospital.fhir.db import engine_for
    from smartcare.hospital.nlp.vectorstore import VectorStore, minilm

    return VectorStore(engine_for(get_settings().resolved_database_url()), minilm())


def notes_index(
    csv: Path = typer.Option(None, "--csv", help="Index this CSV as a plain-text corpus instead of the FHIR store."),
    corpus: str = typer.Option("default", help="Corpus name for --csv."),
    text_column: str = typer.Option("text", help="Column of --csv holding the note text."),
    id_column: str = typer.Option("", help="Column of --csv holding note ids ('' = row number)."),
    limit: int = typer.Option(0, help="Index only the first N rows of --csv (0 = all)."),
) -> None:
    """Embed the stored FHIR notes that are new or changed (and drop deleted ones), or a CSV corpus."""
    import time

    store = _store()
    start = time.perf_counter()
    if csv is None:
        from smartcare.hospital.nlp.notesync import sync

        out = sync(store)
    else:
        out = {"corpus": corpus, "notes": 0, "chunks": 0}
        for notes in _csv_notes(csv, text_column, id_column, limit):
            out["notes"] += len(notes)
            out["chunks"] += store.add_texts(notes, corpus)
    out["seconds"] = round(time.perf_counter() - start, 2)
    typer.echo(json.dumps(out))


def _csv_notes(path: Path, text_column: str, id_column: str, limit: int):
    """Batches of 256 :class:`Note` from a CSV (blank texts skipped)."""
    import pandas as pd

    from smartcare.hospital.nlp.vectorstore import Note

    if not path.is_file():
        raise SmartcareError(f"no such CSV file: {path}")
    frame = pd.read_csv(path, nrows=limit or None)
    for col in filter(None, (text_column, id_column)):
        if col not in frame.columns:
            raise SmartcareError(f"{path} has no column {col!r} (columns: {', '.join(map(str, frame.columns))})")
    ids = frame[id_column].astype(str) if id_column else frame.index.astype(str)
    notes = [Note("Text", i, t) for i, t in zip(ids, frame[text_column], strict=True)
             if isinstance(t, str) and t.strip()]
    for i in range(0, len(notes), 256):
        yield notes[i : i + 256]


def notes_search(
    q: str = typer.Argument(..., help="What to look for, in plain words."),
    k: int = typer.Option(5, "-k", help="Number of notes to return."),
    patient: str = typer.Option(None, help="Only notes about this patient (Patient/<id> or <id>)."),
    corpus: str = typer.Option(None, help="Only this corpus ('fhir' = stored resources)."),
) -> None:
    """Semantic search over the indexed notes; prints JSON results (best chunk with offsets)."""
    from smartcare.hospital.nlp.notesync import sync
    from smartcare.hospital.nlp.vectorstore import patient_reference

    subject = patient_reference(patient)
    store = _store()
    if corpus in (None, "fhir"):
        sync(store)
    typer.echo(json.dumps(store.search(q, k, corpus=corpus, subject=subject), indent=2))


def register(app: typer.Typer) -> None:
    app.command("notes-index")(notes_index)
    app.command("notes-search")(notes_search)
