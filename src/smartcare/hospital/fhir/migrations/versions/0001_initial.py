"""FHIR store: resources, history, search index tables and search snapshots.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fhir_history",
        sa.Column("hpk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("hpk"),
        sa.UniqueConstraint("res_type", "res_id", "version", name="uq_fhir_history_version"),
    )
    op.create_index("ix_fhir_history_updated", "fhir_history", ["last_updated"], unique=False)
    op.create_table(
        "fhir_resource",
        sa.Column("pk", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("last_updated", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("content", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True),
        sa.PrimaryKeyConstraint("pk"),
        sa.UniqueConstraint("res_type", "res_id", name="uq_fhir_resource_type_id"),
    )
    op.create_index("ix_fhir_resource_updated", "fhir_resource", ["last_updated"], unique=False)
    op.create_table(
        "fhir_search",
        sa.Column("search_id", sa.String(length=36), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=True),
        sa.Column("params", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True),
        sa.Column("pks", sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"), nullable=True),
        sa.Column("total", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("search_id"),
    )
    op.create_table(
        "fhir_idx_date",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("low", sa.Float(), nullable=True),
        sa.Column("high", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_date_low", "fhir_idx_date", ["res_type", "param", "low"], unique=False)
    op.create_index("ix_fhir_idx_date_pk", "fhir_idx_date", ["res_pk"], unique=False)
    op.create_table(
        "fhir_idx_number",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_number_pk", "fhir_idx_number", ["res_pk"], unique=False)
    op.create_index("ix_fhir_idx_number_value", "fhir_idx_number", ["res_type", "param", "value"], unique=False)
    op.create_table(
        "fhir_idx_quantity",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_quantity_pk", "fhir_idx_quantity", ["res_pk"], unique=False)
    op.create_index("ix_fhir_idx_quantity_value", "fhir_idx_quantity", ["res_type", "param", "value"], unique=False)
    op.create_table(
        "fhir_idx_reference",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=True),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("ident_system", sa.String(length=255), nullable=True),
        sa.Column("ident_value", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_reference_pk", "fhir_idx_reference", ["res_pk"], unique=False)
    op.create_index(
        "ix_fhir_idx_reference_target_id_target_type",
        "fhir_idx_reference",
        ["res_type", "param", "target_id", "target_type"],
        unique=False,
    )
    op.create_table(
        "fhir_idx_string",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=True),
        sa.Column("exact", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_string_pk", "fhir_idx_string", ["res_pk"], unique=False)
    op.create_index("ix_fhir_idx_string_value", "fhir_idx_string", ["res_type", "param", "value"], unique=False)
    op.create_table(
        "fhir_idx_token",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=True),
        sa.Column("code", sa.String(length=255), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index(
        "ix_fhir_idx_token_code_system", "fhir_idx_token", ["res_type", "param", "code", "system"], unique=False
    )
    op.create_index("ix_fhir_idx_token_pk", "fhir_idx_token", ["res_pk"], unique=False)
    op.create_table(
        "fhir_idx_uri",
        sa.Column("res_pk", sa.Integer(), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["res_pk"], ["fhir_resource.pk"], ondelete="CASCADE"),
    )
    op.create_index("ix_fhir_idx_uri_pk", "fhir_idx_uri", ["res_pk"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_fhir_idx_uri_pk", table_name="fhir_idx_uri")
    op.drop_table("fhir_idx_uri")
    op.drop_index("ix_fhir_idx_token_pk", table_name="fhir_idx_token")
    op.drop_index("ix_fhir_idx_token_code_system", table_name="fhir_idx_token")
    op.drop_table("fhir_idx_token")
    op.drop_index("ix_fhir_idx_string_value", table_name="fhir_idx_string")
    op.drop_index("ix_fhir_idx_string_pk", table_name="fhir_idx_string")
    op.drop_table("fhir_idx_string")
    op.drop_index("ix_fhir_idx_reference_target_id_target_type", table_name="fhir_idx_reference")
    op.drop_index("ix_fhir_idx_reference_pk", table_name="fhir_idx_reference")
    op.drop_table("fhir_idx_reference")
    op.drop_index("ix_fhir_idx_quantity_value", table_name="fhir_idx_quantity")
    op.drop_index("ix_fhir_idx_quantity_pk", table_name="fhir_idx_quantity")
    op.drop_table("fhir_idx_quantity")
    op.drop_index("ix_fhir_idx_number_value", table_name="fhir_idx_number")
    op.drop_index("ix_fhir_idx_number_pk", table_name="fhir_idx_number")
    op.drop_table("fhir_idx_number")
    op.drop_index("ix_fhir_idx_date_pk", table_name="fhir_idx_date")
    op.drop_index("ix_fhir_idx_date_low", table_name="fhir_idx_date")
    op.drop_table("fhir_idx_date")
    op.drop_table("fhir_search")
    op.drop_index("ix_fhir_resource_updated", table_name="fhir_resource")
    op.drop_table("fhir_resource")
    op.drop_index("ix_fhir_history_updated", table_name="fhir_history")
    op.drop_table("fhir_history")
