"""The embedded job queue: jobs run once, failures are kept with their cause."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from web import queue
from web.models import Job
from web.models.enums import JobState

calls: list[dict[str, Any]] = []


@queue.handler("test.echo")
def _echo(session: Session, job: Job, sessions: object) -> dict[str, Any]:
    calls.append(job.payload)
    job.total = 3
    job.progress = 3
    return {"echo": job.payload["value"]}


@queue.handler("test.explode")
def _explode(session: Session, job: Job, sessions: object) -> None:
    raise RuntimeError("shop said no")


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
