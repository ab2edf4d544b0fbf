"""Engine and session factory (no Flask); the app and the Lambdas both use them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from web.textfold import (
    SQLITE_FOLD_FUNCTION,
    SQLITE_SEARCH_FOLD_FUNCTION,
    sqlite_fold,
    sqlite_search_fold,
)


def add_sqlite_functions(connection: Any) -> None:
    """Give an SQLite connection (sqlite3's) the functions the search index's triggers call:
    a connection without them cannot write orders, lines, customers or parcels."""
    connection.create_function(SQLITE_FOLD_FUNCTION, 1, sqlite_fold, deterministic=True)
    connection.create_function(
        SQLITE_SEARCH_FOLD_FUNCTION, 1, sqlite_search_fold, deterministic=True
    )


READ_ONLY = "comptoir_read_only"
"""Execution option marking a transaction that only reads (no write lock on SQLite)."""


def read_only(session: Session) -> Session:
    """Open the session's transaction as a reader: on SQLite it takes no write lock."""
    session.connection(execution_options={READ_ONLY: True})
    return session


def end_read(session: Session) -> None:
    """On SQLite, end the session's read so its next write begins a transaction of its own.

    The write then holds SQLite's single write lock only for itself. Other databases lock
    rows, not the database: the session goes on in the same transaction.
    """
    if is_sqlite(session.get_bind()):  # type: ignore[arg-type]
        session.commit()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and real transactions."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(sa_url, **kwargs)

    kwargs.setdefault("connect_args", {}).setdefault("timeout", 30)
    engine = create_engine(sa_url, **kwargs)
    is_memory = sa_url.database in (None, "", ":memory:")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT and defers BEGIN;
        # let SQLAlchemy emit BEGIN itself (SQLAlchemy docs, "Serializable isolation").
        dbapi_connection.isolation_level = None
        add_sqlite_functions(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not is_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            # In WAL mode NORMAL syncs at checkpoints, not at every commit: a commit
            # survives the process crashing, the last ones may not survive a power cut.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A deferred transaction that reads, then writes after another connection
        # committed, fails at once with "database is locked" (WAL snapshot): units of
        # work take the write lock up front; read-only ones (GET pages) stay deferred.
        if connection.get_execution_options().get(READ_ONLY):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions keep loaded values after commit so views can render what they saved."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
