"""The schema as it stood before Alembic: users, folders, members, models, versions, sign-in
failures and revoked tokens.

A new database gets these tables. A database made before Alembic carries a ``schema_version``
table instead (1: users, folders, members and models; 2: model versions added; 3: token
generations, sign-in failures and revoked tokens added): it is brought to version 3's shape and
the table is dropped, so Alembic's stamp is its only version from then on.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_ID = sa.String(36)


def _users() -> None:
    op.create_table(
        "users",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(128), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("token_generation", sa.Integer, nullable=False, server_default="0"),
    )


def _folders_members_models() -> None:
    op.create_table(
        "folders",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("creator_id", _ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("creator_id", "name", name="uq_folders_creator_name"),
    )
    op.create_table(
        "folder_members",
        sa.Column("folder_id", _ID, sa.ForeignKey("folders.id"), primary_key=True),
        sa.Column("user_id", _ID, sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("role", sa.SmallInteger, nullable=False),
        sa.Column("updated_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_folder_members_user", "folder_members", ["user_id", "folder_id"])
    op.create_table(
        "models",
        sa.Column("id", _ID, primary_key=True),
        sa.Column("folder_id", _ID, sa.ForeignKey("folders.id"), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("creator_id", _ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
        sa.Column("latest_version", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("folder_id", "name", name="uq_models_folder_name"),
    )
    op.create_index("ix_models_order", "models", ["created_us", "id"])


def _model_versions() -> None:
    op.create_table(
        "model_versions",
        sa.Column("model_id", _ID, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("version", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("labels", sa.Text, nullable=False),
        sa.Column("creator_id", _ID, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_model_versions_sha256", "model_versions", ["sha256"])


def _sign_in_failures_and_revocations() -> None:
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
        sa.Column("account_key", sa.String(64), nullable=False),
        sa.Column("peer_key", sa.String(64), nullable=False),
        sa.Column("failed_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_sign_in_failures_account", "sign_in_failures", ["account_key", "failed_us"])
    op.create_index("ix_sign_in_failures_peer", "sign_in_failures", ["peer_key", "failed_us"])
    op.create_index("ix_sign_in_failures_time", "sign_in_failures", ["failed_us"])
    op.create_table(
        "revoked_tokens",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("until_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_revoked_tokens_until", "revoked_tokens", ["until_us"])


def _pre_alembic_version() -> int | None:
    """The version stamped by the migrations before Alembic, or None for a new database."""
    connection = op.get_bind()
    if not sa.inspect(connection).has_table("schema_version"):
        return None
    return int(connection.exec_driver_sql("SELECT max(version) FROM schema_version").scalar_one())


def upgrade() -> None:
    stamped = _pre_alembic_version()
    if stamped is None:
        _users()
        _folders_members_models()
        _model_versions()
        _sign_in_failures_and_revocations()
        return
    if stamped < 2:
        _model_versions()
    if stamped < 3:
        op.add_column(
            "users",
            sa.Column("token_generation", sa.Integer, nullable=False, server_default="0"),
        )
        _sign_in_failures_and_revocations()
    op.drop_table("schema_version")


def downgrade() -> None:
    raise NotImplementedError("the first schema cannot be undone: remove the database instead")
