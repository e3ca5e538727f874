"""Folders, models and versions can be edited: each row records when it last changed, which
is also what its etag is made from. Rows from before count as changed when they were created.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

#: The tables that gain the column. SQLite adds a NOT NULL column only with a default, so the
#: column has one (which no insert of the server relies on) and is then set from created_us.
_TABLES = ("folders", "models", "model_versions")


def upgrade() -> None:
    for name in _TABLES:
        op.add_column(
            name, sa.Column("updated_us", sa.BigInteger, nullable=False, server_default="0")
        )
        rows = sa.table(name, sa.column("created_us"), sa.column("updated_us"))
        op.execute(rows.update().values(updated_us=rows.c.created_us))


def downgrade() -> None:
    for name in _TABLES:
        op.drop_column(name, "updated_us")
