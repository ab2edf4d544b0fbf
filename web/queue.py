"""The seam between "do it now" and "do it on a worker".

Locally, jobs are rows in the `jobs` table worked by a thread in the web process;
on AWS the same handlers run in Lambdas fed by SQS (see sync_lambdas/).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from web.db import read_only
from web.models import Job, utcnow
from web.models.enums import JobState

log = logging.getLogger(__name__)

# A handler gets the job's session (its result commits with the job's state) and the
# session factory, for work that commits in several units (polling a shop page by page).
JobHandler = Callable[[Session, Job, "sessionmaker[Session]"], dict[str, Any] | None]
_handlers: dict[str, JobHandler] = {}
MAX_ATTEMPTS = 3

# Set when there is work to do now (a job queued, an outbox message committed): the
# embedded worker runs at once instead of waiting for its next tick.
_wakeup = threading.Event()


def wake_worker() -> None:
    """Ask the embedded worker, if one runs in this process, to run now."""
    _wakeup.set()


def wake_after_commit(session: Session) -> None:
    """Wake the embedded worker once this session's transaction commits."""
    session.info["wake_worker"] = True


@event.listens_for(Session, "after_commit")
def _wake_if_asked(session: Session) -> None:
    if session.info.pop("wake_worker", False):
        wake_worker()


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop("wake_worker", None)


def handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    """Register the function that runs jobs of this kind."""

    def decorator(func: JobHandler) -> JobHandler:
        _handlers[kind] = func
        return func

    return decorator


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    created_by_id: int | None = None,
) -> Job:
    """Queue a job in the caller's transaction, so it exists only if the change commits."""
    if kind not in _handlers:
        raise ValueError(f"no handler for job kind {kind!r}")
    job = Job(kind=kind, payload=payload or {}, created_by_id=created_by_id)
    session.add(job)
    session.flush()
    wake_after_commit(session)
    return job


def _claim(session: Session) -> Job | None:
    query = (
        select(Job)
        .where(Job.state == JobState.QUEUED, Job.run_after <= utcnow())
        .order_by(Job.id)
        .limit(1)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    job = session.scalar(query)
    if job is None:
        return None
    job.state = JobState.RUNNING
    job.started_at = utcnow()
    job.attempts += 1
    return job


def run_next_job(sessions: sessionmaker[Session]) -> bool:
    """Run one due job; return False when none was due.

    Three transactions: claim, the handler's work, then the outcome. The outcome is
    written in a fresh transaction because handlers that commit through `sessions`
    (polling page by page) would otherwise leave this session holding a read snapshot
    older than their commits, which SQLite refuses to turn into a write.
    """
    with sessions() as session:
        with session.begin():
            job = _claim(session)
            if job is None:
                return False
            job_id, kind = job.id, job.kind
        try:
            with session.begin():
                # A reader: handlers that commit through `sessions` must not find this
                # session holding SQLite's write lock.
                read_only(session)
                job = session.get_one(Job, job_id)
                result = _handlers[kind](session, job, sessions)
        except Exception as exc:  # one failing job must not stop the worker
            log.exception("job %s (%s) failed", job_id, kind)
            with session.begin():
                job = session.get_one(Job, job_id)
                job.error = f"{type(exc).__name__}: {exc}"
                job.finished_at = utcnow()
                job.state = JobState.FAILED if job.attempts >= MAX_ATTEMPTS else JobState.QUEUED
            return True
        with session.begin():
            job = session.get_one(Job, job_id)
            job.state = JobState.DONE
            job.result = result or {}
            job.error = ""
            job.finished_at = utcnow()
    return True


def run_pending(sessions: sessionmaker[Session], limit: int = 100) -> int:
    """Run due jobs until none is left or `limit` is reached; return how many ran."""
    count = 0
    while count < limit and run_next_job(sessions):
        count += 1
    return count


class EmbeddedWorker(threading.Thread):
    """Background thread of the local runtime: works the job queue and the sync every second."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        poll_seconds: float = 1.0,
        tick: Callable[[], object] | None = None,
    ) -> None:
        super().__init__(name="comptoir-worker", daemon=True)
        self.sessions = sessions
        self.poll_seconds = poll_seconds
        self.tick = tick
        self.stopping = threading.Event()

    def run(self) -> None:
        log.info("embedded worker started")
        while not self.stopping.is_set():
            # Cleared before the work, so a wake-up asked for during it is not lost.
            _wakeup.clear()
            try:
                ran = run_pending(self.sessions)
                if self.tick is not None:
                    self.tick()
            except Exception:
                log.exception("worker loop failed; retrying")
                ran = 0
            if not ran:
                _wakeup.wait(self.poll_seconds)

    def stop(self) -> None:
        self.stopping.set()
        _wakeup.set()


def job_due(session: Session) -> bool:
    """Whether a queued job's time has come (one indexed read)."""
    query = select(Job.id).where(Job.state == JobState.QUEUED, Job.run_after <= utcnow())
    return session.scalar(query.limit(1)) is not None


def serve_queue(
    sessions: sessionmaker[Session],
    stopping: threading.Event,
    *,
    tick: Callable[[], object],
    work_due: Callable[[], bool],
    poll_seconds: float = 1.0,
    check_seconds: float = 0.25,
) -> None:
    """Work the queue in this thread until `stopping` is set, as a process of its own.

    Nothing wakes this process when the web server commits (it is another process), so
    every `check_seconds` it asks `work_due` (a cheap read that takes no write lock);
    jobs and the sync tick run when it says yes, and at least every `poll_seconds` (due
    shop polls). A stop request is honoured between units of work: the job or the sync
    pass under way finishes first.
    """
    last_tick = float("-inf")
    while not stopping.is_set():
        try:
            if time.monotonic() - last_tick >= poll_seconds or work_due():
                last_tick = time.monotonic()
                ran = 0
                while ran < 100 and not stopping.is_set() and run_next_job(sessions):
                    ran += 1
                if not stopping.is_set():
                    tick()
        except Exception:  # a failing pass must not stop the worker
            log.exception("worker pass failed; retrying")
        stopping.wait(check_seconds)


def requeue_interrupted(sessions: sessionmaker[Session]) -> int:
    """Queue again the jobs left running by a process that stopped; return how many.

    Only for the embedded runtime, where this process's worker is the only one: a job still
    marked running when it starts was cut off by a crash or a restart. Handlers that change
    orders resume after the last order they committed.
    """
    with sessions.begin() as session:
        jobs = session.scalars(select(Job).where(Job.state == JobState.RUNNING)).all()
        for job in jobs:
            job.state = JobState.QUEUED
            job.error = "Interrupted by a restart; started again."
        return len(jobs)


def start_embedded_worker(app: Any) -> EmbeddedWorker:
    """Start the worker thread for an app built by create_app(): jobs, inbox, due polls."""
    from web.services.sync import run_sync

    sessions = app.extensions["comptoir.sessions"]
    interrupted = requeue_interrupted(sessions)
    if interrupted:
        log.warning("%s job(s) interrupted by the last stop are queued again", interrupted)
    worker = EmbeddedWorker(
        sessions, float(app.config["WORKER_POLL_SECONDS"]), tick=lambda: run_sync(sessions)
    )
    worker.start()
    app.extensions["comptoir.worker"] = worker
    return worker
