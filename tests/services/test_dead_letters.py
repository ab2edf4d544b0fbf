"""Dead letters without AWS: two people replaying one at once send its work back once; what
Replay does to the row a message names (the AWS path: tests/aws/test_dead_letters.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_shop
from web import aws, queue
from web.db import make_engine, make_session_factory
from web.models import AuditEvent, DeadLetter, InboxEvent, Job, User
from web.models.enums import InboxState, JobState, Role
from web.services import dead_letters
from web.services.errors import InvalidTransition
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
