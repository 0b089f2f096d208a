"""Rule-based clinical scores driven by JSON score tables (``cds/tables/*.json``).

A table lists criteria; each criterion is one of:

- ``input`` + ``bands``: a numeric input; bands are ascending and the first band whose ``max`` (inclusive)
  or ``lt`` (exclusive) bound holds the value gives the points; a band may carry ``when`` (input -> value);
- ``input`` + ``choices``: a categorical input mapped to points, with an optional ``default``;
- ``input`` + ``linear`` (+ ``offset``): points = offset + value x factor (PSI age, APACHE II GCS);
- ``any`` / ``all``: conditions ``{"input", op: value}`` with op in ``gt ge lt le eq in is``; ``points`` if met;
- ``count`` + ``bands`` (+ optional ``force``): the number of conditions met, banded;
- ``levels``: a list of ``{"points", "any" | "all"}`` tried in order, the first one met gives the points
  (organ-system scores such as SOFA cardiovascular: the worst level wins), 0 when none is met.

A table may list ``derive``: inputs computed from others before scoring (``map`` from SBP/DBP,
``pf_ratio`` PaO2/FiO2, ``aa_gradient`` by the alveolar gas equation, ``respiratory_support``), each
keeping the FHIR references of the inputs it came from.

A criterion with ``when`` applies only when its gate inputs match. ``interpretation`` entries are tried in
order (``min``/``max`` on the total, ``when``, ``if_any_criterion_points_ge``); the first match is the band.

Missing inputs never raise: the criterion scores 0 (or its ``default`` choice), the input is listed in
``missing`` and the assumption is written out. Each scoring table cites its source publication.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from smartcare.core.errors import SmartcareError

TABLES = Path(__file__).with_name("tables")


@dataclass(frozen=True)
class Evidence:
    """One input value with the FHIR references it came from (``"Observation/123"``) and a note."""

    value: Any
    references: tuple[str, ...] = ()
    note: str = ""


@dataclass
class CriterionResult:
    id: str
    label: str
    points: float
    value: Any = None
    references: list[str] = field(default_factory=list)
    missing: bool = False


@dataclass
class ScoreResult:
    """A computed score: total, per-criterion points, missing inputs, assumptions, band and citation."""

    score: str
    total: float | None
    criteria: list[CriterionResult]
    missing: list[str]
    assumptions: list[str]
    band: str | None
    interpretation: str | None
    citation: str
    unit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "total": self.total,
            "unit": self.unit,
            "band": self.band,
            "interpretation": self.interpretation,
            "criteria": [c.__dict__ for c in self.criteria],
            "missing": self.missing,
            "assumptions": self.assumptions,
            "citation": self.citation,
            "references": sorted({r for c in self.criteria for r in c.references}),
        }


class UnknownScoreError(SmartcareError):
    status = 404
    title = "Unknown score"


@cache
def _tables() -> dict[str, dict]:
    out = {}
    for path in sorted(TABLES.glob("*.json")):
        table = json.loads(path.read_text(encoding="utf-8"))
        if "criteria" not in table:  # formulas.json, ingredients.json, fhir_inputs.json
            continue
        out[name_key(table["name"])] = table
    return out


def name_key(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def list_tables() -> list[str]:
    """Names of the table-driven scores."""
    return [t["name"] for t in _tables().values()]


def load_table(name: str) -> dict:
    """The score table called ``name`` (case and punctuation ignored). Raises UnknownScoreError."""
    table = _tables().get(name_key(name))
    if table is None:
        raise UnknownScoreError(f"unknown score {name!r}; known: {', '.join(list_tables())}")
    return table


def _evidence(raw: Any) -> Evidence:
    return raw if isinstance(raw, Evidence) else Evidence(raw)


def _norm(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def _cond(cond: Mapping, inputs: Mapping[str, Evidence]) -> bool | None:
    """True/False when the input is present, None when it is missing."""
    ev = inputs.get(cond["input"])
    if ev is None or ev.value is None:
        return None
    v = ev.value
    for op, ref in cond.items():
        if op == "input":
            continue
        if op == "is":
            return bool(v) is bool(ref)
        if op == "eq":
            return _norm(v) == _norm(ref)
        if op == "in":
            return _norm(v) in {_norm(x) for x in ref}
        v = float(v)
        return {"gt": v > ref, "ge": v >= ref, "lt": v < ref, "le": v <= ref}[op]
    raise SmartcareError(f"condition without operator: {cond}")


def _gate(when: Mapping | None, inputs: Mapping[str, Evidence]) -> bool | None:
    if not when:
        return True
    for name, want in when.items():
        ev = inputs.get(name)
        if ev is None or ev.value is None:
            return None
        if _norm(ev.value) != _norm(want):
            return False
    return True


def _band_points(bands: list[Mapping], value: float, inputs: Mapping[str, Evidence]) -> float:
    for band in bands:
        if _gate(band.get("when"), inputs) is not True:
            continue
        if "max" in band and value > band["max"]:
            continue
        if "lt" in band and value >= band["lt"]:
            continue
        return band["points"]
    raise SmartcareError(f"value {value} matches no band")


def _criterion(crit: Mapping, inputs: Mapping[str, Evidence], missing: list[str], assumptions: list[str]):
    label = crit.get("label", crit["id"])
    if "input" in crit:
        name = crit["input"]
        ev = inputs.get(name)
        if ev is None or ev.value is None:
            if "choices" in crit and "default" in crit:
                missing.append(name)
                assumptions.append(f"{label}: {name} not recorded, assumed {crit['default']!r}")
                return CriterionResult(crit["id"], label, crit["choices"][crit["default"]], crit["default"], [], True)
            missing.append(name)
            assumptions.append(f"{label}: {name} not recorded, scored 0 (assumed normal)")
            return CriterionResult(crit["id"], label, 0, None, [], True)
        if "linear" in crit:  # points = offset + value x factor (PSI age, APACHE II 15 - GCS)
            points = crit.get("offset", 0) + float(ev.value) * crit["linear"]
            return CriterionResult(crit["id"], label, points, ev.value, list(ev.references))
        if "choices" in crit:
            choices = {_norm(k): v for k, v in crit["choices"].items()}
            key = _norm(ev.value)
            if key not in choices:
                raise SmartcareError(f"{label}: {ev.value!r} is not one of {sorted(crit['choices'])}")
            points = choices[key]
        else:
            points = _band_points(crit["bands"], float(ev.value), inputs)
        return CriterionResult(crit["id"], label, points, ev.value, list(ev.references))
    if "count" in crit:
        results = [_cond(c, inputs) for c in crit["count"]]
        refs = _refs(crit["count"], inputs)
        force = crit.get("force")
        if force and any(_cond(c, inputs) for c in force["any"]):
            return CriterionResult(crit["id"], label, force["points"], "forced", refs + _refs(force["any"], inputs))
        absent = [c["input"] for c, r in zip(crit["count"], results, strict=True) if r is None]
        if absent:
            missing.extend(absent)
            assumptions.append(f"{label}: {', '.join(absent)} not recorded, assumed absent")
        n = sum(1 for r in results if r)
        return CriterionResult(crit["id"], label, _band_points(crit["bands"], n, inputs), n, refs)
    if "levels" in crit:
        return _levels(crit, label, inputs, missing, assumptions)
    conds = crit.get("any") or crit.get("all")
    results = [_cond(c, inputs) for c in conds]
    met = any(results) if "any" in crit else (all(r is True for r in results))
    refs = _refs(conds, inputs)
    if all(r is None for r in results):
        names = sorted({c["input"] for c in conds})
        missing.extend(n for n in names if n not in missing)
        assumptions.append(f"{label}: {' / '.join(names)} not recorded, assumed absent")
        return CriterionResult(crit["id"], label, 0, None, [], True)
    return CriterionResult(crit["id"], label, crit["points"] if met else 0, bool(met), refs)


def _met(level: Mapping, inputs: Mapping[str, Evidence]) -> bool | None:
    results = [_cond(c, inputs) for c in level.get("any") or level.get("all")]
    if all(r is None for r in results):
        return None
    return any(results) if "any" in level else all(r is True for r in results)


def _levels(crit: Mapping, label: str, inputs: Mapping[str, Evidence], missing: list[str], assumptions: list[str]):
    names = list(dict.fromkeys(c["input"] for lv in crit["levels"] for c in lv.get("any") or lv.get("all")))
    refs = _refs([{"input": n} for n in names], inputs)
    values = {n: inputs[n].value for n in names if n in inputs}
    seen = False
    for level in crit["levels"]:
        met = _met(level, inputs)
        seen = seen or met is not None
        if met:
            return CriterionResult(crit["id"], label, level["points"], values, refs)
    absent = [n for n in names if n not in inputs]
    if not seen:
        missing.extend(n for n in absent if n not in missing)
        assumptions.append(f"{label}: {' / '.join(absent)} not recorded, scored 0 (assumed normal)")
        return CriterionResult(crit["id"], label, 0, None, [], True)
    return CriterionResult(crit["id"], label, 0, values, refs)


DERIVED_FROM = {  # derived input -> the inputs it is computed from (see ``_derive``)
    "map": ("sbp", "dbp"),
    "pf_ratio": ("pao2", "fio2"),
    "aa_gradient": ("pao2", "fio2", "paco2"),
    "respiratory_support": ("mechanical_ventilation", "cpap"),
}


def _derive(names: list[str], ins: dict[str, Evidence]) -> None:
    """Add derived inputs (see module doc) that are not given directly and whose sources are present."""

    def have(*keys):
        return all(k in ins for k in keys)

    def put(name, value, *keys):
        refs = tuple(dict.fromkeys(r for k in keys for r in ins[k].references))
        ins[name] = Evidence(value, refs, f"derived from {', '.join(keys)}")

    for name in names:
        if name in ins:
            continue
        if name == "map" and have("sbp", "dbp"):
            put("map", (2 * float(ins["dbp"].value) + float(ins["sbp"].value)) / 3, "sbp", "dbp")
        elif name == "pf_ratio" and have("pao2", "fio2"):
            put("pf_ratio", float(ins["pao2"].value) / (float(ins["fio2"].value) / 100), "pao2", "fio2")
        elif name == "aa_gradient" and have("pao2", "fio2", "paco2"):
            pa_o2 = float(ins["fio2"].value) / 100 * (760 - 47) - float(ins["paco2"].value) / 0.8
            put("aa_gradient", pa_o2 - float(ins["pao2"].value), "fio2", "paco2", "pao2")
        elif name == "respiratory_support":
            keys = [k for k in ("mechanical_ventilation", "cpap") if k in ins]
            if keys:
                put("respiratory_support", any(bool(ins[k].value) for k in keys), *keys)


def _refs(conds, inputs: Mapping[str, Evidence]) -> list[str]:
    out: list[str] = []
    for c in conds:
        ev = inputs.get(c["input"])
        if ev is not None:
            out.extend(r for r in ev.references if r not in out)
    return out


def interpret(entries: list[Mapping], total: float, inputs: Mapping[str, Evidence], criteria=()) -> Mapping:
    """First interpretation entry matching ``total`` (and gates); an empty dict when none does."""
    for entry in entries:
        if "min" in entry and total < entry["min"]:
            continue
        if "max" in entry and total > entry["max"]:
            continue
        if _gate(entry.get("when"), inputs) is False:
            continue
        if "if_any_criterion_points_ge" in entry and not any(
            c.points >= entry["if_any_criterion_points_ge"] for c in criteria
        ):
            continue
        return entry
    return {}


def compute(name: str, inputs: Mapping[str, Any]) -> ScoreResult:
    """Compute table-driven score ``name`` from ``inputs`` (name -> value or Evidence).

    Returns a ScoreResult; missing inputs are listed with their assumption, never raised.
    Raises:
        UnknownScoreError: no table called ``name``.
        SmartcareError: a categorical value outside the table's choices.
    """
    table = load_table(name)
    ins = {k: _evidence(v) for k, v in inputs.items() if v is not None and _evidence(v).value is not None}
    missing: list[str] = []
    assumptions: list[str] = []
    _derive(table.get("derive", []), ins)
    for key, default in table.get("input_defaults", {}).items():
        if key not in ins:
            ins[key] = Evidence(default, (), "default")
            missing.append(key)
            assumptions.append(f"{key} not recorded, assumed {default!r}")
    criteria = []
    for crit in table["criteria"]:
        gate = _gate(crit.get("when"), ins)
        if gate is False:
            continue
        if gate is None:
            names = sorted(crit["when"])
            missing.extend(n for n in names if n not in missing)
            assumptions.append(f"{crit.get('label', crit['id'])}: needs {', '.join(names)}; scored 0")
            criteria.append(CriterionResult(crit["id"], crit.get("label", crit["id"]), 0, None, [], True))
            continue
        criteria.append(_criterion(crit, ins, missing, assumptions))
    total = sum(c.points for c in criteria)
    total = int(total) if float(total).is_integer() else total
    band = interpret(table.get("interpretation", []), total, ins, criteria)
    return ScoreResult(
        score=table["name"],
        total=total,
        criteria=criteria,
        missing=list(dict.fromkeys(missing)),
        assumptions=assumptions,
        band=band.get("label"),
        interpretation=band.get("interpretation"),
        citation=table["citation"],
    )
