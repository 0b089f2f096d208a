"""REST interactions: CRUD, versions, history, conditional interactions, Prefer, _format, errors."""

from __future__ import annotations

import time

import pytest

P = "/fhir/Patient"


def patient(family: str = "Chalmers", **extra) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family, "given": ["Peter"]}], **extra}


def test_create_read_versions(client):
    r = client.post(P, json=patient())
    assert r.status_code == 201
    assert r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    rid = body["id"]
    assert body["meta"]["versionId"] == "1" and body["meta"]["lastUpdated"].endswith("Z")
    assert r.headers["etag"] == 'W/"1"'
    assert r.headers["location"].endswith(f"/fhir/Patient/{rid}/_history/1")
    assert client.get(f"{P}/{rid}").json()["name"][0]["family"] == "Chalmers"
    r = client.put(f"{P}/{rid}", json=patient("Windsor", id=rid))
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    assert client.get(f"{P}/{rid}/_history/1").json()["name"][0]["family"] == "Chalmers"
    assert client.get(f"{P}/{rid}/_history/2").json()["name"][0]["family"] == "Windsor"
    assert client.get(f"{P}/{rid}/_history/9").status_code == 404
    hist = client.get(f"{P}/{rid}/_history").json()
    assert hist["type"] == "history" and [e["resource"]["meta"]["versionId"] for e in hist["entry"]] == ["2", "1"]


def test_client_id_ignored_on_create_and_create_on_update(client):
    r = client.post(P, json=patient(id="client-chosen"))
    assert r.status_code == 201 and r.json()["id"] != "client-chosen"
    r = client.put(f"{P}/pat-put-1", json=patient(id="pat-put-1"))
    assert r.status_code == 201 and r.json()["meta"]["versionId"] == "1"


def test_delete_gives_410_and_history_keeps_it(client):
    rid = client.post(P, json=patient()).json()["id"]
    assert client.delete(f"{P}/{rid}").status_code == 204
    r = client.get(f"{P}/{rid}")
    assert r.status_code == 410 and r.json()["issue"][0]["code"] == "deleted"
    assert client.get(f"{P}/{rid}/_history/2").status_code == 410
    assert client.get(f"{P}/{rid}/_history/1").status_code == 200
    assert client.get(f"{P}?_id={rid}").json()["total"] == 0
    r = client.put(f"{P}/{rid}", json=patient(id=rid))  # re-create after delete
    assert r.status_code == 201 and r.json()["meta"]["versionId"] == "3"
    assert client.get(f"{P}/never-there").status_code == 404


def test_if_match_optimistic_locking(client):
    rid = client.post(P, json=patient()).json()["id"]
    ok = client.put(f"{P}/{rid}", json=patient("A", id=rid), headers={"If-Match": 'W/"1"'})
    assert ok.status_code == 200
    stale = client.put(f"{P}/{rid}", json=patient("B", id=rid), headers={"If-Match": 'W/"1"'})
    assert stale.status_code == 412 and stale.json()["resourceType"] == "OperationOutcome"
    assert client.get(f"{P}/{rid}").json()["name"][0]["family"] == "A"
    assert client.delete(f"{P}/{rid}", headers={"If-Match": 'W/"1"'}).status_code == 412
    r = client.get(f"{P}/{rid}", headers={"If-None-Match": 'W/"2"'})
    assert r.status_code == 304


def test_conditional_create_update_delete(client):
    ident = {"identifier": [{"system": "urn:mrn", "value": "C-1"}]}
    h = {"If-None-Exist": "identifier=urn:mrn|C-1"}
    first = client.post(P, json=patient(**ident), headers=h)
    second = client.post(P, json=patient(**ident), headers=h)
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["id"] == second.json()["id"]
    r = client.put(f"{P}?identifier=urn:mrn|C-1", json=patient("Updated", **ident))
    assert r.status_code == 200 and r.json()["id"] == first.json()["id"] and r.json()["meta"]["versionId"] == "2"
    r = client.put(
        f"{P}?identifier=urn:mrn|C-2", json=patient("New", identifier=[{"system": "urn:mrn", "value": "C-2"}])
    )
    assert r.status_code == 201
    client.post(P, json=patient(**ident))  # now two match C-1
    assert client.post(P, json=patient(**ident), headers=h).status_code == 412
    assert client.delete(f"{P}?identifier=urn:mrn|C-1").status_code == 412
    assert client.delete(f"{P}?identifier=urn:mrn|C-2").status_code == 204
    assert client.get(f"{P}?identifier=urn:mrn|C-2").json()["total"] == 0


def test_prefer_return(client):
    r = client.post(P, json=patient(), headers={"Prefer": "return=minimal"})
    assert r.status_code == 201 and r.content == b"" and r.headers["location"]
    r = client.post(P, json=patient(), headers={"Prefer": "return=OperationOutcome"})
    assert r.json()["resourceType"] == "OperationOutcome" and r.json()["issue"][0]["severity"] == "information"
    r = client.post(P, json=patient(), headers={"Prefer": "return=representation"})
    assert r.json()["resourceType"] == "Patient"


def test_format_and_content_negotiation(client):
    assert client.get("/fhir/metadata?_format=json").status_code == 200
    assert client.get("/fhir/metadata?_format=application/fhir%2Bjson").status_code == 200
    r = client.get("/fhir/metadata?_format=xml")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+xml")
    r = client.get("/fhir/metadata?_format=turtle")
    assert r.status_code == 406 and r.json()["issue"][0]["expression"] == ["_format"]
    r = client.post(P, content=b"<Patient/>", headers={"Content-Type": "application/fhir+xml"})
    assert r.status_code == 400 and "not in the FHIR namespace" in r.json()["issue"][0]["diagnostics"]
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    r = client.get("/fhir/metadata", headers={"Accept": browser})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    r = client.get("/fhir/metadata", headers={"Accept": "application/fhir+xml"})
    assert r.headers["content-type"].startswith("application/fhir+xml")


def test_json_patch(client):
    rid = client.post(P, json=patient(active=True)).json()["id"]
    ops = [
        {"op": "replace", "path": "/active", "value": False},
        {"op": "add", "path": "/name/0/given/-", "value": "James"},
    ]
    r = client.patch(f"{P}/{rid}", json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 200
    assert r.json()["active"] is False and r.json()["name"][0]["given"] == ["Peter", "James"]
    assert r.json()["meta"]["versionId"] == "2"
    bad = [{"op": "test", "path": "/active", "value": True}]
    r = client.patch(f"{P}/{rid}", json=bad, headers={"Content-Type": "application/json-patch+json"})
    assert r.status_code == 422 and r.json()["issue"][0]["expression"] == ["/active"]
    r = client.patch(
        f"{P}/{rid}",
        json=[{"op": "add", "path": "/gender", "value": 3}],
        headers={"Content-Type": "application/json-patch+json"},
    )
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Patient.gender"]


@pytest.mark.parametrize(
    ("url", "body", "expression"),
    [
        (P, b'{"resourceType": "Patient", ', None),
        (P, b'{"resourceType": "Patient", "gender": 5}', "Patient.gender"),
        (P, b'{"resourceType": "Patient", "name": [{"given": "x"}]}', "Patient.name[0].given"),
        (P, b'{"resourceType": "Patient", "unknownElement": 1}', "Patient.unknownElement"),
        ("/fhir/Observation", b'{"resourceType": "Observation", "code": {"text": "x"}}', "Observation.status"),
        (P, b'{"resourceType": "Patient", "birthDate": "1999-13-45"}', "Patient.birthDate"),
        (P, b'{"resourceType": "Observation", "status": "final", "code": {}}', "resourceType"),
        (P, b"[1, 2]", None),
    ],
)
def test_invalid_resources_are_rejected_with_paths(client, url, body, expression):
    r = client.post(url, content=body, headers={"Content-Type": "application/fhir+json"})
    assert r.status_code == 400
    out = r.json()
    assert out["resourceType"] == "OperationOutcome" and out["issue"][0]["severity"] == "error"
    if expression:
        assert out["issue"][0]["expression"][0] == expression


def test_update_id_mismatch_and_unknown_type(client):
    r = client.put(f"{P}/abc", json=patient(id="xyz"))
    assert r.status_code == 400 and r.json()["issue"][0]["expression"] == ["Patient.id"]
    assert client.get("/fhir/NotAType/1").status_code == 404


def test_history_type_system_since_count(client):
    start = time.time()
    time.sleep(0.01)
    from datetime import UTC, datetime

    since = datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")
    ids = [client.post("/fhir/Practitioner", json={"resourceType": "Practitioner"}).json()["id"] for _ in range(3)]
    h = client.get(f"/fhir/Practitioner/_history?_since={since}").json()
    assert {e["resource"]["id"] for e in h["entry"]} == set(ids)
    h = client.get("/fhir/Practitioner/_history?_count=2").json()
    assert len(h["entry"]) == 2 and any(lk["relation"] == "next" for lk in h["link"])
    sysh = client.get(f"/fhir/_history?_since={since}").json()
    assert len(sysh["entry"]) == 3 and sysh["entry"][0]["request"]["method"] == "POST"
    assert "entry" not in client.get("/fhir/_history?_at=1900-01-01").json()  # R4 JSON: no empty arrays


def test_capability_statement(client):
    cs = client.get("/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    rest = cs["rest"][0]
    patient_res = next(r for r in rest["resource"] if r["type"] == "Patient")
    names = {p["name"] for p in patient_res["searchParam"]}
    assert {"name", "birthdate", "identifier", "_lastUpdated"} <= names
    assert {"transaction", "batch"} <= {i["code"] for i in rest["interaction"]}
    assert len(rest["resource"]) > 130


def test_unsupported_body_type_is_415_and_capability_is_dated(client):
    r = client.post(P, content=b"name=x", headers={"Content-Type": "text/plain"})
    assert r.status_code == 415 and r.json()["issue"][0]["expression"] == ["Content-Type"]
    date = client.get("/fhir/metadata").json()["date"]
    assert date[:4].isdigit() and date != "2026-01-01"  # when this server started, not a constant
