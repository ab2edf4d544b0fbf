"""The seam between "do it now" and "do it on a worker".

Work is always a row first: an inbox event, an outbox message, a job. Once the row commits
it is *announced* to the configured backend:

- `LocalBackend` (embedded default): wakes the worker beside the web server, which finds
  due rows itself (`run_pending`, web/services/sync.py's loop);
- `SqsBackend` (AWS): sends the row's id to its SQS queue (web/aws.py names them), where a
  Lambda of sync_lambdas/ picks it up. Bodies carry ids only; the row is the truth, so a lost
  or repeated message costs nothing (the maintenance sweep announces due rows again, and
  every consumer does nothing for a row that is no longer due).

Job handlers are registered by the services' callers (web/jobs.py), so this module never
imports a service.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from web import aws, observability
from web.db import read_only
from web.models import Job, utcnow
from web.models.enums import JobState

log = logging.getLogger(__name__)

# A handler gets the job's session (its result commits with the job's state) and the
# session factory, for work that commits in several units (polling a shop page by page).
JobHandler = Callable[[Session, Job, "sessionmaker[Session]"], dict[str, Any] | None]
_handlers: dict[str, JobHandler] = {}
# Kinds whose jobs render PDFs: on AWS they go to the render queue (the function with Pango).
_render_kinds: set[str] = set()
MAX_ATTEMPTS = 3
# A job still running after this long was cut off (a Lambda lives 15 minutes at most).
JOB_LEASE = dt.timedelta(minutes=16)


# --- Announcing committed work ----------------------------------------------------------------


class BadMessage(ValueError):
    """A queue message that is not one of ours: never retried into success."""


@dataclass(frozen=True)
class Work:
    """A committed row to work on: which queue, its id, and its FIFO group (one order's work
    in order)."""

    queue: str
    id: int
    group: str = ""

    def body(self) -> str:
        return json.dumps({"queue": self.queue, "id": self.id}, separators=(",", ":"))

    @classmethod
    def parse(cls, body: str, queue: str) -> Work:
        """The work a message body names; BadMessage unless it is one of ours for `queue`."""
        try:
            data = json.loads(body)
        except ValueError:
            raise BadMessage(f"not JSON: {body[:80]!r}") from None
        if not isinstance(data, dict) or data.get("queue") != queue:
            raise BadMessage(f"not a message of the {queue} queue: {body[:80]!r}")
        work_id = data.get("id")
        if not isinstance(work_id, int) or isinstance(work_id, bool) or work_id <= 0:
            raise BadMessage(f"no valid id in {body[:80]!r}")
        return cls(queue, work_id)


class Backend(Protocol):
    """Where announced work goes once its transaction commits."""

    def send(self, works: Sequence[Work]) -> None: ...


class LocalBackend:
    """The embedded worker (or `flask worker`) finds due rows itself: only wake it."""

    def send(self, works: Sequence[Work]) -> None:
        wake_worker()


class SqsBackend:
    """Each work's id to its SQS queue, ten per request; FIFO queues grouped by order.

    A failed send is logged, not raised: the row is committed, and the maintenance sweep
    (sync_lambdas/maintenance.py) announces due rows that nobody worked on.
    """

    def __init__(self, settings: aws.AwsSettings) -> None:
        self.settings = settings

    def send(self, works: Sequence[Work]) -> None:
        by_queue: dict[str, list[Work]] = {}
        for work in works:
            by_queue.setdefault(work.queue, []).append(work)
        sqs = aws.client("sqs", self.settings)
        for queue_name, items in by_queue.items():
            try:
                url = aws.queue_url(self.settings, queue_name)
                for start in range(0, len(items), 10):
                    entries = [
                        self._entry(queue_name, index, work)
                        for index, work in enumerate(items[start : start + 10])
                    ]
                    answer = sqs.send_message_batch(QueueUrl=url, Entries=entries)
                    for failed in answer.get("Failed", []):
                        log.warning("SQS refused a message to %s: %s", queue_name, failed)
            except Exception:
                log.exception("could not announce %s work to SQS", queue_name)

    @staticmethod
    def _entry(queue_name: str, index: int, work: Work) -> dict[str, Any]:
        entry: dict[str, Any] = {"Id": str(index), "MessageBody": work.body()}
        if queue_name in aws.FIFO_QUEUES:
            # Deduplication is ours (rows, states, leases); SQS's would drop a sweep's resend.
            entry["MessageGroupId"] = work.group or f"{queue_name}-{work.id}"
            entry["MessageDeduplicationId"] = uuid.uuid4().hex
        return entry


_backend: Backend = LocalBackend()


def configure(backend: Backend) -> None:
    """Set where announced work goes (create_app and the Lambda runtime call this)."""
    global _backend
    _backend = backend


def announce(session: Session, work: Work) -> None:
    """Send the work to the backend once this session's transaction commits (never before:
    a consumer must find the row)."""
    session.info.setdefault("comptoir.announce", []).append(work)


def announce_now(works: Sequence[Work]) -> None:
    """Send works whose rows are committed already (sweeps, replays)."""
    if works:
        _backend.send(works)


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
    works = session.info.pop("comptoir.announce", None)
    if works:
        try:
            _backend.send(works)
        except Exception:  # the rows are committed; the sweep announces them again
            log.exception("could not announce committed work")
    if session.info.pop("wake_worker", False):
        wake_worker()


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop("wake_worker", None)
    session.info.pop("comptoir.announce", None)


def register(kind: str, func: JobHandler, *, renders: bool = False) -> None:
    """Set the function that runs jobs of this kind (`renders`: it makes PDFs)."""
    _handlers[kind] = func
    if renders:
        _render_kinds.add(kind)
    else:
        _render_kinds.discard(kind)


def job_queue(kind: str) -> str:
    """The queue a job of this kind is announced to."""
    return aws.RENDER if kind in _render_kinds else aws.JOBS


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
    announce(session, Work(job_queue(kind), job.id))
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
    _start(job)
    return job


def run_next_job(sessions: sessionmaker[Session]) -> bool:
    """Run one due job; return False when none was due."""
    with sessions() as session:
        with session.begin():
            job = _claim(session)
            if job is None:
                return False
            job_id, kind, request_id = job.id, job.kind, job.request_id
        with observability.bound(request_id):
            _work(session, sessions, job_id, kind)
    return True


def run_job(sessions: sessionmaker[Session], job_id: int) -> JobState | None:
    """Run this job if it is queued and due (an SQS consumer); return its new state, or None
    when there was nothing to do: unknown, taken by another consumer, done, or not yet due.

    Safe under at-least-once delivery: the claim is a locked read (PostgreSQL) or SQLite's
    write lock, so two deliveries of one message run the job once.
    """
    with sessions() as session:
        with session.begin():
            query = select(Job).where(Job.id == job_id)
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            job = session.scalar(query)
            if job is None or job.state != JobState.QUEUED or job.run_after > utcnow():
                return None
            _start(job)
            kind, request_id = job.kind, job.request_id
        with observability.bound(request_id):
            return _work(session, sessions, job_id, kind)


def _start(job: Job) -> None:
    job.state = JobState.RUNNING
    job.started_at = utcnow()
    job.attempts += 1


def _work(session: Session, sessions: sessionmaker[Session], job_id: int, kind: str) -> JobState:
    """Run a claimed job's handler, then record its outcome; return the job's new state.

    Three transactions: claim (the caller's), the handler's work, then the outcome. The
    outcome is written in a fresh transaction because handlers that commit through
    `sessions` (polling page by page) would otherwise leave this session holding a read
    snapshot older than their commits, which SQLite refuses to turn into a write.
    """
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
            if job.state == JobState.QUEUED:
                announce(session, Work(job_queue(kind), job_id))
            return job.state
    with session.begin():
        job = session.get_one(Job, job_id)
        job.state = JobState.DONE
        job.result = result or {}
        job.error = ""
        job.finished_at = utcnow()
    log.info("job %s (%s) done", job_id, kind, extra={"job_id": job_id, "job_kind": kind})
    return JobState.DONE


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
    return bool(due_jobs(session, limit=1))


def due_jobs(
    session: Session, limit: int = 100, queued_before: dt.datetime | None = None
) -> list[Job]:
    """Queued jobs whose time has come, oldest first (`queued_before`: created before then)."""
    query = select(Job).where(Job.state == JobState.QUEUED, Job.run_after <= utcnow())
    if queued_before is not None:
        query = query.where(Job.created_at <= queued_before)
    return list(session.scalars(query.order_by(Job.id).limit(limit)))


def requeue_expired(sessions: sessionmaker[Session], lease: dt.timedelta = JOB_LEASE) -> int:
    """Queue again (and announce) the jobs running for longer than `lease`; return how many.

    On AWS a consumer that died (timeout, out of memory) leaves its job running; the
    maintenance schedule calls this. Handlers that change orders resume after the last order
    they committed.
    """
    with sessions.begin() as session:
        started_before = utcnow() - lease
        jobs = session.scalars(
            select(Job).where(Job.state == JobState.RUNNING, Job.started_at < started_before)
        ).all()
        for job in jobs:
            job.state = JobState.QUEUED
            job.error = "Its worker stopped without finishing; started again."
            announce(session, Work(job_queue(job.kind), job.id))
        return len(jobs)


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


def requeue_interrupted_once_reachable(
    sessions: sessionmaker[Session], stopping: threading.Event, retry_seconds: float = 5.0
) -> int | None:
    """`requeue_interrupted` as soon as the database answers; None if stopped before.

    A worker started while the database is down (both restarted together, or the database
    stopped while the worker imports) waits for it, as its passes do, instead of exiting and
    leaving the inbox and the outbox unworked until someone restarts it.
    """
    while not stopping.is_set():
        try:
            return requeue_interrupted(sessions)
        except (OperationalError, InterfaceError) as exc:
            log.warning(
                "worker: the database does not answer (%s); trying again in %g s",
                type(exc).__name__,
                retry_seconds,
            )
            stopping.wait(retry_seconds)
    return None


def start_embedded_worker(app: Any, tick: Callable[[], object]) -> EmbeddedWorker:
    """Start the worker thread for an app built by create_app(): jobs, then `tick` (the sync
    loop: inbox, outbox, due polls)."""
    sessions = app.extensions["comptoir.sessions"]
    interrupted = requeue_interrupted(sessions)
    if interrupted:
        log.warning("%s job(s) interrupted by the last stop are queued again", interrupted)
    worker = EmbeddedWorker(sessions, float(app.config["WORKER_POLL_SECONDS"]), tick=tick)
    worker.start()
    app.extensions["comptoir.worker"] = worker
    return worker
