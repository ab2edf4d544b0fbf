"""Who downloads which document, and what a damaged stored file gives (not a bare 500)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.conftest import log_in
from tests.documents.conftest import complete_company, relay_order, ship
from web.documents import delivery_notes, invoices, storage
from web.models import Document, User
from web.models.enums import CommercialState, Role
from web.services import users
from web.services.errors import InvalidTransition
from web.services.timeline import Actor

ACTOR = Actor.system("test")


def _documents(db_session: Session) -> tuple[Document, Document]:
    complete_company(db_session)
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 3, "THE-VERT": 2})
    note = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR)
    invoice = invoices.issue_invoice(db_session, order, ACTOR)
    db_session.commit()
    return invoice, note


def test_the_warehouse_downloads_delivery_notes_but_not_invoices(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    invoice, note = _documents(db_session)
    warehouse = app.test_client()
    log_in(warehouse, make_user(Role.WAREHOUSE).email)
    assert warehouse.get(f"/documents/{note.id}/pdf").status_code == 200
    assert warehouse.get(f"/documents/{invoice.id}/pdf").status_code == 403
    viewer = app.test_client()
    log_in(viewer, make_user(Role.VIEWER).email)
    assert viewer.get(f"/documents/{invoice.id}/pdf").status_code == 200


def test_a_damaged_stored_file_is_said_on_the_page_and_in_the_api(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    invoice, _note = _documents(db_session)
    kept = storage.configured()
    assert isinstance(kept, storage.LocalStorage)
    path = Path(kept.root) / (invoice.pdf_storage_key or "")
    path.write_bytes(path.read_bytes() + b"%altered")
    manager = app.test_client()
    log_in(manager, make_user(Role.MANAGER).email)
    page = manager.get(f"/documents/{invoice.id}/pdf")
    assert page.status_code == 500
    assert "flask documents verify" in page.get_data(as_text=True)
    assert page.mimetype == "text/html"
    token = users.create_api_token(db_session, make_user(Role.MANAGER), "tests")
    db_session.commit()
    answer = app.test_client().get(
        f"/api/v1/documents/{invoice.id}/pdf", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 500
    assert invoice.reference in answer.get_json()["error"]


def test_a_cancelled_order_is_not_invoiced(db_session: Session) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.commercial_state = CommercialState.CANCELLED
    with pytest.raises(InvalidTransition, match="cancelled"):
        invoices.issue_invoice(db_session, order, ACTOR)
