"""Data locator: finds shared datasets under ``SMARTCARE_DATA`` (default ``../shared/data``).

Nothing is downloaded at run time. A missing dataset raises ``DatasetMissingError`` naming it and saying
how to obtain it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from smartcare.core.errors import DatasetMissingError
from smartcare.core.settings import get_settings


@dataclass(frozen=True)
class DatasetInfo:
    """One row of the shared data index."""

    name: str  # e.g. "publichealth/flusight_hosp"
    size: str  # as written in the index
    description: str
    present: bool


def data_root(root: Path | str | None = None) -> Path:
    """The shared data root: ``root`` if given, else ``SMARTCARE_DATA``, else ``../shared/data``."""
    return Path(root) if root is not None else Path(get_settings().data)


def dataset_path(name: str, root: Path | str | None = None) -> Path:
    """Path to dataset ``name`` (``"<domain>/<folder>"``), which must exist.

    Raises:
        DatasetMissingError: the folder is absent; the message names it and says how to get it.
    """
    base = data_root(root)
    path = base / name
    if not path.exists():
        raise DatasetMissingError(
            f"dataset {name!r} not found at {path}. Place the shared data folder there, or point "
            f"SMARTCARE_DATA at a folder holding {name}/ (its MANIFEST.md gives the source and license); "
            "smartcare never downloads datasets at run time"
        )
    return path


_ROW = re.compile(r"^\|\s*([\w\-./]+/[\w\-./]+)\s*\|\s*([^|]*)\|\s*(.*?)\s*\|\s*$")


def list_datasets(root: Path | str | None = None) -> list[DatasetInfo]:
    """Datasets indexed in the shared data README.md, with whether each is present."""
    base = data_root(root)
    index = base / "README.md"
    if not index.exists():
        return []
    rows = []
    for line in index.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            name = m.group(1).strip()
            rows.append(DatasetInfo(name, m.group(2).strip(), m.group(3).strip(), (base / name).exists()))
    return rows
