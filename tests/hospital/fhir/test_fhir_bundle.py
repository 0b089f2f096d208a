"""Batch and transaction Bundles, the loader, and the Synthea sample."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.db import dangling_references, idx_reference, resources
from smartcare.hospital.fhir.loader import load_bundle
from smartcare.hospital.fhir.outcome import FhirError


def tx(*entries, kind="transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def post(full: str, res: dict, **req) -> dict:
    return {"fullUrl": full, "resource": res, "request": {"method": "POST", "url": res["resourceType"], **req}}


def count(client, query: str) -> int:
    return client.get(f"/fhir/{query}&_summary=count").json()["total"]


def test_transaction_resolves_urn_uuid_and_orders(client):
    pat = {"resourceType": "Patient", "identifier": [{"system": "urn:tx", "value": "T1"}]}
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": "urn:uuid:aaaaaaaa-0000-0000-0000-000000000001"},
    }
    bundle = tx(
        {"request": {"method": "GET", "url": "Patient?identifier=urn:tx|T1"}},  # runs last: sees the POST
        post("urn:uuid:aaaaaaaa-0000-0000-0000-000000000002", obs),
        post("urn:uuid:aaaaaaaa-0000-0000-0000-000000000001", pat),
    )
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert out["entry"][0]["resource"]["total"] == 1
    assert out["entry"][1]["response"]["status"].startswith("201")
    pid = out["entry"][2]["response"]["location"].split("/")[1]
    oid = out["entry"][1]["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Observation/{oid}").json()["subject"]["reference"] == f"Patient/{pid}"


def test_transaction_is_atomic(client):
    before = count(client, "Patient?identifier=urn:atomic|")
    bundle = tx(
        post("urn:uuid:1", {"resourceType": "Patient", "identifier": [{"system": "urn:atomic", "value": "1"}]}),
        {
            "resource": {"resourceType": "Patient", "id": "atom", "gender": 7},
            "request": {"method": "PUT", "url": "Patient/atom"},
        },
    )
    r = client.post("/fhir", json=bundle)
    assert r.status_code == 400
    assert r.json()["issue"][0]["expression"][0] == "Bundle.entry[1]"
    assert count(client, "Patient?identifier=urn:atomic|") == before
    assert client.get("/fhir/Patient/atom").status_code == 404


def test_transaction_conditional_create_and_reference(client):
    pat = {"resourceType": "Patient", "identifier": [{"system": "urn:cond", "value": "C9"}]}
    first = client.post("/fhir", json=tx(post("urn:uuid:p", pat, ifNoneExist="identifier=urn:cond|C9"))).json()
    again = client.post("/fhir", json=tx(post("urn:uuid:p", pat, ifNoneExist="identifier=urn:cond|C9"))).json()
    assert first["entry"][0]["response"]["status"].startswith("201")
    assert again["entry"][0]["response"]["status"].startswith("200")
    pid = first["entry"][0]["response"]["location"].split("/")[1]
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"code": "AMB"},
        "subject": {"reference": "Patient?identifier=urn:cond|C9"},
    }
    out = client.post("/fhir", json=tx(post("urn:uuid:e", enc))).json()
    eid = out["entry"][0]["response"]["location"].split("/")[1]
    assert client.get(f"/fhir/Encounter/{eid}").json()["subject"]["reference"] == f"Patient/{pid}"
    bad = dict(enc, subject={"reference": "Patient?identifier=urn:cond|none"})
    assert client.post("/fhir", json=tx(post("urn:uuid:e", bad))).status_code == 412


def test_transaction_delete_put_patch(client):
    client.put("/fhir/Patient/tx-del", json={"resourceType": "Patient", "id": "tx-del"})
    client.put("/fhir/Patient/tx-pat", json={"resourceType": "Patient", "id": "tx-pat", "active": True})
    patch = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": "W3sib3AiOiAicmVwbGFjZSIsICJwYXRoIjogIi9hY3RpdmUiLCAidmFsdWUiOiBmYWxzZX1d",
    }
    bundle = tx(
        {"request": {"method": "DELETE", "url": "Patient/tx-del"}},
        {
            "resource": {"resourceType": "Patient", "id": "tx-put"},
            "request": {"method": "PUT", "url": "Patient/tx-put"},
        },
        {"resource": patch, "request": {"method": "PATCH", "url": "Patient/tx-pat"}},
    )
    out = client.post("/fhir", json=bundle).json()
    assert [e["response"]["status"][:3] for e in out["entry"]] == ["204", "201", "200"]
    assert client.get("/fhir/Patient/tx-del").status_code == 410
    assert client.get("/fhir/Patient/tx-pat").json()["active"] is False


def test_batch_entries_fail_independently(client):
    bundle = tx(
        post("urn:uuid:b1", {"resourceType": "Patient", "gender": "other"}),
        post("urn:uuid:b2", {"resourceType": "Patient", "gender": 1}),
        {"request": {"method": "GET", "url": "Patient/does-not-exist"}},
        kind="batch",
    )
    out = client.post("/fhir", json=bundle).json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"][:3] for e in out["entry"]]
    assert statuses == ["201", "400", "404"]
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    "body",
    [
        {"resourceType": "Patient"},
        {"resourceType": "Bundle", "type": "collection"},
        {"resourceType": "Bundle", "type": "batch", "entry": [{"request": {}}]},
    ],
)
def test_bad_bundles_are_400(client, body):
    assert client.post("/fhir", json=body).status_code == 400


def test_synthea_bundles_load_with_counts_and_resolved_references(engine, synthea_dir):
    index = {e["file"]: e for e in json.loads((synthea_dir / "index.json").read_text())}
    files = sorted(index)[:6]  # the full 48 are loaded by test_fhir_synthea_full (slow)
    expected: dict[str, int] = {}
    with Session(engine) as session:
        before = dict(session.execute(select(resources.c.res_type, func.count()).group_by(resources.c.res_type)).all())
        for name in files:
            bundle = json.loads((synthea_dir / "bundles" / name).read_text())
            counts = load_bundle(session, bundle)
            assert dict(counts) == index[name]["resource_counts"]
            for k, v in counts.items():
                expected[k] = expected.get(k, 0) + v
        after = dict(session.execute(select(resources.c.res_type, func.count()).group_by(resources.c.res_type)).all())
        for rtype, n in expected.items():
            assert after.get(rtype, 0) - before.get(rtype, 0) == n
        dangling = dangling_references(session)
        urn_left = session.execute(
            select(func.count()).select_from(idx_reference).where(idx_reference.c.url.like("urn:uuid:%"))
        ).scalar_one()
    assert dangling == 0 and urn_left == 0


def test_load_bundle_rolls_back_on_error(engine):
    bad = tx(
        post("urn:uuid:x1", {"resourceType": "Patient", "id": "ok"}),
        post("urn:uuid:x2", {"resourceType": "Observation"}),
    )
    with Session(engine) as session:
        n = session.execute(select(func.count()).select_from(resources)).scalar_one()
        with pytest.raises(FhirError) as info:
            load_bundle(session, bad)
        assert "Bundle.entry[1]" in info.value.expression
        assert session.execute(select(func.count()).select_from(resources)).scalar_one() == n


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_reference_to_a_urn_not_in_the_bundle_is_refused(client, kind):
    before = count(client, "Observation?code=urn:dangling|x")
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "urn:dangling", "code": "x"}]},
        "subject": {"reference": "urn:uuid:99999999-0000-0000-0000-000000000009"},
    }
    r = client.post("/fhir", json=tx(post("urn:uuid:99999999-0000-0000-0000-000000000001", obs), kind=kind))
    if kind == "transaction":
        assert r.status_code == 400
        issue = r.json()["issue"][0]
    else:  # a batch answers 200 with the failing entry's own OperationOutcome
        assert r.status_code == 200
        entry = r.json()["entry"][0]
        assert entry["response"]["status"].startswith("400")
        issue = entry["response"]["outcome"]["issue"][0]
    assert "urn:uuid:99999999-0000-0000-0000-000000000009" in issue["diagnostics"]
    assert "not the fullUrl of any entry" in issue["diagnostics"]
    assert count(client, "Observation?code=urn:dangling|x") == before
