"""Uploads in progress and blobs being deleted, as rows that every server process sees.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
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
        "upload_sessions",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("blob_handle", sa.String(255), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("alive_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_upload_sessions_alive", "upload_sessions", ["alive_us"])
    op.create_index("ix_upload_sessions_sha256", "upload_sessions", ["sha256"])
    op.create_table(
        "blob_deletions",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("marked_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_deletions")
    op.drop_index("ix_upload_sessions_sha256", "upload_sessions")
    op.drop_index("ix_upload_sessions_alive", "upload_sessions")
    op.drop_table("upload_sessions")
