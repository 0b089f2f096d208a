"""SQL comparisons shared by :mod:`search` and :mod:`composite`: prefixed ranges and LIKE escaping."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, not_

from smartcare.hospital.fhir.values import range_compare


def like_escape(text: str) -> str:
    """``text`` with the LIKE wildcards escaped (use with ``escape="\\\\"``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ordered(col, prefix: str, lo: float, hi: float, value: float | None = None) -> ColumnElement[bool]:
    """SQL form of :func:`values.range_compare` for a stored (low, high) column pair."""
    rlo, rhi = col
    return range_compare(rlo, rhi, prefix, lo, hi, value, both=and_, negate=not_)
