"""FastAPI dependencies of the FHIR router: engine (cached per database URL), session, store."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from smartcare.core.settings import SettingsDep
from smartcare.hospital.fhir.db import engine_for
from smartcare.hospital.fhir.security import Access, SecurityDep, authenticate
from smartcare.hospital.fhir.store import FhirStore


def get_engine(settings: SettingsDep) -> Engine:
    """The migrated engine for the configured database URL (tests override this dependency)."""
    return engine_for(settings.resolved_database_url())


EngineDep = Annotated[Engine, Depends(get_engine)]


def get_session(engine: EngineDep) -> Iterator[Session]:
    """One session per request; uncommitted work is rolled back when the request ends."""
    with Session(engine) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_store(session: SessionDep) -> FhirStore:
    return FhirStore(session)


StoreDep = Annotated[FhirStore, Depends(get_store)]


async def read_body(request: Request) -> bytes:
    return await request.body()


BodyDep = Annotated[bytes, Depends(read_body)]


def get_access(request: Request, settings: SecurityDep, engine: EngineDep) -> Access:
    """Authenticate the caller (when security is on) and remember the access for the audit trail.

    The access is remembered before the token is checked, so a 401 is audited too; with security on,
    rejections are always audited (``audit_all`` follows ``SMARTCARE_FHIR_AUDIT``).
    """
    access = Access(None, settings.audit or settings.auth_enabled, engine, audit_all=settings.audit)
    request.state.fhir_access = access
    access.principal = authenticate(settings, request.headers.get("authorization"))
    return access


AccessDep = Annotated[Access, Depends(get_access)]
