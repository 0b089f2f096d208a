"""A small FHIR TestScript runner (FHIR R4 testscript.html) for this server's conformance tests.

It runs ``setup``/``test``/``teardown`` actions against any httpx-style client (a FastAPI
TestClient or ``httpx.Client(base_url=...)``) and reports pass/fail per assert. Supported:
operations read/vread/create/update/delete/search/history (by ``url``, ``params`` or
``targetId``), fixtures, ``responseId``, variables (``defaultValue``, ``headerField``, ``path``,
``expression``, or caller-supplied values for ``hint``-only variables) and the asserts
``response``/``responseCode``/``headerField``/``contentType``/``resource``/``validateProfileId``/
``path``/``expression``/``compareToSource*``/``minimumId``/``navigationLinks``/``requestURL``/
``requestMethod``.

Formats: an operation's ``accept`` and ``contentType`` (``xml``, ``json`` or a mime type) set the
``Accept`` header and the request body's encoding (FHIR XML through :mod:`xml`); responses are read
as JSON or XML by their ``Content-Type``, and fixtures may be JSON dicts or JSON/XML text. Simple
XPath ``path`` values (``fhir:Patient/fhir:name/fhir:family/@value``) are translated to FHIRPath
and evaluated on the JSON form. As other runners do (Touchstone, Crucible), an ``update`` sends the
fixture with its id set to the target id.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fhirpathpy import evaluate as fp_evaluate
from fhirpathpy.models import models as fp_models

from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.validation import validate
from smartcare.hospital.fhir.xml import FhirXmlError, from_xml, to_xml

RESPONSE_CODES = {
    "okay": 200,
    "created": 201,
    "noContent": 204,
    "notModified": 304,
    "bad": 400,
    "forbidden": 403,
    "notFound": 404,
    "methodNotAllowed": 405,
    "conflict": 409,
    "gone": 410,
    "preconditionFailed": 412,
    "unprocessable": 422,
}
_VAR = re.compile(r"\$\{(\w+)\}")
# TestScript format codes (R4 operation.accept / contentType and assert.contentType) -> mime type.
MIME = {"xml": "application/fhir+xml", "json": "application/fhir+json", "ttl": "application/fhir+turtle"}


def mime_type(code: str) -> str:
    """``xml`` -> ``application/fhir+xml``; mime types pass through (without parameters)."""
    return MIME.get(code, code.split(";")[0].strip().lower())


def _header(headers: dict[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def parse_fixture(raw: Any) -> Any:
    """A fixture as a JSON dict: dicts pass through, text or bytes are parsed as FHIR XML or JSON."""
    if isinstance(raw, bytes | str):
        xml = raw.lstrip()[:1] in ("<", b"<", b"\xef", b"\xff", b"\xfe")  # "<" or a byte-order mark
        return from_xml(raw) if xml else json.loads(raw)
    return raw


@dataclass(frozen=True)
class AssertResult:
    """The outcome of one assert."""

    script: str
    test: str
    label: str
    passed: bool
    warning_only: bool
    message: str = ""


def xpath_to_fhirpath(path: str) -> str:
    """``fhir:Patient/fhir:name/fhir:family/@value`` -> ``Patient.name.family``."""
    return ".".join(p.replace("fhir:", "") for p in path.split("/") if p and not p.startswith("@"))


def _first(values: list[Any]) -> Any:
    return values[0] if values else None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _compare(operator: str, actual: Any, expected: Any) -> bool:
    a = _text(actual)
    e = _text(expected)
    if operator in ("equals", ""):
        return a == e
    if operator == "notEquals":
        return a != e
    if operator == "in":
        return a in e.split(",")
    if operator == "notIn":
        return a not in e.split(",")
    if operator == "empty":
        return a == ""
    if operator == "notEmpty":
        return a != ""
    if operator == "contains":
        return e in a
    if operator == "notContains":
        return e not in a
    if operator in ("greaterThan", "lessThan"):
        try:
            return float(a) > float(e) if operator == "greaterThan" else float(a) < float(e)
        except ValueError:
            return False
    raise ValueError(f"unsupported operator {operator!r}")


def _subset(minimum: Any, actual: Any) -> bool:
    if isinstance(minimum, dict):
        return isinstance(actual, dict) and all(k == "meta" or _subset(v, actual.get(k)) for k, v in minimum.items())
    if isinstance(minimum, list):
        return isinstance(actual, list) and all(any(_subset(m, a) for a in actual) for m in minimum)
    return minimum == actual


class TestScriptRunner:
    """Runs TestScript resources against ``client`` (paths relative to ``base``, e.g. ``/fhir``)."""

    __test__ = False  # not a pytest class

    def __init__(
        self, client: Any, base: str, fixture_loader: Callable[[str], Any], variables: dict[str, str] | None = None
    ) -> None:
        self.client = client
        self.base = base.rstrip("/")
        self.fixture_loader = fixture_loader
        self.given = variables or {}

    # -- state --------------------------------------------------------------------------------------
    def _reset(self, script: dict[str, Any]) -> None:
        self.script = script
        self.fixtures: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, Any] = {}
        for fx in script.get("fixture", []):
            self.fixtures[fx["id"]] = copy.deepcopy(parse_fixture(self.fixture_loader(fx["resource"]["reference"])))
        self.last: Any = None
        self.last_request: tuple[str, str] = ("", "")
        self.last_headers: dict[str, str] = {}

    def _source(self, sid: str | None) -> Any:
        if sid is None:
            return self._json(self.last)
        if sid in self.fixtures:
            return self.fixtures[sid]
        return self._json(self.responses.get(sid))

    @staticmethod
    def _json(resp: Any) -> Any:
        """The response body as FHIR JSON, whether the server answered in JSON or in XML."""
        if resp is None or not resp.content:
            return None
        try:
            if "xml" in resp.headers.get("content-type", ""):
                return from_xml(resp.content)
            return resp.json()
        except (ValueError, FhirXmlError):
            return None

    def _eval(self, resource: Any, expression: str) -> list[Any]:
        if resource is None:
            return []
        return [getattr(v, "data", v) for v in fp_evaluate(resource, expression, {}, fp_models["r4"])]

    def _variable(self, name: str) -> str:
        var = next((v for v in self.script.get("variable", []) if v["name"] == name), None)
        if name in self.given:
            return self.given[name]
        if var is None:
            raise KeyError(f"undefined variable {name}")
        if "headerField" in var:
            resp = self.responses.get(var.get("sourceId")) or self.last
            return resp.headers.get(var["headerField"], "") if resp is not None else ""
        src = self._source(var.get("sourceId"))
        if "expression" in var or "path" in var:
            expr = var.get("expression") or xpath_to_fhirpath(var["path"])
            value = _first(self._eval(src, expr))
            if value is not None:
                return str(value)
        if "defaultValue" in var:
            return var["defaultValue"]
        raise KeyError(f"variable {name} has no value (supply it: hint {var.get('hint')!r})")

    def _subst(self, text: str) -> str:
        return _VAR.sub(lambda m: self._variable(m.group(1)), text)

    # -- operations ---------------------------------------------------------------------------------
    def _target(self, op: dict[str, Any]) -> tuple[str, str, Any]:
        res = self._source(op["targetId"])
        if isinstance(res, dict) and res.get("resourceType") == "Bundle" and res.get("entry"):
            res = res["entry"][0].get("resource")
        return res["resourceType"], res["id"], res

    def _url(self, op: dict[str, Any], code: str) -> str:
        if op.get("url"):
            url = self._subst(op["url"])
            return url if "://" not in url else "/" + url.split("://", 1)[1].split("/", 1)[1]
        if op.get("targetId") and code in ("read", "vread", "delete", "history", "update"):
            rtype, rid, res = self._target(op)
            url = f"{self.base}/{rtype}/{rid}"
            if code == "history":
                url += "/_history"
            if code == "vread":
                url += f"/_history/{res.get('meta', {}).get('versionId')}"
            return url
        return f"{self.base}/{op.get('resource', '')}{self._subst(op.get('params', ''))}"

    def _operation(self, op: dict[str, Any]) -> None:
        code = op["type"]["code"]
        method = {
            "read": "GET",
            "vread": "GET",
            "search": "GET",
            "history": "GET",
            "create": "POST",
            "update": "PUT",
            "updateCreate": "PUT",
            "delete": "DELETE",
            "patch": "PATCH",
        }[code]
        url = self._url(op, code)
        headers = {"Accept": mime_type(op.get("accept", "json"))}
        content = None
        if op.get("sourceId"):
            body = copy.deepcopy(self._source(op["sourceId"]))
            if method == "PUT" and isinstance(body, dict) and "?" not in url:
                body["id"] = url.rstrip("/").rsplit("/", 1)[-1]
            headers["Content-Type"] = mime_type(op.get("contentType", "json"))
            xml = "xml" in headers["Content-Type"]
            content = (to_xml(body) if xml else json.dumps(body)).encode("utf-8")
        for h in op.get("requestHeader", []):
            headers[h["field"]] = self._subst(h["value"])
        self.last_request = (method, url)
        self.last_headers = headers
        self.last = self.client.request(method, url, headers=headers, content=content)
        if op.get("responseId"):
            self.responses[op["responseId"]] = self.last

    # -- asserts ------------------------------------------------------------------------------------
    def _check(self, a: dict[str, Any]) -> tuple[bool, str]:
        resp = self.last
        op = a.get("operator", "equals")
        if "response" in a:
            want = RESPONSE_CODES[a["response"]]
            return resp.status_code == want, f"status {resp.status_code}, expected {want}"
        if "responseCode" in a:
            return _compare(op, resp.status_code, a["responseCode"]), f"status {resp.status_code}"
        if "headerField" in a:
            sent = a.get("direction") == "request"
            got = _header(self.last_headers, a["headerField"]) if sent else resp.headers.get(a["headerField"], "")
            return _compare(op, got, a.get("value")), f"{a['headerField']}: {got!r}"
        if "contentType" in a:
            sent = a.get("direction") == "request"
            got = _header(self.last_headers, "Content-Type") if sent else resp.headers.get("content-type", "")
            want = mime_type(a["contentType"])
            return mime_type(got) == want, f"content-type {got!r}, expected {want}"
        if "resource" in a:
            body = self._json(resp) or {}
            return body.get("resourceType") == a["resource"], f"resourceType {body.get('resourceType')!r}"
        if "validateProfileId" in a:
            try:
                validate(self._source(a.get("sourceId")))
            except FhirError as err:
                return False, err.diagnostics
            return True, "valid against the base R4 structure"
        if "minimumId" in a:
            ok = _subset(self.fixtures[a["minimumId"]], self._source(a.get("sourceId")))
            return ok, "minimum content present" if ok else "minimum content missing"
        if "navigationLinks" in a:
            rels = {lk["relation"] for lk in (self._source(a.get("sourceId")) or {}).get("link", [])}
            return {"first", "last"} <= rels, f"links {sorted(rels)}"
        if "requestURL" in a:
            return _compare(op, self.last_request[1], a["requestURL"]), self.last_request[1]
        if "requestMethod" in a:
            return self.last_request[0] == a["requestMethod"].upper(), self.last_request[0]
        if "compareToSourceId" in a:
            theirs_src = self._source(a["compareToSourceId"])
            expr = a.get("compareToSourceExpression") or xpath_to_fhirpath(a.get("compareToSourcePath", ""))
            theirs = _first(self._eval(theirs_src, expr))
            mine_expr = a.get("expression") or (xpath_to_fhirpath(a["path"]) if "path" in a else expr)
            mine = _first(self._eval(self._source(a.get("sourceId")), mine_expr))
            return _compare(op, mine, theirs), f"{mine!r} vs {theirs!r}"
        if "path" in a or "expression" in a:
            expr = a.get("expression") or xpath_to_fhirpath(a["path"])
            values = self._eval(self._source(a.get("sourceId")), expr)
            if "value" not in a and "operator" not in a:  # a boolean FHIRPath expression
                return values == [True], f"{expr} -> {values}"
            return _compare(op, _first(values), self._subst(a.get("value", ""))), f"{expr} -> {values}"
        return False, f"unsupported assert {sorted(a)}"

    def run(self, script: dict[str, Any]) -> list[AssertResult]:
        """Run every section of ``script``; returns one result per assert."""
        self._reset(script)
        out: list[AssertResult] = []
        sections = [("setup", script.get("setup", {}).get("action", []))]
        sections += [(t.get("name") or t.get("id", "test"), t.get("action", [])) for t in script.get("test", [])]
        sections += [("teardown", script.get("teardown", {}).get("action", []))]
        for name, actions in sections:
            for action in actions:
                if "operation" in action:
                    self._operation(action["operation"])
                elif "assert" in action:
                    a = action["assert"]
                    try:
                        ok, msg = self._check(a)
                    except Exception as err:  # a failing assert must not stop the script
                        ok, msg = False, f"{type(err).__name__}: {err}"
                    out.append(
                        AssertResult(
                            script.get("id", "?"),
                            name,
                            a.get("label") or a.get("description", ""),
                            ok,
                            bool(a.get("warningOnly")),
                            msg,
                        )
                    )
        return out
