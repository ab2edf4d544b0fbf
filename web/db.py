"""Engine and session factory (no Flask); the app and the Lambdas both use them."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
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


BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for SQLite's write lock before "database is locked"."""


class WriterQueue:
    """The writers of one SQLite database, queued before they ask SQLite for its write lock.

    SQLite lets one writer in at a time; the others poll, sleeping between tries (its busy
    handler: 1, 2, 5, 10 … 100 ms): a delivery that lost the lock twice waited 25–100 ms,
    whatever the writer before it took (intake p99 73–91 ms with 8 connections). Here the
    threads of a process wait on a lock that wakes the next one as soon as it is released,
    and the processes (gunicorn's workers, the queue worker, the CLI) on an advisory lock of
    a file next to the database, tried every 0.2 ms doubling to 0.5 ms: intake p99 25–27 ms
    (29–34 ms when the pause doubled to 2 ms). SQLite's own lock and busy handler stay
    underneath for whatever does not queue here (its shell, a backup).

    Held from BEGIN IMMEDIATE to the end of the transaction: commit, rollback or close of
    the connection (`_QueuedConnection`); never by read-only transactions. The lock file is
    open only while held (closing it lets go): no descriptor kept per database.
    """

    def __init__(self, database: Path) -> None:
        self.path = database.with_name(database.name + "-writer.lock")
        self._threads = threading.Lock()
        self._file: int | None = None

    def acquire(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        if not self._threads.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            self._file = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            pause = 0.0002
            while True:
                try:
                    fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return
                except BlockingIOError:
                    if time.monotonic() + pause > deadline:
                        raise sqlite3.OperationalError("database is locked") from None
                    time.sleep(pause)
                    pause = min(pause * 2, 0.0005)
        except BaseException:
            self._let_go()
            raise

    def release(self) -> None:
        self._let_go()

    def _let_go(self) -> None:
        if self._file is not None:
            os.close(self._file)  # and with it the file's lock
            self._file = None
        # Unlocked only in a child forked while its parent's connection held the queue: the
        # child's copy of that connection ending its transaction has nothing to hand over.
        if self._threads.locked():
            self._threads.release()

    def forget_holders(self) -> None:
        """In a forked child: nothing is held there, whatever the parent held."""
        self._threads = threading.Lock()
        self._file = None


_queues: dict[Path, WriterQueue] = {}
_queues_lock = threading.Lock()


def writer_queue(database: str) -> WriterQueue:
    """The one queue of this process for the SQLite file `database`."""
    path = Path(database).resolve()
    with _queues_lock:
        found = _queues.get(path)
        if found is None:
            found = _queues[path] = WriterQueue(path)
        return found


def _after_fork() -> None:
    global _queues_lock
    _queues_lock = threading.Lock()
    for queue in _queues.values():
        queue.forget_holders()


os.register_at_fork(after_in_child=_after_fork)


class _QueuedConnection(sqlite3.Connection):
    """An sqlite3 connection that leaves the writer queue when its transaction ends."""

    queue: WriterQueue | None = None
    queue_timeout = BUSY_TIMEOUT
    queued = False

    def enter_queue(self) -> None:
        if self.queue is not None and not self.queued:
            self.queue.acquire(self.queue_timeout)
            self.queued = True

    def leave_queue(self) -> None:
        if self.queued:
            self.queued = False
            assert self.queue is not None
            self.queue.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.leave_queue()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.leave_queue()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.leave_queue()


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL and real transactions."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(sa_url, **kwargs)

    is_memory = sa_url.database in (None, "", ":memory:")
    connect_args = kwargs.setdefault("connect_args", {})
    connect_args.setdefault("timeout", BUSY_TIMEOUT)
    queue = None
    if not is_memory and sa_url.database and not sa_url.database.startswith("file:"):
        connect_args.setdefault("factory", _QueuedConnection)
        queue = writer_queue(sa_url.database)
    engine = create_engine(sa_url, **kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # pysqlite's own transaction handling breaks SAVEPOINT and defers BEGIN;
        # let SQLAlchemy emit BEGIN itself (SQLAlchemy docs, "Serializable isolation").
        dbapi_connection.isolation_level = None
        if isinstance(dbapi_connection, _QueuedConnection):
            dbapi_connection.queue = queue
            dbapi_connection.queue_timeout = float(connect_args["timeout"])
        add_sqlite_functions(dbapi_connection)
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        if not is_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={round(1000 * float(connect_args['timeout']))}")
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
            return
        dbapi_connection = connection.connection.dbapi_connection
        queued = isinstance(dbapi_connection, _QueuedConnection)
        if queued:
            try:
                dbapi_connection.enter_queue()
            except sqlite3.OperationalError as exc:  # as SQLite's own "database is locked"
                raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            if queued:
                dbapi_connection.leave_queue()
            raise

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions keep loaded values after commit so views can render what they saved."""
    return sessionmaker(bind=engine, expire_on_commit=False)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"
