"""Invoices from the order page: issue all or part, who may, refusals that say why."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_from, log_in
from tests.documents.conftest import complete_company, pdf_text, relay_order
from web.models import Document, Order, User
from web.models.enums import DocumentKind, Role


def client_as(app: Flask, make_user: Callable[..., User], role: Role) -> FlaskClient:
    client = app.test_client()
    log_in(client, make_user(role).email)
    return client


def invoices_of(session: Session, order: Order) -> list[Document]:
    session.expire_all()
    query = select(Document).where(
        Document.order_id == order.id, Document.kind == DocumentKind.INVOICE
    )
    return list(session.scalars(query.order_by(Document.number)))


def action(order: Order) -> str:
    return f"/documents/orders/{order.id}/invoices"


def test_a_manager_issues_the_whole_invoice_and_downloads_it(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f'action="{action(order)}"' in page and "Émettre la facture" in page

    response = manager.post(
        action(order), data={"csrf_token": csrf_from(page), "scope": "all", "language": "en"}
    )

    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/orders/{order.id}#documents-title")
    [invoice] = invoices_of(db_session, order)
    assert invoice.total_gross == order.grand_total
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f'href="/documents/{invoice.id}/pdf"' in page and invoice.reference in page
    assert f'action="{action(order)}"' not in page  # nothing left: no button
    text = pdf_text(manager.get(f"/documents/{invoice.id}/pdf").data)
    assert invoice.reference in text and "Invoice" in text  # in the language asked


def test_part_of_the_order_then_the_rest(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    db_session.commit()
    mug, tea, card = order.lines
    manager = client_as(app, make_user, Role.ADMIN)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    # Prefilled with what remains.
    assert re.search(rf'name="quantity-{mug.id}"[^>]*max="3"[^>]*value="3"', page)

    data = {"csrf_token": csrf_from(page), "scope": "part", "language": "fr"}
    data |= {f"quantity-{mug.id}": "1", f"quantity-{tea.id}": "0", f"quantity-{card.id}": ""}
    assert manager.post(action(order), data=data).status_code == 303

    [first] = invoices_of(db_session, order)
    assert [(line.order_line_id, line.quantity) for line in first.lines] == [(mug.id, 1)]
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert re.search(rf'name="quantity-{mug.id}"[^>]*max="2"[^>]*value="2"', page)

    data = {"csrf_token": csrf_from(page), "scope": "all"}
    assert manager.post(action(order), data=data).status_code == 303
    first, rest = invoices_of(db_session, order)
    assert first.total_gross + rest.total_gross == order.grand_total


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("4", "More than remains to invoice."),
        ("1.5", "Type whole quantities"),
        ("-1", "Type whole quantities"),
        ("deux", "Type whole quantities"),
        ("0", "Type at least one quantity to invoice."),
    ],
)
def test_quantities_that_cannot_be_invoiced_are_refused_on_their_line(
    app: Flask, db_session: Session, make_user: Callable[..., User], typed: str, message: str
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    db_session.commit()
    mug = order.lines[0]
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    manager.post("/language", data={"lang": "en", "csrf_token": csrf_from(page)})  # English
    data = {"csrf_token": csrf_from(page), "scope": "part", f"quantity-{mug.id}": typed}
    data |= {f"quantity-{line.id}": "0" for line in order.lines[1:]}

    response = manager.post(action(order), data=data)

    assert response.status_code == 422
    body = response.get_data(as_text=True)
    assert message in body
    assert '<details class="invoice-part" open>' in body
    assert re.search(rf'name="quantity-{mug.id}"[^>]*value="{re.escape(typed)}"', body)  # kept
    assert response.headers["HX-Replace-Url"] == f"/orders/{order.id}"  # not the POST's URL
    assert invoices_of(db_session, order) == []


def test_incomplete_company_settings_are_refused_naming_the_fields_with_a_link(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    complete_company(db_session, siren="", legal_form="")
    order = relay_order(db_session)
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Il manque : SIREN et Forme juridique." in page  # said before anyone tries

    response = manager.post(action(order), data={"csrf_token": csrf_from(page), "scope": "all"})

    assert response.status_code == 409
    body = response.get_data(as_text=True)
    assert "Les paramètres de l’entreprise sont incomplets : SIREN et Forme juridique." in body
    assert 'href="/admin/company"' in body
    assert invoices_of(db_session, order) == []


def test_an_invoice_that_differs_from_the_shop_shows_the_difference(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.grand_total += Decimal("0.05")  # the shop says 49.05, its lines 49.00
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    manager.post(action(order), data={"csrf_token": csrf_from(page), "scope": "all"})

    page = manager.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'data-difference="-0.05"' in page
    assert "49,00" in page and "49,05" in page


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE])
def test_viewers_and_the_warehouse_cannot_issue(
    app: Flask, db_session: Session, make_user: Callable[..., User], role: Role
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    db_session.commit()
    reader = client_as(app, make_user, role)
    if role == Role.VIEWER:
        page = reader.get(f"/orders/{order.id}").get_data(as_text=True)
        assert action(order) not in page  # no button
    else:
        page = reader.get("/warehouse/").get_data(as_text=True)

    response = reader.post(action(order), data={"csrf_token": csrf_from(page), "scope": "all"})

    assert response.status_code == 403
    assert invoices_of(db_session, order) == []


def test_nothing_left_is_a_refusal_not_a_second_invoice(
    app: Flask, db_session: Session, make_user: Callable[..., User]
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    db_session.commit()
    manager = client_as(app, make_user, Role.MANAGER)
    token = csrf_from(manager.get(f"/orders/{order.id}").get_data(as_text=True))
    first = manager.post(action(order), data={"csrf_token": token, "scope": "all"})
    again = manager.post(action(order), data={"csrf_token": token, "scope": "all"})

    assert first.status_code == 303 and again.status_code == 409
    assert "il ne reste rien à facturer" in again.get_data(as_text=True)
    assert len(invoices_of(db_session, order)) == 1
