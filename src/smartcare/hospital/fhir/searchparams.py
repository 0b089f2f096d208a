"""The R4 search-parameter table, derived from the official SearchParameter definitions.

Provenance: ``searchparams_r4.json`` beside this module is derived by :func:`build_table` from
``fhir-r4-examples/definitions/Bundle-searchParams.json`` (npm ``hl7.fhir.r4.examples@4.0.1``, the
1,375 SearchParameter resources of FHIR R4 4.0.1, CC0-1.0); the list of the 145 R4 resource types
comes from ``CapabilityStatement-base.json`` of the same package. The derivation only splits each
multi-resource FHIRPath expression into the part for each base type and rewrites two constructs that
the embedded FHIRPath engine cannot evaluate on a single resource:

- ``X.where(resolve() is T)`` becomes a test on the reference string (``T/...``);
- ``(X as T)`` / ``X.as(T)`` / ``(X as T).y`` on a choice element becomes the typed element name
  ``xT`` (``xT.y``).

Regenerate with ``python -m smartcare.hospital.fhir.searchparams PATH/fhir-r4-examples/definitions``.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

TABLE_PATH = Path(__file__).with_name("searchparams_r4.json")
# Parameter types the index supports; ``special`` and untranslatable ones are left out of search.
INDEXED_TYPES = ("string", "token", "reference", "date", "number", "quantity", "uri", "composite")
GENERIC_BASES = ("Resource", "DomainResource")
# Result parameters that are not search criteria (FHIR R4 search.html#return / #paging).
RESULT_PARAMS = {
    "_sort",
    "_count",
    "_include",
    "_revinclude",
    "_summary",
    "_total",
    "_elements",
    "_contained",
    "_containedType",
    "_format",
    "_pretty",
    "_getpages",
    "_getpagesoffset",
    "_offset",
}


@dataclass(frozen=True)
class SearchParam:
    """One search parameter of one resource type."""

    code: str  # the name used in the query string, e.g. ``birthdate``
    type: str  # string | token | reference | date | number | quantity | uri | composite
    expression: str  # FHIRPath, already restricted to this resource type
    target: tuple[str, ...] = ()  # allowed target types of a reference parameter
    components: tuple[tuple[str, str], ...] = field(default=())  # composite: (param code, expression)


def _split_union(expr: str) -> list[str]:
    """Split a FHIRPath expression on top-level ``|`` (outside parentheses and quotes)."""
    parts, depth, quote, cur = [], 0, False, []
    for ch in expr:
        if ch == "'":
            quote = not quote
        elif not quote and ch == "(":
            depth += 1
        elif not quote and ch == ")":
            depth -= 1
        if ch == "|" and depth == 0 and not quote:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


_RESOLVE = re.compile(r"\.where\(resolve\(\) is (\w+)\)")
_AS_PAREN = re.compile(r"^\(([\w.]+) as (\w+)\)$")
_AS_FUNC = re.compile(r"^([\w.]+)\.as\((\w+)\)$")
_AS_PAREN_PATH = re.compile(r"^\(([\w.]+) as (\w+)\)((?:\.\w+)+)$")


def _rewrite(part: str) -> str:
    part = _RESOLVE.sub(r".where(reference.startsWith('\1/') or reference.contains('/\1/'))", part)
    for pattern in (_AS_PAREN, _AS_FUNC):
        m = pattern.match(part)
        if m:
            path, typ = m.groups()
            return f"{path}{typ[0].upper()}{typ[1:]}"
    m = _AS_PAREN_PATH.match(part)
    if m:
        path, typ, rest = m.groups()
        return f"{path}{typ[0].upper()}{typ[1:]}{rest}"
    return part


def _head_type(part: str) -> str:
    return part.lstrip("(").split(".", 1)[0].split(" ", 1)[0]


def build_table(definitions: Path) -> dict[str, Any]:
    """Derive ``{"resourceTypes": [...], "params": {type: {code: {...}}}}`` from the definitions folder."""
    bundle = json.loads((Path(definitions) / "Bundle-searchParams.json").read_text())
    capability = json.loads((Path(definitions) / "CapabilityStatement-base.json").read_text())
    urls = {e["resource"]["url"]: e["resource"] for e in bundle["entry"]}
    table: dict[str, dict[str, Any]] = {}
    for entry in bundle["entry"]:
        sp = entry["resource"]
        expr = sp.get("expression")
        if not expr or sp["type"] == "special":
            continue
        parts = _split_union(expr)
        for base in sp["base"]:
            mine = [_rewrite(p) for p in parts if _head_type(p) == base]
            if not mine:
                continue
            row: dict[str, Any] = {"type": sp["type"], "expression": " | ".join(mine)}
            if sp.get("target"):
                row["target"] = sp["target"]
            if sp["type"] == "composite":
                comps = []
                for comp in sp.get("component", []):
                    ref = urls.get(comp["definition"])
                    if ref is None:
                        break
                    comps.append([ref["code"], " | ".join(_rewrite(p) for p in _split_union(comp["expression"]))])
                else:
                    row["components"] = comps
            table.setdefault(base, {})[sp["code"]] = row
    return {
        "_provenance": (
            "Derived from hl7.fhir.r4.examples@4.0.1 package/Bundle-searchParams.json (FHIR R4 4.0.1 "
            "SearchParameter definitions, CC0-1.0) and package/CapabilityStatement-base.json (resource "
            "types) by smartcare.hospital.fhir.searchparams.build_table."
        ),
        "resourceTypes": sorted(r["type"] for r in capability["rest"][0]["resource"]),
        "params": dict(sorted(table.items())),
    }


@lru_cache(maxsize=1)
def _load() -> dict[str, Any]:
    return json.loads(TABLE_PATH.read_text())


def _table() -> dict[str, dict[str, Any]]:
    return _load()["params"]


def resource_types() -> list[str]:
    """The 145 concrete R4 resource types."""
    return list(_load()["resourceTypes"])


@cache
def params_for(resource_type: str) -> dict[str, SearchParam]:
    """All search parameters of ``resource_type`` (its own plus those on Resource/DomainResource)."""
    out: dict[str, SearchParam] = {}
    for base in (*GENERIC_BASES, resource_type):
        for code, row in _table().get(base, {}).items():
            expr = row["expression"]
            if base in GENERIC_BASES:
                expr = " | ".join(resource_type + p[len(base) :] for p in _split_union(expr))
            out[code] = SearchParam(
                code=code,
                type=row["type"],
                expression=expr,
                target=tuple(row.get("target", ())),
                components=tuple(tuple(c) for c in row.get("components", ())),
            )
    return out


def lookup(resource_type: str, code: str) -> SearchParam:
    """The parameter ``code`` of ``resource_type``; raises ``KeyError`` when it is unknown."""
    return params_for(resource_type)[code]


if __name__ == "__main__":  # pragma: no cover - regeneration entry point
    TABLE_PATH.write_text(json.dumps(build_table(Path(sys.argv[1])), indent=1, sort_keys=False) + "\n")
    print(f"wrote {TABLE_PATH}")
