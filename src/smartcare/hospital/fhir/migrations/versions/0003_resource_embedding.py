"""Text-chunk embeddings beside the resources (semantic note search).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "resource_embedding",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("corpus", sa.String(length=64), nullable=False),
        sa.Column("res_type", sa.String(length=64), nullable=False),
        sa.Column("res_id", sa.String(length=255), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=True),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("text_hash", sa.String(length=64), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("char_start", sa.Integer(), nullable=False),
        sa.Column("char_end", sa.Integer(), nullable=False),
        sa.Column("chunk_text", sa.Text(), nullable=False),
        sa.Column(
            "embedding",
            sa.LargeBinary().with_variant(postgresql.ARRAY(sa.REAL()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("corpus", "model", "res_type", "res_id", "chunk", name="uq_resource_embedding_chunk"),
    )
    op.create_index(
        "ix_resource_embedding_subject", "resource_embedding", ["corpus", "model", "subject"], unique=False
    )
    op.create_index("ix_resource_embedding_resource", "resource_embedding", ["res_type", "res_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_resource_embedding_resource", table_name="resource_embedding")
    op.drop_index("ix_resource_embedding_subject", table_name="resource_embedding")
    op.drop_table("resource_embedding")
