"""Translate FHIR search criteria into SQL over the index tables (FHIR R4 search.html).

Supports string/token/reference/date/number/quantity/uri parameters from the official
definitions, the prefixes ``eq ne gt lt ge le sa eb ap``, the modifiers ``:exact :contains
:missing :not :text :above :below :identifier :[type]``, the terminology modifiers ``:in :not-in``
and ``:above :below`` on tokens plus ``:of-type`` on identifiers (these need a
:class:`~smartcare.hospital.fhir.terminology.SearchContext`; see :mod:`terminology` and
:mod:`matching`), composites of two components (index rows) and of three (MolecularSequence
coordinates, checked in Python), chained parameters
(``subject:Patient.name=x``), reverse chaining (``_has:Observation:patient:code=x``), ``_id`` and
multi-key ``_sort``. Comma-separated values are OR-ed; repeated parameters are AND-ed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true
from sqlalchemy.sql.expression import ColumnElement as Col

from smartcare.hospital.fhir import composite, matching
from smartcare.hospital.fhir.db import INDEX_TABLES, idx_reference, resources
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.searchparams import RESULT_PARAMS, SearchParam, params_for
from smartcare.hospital.fhir.sqlcmp import date_match, like_escape, number_match
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.values import PREFIXES, norm_string

_ORDERED_TYPES = ("date", "number", "quantity")
# Modifiers per parameter type (reference parameters also take a resource type, ``:Patient``).
MODIFIERS = {
    "string": ("missing", "exact", "contains"),
    "token": ("missing", "not", "text", "in", "not-in", "above", "below", "of-type"),
    "reference": ("missing", "identifier", "[type]"),
    "uri": ("missing", "above", "below"),
    "date": ("missing",),
    "number": ("missing",),
    "quantity": ("missing",),
    "composite": (),
}
_TOKEN_ONLY = ("in", "not-in", "of-type")


@dataclass(frozen=True)
class Criterion:
    """One ``name[:modifier][.chain]=value`` pair of a query string."""

    key: str
    value: str


def split_values(value: str) -> list[str]:
    """Split on unescaped commas (``\\,`` is a literal comma)."""
    out, cur, i = [], [], 0
    while i < len(value):
        ch = value[i]
        if ch == "\\" and i + 1 < len(value) and value[i + 1] in ",$|\\":
            cur.append(value[i + 1])
            i += 2
            continue
        if ch == ",":
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    out.append("".join(cur))
    return out


def _need(ctx: SearchContext | None, code: str, modifier: str) -> SearchContext:
    if ctx is None:
        raise FhirError(
            400,
            f"':{modifier}' on '{code}' needs the server's terminology and is not available in this interaction",
            code="not-supported",
            expression=[f"{code}:{modifier}"],
        )
    return ctx


def _param(rtype: str, code: str) -> SearchParam:
    try:
        return params_for(rtype)[code]
    except KeyError:
        raise FhirError(
            400,
            f"Unknown search parameter '{code}' for resource type '{rtype}'",
            code="not-supported",
            expression=[code],
        ) from None


def _token_terminology(p: SearchParam, modifier: str, raw: str, c, ctx: SearchContext | None) -> ColumnElement[bool]:
    """``:in`` (a ValueSet) or ``:above``/``:below`` (subsumption) on a token (FHIR R4 search.html#token)."""
    ctx = _need(ctx, p.code, modifier)
    if modifier == "in":
        return ctx.expand(raw).condition(c.system, c.code)
    system, _, code = raw.partition("|")
    if not system or not code:
        raise FhirError(
            400, f"':{modifier}' on '{p.code}' needs a value of the form system|code, got '{raw}'", expression=[p.code]
        )
    return ctx.subsumption(system, code, modifier).condition(c.system, c.code)


def _value_condition(
    p: SearchParam, modifier: str, raw: str, table, ctx: SearchContext | None = None
) -> ColumnElement[bool]:
    c = table.c
    t = p.type
    if t == "string":
        if modifier == "exact":
            return c.exact == raw
        pattern = like_escape(norm_string(raw)[:255])
        return c.value.like(("%" if modifier == "contains" else "") + pattern + "%", escape="\\")
    if t == "token":
        if modifier == "text":
            return c.text.like("%" + like_escape(norm_string(raw)) + "%", escape="\\")
        if modifier in ("in", "above", "below"):
            return _token_terminology(p, modifier, raw, c, ctx)
        if "|" in raw:
            system, code = raw.split("|", 1)
            conds = [c.system.is_(None) if system == "" else c.system == system]
            if code:
                conds.append(c.code == code)
            return and_(*conds)
        return c.code == raw
    if t == "uri":
        if modifier == "below":
            return c.value.like(like_escape(raw) + "%", escape="\\")
        if modifier == "above":
            return func.substr(raw, 1, func.length(c.value)) == c.value
        return c.value == raw
    if t == "date":
        return date_match((c.low, c.high), raw, p.code)
    if t in ("number", "quantity"):
        cond, unit = number_match(c.value, raw, p.code)
        if t == "quantity" and unit:
            system, code = (unit + [""])[:2] if len(unit) > 1 else ("", unit[0])
            if system:
                cond = and_(cond, c.system == system)
            if code:
                cond = and_(cond, c.code == code)
        return cond
    if t == "reference":
        return _reference_condition(p, modifier, raw)
    raise FhirError(400, f"Search on {t} parameter '{p.code}' is not supported", code="not-supported")


def _reference_condition(p: SearchParam, modifier: str, raw: str) -> ColumnElement[bool]:
    c = idx_reference.c
    if modifier == "identifier":
        system, _, value = raw.rpartition("|") if "|" in raw else ("", "", raw)
        cond = c.ident_value == value
        return and_(cond, c.ident_system == system) if system else cond
    ref = raw.split("/_history/", 1)[0]
    segs = ref.rstrip("/").split("/")
    if "://" in ref:
        by_url = c.url == raw
        if len(segs) >= 2 and segs[-2][:1].isupper():
            return or_(by_url, and_(c.target_type == segs[-2], c.target_id == segs[-1]))
        return by_url
    if len(segs) == 2:
        return and_(c.target_type == segs[0], c.target_id == segs[1])
    if modifier:
        return and_(c.target_type == modifier, c.target_id == ref)
    return c.target_id == ref


def _missing(rtype: str, p: SearchParam, raw: str, res) -> ColumnElement[bool]:
    table = INDEX_TABLES[p.type]
    has = res.c.pk.in_(select(table.c.res_pk).where(table.c.res_type == rtype, table.c.param == p.code))
    if raw not in ("true", "false"):
        raise FhirError(400, f"':missing' takes true or false, got '{raw}'", expression=[p.code])
    return not_(has) if raw == "true" else has


def criterion(
    rtype: str, key: str, raw_value: str, res=resources, ctx: SearchContext | None = None
) -> ColumnElement[bool]:
    """SQL condition on ``res`` (the resource table or an alias) for one query-string pair.

    ``ctx`` gives the session to the criteria that need one (terminology, ``:of-type``, composites of
    three components); without it they are a 400.
    """
    if key.startswith("_has:"):
        return _has(rtype, key, raw_value, res, ctx)
    head, _, chain = key.partition(".")
    code, _, modifier = head.partition(":")
    if code == "_id":
        ids = split_values(raw_value)
        cond = res.c.res_id.in_(ids)
        return not_(cond) if modifier == "not" else cond
    p = _param(rtype, code)
    if chain:
        return _chain(rtype, p, modifier, chain, raw_value, res, ctx)
    if modifier == "missing":
        if p.type == "composite" and len(p.components) > 2:
            raise FhirError(400, f"':missing' is not supported on '{code}'", code="not-supported", expression=[key])
        return _missing(rtype, p, raw_value, res)
    known = ("exact", "contains", "not", "text", "above", "below", "in", "not-in", "of-type")
    if (modifier and p.type != "reference" and modifier not in known) or (
        modifier in _TOKEN_ONLY and p.type != "token"
    ):
        raise FhirError(
            400,
            f"Modifier ':{modifier}' is not supported on parameter '{code}'",
            code="not-supported",
            expression=[key],
        )
    table = INDEX_TABLES.get(p.type)
    if table is None:
        raise FhirError(400, f"Search on {p.type} parameter '{code}' is not supported", code="not-supported")
    values = split_values(raw_value)
    if modifier == "of-type":
        pks = {pk for v in values for pk in matching.of_type_pks(_need(ctx, code, modifier), rtype, p, v)}
        return res.c.pk.in_(sorted(pks))
    if p.type == "composite" and len(p.components) > 2:
        return composite.long_condition(rtype, p, values, res, _need(ctx, code, "composite"), criterion)
    negated = modifier in ("not", "not-in")
    inner = {"not": "", "not-in": "in"}.get(modifier, modifier)
    if p.type == "composite":
        match = or_(*(composite.pair_condition(rtype, p, v) for v in values))
    else:
        match = or_(*(_value_condition(p, inner, v, table, ctx) for v in values))
    cond = res.c.pk.in_(select(table.c.res_pk).where(table.c.res_type == rtype, table.c.param == code, match))
    return not_(cond) if negated else cond


def _chain(
    rtype: str, p: SearchParam, modifier: str, chain: str, raw: str, res, ctx: SearchContext | None
) -> ColumnElement[bool]:
    if p.type != "reference":
        raise FhirError(400, f"Chaining needs a reference parameter; '{p.code}' is {p.type}", expression=[p.code])
    targets = [modifier] if modifier else list(p.target)
    if not targets:
        raise FhirError(400, f"Chained parameter '{p.code}' needs a type modifier", expression=[p.code])
    options = []
    for target in targets:
        try:
            _param(target, chain.partition(".")[0].partition(":")[0])
        except FhirError:
            continue
        sub = resources.alias()
        ids = select(sub.c.res_id).where(
            sub.c.res_type == target, sub.c.deleted == false(), criterion(target, chain, raw, sub, ctx)
        )
        options.append(and_(idx_reference.c.target_type == target, idx_reference.c.target_id.in_(ids)))
    if not options:
        raise FhirError(400, f"Unknown chained parameter '{chain}' for '{p.code}'", expression=[p.code])
    refs = select(idx_reference.c.res_pk).where(
        idx_reference.c.res_type == rtype, idx_reference.c.param == p.code, or_(*options)
    )
    return res.c.pk.in_(refs)


def _has(rtype: str, key: str, raw: str, res, ctx: SearchContext | None) -> ColumnElement[bool]:
    parts = key.split(":", 3)
    if len(parts) < 4:
        raise FhirError(400, f"'_has' needs the form _has:Type:reference:parameter, got '{key}'", expression=[key])
    _, src_type, ref_code, rest = parts
    ref = _param(src_type, ref_code)
    if ref.type != "reference":
        raise FhirError(400, f"'{ref_code}' of {src_type} is not a reference parameter", expression=[key])
    sub = resources.alias()
    sources = select(sub.c.pk).where(
        sub.c.res_type == src_type, sub.c.deleted == false(), criterion(src_type, rest, raw, sub, ctx)
    )
    ids = select(idx_reference.c.target_id).where(
        idx_reference.c.res_type == src_type,
        idx_reference.c.param == ref_code,
        idx_reference.c.target_type == rtype,
        idx_reference.c.res_pk.in_(sources),
    )
    return res.c.res_id.in_(ids)


def _sort_key(rtype: str, key: str) -> Col[Any]:
    desc = key.startswith("-")
    code = key.lstrip("-")
    if code == "_id":
        col = resources.c.res_id
    elif code == "_lastUpdated":
        col = resources.c.last_updated
    else:
        p = _param(rtype, code)
        table = INDEX_TABLES.get(p.type)
        if table is None or p.type == "composite":
            raise FhirError(400, f"Cannot sort on {p.type} parameter '{code}'", expression=["_sort"])
        column = {
            "string": "value",
            "token": "code",
            "reference": "target_id",
            "uri": "value",
            "date": "high" if desc else "low",
        }.get(p.type, "value")
        agg = func.max if desc else func.min
        col = (
            select(agg(table.c[column]))
            .where(table.c.res_pk == resources.c.pk, table.c.param == code)
            .scalar_subquery()
        )
    return col.desc().nulls_last() if desc else col.asc().nulls_last()


def build_query(rtype: str | None, items: list[tuple[str, str]], ctx: SearchContext | None = None) -> Select:
    """Ordered ``SELECT pk`` of live resources matching the criteria in ``items``.

    ``items`` are the query-string pairs; result parameters (``_count``, ``_include``...) are
    ignored here except ``_sort``. ``rtype`` None searches every type (only ``_id``,
    ``_lastUpdated`` and other Resource-level parameters are valid then). ``ctx`` (a
    :class:`SearchContext` on the request's session) enables ``:in``/``:not-in``/``:above``/``:below``
    on tokens, ``:of-type`` and three-component composites; it also collects warnings.
    """
    q = select(resources.c.pk).where(resources.c.deleted == false())
    if rtype:
        q = q.where(resources.c.res_type == rtype)
    sort: list[str] = []
    for key, value in items:
        if key == "_sort":
            sort += [s for s in value.split(",") if s]
            continue
        if key in RESULT_PARAMS or key.split(":", 1)[0] in ("_include", "_revinclude"):
            continue
        q = q.where(criterion(rtype, key, value, resources, ctx) if rtype else _system_criterion(key, value, ctx))
    order = [_sort_key(rtype or "Resource", s) for s in sort]
    return q.order_by(*order, resources.c.pk)


def _system_criterion(key: str, value: str, ctx: SearchContext | None) -> ColumnElement[bool]:
    code = key.split(":", 1)[0]
    if code == "_id":
        return resources.c.res_id.in_(split_values(value))
    if code == "_type":
        return resources.c.res_type.in_(split_values(value))
    if code in params_for("Resource"):
        table = INDEX_TABLES[params_for("Resource")[code].type]
        p = params_for("Resource")[code]
        match = or_(*(_value_condition(p, "", v, table, ctx) for v in split_values(value)))
        return resources.c.pk.in_(select(table.c.res_pk).where(table.c.param == code, match))
    raise FhirError(400, f"Unknown system-level search parameter '{code}'", expression=[key])


__all__ = ["MODIFIERS", "PREFIXES", "Criterion", "SearchContext", "build_query", "criterion", "split_values", "true"]
