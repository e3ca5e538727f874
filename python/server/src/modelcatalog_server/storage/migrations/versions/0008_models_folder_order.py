"""A folder's models are listed from an index in list order: a page is chosen from the index
alone instead of sorting every model of the folder.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_models_folder_order", "models", ["folder_id", "created_us", "id"])


def downgrade() -> None:
    op.drop_index("ix_models_folder_order", table_name="models")
