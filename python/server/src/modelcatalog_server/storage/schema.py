"""The metadata schema (SQLAlchemy Core, portable: no SQLite-only SQL).

The tables below describe the newest schema; the Alembic revisions in ``migrations/`` build it.
A schema change therefore edits the tables below *and* adds a revision that does the same to an
existing database (a unit test proves that the revisions build exactly these tables).

Sign-in failures, revoked tokens, access tokens, uploads in progress, blobs being deleted and
the results of requests made with a request_id are rows here, not process memory, so that every
server process sharing the database enforces the same throttles and revocations, none deletes
bytes another is about to commit, and a retry reaching another process is still recognised.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)

metadata = MetaData()

ID = String(36)

users = Table(
    "users",
    metadata,
    Column("id", ID, primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(128), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # Tokens carry the generation they were issued at; raising it revokes them all at once.
    Column("token_generation", Integer, nullable=False, server_default="0"),
    # When the account was deleted (NULL while it exists). Its row stays, so that what it made
    # keeps naming it and its username is never given to another account.
    Column("deleted_us", BigInteger, nullable=True),
)

folders = Table(
    "folders",
    metadata,
    Column("id", ID, primary_key=True),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("creator_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # When the name or the description last changed (created_us until then); etags are made
    # from it (domain/edits.py). The default is for revision 0005's existing rows only.
    Column("updated_us", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("creator_id", "name", name="uq_folders_creator_name"),
)

folder_members = Table(
    "folder_members",
    metadata,
    Column("folder_id", ID, ForeignKey("folders.id"), primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), primary_key=True),
    Column("role", SmallInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # Who set the role as it stands (a user id, NULL when not recorded). No foreign key: the
    # grant outlives its granter's account, and an explanation then says the granter is gone.
    Column("granted_by", ID),
    Index("ix_folder_members_user", "user_id", "folder_id"),
)

models = Table(
    "models",
    metadata,
    Column("id", ID, primary_key=True),
    Column("folder_id", ID, ForeignKey("folders.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("description", Text, nullable=False),
    Column("creator_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # The version counter: the highest number ever given, whose version may have been deleted
    # since. The next version gets the number after it, so numbers are never reused.
    Column("latest_version", BigInteger, nullable=False),
    # As folders.updated_us: when the name or description last changed.
    Column("updated_us", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("folder_id", "name", name="uq_models_folder_name"),
    Index("ix_models_order", "created_us", "id"),
    # A folder's page of models in list order, read from the index alone.
    Index("ix_models_folder_order", "folder_id", "created_us", "id"),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("model_id", ID, ForeignKey("models.id"), primary_key=True),
    Column("version", BigInteger, primary_key=True, autoincrement=False),
    Column("file_name", String(255), nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("description", Text, nullable=False),
    Column("labels", Text, nullable=False),
    Column("creator_id", ID, ForeignKey("users.id"), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    # As folders.updated_us: when the description or the labels last changed.
    Column("updated_us", BigInteger, nullable=False, server_default="0"),
    Index("ix_model_versions_sha256", "sha256"),
)

model_aliases = Table(
    "model_aliases",
    metadata,
    # A name that points at one existing version of its model; moved by compare-and-swap.
    Column("model_id", ID, ForeignKey("models.id"), primary_key=True),
    Column("name", String(63), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("updater_id", ID, ForeignKey("users.id"), nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    ForeignKeyConstraint(
        ["model_id", "version"],
        ["model_versions.model_id", "model_versions.version"],
        name="fk_model_aliases_version",
    ),
)

request_results = Table(
    "request_results",
    metadata,
    # A mutation made with a client-chosen request_id: a retry with the same id gets the
    # resource it made instead of a second one. ``fingerprint`` is a digest of the method and
    # its arguments (a reused id with other arguments is refused); ``resource`` names what the
    # call made. Rows older than the retention period are pruned.
    Column("user_id", ID, primary_key=True),
    Column("request_id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("resource", String(255), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Index("ix_request_results_created", "created_us"),
)

sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    # A digest of the username as typed (existing or not) and the caller's network address.
    Column("account_key", String(64), nullable=False),
    Column("peer_key", String(64), nullable=False),
    Column("failed_us", BigInteger, nullable=False),
    Index("ix_sign_in_failures_account", "account_key", "failed_us"),
    Index("ix_sign_in_failures_peer", "peer_key", "failed_us"),
    Index("ix_sign_in_failures_time", "failed_us"),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("token_id", String(64), primary_key=True),
    Column("user_id", ID, nullable=False),
    # After this moment the token is refused as expired anyway, and the row can go.
    Column("until_us", BigInteger, nullable=False),
    Index("ix_revoked_tokens_until", "until_us"),
)

access_tokens = Table(
    "access_tokens",
    metadata,
    # A token a user made for a machine. Only the SHA-256 of its secret is stored; every call
    # made with it looks the row up by that digest. ``scope`` is the AccessTokenScope number
    # (1 read, 2 read-write); ``folder_ids`` a JSON list of the folders it may use, NULL for
    # all. ``last_used_us`` is written at most once a minute. Revoking deletes the row.
    Column("id", ID, primary_key=True),
    Column("user_id", ID, ForeignKey("users.id"), nullable=False),
    Column("name", String(64), nullable=False),
    Column("secret_sha256", String(64), nullable=False),
    Column("scope", SmallInteger, nullable=False),
    Column("folder_ids", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("expires_us", BigInteger, nullable=False),
    Column("last_used_us", BigInteger, nullable=True),
    UniqueConstraint("secret_sha256", name="uq_access_tokens_secret"),
    UniqueConstraint("user_id", "name", name="uq_access_tokens_user_name"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    # One upload in progress, in whichever server process: where its bytes wait
    # (BlobWriter.handle), the SHA-256 it claimed once its bytes were complete, and until when
    # its process has said it is alive. Past that any process cleans it up. An upload made with
    # a request_id carries its user, request id and request fingerprint (domain/requests.py), so
    # that it can be resumed: when its stream breaks, ``paused_bytes`` says how many bytes it
    # keeps durably and ``expires_us`` moves to the end of the resume period; NULL while a
    # stream is sending it.
    Column("id", ID, primary_key=True),
    Column("blob_handle", String(255), nullable=False),
    Column("sha256", String(64), nullable=True),
    Column("expires_us", BigInteger, nullable=False),
    Column("user_id", ID, nullable=True),
    Column("request_id", String(36), nullable=True),
    Column("fingerprint", String(64), nullable=True),
    Column("paused_bytes", BigInteger, nullable=True),
    Index("ix_upload_sessions_expires", "expires_us"),
    Index("ix_upload_sessions_sha256", "sha256"),
    Index("ix_upload_sessions_request", "user_id", "request_id"),
)

blob_deletions = Table(
    "blob_deletions",
    metadata,
    # A blob no version and no upload points to, being deleted: no upload may claim it until
    # its bytes are gone and the row with them.
    Column("sha256", String(64), primary_key=True),
    Column("marked_us", BigInteger, nullable=False),
)

audit_events = Table(
    "audit_events",
    metadata,
    # One recorded call: who (the account, and the token it came with), what (the RPC's name),
    # on which resource, when, from where, and how it ended ("OK" or the ErrorReason). Written in
    # the transaction of the change it records. Rows outlive what they name (no foreign keys):
    # the trail of a deleted folder stays until the retention period has passed.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("occurred_us", BigInteger, nullable=False),
    Column("actor_id", ID, nullable=True),
    Column("token_id", String(64), nullable=True),
    # The name of the access token the call came with, when it came with a named one.
    Column("token_name", String(128), nullable=True),
    Column("action", String(64), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("folder_id", ID, nullable=True),
    Column("resource", String(255), nullable=False),
    Column("peer", String(64), nullable=True),
    # A JSON object of strings: what else a reader needs (a version number, a role, a username).
    Column("details", Text, nullable=False),
    # The event's place in the change feed (WatchEvents), for the kinds of change it carries;
    # given in commit order by ``event_feed`` (see there). NULL for other events.
    Column("feed_position", BigInteger, nullable=True, unique=True),
    Column("feed_kind", SmallInteger, nullable=True),
    Index("ix_audit_events_folder", "folder_id", "id"),
    Index("ix_audit_events_actor", "actor_id", "id"),
    Index("ix_audit_events_resource", "resource", "id"),
    Index("ix_audit_events_time", "occurred_us"),
)

event_feed = Table(
    "event_feed",
    metadata,
    # One row: the last feed position given. A transaction that records a feed event raises it
    # and keeps its row lock until it commits, so positions are given in commit order: once a
    # reader sees position N, every position below N has committed (or was never given). Only
    # feed-writing transactions wait for each other here. ``pruned_through`` is the highest
    # position the retention pruning deleted: a watcher resuming before it has missed events.
    Column("id", SmallInteger, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False),
    Column("pruned_through", BigInteger, nullable=False),
)

event_audience = Table(
    "event_audience",
    metadata,
    # Users who see a feed event without a role in its folder any more: the members of a deleted
    # folder, a user whose role was revoked.
    Column("feed_position", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", ID, primary_key=True),
)
