"""SMART on FHIR style access control and audit for the FHIR API.

Bearer tokens are JWTs (HS256 with a shared secret, or RS256/ES256 with a PEM public key) whose
``scope`` claim holds SMART scopes: ``patient/*.read``, ``user/Observation.write``,
``system/*.*`` (v1) or ``patient/Observation.rs`` (v2 letters c r u d s). ``patient/`` scopes are
confined to the compartment of the token's ``patient`` claim. Security is off by default (the
demo) and switched on with ``SMARTCARE_FHIR_AUTH_ENABLED=true`` plus ``SMARTCARE_FHIR_JWT_KEY``.
With ``SMARTCARE_FHIR_AUDIT=true`` every access writes an AuditEvent (outcome, action, resource
reference, client id) and never the resource content, so no patient data reaches the audit log.
Whenever security is on, every rejected request (401 missing/invalid token, 403 scope or
compartment) writes an AuditEvent with outcome ``4`` (``8`` for a server failure), whatever the
``audit`` switch says; it names the interaction and the status, never the token or the content.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated

from fastapi import Depends
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.values import instant, now

_SCOPE = re.compile(r"^(patient|user|system)/(\*|[A-Z][A-Za-z]+)\.(read|write|\*|c?r?u?d?s?)$")
_V2 = {"read": "rs", "write": "cud"}  # v2 letters for each interaction class
ACTION_CODE = {"read": "R", "write": "U", "create": "C", "delete": "D", "search": "E"}


class FhirSecuritySettings(BaseSettings):
    """``SMARTCARE_FHIR_*`` switches for authorization and auditing."""

    model_config = SettingsConfigDict(env_prefix="SMARTCARE_FHIR_", frozen=True)

    # Require a SMART bearer token on every interaction (off in the demo).
    auth_enabled: bool = False
    # HS256 shared secret, or a PEM public key for RS256/ES256.
    jwt_key: str = ""
    # Expected ``aud`` claim; empty skips the audience check.
    jwt_audience: str = ""
    # Write an AuditEvent for every access.
    audit: bool = False


@lru_cache(maxsize=1)
def get_security_settings() -> FhirSecuritySettings:
    return FhirSecuritySettings()


SecurityDep = Annotated[FhirSecuritySettings, Depends(get_security_settings)]


@dataclass(frozen=True)
class Principal:
    """Who is calling: token subject/client, granted scopes and patient context."""

    subject: str
    scopes: tuple[tuple[str, str, str], ...]  # (context, resource type or *, permissions)
    patient: str | None = None


def parse_scopes(text: str) -> tuple[tuple[str, str, str], ...]:
    """SMART scopes from a space-separated ``scope`` claim (other scopes are ignored)."""
    out = []
    for scope in text.split():
        m = _SCOPE.match(scope)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return tuple(out)


def authenticate(settings: FhirSecuritySettings, authorization: str | None) -> Principal | None:
    """The caller of a request; None when security is off. 401 on a missing or invalid token."""
    if not settings.auth_enabled:
        return None
    if not authorization or not authorization.lower().startswith("bearer "):
        raise FhirError(401, "A SMART bearer token is required (Authorization: Bearer <JWT>)")
    import jwt

    key = settings.jwt_key
    algorithms = ["RS256", "ES256"] if "BEGIN" in key else ["HS256"]
    options = {"verify_aud": bool(settings.jwt_audience)}
    try:
        claims = jwt.decode(
            authorization[7:].strip(),
            key,
            algorithms=algorithms,
            options=options,
            audience=settings.jwt_audience or None,
        )
    except jwt.PyJWTError as err:
        raise FhirError(401, f"Invalid bearer token: {err}") from None
    scopes = parse_scopes(str(claims.get("scope", "")))
    return Principal(str(claims.get("sub") or claims.get("client_id") or "?"), scopes, claims.get("patient"))


def allowed(principal: Principal, rtype: str, action: str) -> tuple[bool, bool]:
    """``(granted, patient_only)`` for ``action`` ('read' or 'write') on ``rtype``."""
    via_patient = False
    for context, stype, perms in principal.scopes:
        if stype not in ("*", rtype):
            continue
        if perms in ("*", action) or (perms not in ("read", "write") and set(_V2[action]) & set(perms)):
            if context != "patient":
                return True, False
            via_patient = True
    return via_patient, via_patient


_REJECTED = {401: "401 Unauthorized: no valid bearer token", 403: "403 Forbidden: not allowed by the token"}


@dataclass
class Access:
    """Per-request access decisions, recorded for the audit trail.

    ``audit`` asks the router to call :func:`write_audit` when the request ends; ``audit_all`` False
    limits that to rejected requests (401/403).
    """

    principal: Principal | None
    audit: bool
    engine: Engine
    action: str = ""
    target: str = ""
    audit_all: bool = True

    def check(self, rtype: str | None, action: str, target: str = "") -> str | None:
        """Raise 403 unless allowed; returns the patient id a ``patient/`` scope confines to."""
        self.action, self.target = action, target or (rtype or "")
        if self.principal is None:
            return None
        granted, patient_only = allowed(
            self.principal, rtype or "*", "read" if action in ("read", "search") else "write"
        )
        if not granted:
            raise FhirError(403, f"Token scopes do not allow {action} on {rtype or 'the system'}")
        if patient_only:
            if not self.principal.patient:
                raise FhirError(403, "A patient/ scope needs a patient claim in the token")
            return self.principal.patient
        return None


def write_audit(access: Access, method: str, status: int) -> None:
    """Store one AuditEvent for a finished request (its own transaction; no resource content).

    Skipped for an accepted request when only rejections are audited (``access.audit_all`` False).
    """
    from smartcare.hospital.fhir.store import FhirStore

    if not access.audit_all and status not in _REJECTED:
        return
    event = {
        "resourceType": "AuditEvent",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": access.action or method.lower()}],
        "action": ACTION_CODE.get(access.action, "E"),
        "recorded": instant(now()),
        "outcome": "0" if status < 400 else ("4" if status < 500 else "8"),
        "agent": [
            {"who": {"display": access.principal.subject if access.principal else "anonymous"}, "requestor": True}
        ],
        "source": {"observer": {"display": "smartcare FHIR server"}},
        "entity": [{"what": {"reference": access.target}}] if "/" in access.target else [],
    }
    if status >= 400:
        event["outcomeDesc"] = _REJECTED.get(status, f"HTTP {status}")
    with Session(access.engine) as session:
        store = FhirStore(session, validate_resources=False)
        store.create(event, rid=str(uuid.uuid4()))
        store.commit()
