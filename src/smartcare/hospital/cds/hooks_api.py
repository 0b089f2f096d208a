"""CDS Hooks 2.0 HTTP layer, mounted by the service at ``/cds-services``.

- ``GET  /cds-services``                 discovery
- ``POST /cds-services/{id}``            hook call -> ``{"cards": [...]}``; malformed -> 400 with the reason;
                                         needed FHIR data unobtainable -> 412 (CDS Hooks 2.0 §HTTP Status Codes)
- ``POST /cds-services/{id}/feedback``   card outcome feedback (CDS Hooks 2.0 §Feedback)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from smartcare.hospital.cds import hooks
from smartcare.hospital.cds.hooks_models import CDSResponse, DiscoveryResponse, Feedback

router = APIRouter(tags=["cds-hooks"])

_CACHE = hooks.CoordinationCache()
FEEDBACK: list[dict[str, Any]] = []  # in-memory log of card outcomes
FEEDBACK_MAX = 10_000


def get_http_client() -> Iterator[httpx.Client]:
    """HTTP client used to fetch missing prefetch from ``fhirServer`` (override in tests).

    A short connect timeout: an unreachable fhirServer is given up after one try (see ``prefetch``)."""
    with httpx.Client(timeout=httpx.Timeout(10.0, connect=3.0)) as client:
        yield client


def get_cache() -> hooks.CoordinationCache:
    return _CACHE


ClientDep = Annotated[httpx.Client, Depends(get_http_client)]
CacheDep = Annotated[hooks.CoordinationCache, Depends(get_cache)]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise hooks.HookRequestError(f"request body is not valid JSON: {err}") from None


@router.get("", response_model=DiscoveryResponse, response_model_exclude_none=True)
@router.get("/", response_model=DiscoveryResponse, response_model_exclude_none=True, include_in_schema=False)
def discovery() -> dict:
    """CDS Hooks discovery: the services and their prefetch templates."""
    return hooks.discovery()


@router.post("/{service_id}", response_model=CDSResponse, response_model_exclude_none=True)
async def call_service(service_id: str, request: Request, client: ClientDep, cache: CacheDep) -> dict:
    """Invoke a CDS service with a CDS Hooks request body."""
    body = await _json_body(request)
    # handle() may fetch prefetch over HTTP (sync httpx): run it in the thread pool so the event loop keeps
    # serving, e.g. when fhirServer is this very service
    return await run_in_threadpool(hooks.handle, service_id, body, client=client, cache=cache)


@router.post("/{service_id}/feedback")
async def feedback(service_id: str, request: Request) -> dict:
    """Record card outcomes (accepted / overridden) for a service."""
    hooks.service(service_id)
    body = await _json_body(request)
    try:
        parsed = Feedback.model_validate(body)
    except ValidationError as err:
        first = err.errors()[0]
        raise hooks.HookRequestError(f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None
    for item in parsed.feedback:
        FEEDBACK.append({"service": service_id, **item.model_dump(exclude_none=True)})
    del FEEDBACK[:-FEEDBACK_MAX]  # keep the most recent outcomes only
    return {"received": len(parsed.feedback)}
