"""Issue invoices from the order list: a job with progress, the refused orders with why."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from tests.views.test_bulk import PARTIAL, ids, job_count, post
from web import queue
from web.documents import invoices
from web.models import Document, Job, User
from web.models.enums import DocumentKind, JobState, Role
from web.models.orders import Order
from web.services.timeline import Actor


def _orders(session: Session) -> list[Order]:
    shop = make_shop(session, "factures")
    return [make_order(session, shop, [make_line(f"SKU-{n}", n, "9.90")]) for n in (1, 2, 3)]


def _invoice_count(session: Session, order: Order) -> int:
    query = select(func.count(Document.id)).where(
        Document.order_id == order.id, Document.kind == DocumentKind.INVOICE
    )
    return session.scalar(query) or 0


def test_a_manager_invoices_the_selected_orders_and_sees_the_ones_refused(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    complete_company(db_session)
    first, invoiced, third = _orders(db_session)
    invoices.issue_invoice(db_session, invoiced, Actor.system("test"))  # nothing left on it
    db_session.commit()
    manager = login_as(Role.MANAGER)
    listing = client.get("/orders/").get_data(as_text=True)
    assert 'name="op" value="invoice"' in listing and "Émettre les factures" in listing

    response = post(client, {"op": "invoice", "ids": ids(first, invoiced, third)})

    assert response.status_code == 200
    job = db_session.scalars(select(Job)).one()
    assert (job.kind, job.created_by_id) == ("orders.bulk_invoice", manager.id)
    assert "every 1s" in response.get_data(as_text=True)  # polls until done
    assert queue.run_pending(session_factory) == 1
    html = client.get(f"/orders/bulk/jobs/{job.id}", headers=PARTIAL).get_data(as_text=True)
    assert 'data-state="done"' in html and "Émettre les factures" in html
    assert 'data-done="2"' in html and 'data-refused="1"' in html
    assert f'<a href="/orders/{invoiced.id}">{invoiced.number}</a>: il ne reste rien' in html
    db_session.expire_all()
    assert job.progress == job.total == 3
    assert [_invoice_count(db_session, order) for order in (first, invoiced, third)] == [1, 1, 1]


def test_incomplete_company_settings_refuse_every_order_saying_so(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    complete_company(db_session, iban="", siret="")
    orders = _orders(db_session)
    db_session.commit()
    login_as(Role.ADMIN)
    post(client, {"op": "invoice", "ids": ids(*orders)}, htmx=False)
    job = db_session.scalars(select(Job)).one()
    queue.run_pending(session_factory)

    html = client.get(f"/orders/bulk/jobs/{job.id}").get_data(as_text=True)
    assert 'data-refused="3"' in html
    assert html.count("les paramètres de l’entreprise sont incomplets") == 3
    db_session.expire_all()
    assert db_session.get_one(Job, job.id).state == JobState.DONE
    assert sum(_invoice_count(db_session, order) for order in orders) == 0


@pytest.mark.parametrize("role", [Role.VIEWER])
def test_a_viewer_cannot_issue_invoices(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, role: Role
) -> None:
    complete_company(db_session)
    orders = _orders(db_session)
    db_session.commit()
    login_as(role)
    assert 'value="invoice"' not in client.get("/orders/").get_data(as_text=True)
    assert post(client, {"op": "invoice", "ids": ids(*orders)}).status_code == 403
    assert job_count(db_session) == 0
