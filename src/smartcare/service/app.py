"""FastAPI app factory: mounts each domain's router, health checks, errors, logs and the landing page."""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

import smartcare
from smartcare.core import registry
from smartcare.core.settings import Settings, get_settings
from smartcare.service.errors import BodySizeLimitMiddleware, install_error_handlers
from smartcare.service.landing import render_landing
from smartcare.service.logging import AccessLogMiddleware, configure_logging


@dataclass(frozen=True)
class Mount:
    """One router the service mounts: a domain module's ``router`` at ``prefix``."""

    name: str  # shown on the landing page
    module: str  # module holding ``router``
    prefix: str  # URL prefix
    description: str


MOUNTS = (
    Mount("imaging", "smartcare.imaging.api", "/api/imaging", "classify, segment and enhance images"),
    Mount("genomics", "smartcare.genomics.api", "/api/genomics", "variant calling and DNA language models"),
    Mount("hospital", "smartcare.hospital.api", "/api/hospital", "clinical scores, interactions, NLP"),
    Mount("fhir", "smartcare.hospital.fhir.api", "/fhir", "HL7 FHIR R4 server"),
    Mount("cds-hooks", "smartcare.hospital.cds.hooks_api", "/cds-services", "CDS Hooks 2.0 services"),
    Mount("publichealth", "smartcare.publichealth.api", "/api/publichealth",
          "outbreak detection, Rt and forecasts"),
)


def _import_router(mount: Mount):
    """The mount's router, or the reason it is unavailable (an optional extra not installed).

    Only a missing third-party package is tolerated; a broken smartcare module raises.
    """
    try:
        return importlib.import_module(mount.module).router, None
    except ModuleNotFoundError as err:
        if err.name and err.name.split(".")[0] == "smartcare":
            raise
        return None, f"needs the Python package {err.name!r} (pip install 'smartcare[all]')"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the service. ``settings`` defaults to the process-wide ``get_settings()``."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="smartcare", version=smartcare.__version__,
                  description="Transformer models at work across smart healthcare.")
    app.state.settings = settings
    app.dependency_overrides[get_settings] = lambda: settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes)
    app.add_middleware(AccessLogMiddleware)
    status = {}
    for mount in MOUNTS:
        router, reason = _import_router(mount)
        if router is not None:
            app.include_router(router, prefix=mount.prefix, tags=[mount.name])
        status[mount.name] = reason
    app.state.mounts = status

    @app.get("/health", tags=["service"])
    def health() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok", "version": smartcare.__version__}

    @app.get("/ready", tags=["service"])
    def ready() -> dict:
        """Readiness: the database answers and the domain routers are mounted."""
        url = settings.resolved_database_url()
        if url.startswith("sqlite:///"):
            settings.var.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url)
        try:
            with engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
        finally:
            engine.dispose()
        return {"status": "ready", "database": engine.url.get_backend_name(),
                "mounted": sorted(k for k, v in status.items() if v is None)}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def landing() -> str:
        return render_landing(MOUNTS, status, registry.list_models(settings.weights))

    return app
