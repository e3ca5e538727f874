"""Upload sessions made with a request_id keep their user, request id and fingerprint, and how
many bytes they hold once their stream broke, so that they can be resumed.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("upload_sessions", sa.Column("user_id", sa.String(36), nullable=True))
    op.add_column("upload_sessions", sa.Column("request_id", sa.String(36), nullable=True))
    op.add_column("upload_sessions", sa.Column("fingerprint", sa.String(64), nullable=True))
    op.add_column("upload_sessions", sa.Column("paused_bytes", sa.BigInteger, nullable=True))
    op.create_index("ix_upload_sessions_request", "upload_sessions", ["user_id", "request_id"])


def downgrade() -> None:
    op.drop_index("ix_upload_sessions_request", "upload_sessions")
    with op.batch_alter_table("upload_sessions") as table:
        table.drop_column("paused_bytes")
        table.drop_column("fingerprint")
        table.drop_column("request_id")
        table.drop_column("user_id")
