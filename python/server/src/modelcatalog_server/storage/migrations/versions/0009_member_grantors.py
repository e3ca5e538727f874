"""A folder member's row records who granted the role as it stands, so that access can be
explained. A creator's owner role that never changed since the folder was made was granted by
the creator; other roles from before stay without a granter.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("folder_members", sa.Column("granted_by", sa.String(36)))
    members = sa.table(
        "folder_members",
        sa.column("folder_id"),
        sa.column("user_id"),
        sa.column("updated_us"),
        sa.column("granted_by"),
    )
    folders = sa.table("folders", sa.column("id"), sa.column("creator_id"), sa.column("created_us"))
    given_with_the_folder = (
        sa.select(folders.c.id)
        .where(
            folders.c.id == members.c.folder_id,
            folders.c.creator_id == members.c.user_id,
            folders.c.created_us == members.c.updated_us,
        )
        .exists()
    )
    op.execute(members.update().where(given_with_the_folder).values(granted_by=members.c.user_id))


def downgrade() -> None:
    op.drop_column("folder_members", "granted_by")
