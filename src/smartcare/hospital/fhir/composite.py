"""Composite search parameters (FHIR R4 search.html#composite).

Two components (``code-value-quantity=http://loinc.org|8480-6$gt130``) match rows of the composite
index table, one row per pair of values from the same base element. Three components (the four
MolecularSequence coordinate parameters, ``chromosome-window-coordinate=1$lt345$gt123``) are not in
that table: each component narrows through its own index, then the stored resources are checked in
Python (:mod:`matching`) so that all values come from one ``variant`` / ``referenceSeq``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import ColumnElement, and_, select

from smartcare.hospital.fhir import matching
from smartcare.hospital.fhir.db import INDEX_TABLES, resources
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.searchparams import SearchParam, params_for
from smartcare.hospital.fhir.sqlcmp import date_match, like_escape, number_match
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.values import norm_string


def pair_condition(rtype: str, p: SearchParam, raw: str) -> ColumnElement[bool]:
    """``token$value`` against a two-component composite row (FHIR R4 search.html#composite)."""
    c = INDEX_TABLES["composite"].c
    if len(p.components) != 2 or "$" not in raw:
        raise FhirError(400, f"Composite parameter '{p.code}' needs a value of the form a$b", expression=[p.code])
    left, right = raw.split("$", 1)
    system, _, code = left.rpartition("|") if "|" in left else ("", "", left)
    conds = [c.c1_code == code]
    if "|" in left:
        conds.append(c.c1_system.is_(None) if system == "" else c.c1_system == system)
    second = params_for(rtype)[p.components[1][0]]
    if second.type == "token":
        sys2, _, code2 = right.rpartition("|") if "|" in right else ("", "", right)
        conds.append(c.c2_code == code2)
        if sys2:
            conds.append(c.c2_system == sys2)
    elif second.type == "string":
        conds.append(c.c2_code.like(like_escape(norm_string(right)) + "%", escape="\\"))
    elif second.type == "date":
        conds.append(date_match((c.c2_low, c.c2_high), right, p.code))
    else:  # quantity or number
        cond, unit = number_match(c.c2_value, right, p.code)
        conds.append(cond)
        if len(unit) == 2 and unit[0]:
            conds.append(c.c2_system == unit[0])
        if unit and unit[-1]:
            conds.append(c.c2_code == unit[-1])
    return and_(*conds)


def long_condition(
    rtype: str, p: SearchParam, values: list[str], res, ctx: SearchContext, criterion: Callable[..., Any]
) -> ColumnElement[bool]:
    """A composite of three components (``a$b$c``, the MolecularSequence coordinates): each component
    narrows through its own index with ``criterion`` (:func:`search.criterion`), then
    :func:`matching.composite_pks` keeps the resources where one base element matches them all."""
    pks: list[int] = []
    for value in values:
        parts = value.split("$")
        if len(parts) != len(p.components):
            names = "$".join(code for code, _ in p.components)
            raise FhirError(
                400, f"Composite parameter '{p.code}' needs a value of the form {names}", expression=[p.code]
            )
        narrowed = [
            criterion(rtype, code, part, resources, ctx) for (code, _), part in zip(p.components, parts, strict=True)
        ]
        candidates = select(resources.c.pk).where(resources.c.res_type == rtype, *narrowed)
        pks += matching.composite_pks(ctx, rtype, p, parts, candidates)
    return res.c.pk.in_(sorted(set(pks)))
