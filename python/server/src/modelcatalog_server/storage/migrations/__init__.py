"""Schema migrations with Alembic, run once by whichever server process starts first.

``upgrade(connection)`` brings a database to the newest revision inside the caller's write
transaction, which is also the migration lock: SQLite's ``BEGIN IMMEDIATE`` (one writer per
file) and, on PostgreSQL, a transaction-scoped advisory lock. DDL is transactional on both, so
a second process waits for the first, then finds nothing left to do; a migration that fails
leaves the schema as it was. Revisions live in ``versions/``, one file each, written with
Alembic's operations (``alembic revision`` beside ``storage/schema.py``, which stays the
description of the newest schema; a unit test proves the two agree).

A database made before Alembic (stamped in a ``schema_version`` table, versions 1 to 3) is
brought forward by the first revision, so an existing data directory keeps working.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

log = logging.getLogger("modelcatalog_server.storage")
# Alembic tells at INFO what it assumes about each connection: noise in a server's log.
logging.getLogger("alembic").setLevel(logging.WARNING)

#: Any constant: PostgreSQL advisory locks are named by a 64-bit number ("mcmigrat" in ASCII).
_MIGRATION_LOCK_KEY = 0x6D636D6967726174


class SchemaTooNew(Exception):
    """The database was migrated by a newer server than this one."""


def alembic_config() -> Config:
    """Alembic's configuration for the revisions beside this module."""
    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent))
    return config


def head_revision() -> str:
    """The newest revision this server knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations package has no revisions"
    return head


def current_revisions(connection: Connection) -> tuple[str, ...]:
    """The revisions the database is stamped with (none for a new or pre-Alembic database)."""
    return MigrationContext.configure(connection).get_current_heads()


def upgrade(connection: Connection) -> None:
    """Brings the database to ``head_revision()`` inside ``connection``'s transaction, holding
    the migration lock; raises SchemaTooNew when a newer server migrated it."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
    config = alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    known = {revision.revision for revision in script.walk_revisions()}
    before = current_revisions(connection)
    unknown = [revision for revision in before if revision not in known]
    if unknown:
        raise SchemaTooNew(
            f"the database has schema revision {', '.join(unknown)}, which this server does "
            f"not know (its newest is {head}): a newer server migrated it; upgrade the server"
        )
    if before == (head,):
        return
    config.attributes["connection"] = connection
    command.upgrade(config, "head")
    log.info("migrated the database schema from %s to %s", ", ".join(before) or "nothing", head)
