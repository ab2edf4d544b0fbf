"""Alembic environment: the engine comes from web.db so SQLite gets the same settings."""

from __future__ import annotations

from alembic import context

from web import search_index
from web.db import make_engine
from web.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url, "sqlalchemy.url is not set"
    engine = make_engine(url)
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            # Batch mode rebuilds a table by copying it and dropping the old one; with foreign
            # keys on, SQLite's DROP TABLE first deletes the rows, cascading to every child
            # table (an order's lines, events, shipments…). The pragma only takes effect
            # outside a transaction, hence on the driver's connection, before the migration's.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things: batch mode rebuilds the table instead.
            render_as_batch=True,
            compare_type=True,
            compare_server_default=False,
            include_name=lambda name, kind, parent: not search_index.is_search_object(name),
        )
        with context.begin_transaction():
            context.run_migrations()
            if engine.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                assert not broken, f"the migration left rows without their parent: {broken}"
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
