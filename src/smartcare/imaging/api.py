"""HTTP routes under /api/imaging (thin layer over the Python API)."""

from fastapi import APIRouter

router = APIRouter()
