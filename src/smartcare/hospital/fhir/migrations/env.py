"""Alembic environment: runs on the connection handed over by ``init_db`` (online mode only)."""

from __future__ import annotations

from alembic import context

from smartcare.hospital.fhir.db import METADATA, VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=METADATA, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
