"""Delivery notes from the order page and the API: issue, download, who may."""

from __future__ import annotations

import io
from collections.abc import Callable

import pypdf
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_from, log_in
from tests.documents.conftest import pdf_text, relay_order, ship
from web import queue
from web.models import Document, Job, User
from web.models.enums import JobState, Role, ShipmentState
from web.services import users


def client_as(app: Flask, make_user: Callable[..., User], role: Role) -> FlaskClient:
    client = app.test_client()
    log_in(client, make_user(role).email)
    return client


def issue_from_the_order_page(client: FlaskClient, order_id: int, shipment_id: int) -> str:
    page = client.get(f"/orders/{order_id}").get_data(as_text=True)
    action = f"/documents/shipments/{shipment_id}/delivery-note"
    assert f'action="{action}"' in page
    response = client.post(
        action, data={"csrf_token": csrf_from(page), "language": "fr", "with_prices": "on"}
    )
    assert response.status_code == 303
    return response.headers["Location"]


def test_a_manager_issues_the_note_and_downloads_it_from_the_order_page(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 2}, ("6A1000",))
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)

    location = issue_from_the_order_page(manager, order.id, shipment.id)

    assert location.endswith(f"/orders/{order.id}#documents-title")
    note = db_session.scalars(select(Document).where(Document.shipment_id == shipment.id)).one()
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f'href="/documents/{note.id}/pdf"' in page
    assert note.reference in page and "Bon de livraison" in page  # the timeline's event
    assert f"/documents/shipments/{shipment.id}/delivery-note" not in page  # issued: no button
    download = manager.get(f"/documents/{note.id}/pdf")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert f'filename="{note.reference}.pdf"' in download.headers["Content-Disposition"]
    text = pdf_text(download.data)
    assert note.reference in text and "6A1000" in text and "24,00" in text  # prices asked


def test_issuing_twice_keeps_one_note(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1})
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    token = csrf_from(manager.get(f"/orders/{order.id}").get_data(as_text=True))
    for _ in range(2):
        manager.post(
            f"/documents/shipments/{shipment.id}/delivery-note", data={"csrf_token": token}
        )
    notes = db_session.scalars(select(Document).where(Document.order_id == order.id)).all()
    assert len(notes) == 1


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE, Role.ADMIN])
def test_every_role_downloads_the_stored_pdf(
    app: Flask, db_session: Session, make_user: Callable[..., User], role: Role
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1})
    db_session.commit()
    issue_from_the_order_page(client_as(app, make_user, Role.MANAGER), order.id, shipment.id)
    note = db_session.scalars(select(Document).where(Document.shipment_id == shipment.id)).one()
    reader = client_as(app, make_user, role)

    response = reader.get(f"/documents/{note.id}/pdf")

    assert response.status_code == 200
    assert response.data.startswith(b"%PDF")
    assert response.headers["Cache-Control"] == "no-store"
    assert reader.get(f"/documents/{note.id + 1000}/pdf").status_code == 404


def test_a_viewer_cannot_issue_and_a_cancelled_shipment_gets_nothing(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    order = relay_order(db_session)
    cancelled = ship(db_session, order, {"MUG-BLEU": 1}, state=ShipmentState.CANCELLED)
    shipment = ship(db_session, order, {"MUG-BLEU": 1})
    db_session.commit()
    viewer = client_as(app, make_user, Role.VIEWER)
    page = viewer.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "/delivery-note" not in page  # no button for a viewer
    token = csrf_from(page)

    refused = viewer.post(
        f"/documents/shipments/{shipment.id}/delivery-note", data={"csrf_token": token}
    )
    assert refused.status_code == 403

    manager = client_as(app, make_user, Role.MANAGER)
    token = csrf_from(manager.get(f"/orders/{order.id}").get_data(as_text=True))
    manager.post(f"/documents/shipments/{cancelled.id}/delivery-note", data={"csrf_token": token})
    assert db_session.scalars(select(Document)).all() == []


def test_logged_out_visitors_are_sent_to_the_login(client: FlaskClient) -> None:
    response = client.get("/documents/1/pdf")
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_the_api_returns_the_stored_bytes_to_a_token(
    app: Flask, db_session: Session, make_user: Callable[..., User], client: FlaskClient
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1}, ("6A2000",))
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    issue_from_the_order_page(manager, order.id, shipment.id)
    note = db_session.scalars(select(Document).where(Document.shipment_id == shipment.id)).one()
    viewer_token = users.create_api_token(db_session, make_user(Role.VIEWER), "tests")
    warehouse_token = users.create_api_token(db_session, make_user(Role.WAREHOUSE), "tests")
    db_session.commit()
    url = f"/api/v1/documents/{note.id}/pdf"

    answer = client.get(url, headers={"Authorization": f"Bearer {viewer_token}"})

    assert answer.status_code == 200 and answer.mimetype == "application/pdf"
    assert answer.data == manager.get(f"/documents/{note.id}/pdf").data
    assert "6A2000" in pdf_text(answer.data)
    assert client.get(url).status_code == 401
    assert client.get(url, headers={"Authorization": "Bearer cpt_wrong"}).status_code == 401
    forbidden = client.get(url, headers={"Authorization": f"Bearer {warehouse_token}"})
    assert forbidden.status_code == 403  # the API's readers are the desk roles
    missing = client.get(
        f"/api/v1/documents/{note.id + 1000}/pdf",
        headers={"Authorization": f"Bearer {viewer_token}"},
    )
    assert missing.status_code == 404 and missing.is_json


def test_the_delivery_notes_of_many_orders_print_as_one_pdf(
    app: Flask,
    db_session: Session,
    make_user: Callable[..., User],
    session_factory: sessionmaker[Session],
) -> None:
    first, second, without = (
        relay_order(db_session),
        relay_order(db_session),
        relay_order(db_session),
    )
    shipments = [
        ship(db_session, first, {"MUG-BLEU": 1}, ("6A3001",)),
        ship(db_session, first, {"MUG-BLEU": 2}, ("6A3002",)),
        ship(db_session, second, {"THE-VERT": 2}, ("6A3003",)),
    ]
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    for shipment in shipments:
        issue_from_the_order_page(manager, shipment.order_id, shipment.id)
    viewer = client_as(app, make_user, Role.VIEWER)
    page = viewer.get("/orders/").get_data(as_text=True)
    assert 'name="op" value="print_delivery_notes"' in page
    selected = [str(order.id) for order in (second, without, first)]

    started = viewer.post(
        "/orders/bulk",
        data={"op": "print_delivery_notes", "ids": selected},
        headers={"HX-Request": "true", "X-CSRFToken": csrf_from(page)},
    )
    assert started.status_code == 200
    assert queue.run_pending(session_factory) == 1

    db_session.expire_all()
    job = db_session.scalars(select(Job).where(Job.kind == "orders.export")).one()
    assert (job.state, job.progress, job.total) == (JobState.DONE, 3, 3)
    status = viewer.get(f"/orders/bulk/jobs/{job.id}").get_data(as_text=True)
    assert "Imprimer les bons de livraison" in status
    assert without.number in status and "aucun bon de livraison émis" in status
    download = viewer.get(f"/orders/bulk/jobs/{job.id}/download")
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    reader = pypdf.PdfReader(io.BytesIO(download.data))
    notes = db_session.scalars(select(Document).order_by(Document.id)).all()
    # The orders in the order chosen, each order's notes in the order issued.
    expected = [notes[2], notes[0], notes[1]]
    assert len(reader.pages) == 3
    for page_of_pdf, note in zip(reader.pages, expected, strict=True):
        assert note.reference in page_of_pdf.extract_text()
