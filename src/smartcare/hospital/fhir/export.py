"""Bulk Data ``$export`` (FHIR Bulk Data Access 1.0/2.0, async request pattern) to NDJSON files.

``GET [base]/$export``, ``[base]/Patient/$export`` and ``[base]/Group/[id]/$export`` with
``Prefer: respond-async`` answer 202 and a ``Content-Location`` status URL. The export runs as a
background task; polling the status URL gives 202 (``X-Progress``) until the manifest is ready
(200), whose ``output`` entries point at one NDJSON file per resource type.

Finished files expire ``SMARTCARE_FHIR_EXPORT_TTL_SECONDS`` (default one hour) after the export
completes: the manifest states the time (``extension.expires``) and the complete status and file
responses carry an ``Expires`` header. After that the status URL and the files answer 404 and the
job's folder is deleted (also swept at each kick-off). ``DELETE`` on the status URL cancels a job
and removes its files (202), as the Bulk Data spec describes.
"""

from __future__ import annotations

import json
import shutil
import uuid
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request, Response
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Engine, false, or_, select
from sqlalchemy.orm import Session

from smartcare.core.settings import SettingsDep
from smartcare.hospital.fhir.compartment import patient_compartment_query
from smartcare.hospital.fhir.db import resources
from smartcare.hospital.fhir.deps import AccessDep, EngineDep
from smartcare.hospital.fhir.outcome import FhirError
from smartcare.hospital.fhir.values import http_date, instant, now, parse_instant


class ExportSettings(BaseSettings):
    """``SMARTCARE_FHIR_EXPORT_*`` settings of bulk export."""

    model_config = SettingsConfigDict(env_prefix="SMARTCARE_FHIR_EXPORT_", frozen=True)

    # Seconds a finished export's files stay downloadable; then they answer 404 and are deleted.
    ttl_seconds: float = Field(3600.0, gt=0)


@lru_cache(maxsize=1)
def get_export_settings() -> ExportSettings:
    return ExportSettings()


ExportSettingsDep = Annotated[ExportSettings, Depends(get_export_settings)]


def get_export_dir(settings: SettingsDep) -> Path:
    """Where export jobs write their files (``<var>/fhir-export``; tests override this)."""
    return settings.var / "fhir-export"


ExportDirDep = Annotated[Path, Depends(get_export_dir)]


def _patients(session: Session, group_id: str | None) -> list[str] | None:
    if group_id is None:
        return None
    row = session.execute(
        select(resources.c.content).where(
            resources.c.res_type == "Group", resources.c.res_id == group_id, resources.c.deleted == false()
        )
    ).first()
    if row is None:
        raise FhirError(404, f"Group/{group_id} is not known")
    refs = [m.get("entity", {}).get("reference", "") for m in row.content.get("member", [])]
    return [r.split("/", 1)[1] for r in refs if r.startswith("Patient/")]


def _finish(folder: Path, name: str, body: dict[str, Any], ttl: float) -> None:
    """Write the job's final state with its expiry time, unless the job was cancelled meanwhile."""
    body["expires"] = instant(now() + timedelta(seconds=ttl))
    try:
        (folder / name).write_text(json.dumps(body))
    except FileNotFoundError:  # DELETE removed the folder while the export ran
        return


def run_export(
    engine: Engine,
    folder: Path,
    level: str,
    group_id: str | None,
    types: list[str],
    since: str | None,
    ttl: float = 3600.0,
) -> None:
    """Write ``<Type>.ndjson`` files and ``done.json`` (or ``error.json``) into ``folder``; both
    record when the job expires (``ttl`` seconds from now)."""
    try:
        with Session(engine) as session:
            q = select(resources.c.res_type, resources.c.content).where(resources.c.deleted == false())
            if level != "system":
                patients = _patients(session, group_id)
                if patients is None:
                    patients = list(
                        session.execute(
                            select(resources.c.res_id).where(
                                resources.c.res_type == "Patient", resources.c.deleted == false()
                            )
                        ).scalars()
                    )
                members = [resources.c.pk.in_(patient_compartment_query(p).order_by(None)) for p in patients]
                q = q.where(or_(*members) if members else false())
            if types:
                q = q.where(resources.c.res_type.in_(types))
            if since:
                q = q.where(resources.c.last_updated >= parse_instant(since))
            counts: dict[str, int] = {}
            handles: dict[str, Any] = {}
            try:
                for rtype, content in session.execute(q.order_by(resources.c.res_type, resources.c.pk)):
                    if rtype not in handles:
                        handles[rtype] = (folder / f"{rtype}.ndjson").open("w")
                    handles[rtype].write(json.dumps(content, separators=(",", ":")) + "\n")
                    counts[rtype] = counts.get(rtype, 0) + 1
            finally:
                for h in handles.values():
                    h.close()
        _finish(folder, "done.json", {"counts": counts}, ttl)
    except Exception as err:  # the failure is reported through the status URL
        if folder.is_dir():
            _finish(folder, "error.json", {"error": type(err).__name__}, ttl)


router = APIRouter()


def _expires(folder: Path) -> str | None:
    """When a finished (or failed) job expires; None while it runs."""
    for name in ("done.json", "error.json"):
        try:
            return json.loads((folder / name).read_text()).get("expires")
        except (FileNotFoundError, json.JSONDecodeError):
            continue
    return None


def _expired(folder: Path) -> bool:
    """Whether the job in ``folder`` has expired; its files are then deleted."""
    expires = _expires(folder)
    if expires is None or parse_instant(expires) > now():
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def sweep(root: Path) -> int:
    """Delete every expired job under ``root``; the number deleted."""
    if not root.is_dir():
        return 0
    return sum(_expired(folder) for folder in root.iterdir() if folder.is_dir())


def _kickoff(
    request: Request,
    tasks: BackgroundTasks,
    engine: Engine,
    root: Path,
    level: str,
    group_id: str | None,
    ttl: float,
) -> Response:
    if "respond-async" not in request.headers.get("prefer", ""):
        raise FhirError(400, "$export needs the header 'Prefer: respond-async'", expression=["Prefer"])
    fmt = request.query_params.get("_outputFormat", "application/fhir+ndjson")
    if fmt not in ("application/fhir+ndjson", "application/ndjson", "ndjson"):
        raise FhirError(400, f"_outputFormat {fmt!r} is not supported; use application/fhir+ndjson")
    types = [t for t in request.query_params.get("_type", "").split(",") if t]
    since = request.query_params.get("_since")
    if since:
        try:
            parse_instant(since)
        except ValueError:
            raise FhirError(400, f"Invalid _since {since!r}", expression=["_since"]) from None
    sweep(root)
    job = str(uuid.uuid4())
    folder = root / job
    folder.mkdir(parents=True)
    (folder / "request.json").write_text(json.dumps({"request": str(request.url), "transactionTime": instant(now())}))
    tasks.add_task(run_export, engine, folder, level, group_id, types, since, ttl)
    base = str(request.base_url).rstrip("/") + "/fhir"
    return Response(status_code=202, headers={"Content-Location": f"{base}/$export-poll-status/{job}"})


@router.get("/$export")
def export_system(
    request: Request,
    tasks: BackgroundTasks,
    engine: EngineDep,
    root: ExportDirDep,
    access: AccessDep,
    settings: ExportSettingsDep,
) -> Response:
    if access.check(None, "read", "$export"):
        raise FhirError(403, "System export needs a system/ or user/ scope")
    return _kickoff(request, tasks, engine, root, "system", None, settings.ttl_seconds)


@router.get("/Patient/$export")
def export_patients(
    request: Request,
    tasks: BackgroundTasks,
    engine: EngineDep,
    root: ExportDirDep,
    access: AccessDep,
    settings: ExportSettingsDep,
) -> Response:
    if access.check("Patient", "read", "Patient/$export"):
        raise FhirError(403, "Patient export needs a system/ or user/ scope")
    return _kickoff(request, tasks, engine, root, "patient", None, settings.ttl_seconds)


@router.get("/Group/{gid}/$export")
def export_group(
    gid: str,
    request: Request,
    tasks: BackgroundTasks,
    engine: EngineDep,
    root: ExportDirDep,
    access: AccessDep,
    settings: ExportSettingsDep,
) -> Response:
    if access.check("Group", "read", f"Group/{gid}"):
        raise FhirError(403, "Group export needs a system/ or user/ scope")
    with Session(engine) as session:
        _patients(session, gid)  # 404 now rather than in the background
    return _kickoff(request, tasks, engine, root, "group", gid, settings.ttl_seconds)


def _job(root: Path, job: str) -> Path:
    folder = root / job
    if not job.replace("-", "").isalnum() or not folder.is_dir():
        raise FhirError(404, f"Export job {job} is not known")
    if _expired(folder):
        raise FhirError(404, f"Export job {job} has expired and its files were deleted")
    return folder


@router.get("/$export-poll-status/{job}")
def export_status(job: str, request: Request, root: ExportDirDep) -> Response:
    folder = _job(root, job)
    if (folder / "error.json").exists():
        raise FhirError(500, f"Export job {job} failed: {json.loads((folder / 'error.json').read_text())['error']}")
    if not (folder / "done.json").exists():
        return Response(status_code=202, headers={"X-Progress": "in progress", "Retry-After": "1"})
    meta = json.loads((folder / "request.json").read_text())
    done = json.loads((folder / "done.json").read_text())
    counts = done["counts"]
    base = str(request.base_url).rstrip("/") + "/fhir"
    manifest = {
        "transactionTime": meta["transactionTime"],
        "request": meta["request"],
        "requiresAccessToken": False,
        "output": [
            {"type": t, "url": f"{base}/$export-file/{job}/{t}.ndjson", "count": n} for t, n in sorted(counts.items())
        ],
        "error": [],
        "extension": {"expires": done["expires"]},
    }
    headers = {"Expires": http_date(parse_instant(done["expires"]))}
    return Response(json.dumps(manifest), status_code=200, media_type="application/json", headers=headers)


@router.get("/$export-file/{job}/{name}")
def export_file(job: str, name: str, root: ExportDirDep) -> Response:
    folder = _job(root, job)
    path = folder / name
    expires = _expires(folder)
    if not name.endswith(".ndjson") or "/" in name or not path.is_file() or expires is None:
        raise FhirError(404, f"Export file {name} is not known")
    headers = {"Expires": http_date(parse_instant(expires))}
    return Response(path.read_bytes(), media_type="application/fhir+ndjson", headers=headers)


@router.delete("/$export-poll-status/{job}")
def export_cancel(job: str, root: ExportDirDep) -> Response:
    folder = _job(root, job)
    shutil.rmtree(folder, ignore_errors=True)
    return Response(status_code=202)
