"""HTTP routes of the hospital domain under ``/api/hospital`` (FHIR itself is mounted at ``/fhir``)."""

from __future__ import annotations

from fastapi import APIRouter

from smartcare.hospital.cds.api import router as cds_router
from smartcare.hospital.nlp.api import router as nlp_router

router = APIRouter()
router.include_router(cds_router)
router.include_router(nlp_router)
