"""JSON Patch (RFC 6902) applied to a resource dict, for the FHIR ``patch`` interaction."""

from __future__ import annotations

import copy
from typing import Any

from smartcare.hospital.fhir.outcome import FhirError


def _tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise FhirError(400, f"JSON Pointer must start with '/': {pointer!r}", expression=[pointer])
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _parent(doc: Any, tokens: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for t in tokens[:-1]:
        try:
            node = node[int(t)] if isinstance(node, list) else node[t]
        except (KeyError, IndexError, ValueError, TypeError):
            raise FhirError(422, f"Patch path does not exist: {path}", expression=[path]) from None
    return node, tokens[-1]


def _get(doc: Any, path: str) -> Any:
    node, key = _parent(doc, _tokens(path), path)
    try:
        return node[int(key)] if isinstance(node, list) else node[key]
    except (KeyError, IndexError, ValueError, TypeError):
        raise FhirError(422, f"Patch path does not exist: {path}", expression=[path]) from None


def _remove(doc: Any, path: str) -> Any:
    node, key = _parent(doc, _tokens(path), path)
    try:
        return node.pop(int(key)) if isinstance(node, list) else node.pop(key)
    except (KeyError, IndexError, ValueError, TypeError):
        raise FhirError(422, f"Patch path does not exist: {path}", expression=[path]) from None


def _add(doc: Any, path: str, value: Any) -> None:
    node, key = _parent(doc, _tokens(path), path)
    if isinstance(node, list):
        if key == "-":
            node.append(value)
            return
        try:
            idx = int(key)
        except ValueError:
            raise FhirError(422, f"Bad array index in {path}", expression=[path]) from None
        if not 0 <= idx <= len(node):
            raise FhirError(422, f"Array index out of range in {path}", expression=[path])
        node.insert(idx, value)
    elif isinstance(node, dict):
        node[key] = value
    else:
        raise FhirError(422, f"Patch target is not a container: {path}", expression=[path])


def apply_patch(resource: dict[str, Any], ops: Any) -> dict[str, Any]:
    """A patched deep copy of ``resource``; 400/422 OperationOutcome errors on bad operations."""
    if not isinstance(ops, list):
        raise FhirError(400, "A JSON Patch document must be an array of operations", code="structure")
    doc = copy.deepcopy(resource)
    for i, op in enumerate(ops):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise FhirError(400, f"Patch operation {i} needs 'op' and 'path'", expression=[f"[{i}]"])
        kind, path = op["op"], op["path"]
        if path in ("/resourceType", "/id"):
            raise FhirError(422, f"Patch may not change {path}", expression=[path])
        if kind == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, path)
        elif kind == "replace":
            _get(doc, path)
            node, key = _parent(doc, _tokens(path), path)
            node[int(key) if isinstance(node, list) else key] = copy.deepcopy(op.get("value"))
        elif kind in ("move", "copy"):
            src = op.get("from", "")
            value = _remove(doc, src) if kind == "move" else copy.deepcopy(_get(doc, src))
            _add(doc, path, value)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise FhirError(422, f"Patch test failed at {path}", expression=[path])
        else:
            raise FhirError(400, f"Unknown patch operation {kind!r}", expression=[f"[{i}]"])
    return doc
