"""Index rows of one search parameter from its FHIRPath values (FHIR R4 search.html, one table per
parameter type, see :mod:`db`): strings are normalised for matching, tokens split into system|code,
references into type/id (or url, or identifier), dates into epoch-second ranges, quantities into
value|system|code."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import lru_cache
from typing import Any

from smartcare.hospital.fhir.searchparams import SearchParam
from smartcare.hospital.fhir.values import date_range, norm_string

# Resources of one patient repeat the same instants (an encounter's period, its observations' times).
_cached_range = lru_cache(maxsize=16_384)(date_range)


def _date_range(text: Any) -> tuple[float, float]:
    return _cached_range(text) if type(text) is str else date_range(text)

_STRING_KEYS = (
    "family",
    "given",
    "prefix",
    "suffix",
    "text",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
)


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key in _STRING_KEYS:
            v = value.get(key)
            for s in v if isinstance(v, list) else [v]:
                if isinstance(s, str):
                    yield s


def _tokens(value: Any) -> Iterable[tuple[str | None, str | None, str | None]]:
    if isinstance(value, bool):
        yield None, "true" if value else "false", None
    elif isinstance(value, str | int | float):
        yield None, str(value), None
    elif isinstance(value, dict):
        if "coding" in value or ("text" in value and "code" not in value and "value" not in value):
            text = value.get("text")
            for c in value.get("coding", []):
                yield c.get("system"), c.get("code"), text or c.get("display")
            if not value.get("coding") and text:
                yield None, None, text
        elif "value" in value and isinstance(value["value"], str):  # Identifier, ContactPoint
            ttext = (value.get("type") or {}).get("text")
            yield value.get("system"), value["value"], ttext
        elif "code" in value:  # Coding
            yield value.get("system"), value.get("code"), value.get("display")


def _reference(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):  # canonical / uri used as a reference
        value = {"reference": value}
    if not isinstance(value, dict):
        return None
    ref = value.get("reference")
    ident = value.get("identifier")
    ident = ident if isinstance(ident, dict) else {}
    row: dict[str, Any] = {
        "target_type": value.get("type"),
        "target_id": None,
        "url": ref,
        "ident_system": ident.get("system"),
        "ident_value": ident.get("value"),
    }
    if not isinstance(ref, str):
        row["url"] = ref = None
    elif not ref.startswith("#"):
        core = ref.split("|", 1)[0].split("/_history/", 1)[0]
        segs = core.rstrip("/").split("/")
        if len(segs) >= 2 and segs[-2][:1].isupper():
            row["target_type"], row["target_id"] = segs[-2], segs[-1]
    if row["url"] is None and row["ident_value"] is None:
        return None
    return row


def _dates(value: Any) -> Iterable[tuple[float, float]]:
    try:
        if isinstance(value, str):
            yield _date_range(value)
        elif isinstance(value, dict):
            if "start" in value or "end" in value:  # Period
                lo = _date_range(value["start"])[0] if value.get("start") else -1e12
                hi = _date_range(value["end"])[1] if value.get("end") else 1e12
                yield lo, hi
            for ev in value.get("event", []):  # Timing
                yield _date_range(ev)
    except ValueError:
        return


def _quantities(value: Any) -> Iterable[tuple[float, str | None, str | None]]:
    if isinstance(value, dict):
        if isinstance(value.get("value"), int | float | Decimal) and not isinstance(value.get("value"), bool):
            code = value.get("code") or value.get("unit") or value.get("currency")
            yield float(value["value"]), value.get("system"), code
        elif "origin" in value:  # SampledData
            yield from _quantities(value["origin"])
        else:  # Range
            for side in ("low", "high"):
                if isinstance(value.get(side), dict):
                    yield from _quantities(value[side])
    elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        yield float(value), None, None


def _string_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [{"value": norm_string(s)[:255], "exact": s} for v in values for s in _strings(v)]


def _token_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [
        {"system": s, "code": c, "text": norm_string(x) if x else None} for v in values for s, c, x in _tokens(v)
    ]


def _reference_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [row for row in map(_reference, values) if row]


def _date_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [{"low": lo, "high": hi} for v in values for lo, hi in _dates(v)]


def _number_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [{"value": float(v)} for v in values if isinstance(v, int | float | Decimal) and not isinstance(v, bool)]


def _quantity_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [{"value": q, "system": s, "code": c} for v in values for q, s, c in _quantities(v)]


def _uri_rows(values: list[Any]) -> list[dict[str, Any]]:
    return [{"value": v} for v in values if isinstance(v, str)]


ROWS: dict[str, Callable[[list[Any]], list[dict[str, Any]]]] = {
    "string": _string_rows,
    "token": _token_rows,
    "reference": _reference_rows,
    "date": _date_rows,
    "number": _number_rows,
    "quantity": _quantity_rows,
    "uri": _uri_rows,
}


def rows_for(param: SearchParam, values: list[Any]) -> list[dict[str, Any]]:
    """Index rows (without ``res_pk``/``res_type``/``param``) for one parameter's values."""
    build = ROWS.get(param.type)
    return build(values) if build else []
