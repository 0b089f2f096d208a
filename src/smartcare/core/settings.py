"""Runtime settings read from ``SMARTCARE_*`` environment variables (pydantic-settings).

Settings are validated once and passed whole; nothing rewrites them at run time.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[3]


class Settings(BaseSettings):
    """All knobs of a smartcare process. Every field maps to ``SMARTCARE_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="SMARTCARE_", frozen=True)

    # Root of the shared datasets; the default is ../shared/data beside the checkout.
    data: Path = REPO_ROOT.parent / "shared" / "data"
    # Where shipped model folders (weights/<name>/) live.
    weights: Path = REPO_ROOT / "weights"
    # Working folder for databases, run logs and checkpoints.
    var: Path = REPO_ROOT / "var"
    # SQLAlchemy URL; SQLite in ``var`` by default, PostgreSQL when pointed at one.
    database_url: str = ""
    # cpu, cuda or auto (cuda when available).
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # Largest accepted HTTP request body in bytes (uploads included).
    max_request_bytes: int = 50 * 1024 * 1024
    # Ray cluster address; empty means run locally without Ray.
    ray_address: str = ""
    # JSON log level for the service.
    log_level: str = "INFO"

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to an SQLite file in ``var``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.var / 'smartcare.db').as_posix()}"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Process-wide settings (cached). Tests override the FastAPI dependency instead of patching."""
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]
