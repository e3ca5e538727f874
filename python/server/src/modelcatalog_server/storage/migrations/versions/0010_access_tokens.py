"""Access tokens for machines, and deleted accounts kept as tombstones.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("deleted_us", sa.BigInteger, nullable=True))
    op.create_table(
        "access_tokens",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.String(36), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("scope", sa.SmallInteger, nullable=False),
        sa.Column("folder_ids", sa.Text, nullable=True),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("expires_us", sa.BigInteger, nullable=False),
        sa.Column("last_used_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("secret_sha256", name="uq_access_tokens_secret"),
        sa.UniqueConstraint("user_id", "name", name="uq_access_tokens_user_name"),
    )


def downgrade() -> None:
    op.drop_table("access_tokens")
    op.drop_column("users", "deleted_us")
