"""The render function on a moto server: invoices issued in bulk land on S3 once, locked, with
the hash kept in their rows; a bundle of documents lands under downloads/ and its download
redirects there.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from sync_lambdas import driver, render
from tests.aws.aws_app import aws_app, new_user, sessions_of
from tests.aws.conftest import Stack
from tests.conftest import csrf_token, log_in
from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from tests.views.test_bulk import PARTIAL, post
from web import aws, queue
from web.documents.storage import KeyExists, S3Storage
from web.models import Document, Job
from web.models.enums import DocumentKind, JobState
from web.models.orders import Order


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
        complete_company(session)
        shop = make_shop(session, f"render-{uuid.uuid4().hex[:8]}")
        orders = [
            make_order(session, shop, [make_line(f"SKU-{n}", n, "9.90")])
            for n in range(1, count + 1)
        ]
        session.flush()
        session.expunge_all()
    return orders


def _invoices(app: Flask, orders: list[Order]) -> list[Document]:
    with sessions_of(app)() as session:
        documents = list(
            session.scalars(
                select(Document)
                .where(
                    Document.order_id.in_([order.id for order in orders]),
                    Document.kind == DocumentKind.INVOICE,
                )
                .order_by(Document.id)
            )
        )
        session.expunge_all()
    return documents


def _rows(documents: list[Document]) -> list[tuple[int, str | None, str | None]]:
    return [(d.id, d.pdf_storage_key, d.pdf_sha256) for d in documents]


def _job(app: Flask, job_id: int) -> Job:
    with sessions_of(app)() as session:
        job = session.get_one(Job, job_id)
        session.expunge(job)
    return job


def _newest_job(app: Flask) -> int:
    with sessions_of(app)() as session:
        job_id = session.scalars(select(Job.id).order_by(Job.id.desc())).first()
    assert job_id is not None
    return job_id


def _objects(stack: Stack) -> list[str]:
    """Every version of every key in the bucket (a second write would add a version)."""
    answer = stack.s3().list_object_versions(Bucket=stack.settings.bucket)
    return sorted(f"{v['Key']}@{v['VersionId']}" for v in answer.get("Versions", []))


def _consume(stack: Stack) -> tuple[int, int]:
    return driver.consume_once(stack.settings, aws.RENDER, render.handler)


def _start_invoicing(app: Flask, client: FlaskClient, orders: list[Order]) -> int:
    response = post(client, {"op": "invoice", "ids": [str(order.id) for order in orders]})
    assert response.status_code == 200
    return _newest_job(app)


def test_invoices_rendered_by_the_render_function_land_on_s3_once_with_their_hash(
    app: Flask, aws_stack: Stack
) -> None:
    orders = _orders(app)
    client = app.test_client()
    log_in(client, new_user(app).email)
    job_id = _start_invoicing(app, client, orders)
    # Announced to the function that has Pango, not the jobs one; nothing rendered yet.
    assert aws_stack.messages_in(aws.RENDER) == 1
    assert aws_stack.messages_in(aws.JOBS) == 0
    assert _invoices(app, orders) == []

    assert _consume(aws_stack) == (1, 0)

    job = _job(app, job_id)
    assert job.state == JobState.DONE, job.error
    assert (job.result["done"], job.result["refused_count"]) == (2, 0)
    invoices = _invoices(app, orders)
    assert [invoice.order_id for invoice in invoices] == [order.id for order in orders]
    s3 = aws_stack.s3()
    bucket = aws_stack.settings.bucket
    for invoice in invoices:
        assert invoice.pdf_storage_key and invoice.pdf_sha256
        stored = s3.get_object(Bucket=bucket, Key=invoice.pdf_storage_key)
        data = stored["Body"].read()
        assert data.startswith(b"%PDF")
        assert hashlib.sha256(data).hexdigest() == invoice.pdf_sha256
        assert stored["ObjectLockMode"] == "COMPLIANCE"
    written = _objects(aws_stack)
    assert len(written) == 2

    # The same message again (at-least-once delivery, a sweep): acknowledged, nothing new.
    queue.announce_now([queue.Work(aws.RENDER, job_id)])
    assert _consume(aws_stack) == (1, 0)
    assert _rows(_invoices(app, orders)) == _rows(invoices)
    assert _objects(aws_stack) == written
    assert _job(app, job_id).attempts == 1

    # And nobody replaces an issued invoice's PDF: S3 refuses the second write of its key.
    with pytest.raises(KeyExists):
        S3Storage(aws_stack.settings).put(invoices[0].pdf_storage_key or "", b"%PDF-forged")
    assert _objects(aws_stack) == written

    html = client.get(f"/orders/bulk/jobs/{job_id}", headers=PARTIAL).get_data(as_text=True)
    assert 'data-state="done"' in html and 'data-done="2"' in html


def test_a_bundle_of_documents_made_by_the_render_function_downloads_from_s3(
    app: Flask, aws_stack: Stack, tmp_path: Path
) -> None:
    orders = _orders(app)
    client = app.test_client()
    log_in(client, new_user(app).email)
    _start_invoicing(app, client, orders)
    assert _consume(aws_stack) == (1, 0)
    invoices = _invoices(app, orders)
    assert len(invoices) == 2

    token = csrf_token(client, "/documents/")
    started = client.post(
        "/documents/download",
        data={"ids": [str(invoice.id) for invoice in invoices], "format": "zip"},
        headers={**PARTIAL, "X-CSRFToken": token},
    )
    assert started.status_code == 200
    job_id = _newest_job(app)
    assert aws_stack.messages_in(aws.RENDER) == 1
    assert _consume(aws_stack) == (1, 0)
    job = _job(app, job_id)
    assert job.state == JobState.DONE, job.error
    assert not list(tmp_path.rglob("documents-download-*"))  # on S3, not in a folder

    status = client.get(f"/documents/download/{job_id}", headers=PARTIAL).get_data(as_text=True)
    assert f'href="/documents/download/{job_id}/file"' in status
    download = client.get(f"/documents/download/{job_id}/file")
    assert download.status_code == 302
    fetched = httpx.get(download.headers["Location"])
    assert fetched.status_code == 200
    assert fetched.headers["Content-Type"] == "application/zip"
    assert fetched.headers["Content-Disposition"].startswith('attachment; filename="documents-')
    s3 = aws_stack.s3()
    with zipfile.ZipFile(io.BytesIO(fetched.content)) as archive:
        assert sorted(archive.namelist()) == sorted(f"{i.reference}.pdf" for i in invoices)
        for invoice in invoices:
            stored = s3.get_object(Bucket=aws_stack.settings.bucket, Key=invoice.pdf_storage_key)
            assert archive.read(f"{invoice.reference}.pdf") == stored["Body"].read()
    head = s3.head_object(Bucket=aws_stack.settings.bucket, Key=f"downloads/{job.result['file']}")
    assert "ObjectLockMode" not in head  # expires with the lifecycle rule, unlike documents
