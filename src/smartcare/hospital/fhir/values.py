"""Value normalisation shared by indexing and searching: strings, FHIR dates, numbers.

Dates become closed ranges of UTC epoch seconds ``(low, high)`` covering their precision
(FHIR R4 search.html#date: ``2013-01`` covers the whole month).
"""

from __future__ import annotations

import calendar
import re
import time
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})"
    r"(?:\.(?P<f>\d+))?)?(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
EPS = 1e-6
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")


def norm_string(value: str) -> str:
    """Lower-case, accent-free form used for default and ``:contains`` string matching."""
    if value.isascii():  # NFKD leaves ASCII unchanged and it has no combining marks
        return value.lower()
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).lower()


def date_range(text: str) -> tuple[float, float]:
    """``(low, high)`` epoch seconds of a FHIR date/dateTime/instant; ``ValueError`` if malformed."""
    m = _DATE.match(text.strip())
    if not m:
        raise ValueError(f"not a FHIR date: {text!r}")
    g = m.groupdict()
    y = int(g["y"])
    tz = timedelta(0)
    if g["tz"] and g["tz"] != "Z":
        sign = 1 if g["tz"][0] == "+" else -1
        tz = sign * timedelta(hours=int(g["tz"][1:3]), minutes=int(g["tz"][4:6]))
    if g["m"] is None:
        start, end = datetime(y, 1, 1, tzinfo=UTC), datetime(y + 1, 1, 1, tzinfo=UTC) if y < 9999 else None
    elif g["d"] is None:
        mo = int(g["m"])
        start = datetime(y, mo, 1, tzinfo=UTC)
        end = start + timedelta(days=calendar.monthrange(y, mo)[1])
    elif g["H"] is None:
        start = datetime(y, int(g["m"]), int(g["d"]), tzinfo=UTC)
        end = start + timedelta(days=1)
    else:
        sec = int(g["S"] or 0)
        frac = g["f"] or ""
        micro = int((frac + "000000")[:6]) if frac else 0
        start = datetime(y, int(g["m"]), int(g["d"]), int(g["H"]), int(g["M"]), sec, micro, tzinfo=UTC) - tz
        if g["S"] is None:
            end = start + timedelta(minutes=1)
        elif frac:
            end = start + timedelta(microseconds=10 ** (6 - min(len(frac), 6)))
        else:
            end = start + timedelta(seconds=1)
    low = start.timestamp()
    high = (end.timestamp() if end else 253402300800.0) - EPS
    return low, high


def number_range(text: str) -> tuple[float, float, float]:
    """``(value, low, high)`` of a search number with its implied precision (``100`` -> [99.5, 100.5))."""
    try:
        dec = Decimal(text)
    except InvalidOperation as err:
        raise ValueError(f"not a number: {text!r}") from err
    if not dec.is_finite():
        raise ValueError(f"not a number: {text!r}")
    exp = dec.as_tuple().exponent
    half = Decimal(5).scaleb(exp - 1) if isinstance(exp, int) else Decimal(0)
    return float(dec), float(dec - half), float(dec + half)


def http_date(dt: datetime) -> str:
    """RFC 7231 date for ``Last-Modified``."""
    return dt.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def instant(dt: datetime) -> str:
    """FHIR ``instant`` text of an aware datetime (millisecond precision, UTC)."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def parse_instant(text: str) -> datetime:
    """A FHIR instant/dateTime as an aware datetime (low end of its range)."""
    return datetime.fromtimestamp(date_range(text)[0], UTC)


def split_prefix(value: str) -> tuple[str, str]:
    """``(prefix, rest)`` of an ordered search value (``gt120`` -> ``("gt", "120")``; default ``eq``)."""
    if len(value) > 2 and value[:2] in PREFIXES and (value[2].isdigit() or value[2] in "-."):
        return value[:2], value[2:]
    return "eq", value


def _both(a: Any, b: Any) -> Any:
    return a and b


def _negate(a: Any) -> Any:
    return not a


def range_compare(rlo: Any, rhi: Any, prefix: str, lo: float, hi: float, value: float | None = None, *,
                  both: Callable[[Any, Any], Any] = _both, negate: Callable[[Any], Any] = _negate) -> Any:
    """Stored range ``[rlo, rhi]`` against query range ``[lo, hi]`` under a FHIR R4 prefix (search.html#prefix).

    ``value`` is the number for ``ap`` (None: a date, compared within 10 % of the distance to now). One
    definition serves Python values (the defaults) and SQL columns (``both=and_, negate=not_``, see
    :func:`sqlcmp.ordered`), so the in-memory and the database matches cannot drift apart."""
    if prefix == "eq":
        return both(rlo >= lo, rhi <= hi)
    if prefix == "ne":
        return negate(both(rlo >= lo, rhi <= hi))
    if prefix in ("gt", "sa"):
        return rhi > hi if prefix == "gt" else rlo > hi
    if prefix in ("lt", "eb"):
        return rlo < lo if prefix == "lt" else rhi < lo
    if prefix == "ge":
        return rhi >= lo
    if prefix == "le":
        return rlo <= hi
    ref = abs(time.time() - lo) if value is None else abs(value)
    margin = max(0.1 * ref, hi - lo)
    return both(rhi >= lo - margin, rlo <= hi + margin)


def ordered_match(rlo: float, rhi: float, prefix: str, lo: float, hi: float, value: float | None = None) -> bool:
    """Python form of :func:`range_compare` for stored index rows."""
    return bool(range_compare(rlo, rhi, prefix, lo, hi, value))
