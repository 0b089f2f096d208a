"""Shared fixtures: the shared data root, a PostgreSQL URL, a tiny weights folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the shared datasets (``SMARTCARE_DATA`` or ../shared/data). Missing data fails, not skips."""
    root = Path(os.environ.get("SMARTCARE_DATA", REPO.parent / "shared" / "data"))
    assert (root / "README.md").is_file(), f"shared data not found at {root}: set SMARTCARE_DATA"
    return root


@pytest.fixture(scope="session")
def pg_url() -> str:
    """SQLAlchemy URL of the test PostgreSQL; `make test` sets it (scripts/ensure_postgres.sh)."""
    return os.environ.get("SMARTCARE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
