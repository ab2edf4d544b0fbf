"""Dead letters: queue messages that kept failing on AWS, brought back where a person sees them.

SQS moves a message to its queue's dead-letter queue after `maxReceiveCount` receives
(infra/cloudformation.json). The maintenance schedule `drain`s those queues into the
`dead_letters` table (a row first, the SQS message deleted only once the row is committed, so
a message drained twice is stored once and a crash loses nothing). The sync issues page lists
the open ones with what each was about (`describe`); "Replay" sends the work back to its
queue, the row it names put back in a due state, and "Dismiss" sets it aside. Both are
audited.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, func, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from web import aws, queue
from web.i18n import N_
from web.models import DeadLetter, InboxEvent, Job, OutboxMessage, User, utcnow
from web.models.enums import InboxState, JobState, OutboxState
from web.queue import BadMessage, Work
from web.services import intake, outbox, sync_log
from web.services.audit import record_audit
from web.services.errors import InvalidTransition, NotFound
from web.services.timeline import Actor

log = logging.getLogger(__name__)

# One drain reads at most this many batches of ten per queue: a schedule runs it again.
MAX_BATCHES = 50
INBOX = "inbox"
OUTBOX = "outbox"
JOB = "job"
UNKNOWN = "unknown"


# --- Draining the dead-letter queues ------------------------------------------------------------


def drain(
    sessions: sessionmaker[Session], settings: aws.AwsSettings, max_batches: int = MAX_BATCHES
) -> int:
    """Move every message of the dead-letter queues into `dead_letters`; return how many
    messages were taken off SQS (a message already stored is deleted, not stored again)."""
    sqs = aws.client("sqs", settings)
    moved = 0
    for name in aws.QUEUES:
        url = aws.dead_letter_url(settings, name)
        for _ in range(max_batches):
            messages = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=10,
                WaitTimeSeconds=0,
                MessageSystemAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                break
            with sessions.begin() as session:
                statement = _insert_statement(session.get_bind().dialect.name)
                session.execute(statement, [_row(name, message) for message in messages])
            # Only now: the rows are committed, so a crash before this line stores nothing twice.
            answer = sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                    for index, message in enumerate(messages)
                ],
            )
            for failed in answer.get("Failed", []):
                log.warning("could not delete a drained dead letter of %s: %s", name, failed)
            moved += len(messages) - len(answer.get("Failed", []))
    return moved


def _row(queue_name: str, message: Mapping[str, Any]) -> dict[str, Any]:
    attributes = message.get("Attributes") or {}
    body = str(message.get("Body", ""))
    sent = attributes.get("SentTimestamp")
    try:
        Work.parse(body, queue_name)
        error = ""
    except BadMessage as exc:
        error = str(exc)
    return {
        "queue": queue_name,
        "message_id": str(message["MessageId"])[:100],
        "body": body,
        # Our own receive from the dead-letter queue counted one more.
        "receive_count": max(0, int(attributes.get("ApproximateReceiveCount") or 1) - 1),
        "sent_at": (dt.datetime.fromtimestamp(int(sent) / 1000, dt.UTC) if sent else None),
        "moved_at": utcnow(),
        "error": error,
    }


@functools.cache
def _insert_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING: a message drained twice (two schedules at once, a
    delete that failed) is stored once."""
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    return insert(cast(Table, DeadLetter.__table__)).on_conflict_do_nothing()


# --- What a dead letter was about ---------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """What a dead letter's message named: an inbox event, an outbox message, a job, or
    nothing of ours (`kind` UNKNOWN, `problem` says why)."""

    kind: str
    id: int | None = None
    # The row it names, None when it no longer exists (or the body is not ours).
    item: InboxEvent | OutboxMessage | Job | None = None
    problem: str = ""

    @property
    def ours(self) -> bool:
        return self.kind != UNKNOWN

    @property
    def state(self) -> str:
        return self.item.state.value if self.item is not None else ""

    @property
    def link(self) -> tuple[str, dict[str, int]] | None:
        """(endpoint, arguments) of the page about it, if there is one."""
        if isinstance(self.item, InboxEvent):
            return "sync_log.detail", {"event_id": self.item.id}
        if isinstance(self.item, OutboxMessage) and self.item.order_id:
            return "orders.detail", {"order_id": self.item.order_id}
        return None


def describe(session: Session, dead_letter: DeadLetter) -> Subject:
    """What the dead letter's message was about."""
    try:
        work = Work.parse(dead_letter.body, dead_letter.queue)
    except BadMessage as exc:
        return Subject(UNKNOWN, problem=str(exc))
    if work.queue == aws.INTAKE:
        return Subject(INBOX, work.id, session.get(InboxEvent, work.id))
    if work.queue == aws.PUSH:
        return Subject(OUTBOX, work.id, session.get(OutboxMessage, work.id))
    return Subject(JOB, work.id, session.get(Job, work.id))


# --- Listing ------------------------------------------------------------------------------------


def open_filter() -> tuple[Any, ...]:
    return (DeadLetter.replayed_at.is_(None), DeadLetter.dismissed_at.is_(None))


def count_open(session: Session) -> int:
    """Dead letters nobody replayed nor dismissed: one COUNT."""
    return session.scalar(select(func.count(DeadLetter.id)).where(*open_filter())) or 0


def open_letters(session: Session, limit: int = 50) -> list[DeadLetter]:
    """Dead letters nobody replayed nor dismissed, newest first."""
    query = select(DeadLetter).where(*open_filter())
    return list(
        session.scalars(
            query.order_by(DeadLetter.moved_at.desc(), DeadLetter.id.desc()).limit(limit)
        )
    )


def get(session: Session, dead_letter_id: int) -> DeadLetter:
    found = session.get(DeadLetter, dead_letter_id)
    if found is None:
        raise NotFound(f"no dead letter {dead_letter_id}")
    return found


# --- Replay and dismiss -------------------------------------------------------------------------

REPLAY = "replay"
DISMISS = "dismiss"


def _ensure_open(dead_letter: DeadLetter, action: str) -> None:
    if dead_letter.replayed_at is not None:
        raise InvalidTransition(action, N_("This message was already sent back to its queue."))
    if dead_letter.dismissed_at is not None:
        raise InvalidTransition(action, N_("This message was already set aside."))


def _take(session: Session, dead_letter: DeadLetter, action: str, **values: Any) -> None:
    """Mark the dead letter replayed or dismissed if it is still open, in one conditional
    UPDATE: of two people pressing at once, the second is refused (not a second message)."""
    taken = session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == dead_letter.id, *open_filter())
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(dead_letter)
    if not int(getattr(taken, "rowcount", 0) or 0):
        _ensure_open(dead_letter, action)
        raise InvalidTransition(action, N_("This message was already set aside."))


def replay(session: Session, dead_letter: DeadLetter, actor: User) -> Subject:
    """Send the message's work back to its queue once this transaction commits, its row put
    back in a due state; refuse a message that is not ours, work that is gone or already
    done. The caller commits."""
    _ensure_open(dead_letter, REPLAY)
    subject = describe(session, dead_letter)
    if not subject.ours:
        raise InvalidTransition(
            REPLAY, N_("This message is not one of Comptoir’s: there is nothing to replay.")
        )
    if subject.item is None:
        raise InvalidTransition(REPLAY, N_("What this message named no longer exists."))
    _take(session, dead_letter, REPLAY, replayed_at=utcnow(), replayed_by_id=actor.id)
    if isinstance(subject.item, InboxEvent):
        _replay_event(session, subject.item, actor)
    elif isinstance(subject.item, OutboxMessage):
        _replay_message(session, subject.item, actor)
    else:
        assert isinstance(subject.item, Job)
        _replay_job(session, subject.item)
    record_audit(
        session, "dead_letter.replayed", actor=actor, params=_audit_params(dead_letter, subject)
    )
    session.flush()
    return subject


def _replay_event(session: Session, event: InboxEvent, actor: User) -> None:
    if event.state == InboxState.PENDING:
        # Still waiting: only the message was lost. Due at once, in its order's group.
        event.next_attempt_at = None
        intake.announce_event(session, event.id, event.shop_id, event.external_order_id)
    elif event.state in (InboxState.PARKED, InboxState.FAILED):
        # The delivery gave up too: applied again from scratch, as the sync log's Replay does.
        sync_log.replay(session, event, Actor.for_user(actor))
    elif event.state == InboxState.PROCESSED:
        raise InvalidTransition(REPLAY, N_("This delivery was applied since; dismiss the message."))
    else:  # IGNORED, REJECTED: a person or the checks set it aside.
        raise InvalidTransition(
            REPLAY,
            N_("This delivery was set aside; replay it from the sync log if it should apply."),
        )


def _replay_message(session: Session, message: OutboxMessage, actor: User) -> None:
    if message.state == OutboxState.PENDING:
        message.next_attempt_at = min(message.next_attempt_at, utcnow())
        outbox.announce_message(session, message)
    elif message.state in (OutboxState.FAILED, OutboxState.DEAD):
        outbox.retry(session, message, Actor.for_user(actor))
    elif message.state == OutboxState.SENT:
        raise InvalidTransition(
            REPLAY, N_("This change reached its shop since; dismiss the message.")
        )
    else:
        raise InvalidTransition(
            REPLAY, N_("This change was set aside; send it again from its row if it should go.")
        )


def _replay_job(session: Session, job: Job) -> None:
    if job.state == JobState.DONE:
        raise InvalidTransition(REPLAY, N_("This job has finished since; dismiss the message."))
    if job.state == JobState.RUNNING:
        raise InvalidTransition(
            REPLAY,
            N_("This job is running; if its worker stopped, maintenance queues it again."),
        )
    if job.state == JobState.FAILED:
        job.state = JobState.QUEUED
        job.attempts = 0
        job.error = ""
        job.finished_at = None
    job.run_after = min(job.run_after, utcnow())
    queue.announce(session, Work(queue.job_queue(job.kind), job.id))


def dismiss(session: Session, dead_letter: DeadLetter, actor: User) -> None:
    """Set the dead letter aside: it leaves the sync issues page. The caller commits."""
    _ensure_open(dead_letter, DISMISS)
    _take(session, dead_letter, DISMISS, dismissed_at=utcnow(), dismissed_by_id=actor.id)
    subject = describe(session, dead_letter)
    record_audit(
        session, "dead_letter.dismissed", actor=actor, params=_audit_params(dead_letter, subject)
    )
    session.flush()


def _audit_params(dead_letter: DeadLetter, subject: Subject) -> dict[str, Any]:
    return {
        "queue": dead_letter.queue,
        "message_id": dead_letter.message_id,
        "subject": subject.kind,
        "subject_id": subject.id,
    }
