"""Composite search-parameter index.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_idx_composite",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("c1_system", sa.String(length=255), nullable=True),
        sa.Column("c1_code", sa.String(length=255), nullable=True),
        sa.Column("c2_system", sa.String(length=255), nullable=True),
        sa.Column("c2_code", sa.String(length=255), nullable=True),
        sa.Column("c2_value", sa.Float(), nullable=True),
        sa.Column("c2_low", sa.Float(), nullable=True),
        sa.Column("c2_high", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index(
        "ix_fhir_idx_composite_c1_code", "fhir_idx_composite", ["res_type", "param", "c1_code"], unique=False
    )
    op.create_index("ix_fhir_idx_composite_pk", "fhir_idx_composite", ["res_pk"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fhir_idx_composite_pk", table_name="fhir_idx_composite")
    op.drop_index("ix_fhir_idx_composite_c1_code", table_name="fhir_idx_composite")
    op.drop_table("fhir_idx_composite")
