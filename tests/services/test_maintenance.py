"""The maintenance pass: on SQS (the session's moto server, over HTTP) it drains the
dead-letter queues, queues again the jobs whose worker stopped and announces due work nobody
was told of; in the local mode it only empties old payloads (tests/services/
test_inbox_retention.py: the command)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_event, make_shop
from web import aws, jobs, queue
from web.models import DeadLetter, Job, utcnow
from web.models.enums import InboxState, JobState
from web.services import bulk, maintenance


@pytest.fixture()
def settings(moto_endpoint: str) -> Iterator[aws.AwsSettings]:
    """Comptoir's queues and their dead-letter queues, on the session's moto server."""
    settings = aws.AwsSettings(prefix=f"m{uuid.uuid4().hex[:8]}", endpoint_url=moto_endpoint)
    sqs = aws.client("sqs", settings)
    for name in aws.QUEUES:
        attributes = {"FifoQueue": "true"} if name in aws.FIFO_QUEUES else {}
        sqs.create_queue(QueueName=aws.queue_name(settings.prefix, name), Attributes=attributes)
        sqs.create_queue(
            QueueName=aws.dead_letter_name(settings.prefix, name), Attributes=attributes
        )
    yield settings


def _received(settings: aws.AwsSettings, name: str) -> list[tuple[str, str]]:
    """(body, message group) of what waits in one of the queues."""
    answer = aws.client("sqs", settings).receive_message(
        QueueUrl=aws.queue_url(settings, name),
        MaxNumberOfMessages=10,
        MessageSystemAttributeNames=["All"],
    )
    return sorted(
        (m["Body"], m.get("Attributes", {}).get("MessageGroupId", ""))
        for m in answer.get("Messages", [])
    )


def _job(session: Session, state: JobState, **values: object) -> Job:
    job = Job(kind="orders.bulk_comment", payload={}, state=state, **values)
    session.add(job)
    session.flush()
    return job


def test_on_sqs_the_pass_drains_requeues_and_announces_what_waited(
    settings: aws.AwsSettings, session_factory: sessionmaker[Session], db_session: Session
) -> None:
    queue.configure(queue.SqsBackend(settings))
    shop = make_shop(db_session, "lyon")
    waiting = make_event(db_session, shop, state=InboxState.PENDING, external_order_id="1001")
    fresh = make_event(db_session, shop, state=InboxState.PENDING, external_order_id="1002")
    fresh.received_at = utcnow()
    applied = make_event(db_session, shop)
    applied.processed_at = applied.received_at = utcnow() - dt.timedelta(days=100)
    long_ago = utcnow() - dt.timedelta(hours=2)
    forgotten = _job(db_session, JobState.QUEUED, created_at=long_ago, run_after=long_ago)
    _job(db_session, JobState.QUEUED)  # just queued: its own announce is on its way
    stopped = _job(
        db_session, JobState.RUNNING, created_at=long_ago, started_at=long_ago, attempts=1
    )
    db_session.commit()
    sqs = aws.client("sqs", settings)
    sqs.send_message(
        QueueUrl=aws.dead_letter_url(settings, aws.JOBS),
        MessageBody=queue.Work(aws.JOBS, forgotten.id).body(),
    )
    config = {
        "QUEUE": "SQS",
        "AWS_PREFIX": settings.prefix,
        "AWS_REGION": settings.region,
        "AWS_ENDPOINT_URL": settings.endpoint_url,
        "INBOX_RETENTION_DAYS": "90",
    }

    report = maintenance.run(session_factory, config)

    assert report == maintenance.MaintenanceReport(
        dead_letters=1,
        jobs_requeued=1,
        events_announced=1,
        jobs_announced=2,
        payloads_purged=1,
        counts_compacted=0,
    )
    assert report.summary() == (
        "dead letters: 1, jobs requeued: 1, events announced: 1, jobs announced: 2, "
        "payloads purged: 1, counts compacted: 0"
    )
    assert report.as_dict()["jobs_announced"] == 2
    db_session.expire_all()
    assert db_session.query(DeadLetter).one().body == queue.Work(aws.JOBS, forgotten.id).body()
    assert stopped.state == JobState.QUEUED and bytes(applied.raw_body) == b""
    assert _received(settings, aws.INTAKE) == [
        (queue.Work(aws.INTAKE, waiting.id).body(), f"{shop.id}:1001")
    ]
    # The stopped job: once when queued again, once as due work that waited.
    assert _received(settings, aws.JOBS) == sorted(
        [
            (queue.Work(aws.JOBS, forgotten.id).body(), ""),
            (queue.Work(aws.JOBS, stopped.id).body(), ""),
            (queue.Work(aws.JOBS, stopped.id).body(), ""),
        ]
    )


def test_in_the_local_mode_the_pass_leaves_queues_and_running_jobs_alone(
    settings: aws.AwsSettings, session_factory: sessionmaker[Session], db_session: Session
) -> None:
    shop = make_shop(db_session, "lyon")
    make_event(db_session, shop, state=InboxState.PENDING, external_order_id="1001")
    long_ago = utcnow() - dt.timedelta(hours=2)
    stopped = _job(db_session, JobState.RUNNING, created_at=long_ago, started_at=long_ago)
    db_session.commit()
    sqs = aws.client("sqs", settings)
    sqs.send_message(QueueUrl=aws.dead_letter_url(settings, aws.JOBS), MessageBody="x")

    report = maintenance.run(
        session_factory, {"AWS_PREFIX": settings.prefix, "AWS_ENDPOINT_URL": settings.endpoint_url}
    )

    assert report == maintenance.MaintenanceReport()
    db_session.expire_all()
    assert stopped.state == JobState.RUNNING
    assert db_session.query(DeadLetter).count() == 0


def test_only_work_that_waited_longer_than_asked_is_announced_again(
    session_factory: sessionmaker[Session], db_session: Session
) -> None:
    shop = make_shop(db_session, "lyon")
    event = make_event(db_session, shop, state=InboxState.PENDING)
    event.received_at = utcnow() - dt.timedelta(minutes=10)
    job = _job(db_session, JobState.QUEUED, created_at=utcnow() - dt.timedelta(minutes=10))
    db_session.commit()

    assert maintenance.announce_unannounced(session_factory, dt.timedelta(minutes=20)) == (0, 0)
    assert maintenance.announce_unannounced(session_factory, dt.timedelta(minutes=5)) == (1, 1)
    assert maintenance.UNANNOUNCED_AFTER == dt.timedelta(minutes=1)
    assert job.state == JobState.QUEUED


def test_a_job_that_renders_pdfs_is_announced_to_the_render_queue(
    settings: aws.AwsSettings, session_factory: sessionmaker[Session], db_session: Session
) -> None:
    jobs.register_all()
    queue.configure(queue.SqsBackend(settings))
    long_ago = utcnow() - dt.timedelta(hours=2)
    delivery = Job(kind=bulk.DELIVER_JOB, payload={}, created_at=long_ago, run_after=long_ago)
    db_session.add(delivery)
    db_session.commit()

    assert maintenance.announce_unannounced(session_factory) == (0, 1)

    assert _received(settings, aws.RENDER) == [(queue.Work(aws.RENDER, delivery.id).body(), "")]
    assert _received(settings, aws.JOBS) == []


def test_one_pass_announces_at_most_500_jobs(
    session_factory: sessionmaker[Session], db_session: Session
) -> None:
    long_ago = utcnow() - dt.timedelta(hours=2)
    db_session.add_all(
        Job(kind="orders.bulk_comment", payload={}, created_at=long_ago, run_after=long_ago)
        for _ in range(501)
    )
    db_session.commit()

    assert maintenance.announce_unannounced(session_factory) == (0, 500)
