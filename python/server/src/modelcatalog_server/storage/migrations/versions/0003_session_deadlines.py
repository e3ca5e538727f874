"""Each upload session carries its own deadline, so servers with different grace periods on
one database do not cut each other's uploads short.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

#: The grace period of the servers that wrote the sessions being migrated (their default).
_GRACE_US = 600 * 1_000_000


def upgrade() -> None:
    op.add_column("upload_sessions", sa.Column("expires_us", sa.BigInteger, nullable=True))
    sessions = sa.table("upload_sessions", sa.column("alive_us"), sa.column("expires_us"))
    op.execute(sessions.update().values(expires_us=sessions.c.alive_us + _GRACE_US))
    op.drop_index("ix_upload_sessions_alive", "upload_sessions")
    with op.batch_alter_table("upload_sessions") as table:
        table.alter_column("expires_us", existing_type=sa.BigInteger, nullable=False)
        table.drop_column("alive_us")
    op.create_index("ix_upload_sessions_expires", "upload_sessions", ["expires_us"])


def downgrade() -> None:
    op.add_column("upload_sessions", sa.Column("alive_us", sa.BigInteger, nullable=True))
    sessions = sa.table("upload_sessions", sa.column("alive_us"), sa.column("expires_us"))
    op.execute(sessions.update().values(alive_us=sessions.c.expires_us - _GRACE_US))
    op.drop_index("ix_upload_sessions_expires", "upload_sessions")
    with op.batch_alter_table("upload_sessions") as table:
        table.alter_column("alive_us", existing_type=sa.BigInteger, nullable=False)
        table.drop_column("expires_us")
    op.create_index("ix_upload_sessions_alive", "upload_sessions", ["alive_us"])
