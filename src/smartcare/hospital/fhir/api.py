"""FHIR R4 REST routes (mounted at ``/fhir``): thin handlers over :mod:`store`, :mod:`searchset` and
:mod:`bundle`. Every error is an OperationOutcome (FHIR R4 http.html)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.exc import OperationalError

from smartcare import __version__
from smartcare.core.errors import DATABASE_UNAVAILABLE
from smartcare.hospital.fhir import searchset
from smartcare.hospital.fhir.bundle import BundleProcessor
from smartcare.hospital.fhir.capability import capability_statement
from smartcare.hospital.fhir.compartment import in_patient_compartment, patient_compartment_query, references_patient
from smartcare.hospital.fhir.deps import AccessDep, BodyDep, StoreDep
from smartcare.hospital.fhir.formats import parse_body, render, wants_xml
from smartcare.hospital.fhir.outcome import FhirError, information
from smartcare.hospital.fhir.search import build_query
from smartcare.hospital.fhir.security import Access, write_audit
from smartcare.hospital.fhir.store import Stored, WriteResult
from smartcare.hospital.fhir.terminology import SearchContext
from smartcare.hospital.fhir.validation import known_types
from smartcare.hospital.fhir.values import http_date

FHIR_PREFIX = "/fhir"  # where the service mounts this router
log = logging.getLogger(__name__)


class FhirRoute(APIRoute):
    """Turns :class:`FhirError` (and anything unexpected) into an OperationOutcome response."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def wrapped(request: Request) -> Response:
            try:
                response = await handler(request)
            except FhirError as err:
                response = render(request, err.outcome(), err.status)
            except OperationalError as err:  # its message may quote SQL parameters: class name only
                log.error("FHIR %s %s: database unavailable (%s)", request.method, request.url.path,
                          type(err.orig).__name__)
                response = render(request, FhirError(503, DATABASE_UNAVAILABLE, code="transient").outcome(), 503)
            except Exception as err:  # never leak a traceback (or patient data) to the client or the log
                log.error("FHIR %s %s failed: %s", request.method, request.url.path, type(err).__name__)
                response = render(request, FhirError(500, "Internal server error").outcome(), 500)
            access = getattr(request.state, "fhir_access", None)
            if access is not None and access.audit and response.status_code != 503:
                await run_in_threadpool(write_audit, access, request.method, response.status_code)
            return response

        return wrapped


router = APIRouter(route_class=FhirRoute)


def _include_export() -> None:
    from smartcare.hospital.fhir.export import router as export_router

    # Declared before "/{rtype}/..." so that "$export" paths are not taken for resource types.
    for route in export_router.routes:
        router.add_api_route(route.path, route.endpoint, methods=list(route.methods))


_include_export()


def _json(request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as the negotiated representation (JSON or XML, :mod:`formats`)."""
    return render(request, body, status, headers)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + FHIR_PREFIX


def _check_format(request: Request) -> None:
    wants_xml(request)  # 406 for an unsupported _format


def _items(request: Request) -> list[tuple[str, str]]:
    _check_format(request)
    return [(k, v) for k, v in request.query_params.multi_items() if k not in ("_format", "_pretty")]


def _type(rtype: str) -> str:
    if rtype not in known_types():
        raise FhirError(404, f"Unknown resource type '{rtype}'", code="not-supported")
    return rtype


def _parse(request: Request, body: bytes, what: str = "resource") -> Any:
    return parse_body(request, body, what)


def _prefer(request: Request, key: str) -> str | None:
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            k, _, v = item.strip().partition("=")
            if k == key:
                return v.strip('"')
    return None


def _headers(stored: Stored, base: str, location: bool = False) -> dict[str, str]:
    h = {"ETag": stored.etag, "Last-Modified": http_date(stored.last_updated)}
    url = f"{base}/{stored.res_type}/{stored.res_id}/_history/{stored.version}"
    h["Content-Location"] = url
    if location:
        h["Location"] = url
    return h


def _written(request: Request, res: WriteResult, status: int) -> Response:
    headers = _headers(res.stored, _base(request), location=status == 201)
    mode = _prefer(request, "return") or "representation"
    if mode == "minimal":
        return Response(status_code=status, headers=headers)
    if mode == "OperationOutcome":
        what = "created" if res.created else ("updated" if res.changed else "matched an existing resource")
        outcome = information(f"{res.stored.res_type}/{res.stored.res_id} {what}")
        return _json(request, outcome, status, headers)
    return _json(request, res.stored.content, status, headers)


def _may_read(access: Access, store: StoreDep, rtype: str, rid: str) -> None:
    pid = access.check(rtype, "read", f"{rtype}/{rid}")
    if pid and not in_patient_compartment(store.session, rtype, rid, pid):
        raise FhirError(403, f"{rtype}/{rid} is outside the compartment of the token's patient")


def _may_write(access: Access, rtype: str, resource: Any, target: str, action: str = "write") -> None:
    pid = access.check(rtype, action, target)
    if pid and not references_patient(resource, pid):
        raise FhirError(403, f"A patient/ scope may only write resources of Patient/{pid}")


def _search(
    request: Request, store: StoreDep, rtype: str | None, items: list[tuple[str, str]], access: Access
) -> Response:
    pid = access.check(rtype, "search", rtype or "")
    if _prefer(request, "handling") == "lenient":
        kept = []
        for item in items:
            try:
                build_query(rtype, [item], SearchContext(store.session))
                kept.append(item)
            except FhirError:
                continue
        items = kept
    within = patient_compartment_query(pid) if pid else None
    bundle = searchset.search_bundle(store.session, rtype, items, _base(request), within=within)
    store.commit()
    return _json(request, bundle)


@router.get("/metadata")
def metadata(request: Request) -> Response:
    _check_format(request)
    return _json(request, capability_statement(_base(request), __version__))


@router.get("/")
@router.get("")
def system_search(request: Request, store: StoreDep, access: AccessDep) -> Response:
    items = _items(request)
    params = dict(items)
    if "_getpages" in params:
        offset = params.get("_getpagesoffset", "0")
        count = params.get("_count")
        if not offset.isdigit() or (count is not None and not count.isdigit()):
            raise FhirError(400, "_getpagesoffset and _count must be non-negative integers")
        bundle = searchset.page_bundle(
            store.session, params["_getpages"], int(offset), int(count) if count else None, _base(request)
        )
        access.check(None, "search")
        return _json(request, bundle)
    return _search(request, store, None, items, access)


@router.post("/")
@router.post("")
def batch_or_transaction(request: Request, store: StoreDep, body: BodyDep, access: AccessDep) -> Response:
    _check_format(request)
    bundle = _parse(request, body, "Bundle")
    _may_process(access, bundle)
    processor = BundleProcessor(store, _base(request), return_resources=_prefer(request, "return") != "minimal")
    try:
        result = processor.run(bundle)
        store.commit()
    except Exception:
        store.rollback()
        raise
    return _json(request, result)


def _may_process(access: Access, bundle: Any) -> None:
    for e in bundle.get("entry") or [] if isinstance(bundle, dict) else []:
        req = e.get("request") if isinstance(e, dict) else None
        if not isinstance(req, dict) or not isinstance(req.get("url"), str):
            continue  # the Bundle checks report malformed entries
        rtype = req["url"].split("?")[0].split("/")[0] or None
        if req.get("method") in ("GET", "HEAD"):
            if access.check(rtype, "read", req["url"]):
                raise FhirError(403, "A patient/ scope cannot read through a Bundle")
        elif req.get("method") == "DELETE":
            if access.check(rtype, "delete", req["url"]):
                raise FhirError(403, "A patient/ scope cannot delete through a Bundle")
        else:
            _may_write(access, rtype, e.get("resource"), req["url"])


def _history(request: Request, store: StoreDep, rtype: str | None, rid: str | None, access: Access) -> Response:
    if access.check(rtype, "read", "/".join(p for p in (rtype, rid) if p)):
        raise FhirError(403, "History needs a user/ or system/ scope")
    params = dict(_items(request))
    try:
        count = min(int(params.get("_count", searchset.DEFAULT_COUNT)), searchset.MAX_COUNT)
        offset = int(params.get("_offset", 0))
    except ValueError:
        raise FhirError(400, "_count and _offset must be integers", expression=["_count"]) from None
    versions, more = store.history(
        rtype, rid, since=params.get("_since"), at=params.get("_at"), count=count, offset=offset
    )
    base = _base(request)
    path = "/".join(p for p in (rtype, rid, "_history") if p)
    self_url = f"{base}/{path}" + (f"?{request.url.query}" if request.url.query else "")
    return _json(request, searchset.history_bundle(versions, more, base, self_url, offset, count))


@router.get("/_history")
def history_system(request: Request, store: StoreDep, access: AccessDep) -> Response:
    return _history(request, store, None, None, access)


@router.get("/{rtype}")
def search_type(rtype: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    return _search(request, store, _type(rtype), _items(request), access)


@router.post("/{rtype}/_search")
async def search_post(rtype: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    form = await request.form()
    items = _items(request) + [(k, str(v)) for k, v in form.multi_items()]
    return _search(request, store, _type(rtype), items, access)


@router.post("/{rtype}")
def create(rtype: str, request: Request, store: StoreDep, body: BodyDep, access: AccessDep) -> Response:
    _check_format(request)
    resource = _parse(request, body)
    if isinstance(resource, dict) and resource.get("resourceType") != _type(rtype):
        raise FhirError(
            400,
            f"Resource type {resource.get('resourceType')!r} does not match the URL type {rtype}",
            code="structure",
            expression=["resourceType"],
        )
    _may_write(access, rtype, resource, rtype, "create")
    res = store.create(resource, if_none_exist=request.headers.get("if-none-exist"))
    store.commit()
    return _written(request, res, 201 if res.created else 200)


@router.put("/{rtype}")
def conditional_update(rtype: str, request: Request, store: StoreDep, body: BodyDep, access: AccessDep) -> Response:
    _check_format(request)
    if not request.url.query:
        raise FhirError(400, "PUT on a type needs search criteria (conditional update) or an id in the URL")
    resource = _parse(request, body)
    _may_write(access, _type(rtype), resource, rtype)
    res = store.conditional_update(rtype, request.url.query, resource, if_match=request.headers.get("if-match"))
    store.commit()
    return _written(request, res, 201 if res.created else 200)


@router.delete("/{rtype}")
def conditional_delete(rtype: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    if not request.url.query:
        raise FhirError(400, "DELETE on a type needs search criteria (conditional delete)")
    if access.check(_type(rtype), "delete", rtype):
        raise FhirError(403, "Conditional delete needs a user/ or system/ scope")
    store.conditional_delete(rtype, request.url.query)
    store.commit()
    return Response(status_code=204)


@router.get("/{rtype}/_history")
def history_type(rtype: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    return _history(request, store, _type(rtype), None, access)


@router.get("/Patient/{rid}/$everything")
def everything(rid: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    items = [(k, v) for k, v in _items(request) if k in ("_count", "_summary", "_elements", "_total")]
    _may_read(access, store, "Patient", rid)
    pks = store.everything_pks(rid)
    bundle = searchset.search_bundle(store.session, "Patient", items, _base(request), pks=pks)
    store.commit()
    return _json(request, bundle)


@router.get("/{rtype}/{rid}")
def read(rtype: str, rid: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    items = _items(request)
    _may_read(access, store, _type(rtype), rid)
    stored = store.read(rtype, rid)
    headers = _headers(stored, _base(request))
    if request.headers.get("if-none-match") == stored.etag:
        return Response(status_code=304, headers=headers)
    opts = dict(items)
    elements = opts.get("_elements")
    content = searchset.shape(stored.content, opts.get("_summary"), elements.split(",") if elements else None)
    return _json(request, content, 200, headers)


@router.put("/{rtype}/{rid}")
def update(rtype: str, rid: str, request: Request, store: StoreDep, body: BodyDep, access: AccessDep) -> Response:
    _check_format(request)
    resource = _parse(request, body)
    _may_write(access, _type(rtype), resource, f"{rtype}/{rid}")
    res = store.update(rtype, rid, resource, if_match=request.headers.get("if-match"))
    store.commit()
    return _written(request, res, 201 if res.created else 200)


@router.patch("/{rtype}/{rid}")
def patch(rtype: str, rid: str, request: Request, store: StoreDep, body: BodyDep, access: AccessDep) -> Response:
    _check_format(request)
    ctype = request.headers.get("content-type", "")
    if "json-patch" not in ctype and "json" not in ctype:
        raise FhirError(415, "PATCH needs Content-Type application/json-patch+json", expression=["Content-Type"])
    _may_write(access, _type(rtype), store.read(rtype, rid).content, f"{rtype}/{rid}")
    res = store.patch(rtype, rid, _parse(request, body, "JSON Patch"), if_match=request.headers.get("if-match"))
    store.commit()
    return _written(request, res, 200)


@router.delete("/{rtype}/{rid}")
def delete(rtype: str, rid: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    if access.check(_type(rtype), "delete", f"{rtype}/{rid}") and not in_patient_compartment(
        store.session, rtype, rid, access.principal.patient
    ):
        raise FhirError(403, f"{rtype}/{rid} is outside the compartment of the token's patient")
    stored = store.delete(rtype, rid, if_match=request.headers.get("if-match"))
    store.commit()
    headers = {"ETag": stored.etag} if stored else {}
    return Response(status_code=204, headers=headers)


@router.get("/{rtype}/{rid}/_history")
def history_instance(rtype: str, rid: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    return _history(request, store, _type(rtype), rid, access)


@router.get("/{rtype}/{rid}/_history/{vid}")
def vread(rtype: str, rid: str, vid: str, request: Request, store: StoreDep, access: AccessDep) -> Response:
    _check_format(request)
    _may_read(access, store, _type(rtype), rid)
    stored = store.vread(rtype, rid, vid)
    return _json(request, stored.content, 200, _headers(stored, _base(request)))
