"""Search: parameter types, prefixes, modifiers, chaining, _has, _include, _sort, paging, _summary."""

from __future__ import annotations

import pytest

PATIENTS = [
    {
        "resourceType": "Patient",
        "id": "p1",
        "gender": "male",
        "birthDate": "1974-12-25",
        "active": True,
        "name": [{"family": "Chalmers", "given": ["Peter", "James"]}],
        "identifier": [{"system": "urn:mrn", "value": "111"}],
        "managingOrganization": {"reference": "Organization/o1"},
    },
    {
        "resourceType": "Patient",
        "id": "p2",
        "gender": "female",
        "birthDate": "1980-03",
        "name": [{"family": "Müller", "given": ["Anna"]}],
        "identifier": [{"system": "urn:mrn", "value": "222"}],
    },
    {
        "resourceType": "Patient",
        "id": "p3",
        "gender": "female",
        "birthDate": "2001-07-14",
        "name": [{"family": "Chalmerson", "given": ["Zoe"]}],
        "meta": {"tag": [{"system": "urn:t", "code": "vip"}]},
    },
]
ORG = {
    "resourceType": "Organization",
    "id": "o1",
    "name": "Good Health Clinic",
    "partOf": {"reference": "Organization/o0"},
}
ORG0 = {"resourceType": "Organization", "id": "o0", "name": "Health Holding"}


def obs(oid: str, patient: str, code: str, value: float, when: str, unit: str = "mm[Hg]") -> dict:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": "Blood pressure systolic"},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit},
    }


BP = {
    "resourceType": "Observation",
    "id": "bp",
    "status": "final",
    "code": {"coding": [{"code": "85354-9"}]},
    "component": [
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120}},
        {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 80}},
    ],
}
OBS = [
    obs("o-1", "p1", "8480-6", 120, "2020-01-01T10:00:00Z"),
    obs("o-2", "p1", "8480-6", 150, "2021-06-15"),
    obs("o-3", "p2", "8480-6", 99.5, "2019-05"),
    obs("o-4", "p3", "8462-4", 80, "2022-02-02T08:30:00+02:00"),
]


@pytest.fixture(scope="module", autouse=True)
def data(client):
    for res in [ORG0, ORG, *PATIENTS, *OBS, BP]:
        assert client.put(f"/fhir/{res['resourceType']}/{res['id']}", json=res).status_code == 201
    for i in range(25):
        client.put(
            f"/fhir/Device/d{i:02d}",
            json={"resourceType": "Device", "id": f"d{i:02d}", "patient": {"reference": "Patient/p2"}},
        )


def ids(client, query: str) -> list[str]:
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


CASES = [
    # string: default starts-with, case and accent insensitive; :exact; :contains
    ("Patient?name=chalm", {"p1", "p3"}),
    ("Patient?family=muller", {"p2"}),
    ("Patient?family:exact=Chalmers", {"p1"}),
    ("Patient?family:exact=chalmers", set()),
    ("Patient?name:contains=merso", {"p3"}),
    ("Patient?given=peter,zoe", {"p1", "p3"}),
    # token
    ("Patient?gender=female", {"p2", "p3"}),
    ("Patient?gender:not=female", {"p1"}),
    ("Patient?identifier=urn:mrn|111", {"p1"}),
    ("Patient?identifier=|111", set()),
    ("Patient?identifier=urn:mrn|", {"p1", "p2"}),
    ("Patient?active=true", {"p1"}),
    ("Observation?code=http://loinc.org|8480-6", {"o-1", "o-2", "o-3"}),
    ("Observation?code:text=pressure", {"o-1", "o-2", "o-3", "o-4"}),
    ("Patient?_tag=urn:t|vip", {"p3"}),
    # :missing
    ("Patient?active:missing=true", {"p2", "p3"}),
    ("Patient?organization:missing=false", {"p1"}),
    # date prefixes and precision
    ("Patient?birthdate=1980", {"p2"}),
    ("Patient?birthdate=1980-03-10", set()),
    ("Patient?birthdate=gt1980-12-31", {"p3"}),
    ("Patient?birthdate=lt1980-03-10", {"p1", "p2"}),
    ("Patient?birthdate=ge1980-03-31", {"p2", "p3"}),
    ("Patient?birthdate=le1974-12-25", {"p1"}),
    ("Patient?birthdate=ne1974-12-25", {"p2", "p3"}),
    ("Patient?birthdate=sa1980-01-01", {"p2", "p3"}),
    ("Patient?birthdate=eb1980-03-15", {"p1"}),
    ("Patient?birthdate=ap2001-07-01", {"p3"}),  # 10 % of the distance to now
    ("Observation?date=2022-02-02T06:30:00Z", {"o-4"}),
    ("Observation?date=ge2020-01-01&date=lt2021-01-01", {"o-1"}),
    # quantity / number prefixes
    ("Observation?value-quantity=120", {"o-1"}),
    ("Observation?value-quantity=100", {"o-3"}),
    ("Observation?value-quantity=gt120", {"o-2"}),
    ("Observation?value-quantity=le99.5", {"o-3", "o-4"}),
    ("Observation?value-quantity=ap148", {"o-2"}),
    ("Observation?value-quantity=150|http://unitsofmeasure.org|mm[Hg]", {"o-2"}),
    ("Observation?value-quantity=150||kg", set()),
    # reference forms and modifiers
    ("Observation?subject=Patient/p1", {"o-1", "o-2"}),
    ("Observation?patient=p2", {"o-3"}),
    ("Observation?subject:Patient=p3", {"o-4"}),
    ("Observation?subject=http://example.org/fhir/Patient/p2", {"o-3"}),
    # chained and reverse-chained
    ("Observation?subject:Patient.name=peter", {"o-1", "o-2"}),
    ("Observation?patient.gender=female&code=8480-6", {"o-3"}),
    ("Observation?patient.organization.name=good", {"o-1", "o-2"}),
    ("Patient?_has:Observation:patient:code=8462-4", {"p3"}),
    ("Patient?_has:Observation:subject:value-quantity=gt130", {"p1"}),
    ("Organization?_has:Patient:organization:_has:Observation:patient:code=8480-6", {"o1"}),
    # composite (two components from the same element)
    ("Observation?code-value-quantity=http://loinc.org|8480-6$gt130", {"o-2"}),
    ("Observation?code-value-quantity=8480-6$lt100||mm[Hg]", {"o-3"}),
    ("Observation?component-code-value-quantity=8480-6$gt110", {"bp"}),
    ("Observation?component-code-value-quantity=8462-4$gt110", set()),
    ("Observation?combo-code-value-quantity=8462-4$80", {"o-4", "bp"}),
    # _id and uri
    ("Patient?_id=p1,p3", {"p1", "p3"}),
    ("Organization?partof=Organization/o0", {"o1"}),
]


@pytest.mark.parametrize(("query", "expected"), CASES)
def test_search_matches(client, query, expected):
    assert set(ids(client, query)) == expected


def test_sort_multi_key(client):
    assert ids(client, "Patient?_sort=-birthdate") == ["p3", "p2", "p1"]
    assert ids(client, "Patient?_sort=gender,-birthdate") == ["p3", "p2", "p1"]
    assert ids(client, "Patient?_sort=family") == ["p1", "p3", "p2"]
    assert ids(client, "Observation?_sort=-value-quantity") == ["o-2", "o-1", "o-3", "o-4", "bp"]
    assert ids(client, "Patient?_sort=-_id") == ["p3", "p2", "p1"]


def test_include_revinclude_iterate(client):
    b = client.get("/fhir/Observation?code=8480-6&_include=Observation:subject").json()
    modes = {(e["resource"]["resourceType"], e["resource"]["id"]): e["search"]["mode"] for e in b["entry"]}
    assert modes[("Patient", "p1")] == "include" and modes[("Patient", "p2")] == "include"
    assert ("Patient", "p3") not in modes and b["total"] == 3
    b = client.get(
        "/fhir/Observation?_id=o-1&_include=Observation:subject&_include:iterate=Patient:organization"
    ).json()
    assert {e["resource"]["id"] for e in b["entry"]} == {"o-1", "p1", "o1"}
    b = client.get("/fhir/Patient?_id=p1&_revinclude=Observation:subject").json()
    assert {e["resource"]["id"] for e in b["entry"]} == {"p1", "o-1", "o-2"}
    b = client.get(
        "/fhir/Organization?_id=o0&_revinclude=Organization:partof&_revinclude:iterate=Patient:organization"
    ).json()
    assert {e["resource"]["id"] for e in b["entry"]} == {"o0", "o1", "p1"}


def test_paging_is_stable_and_complete(client):
    b = client.get("/fhir/Device?_count=10&_sort=_id").json()
    assert b["total"] == 25
    seen = [e["resource"]["id"] for e in b["entry"]]
    client.put("/fhir/Device/d00a", json={"resourceType": "Device", "id": "d00a"})  # does not shift pages
    pages = 1
    while nxt := next((lk["url"] for lk in b["link"] if lk["relation"] == "next"), None):
        b = client.get(nxt.replace("http://testserver", "")).json()
        assert b["total"] == 25
        seen += [e["resource"]["id"] for e in b["entry"]]
        pages += 1
    assert pages == 3 and seen == [f"d{i:02d}" for i in range(25)]
    prev = next(lk["url"] for lk in b["link"] if lk["relation"] == "previous")
    assert "_getpagesoffset=10" in prev
    assert client.get("/fhir?_getpages=nope&_getpagesoffset=0").status_code == 410
    client.delete("/fhir/Device/d00a")


def test_summary_elements_total(client):
    b = client.get("/fhir/Patient?_summary=count").json()
    assert b["total"] == 3 and b.get("entry", []) == []
    b = client.get("/fhir/Patient?_id=p1&_summary=true").json()
    res = b["entry"][0]["resource"]
    assert "name" in res and "gender" in res and "SUBSETTED" in str(res["meta"]["tag"])
    b = client.get("/fhir/Patient?_id=p1&_elements=gender").json()
    assert set(b["entry"][0]["resource"]) == {"resourceType", "id", "meta", "gender"}
    assert "total" not in client.get("/fhir/Patient?_total=none").json()
    assert client.get("/fhir/Patient?_total=estimate").json()["total"] == 3
    b = client.get("/fhir/Patient/p1?_summary=text").json()
    assert set(b) <= {"resourceType", "id", "meta", "text"}


def test_post_search_and_system_search(client):
    r = client.post("/fhir/Patient/_search", data={"family": "chalmers"})
    assert r.status_code == 200 and {e["resource"]["id"] for e in r.json()["entry"]} == {"p1", "p3"}
    r = client.get("/fhir?_id=p1,o1")
    assert {e["resource"]["resourceType"] for e in r.json()["entry"]} == {"Patient", "Organization"}


def test_everything(client):
    b = client.get("/fhir/Patient/p1/$everything").json()
    got = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in b["entry"]}
    assert got == {("Patient", "p1"), ("Observation", "o-1"), ("Observation", "o-2")}
    assert client.get("/fhir/Patient/zzz/$everything").status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "Patient?birthdate=notadate",
        "Patient?nope=1",
        "Patient?gender:in=x",
        "Observation?value-quantity=abc",
        "Patient?_sort=nope",
        "Patient?_count=x",
        "Patient?_has:Observation=1",
        "Patient?_include=Patient",
    ],
)
def test_bad_search_is_400(client, query):
    r = client.get(f"/fhir/{query}")
    assert r.status_code == 400 and r.json()["resourceType"] == "OperationOutcome"


def test_lenient_handling_ignores_unknown(client):
    r = client.get("/fhir/Patient?nope=1&gender=male", headers={"Prefer": "handling=lenient"})
    assert r.status_code == 200 and [e["resource"]["id"] for e in r.json()["entry"]] == ["p1"]
