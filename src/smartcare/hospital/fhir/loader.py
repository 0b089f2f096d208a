"""Load Bundles and resources from files into the store (used by ``smartcare hospital fhir-load``)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from smartcare.core.progress import progress
from smartcare.hospital.fhir.bundle import BundleProcessor
from smartcare.hospital.fhir.db import analyze
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.store import FhirStore


def load_bundle(session: Session, bundle: dict[str, Any], *, validate: bool = True) -> Counter[str]:
    """Store one Bundle (or single resource) atomically; returns resource counts by type.

    transaction/batch Bundles are processed as such; other Bundle types (collection, searchset,
    document...) have their entry resources stored with their own ids (PUT). A bare resource is
    stored by PUT when it has an id, otherwise created. Raises :class:`FhirError` and writes nothing
    when anything fails.
    """
    store = FhirStore(session, validate_resources=validate)
    counts: Counter[str] = Counter()
    try:
        if bundle.get("resourceType") == "Bundle" and bundle.get("type") in ("transaction", "batch"):
            BundleProcessor(store, return_resources=False).run(bundle)
            counts.update(
                e["resource"]["resourceType"]
                for e in bundle.get("entry", [])
                if isinstance(e.get("resource"), dict) and e["request"]["method"] in ("POST", "PUT")
            )
        elif bundle.get("resourceType") == "Bundle":
            for e in bundle.get("entry", []):
                res = e.get("resource")
                if isinstance(res, dict):
                    _put(store, res)
                    counts[res["resourceType"]] += 1
        else:
            _put(store, bundle)
            counts[bundle.get("resourceType", "?")] += 1
        store.commit()
    except Exception:
        store.rollback()
        raise
    return counts


def _put(store: FhirStore, resource: dict[str, Any]) -> None:
    if resource.get("id"):
        store.update(resource["resourceType"], resource["id"], resource)
    else:
        store.create(resource)


def json_files(paths: Iterable[Path]) -> list[Path]:
    """The ``*.json`` and ``*.xml`` files named or contained (recursively) in ``paths``, sorted;
    ``index.json``/``package.json`` skipped. Raises FhirError when nothing is there to load."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix in (".json", ".xml") and f.is_file()
                           and f.name not in ("index.json", "package.json"))
            if not found:
                raise FhirError(404, f"{p}: the folder holds no .json or .xml FHIR files")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise FhirError(404, f"No such file or folder: {p}")
    if not out:
        raise FhirError(400, "no files to load")
    return out


def _read(f: Path) -> Any:
    raw = f.read_bytes()
    if f.suffix == ".xml" or raw.lstrip()[:1] == b"<":
        from smartcare.hospital.fhir.xml import FhirXmlError, from_xml

        try:
            return from_xml(raw)
        except FhirXmlError as err:  # names the element and line
            raise FhirError(400, f"{f}: {err}") from None
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise FhirError(400, f"{f}: not valid JSON ({err})") from None


def load_paths(session: Session, paths: Iterable[Path], *, validate: bool = True) -> Counter[str]:
    """Load every JSON or XML file under ``paths`` (one transaction per file) with a progress bar."""
    files = json_files(paths)
    counts: Counter[str] = Counter()
    for f in progress(files, desc="FHIR load", total=len(files)):
        data = _read(f)
        try:
            counts += load_bundle(session, data, validate=validate)
        except FhirError as err:
            raise FhirError(err.status, f"{f}: {err.diagnostics}", expression=err.expression) from None
    analyze(session.connection())
    session.commit()
    return counts
