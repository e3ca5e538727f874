"""The audit trail (audit_events) and the change feed's counter and audiences.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("occurred_us", sa.BigInteger, nullable=False),
        sa.Column("actor_id", sa.String(36), nullable=True),
        sa.Column("token_id", sa.String(64), nullable=True),
        sa.Column("token_name", sa.String(128), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("outcome", sa.String(64), nullable=False),
        sa.Column("folder_id", sa.String(36), nullable=True),
        sa.Column("resource", sa.String(255), nullable=False),
        sa.Column("peer", sa.String(64), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
        sa.Column("feed_position", sa.BigInteger, nullable=True, unique=True),
        sa.Column("feed_kind", sa.SmallInteger, nullable=True),
    )
    op.create_index("ix_audit_events_folder", "audit_events", ["folder_id", "id"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_id", "id"])
    op.create_index("ix_audit_events_resource", "audit_events", ["resource", "id"])
    op.create_index("ix_audit_events_time", "audit_events", ["occurred_us"])
    feed = op.create_table(
        "event_feed",
        sa.Column("id", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("pruned_through", sa.BigInteger, nullable=False),
    )
    op.bulk_insert(feed, [{"id": 1, "position": 0, "pruned_through": 0}])
    op.create_table(
        "event_audience",
        sa.Column("feed_position", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.String(36), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("event_audience")
    op.drop_table("event_feed")
    op.drop_table("audit_events")
