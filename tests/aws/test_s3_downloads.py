"""Documents on S3 (APP_STORAGE=s3, a moto server): issued into the bucket, downloaded through
presigned URLs after the same checks as with the local folder, verified object by object."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.aws.conftest import Stack
from tests.conftest import csrf_from, log_in
from tests.documents.conftest import complete_company, relay_order, ship
from web import aws
from web.documents import invoices, issued, links
from web.documents.storage import S3Storage, sha256
from web.models import Document, User
from web.models.enums import Role
from web.services import users
from web.services.timeline import Actor

ACTOR = Actor.system("test")


@pytest.fixture()
def app_overrides(app_overrides: dict[str, Any], aws_stack: Stack) -> dict[str, Any]:
    """The test app in the AWS mode: documents in this test's bucket."""
    return {**app_overrides, **aws_stack.app_settings}


def client_as(app: Flask, make_user: Callable[..., User], role: Role) -> FlaskClient:
    client = app.test_client()
    log_in(client, make_user(role).email)
    return client


def issue_note(app: Flask, db_session: Session, make_user: Callable[..., User]) -> Document:
    """A delivery note issued from the order page by a manager, as a user does."""
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 2}, ("6A3000",))
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    response = manager.post(
        f"/documents/shipments/{shipment.id}/delivery-note",
        data={"csrf_token": csrf_from(page), "language": "fr"},
    )
    assert response.status_code == 303
    return db_session.scalars(select(Document).where(Document.shipment_id == shipment.id)).one()


def fetched(response: Any, stack: Stack) -> httpx.Response:
    """Follow the app's redirect to S3 as a browser does: a plain GET of the presigned URL."""
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{stack.settings.endpoint_url}/{stack.settings.bucket}/")
    assert "X-Amz-Signature=" in location
    answer = httpx.get(location)
    assert answer.status_code == 200
    return answer


def test_an_issued_note_is_in_the_bucket_and_downloads_through_a_presigned_url(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    note = issue_note(app, db_session, make_user)

    head = aws_stack.s3().head_object(Bucket=aws_stack.settings.bucket, Key=note.pdf_storage_key)
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert not list((Path(app.instance_path)).rglob("*.pdf"))  # nothing on the disk
    warehouse = client_as(app, make_user, Role.WAREHOUSE)
    download = warehouse.get(f"/documents/{note.id}/pdf")

    assert download.headers["Cache-Control"] == "private, no-store"
    answer = fetched(download, aws_stack)
    assert sha256(answer.content) == note.pdf_sha256
    assert answer.headers["Content-Disposition"] == f'attachment; filename="{note.reference}.pdf"'
    assert answer.headers["Content-Type"] == "application/pdf"
    # The order page links to the same route.
    viewer = client_as(app, make_user, Role.VIEWER)
    page = viewer.get(f"/orders/{note.order_id}").get_data(as_text=True)
    assert f'href="/documents/{note.id}/pdf"' in page


def test_the_checks_come_before_any_url(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    complete_company(db_session)
    invoice = invoices.issue_invoice(db_session, relay_order(db_session), ACTOR)
    db_session.commit()
    warehouse = client_as(app, make_user, Role.WAREHOUSE)
    assert warehouse.get(f"/documents/{invoice.id}/pdf").status_code == 403
    assert warehouse.get(f"/documents/{invoice.id + 1000}/pdf").status_code == 404
    logged_out = app.test_client().get(f"/documents/{invoice.id}/pdf")
    assert logged_out.status_code in (302, 303) and "/login" in logged_out.headers["Location"]
    viewer = client_as(app, make_user, Role.VIEWER)
    assert sha256(fetched(viewer.get(f"/documents/{invoice.id}/pdf"), aws_stack).content) == (
        invoice.pdf_sha256
    )


def test_the_api_answers_a_token_with_a_presigned_url(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    note = issue_note(app, db_session, make_user)
    viewer_token = users.create_api_token(db_session, make_user(Role.VIEWER), "tests")
    db_session.commit()
    client = app.test_client()
    url = f"/api/v1/documents/{note.id}/pdf"

    answer = client.get(url, headers={"Authorization": f"Bearer {viewer_token}"})

    assert sha256(fetched(answer, aws_stack).content) == note.pdf_sha256
    assert "no-store" in answer.headers["Cache-Control"]
    assert client.get(url).status_code == 401


def test_the_buyers_link_redirects_to_the_document_shown_inline(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    note = issue_note(app, db_session, make_user)
    link = links.document_link(note).removeprefix("http://comptoir.test")

    response = app.test_client().get(link)

    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"  # the token stays ours
    assert "Set-Cookie" not in response.headers
    answer = fetched(response, aws_stack)
    assert sha256(answer.content) == note.pdf_sha256
    assert answer.headers["Content-Disposition"] == f'inline; filename="{note.reference}.pdf"'


def test_a_deleted_or_overwritten_object_is_a_damaged_document_not_a_url(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    deleted, overwritten = (issue_note(app, db_session, make_user) for _ in range(2))
    s3, bucket = aws_stack.s3(), aws_stack.settings.bucket
    # A delete without a version id is allowed under Object Lock: a delete marker on top.
    s3.delete_object(Bucket=bucket, Key=deleted.pdf_storage_key)
    # A plain put (no If-None-Match) by someone with write access: a new version on top.
    s3.put_object(
        Bucket=bucket,
        Key=overwritten.pdf_storage_key,
        Body=b"%PDF-1.7 forged",
        ChecksumAlgorithm="SHA256",
    )
    manager = client_as(app, make_user, Role.MANAGER)
    unknown = app.test_client().get("/d/no-such-link")

    for note in (deleted, overwritten):
        page = manager.get(f"/documents/{note.id}/pdf")
        assert page.status_code == 500
        assert "flask documents verify" in page.get_data(as_text=True)
        link = links.document_link(note).removeprefix("http://comptoir.test")
        public = app.test_client().get(link)
        assert public.status_code == 404 and public.get_data() == unknown.get_data()


def test_delivery_notes_print_as_one_pdf_from_the_bucket(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    first = issue_note(app, db_session, make_user)
    second = issue_note(app, db_session, make_user)

    combined = issued.combined_pdf(db_session, [first.id, second.id])

    pages = pypdf.PdfReader(io.BytesIO(combined)).pages
    text = "".join(page.extract_text() for page in pages)
    assert str(first.reference) in text and str(second.reference) in text


def test_verify_reads_each_object_and_names_what_is_wrong(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    good, deleted, forged = (issue_note(app, db_session, make_user) for _ in range(3))
    s3, bucket = aws_stack.s3(), aws_stack.settings.bucket
    s3.delete_object(Bucket=bucket, Key=deleted.pdf_storage_key)
    s3.put_object(Bucket=bucket, Key=forged.pdf_storage_key, Body=b"%PDF-1.7 forged")

    result = app.test_cli_runner().invoke(args=["documents", "verify"])

    assert result.exit_code == 1
    assert f"{deleted.reference} ({deleted.pdf_storage_key}): its PDF is missing" in result.output
    assert f"{forged.reference} ({forged.pdf_storage_key}): its PDF does not match" in (
        result.output
    )
    assert str(good.reference) not in result.output
    assert "2 of 3 issued documents damaged or missing" in result.output


def test_verify_reports_a_bucket_it_cannot_read_document_by_document(
    app: Flask, db_session: Session, make_user: Callable[..., User], aws_stack: Stack
) -> None:
    notes = [issue_note(app, db_session, make_user) for _ in range(2)]
    elsewhere = aws.AwsSettings(endpoint_url=aws_stack.settings.endpoint_url, bucket="no-such")

    report = issued.verify_all(db_session, S3Storage(elsewhere))

    assert report.checked == 2
    assert [(damage.reference, damage.problem) for damage in report.damaged] == [
        (note.reference, "unreadable") for note in notes
    ]
    assert all("NoSuchBucket" in damage.detail for damage in report.damaged)
