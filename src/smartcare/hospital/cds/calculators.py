"""One entry point over table-driven scores and formula calculators, and the inputs each one reads."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from smartcare.core.errors import SmartcareError
from smartcare.hospital.cds.formulas import FORMULAS, compute_formula, formula_inputs
from smartcare.hospital.cds.scores import (
    DERIVED_FROM,
    Evidence,
    ScoreResult,
    UnknownScoreError,
    compute,
    list_tables,
    load_table,
    name_key,
)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _kind(ref: Any) -> str:
    if isinstance(ref, bool):
        return "bool"
    return _lower(ref) if isinstance(ref, str) else "number"


def _uses(node: Any, out: dict[str, set]) -> None:
    """Collect, per input name, how the table uses it: 'number', 'bool', or a categorical value (str)."""
    if isinstance(node, list):
        for x in node:
            _uses(x, out)
        return
    if not isinstance(node, Mapping):
        return
    for key, want in (node.get("when") or {}).items():
        out.setdefault(key, set()).add(_kind(want))
    name = node.get("input")
    if isinstance(name, str):
        kinds = out.setdefault(name, set())
        if "choices" in node:
            kinds.update(_lower(k) for k in node["choices"])
        elif "bands" in node or "linear" in node:
            kinds.add("number")
        for op, ref in node.items():
            if op == "is":
                kinds.add("bool")
            elif op in ("gt", "ge", "lt", "le"):
                kinds.add("number")
            elif op in ("eq", "in"):
                kinds.update(_kind(r) for r in (ref if op == "in" else [ref]))
    for key, value in node.items():
        if key not in ("when", "choices") and isinstance(value, list | Mapping):
            _uses(value, out)


def input_domains(name: str) -> dict[str, set]:
    """Every input a score table reads, from the table itself: name -> the kinds of value it takes.

    A kind is ``"number"``, ``"bool"`` or an allowed categorical value (lower case). Inputs a derived
    input is computed from (``sbp``/``dbp`` for ``map``) are included; ``input_defaults`` too."""
    table = load_table(name)
    out: dict[str, set] = {}
    _uses(table["criteria"], out)
    _uses(table.get("interpretation", []), out)
    for key, default in table.get("input_defaults", {}).items():
        out.setdefault(key, set()).add(_kind(default))
    for derived in table.get("derive", []):
        kind = out.get(derived, {"number"})
        for src in DERIVED_FROM[derived]:
            out.setdefault(src, set()).update(kind if kind == {"bool"} else {"number"})
    return out


class UnknownInputError(SmartcareError):
    """An input name the calculator does not read, or a value outside the input's domain."""

    title = "Unknown calculator input"


def list_calculators() -> list[str]:
    """Every calculator name: score tables first, then formulas."""
    return list_tables() + list(FORMULAS)


def _formula_name(name: str) -> str | None:
    return {name_key(k): k for k in FORMULAS}.get(name_key(name))


def _canonical(name: str) -> str:
    formula = _formula_name(name)
    if formula is not None:
        return formula
    try:
        return load_table(name)["name"]
    except UnknownScoreError:
        raise UnknownScoreError(f"unknown calculator {name!r}; known: {', '.join(list_calculators())}") from None


@cache
def _categorical_values() -> dict[str, frozenset[str]]:
    """Per input, every categorical value any score table names (choices, eq/in, when): its domain."""
    out: dict[str, set[str]] = {"sex": {"female", "male"}}
    for table in list_tables():
        for key, kinds in input_domains(table).items():
            out.setdefault(key, set()).update(k for k in kinds if k not in ("number", "bool"))
    return {k: frozenset(v) for k, v in out.items()}


@cache
def _domains(canonical: str) -> dict[str, frozenset[str]]:
    if canonical in FORMULAS:
        return {n: frozenset({"female", "male"} if n == "sex" else {kind})
                for n, kind in formula_inputs(canonical).items()}
    cats = _categorical_values()
    out = {}
    for key, kinds in input_domains(canonical).items():
        if any(k not in ("number", "bool") for k in kinds):
            kinds = (kinds & {"number", "bool"}) | cats[key]
        out[key] = frozenset(kinds)
    return out


def calculator_inputs(name: str) -> dict[str, list[str]]:
    """The inputs calculator ``name`` reads, read from its table or formula: name -> accepted kinds.

    A kind is ``"number"``, ``"bool"`` or an allowed categorical value. Raises UnknownScoreError."""
    return {k: sorted(v) for k, v in _domains(_canonical(name)).items()}


def _value_ok(value: Any, kinds: frozenset[str]) -> bool:
    if value is None:
        return True
    if isinstance(value, bool):
        return "bool" in kinds
    if isinstance(value, int | float):
        return "number" in kinds or ("bool" in kinds and value in (0, 1))
    if isinstance(value, str):
        if value.strip().lower() in kinds:
            return True
        if "number" in kinds:
            try:
                float(value)
                return True
            except ValueError:
                return False
    return False


def check_inputs(name: str, inputs: Mapping[str, Any]) -> None:
    """Refuse input names calculator ``name`` does not read, and values outside an input's domain.

    Raises:
        UnknownScoreError: no such calculator.
        UnknownInputError: naming the bad inputs and listing the valid ones.
    """
    canonical = _canonical(name)
    domains = _domains(canonical)
    unknown = [k for k in inputs if k not in domains]
    if unknown:
        raise UnknownInputError(
            f"{canonical}: unknown input{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid inputs: {', '.join(domains)}"
        )
    for key, raw in inputs.items():
        value = raw.value if isinstance(raw, Evidence) else raw
        if not _value_ok(value, domains[key]):
            if domains[key] == {"number"}:
                raise UnknownInputError(f"{canonical}: an input has a value of the wrong type "
                                        f"({key}={value} is not a number)")
            allowed = ", ".join(sorted(domains[key]))
            raise UnknownInputError(f"{canonical}: input {key}={value!r} is not allowed; {key} takes: {allowed}")


def calculate(name: str, inputs: Mapping[str, Any], *, strict: bool = False) -> ScoreResult:
    """Compute calculator ``name`` (case/punctuation ignored) from ``inputs`` (name -> value or Evidence).

    With ``strict=True`` every input must be one the calculator reads, with a value in its domain
    (:func:`check_inputs`); otherwise inputs it does not read are ignored (FHIR-extracted inputs).

    Raises:
        UnknownScoreError: ``name`` is neither a score table nor a formula.
        UnknownInputError: (strict) an unknown input name or an out-of-domain value.
        SmartcareError: an input has a value of the wrong type (text where a number is needed).
    """
    if strict:
        check_inputs(name, inputs)
    try:
        formula = _formula_name(name)
        if formula is not None:
            return compute_formula(formula, inputs)
        try:
            return compute(name, inputs)
        except UnknownScoreError:
            raise UnknownScoreError(f"unknown calculator {name!r}; known: {', '.join(list_calculators())}") from None
    except (ValueError, TypeError) as err:
        if isinstance(err, SmartcareError):
            raise
        given = ", ".join(f"{k}={v}" for k, v in inputs.items() if isinstance(v, str) and k != "sex")
        raise SmartcareError(f"{name}: an input has a value of the wrong type ({err})"
                             + (f"; text inputs given: {given}" if given else "")) from None
