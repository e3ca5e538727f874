"""Alembic's entry point: migrations run on the connection ``upgrade`` hands over, inside its
transaction (see ``__init__``); with ``alembic`` on the command line, on ``sqlalchemy.url``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from modelcatalog_server.storage.schema import metadata

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url", ""))
    with engine.begin() as opened:
        context.configure(connection=opened, target_metadata=metadata)
        with context.begin_transaction():
            context.run_migrations()
