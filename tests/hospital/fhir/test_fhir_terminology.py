"""Token ``:in``/``:not-in`` (stored ValueSets), ``:above``/``:below`` (stored CodeSystems), ``:of-type``."""

from __future__ import annotations

import pytest

ANIMALS = "http://example.org/cs/animals"
V2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CODE_SYSTEM = {
    "resourceType": "CodeSystem",
    "id": "animals",
    "url": ANIMALS,
    "status": "active",
    "content": "complete",
    "property": [{"code": "broader", "uri": "http://hl7.org/fhir/concept-properties#parent", "type": "code"}],
    "concept": [
        {
            "code": "animal",
            "concept": [
                {"code": "mammal", "concept": [{"code": "dog"}, {"code": "cat"}]},
                {"code": "bird", "concept": [{"code": "parrot"}]},
            ],
        },
        {"code": "fish", "property": [{"code": "parent", "valueCode": "animal"}]},
        {"code": "goldfish", "property": [{"code": "broader", "valueCode": "fish"}]},
    ],
}


def value_set(vid: str, compose: dict | None = None, **extra) -> dict:
    vs = {"resourceType": "ValueSet", "id": vid, "url": f"http://example.org/vs/{vid}", "status": "active", **extra}
    if compose is not None:
        vs["compose"] = compose
    return vs


VALUE_SETS = [
    value_set("pets", {"include": [{"system": ANIMALS, "concept": [{"code": "dog"}, {"code": "parrot"}]}]}),
    value_set(
        "female",
        {"include": [{"system": "http://hl7.org/fhir/administrative-gender", "concept": [{"code": "female"}]}]},
    ),
    value_set(
        "mammals",
        {"include": [{"system": ANIMALS, "filter": [{"property": "concept", "op": "is-a", "value": "mammal"}]}]},
    ),
    value_set("all-loinc", {"include": [{"system": "http://loinc.org"}]}),
    value_set(
        "mammals-but-cats",
        {
            "include": [{"valueSet": ["http://example.org/vs/mammals"]}],
            "exclude": [{"system": ANIMALS, "concept": [{"code": "cat"}]}],
        },
    ),
    value_set(
        "expanded",
        expansion={
            "timestamp": "2024-01-01T00:00:00Z",
            "contains": [{"system": ANIMALS, "code": "bird", "contains": [{"system": ANIMALS, "code": "goldfish"}]}],
        },
    ),
    value_set(
        "unknown-filter",
        {
            "include": [
                {"system": "http://nowhere.org/cs", "filter": [{"property": "concept", "op": "is-a", "value": "x"}]}
            ]
        },
    ),
]


def obs(oid: str, system: str, code: str, subject: str = "t-dl") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": f"Patient/{subject}"},
    }


OBS = [
    obs("t-dog", ANIMALS, "dog", "t-mr"),
    obs("t-cat", ANIMALS, "cat"),
    obs("t-mammal", ANIMALS, "mammal"),
    obs("t-parrot", ANIMALS, "parrot"),
    obs("t-goldfish", ANIMALS, "goldfish"),
    obs("t-loinc", "http://loinc.org", "8480-6"),
    obs("t-other", "http://other.org", "dog"),
]


def patient(pid: str, type_code: str, value: str, gender: str) -> dict:
    ident = {"type": {"coding": [{"system": V2, "code": type_code}]}, "system": "urn:ids", "value": value}
    return {"resourceType": "Patient", "id": pid, "identifier": [ident], "gender": gender}


@pytest.fixture(scope="module", autouse=True)
def data(client):
    for res in [
        CODE_SYSTEM,
        *VALUE_SETS,
        patient("t-mr", "MR", "123", "male"),
        patient("t-dl", "DL", "123", "female"),
        *OBS,
    ]:
        r = client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res)
        assert r.status_code == 201, r.text


def search(client, query: str) -> dict:
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return r.json()


def ids(client, query: str) -> set[str]:
    return {e["resource"]["id"] for e in search(client, query).get("entry", []) if e["search"]["mode"] == "match"}


CASES = [
    # :in / :not-in: explicit concepts, by canonical url and by reference
    ("Observation?code:in=http://example.org/vs/pets", {"t-dog", "t-parrot"}),
    ("Observation?code:in=ValueSet/pets", {"t-dog", "t-parrot"}),
    ("Observation?code:in=http://testserver/fhir/ValueSet/pets", {"t-dog", "t-parrot"}),
    # filter is-a on the stored CodeSystem; whole-system include; import minus exclude; pre-expanded
    ("Observation?code:in=http://example.org/vs/mammals", {"t-dog", "t-cat", "t-mammal"}),
    ("Observation?code:in=http://example.org/vs/all-loinc", {"t-loinc"}),
    ("Observation?code:in=http://example.org/vs/mammals-but-cats", {"t-dog", "t-mammal"}),
    ("Observation?code:in=http://example.org/vs/expanded", {"t-goldfish"}),
    (
        "Observation?code:in=http://example.org/vs/pets,http://example.org/vs/all-loinc",
        {"t-dog", "t-parrot", "t-loinc"},
    ),
    ("Observation?code:not-in=http://example.org/vs/mammals", {"t-parrot", "t-goldfish", "t-loinc", "t-other"}),
    # a plain code (no system in the resource) matches by code
    ("Patient?gender:in=http://example.org/vs/female", {"t-dl"}),
    ("Patient?gender:not-in=http://example.org/vs/female", {"t-mr"}),
    # :below / :above over nested concepts and parent properties (declared by uri too)
    (f"Observation?code:below={ANIMALS}|mammal", {"t-dog", "t-cat", "t-mammal"}),
    (f"Observation?code:below={ANIMALS}|animal", {"t-dog", "t-cat", "t-mammal", "t-parrot", "t-goldfish"}),
    (f"Observation?code:below={ANIMALS}|fish", {"t-goldfish"}),
    (f"Observation?code:above={ANIMALS}|dog", {"t-dog", "t-mammal"}),
    (f"Observation?code:above={ANIMALS}|goldfish", {"t-goldfish"}),
    # :of-type on Identifier.type, also through a chain and _has
    (f"Patient?identifier:of-type={V2}|MR|123", {"t-mr"}),
    (f"Patient?identifier:of-type={V2}|DL|123", {"t-dl"}),
    (f"Patient?identifier:of-type={V2}|MR|999", set()),
    (f"Observation?subject:Patient.identifier:of-type={V2}|MR|123", {"t-dog"}),
    ("Patient?_has:Observation:subject:code:in=http://example.org/vs/pets", {"t-mr", "t-dl"}),
    # uri :above / :below
    ("ValueSet?url:below=http://example.org/vs/", {v["id"] for v in VALUE_SETS}),
    ("ValueSet?url:above=http://example.org/vs/pets/sub/path", {"pets"}),
    ("CodeSystem?url:below=http://example.org/cs", {"animals"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_terminology_modifiers(client, query, expected):
    assert ids(client, query) == expected


def test_unknown_code_system_matches_nothing_with_a_warning(client):
    bundle = search(client, "Observation?code:below=http://unknown.org/cs|dog")
    assert [e["search"]["mode"] for e in bundle["entry"]] == ["outcome"] and bundle["total"] == 0
    issue = bundle["entry"][0]["resource"]["issue"][0]
    assert issue["severity"] == "warning" and "not stored" in issue["diagnostics"]
    bundle = search(client, f"Observation?code:below={ANIMALS}|unicorn")
    assert bundle["total"] == 0 and "not defined" in bundle["entry"][0]["resource"]["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("Observation?code:in=http://example.org/vs/unknown-filter", "cannot be expanded"),
        ("Observation?code:in=http://example.org/vs/none", "not stored"),
        ("Observation?code:below=dog", "system|code"),
        (f"Patient?identifier:of-type={V2}|MR", "system|code|value"),
        ("Patient?name:in=http://example.org/vs/pets", "not supported"),
    ],
)
def test_terminology_errors_are_400(client, query, words):
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 400, r.text
    assert r.json()["resourceType"] == "OperationOutcome" and words in r.json()["issue"][0]["diagnostics"]


def test_lenient_handling_keeps_terminology_criteria(client):
    # Prefer: handling=lenient drops only the unknown parameter, never a valid :in criterion.
    r = client.get("/fhir/Observation?nope=1&code:in=http://example.org/vs/pets",
                   headers={"Prefer": "handling=lenient"})
    assert r.status_code == 200
    got = {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}
    assert got == {"t-dog", "t-parrot"}


def test_conditional_update_accepts_terminology_criteria(client):
    # A conditional interaction resolves :in through the stored ValueSet like a search does.
    body = obs("t-cond", "http://example.org/cs/animals", "cat")
    r = client.put("/fhir/Observation?code:in=http://example.org/vs/no-such-set", json=body)
    assert r.status_code == 400
    r = client.delete("/fhir/Observation?code:in=http://example.org/vs/all-loinc&subject=Patient/t-dl")
    assert r.status_code in (200, 204), r.text
    assert "t-loinc" not in ids(client, "Observation?code:in=http://example.org/vs/all-loinc")
