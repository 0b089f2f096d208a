"""Batch and transaction Bundles (FHIR R4 http.html#transaction).

A transaction is atomic: every entry runs in one database transaction, and any failure rolls the
whole Bundle back. Entries are processed in the order the spec requires (DELETE, POST, PUT/PATCH,
GET/HEAD); ``urn:uuid`` full URLs of created resources and conditional references
(``Patient?identifier=...``) are resolved before any resource is written. In a batch each entry
runs in its own savepoint and reports its own outcome.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import parse_qsl

from smartcare.hospital.fhir import searchset
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.store import FhirStore, Stored, WriteResult
from smartcare.hospital.fhir.values import instant

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    422: "Unprocessable Entity",
}


def _status(code: int) -> str:
    return f"{code} {REASONS.get(code, '')}".strip()


def _relative(url: str, base: str) -> str:
    if base and url.startswith(base + "/"):
        return url[len(base) + 1 :]
    return url


def _check(bundle: Any) -> list[dict[str, Any]]:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise FhirError(400, "Expected a Bundle resource", code="structure", expression=["Bundle"])
    if bundle.get("type") not in ("batch", "transaction"):
        raise FhirError(
            400,
            f"Bundle.type must be batch or transaction, not {bundle.get('type')!r}",
            expression=["Bundle.type"],
        )
    entries = bundle.get("entry") or []
    for i, e in enumerate(entries):
        req = e.get("request") if isinstance(e, dict) else None
        if not isinstance(req, dict) or req.get("method") not in ORDER or not isinstance(req.get("url"), str):
            raise FhirError(
                400,
                f"Bundle.entry[{i}].request needs a method (GET|HEAD|POST|PUT|PATCH|DELETE) and a url",
                expression=[f"Bundle.entry[{i}].request"],
            )
    return entries


class BundleProcessor:
    """Runs one batch or transaction Bundle against a :class:`FhirStore`."""

    def __init__(self, store: FhirStore, base: str = "", *, return_resources: bool = True) -> None:
        self.store = store
        self.base = base
        self.return_resources = return_resources
        self._generated: set[str] = set()

    def _resolve_ids(self, entries: list[dict[str, Any]], order: list[int]) -> dict[str, str]:
        mapping: dict[str, str] = {}
        self._generated = set()  # Type/uuid made here for POST entries
        for i in order:
            e, req = entries[i], entries[i]["request"]
            full = e.get("fullUrl")
            res = e.get("resource") if isinstance(e.get("resource"), dict) else {}
            rtype = res.get("resourceType") or req["url"].split("?")[0].split("/")[0]
            if req["method"] == "POST" and full:
                found = self.store.find(rtype, req["ifNoneExist"]) if req.get("ifNoneExist") else []
                if len(found) > 1:
                    raise FhirError(412, f"entry[{i}] ifNoneExist matches more than one {rtype}")
                if found:
                    mapping[full] = f"{rtype}/{found[0].res_id}"
                else:
                    mapping[full] = f"{rtype}/{uuid.uuid4()}"
                    self._generated.add(mapping[full])
            elif req["method"] == "PUT" and full:
                url = _relative(req["url"], self.base)
                if "?" in url:
                    found = self.store.find(rtype, url.split("?", 1)[1])
                    rid = found[0].res_id if len(found) == 1 else (res.get("id") or str(uuid.uuid4()))
                    mapping[full] = f"{rtype}/{rid}"
                else:
                    mapping[full] = url
        return mapping

    def _rewrite(self, node: Any, mapping: dict[str, str], i: int) -> Any:
        """A private copy of ``node`` (JSON) in which strings equal to a full URL of this Bundle are
        replaced by ``Type/id`` (``mapping``) and conditional references (``Patient?identifier=...``)
        are resolved to the single match (412 unless exactly one), innermost objects first."""
        if isinstance(node, list):
            return [
                mapping.get(v, v)
                if type(v) is str
                else self._rewrite(v, mapping, i)
                if type(v) is dict
                else self._copy_value(v, mapping, i)
                for v in node
            ]
        if not isinstance(node, dict):
            return mapping.get(node, node) if isinstance(node, str) else node
        out = {}
        for k, v in node.items():
            t = type(v)  # exact JSON types first (the common case), then their subclasses
            if t is str:
                out[k] = mapping.get(v, v)
            elif t is dict or t is list:
                out[k] = self._rewrite(v, mapping, i)
            else:
                out[k] = self._copy_value(v, mapping, i)
        ref = out.get("reference")
        if isinstance(ref, str) and ref.startswith(("urn:uuid:", "urn:oid:")):
            # Still a URN after the rewrite: no entry of this Bundle has that fullUrl (HAPI: 400).
            raise FhirError(400, f"entry[{i}]: reference {ref} is not the fullUrl of any entry in this Bundle",
                            code="invalid", expression=[f"Bundle.entry[{i}].resource"])
        if isinstance(ref, str) and "?" in ref and not ref.startswith(("http:", "https:")):
            rtype, query = ref.split("?", 1)
            found = self.store.find(rtype, query)
            if len(found) != 1:
                raise FhirError(412, f"entry[{i}]: conditional reference {ref} matches {len(found)} resources")
            out["reference"] = f"{rtype}/{found[0].res_id}"
        return out

    def _copy_value(self, v: Any, mapping: dict[str, str], i: int) -> Any:
        if isinstance(v, str):
            return mapping.get(v, v)
        if isinstance(v, dict | list):
            return self._rewrite(v, mapping, i)
        return v

    def _write_entry(self, res: WriteResult | Stored | None, status: int) -> dict[str, Any]:
        stored = res.stored if isinstance(res, WriteResult) else res
        if stored is None:
            return {"response": {"status": _status(status)}}
        out: dict[str, Any] = {
            "response": {
                "status": _status(status),
                "location": f"{stored.res_type}/{stored.res_id}/_history/{stored.version}",
                "etag": stored.etag,
                "lastModified": instant(stored.last_updated),
            }
        }
        if self.return_resources and stored.content is not None:
            out["fullUrl"] = f"{self.base}/{stored.res_type}/{stored.res_id}"
            out["resource"] = stored.content
        return out

    def _entry(self, i: int, e: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
        req = e["request"]
        method = req["method"]
        url = _relative(mapping.get(req["url"], req["url"]), self.base)
        path, _, query = url.partition("?")
        parts = [p for p in path.split("/") if p]
        resource = e.get("resource")
        owned = resource is not None and method in ("POST", "PUT")
        if owned:  # the rewrite is a private copy, so the store need not copy it again
            resource = self._rewrite(resource, mapping, i)
        if method == "POST":
            full = e.get("fullUrl")
            rid = mapping[full].split("/", 1)[1] if full in mapping else None
            new_id = rid is not None and mapping[full] in self._generated
            res = self.store.create(resource, rid=rid, if_none_exist=req.get("ifNoneExist"), owned=owned, new_id=new_id)
            return self._write_entry(res, 201 if res.created else 200)
        if method == "PUT":
            if query:
                res = self.store.conditional_update(parts[0], query, resource, if_match=req.get("ifMatch"), owned=owned)
            elif len(parts) == 2:
                res = self.store.update(parts[0], parts[1], resource, if_match=req.get("ifMatch"), owned=owned)
            else:
                raise FhirError(400, f"entry[{i}]: PUT url must be Type/id or Type?criteria, not {url}")
            return self._write_entry(res, 201 if res.created else 200)
        if method == "PATCH":
            ops = resource
            if isinstance(resource, dict) and resource.get("resourceType") == "Binary":
                ops = json.loads(base64.b64decode(resource.get("data", "")))
            if len(parts) != 2:
                raise FhirError(400, f"entry[{i}]: PATCH url must be Type/id, not {url}")
            return self._write_entry(self.store.patch(parts[0], parts[1], ops, if_match=req.get("ifMatch")), 200)
        if method == "DELETE":
            if query:
                self.store.conditional_delete(parts[0], query)
            elif len(parts) == 2:
                self.store.delete(parts[0], parts[1], if_match=req.get("ifMatch"))
            else:
                raise FhirError(400, f"entry[{i}]: DELETE url must be Type/id or Type?criteria, not {url}")
            return {"response": {"status": _status(204)}}
        return self._get(i, parts, query)

    def _get(self, i: int, parts: list[str], query: str) -> dict[str, Any]:
        self.store.flush()
        if len(parts) == 2:
            return self._write_entry(self.store.read(parts[0], parts[1]), 200)
        if len(parts) == 4 and parts[2] == "_history":
            return self._write_entry(self.store.vread(parts[0], parts[1], parts[3]), 200)
        if len(parts) <= 1:
            items = parse_qsl(query, keep_blank_values=True)
            bundle = searchset.search_bundle(self.store.session, parts[0] if parts else None, items, self.base)
            return {"resource": bundle, "response": {"status": _status(200)}}
        raise FhirError(400, f"entry[{i}]: unsupported GET url {'/'.join(parts)}")

    def run(self, bundle: Any) -> dict[str, Any]:
        """Process ``bundle``; returns the batch-response / transaction-response Bundle."""
        entries = _check(bundle)
        kind = bundle["type"]
        order = sorted(range(len(entries)), key=lambda i: ORDER[entries[i]["request"]["method"]])
        responses: list[dict[str, Any] | None] = [None] * len(entries)
        if kind == "transaction":
            mapping = self._resolve_ids(entries, order)
            for i in order:
                try:
                    responses[i] = self._entry(i, entries[i], mapping)
                except FhirError as err:
                    raise FhirError(
                        err.status,
                        f"Transaction failed at Bundle.entry[{i}]: {err.diagnostics}",
                        code=err.code,
                        expression=[f"Bundle.entry[{i}]", *err.expression],
                    ) from None
        else:
            for i in order:
                try:
                    with self.store.session.begin_nested():
                        responses[i] = self._entry(i, entries[i], {})
                        self.store.flush()
                except FhirError as err:
                    self.store.discard()
                    responses[i] = {"response": {"status": _status(err.status), "outcome": err.outcome()}}
        return {
            "resourceType": "Bundle",
            "id": str(uuid.uuid4()),
            "type": f"{kind}-response",
            "entry": responses,
        }
