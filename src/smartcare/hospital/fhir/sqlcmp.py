"""SQL comparisons shared by :mod:`search` and :mod:`composite`: prefixed dates and numbers, LIKE escaping."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, not_

from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.values import date_range, number_range, range_compare, split_prefix


def like_escape(text: str) -> str:
    """``text`` with the LIKE wildcards escaped (use with ``escape="\\\\"``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def ordered(col, prefix: str, lo: float, hi: float, value: float | None = None) -> ColumnElement[bool]:
    """SQL form of :func:`values.range_compare` for a stored (low, high) column pair."""
    rlo, rhi = col
    return range_compare(rlo, rhi, prefix, lo, hi, value, both=and_, negate=not_)


def date_match(cols, raw: str, code: str) -> ColumnElement[bool]:
    """A prefixed date value (``ge2020-01``) against a stored (low, high) column pair; 400 when malformed."""
    prefix, text = split_prefix(raw)
    try:
        lo, hi = date_range(text)
    except ValueError:
        raise FhirError(400, f"Invalid date '{raw}' for parameter '{code}'", expression=[code]) from None
    return ordered(cols, prefix, lo, hi)


def number_match(col, raw: str, code: str) -> tuple[ColumnElement[bool], list[str]]:
    """A prefixed number, or quantity ``[prefix]number|system|code``, against a stored value column.

    Returns the condition and the unit parts after the number (``[]``, ``[code]`` or ``[system, code]``);
    without a prefix (or with ``ne``/``ap``) the number's implicit precision range is used."""
    prefix, text = split_prefix(raw)
    num, *unit = text.split("|", 2)
    try:
        val, lo, hi = number_range(num)
    except ValueError:
        raise FhirError(400, f"Invalid number '{raw}' for parameter '{code}'", expression=[code]) from None
    if prefix not in ("eq", "ne", "ap"):
        lo = hi = val
    return ordered((col, col), prefix, lo, hi, val), unit
