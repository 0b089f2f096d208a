"""Extract search-index rows from a resource by evaluating the official FHIRPath expressions.

Simple dotted paths (most R4 expressions after the rewrites in :mod:`searchparams`) are walked
directly in Python, with FHIR choice-type resolution (``Observation.effective`` ->
``effectiveDateTime``/``effectivePeriod``); all other expressions go through fhirpathpy with the
R4 model. Each value is turned into rows for the table of its parameter type (see :mod:`db`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from functools import cache, lru_cache
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models as fp_models

from smartcare.hospital.fhir.searchparams import INDEXED_TYPES, SearchParam, params_for
from smartcare.hospital.fhir.values import date_range, norm_string

_SIMPLE = re.compile(r"^[A-Za-z]\w*(\.[A-Za-z]\w*)+$")
# Fast paths for the two filters that dominate the definitions (after the searchparams rewrites).
_REF_TYPE = re.compile(r"^([\w.]+)\.where\(reference\.startsWith\('(\w+)/'\) or reference\.contains\('/\w+/'\)\)$")
_SYSTEM_IS = re.compile(r"^([\w.]+)\.where\(system='([\w-]+)'\)$")
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


def _walk(node: Any, steps: list[str]) -> list[Any]:
    items = node if isinstance(node, list) else [node]
    for step in steps:
        nxt: list[Any] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if step in item:
                val = item[step]
            else:  # choice type: value[x]
                n = len(step)
                val = [v for k, v in item.items() if k.startswith(step) and k[n : n + 1].isupper()]
                val = [x for v in val for x in (v if isinstance(v, list) else [v])]
            nxt.extend(val if isinstance(val, list) else [val])
        items = nxt
    return items


def _ref_is(item: Any, rtype: str) -> bool:
    ref = item.get("reference") if isinstance(item, dict) else None
    return isinstance(ref, str) and (ref.startswith(rtype + "/") or f"/{rtype}/" in ref)


def _system_is(item: Any, system: str) -> bool:
    return isinstance(item, dict) and item.get("system") == system


def _fast(resource_type: str, part: str) -> Callable[[dict], list[Any]] | None:
    """A plain-Python evaluator for the common expression shapes, or None."""
    if part == resource_type:  # composite parameters based on the resource itself
        return lambda res: [res]
    if _SIMPLE.match(part) and part.split(".", 1)[0] == resource_type:
        steps = part.split(".")[1:]
        return lambda res: _walk(res, steps)
    for pattern, keep in ((_REF_TYPE, _ref_is), (_SYSTEM_IS, _system_is)):
        m = pattern.match(part)
        if m and m.group(1).split(".", 1)[0] == resource_type:
            steps, arg = m.group(1).split(".")[1:], m.group(2)
            return lambda res, steps=steps, arg=arg, keep=keep: [v for v in _walk(res, steps) if keep(v, arg)]
    return None


@cache
def _evaluator(resource_type: str, expression: str) -> Callable[[dict], list[Any]]:
    fast = [_fast(resource_type, p.strip()) for p in expression.split(" | ")]
    if all(f is not None for f in fast):
        return lambda res: [v for f in fast for v in f(res)]
    compiled = fp_compile(expression, fp_models["r4"])

    def run(res: dict) -> list[Any]:
        try:
            return [getattr(v, "data", v) for v in compiled(res)]
        except Exception:  # a definition the engine cannot evaluate on this resource indexes nothing
            return []

    return run


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
            yield date_range(value)
        elif isinstance(value, dict):
            if "start" in value or "end" in value:  # Period
                lo = date_range(value["start"])[0] if value.get("start") else -1e12
                hi = date_range(value["end"])[1] if value.get("end") else 1e12
                yield lo, hi
            for ev in value.get("event", []):  # Timing
                yield date_range(ev)
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


_RELATIVE = re.compile(r"^[A-Za-z]\w*(\.[A-Za-z]\w*)*$")


@cache
def _relative(expression: str) -> Callable[[Any], list[Any]] | None:
    """Evaluator of a composite component expression relative to its base element."""
    parts = [p.strip() for p in expression.split(" | ")]
    if not all(_RELATIVE.match(p) for p in parts):
        return None
    paths = [p.split(".") for p in parts]
    return lambda node: [v for steps in paths for v in _walk(node, steps)]


def _component(rtype: str, code: str, expression: str, element: Any) -> list[dict[str, Any]]:
    fn = _relative(expression)
    comp = params_for(rtype).get(code)
    if fn is None or comp is None:
        return []
    return [dict(row, _type=comp.type) for row in rows_for(comp, fn(element))]


def composite_rows(rtype: str, param: SearchParam, elements: list[Any]) -> list[dict[str, Any]]:
    """Rows of a two-component composite (token/reference first), one per value pair per element."""
    if len(param.components) != 2:
        return []
    (code1, expr1), (code2, expr2) = param.components
    out = []
    for element in elements:
        firsts = _component(rtype, code1, expr1, element)
        seconds = _component(rtype, code2, expr2, element)
        for a in firsts:
            if a["_type"] == "reference":
                c1 = (None, f"{a['target_type']}/{a['target_id']}" if a.get("target_id") else a.get("url"))
            elif a["_type"] == "token":
                c1 = (a["system"], a["code"])
            else:
                continue
            for b in seconds:
                row = {
                    "c1_system": c1[0],
                    "c1_code": c1[1],
                    "c2_system": None,
                    "c2_code": None,
                    "c2_value": None,
                    "c2_low": None,
                    "c2_high": None,
                }
                if b["_type"] in ("token", "quantity"):
                    row.update(c2_system=b["system"], c2_code=b["code"])
                if b["_type"] in ("quantity", "number"):
                    row["c2_value"] = b["value"]
                if b["_type"] == "date":
                    row.update(c2_low=b["low"], c2_high=b["high"])
                if b["_type"] == "string":
                    row["c2_code"] = b["value"]
                out.append(row)
    return out


def rows_for(param: SearchParam, values: list[Any]) -> list[dict[str, Any]]:
    """Index rows (without ``res_pk``/``res_type``/``param``) for one parameter's values."""
    out: list[dict[str, Any]] = []
    t = param.type
    for v in values:
        if t == "string":
            out += [{"value": norm_string(s)[:255], "exact": s} for s in _strings(v)]
        elif t == "token":
            out += [{"system": s, "code": c, "text": norm_string(x) if x else None} for s, c, x in _tokens(v)]
        elif t == "reference":
            row = _reference(v)
            if row:
                out.append(row)
        elif t == "date":
            out += [{"low": lo, "high": hi} for lo, hi in _dates(v)]
        elif t == "number":
            if isinstance(v, int | float | Decimal) and not isinstance(v, bool):
                out.append({"value": float(v)})
        elif t == "quantity":
            out += [{"value": q, "system": s, "code": c} for q, s, c in _quantities(v)]
        elif t == "uri" and isinstance(v, str):
            out.append({"value": v})
    return out


def _heads(resource_type: str, expression: str) -> frozenset[str] | None:
    """The top-level elements an expression reads when every part is a plain path (``Type.a.b``,
    ``Type.a.where(...)`` of the fast shapes); None when it may read anything."""
    heads = set()
    for part in (p.strip() for p in expression.split(" | ")):
        if _fast(resource_type, part) is None or part == resource_type:
            return None
        m = _REF_TYPE.match(part) or _SYSTEM_IS.match(part)
        steps = (m.group(1) if m else part).split(".")[1:]
        if not steps:
            return None
        heads.add(steps[0])
    return frozenset(heads)


@cache
def _plan(resource_type: str) -> tuple[tuple[str, SearchParam, Callable[[dict], list[Any]], Any], ...]:
    """(code, parameter, evaluator, top-level elements or None) of every indexed parameter, in table order."""
    return tuple(
        (code, p, _evaluator(resource_type, p.expression), _heads(resource_type, p.expression))
        for code, p in params_for(resource_type).items()
        if p.type in INDEXED_TYPES and code != "_id"
    )


@lru_cache(maxsize=4096)
def _applicable(resource_type: str, keys: tuple[str, ...]) -> tuple[tuple[str, SearchParam, Callable], ...]:
    """The parameters that can yield a value for a resource with these top-level ``keys``.

    A plain path whose first element is absent evaluates to nothing, so it is skipped; an element
    counts as present under its own name and, for choice types, under each prefix that :func:`_walk`
    resolves (``valueQuantity`` -> ``value``)."""
    present = set(keys)
    for k in keys:
        if not k.islower():
            present.update(k[:i] for i in range(1, len(k)) if k[i].isupper())
    return tuple((code, p, ev) for code, p, ev, heads in _plan(resource_type) if heads is None or heads & present)


def extract(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """All index rows of ``resource`` grouped by parameter type: ``{type: [row, ...]}``."""
    rtype = resource["resourceType"]
    grouped: dict[str, list[dict[str, Any]]] = {t: [] for t in INDEXED_TYPES}
    for code, param, evaluate in _applicable(rtype, tuple(resource)):
        values = evaluate(resource)
        rows = composite_rows(rtype, param, values) if param.type == "composite" else rows_for(param, values)
        for row in rows:
            row["param"] = code
            grouped[param.type].append(row)
    return grouped
