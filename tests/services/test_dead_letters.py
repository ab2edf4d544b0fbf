"""Dead letters without AWS: two people replaying one at once send its work back once; what
Replay does to the row a message names (the AWS path: tests/aws/test_dead_letters.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_order, make_shop
from web import aws, queue
from web.db import make_engine, make_session_factory
from web.models import (
    AuditEvent,
    DeadLetter,
    InboxEvent,
    Job,
    OrderEvent,
    OutboxMessage,
    User,
    utcnow,
)
from web.models.enums import InboxState, JobState, OutboxState, Role
from web.services import dead_letters
from web.services.errors import InvalidTransition, NotFound
from web.services.users import create_user


@pytest.fixture()
def sessions(parallel_database: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(parallel_database)
    yield make_session_factory(engine)
    engine.dispose()


def _manager(session: Session) -> User:
    user, _ = create_user(
        session, f"m-{uuid.uuid4().hex[:8]}@example.com", Role.MANAGER, "x" * 16, "M"
    )
    return user


def _letter(session: Session, queue_name: str, body: str) -> DeadLetter:
    letter = DeadLetter(queue=queue_name, message_id=uuid.uuid4().hex, body=body, receive_count=2)
    session.add(letter)
    session.flush()
    return letter


def test_two_replays_of_one_dead_letter_send_its_work_once(
    sessions: sessionmaker[Session], two_processes: list[sessionmaker[Session]]
) -> None:
    with sessions.begin() as session:
        job = Job(kind="orders.bulk_comment", payload={}, state=JobState.FAILED, attempts=3)
        session.add(job)
        session.flush()
        letter_id = _letter(session, aws.JOBS, queue.Work(aws.JOBS, job.id).body()).id
        first_id, second_id = _manager(session).id, _manager(session).id

    # Two processes loaded the dead letter before either pressed Replay (PostgreSQL only:
    # SQLite's write lock already serialises them).
    first, second = two_processes[0](), two_processes[1]()
    first_letter = first.get_one(DeadLetter, letter_id)
    second_letter = second.get_one(DeadLetter, letter_id)
    dead_letters.replay(first, first_letter, first.get_one(User, first_id))
    first.commit()
    with pytest.raises(InvalidTransition, match="already sent back"):
        dead_letters.replay(second, second_letter, second.get_one(User, second_id))
    second.rollback()
    first.close()
    second.close()

    with sessions() as session:
        assert session.get_one(DeadLetter, letter_id).replayed_by_id == first_id
        audits = session.scalar(
            select(func.count(AuditEvent.id)).where(AuditEvent.kind == "dead_letter.replayed")
        )
        assert audits == 1
        assert session.get_one(Job, job.id).state == JobState.QUEUED


@pytest.mark.parametrize(
    ("state", "replayed"),
    [
        (InboxState.PARKED, InboxState.PENDING),
        (InboxState.FAILED, InboxState.PENDING),
        (InboxState.PENDING, InboxState.PENDING),
        (InboxState.PROCESSED, None),
        (InboxState.IGNORED, None),
        (InboxState.REJECTED, None),
    ],
)
def test_replay_makes_a_delivery_due_unless_it_was_applied_or_set_aside(
    db_session: Session, state: InboxState, replayed: InboxState | None
) -> None:
    shop = make_shop(db_session, "lyon")
    event = InboxEvent(
        shop=shop,
        topic="orders/updated",
        dedupe_key="d-1",
        raw_body=b"{}",
        headers={},
        state=state,
        attempts=5,
    )
    db_session.add(event)
    db_session.flush()
    letter = _letter(db_session, aws.INTAKE, queue.Work(aws.INTAKE, event.id).body())
    manager = _manager(db_session)
    if replayed is None:
        with pytest.raises(InvalidTransition):
            dead_letters.replay(db_session, letter, manager)
        return
    dead_letters.replay(db_session, letter, manager)
    assert event.state == replayed and event.next_attempt_at is None
    assert letter.replayed_at is not None
    with pytest.raises(InvalidTransition, match="already sent back"):
        dead_letters.dismiss(db_session, letter, manager)


def _outbox_message(session: Session, state: OutboxState, **values: object) -> OutboxMessage:
    shop = make_shop(session, f"s-{uuid.uuid4().hex[:6]}")
    order = make_order(session, shop)
    message = OutboxMessage(
        shop=shop,
        order=order,
        kind="status",
        payload={"milestone": "shipped", "notify": True},
        idempotency_key=uuid.uuid4().hex,
        state=state,
        attempts=5,
        **values,
    )
    session.add(message)
    session.flush()
    return message


def _announced(session: Session) -> list[queue.Work]:
    """What goes to the queues once the session commits."""
    return list(session.info.get("comptoir.announce", []))


def test_replaying_a_failed_job_queues_it_again_and_audits_what_it_was(
    db_session: Session,
) -> None:
    job = Job(kind="orders.bulk_comment", payload={}, state=JobState.FAILED, attempts=3)
    job.error = "boom"
    job.finished_at = utcnow()
    job.run_after = utcnow() + dt.timedelta(hours=2)
    db_session.add(job)
    db_session.flush()
    letter = _letter(db_session, aws.JOBS, queue.Work(aws.JOBS, job.id).body())
    manager = _manager(db_session)

    subject = dead_letters.replay(db_session, letter, manager)

    assert (subject.kind, subject.id) == (dead_letters.JOB, job.id)
    assert (job.state, job.attempts, job.error, job.finished_at) == (JobState.QUEUED, 0, "", None)
    assert job.run_after <= utcnow()
    assert [(w.queue, w.id) for w in _announced(db_session)] == [
        (queue.job_queue(job.kind), job.id)
    ]
    assert letter.replayed_at is not None and letter.replayed_by_id == manager.id
    audit = db_session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "dead_letter.replayed")
    ).one()
    assert audit.actor_user_id == manager.id
    assert audit.params == {
        "queue": aws.JOBS,
        "message_id": letter.message_id,
        "subject": dead_letters.JOB,
        "subject_id": job.id,
    }


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (JobState.DONE, "This job has finished since; dismiss the message."),
        (
            JobState.RUNNING,
            "This job is running; if its worker stopped, maintenance queues it again.",
        ),
    ],
)
def test_a_finished_or_running_job_is_not_replayed(
    db_session: Session, state: JobState, reason: str
) -> None:
    job = Job(kind="orders.bulk_comment", payload={}, state=state)
    db_session.add(job)
    db_session.flush()
    letter = _letter(db_session, aws.JOBS, queue.Work(aws.JOBS, job.id).body())
    with pytest.raises(InvalidTransition) as refused:
        dead_letters.replay(db_session, letter, _manager(db_session))
    assert (refused.value.action, refused.value.reason) == (dead_letters.REPLAY, reason)
    assert _announced(db_session) == []


def test_replaying_a_pending_outbox_message_makes_it_due_now(db_session: Session) -> None:
    later = utcnow() + dt.timedelta(hours=1)
    message = _outbox_message(db_session, OutboxState.PENDING, next_attempt_at=later)
    letter = _letter(db_session, aws.PUSH, queue.Work(aws.PUSH, message.id).body())

    subject = dead_letters.replay(db_session, letter, _manager(db_session))

    assert (subject.kind, subject.item) == (dead_letters.OUTBOX, message)
    assert subject.link == ("orders.detail", {"order_id": message.order_id})
    assert message.state == OutboxState.PENDING and message.next_attempt_at <= utcnow()
    assert [(w.queue, w.id) for w in _announced(db_session)] == [(aws.PUSH, message.id)]


def test_replaying_a_dead_outbox_message_retries_it_in_the_managers_name(
    db_session: Session,
) -> None:
    message = _outbox_message(db_session, OutboxState.DEAD)
    letter = _letter(db_session, aws.PUSH, queue.Work(aws.PUSH, message.id).body())
    manager = _manager(db_session)

    dead_letters.replay(db_session, letter, manager)

    assert (message.state, message.attempts) == (OutboxState.PENDING, 0)
    retried = db_session.scalars(
        select(OrderEvent).where(
            OrderEvent.order_id == message.order_id, OrderEvent.kind == "outbox.retried"
        )
    ).one()
    assert retried.actor_user_id == manager.id
    assert [(w.queue, w.id) for w in _announced(db_session)] == [(aws.PUSH, message.id)]


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        (OutboxState.SENT, "This change reached its shop since; dismiss the message."),
        (
            OutboxState.IGNORED,
            "This change was set aside; send it again from its row if it should go.",
        ),
    ],
)
def test_a_sent_or_ignored_outbox_message_is_not_replayed(
    db_session: Session, state: OutboxState, reason: str
) -> None:
    message = _outbox_message(db_session, state)
    letter = _letter(db_session, aws.PUSH, queue.Work(aws.PUSH, message.id).body())
    with pytest.raises(InvalidTransition) as refused:
        dead_letters.replay(db_session, letter, _manager(db_session))
    assert refused.value.reason == reason
    assert message.state == state and _announced(db_session) == []


def test_replay_refusals_say_why(db_session: Session) -> None:
    manager = _manager(db_session)
    shop = make_shop(db_session, "nantes")
    event = InboxEvent(
        shop=shop,
        topic="orders/updated",
        dedupe_key="d-2",
        raw_body=b"{}",
        headers={},
        state=InboxState.PROCESSED,
    )
    db_session.add(event)
    db_session.flush()
    applied = _letter(db_session, aws.INTAKE, queue.Work(aws.INTAKE, event.id).body())
    with pytest.raises(InvalidTransition) as refused:
        dead_letters.replay(db_session, applied, manager)
    assert refused.value.reason == "This delivery was applied since; dismiss the message."

    gone = _letter(db_session, aws.JOBS, queue.Work(aws.JOBS, 999_999).body())
    with pytest.raises(InvalidTransition) as refused:
        dead_letters.replay(db_session, gone, manager)
    assert refused.value.reason == "What this message named no longer exists."
    assert gone.replayed_at is None

    foreign = _letter(db_session, aws.JOBS, "not ours")
    subject = dead_letters.describe(db_session, foreign)
    assert not subject.ours and subject.problem != ""
    with pytest.raises(InvalidTransition, match="not one of Comptoir"):
        dead_letters.replay(db_session, foreign, manager)


def test_dismissing_sets_one_letter_aside_and_audits_it(db_session: Session) -> None:
    manager = _manager(db_session)
    job = Job(kind="orders.bulk_comment", payload={}, state=JobState.DONE)
    db_session.add(job)
    db_session.flush()
    letter = _letter(db_session, aws.JOBS, queue.Work(aws.JOBS, job.id).body())
    other = _letter(db_session, aws.JOBS, "not ours")
    assert dead_letters.count_open(db_session) == 2
    assert dead_letters.get(db_session, letter.id) is letter

    dead_letters.dismiss(db_session, letter, manager)

    assert letter.dismissed_at is not None and letter.dismissed_by_id == manager.id
    assert other.dismissed_at is None and other.replayed_at is None
    assert dead_letters.count_open(db_session) == 1
    assert dead_letters.open_letters(db_session) == [other]
    audit = db_session.scalars(
        select(AuditEvent).where(AuditEvent.kind == "dead_letter.dismissed")
    ).one()
    assert audit.params == {
        "queue": aws.JOBS,
        "message_id": letter.message_id,
        "subject": dead_letters.JOB,
        "subject_id": job.id,
    }
    with pytest.raises(NotFound):
        dead_letters.get(db_session, 999_999)


def test_a_letter_set_aside_by_someone_else_meanwhile_is_not_replayed(
    db_session: Session,
) -> None:
    job = Job(kind="orders.bulk_comment", payload={}, state=JobState.FAILED)
    db_session.add(job)
    db_session.flush()
    letter = _letter(db_session, aws.JOBS, queue.Work(aws.JOBS, job.id).body())
    # Another person dismissed it after this page loaded it (the loaded row does not know).
    db_session.execute(
        update(DeadLetter)
        .where(DeadLetter.id == letter.id)
        .values(dismissed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    with pytest.raises(InvalidTransition) as refused:
        dead_letters.replay(db_session, letter, _manager(db_session))
    assert (refused.value.action, refused.value.reason) == (
        dead_letters.REPLAY,
        "This message was already set aside.",
    )
    assert job.state == JobState.FAILED and _announced(db_session) == []


def test_drain_moves_the_dead_letter_queues_into_the_table(
    session_factory: sessionmaker[Session], moto_endpoint: str
) -> None:
    settings = aws.AwsSettings(prefix=f"drain{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)
    sessions = session_factory
    sqs = aws.client("sqs", settings)
    for name in aws.QUEUES:
        attributes = {"FifoQueue": "true"} if name in aws.FIFO_QUEUES else {}
        sqs.create_queue(
            QueueName=aws.dead_letter_name(settings.prefix, name), Attributes=attributes
        )
    job_body = queue.Work(aws.JOBS, 41).body()
    jobs_url = aws.dead_letter_url(settings, aws.JOBS)
    sqs.send_message(QueueUrl=jobs_url, MessageBody=job_body)
    for _ in range(2):  # someone looked at it twice in the console
        sqs.receive_message(QueueUrl=jobs_url, VisibilityTimeout=0)
    sqs.send_message(QueueUrl=aws.dead_letter_url(settings, aws.RENDER), MessageBody="not ours")
    before = utcnow()
    assert dead_letters.drain(sessions, settings) == 2
    assert dead_letters.drain(sessions, settings) == 0

    with sessions() as session:
        stored = {
            letter.queue: letter
            for letter in session.scalars(select(DeadLetter).where(DeadLetter.moved_at >= before))
        }
    assert set(stored) == {aws.JOBS, aws.RENDER}
    job_letter, foreign = stored[aws.JOBS], stored[aws.RENDER]
    # Read three times: twice before, once by the drain itself, which does not count.
    assert (job_letter.body, job_letter.error, job_letter.receive_count) == (job_body, "", 2)
    assert job_letter.sent_at is not None
    assert before - dt.timedelta(minutes=1) <= job_letter.sent_at <= utcnow()
    assert foreign.body == "not ours" and foreign.error != ""


def test_a_dead_letter_sqs_would_not_delete_is_stored_once_and_drained_again(
    session_factory: sessionmaker[Session],
    moto_endpoint: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = aws.AwsSettings(prefix=f"drain{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)

    def expired_receipt(params: dict[str, Any], **_: object) -> None:
        params["Entries"][0]["ReceiptHandle"] = "expired"

    sqs = aws.client("sqs", settings)
    for name in aws.QUEUES:
        # Received again at once: the second drain finds what the first could not delete.
        attributes = {"VisibilityTimeout": "0"}
        if name in aws.FIFO_QUEUES:
            attributes["FifoQueue"] = "true"
        sqs.create_queue(
            QueueName=aws.dead_letter_name(settings.prefix, name), Attributes=attributes
        )
    url = aws.dead_letter_url(settings, aws.JOBS)
    for job_id in (51, 52):
        sqs.send_message(QueueUrl=url, MessageBody=queue.Work(aws.JOBS, job_id).body())
    event_name = "before-parameter-build.sqs.DeleteMessageBatch"
    sqs.meta.events.register(event_name, expired_receipt)
    try:
        with caplog.at_level("WARNING", logger="web.services.dead_letters"):
            assert dead_letters.drain(session_factory, settings) == 1
    finally:
        sqs.meta.events.unregister(event_name, expired_receipt)
    assert f"could not delete a drained dead letter of {aws.JOBS}: " in caplog.text
    assert "ReceiptHandleIsInvalid" in caplog.text
    # The message SQS kept comes back at the next drain: deleted, not stored twice.
    assert dead_letters.drain(session_factory, settings) == 1

    with session_factory() as session:
        bodies = session.scalars(
            select(DeadLetter.body).where(DeadLetter.body.like(f"%{aws.JOBS}%"))
        ).all()
    assert sorted(bodies) == sorted(queue.Work(aws.JOBS, i).body() for i in (51, 52))
