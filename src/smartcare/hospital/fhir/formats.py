"""Content negotiation for the FHIR REST API (FHIR R4 http.html#mime, "Content Types and encodings").

- Request bodies: ``application/fhir+json`` (or any JSON type) and ``application/fhir+xml``,
  ``application/xml`` or ``text/xml``.
- Responses: ``_format`` wins over ``Accept``. ``_format`` accepts ``json``, ``xml`` and the JSON
  and XML mime types; anything else is 406. From ``Accept`` the XML or JSON type with the highest
  ``q`` is chosen (JSON on a tie, for ``*/*`` and when neither is named). ``_pretty=true`` indents.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request, Response

from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.xml import FhirXmlError, from_xml, to_xml

FHIR_JSON = "application/fhir+json"
FHIR_XML = "application/fhir+xml"
JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json", "application/json+fhir"})
XML_FORMATS = frozenset({"xml", "text/xml", "application/xml", "application/fhir+xml", "application/xml+fhir"})
# A browser asks for text/html first and application/xml at q=0.9; it is shown JSON, which it renders
# readably (HAPI serves an HTML page there). Explicit FHIR clients never send text/html.
_ANY = frozenset({"*/*", "application/*", "text/html"})


def _mime(value: str) -> str:
    # An unencoded "+" in a query string arrives as a space: "application/fhir xml".
    return value.split(";")[0].strip().lower().replace(" ", "+")


def wants_xml(request: Request) -> bool:
    """Whether the response should be FHIR XML; raises 406 for an unsupported ``_format``."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        mime = _mime(fmt)
        if mime in XML_FORMATS:
            return True
        if mime in JSON_FORMATS:
            return False
        raise FhirError(
            406,
            f"_format {fmt!r} is not supported; use json, xml, {FHIR_JSON} or {FHIR_XML}",
            expression=["_format"],
        )
    best_json = best_xml = -1.0
    for part in request.headers.get("accept", "").split(","):
        mime, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            key, _, val = p.partition("=")
            if key.strip() == "q":
                try:
                    q = float(val)
                except ValueError:
                    q = 0.0
        mime = mime.lower()
        if mime in XML_FORMATS:
            best_xml = max(best_xml, q)
        elif mime in JSON_FORMATS or mime in _ANY:
            best_json = max(best_json, q)
    return best_xml > 0 and best_xml > best_json


def render(request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` (a resource dict) as the negotiated FHIR representation."""
    pretty = request.query_params.get("_pretty") == "true"
    try:
        xml = wants_xml(request)
    except FhirError:
        xml = False  # the 406 itself is reported in JSON
    _keep_format_in_links(request, body)
    if xml:
        try:
            return Response(to_xml(body, pretty=pretty), status_code=status, media_type=FHIR_XML, headers=headers)
        except FhirXmlError as err:
            if body.get("resourceType") != "OperationOutcome":  # an error is always delivered, in JSON if need be
                raise FhirError(406, f"The response cannot be represented in FHIR XML: {err}") from None
    return Response(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False, indent=2 if pretty else None),
        status_code=status,
        media_type=FHIR_JSON,
        headers=headers,
    )


def _keep_format_in_links(request: Request, body: Any) -> None:
    """Paging links of a Bundle answer carry the request's ``_format``/``_pretty``, so following ``next``
    keeps the representation the client asked for in the query."""
    keep = [(k, request.query_params[k]) for k in ("_format", "_pretty") if k in request.query_params]
    if not keep or not isinstance(body, dict) or body.get("resourceType") != "Bundle":
        return
    for link in body.get("link") or []:
        url = link.get("url", "")
        extra = urlencode([(k, v) for k, v in keep if f"{k}=" not in url])
        if extra:
            link["url"] = url + ("&" if "?" in url else "?") + extra


def parse_body(request: Request, body: bytes, what: str = "resource") -> Any:
    """The request body as a FHIR JSON value (XML bodies are converted); 400 names the problem."""
    ctype = _mime(request.headers.get("content-type", ""))
    if ctype in XML_FORMATS:
        if not body.strip():
            raise FhirError(400, f"The request needs an XML {what} body", code="required")
        try:
            return from_xml(body)
        except FhirXmlError as err:
            raise FhirError(400, str(err), code="structure", expression=[err.path] if err.path else None) from None
    if ctype and ctype not in JSON_FORMATS and ctype != "application/json-patch+json":
        raise FhirError(415, f"Content-Type {ctype} is not supported; send {FHIR_JSON} or {FHIR_XML}",
                        code="not-supported", expression=["Content-Type"])
    if not body:
        raise FhirError(400, f"The request needs a JSON {what} body", code="required")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        where = f" at line {err.lineno} column {err.colno}" if isinstance(err, json.JSONDecodeError) else ""
        raise FhirError(400, f"Malformed JSON{where}: {err}", code="structure") from None
