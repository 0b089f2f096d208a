"""What the FHIR store hands back: a stored version, the outcome of a write, and ETag parsing
(FHIR R4 http.html#versioning, #concurrency)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from smartcare.hospital.fhir.outcome import FhirError


@dataclass(frozen=True)
class Stored:
    """One version of a resource as stored."""

    res_type: str
    res_id: str
    version: int
    last_updated: datetime
    deleted: bool
    content: dict[str, Any] | None

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


@dataclass(frozen=True)
class WriteResult:
    """Outcome of a write: the stored version and whether it created the resource."""

    stored: Stored
    created: bool
    changed: bool = True


def parse_etag(value: str | None) -> int | None:
    """The version number in an ``If-Match`` value such as ``W/"3"``; 400 when malformed."""
    if value is None or value == "":
        return None
    text = value.strip()
    text = text[2:] if text.startswith("W/") else text
    text = text.strip('"')
    if not text.isdigit():
        raise FhirError(400, f"Malformed If-Match value {value!r}", expression=["If-Match"])
    return int(text)
