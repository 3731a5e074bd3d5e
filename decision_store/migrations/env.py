"""Alembic environment of the decision store: runs on the connection handed in by
:func:`decision_store.migrate.upgrade` (``config.attributes["connection"]``), or on the config's URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from decision_store.schema import metadata

config = context.config


def run() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
