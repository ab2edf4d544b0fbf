"""The embedded job queue: jobs run once, failures are kept with their cause."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate
from web import queue
from web.db import make_engine
from web.models import Job
from web.models.enums import JobState

calls: list[dict[str, Any]] = []


def _echo(session: Session, job: Job, sessions: object) -> dict[str, Any]:
    calls.append(job.payload)
    job.total = 3
    job.progress = 3
    return {"echo": job.payload["value"]}


def _explode(session: Session, job: Job, sessions: object) -> None:
    raise RuntimeError("shop said no")


queue.register("test.echo", _echo)
queue.register("test.explode", _explode)


@pytest.fixture(autouse=True)
def _reset_calls() -> None:
    calls.clear()


def test_a_queued_job_runs_once_and_keeps_its_result(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    job = queue.enqueue(db_session, "test.echo", {"value": 42})
    db_session.commit()
    assert queue.run_pending(session_factory) == 1
    assert queue.run_pending(session_factory) == 0
    db_session.refresh(job)
    assert job.state == JobState.DONE
    assert job.result == {"echo": 42}
    assert (job.progress, job.total) == (3, 3)
    assert calls == [{"value": 42}]


def test_a_failing_job_is_retried_then_marked_failed_with_its_error(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    job = queue.enqueue(db_session, "test.explode")
    db_session.commit()
    for _ in range(queue.MAX_ATTEMPTS):
        queue.run_next_job(session_factory)
    db_session.refresh(job)
    assert job.state == JobState.FAILED
    assert job.attempts == queue.MAX_ATTEMPTS
    assert "shop said no" in job.error


def test_a_job_enqueued_in_a_rolled_back_transaction_never_runs(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    queue.enqueue(db_session, "test.echo", {"value": 1})
    db_session.rollback()
    assert queue.run_pending(session_factory) == 0
    assert calls == []


def test_unknown_job_kind_is_refused(db_session: Session) -> None:
    with pytest.raises(ValueError, match="no handler"):
        queue.enqueue(db_session, "test.nobody")


def test_embedded_worker_thread_runs_jobs(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    job = queue.enqueue(db_session, "test.echo", {"value": "thread"})
    db_session.commit()
    worker = queue.EmbeddedWorker(session_factory, poll_seconds=0.05)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while not calls and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        worker.join(timeout=5)
    db_session.refresh(job)
    assert job.state == JobState.DONE


def _commits_elsewhere(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict:
    # Like polling a shop: read through the job's session, commit through others.
    assert session.get(Job, job.id) is not None
    for _ in range(3):
        with sessions.begin() as other:
            queue.enqueue(other, "test.echo", {"value": "from elsewhere"})
    return {"ok": True}


queue.register("test.commits_elsewhere", _commits_elsewhere)


def test_a_job_that_commits_through_other_sessions_finishes_on_a_real_sqlite_file(
    tmp_path,
) -> None:
    # Own database file with separate connections, as the embedded worker runs: the
    # rolled-back shared connection of the other tests would hide SQLite's locking.
    from web.db import make_engine, make_session_factory
    from web.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'jobs.sqlite'}"
    upgrade(url)
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        job_id = queue.enqueue(session, "test.commits_elsewhere").id
    assert queue.run_next_job(sessions)
    with sessions() as session:
        job = session.get_one(Job, job_id)
        assert job.state == JobState.DONE, job.error
        assert job.result == {"ok": True}
    engine.dispose()


def test_a_worker_started_while_the_database_is_down_waits_for_it(tmp_path: Path) -> None:
    # The database's folder does not exist yet: every connection fails, as with a database
    # server that is stopped. The worker keeps trying instead of exiting.
    folder = tmp_path / "not-yet"
    url = f"sqlite:///{folder / 'comptoir.sqlite'}"
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    stopping = threading.Event()
    outcome: list[int | None] = []
    waiting = threading.Thread(
        target=lambda: outcome.append(
            queue.requeue_interrupted_once_reachable(sessions, stopping, retry_seconds=0.05)
        )
    )
    waiting.start()
    time.sleep(0.3)
    assert waiting.is_alive() and outcome == []  # still waiting, not crashed

    # The database comes back whole (made aside, then moved in at once), with a job that a
    # killed worker left running.
    ready = tmp_path / "ready"
    ready.mkdir()
    ready_url = f"sqlite:///{ready / 'comptoir.sqlite'}"
    migrate(ready_url)
    aside = make_engine(ready_url)
    with sessionmaker(aside).begin() as session:
        session.add(Job(kind="echo", payload={}, state=JobState.RUNNING))
    aside.dispose()
    ready.rename(folder)
    waiting.join(10)
    engine.dispose()
    assert outcome == [1]


def test_a_worker_stopped_before_the_database_answers_exits_quietly(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'missing' / 'comptoir.sqlite'}")
    stopping = threading.Event()
    threading.Timer(0.2, stopping.set).start()
    sessions = sessionmaker(engine)
    assert queue.requeue_interrupted_once_reachable(sessions, stopping, retry_seconds=0.05) is None
    engine.dispose()
