"""HTTP routes under /api/publichealth (thin layer over the Python API)."""

from fastapi import APIRouter

router = APIRouter()
