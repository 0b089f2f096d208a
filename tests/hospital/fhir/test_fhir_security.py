"""SMART-style bearer tokens enforced per interaction (security on), and the AuditEvent trail."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.api import router
from smartcare.hospital.fhir.db import resources
from smartcare.hospital.fhir.deps import get_engine
from smartcare.hospital.fhir.security import FhirSecuritySettings, allowed, get_security_settings, parse_scopes

SECRET = "test-secret-please-change-0123456789"


def token(scope: str, patient: str | None = None, key: str = SECRET) -> dict[str, str]:
    claims = {"sub": "clinician-7", "scope": scope, **({"patient": patient} if patient else {})}
    return {"Authorization": "Bearer " + jwt.encode(claims, key, algorithm="HS256")}


@pytest.fixture(scope="module")
def secure(engine) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_security_settings] = lambda: FhirSecuritySettings(
        auth_enabled=True, jwt_key=SECRET, audit=True
    )
    with TestClient(app) as c:
        admin = token("system/*.*")
        for pid in ("sp1", "sp2"):
            c.put(
                f"/fhir/Patient/{pid}",
                json={"resourceType": "Patient", "id": pid, "name": [{"family": "Secret"}]},
                headers=admin,
            )
            c.put(
                f"/fhir/Observation/obs-{pid}",
                headers=admin,
                json={
                    "resourceType": "Observation",
                    "id": f"obs-{pid}",
                    "status": "final",
                    "code": {"text": "hr"},
                    "subject": {"reference": f"Patient/{pid}"},
                },
            )
        yield c


def test_scope_parsing():
    assert parse_scopes("openid patient/*.read user/Observation.rs launch") == (
        ("patient", "*", "read"),
        ("user", "Observation", "rs"),
    )
    from smartcare.hospital.fhir.security import Principal

    p = Principal("x", parse_scopes("user/Observation.read patient/Patient.cruds"), "sp1")
    assert allowed(p, "Observation", "read") == (True, False)
    assert allowed(p, "Observation", "write") == (False, False)
    assert allowed(p, "Patient", "write") == (True, True)


def test_missing_or_bad_token_is_401(secure):
    assert secure.get("/fhir/Patient/sp1").status_code == 401
    r = secure.get("/fhir/Patient/sp1", headers=token("user/*.*", key="wrong-key-wrong-key-wrong-key-0000"))
    assert r.status_code == 401 and r.json()["issue"][0]["code"] == "login"
    assert secure.get("/fhir/metadata").status_code == 200  # the CapabilityStatement stays public


def test_user_scopes_per_interaction(secure):
    read_only = token("user/*.read")
    assert secure.get("/fhir/Patient/sp1", headers=read_only).status_code == 200
    assert secure.get("/fhir/Observation?code:text=hr", headers=read_only).json()["total"] == 2
    r = secure.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=read_only)
    assert r.status_code == 403 and r.json()["issue"][0]["code"] == "forbidden"
    assert secure.delete("/fhir/Patient/sp2", headers=read_only).status_code == 403
    assert secure.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=token("user/*.*")).status_code == 201
    only_patients = token("user/Patient.read")
    assert secure.get("/fhir/Observation/obs-sp1", headers=only_patients).status_code == 403
    tx = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": {"resourceType": "Patient"}, "request": {"method": "POST", "url": "Patient"}}],
    }
    assert secure.post("/fhir", json=tx, headers=read_only).status_code == 403


def test_patient_scope_is_confined_to_the_compartment(secure):
    mine = token("patient/*.read patient/Observation.write", patient="sp1")
    assert secure.get("/fhir/Patient/sp1", headers=mine).status_code == 200
    assert secure.get("/fhir/Patient/sp2", headers=mine).status_code == 403
    assert secure.get("/fhir/Observation/obs-sp2", headers=mine).status_code == 403
    found = secure.get("/fhir/Observation", headers=mine).json()
    assert [e["resource"]["id"] for e in found["entry"]] == ["obs-sp1"]
    own = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "bp"},
        "subject": {"reference": "Patient/sp1"},
    }
    assert secure.post("/fhir/Observation", json=own, headers=mine).status_code == 201
    other = dict(own, subject={"reference": "Patient/sp2"})
    assert secure.post("/fhir/Observation", json=other, headers=mine).status_code == 403
    v2 = token("patient/Observation.rs", patient="sp2")
    assert secure.get("/fhir/Observation/obs-sp2", headers=v2).status_code == 200
    assert secure.get("/fhir/Patient/sp2", headers=v2).status_code == 403


def test_every_access_writes_an_audit_event_without_patient_data(secure, engine):
    def audits() -> list[dict]:
        with Session(engine) as s:
            return list(
                s.execute(
                    select(resources.c.content).where(resources.c.res_type == "AuditEvent").order_by(resources.c.pk)
                ).scalars()
            )

    before = len(audits())
    secure.get("/fhir/Patient/sp1", headers=token("user/*.read"))
    secure.get("/fhir/Patient/sp1", headers=token("user/Observation.read"))  # denied: audited too
    after = audits()
    assert len(after) == before + 2
    denied, ok = sorted(after[-2:], key=lambda a: a["outcome"], reverse=True)
    assert ok["outcome"] == "0" and ok["entity"][0]["what"]["reference"] == "Patient/sp1"
    assert denied["outcome"] == "4" and ok["agent"][0]["who"]["display"] == "clinician-7"
    assert "Secret" not in str(after)  # names never reach the audit trail


def _audits(engine) -> list[dict]:
    with Session(engine) as s:
        query = select(resources.c.content).where(resources.c.res_type == "AuditEvent").order_by(resources.c.pk)
        return list(s.execute(query).scalars())


def test_401_is_audited(secure, engine):
    before = len(_audits(engine))
    assert secure.get("/fhir/Patient/sp1").status_code == 401
    bad = token("user/*.*", key="wrong-key-wrong-key-wrong-key-0000")
    assert secure.get("/fhir/Observation?code:text=hr", headers=bad).status_code == 401
    new = _audits(engine)[before:]
    assert [a["outcome"] for a in new] == ["4", "4"]
    assert all(a["outcomeDesc"].startswith("401") and a["agent"][0]["who"]["display"] == "anonymous" for a in new)
    assert bad["Authorization"][7:] not in str(new)  # the token never reaches the audit trail


@pytest.fixture(scope="module")
def rejections_only(engine, secure) -> Iterator[TestClient]:
    """Security on, SMARTCARE_FHIR_AUDIT off: only rejected requests are audited (data from `secure`)."""
    app = FastAPI()
    app.include_router(router, prefix="/fhir")
    app.dependency_overrides[get_engine] = lambda: engine
    app.dependency_overrides[get_security_settings] = lambda: FhirSecuritySettings(
        auth_enabled=True, jwt_key=SECRET, audit=False
    )
    with TestClient(app) as c:
        yield c


def test_every_rejection_is_audited_even_with_audit_off(rejections_only, engine):
    c = rejections_only
    before = len(_audits(engine))
    assert c.get("/fhir/Patient/sp1", headers=token("user/*.read")).status_code == 200  # not audited
    assert len(_audits(engine)) == before
    mine = token("patient/*.read", patient="sp1")
    rejected = [
        c.get("/fhir/Patient/sp1"),  # 401 no token
        c.get("/fhir/Patient/sp1", headers=token("user/Observation.read")),  # 403 scope
        c.get("/fhir/Observation/obs-sp2", headers=mine),  # 403 other patient's compartment
        c.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=token("user/*.read")),  # 403 write
        c.get("/fhir/$export", headers={**mine, "Prefer": "respond-async"}),  # 403 bulk export
    ]
    assert [r.status_code for r in rejected] == [401, 403, 403, 403, 403]
    new = _audits(engine)[before:]
    assert len(new) == 5 and {a["outcome"] for a in new} == {"4"}
    assert [a["outcomeDesc"][:3] for a in new] == ["401", "403", "403", "403", "403"]
    assert new[2]["entity"][0]["what"]["reference"] == "Observation/obs-sp2"
    assert "Secret" not in str(new)  # no patient data
