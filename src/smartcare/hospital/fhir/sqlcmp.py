"""SQL comparisons shared by :mod:`search` and :mod:`composite`: prefixed ranges and LIKE escaping."""

from __future__ import annotations

import time

from sqlalchemy import ColumnElement, and_, not_


def like_escape(text: str) -> str:
    """``text`` with the LIKE wildcards escaped (use with ``escape="\\\\"``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ordered(col, prefix: str, lo: float, hi: float, value: float | None = None) -> ColumnElement[bool]:
    """Comparison of a stored number/date range ``col`` ((low, high) columns) with [lo, hi] under a
    FHIR R4 prefix (search.html#prefix); :func:`values.ordered_match` is its Python twin."""
    rlo, rhi = col
    if prefix == "eq":
        return and_(rlo >= lo, rhi <= hi)
    if prefix == "ne":
        return not_(and_(rlo >= lo, rhi <= hi))
    if prefix in ("gt", "sa"):
        return rhi > hi if prefix == "gt" else rlo > hi
    if prefix in ("lt", "eb"):
        return rlo < lo if prefix == "lt" else rhi < lo
    if prefix == "ge":
        return rhi >= lo
    if prefix == "le":
        return rlo <= hi
    # ap: within 10 % of the distance to now (dates) or of the value (numbers)
    ref = abs(time.time() - lo) if value is None else abs(value)
    margin = max(0.1 * ref, hi - lo)
    return and_(rhi >= lo - margin, rlo <= hi + margin)
