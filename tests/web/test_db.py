"""The SQLite engine setup holds up with the web process and its worker writing at once."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from web.db import make_engine, make_session_factory, read_only


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
