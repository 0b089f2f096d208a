"""Searchset Bundles: paging snapshots, ``_include``/``_revinclude``, ``_summary``/``_elements``/``_total``.

The first page of a search stores the ordered list of matching keys (``fhir_search``); ``next``/
``previous`` links point at that snapshot (``?_getpages=ID&_getpagesoffset=N``), so pages are
stable under concurrent writes and no page re-runs the query or a COUNT (FHIR R4 search.html#count).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from functools import cache
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, false, insert, select, tuple_
from sqlalchemy.orm import Session

from smartcare.hospital.fhir import search
from smartcare.hospital.fhir.db import idx_reference, resources, searches
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.searchparams import params_for
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.values import instant, now

DEFAULT_COUNT = 20  # page size when _count is absent
MAX_COUNT = 1000  # largest page served
SNAPSHOT_TTL = timedelta(hours=1)  # how long paging links stay valid
MAX_ITERATE = 4  # rounds of _include:iterate / _revinclude:iterate
_SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


@cache
def summary_elements(rtype: str) -> frozenset[str] | None:
    """JSON names of the ``isSummary`` elements of ``rtype`` (from the R4B models), None if unknown."""
    try:
        from fhir.resources.R4B import get_fhir_model_class

        cls = get_fhir_model_class(rtype)
    except (KeyError, ValueError):
        return None
    names = {"resourceType", "id", "meta"}
    for name, field in cls.model_fields.items():
        if (field.json_schema_extra or {}).get("summary_element_property"):
            names.add(field.alias or name)
    return frozenset(names)


def _subsetted(content: dict[str, Any], keep) -> dict[str, Any]:
    out = {k: v for k, v in content.items() if keep(k)}
    meta = dict(out.get("meta") or {})
    meta["tag"] = [*meta.get("tag", []), _SUBSETTED]
    out["meta"] = meta
    return out


def shape(content: dict[str, Any], summary: str | None, elements: list[str] | None) -> dict[str, Any]:
    """Apply ``_summary`` (true|text|data|false) and ``_elements`` to one resource."""
    if summary == "true":
        names = summary_elements(content["resourceType"])
        return _subsetted(content, lambda k: names is None or k in names)
    if summary == "text":
        return _subsetted(content, lambda k: k in ("resourceType", "id", "meta", "text"))
    if summary == "data":
        return _subsetted(content, lambda k: k != "text")
    if elements:
        keep = {"resourceType", "id", "meta", *elements}
        return _subsetted(content, lambda k: k in keep)
    return content


def _options(items: list[tuple[str, str]]) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "include": [],
        "revinclude": [],
        "summary": None,
        "elements": None,
        "total": "accurate",
        "count": DEFAULT_COUNT,
    }
    for key, value in items:
        name, _, mod = key.partition(":")
        if name in ("_include", "_revinclude"):
            opts[name[1:]].append([value, mod in ("iterate", "recurse")])
        elif name == "_summary":
            if value not in ("true", "false", "text", "data", "count"):
                raise FhirError(
                    400,
                    f"_summary must be true, false, text, data or count, not '{value}'",
                    expression=["_summary"],
                )
            opts["summary"] = value
        elif name == "_elements":
            opts["elements"] = [e.split(".")[-1] for e in value.split(",") if e]
        elif name == "_total":
            if value not in ("none", "estimate", "accurate"):
                raise FhirError(400, f"_total must be none, estimate or accurate, not '{value}'", expression=["_total"])
            opts["total"] = value
        elif name == "_count":
            if not value.isdigit():
                raise FhirError(400, f"_count must be a non-negative integer, not '{value}'", expression=["_count"])
            opts["count"] = min(int(value), MAX_COUNT)
    return opts


def _fetch(session: Session, pks: list[int]) -> list[Any]:
    if not pks:
        return []
    rows = {r.pk: r for r in session.execute(select(resources).where(resources.c.pk.in_(pks)))}
    return [rows[pk] for pk in pks if pk in rows and not rows[pk].deleted]


def _include_targets(session: Session, rows: list[Any], spec: str) -> list[Any]:
    parts = spec.split(":")
    if spec == "*" or (len(parts) >= 2 and parts[1] == "*"):
        conds = [idx_reference.c.res_pk.in_([r.pk for r in rows])]
    else:
        if len(parts) < 2:
            raise FhirError(400, f"_include must be Type:param[:target], not '{spec}'", expression=["_include"])
        src, code = parts[0], parts[1]
        search._param(src, code)
        conds = [
            idx_reference.c.res_pk.in_([r.pk for r in rows if r.res_type == src]),
            idx_reference.c.param == code,
        ]
        if len(parts) > 2:
            conds.append(idx_reference.c.target_type == parts[2])
    keys = {
        (t, i)
        for t, i in session.execute(select(idx_reference.c.target_type, idx_reference.c.target_id).where(*conds))
        if t and i
    }
    if not keys:
        return []
    return list(
        session.execute(
            select(resources).where(
                tuple_(resources.c.res_type, resources.c.res_id).in_(sorted(keys)),
                resources.c.deleted == false(),
            )
        )
    )


def _revinclude_sources(session: Session, rows: list[Any], spec: str) -> list[Any]:
    parts = spec.split(":")
    if len(parts) < 2:
        raise FhirError(400, f"_revinclude must be Type:param[:target], not '{spec}'", expression=["_revinclude"])
    src, code = parts[0], parts[1]
    if code != "*":
        search._param(src, code)
    keys = sorted({(r.res_type, r.res_id) for r in rows if len(parts) < 3 or r.res_type == parts[2]})
    if not keys:
        return []
    conds = [
        idx_reference.c.res_type == src,
        tuple_(idx_reference.c.target_type, idx_reference.c.target_id).in_(keys),
    ]
    if code != "*":
        conds.append(idx_reference.c.param == code)
    refs = select(idx_reference.c.res_pk).where(*conds)
    return list(session.execute(select(resources).where(resources.c.pk.in_(refs), resources.c.deleted == false())))


def included(session: Session, matches: list[Any], opts: dict[str, Any]) -> list[Any]:
    """Resources pulled in by ``_include``/``_revinclude`` (with ``:iterate``), minus the matches."""
    seen = {r.pk for r in matches}
    out: list[Any] = []
    frontier = matches
    for round_no in range(MAX_ITERATE + 1):
        found: list[Any] = []
        for kind, fn in (("include", _include_targets), ("revinclude", _revinclude_sources)):
            for spec, iterate in opts[kind]:
                if round_no == 0 or iterate:
                    found += fn(session, frontier, spec)
        frontier = []
        for row in found:
            if row.pk not in seen:
                seen.add(row.pk)
                frontier.append(row)
        out += frontier
        if not frontier:
            break
    return out


def _entry(base: str, row: Any, mode: str, opts: dict[str, Any]) -> dict[str, Any]:
    return {
        "fullUrl": f"{base}/{row.res_type}/{row.res_id}",
        "resource": shape(row.content, opts["summary"], opts["elements"]),
        "search": {"mode": mode},
    }


def _render(
    session: Session,
    base: str,
    pks: list[int],
    total: int | None,
    opts: dict[str, Any],
    links: list[dict[str, str]],
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    matches = _fetch(session, pks)
    entries = [_entry(base, r, "match", opts) for r in matches]
    entries += [_entry(base, r, "include", opts) for r in included(session, matches, opts)]
    if warnings:  # FHIR R4 search.html#errors: an OperationOutcome entry with search.mode "outcome"
        issues = [{"severity": "warning", "code": "informational", "diagnostics": w} for w in dict.fromkeys(warnings)]
        entries.append(
            {"resource": {"resourceType": "OperationOutcome", "issue": issues}, "search": {"mode": "outcome"}}
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(now())},
        "type": "searchset",
    }
    if total is not None and opts["total"] != "none":
        bundle["total"] = total
    bundle["link"] = links
    if entries:  # R4 JSON: an array is never empty; no matches means no "entry" at all
        bundle["entry"] = entries
    return bundle


def _page_links(base: str, sid: str, offset: int, count: int, total: int) -> list[dict[str, str]]:
    def url(off: int) -> str:
        return f"{base}?" + urlencode({"_getpages": sid, "_getpagesoffset": off, "_count": count})

    links = []
    if offset + count < total:
        links.append({"relation": "next", "url": url(offset + count)})
    if offset > 0:
        links.append({"relation": "previous", "url": url(max(0, offset - count))})
    links.append({"relation": "first", "url": url(0)})
    if count:
        links.append({"relation": "last", "url": url(max(0, (total - 1) // count * count))})
    return links


def search_bundle(
    session: Session,
    rtype: str | None,
    items: list[tuple[str, str]],
    base: str,
    *,
    pks: list[int] | None = None,
    within: Any = None,
) -> dict[str, Any]:
    """Run a search and return the first page as a searchset Bundle (may store a paging snapshot).

    ``pks`` short-circuits the query with precomputed ordered keys (``$everything``); ``within`` is a
    ``SELECT pk`` the results must belong to.
    """
    opts = _options(items)
    if rtype:
        params_for(rtype)
    ctx = SearchContext(session)
    query = search.build_query(rtype, items, ctx)
    if within is not None:  # e.g. the patient compartment a patient/ scope confines the caller to
        query = query.where(resources.c.pk.in_(within.order_by(None)))
    self_url = f"{base}/{rtype}" if rtype else base
    self_link = [{"relation": "self", "url": self_url + ("?" + urlencode(items) if items else "")}]
    if opts["summary"] == "count":
        from sqlalchemy import func

        total = session.execute(select(func.count()).select_from(query.order_by(None).subquery())).scalar_one()
        return _render(session, base, [], total, {**opts, "total": "accurate"}, self_link, ctx.warnings)
    all_pks = pks if pks is not None else list(session.execute(query).scalars())
    count = opts["count"]
    total = len(all_pks)
    links = list(self_link)
    if total <= count:  # a single page: first and last are the page itself
        links += [{"relation": "first", "url": self_link[0]["url"]}, {"relation": "last", "url": self_link[0]["url"]}]
    else:
        sid = str(uuid.uuid4())
        created = now()
        session.execute(delete(searches).where(searches.c.created < created - SNAPSHOT_TTL))
        session.execute(
            insert(searches).values(
                search_id=sid, created=created, res_type=rtype, params=items, pks=all_pks, total=total
            )
        )
        links += [link for link in _page_links(base, sid, 0, count, total) if link["relation"] != "self"]
    return _render(session, base, all_pks[:count], total, opts, links, ctx.warnings)


def page_bundle(session: Session, sid: str, offset: int, count: int | None, base: str) -> dict[str, Any]:
    """A later page of a stored search snapshot; 410 when it has expired."""
    row = session.execute(select(searches).where(searches.c.search_id == sid)).first()
    if row is None:
        raise FhirError(410, f"Search {sid} has expired or never existed; run the search again")
    items = [tuple(i) for i in row.params]
    opts = _options(items)
    count = opts["count"] if count is None else min(count, MAX_COUNT)
    if offset < 0:
        raise FhirError(400, "_getpagesoffset must not be negative", expression=["_getpagesoffset"])
    links = [
        {
            "relation": "self",
            "url": f"{base}?" + urlencode({"_getpages": sid, "_getpagesoffset": offset, "_count": count}),
        }
    ]
    links += [link for link in _page_links(base, sid, offset, count, row.total)]
    return _render(session, base, row.pks[offset : offset + count], row.total, opts, links)


def history_bundle(
    versions: list[Any], more: bool, base: str, self_url: str, offset: int, count: int
) -> dict[str, Any]:
    """A history Bundle (newest first) with offset-based ``next``/``previous`` links."""
    entries = []
    for v in versions:
        method = "DELETE" if v.deleted else ("POST" if v.version == 1 else "PUT")
        entry: dict[str, Any] = {"fullUrl": f"{base}/{v.res_type}/{v.res_id}"}
        if v.content is not None:
            entry["resource"] = v.content
        entry["request"] = {
            "method": method,
            "url": f"{v.res_type}" if method == "POST" else f"{v.res_type}/{v.res_id}",
        }
        entry["response"] = {
            "status": "204 No Content" if v.deleted else ("201 Created" if v.version == 1 else "200 OK"),
            "etag": v.etag,
            "lastModified": instant(v.last_updated),
        }
        entries.append(entry)
    sep = "&" if "?" in self_url else "?"
    links = [{"relation": "self", "url": self_url}]
    if more:
        links.append({"relation": "next", "url": f"{self_url}{sep}_offset={offset + count}&_count={count}"})
    if offset:
        links.append({"relation": "previous", "url": f"{self_url}{sep}_offset={max(0, offset - count)}&_count={count}"})
    bundle = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": "history", "link": links}
    if entries:
        bundle["entry"] = entries
    return bundle
