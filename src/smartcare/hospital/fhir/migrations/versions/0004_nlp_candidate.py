"""The NLP-to-FHIR review queue (candidate resources awaiting a reviewer's decision).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "nlp_candidate",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("patient", sa.String(length=255), nullable=True),
        sa.Column("note", sa.String(length=255), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=True),
        sa.Column("char_end", sa.Integer(), nullable=True),
        sa.Column("resource", _json(), nullable=False),
        sa.Column("provenance", _json(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewer", sa.String(length=255), nullable=True),
        sa.Column("written", _json(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_nlp_candidate_status", "nlp_candidate", ["status", "created"], unique=False)
    op.create_index("ix_nlp_candidate_patient", "nlp_candidate", ["patient"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_nlp_candidate_patient", table_name="nlp_candidate")
    op.drop_index("ix_nlp_candidate_status", table_name="nlp_candidate")
    op.drop_table("nlp_candidate")
