"""Extract search-index rows from a resource by evaluating the official FHIRPath expressions.

Simple dotted paths (most R4 expressions after the rewrites in :mod:`searchparams`) are walked
directly in Python, with FHIR choice-type resolution (``Observation.effective`` ->
``effectiveDateTime``/``effectivePeriod``); all other expressions go through fhirpathpy with the
R4 model. Each value is turned into rows for the table of its parameter type (:mod:`indexrows`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache, lru_cache
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models as fp_models

from smartcare.hospital.fhir.indexrows import ROWS, rows_for
from smartcare.hospital.fhir.searchparams import INDEXED_TYPES, SearchParam, params_for

__all__ = ["composite_rows", "extract", "rows_for"]  # rows_for lives in indexrows; matching imports it here

_SIMPLE = re.compile(r"^[A-Za-z]\w*(\.[A-Za-z]\w*)+$")
# Fast paths for the two filters that dominate the definitions (after the searchparams rewrites).
_REF_TYPE = re.compile(r"^([\w.]+)\.where\(reference\.startsWith\('(\w+)/'\) or reference\.contains\('/\w+/'\)\)$")
_SYSTEM_IS = re.compile(r"^([\w.]+)\.where\(system='([\w-]+)'\)$")
_MISSING = object()
_CHOICES: dict[tuple[str, tuple[str, ...]], tuple[str, ...]] = {}


def _choice_keys(step: str, keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys that are ``step`` with a type suffix (``valueQuantity`` for ``value``), in key order;
    memoised by key set, since resources repeat the same few shapes."""
    found = _CHOICES.get((step, keys))
    if found is None:
        n = len(step)
        found = tuple(k for k in keys if k.startswith(step) and k[n : n + 1].isupper())
        if len(_CHOICES) >= 50_000:
            _CHOICES.clear()
        _CHOICES[(step, keys)] = found
    return found


def _walk(node: Any, steps: list[str]) -> list[Any]:
    items = node if isinstance(node, list) else [node]
    for step in steps:
        nxt: list[Any] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            val = item.get(step, _MISSING)
            if val is _MISSING:  # choice type: value[x]
                for k in _choice_keys(step, tuple(item)):
                    v = item[k]
                    if isinstance(v, list):
                        nxt.extend(v)
                    else:
                        nxt.append(v)
            elif isinstance(val, list):
                nxt.extend(val)
            else:
                nxt.append(val)
        if not nxt:
            return nxt
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
        if len(fast) == 1:
            return fast[0]
        return lambda res: [v for f in fast for v in f(res)]
    compiled = fp_compile(expression, fp_models["r4"])

    def run(res: dict) -> list[Any]:
        try:
            return [getattr(v, "data", v) for v in compiled(res)]
        except Exception:  # a definition the engine cannot evaluate on this resource indexes nothing
            return []

    return run


_RELATIVE = re.compile(r"^[A-Za-z]\w*(\.[A-Za-z]\w*)*$")


@cache
def _relative(expression: str) -> Callable[[Any], list[Any]] | None:
    """Evaluator of a composite component expression relative to its base element."""
    parts = [p.strip() for p in expression.split(" | ")]
    if not all(_RELATIVE.match(p) for p in parts):
        return None
    paths = [p.split(".") for p in parts]
    return lambda node: [v for steps in paths for v in _walk(node, steps)]


def _component(rtype: str, code: str, expression: str) -> tuple[Callable, str, Callable] | None:
    """(evaluator relative to the base element, parameter type, row builder) of one component."""
    fn = _relative(expression)
    comp = params_for(rtype).get(code)
    if fn is None or comp is None or comp.type not in ROWS:
        return None
    return fn, comp.type, ROWS[comp.type]


def _first(ctype: str, a: dict[str, Any]) -> tuple[str | None, str | None] | None:
    if ctype == "reference":
        return None, f"{a['target_type']}/{a['target_id']}" if a.get("target_id") else a.get("url")
    if ctype == "token":
        return a["system"], a["code"]
    return None


def _second(ctype: str, b: dict[str, Any], c1: tuple[str | None, str | None]) -> dict[str, Any]:
    row = {
        "c1_system": c1[0],
        "c1_code": c1[1],
        "c2_system": None,
        "c2_code": None,
        "c2_value": None,
        "c2_low": None,
        "c2_high": None,
    }
    if ctype in ("token", "quantity"):
        row["c2_system"], row["c2_code"] = b["system"], b["code"]
    if ctype in ("quantity", "number"):
        row["c2_value"] = b["value"]
    if ctype == "date":
        row["c2_low"], row["c2_high"] = b["low"], b["high"]
    if ctype == "string":
        row["c2_code"] = b["value"]
    return row


@cache
def _composite_builder(rtype: str, param: SearchParam) -> Callable[[list[Any]], list[dict[str, Any]]]:
    """Row builder of a two-component composite (token/reference first), one row per value pair per
    element; composites of another shape index nothing."""
    if len(param.components) != 2:
        return lambda elements: []
    (code1, expr1), (code2, expr2) = param.components
    one, two = _component(rtype, code1, expr1), _component(rtype, code2, expr2)
    if one is None or two is None:
        return lambda elements: []
    (fn1, type1, rows1), (fn2, type2, rows2) = one, two

    def build(elements: list[Any]) -> list[dict[str, Any]]:
        out = []
        for element in elements:
            firsts = rows1(fn1(element))
            if not firsts:
                continue
            seconds = rows2(fn2(element))
            for a in firsts:
                c1 = _first(type1, a)
                if c1 is not None:
                    out += [_second(type2, b, c1) for b in seconds]
        return out

    return build


def composite_rows(rtype: str, param: SearchParam, elements: list[Any]) -> list[dict[str, Any]]:
    """Rows of a two-component composite (token/reference first), one per value pair per element."""
    return _composite_builder(rtype, param)(elements)


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


def _builder(resource_type: str, param: SearchParam) -> Callable[[list[Any]], list[dict[str, Any]]]:
    if param.type == "composite":
        return _composite_builder(resource_type, param)
    return ROWS.get(param.type) or (lambda values: [])


@cache
def _plan(resource_type: str) -> tuple[tuple[str, str, Callable, Callable, Any], ...]:
    """(code, parameter type, evaluator, row builder, top-level elements or None) of every indexed
    parameter, in table order."""
    return tuple(
        (code, p.type, _evaluator(resource_type, p.expression), _builder(resource_type, p),
         _heads(resource_type, p.expression))
        for code, p in params_for(resource_type).items()
        if p.type in INDEXED_TYPES and code != "_id"
    )


@lru_cache(maxsize=4096)
def _applicable(resource_type: str, keys: tuple[str, ...]) -> tuple[tuple[str, str, Callable, Callable], ...]:
    """The parameters that can yield a value for a resource with these top-level ``keys``.

    A plain path whose first element is absent evaluates to nothing, so it is skipped; an element
    counts as present under its own name and, for choice types, under each prefix that :func:`_walk`
    resolves (``valueQuantity`` -> ``value``)."""
    present = set(keys)
    for k in keys:
        if not k.islower():
            present.update(k[:i] for i in range(1, len(k)) if k[i].isupper())
    return tuple(
        (code, ptype, ev, build)
        for code, ptype, ev, build, heads in _plan(resource_type)
        if heads is None or heads & present
    )


def extract(resource: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """All index rows of ``resource`` grouped by parameter type: ``{type: [row, ...]}``."""
    grouped: dict[str, list[dict[str, Any]]] = {t: [] for t in INDEXED_TYPES}
    for code, ptype, evaluate, build in _applicable(resource["resourceType"], tuple(resource)):
        values = evaluate(resource)
        if values:
            rows = build(values)
            if rows:
                for row in rows:
                    row["param"] = code
                grouped[ptype] += rows
    return grouped
