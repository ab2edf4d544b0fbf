"""An issued document cannot be changed from the outside: no route, no service, no ORM write.

The database's own refusal of raw SQL is tested in test_invoices.py; here each other path a
user, an API client or a careless service would take, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.documents.conftest import complete_company, relay_order
from web.documents import invoices
from web.documents.storage import LocalStorage, sha256
from web.models import Document, DocumentLine, User
from web.models.enums import Role
from web.services.timeline import Actor
from web.services.users import create_api_token

REFUSED = "issued documents cannot be changed"


@pytest.fixture()
def invoice(db_session: Session, storage: LocalStorage) -> Document:
    complete_company(db_session)
    document = invoices.issue_invoice(
        db_session, relay_order(db_session), Actor.system("test"), storage=storage
    )
    db_session.commit()
    return document


def unchanged(session: Session, document: Document, storage: LocalStorage) -> bool:
    session.expire_all()
    kept = session.get_one(Document, document.id)
    lines = session.scalars(select(DocumentLine).where(DocumentLine.document_id == kept.id))
    stored = storage.get(kept.pdf_storage_key or "")
    return (
        kept.total_gross == Decimal("49.00")
        and len(lines.all()) == len(document.snapshot["lines"] if document.snapshot else [])
        and sha256(stored) == kept.pdf_sha256
    )


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_no_route_of_the_ui_or_the_api_changes_or_deletes_a_document(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    storage: LocalStorage,
    invoice: Document,
    method: str,
) -> None:
    admin = login_as(Role.ADMIN)
    token = create_api_token(db_session, admin, "immutability")
    db_session.commit()
    web = {"X-CSRFToken": csrf_token(client, "/documents/")}
    api = {"Authorization": f"Bearer {token}"}
    body = {"total_gross": "0.00", "reference": "FA-HACKED"}
    attempts = [
        (f"/documents/{invoice.id}", web),
        (f"/documents/{invoice.id}/pdf", web),
        (f"/documents/{invoice.id}/edit", web),
        (f"/api/v1/documents/{invoice.id}", api),
        (f"/api/v1/documents/{invoice.id}/pdf", api),
    ]
    for path, headers in attempts:
        response = client.open(path, method=method, json=body, headers=headers)
        assert response.status_code in (404, 405), (method, path, response.status_code)
    assert unchanged(db_session, invoice, storage)


def test_changing_an_issued_document_through_the_orm_is_refused(
    db_session: Session, storage: LocalStorage, invoice: Document
) -> None:
    for change in (
        lambda document: setattr(document, "total_gross", Decimal("0.00")),
        lambda document: setattr(document, "buyer_name", "Quelqu'un d'autre"),
        lambda document: setattr(document.lines[0], "quantity", Decimal("99")),
        lambda document: db_session.delete(document.lines[0]),
        lambda document: db_session.delete(document),
    ):
        savepoint = db_session.begin_nested()
        change(db_session.get_one(Document, invoice.id))
        with pytest.raises(IntegrityError, match=REFUSED):
            db_session.flush()
        savepoint.rollback()
    assert unchanged(db_session, invoice, storage)


def test_re_downloading_returns_the_stored_bytes_whose_hash_matches(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    storage: LocalStorage,
    invoice: Document,
) -> None:
    login_as(Role.VIEWER)
    first = client.get(f"/documents/{invoice.id}/pdf")
    again = client.get(f"/documents/{invoice.id}/pdf")
    assert first.status_code == again.status_code == 200
    assert first.data == again.data == storage.get(invoice.pdf_storage_key or "")
    assert sha256(again.data) == invoice.pdf_sha256
