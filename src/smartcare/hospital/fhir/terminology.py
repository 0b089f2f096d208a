"""Terminology for search: ValueSet expansion and code subsumption from the resources we store.

Used by the token modifiers ``:in``/``:not-in`` and ``:above``/``:below`` (FHIR R4 search.html#token).
There is no external terminology server: a ValueSet is found among the stored ValueSet resources by
canonical ``url`` (``url|version`` allowed) or by reference (``ValueSet/id``, or an absolute URL
ending in it) and expanded per FHIR R4 valueset.html#compose:

- ``expansion.contains`` of a pre-expanded ValueSet is used as is;
- ``compose.include`` with ``concept`` lists those codes; with only ``system`` it includes the whole
  code system (every concept when the CodeSystem is stored with ``content: complete``, otherwise any
  code of that system); with ``filter`` (``is-a``, ``descendent-of``, ``is-not-a``, ``generalizes``,
  ``=``, ``in``, ``not-in``, ``regex``, ``exists``) the CodeSystem must be stored; ``valueSet``
  imports are intersected with the rest of the include;
- ``compose.exclude`` is removed.

A ValueSet that cannot be expanded this way is a 400 OperationOutcome that says why.

Hierarchies come from stored CodeSystems: nested ``concept`` elements and the ``parent`` /
``subsumedBy`` / ``child`` concept properties. For ``:above``/``:below`` on a code system that is not
stored, or a code it does not define, the search matches nothing, as HAPI FHIR's JPA server does
(``findCodesBelow`` returns no codes); we also add an OperationOutcome warning to the searchset.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, false, or_, select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import idx_uri, resources
from smartcare.hospital.fhir.outcome import FhirError

MAX_DEPTH = 8  # ValueSet imports followed before giving up (cycles)
_HIERARCHY_PROPS = {"parent": "parent", "subsumedBy": "parent", "child": "child"}


@dataclass
class CodeSet:
    """Codes of an expansion: explicit ``(system, code)`` pairs plus whole code systems."""

    pairs: set[tuple[str, str]] = field(default_factory=set)
    systems: set[str] = field(default_factory=set)

    def union(self, other: CodeSet) -> CodeSet:
        return CodeSet(self.pairs | other.pairs, self.systems | other.systems)

    def intersect(self, other: CodeSet) -> CodeSet:
        pairs = (self.pairs & other.pairs) | {p for p in self.pairs if p[0] in other.systems}
        pairs |= {p for p in other.pairs if p[0] in self.systems}
        return CodeSet(pairs, self.systems & other.systems)

    def minus(self, other: CodeSet, url: str) -> CodeSet:
        if any(p[0] in self.systems for p in other.pairs):
            raise FhirError(
                400,
                f"ValueSet {url} cannot be expanded: it excludes codes from a whole code system that is not "
                "stored on this server",
                code="not-supported",
            )
        pairs = {p for p in self.pairs if p not in other.pairs and p[0] not in other.systems}
        return CodeSet(pairs, self.systems - other.systems)

    def condition(self, system_col, code_col):
        """SQL condition on a token row's (system, code) columns.

        A row without a system (a plain ``code`` element such as ``Patient.gender``, whose system is
        implied by its binding) matches by code alone.
        """
        by_system: dict[str, set[str]] = defaultdict(set)
        for system, code in self.pairs:
            if system not in self.systems:
                by_system[system].add(code)
        conds = [and_(system_col == s, code_col.in_(sorted(codes))) for s, codes in sorted(by_system.items())]
        conds += [system_col == s for s in sorted(self.systems)]
        bare = sorted({code for _, code in self.pairs})
        if bare:
            conds.append(and_(system_col.is_(None), code_col.in_(bare)))
        return or_(*conds) if conds else false()


class CodeSystemTree:
    """Concepts of one stored CodeSystem with their is-a hierarchy."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.url: str = resource.get("url", "")
        self.complete = resource.get("content", "complete") == "complete"
        self.props: dict[str, dict[str, list[Any]]] = {}
        self.parents: dict[str, set[str]] = defaultdict(set)
        self.children: dict[str, set[str]] = defaultdict(set)
        roles = dict(_HIERARCHY_PROPS)
        for prop in resource.get("property", []):  # e.g. {"code": "broader", "uri": "...#parent"}
            frag = str(prop.get("uri", "")).rpartition("#")[2]
            if frag in _HIERARCHY_PROPS:
                roles[prop.get("code", "")] = _HIERARCHY_PROPS[frag]
        self._walk(resource.get("concept", []), None, roles)

    def _walk(self, concepts: list[dict[str, Any]], parent: str | None, roles: dict[str, str]) -> None:
        for concept in concepts:
            code = concept.get("code")
            if not isinstance(code, str):
                continue
            props = self.props.setdefault(code, defaultdict(list))
            if parent is not None:
                self._link(parent, code)
            for prop in concept.get("property", []):
                value = next((v for k, v in prop.items() if k.startswith("value")), None)
                props[prop.get("code", "")].append(value)
                role = roles.get(prop.get("code", ""))
                if role == "parent" and isinstance(value, str):
                    self._link(value, code)
                elif role == "child" and isinstance(value, str):
                    self._link(code, value)
            self._walk(concept.get("concept", []), code, roles)

    def _link(self, parent: str, child: str) -> None:
        self.parents[child].add(parent)
        self.children[parent].add(child)

    def _closure(self, code: str, edges: dict[str, set[str]]) -> set[str]:
        seen, todo = {code}, [code]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def below(self, code: str) -> set[str]:
        """``code`` and every concept it subsumes (empty if the code is not defined here)."""
        return self._closure(code, self.children) if code in self.props else set()

    def above(self, code: str) -> set[str]:
        """``code`` and every concept that subsumes it (empty if the code is not defined here)."""
        return self._closure(code, self.parents) if code in self.props else set()

    def codes(self) -> set[str]:
        return set(self.props)

    def filter(self, op: str, prop: str, value: str, where: str) -> set[str]:
        """Codes passing one ``compose.include.filter`` (FHIR R4 valueset-filter-operator)."""
        if op in ("is-a", "descendent-of", "is-not-a", "generalizes") and prop not in ("concept", "code"):
            raise FhirError(400, f"{where}: filter '{op}' works on property 'concept', not '{prop}'")
        if op == "is-a":
            return self.below(value)
        if op == "descendent-of":
            return self.below(value) - {value}
        if op == "is-not-a":
            return self.codes() - self.below(value)
        if op == "generalizes":
            return self.above(value)
        if prop in ("concept", "code") and op in ("in", "not-in", "="):
            wanted = set(value.split(","))
            return (self.codes() & wanted) if op != "not-in" else (self.codes() - wanted)
        values = {
            c: [str(v).lower() if isinstance(v, bool) else str(v) for v in p.get(prop, [])]
            for c, p in self.props.items()
        }
        if op == "=":
            return {c for c, vs in values.items() if value in vs}
        if op in ("in", "not-in"):
            wanted = set(value.split(","))
            hit = {c for c, vs in values.items() if wanted & set(vs)}
            return hit if op == "in" else self.codes() - hit
        if op == "exists":
            return {c for c, vs in values.items() if bool(vs) == (value == "true")}
        if op == "regex":
            pattern = re.compile(value)
            subjects = {c: [c] for c in self.props} if prop in ("concept", "code") else values
            return {c for c, vs in subjects.items() if any(pattern.fullmatch(v) for v in vs)}
        raise FhirError(400, f"{where}: filter operator '{op}' is not supported", code="not-supported")


class SearchContext:
    """What a search needs beyond SQL: the session for terminology look-ups and checks done in Python
    (``:of-type``, three-component composites), and the warnings to report in the searchset."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.warnings: list[str] = []
        self._systems: dict[str, CodeSystemTree | None] = {}

    # -- stored conformance resources ---------------------------------------------------------
    def _by_url(self, rtype: str, url: str) -> list[dict[str, Any]]:
        url, _, version = url.partition("|")
        rows = self.session.execute(
            select(resources.c.content)
            .where(
                resources.c.res_type == rtype,
                resources.c.deleted == false(),
                resources.c.pk.in_(
                    select(idx_uri.c.res_pk).where(
                        idx_uri.c.res_type == rtype, idx_uri.c.param == "url", idx_uri.c.value == url
                    )
                ),
            )
            .order_by(resources.c.last_updated.desc())
        ).scalars()
        return [r for r in rows if not version or r.get("version") == version]

    def _by_reference(self, rtype: str, ref: str) -> dict[str, Any] | None:
        segs = ref.split("/_history/", 1)[0].rstrip("/").split("/")
        if len(segs) < 2 or segs[-2] != rtype:
            return None
        return self.session.execute(
            select(resources.c.content).where(
                resources.c.res_type == rtype, resources.c.res_id == segs[-1], resources.c.deleted == false()
            )
        ).scalar_one_or_none()

    def code_system(self, url: str) -> CodeSystemTree | None:
        """The stored CodeSystem with canonical ``url`` (newest first; supplements ignored)."""
        if url not in self._systems:
            found = [r for r in self._by_url("CodeSystem", url) if r.get("content") != "supplement"]
            self._systems[url] = CodeSystemTree(found[0]) if found else None
        return self._systems[url]

    def value_set(self, ref: str) -> dict[str, Any]:
        """The stored ValueSet named by canonical url or reference; 400 when there is none."""
        found = self._by_url("ValueSet", ref) or [self._by_reference("ValueSet", ref)]
        if found[0] is None:
            raise FhirError(
                400,
                f"ValueSet {ref} is not stored on this server, so ':in'/':not-in' cannot be evaluated",
                code="not-found",
            )
        return found[0]

    # -- expansion ----------------------------------------------------------------------------
    def expand(self, ref: str, depth: int = 0) -> CodeSet:
        """All codes of the ValueSet ``ref`` (see the module docstring for what is supported)."""
        if depth > MAX_DEPTH:
            raise FhirError(400, f"ValueSet {ref} cannot be expanded: imports nest deeper than {MAX_DEPTH}")
        vs = self.value_set(ref)
        contains = (vs.get("expansion") or {}).get("contains")
        if contains and not vs.get("compose"):
            out = CodeSet()
            todo = list(contains)
            while todo:
                item = todo.pop()
                if item.get("system") and item.get("code"):
                    out.pairs.add((item["system"], item["code"]))
                todo += item.get("contains", [])
            return out
        compose = vs.get("compose")
        if not compose or not compose.get("include"):
            raise FhirError(400, f"ValueSet {ref} cannot be expanded: it has neither compose.include nor expansion")
        out = CodeSet()
        for inc in compose["include"]:
            out = out.union(self._include(inc, ref, depth))
        for exc in compose.get("exclude", []):
            out = out.minus(self._include(exc, ref, depth), ref)
        return out

    def _include(self, inc: dict[str, Any], ref: str, depth: int) -> CodeSet:
        parts: list[CodeSet] = []
        system = inc.get("system")
        if system:
            parts.append(self._system_part(system, inc, ref))
        parts += [self.expand(v, depth + 1) for v in inc.get("valueSet", [])]
        if not parts:
            raise FhirError(400, f"ValueSet {ref} cannot be expanded: an include has neither system nor valueSet")
        out = parts[0]
        for p in parts[1:]:
            out = out.intersect(p)
        return out

    def _system_part(self, system: str, inc: dict[str, Any], ref: str) -> CodeSet:
        if inc.get("concept"):
            return CodeSet({(system, c["code"]) for c in inc["concept"] if c.get("code")})
        tree = self.code_system(system)
        if inc.get("filter"):
            if tree is None:
                raise FhirError(
                    400,
                    f"ValueSet {ref} cannot be expanded: it filters CodeSystem {system}, which is not stored "
                    "on this server",
                    code="not-supported",
                )
            codes = tree.codes()
            for flt in inc["filter"]:
                codes &= tree.filter(
                    flt.get("op", ""), flt.get("property", ""), str(flt.get("value", "")), f"ValueSet {ref}"
                )
            return CodeSet({(system, c) for c in codes})
        if tree is not None and tree.complete:
            return CodeSet({(system, c) for c in tree.codes()})
        return CodeSet(systems={system})

    # -- subsumption --------------------------------------------------------------------------
    def subsumption(self, system: str, code: str, direction: str) -> CodeSet:
        """``(system, code)`` and the codes below or above it; empty (with a warning) when unknown."""
        tree = self.code_system(system)
        if tree is None:
            self.warnings.append(
                f"CodeSystem {system} is not stored on this server: ':{direction}' matches nothing (as HAPI FHIR)"
            )
            return CodeSet()
        codes = tree.below(code) if direction == "below" else tree.above(code)
        if not codes:
            self.warnings.append(f"Code {code} is not defined in CodeSystem {system}: ':{direction}' matches nothing")
        return CodeSet({(system, c) for c in codes})
