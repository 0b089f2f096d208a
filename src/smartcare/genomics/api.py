"""HTTP routes under /api/genomics (thin layer over the Python API)."""

from fastapi import APIRouter

router = APIRouter()
