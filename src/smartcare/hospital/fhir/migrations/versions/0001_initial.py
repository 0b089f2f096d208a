"""FHIR store: resources, history, search index tables and search snapshots.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

from smartcare.hospital.fhir.db import METADATA

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The initial schema is the table set declared in db.METADATA at this revision.
    METADATA.create_all(op.get_bind())


def downgrade() -> None:
    METADATA.drop_all(op.get_bind())
