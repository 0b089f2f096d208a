"""HTTP routes of the hospital domain under ``/api/hospital`` (FHIR itself is mounted at ``/fhir``)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
