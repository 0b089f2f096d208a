"""Error responses: RFC 9457 problem+json, or a FHIR OperationOutcome under ``/fhir``.

Every error reaching the client says what is wrong; internal errors never leak a traceback.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from smartcare.core.errors import DATABASE_UNAVAILABLE, SmartcareError

log = logging.getLogger("smartcare.errors")

_FHIR_CODES = {400: "invalid", 401: "security", 403: "forbidden", 404: "not-found", 405: "not-supported",
               409: "conflict", 410: "deleted", 412: "conflict", 413: "too-costly", 422: "processing",
               503: "transient"}


def problem_response(request_path: str, status: int, title: str, detail: str,
                     expression: list[str] | None = None) -> JSONResponse:
    """A problem+json body (RFC 9457), or an OperationOutcome for FHIR paths."""
    if request_path.startswith("/fhir"):
        issue = {"severity": "error", "code": _FHIR_CODES.get(status, "exception"), "diagnostics": detail}
        if expression:
            issue["expression"] = expression
        return JSONResponse({"resourceType": "OperationOutcome", "issue": [issue]}, status_code=status,
                            media_type="application/fhir+json")
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": request_path}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(SmartcareError)
    async def _smartcare(request: Request, exc: SmartcareError):
        return problem_response(request.url.path, exc.status, exc.title, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        errs = exc.errors()
        bad_json = [e for e in errs if e.get("type") == "json_invalid"]
        if bad_json:  # the body is not JSON at all: a 400 naming where, not a field-validation 422
            where = bad_json[0].get("ctx", {}).get("error", "")
            return problem_response(request.url.path, 400, "Malformed JSON body",
                                    f"the request body is not valid JSON{': ' + where if where else ''} "
                                    f"(at character {bad_json[0].get('loc', ('', '?'))[-1]})")
        parts = ["/".join(str(p) for p in e.get("loc", ())) + ": " + e.get("msg", "") for e in errs]
        exprs = [".".join(str(p) for p in e.get("loc", ())[1:]) for e in errs]
        return problem_response(request.url.path, 422, "Request validation failed", "; ".join(parts),
                                [x for x in exprs if x])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return problem_response(request.url.path, exc.status_code, detail, detail)

    @app.exception_handler(OperationalError)
    async def _database(request: Request, exc: OperationalError):
        # The message may quote SQL parameters (patient data): log and answer with the class name only.
        log.error("database unavailable",
                  extra={"fields": {"path": request.url.path, "error": type(exc.orig).__name__}})
        return problem_response(request.url.path, 503, "Database unavailable", DATABASE_UNAVAILABLE)

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception):
        log.error("unhandled error",
                  extra={"fields": {"path": request.url.path, "error": type(exc).__name__}})
        return problem_response(request.url.path, 500, "Internal server error",
                                "the server failed to process the request; see the server log")


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, checking Content-Length and the stream."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        detail = f"request body exceeds the limit of {self.max_bytes} bytes (SMARTCARE_MAX_REQUEST_BYTES)"
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await problem_response(scope["path"], 413, "Request too large", detail)(scope, receive, send)
            return
        seen = {"n": 0}

        async def limited_receive():
            message = await receive()
            if message["type"] == "http.request":
                seen["n"] += len(message.get("body", b""))
                if seen["n"] > self.max_bytes:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            await problem_response(scope["path"], 413, "Request too large", detail)(scope, receive, send)


class _TooLarge(Exception):
    pass
