"""Search criteria checked in Python on stored resources, where the index tables alone cannot answer.

- ``identifier:of-type=system|code|value`` (FHIR R4 search.html#token): the token index narrows the
  search to resources with an identifier ``value``; the ``Identifier.type`` coding is then checked on
  the resource itself.
- Composite parameters with more than two components, i.e. the MolecularSequence coordinates
  (``chromosome-window-coordinate=1$lt345$gt123``, search.html#composite): each component narrows
  the search through its own index (a superset), then the components are checked to come from one
  element of the composite's base (one ``variant``, one ``referenceSeq``), with ``%resource``
  components read from the whole resource.

Both read only the candidates the indexes let through, so they stay cheap.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhirpathpy import compile as fp_compile
from fhirpathpy.models import models as fp_models
from sqlalchemy import Select, false, select

from smartcare.hospital.fhir.db import idx_token, resources
from smartcare.hospital.fhir.indexer import rows_for
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.searchparams import SearchParam, params_for
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.values import date_range, norm_string, number_range, ordered_match, split_prefix


@cache
def _compiled(expression: str):
    return fp_compile(expression, fp_models["r4"])


def evaluate(resource: dict[str, Any], expression: str) -> list[Any]:
    """Values of a search parameter's FHIRPath ``expression`` on ``resource`` (nothing on failure)."""
    try:
        return [getattr(v, "data", v) for v in _compiled(expression)(resource)]
    except Exception:  # an expression the engine cannot evaluate on this resource yields no value
        return []


def _walk(node: Any, path: str) -> list[Any]:
    """A dotted relative path (``start``, ``referenceSeq.chromosome``) with choice types (``value[x]``)."""
    items = [node]
    for step in path.split("."):
        nxt: list[Any] = []
        for item in items:
            if not isinstance(item, dict):
                continue
            vals = (
                [item[step]]
                if step in item
                else [v for k, v in item.items() if k.startswith(step) and k[len(step) : len(step) + 1].isupper()]
            )
            for v in vals:
                nxt.extend(v if isinstance(v, list) else [v])
        items = nxt
    return items


def _contents(ctx: SearchContext, pks: Select | list[int]) -> list[tuple[int, dict[str, Any]]]:
    q = select(resources.c.pk, resources.c.content).where(resources.c.pk.in_(pks), resources.c.deleted == false())
    return [(pk, content) for pk, content in ctx.session.execute(q)]


def of_type_pks(ctx: SearchContext, rtype: str, p: SearchParam, raw: str) -> list[int]:
    """Keys of ``rtype`` resources with an Identifier of type ``system|code`` and value ``value``."""
    parts = raw.split("|")
    if len(parts) != 3 or not all(parts):
        raise FhirError(
            400, f"':of-type' needs a value of the form system|code|value, got '{raw}'", expression=[p.code]
        )
    system, code, value = parts
    candidates = select(idx_token.c.res_pk).where(
        idx_token.c.res_type == rtype, idx_token.c.param == p.code, idx_token.c.code == value
    )
    out = []
    for pk, content in _contents(ctx, candidates):
        for ident in evaluate(content, p.expression):
            if not isinstance(ident, dict) or ident.get("value") != value:
                continue
            codings = (ident.get("type") or {}).get("coding", [])
            if any(c.get("system") == system and c.get("code") == code for c in codings):
                out.append(pk)
                break
    return out


def row_matches(ptype: str, row: dict[str, Any], raw: str) -> bool:
    """Whether one index row (as :func:`indexer.rows_for` makes it) matches a search value."""
    if ptype == "token":
        if "|" not in raw:
            return row["code"] == raw
        system, code = raw.split("|", 1)
        return (row["system"] is None if system == "" else row["system"] == system) and (
            not code or row["code"] == code
        )
    if ptype == "string":
        return row["value"].startswith(norm_string(raw)[:255])
    if ptype == "uri":
        return row["value"] == raw
    if ptype == "date":
        prefix, text = split_prefix(raw)
        lo, hi = date_range(text)
        return ordered_match(row["low"], row["high"], prefix, lo, hi)
    if ptype in ("number", "quantity"):
        prefix, text = split_prefix(raw)
        num, *unit = text.split("|", 2)
        val, lo, hi = number_range(num)
        if prefix not in ("eq", "ne", "ap"):
            lo = hi = val
        ok = ordered_match(row["value"], row["value"], prefix, lo, hi, val)
        if ptype == "quantity" and len(unit) == 2:
            ok = ok and (not unit[0] or row["system"] == unit[0]) and (not unit[1] or row["code"] == unit[1])
        elif ptype == "quantity" and unit and unit[0]:
            ok = ok and row["code"] == unit[0]
        return ok
    if ptype == "reference":
        ref = raw.split("/_history/", 1)[0]
        return (
            row.get("url") == raw
            or f"{row.get('target_type')}/{row.get('target_id')}" == ref
            or ("/" not in ref and row.get("target_id") == ref)
        )
    return False


def composite_pks(ctx: SearchContext, rtype: str, p: SearchParam, parts: list[str], candidates: Select) -> list[int]:
    """Keys among ``candidates`` where one base element matches every component value in ``parts``."""
    comps = [(params_for(rtype)[code], expr) for code, expr in p.components]
    out = []
    for pk, content in _contents(ctx, candidates):
        for element in evaluate(content, p.expression):
            if all(
                _component_matches(content, element, comp, expr, part)
                for (comp, expr), part in zip(comps, parts, strict=True)
            ):
                out.append(pk)
                break
    return out


def _component_matches(resource: dict, element: Any, comp: SearchParam, expr: str, raw: str) -> bool:
    for path in (s.strip() for s in expr.split("|")):
        node, rel = (resource, path[len("%resource.") :]) if path.startswith("%resource.") else (element, path)
        if any(row_matches(comp.type, row, raw) for row in rows_for(comp, _walk(node, rel))):
            return True
    return False
