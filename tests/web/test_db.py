"""The SQLite engine setup holds up with the web process and its worker writing at once."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from web.db import make_engine, make_session_factory, read_only, writer_queue


def test_a_read_then_write_survives_a_concurrent_writer(tmp_path: Path) -> None:
    # What a login does (read the user, then stamp last_login_at) while the worker commits.
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1, 0), (2, 0)"))
    sessions = make_session_factory(engine)
    errors: list[BaseException] = []

    def other_writer() -> None:
        try:
            with sessions.begin() as other:
                other.execute(text("UPDATE t SET v = v + 1 WHERE id = 2"))
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    with sessions() as session:
        session.execute(text("SELECT v FROM t WHERE id = 1")).scalar_one()
        writer = threading.Thread(target=other_writer)
        writer.start()
        writer.join(timeout=0.5)  # it waits for our write lock instead of racing us
        session.execute(text("UPDATE t SET v = v + 1 WHERE id = 1"))
        session.commit()
    writer.join(timeout=30)
    assert not errors, errors
    with sessions() as session:
        assert session.execute(text("SELECT v FROM t ORDER BY id")).scalars().all() == [1, 1]
    engine.dispose()


def test_read_only_transactions_take_no_write_lock(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    sessions = make_session_factory(engine)
    with sessions() as reader:
        read_only(reader)
        reader.execute(text("SELECT count(*) FROM t")).scalar_one()
        # A writer is not blocked by an open reader.
        with sessions.begin() as writer:
            writer.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()


# --- The writer queue in front of SQLite's write lock -----------------------------------------


def _table(tmp_path: Path, **engine_args: object) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'db.sqlite'}", **engine_args)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (v INTEGER)"))
    return engine, make_session_factory(engine)


def test_writers_take_turns_in_the_queue_and_the_next_starts_when_the_first_commits(
    tmp_path: Path,
) -> None:
    engine, sessions = _table(tmp_path)
    steps: list[str] = []
    began = threading.Event()

    def second_writer() -> None:
        began.set()
        with sessions.begin() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))
            steps.append("second wrote")

    with sessions() as first:
        first.execute(text("INSERT INTO t VALUES (1)"))
        writer = threading.Thread(target=second_writer)
        writer.start()
        began.wait(5)
        writer.join(timeout=0.3)
        assert writer.is_alive() and steps == []  # queued behind the first, not failing
        steps.append("first commits")
        first.commit()
    writer.join(timeout=30)
    assert steps == ["first commits", "second wrote"]
    with sessions() as session:
        assert session.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [1, 2]
    engine.dispose()


def test_the_queue_is_left_on_rollback_on_close_and_when_begin_fails(tmp_path: Path) -> None:
    engine, sessions = _table(tmp_path, connect_args={"timeout": 0.2})
    queue = writer_queue(str(tmp_path / "db.sqlite"))
    with sessions() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        session.rollback()
    with sessions() as session:
        session.execute(text("INSERT INTO t VALUES (2)"))
    # Closed without commit or rollback: the pool rolled it back on its way in.
    with sessions.begin() as session:
        session.execute(text("INSERT INTO t VALUES (3)"))
    # A writer outside the queue (sqlite3's shell, another program) holds SQLite's lock:
    # BEGIN IMMEDIATE fails after the busy timeout, and the queue is free again after it.
    outsider = sqlite3.connect(tmp_path / "db.sqlite", isolation_level=None)
    outsider.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="database is locked"), sessions.begin() as session:
        session.execute(text("INSERT INTO t VALUES (4)"))
    outsider.rollback()
    outsider.close()
    assert queue._threads.acquire(blocking=False)  # noqa: SLF001 — nobody holds it
    queue._threads.release()  # noqa: SLF001
    with sessions.begin() as session:
        session.execute(text("INSERT INTO t VALUES (5)"))
        assert session.execute(text("SELECT v FROM t ORDER BY v")).scalars().all() == [3, 5]
    engine.dispose()


_HOLD_THE_FILE = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
print("holding", flush=True)
sys.stdin.readline()
"""


def test_another_process_in_the_queue_makes_a_writer_wait_then_answer_locked(
    tmp_path: Path,
) -> None:
    # gunicorn's other worker, the queue worker, a CLI command: they queue on the lock file.
    engine, sessions = _table(tmp_path, connect_args={"timeout": 0.3})
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_THE_FILE, str(tmp_path / "db.sqlite-writer.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(OperationalError, match="database is locked"):
            with sessions.begin() as session:
                session.execute(text("INSERT INTO t VALUES (1)"))
        # Readers do not queue.
        with sessions() as reader:
            read_only(reader)
            assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    with sessions.begin() as session:  # its turn came when the other process let go
        session.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
