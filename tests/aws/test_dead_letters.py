"""Dead letters on a real moto server: a message that keeps failing is consumed by the real
handler until SQS sets it aside, the maintenance schedule drains it onto the sync issues page,
and Replay (or Dismiss) there does what a manager expects.

The handlers and the app read a database of this module's own (every connection sees it);
the tests read the page in English so they do not depend on the French catalog.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import driver, runtime
from sync_lambdas import intake as intake_lambda
from sync_lambdas import jobs as jobs_lambda
from sync_lambdas import maintenance as maintenance_lambda
from tests.aws.conftest import MAX_RECEIVE_COUNT, Stack
from tests.conftest import TEST_PASSWORD, csrf_token, log_in, wait_until
from tests.factories import make_order, make_shop
from web import aws, queue
from web.app import create_app
from web.models import AuditEvent, Comment, DeadLetter, InboxEvent, Job, User, utcnow
from web.models.enums import InboxState, JobState, Role
from web.services import bulk
from web.services.users import create_user

PAGE = "/sync/issues/"
HTMX = {"HX-Request": "true"}


@pytest.fixture()
def lambda_settings(
    aws_stack: Stack, parallel_database: str, encryption_key: str
) -> Iterator[dict[str, Any]]:
    """The Lambda runtime's settings: the stack's queues and this module's database."""
    settings = aws_stack.settings_on(parallel_database, encryption_key)
    runtime.use(settings)
    yield settings
    runtime.use()


@pytest.fixture()
def aws_app(lambda_settings: dict[str, Any], tmp_path: Path) -> Flask:
    """The web app in the AWS mode on the module's database."""
    return create_app(
        {
            **lambda_settings,
            "TESTING": True,
            "INSTANCE_PATH": str(tmp_path / "instance"),
        }
    )


@pytest.fixture()
def sessions(aws_app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = aws_app.extensions["comptoir.sessions"]
    return factory


def _user(sessions: sessionmaker[Session], role: Role) -> User:
    with sessions.begin() as session:
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        user, _ = create_user(session, email, role, TEST_PASSWORD, role.value.title())
    return user


def _logged_in(aws_app: Flask, sessions: sessionmaker[Session], role: Role) -> FlaskClient:
    client = aws_app.test_client()
    log_in(client, _user(sessions, role).email)
    token = csrf_token(client, "/orders/")
    client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/"})
    return client


def _dead_letter_rows(html: str) -> dict[int, str]:
    """The page's dead letter rows by id."""
    return {
        int(found.group(1)): found.group(0)
        for found in re.finditer(r'<tr id="dead-letter-(\d+)".*?</tr>', html, re.S)
    }


def _until_dead_lettered(stack: Stack, queue_name: str, handler: driver.Handler) -> None:
    """Consume the queue with the real handler, as Lambda would, until SQS moves the message
    to the dead-letter queue."""

    def consumed_and_moved() -> bool:
        driver.consume_once(stack.settings, queue_name, handler)
        return stack.messages_in(queue_name, dead_letters=True) == 1

    wait_until(consumed_and_moved, seconds=60, what=f"a dead letter on {queue_name}")
    assert stack.messages_in(queue_name) == 0


def _maintenance() -> dict[str, int]:
    result: dict[str, int] = maintenance_lambda.handler(
        driver.scheduled_event("comptoir-maintenance"), driver.LambdaContext("maintenance")
    )
    return result


def _open_letter(sessions: sessionmaker[Session], body: str) -> DeadLetter:
    with sessions() as session:
        letter = session.scalar(select(DeadLetter).where(DeadLetter.body == body))
        assert letter is not None
        return letter


def _send_post(client: FlaskClient, path: str) -> Any:
    return client.post(path, data={"csrf_token": csrf_token(client, PAGE)}, headers=HTMX)


def test_a_job_that_kept_failing_is_replayed_from_the_page_and_runs_once(
    aws_stack: Stack,
    aws_app: Flask,
    sessions: sessionmaker[Session],
    lambda_settings: dict[str, Any],
    tmp_path: Path,
) -> None:
    manager = _logged_in(aws_app, sessions, Role.MANAGER)
    author = _user(sessions, Role.MANAGER)
    with sessions.begin() as session:
        shop = make_shop(session, f"dl-{uuid.uuid4().hex[:8]}")
        order_id = make_order(session, shop).id
        job = bulk.start_comment(
            session,
            {"ids": [order_id]},
            "Fragile: glass inside.",
            "internal",
            created_by_id=author.id,
        )
        job_id = job.id
    body = queue.Work(aws.JOBS, job_id).body()
    assert aws_stack.messages_in(aws.JOBS) == 1

    # The jobs function cannot reach its database: every receive fails, until SQS gives up.
    runtime.use({**lambda_settings, "DATABASE_URL": f"sqlite:///{tmp_path}/missing/none.sqlite"})
    _until_dead_lettered(aws_stack, aws.JOBS, jobs_lambda.handler)

    runtime.use(lambda_settings)  # the database is back
    assert _maintenance()["dead_letters"] == 1
    assert aws_stack.messages_in(aws.JOBS, dead_letters=True) == 0
    letter = _open_letter(sessions, body)
    assert (letter.queue, letter.receive_count) == (aws.JOBS, MAX_RECEIVE_COUNT)
    assert letter.sent_at is not None

    page = manager.get(PAGE)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Dead letters" in html and "All is well." not in html
    row = _dead_letter_rows(html)[letter.id]
    assert f"Job {job_id}" in row and "orders.bulk_comment" in row
    assert "Background jobs" in row and "received 2 times" in row
    assert "Replay" in row and "Dismiss" in row

    answer = _send_post(manager, f"/sync/issues/dead-letters/{letter.id}/replay")
    assert answer.status_code == 200
    assert "Sent back to its queue." in answer.get_data(as_text=True)
    assert answer.headers["HX-Trigger"] == "sync-issues-changed"
    assert aws_stack.messages_in(aws.JOBS) == 1

    assert driver.consume_once(aws_stack.settings, aws.JOBS, jobs_lambda.handler) == (1, 0)
    with sessions() as session:
        assert session.get_one(Job, job_id).state == JobState.DONE
        comments = session.scalars(select(Comment).where(Comment.order_id == order_id)).all()
        assert [c.text for c in comments] == ["Fragile: glass inside."]
        replayed = session.get_one(DeadLetter, letter.id)
        assert replayed.replayed_at is not None and replayed.replayed_by_id is not None
        audit = session.scalar(
            select(AuditEvent).where(
                AuditEvent.kind == "dead_letter.replayed",
                AuditEvent.actor_user_id == replayed.replayed_by_id,
            )
        )
        assert audit is not None and audit.params["subject_id"] == job_id
    assert aws_stack.messages_in(aws.JOBS) == 0

    html = manager.get(PAGE).get_data(as_text=True)
    assert letter.id not in _dead_letter_rows(html)
    again = _send_post(manager, f"/sync/issues/dead-letters/{letter.id}/replay")
    assert again.status_code == 409
    assert "already sent back" in again.get_data(as_text=True)


def test_a_message_that_is_not_ours_is_shown_refused_replay_and_dismissed(
    aws_stack: Stack, aws_app: Flask, sessions: sessionmaker[Session]
) -> None:
    manager = _logged_in(aws_app, sessions, Role.MANAGER)
    body = f"hello from somewhere else {uuid.uuid4().hex}"
    aws_stack.sqs().send_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MessageBody=body,
        MessageGroupId="stray",
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    _until_dead_lettered(aws_stack, aws.INTAKE, intake_lambda.handler)
    assert _maintenance()["dead_letters"] == 1
    assert _maintenance()["dead_letters"] == 0  # drained once
    letter = _open_letter(sessions, body)
    assert "not JSON" in letter.error

    html = manager.get(PAGE).get_data(as_text=True)
    row = _dead_letter_rows(html)[letter.id]
    assert "Not one of Comptoir’s messages" in row and "Deliveries from the shops" in row
    assert "Replay" not in row and "Dismiss" in row

    refused = _send_post(manager, f"/sync/issues/dead-letters/{letter.id}/replay")
    assert refused.status_code == 409
    assert "not one of Comptoir’s" in refused.get_data(as_text=True)
    assert aws_stack.messages_in(aws.INTAKE) == 0

    dismissed = _send_post(manager, f"/sync/issues/dead-letters/{letter.id}/dismiss")
    assert dismissed.status_code == 200 and "Set aside." in dismissed.get_data(as_text=True)
    html = manager.get(PAGE).get_data(as_text=True)
    assert letter.id not in _dead_letter_rows(html)
    with sessions() as session:
        kinds = session.scalars(
            select(AuditEvent.kind).where(AuditEvent.kind.like("dead_letter.%"))
        ).all()
        assert "dead_letter.dismissed" in kinds


def test_replaying_a_parked_delivery_puts_it_back_in_its_order_group(
    aws_stack: Stack, aws_app: Flask, sessions: sessionmaker[Session]
) -> None:
    manager = _logged_in(aws_app, sessions, Role.ADMIN)
    with sessions.begin() as session:
        shop = make_shop(session, f"dl-{uuid.uuid4().hex[:8]}")
        event = InboxEvent(
            shop=shop,
            topic="orders/updated",
            dedupe_key=uuid.uuid4().hex,
            external_order_id="7001",
            raw_body=b'{"id": 7001}',
            headers={},
            state=InboxState.PARKED,
            attempts=8,
            error="KeyError: 'line_items'",
        )
        session.add(event)
        session.flush()
        event_id, shop_id = event.id, shop.id
    # What the intake function's queue sets aside after its last receive.
    body = queue.Work(aws.INTAKE, event_id).body()
    aws_stack.sqs().send_message(
        QueueUrl=aws.dead_letter_url(aws_stack.settings, aws.INTAKE),
        MessageBody=body,
        MessageGroupId=f"{shop_id}:7001",
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    assert _maintenance()["dead_letters"] == 1
    letter = _open_letter(sessions, body)
    row = _dead_letter_rows(manager.get(PAGE).get_data(as_text=True))[letter.id]
    assert f'href="/sync/events/{event_id}"' in row and "orders/updated" in row
    assert "now: Parked" in row

    answer = _send_post(manager, f"/sync/issues/dead-letters/{letter.id}/replay")
    assert answer.status_code == 200
    with sessions() as session:
        replayed = session.get_one(InboxEvent, event_id)
        assert (replayed.state, replayed.attempts) == (InboxState.PENDING, 0)
    sent = aws_stack.sqs().receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
    )["Messages"]
    assert [queue.Work.parse(m["Body"], aws.INTAKE).id for m in sent] == [event_id]
    assert sent[0]["Attributes"]["MessageGroupId"] == f"{shop_id}:7001"
    with sessions.begin() as session:  # the module's database is shared: leave nothing due
        session.get_one(InboxEvent, event_id).state = InboxState.IGNORED


def test_the_warehouse_cannot_replay_a_dead_letter(
    aws_stack: Stack, aws_app: Flask, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        letter = DeadLetter(
            queue=aws.JOBS,
            message_id=uuid.uuid4().hex,
            body=queue.Work(aws.JOBS, 999_999).body(),
            receive_count=2,
        )
        session.add(letter)
        session.flush()
        letter_id = letter.id
    warehouse = aws_app.test_client()
    log_in(warehouse, _user(sessions, Role.WAREHOUSE).email)
    token = csrf_token(warehouse, "/orders/")
    for action in ("replay", "dismiss"):
        answer = warehouse.post(
            f"/sync/issues/dead-letters/{letter_id}/{action}", data={"csrf_token": token}
        )
        assert answer.status_code == 403
    with sessions() as session:
        unchanged = session.get_one(DeadLetter, letter_id)
        assert unchanged.replayed_at is None and unchanged.dismissed_at is None
    # A manager sees it; its job is gone, so Replay says so and nothing is sent.
    manager = _logged_in(aws_app, sessions, Role.MANAGER)
    row = _dead_letter_rows(manager.get(PAGE).get_data(as_text=True))[letter_id]
    assert "no longer exists" in row
    refused = _send_post(manager, f"/sync/issues/dead-letters/{letter_id}/replay")
    assert refused.status_code == 409 and "no longer exists" in refused.get_data(as_text=True)
    assert aws_stack.messages_in(aws.JOBS) == 0
    _send_post(manager, f"/sync/issues/dead-letters/{letter_id}/dismiss")


def test_maintenance_announces_forgotten_work_and_requeues_cut_off_jobs(
    aws_stack: Stack, aws_app: Flask, sessions: sessionmaker[Session]
) -> None:
    long_ago = utcnow() - dt.timedelta(minutes=30)
    with sessions.begin() as session:
        shop = make_shop(session, f"dl-{uuid.uuid4().hex[:8]}")
        waiting = InboxEvent(
            shop=shop,
            topic="orders/create",
            dedupe_key=uuid.uuid4().hex,
            external_order_id="8001",
            raw_body=b"{}",
            headers={},
            received_at=long_ago,
        )
        fresh = InboxEvent(
            shop=shop,
            topic="orders/create",
            dedupe_key=uuid.uuid4().hex,
            external_order_id="8002",
            raw_body=b"{}",
            headers={},
        )
        cut_off = Job(
            kind=bulk.COMMENT_JOB,
            payload={},
            state=JobState.RUNNING,
            started_at=long_ago,
            attempts=1,
        )
        session.add_all([waiting, fresh, cut_off])
        session.flush()
        waiting_id, shop_id, job_id = waiting.id, shop.id, cut_off.id

    counts = _maintenance()
    assert counts["jobs_requeued"] == 1 and counts["events_announced"] == 1
    intake_messages = aws_stack.sqs().receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
    )["Messages"]
    assert [queue.Work.parse(m["Body"], aws.INTAKE).id for m in intake_messages] == [waiting_id]
    assert intake_messages[0]["Attributes"]["MessageGroupId"] == f"{shop_id}:8001"
    job_messages = aws_stack.sqs().receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.JOBS),
        MaxNumberOfMessages=10,
        WaitTimeSeconds=1,
    )["Messages"]
    assert [queue.Work.parse(m["Body"], aws.JOBS).id for m in job_messages] == [job_id]
    with sessions() as session:
        assert session.get_one(Job, job_id).state == JobState.QUEUED
    with sessions.begin() as session:  # the module's database is shared: leave nothing due
        for event in session.scalars(select(InboxEvent).where(InboxEvent.shop_id == shop_id)):
            event.state = InboxState.IGNORED
        session.get_one(Job, job_id).state = JobState.DONE
