"""The fast structural pre-check never says "valid" where the R4B pydantic models say "invalid"."""

from __future__ import annotations

import copy
import json
import random

import pytest
from fhir.resources.R4B import get_fhir_model_class

from smartcare.hospital.fhir import fastcheck, validation
from smartcare.hospital.fhir.outcome import FhirError

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8302-2"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2020-01-02T10:00:00+00:00",
    "valueQuantity": {"value": 180.5, "unit": "cm", "system": "http://unitsofmeasure.org", "code": "cm"},
}
# JSON values a mutation may put anywhere.
VALUES = [None, "", " x", "x ", 1, 1.5, True, "true", "2020-13-01", "2020-01-01T10:00:00", [], {}, [None],
          ["a"], {"a": 1}, "abc def", -1, 10**12, "1.0"]


def _pydantic_ok(resource: dict, rtype: str | None = None) -> bool:
    try:
        get_fhir_model_class(rtype or resource["resourceType"]).model_validate(resource)
    except Exception:
        return False
    return True


def _fast(resource: dict, rtype: str | None = None) -> bool:
    return fastcheck.surely_valid(get_fhir_model_class(rtype or resource["resourceType"]), resource)


@pytest.fixture(scope="module")
def samples(examples_dir, synthea_dir) -> list[dict]:
    examples = [json.loads(f.read_text()) for f in sorted(examples_dir.glob("*.json"))]
    bundle = json.loads(sorted((synthea_dir / "bundles").glob("*.json"))[0].read_text())
    synthea = [e["resource"] for e in bundle["entry"]]
    pool = [r for r in examples + synthea if r.get("resourceType") not in validation.R4_ONLY_TYPES]
    return [r for r in pool if _has_model(r.get("resourceType"))]


def _has_model(rtype) -> bool:
    try:
        get_fhir_model_class(rtype)
    except (KeyError, ValueError, TypeError):
        return False
    return True


def test_valid_resources_take_the_fast_path(samples):
    verdicts = [(_fast(r), _pydantic_ok(r)) for r in samples]
    assert not [r.get("id") for r, (fast, ok) in zip(samples, verdicts, strict=True) if fast and not ok]
    assert sum(fast for fast, _ in verdicts) > 0.9 * len(samples)


def _nodes(x, out):
    if isinstance(x, dict | list):
        out.append(x)
        for v in x.values() if isinstance(x, dict) else x:
            _nodes(v, out)
    return out


def _mutate(resource: dict, rng: random.Random) -> dict:
    r = copy.deepcopy(resource)
    node = rng.choice(_nodes(r, []))
    if isinstance(node, dict) and node:
        k = rng.choice(list(node))
        op = rng.randrange(4)
        if op == 0:
            node[k] = rng.choice(VALUES)
        elif op == 1:
            del node[k]
        elif op == 2:
            node[rng.choice(["bogus", "_" + k, k + "x", "valueString", "resourceType"])] = rng.choice(VALUES)
        else:
            node[k] = [node[k]] if not isinstance(node[k], list) else (node[k][0] if node[k] else None)
    elif isinstance(node, list) and node:
        node[rng.randrange(len(node))] = rng.choice(VALUES)
    return r


def test_broken_resources_are_never_fast_accepted(samples):
    rng = random.Random(7)
    verdicts = []
    for _ in range(1500):
        original = rng.choice(samples)
        r = _mutate(original, rng)
        fast, ok = _fast(r, original["resourceType"]), _pydantic_ok(r, original["resourceType"])
        assert not (fast and not ok), json.dumps(r)[:400]
        verdicts.append((fast, ok))
    assert (False, False) in verdicts and (True, True) in verdicts


@pytest.mark.parametrize(
    "change",
    [
        {"bogus": 1},  # unknown element
        {"status": 3},  # wrong primitive type
        {"status": None},  # null
        {"code": None},  # required complex element
        {"valueString": "tall"},  # two values of one choice
        {"_status": {"extension": []}},  # primitive extension: left to pydantic
        {"category": [None]},  # null inside a list of complex elements
        {"effectiveDateTime": "2020-02-30"},  # a date the regex allows but the calendar does not
    ],
)
def test_each_rule_falls_back_to_pydantic(change):
    resource = {**copy.deepcopy(OBS), **change}
    assert not _fast(resource)
    assert _fast(OBS) and _pydantic_ok(OBS)


def test_missing_required_and_error_reports_are_unchanged():
    no_status = {k: v for k, v in OBS.items() if k != "status"}
    assert not _fast(no_status)
    with pytest.raises(FhirError) as info:
        validation.validate(no_status)
    assert info.value.status == 400 and info.value.expression == ["Observation.status"]
