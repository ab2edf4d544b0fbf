"""The jobs function on a moto server: an export started on the web lands on S3 under
downloads/ and the download redirects there; a redelivered or stale job message does nothing;
a job that keeps failing is tried MAX_ATTEMPTS times through SQS, then shown failed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from sync_lambdas import driver, jobs
from tests.aws.aws_app import aws_app, new_user, sessions_of
from tests.aws.conftest import Stack
from tests.conftest import log_in
from tests.factories import make_line, make_order, make_shop
from tests.views.test_bulk import PARTIAL, post
from web import aws, queue
from web.models import Job
from web.models.enums import JobState
from web.models.orders import Order
from web.services import bulk


@pytest.fixture()
def app(
    aws_stack: Stack,
    parallel_database: str,
    encryption_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    with aws_app(aws_stack, parallel_database, encryption_key, tmp_path, monkeypatch) as app:
        yield app


def _orders(app: Flask, count: int = 2) -> list[Order]:
    with sessions_of(app).begin() as session:
        shop = make_shop(session, f"export-{uuid.uuid4().hex[:8]}")
        orders = [
            make_order(session, shop, [make_line(f"SKU-{n}", n)]) for n in range(1, count + 1)
        ]
        session.flush()
        session.expunge_all()
    return orders


def _job(app: Flask, job_id: int) -> Job:
    with sessions_of(app)() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
    return job


def _start_export(app: Flask, client: FlaskClient, orders: list[Order]) -> int:
    """Export the orders as CSV from the order list, as the manager does; the job's id."""
    response = post(client, {"op": "export_csv", "ids": [str(order.id) for order in orders]})
    assert response.status_code == 200
    with sessions_of(app)() as session:
        job_id = session.scalars(select(Job.id).order_by(Job.id.desc())).first()
    assert job_id is not None
    return job_id


def _consume(stack: Stack) -> tuple[int, int]:
    return driver.consume_once(stack.settings, aws.JOBS, jobs.handler)


def test_an_export_run_by_the_jobs_function_downloads_from_s3(
    app: Flask, aws_stack: Stack, tmp_path: Path
) -> None:
    orders = _orders(app)
    client = app.test_client()
    log_in(client, new_user(app).email)
    job_id = _start_export(app, client, orders)
    assert aws_stack.messages_in(aws.JOBS) == 1
    assert aws_stack.messages_in(aws.RENDER) == 0  # a CSV needs no Pango

    assert _consume(aws_stack) == (1, 0)

    job = _job(app, job_id)
    assert job.state == JobState.DONE, job.error
    key = f"downloads/{job.result['file']}"
    stored = aws_stack.s3().get_object(Bucket=aws_stack.settings.bucket, Key=key)
    csv = stored["Body"].read()
    assert stored["ContentType"] == "text/csv"
    assert "ObjectLockMode" not in stored  # a download, not an issued document: no retention
    assert csv.startswith(b"shop,number,")
    assert all(order.number.encode() in csv for order in orders)
    # Nothing was left in either function's folder: the web app could not have read it.
    assert not list(tmp_path.rglob("orders-*"))

    status = client.get(f"/orders/bulk/jobs/{job_id}", headers=PARTIAL).get_data(as_text=True)
    assert f'href="/orders/bulk/jobs/{job_id}/download"' in status
    download = client.get(f"/orders/bulk/jobs/{job_id}/download")
    assert download.status_code == 302
    url = download.headers["Location"]
    assert url.startswith(f"{aws_stack.settings.endpoint_url}/{aws_stack.settings.bucket}/{key}")
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=" in url
    fetched = httpx.get(url)
    assert fetched.status_code == 200
    assert fetched.content == csv
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="orders-')
    assert fetched.headers["Content-Type"] == "text/csv"

    # Past its day the file is no longer offered, whether or not the lifecycle rule ran yet.
    assert bulk.export_file(job, now=dt.datetime.now(dt.UTC) + dt.timedelta(hours=25)) is None

    # Another user is refused before any URL is made.
    other = app.test_client()
    log_in(other, new_user(app).email)
    assert other.get(f"/orders/bulk/jobs/{job_id}/download").status_code == 403


def test_a_redelivered_or_stale_job_message_is_acknowledged_and_runs_nothing(
    app: Flask, aws_stack: Stack
) -> None:
    orders = _orders(app, 1)
    client = app.test_client()
    log_in(client, new_user(app).email)
    job_id = _start_export(app, client, orders)
    # The same job announced again (a sweep, SQS's at-least-once) and a job that is gone.
    queue.announce_now([queue.Work(aws.JOBS, job_id), queue.Work(aws.JOBS, 10_000_000)])
    assert aws_stack.messages_in(aws.JOBS) == 3

    received = 0
    while received < 3:
        got, failed = _consume(aws_stack)
        assert failed == 0
        received += got

    job = _job(app, job_id)
    assert (job.state, job.attempts) == (JobState.DONE, 1)
    assert aws_stack.messages_in(aws.JOBS) == 0
    # Delivered once more after it is done: acknowledged, not run, nothing to the DLQ.
    queue.announce_now([queue.Work(aws.JOBS, job_id)])
    assert _consume(aws_stack) == (1, 0)
    assert _job(app, job_id).attempts == 1
    assert aws_stack.messages_in(aws.JOBS) == 0
    assert aws_stack.messages_in(aws.JOBS, dead_letters=True) == 0


def test_a_failing_job_is_tried_again_through_sqs_then_shown_failed(
    app: Flask, aws_stack: Stack, encryption_key: str, parallel_database: str
) -> None:
    orders = _orders(app, 1)
    client = app.test_client()
    log_in(client, new_user(app).email)
    job_id = _start_export(app, client, orders)
    # The jobs function is deployed with a bucket that does not exist: every upload fails.
    from sync_lambdas import runtime

    runtime.use(
        {
            **aws_stack.app_settings,
            "S3_BUCKET": f"{aws_stack.settings.bucket}-missing",
            "DATABASE_URL": parallel_database,
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEY": encryption_key,
            "ALLOW_PRIVATE_SHOP_URLS": True,
        }
    )

    for attempt in range(1, queue.MAX_ATTEMPTS + 1):
        # Each failure is acknowledged and the job announced again, by the seam.
        assert _consume(aws_stack) == (1, 0)
        job = _job(app, job_id)
        assert job.attempts == attempt
        assert "NoSuchBucket" in job.error
        if attempt < queue.MAX_ATTEMPTS:
            assert job.state == JobState.QUEUED
            assert aws_stack.messages_in(aws.JOBS) == 1
    assert job.state == JobState.FAILED
    assert aws_stack.messages_in(aws.JOBS) == 0
    assert aws_stack.messages_in(aws.JOBS, dead_letters=True) == 0

    html = client.get(f"/orders/bulk/jobs/{job_id}", headers=PARTIAL).get_data(as_text=True)
    assert 'data-state="failed"' in html and "NoSuchBucket" in html
    assert "/download" not in html
