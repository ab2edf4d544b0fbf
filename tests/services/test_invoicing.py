"""Invoices issued on their own, per the shop's policy, by the worker: the whole path."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from web import queue
from web.documents import storage as document_storage
from web.documents.storage import LocalStorage, sha256
from web.models import Document, Job, OrderEvent
from web.models.enums import (
    CommercialState,
    DocumentKind,
    IssuePolicy,
    JobState,
    LineKind,
    PaymentState,
)
from web.models.orders import Order
from web.services import invoicing, payments, shipments, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

ACTOR = Actor.system("test")


@pytest.fixture()
def stored(tmp_path: Path) -> Iterator[LocalStorage]:
    """The storage the worker's jobs write to (create_app configures it in the app; the
    storage from before is set back after the test, tests/conftest.py)."""
    storage = LocalStorage(tmp_path / "documents")
    document_storage.configure(storage)
    yield storage


def _order(session: Session, policy: IssuePolicy, **overrides: object) -> Order:
    """A validated order of two shipped products and a gift card that never ships, 5 € shipping."""
    modes = ensure_default_shipping_modes(session)
    shop = make_shop(session, invoice_policy=policy)
    lines = [
        make_line("MUG", 3, "12.00", name="Mug"),
        make_line(
            "THE",
            2,
            "5.50",
            name="Thé",
            tax_rate=Decimal("5.5"),
            total_net=Decimal("10.43"),
            tax_amount=Decimal("0.57"),
        ),
        make_line("CARTE", 1, "20.00", name="Carte", needs_shipping=False, kind=LineKind.PRODUCT),
    ]
    values: dict[str, object] = {
        "commercial_state": CommercialState.VALIDATED,
        "payment_state": PaymentState.PAID,
        "shipping_mode": modes["mondial_relay"],
        "shipping_label": "Mondial Relay",
        "shipping_total": Decimal("6.00"),
        "shipping_tax": Decimal("1.00"),
        "billing_address": {
            "first_name": "Ana",
            "last_name": "Lima",
            "postcode": "75011",
            "city": "Paris",
            "country_code": "FR",
            "line1": "3 rue Oberkampf",
        },
        "shipping_address": {"first_name": "Ana", "postcode": "75011", "city": "Paris"},
        "grand_total": Decimal("36.00") + Decimal("11.00") + Decimal("20.00") + Decimal("6.00"),
    }
    values.update(overrides)
    return make_order(session, shop, lines, **values)


def _run(session: Session, sessions: sessionmaker[Session]) -> list[Job]:
    """Commit, let the worker run every due job, and read the invoicing jobs back."""
    session.commit()
    queue.run_pending(sessions)
    session.expire_all()
    return list(session.scalars(select(Job).where(Job.kind == invoicing.INVOICE_JOB)))


def _invoices(session: Session, order: Order) -> list[Document]:
    query = select(Document).where(
        Document.order_id == order.id, Document.kind == DocumentKind.INVOICE
    )
    return list(session.scalars(query.order_by(Document.number)))


def _events(session: Session, order: Order, kind: str) -> list[OrderEvent]:
    query = select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.kind == kind)
    return list(session.scalars(query.order_by(OrderEvent.id)))


def test_an_order_paid_by_hand_is_invoiced_whole_by_the_worker(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_PAYMENT, payment_state=PaymentState.UNPAID)
    payments.record_manual(
        db_session, order, ACTOR, kind="payment", source="bank_transfer", amount="73.00"
    )
    assert order.payment_state == PaymentState.PAID
    assert _invoices(db_session, order) == []  # not in the payment's transaction

    jobs = _run(db_session, session_factory)

    assert [job.state for job in jobs] == [JobState.DONE]
    [invoice] = _invoices(db_session, order)
    assert jobs[0].result == {"reference": invoice.reference}
    assert invoice.total_gross == order.grand_total == Decimal("73.00")
    assert invoice.snapshot["shop_check"]["difference"] == "0.00"
    assert sha256(stored.get(invoice.pdf_storage_key or "")) == invoice.pdf_sha256
    assert len(_events(db_session, order, "invoice.issued")) == 1


def test_the_same_job_twice_issues_one_invoice(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_PAYMENT)
    payload = {"order_id": order.id}
    queue.enqueue(db_session, invoicing.INVOICE_JOB, payload)
    queue.enqueue(db_session, invoicing.INVOICE_JOB, payload)  # a retry, a double delivery
    jobs = _run(db_session, session_factory)
    assert [job.state for job in jobs] == [JobState.DONE, JobState.DONE]
    [invoice] = _invoices(db_session, order)
    assert jobs[0].result == jobs[1].result == {"reference": invoice.reference}
    assert _events(db_session, order, "invoice.refused") == []


def test_an_order_invoiced_by_hand_before_it_is_paid_gets_a_refusal_not_a_second_invoice(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    from web.documents import invoices

    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_PAYMENT, payment_state=PaymentState.UNPAID)
    invoices.issue_invoice(db_session, order, ACTOR, storage=stored)
    payments.record_manual(
        db_session, order, ACTOR, kind="payment", source="bank_transfer", amount="73.00"
    )
    [job] = _run(db_session, session_factory)

    assert job.state == JobState.DONE
    assert job.result == {"refused": invoicing.NOTHING_LEFT}
    assert len(_invoices(db_session, order)) == 1
    [refused] = _events(db_session, order, "invoice.refused")
    assert refused.details == {"reason": "nothing is left to invoice", "via": "invoicing"}


def test_a_manual_policy_queues_nothing(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session)
    order = _order(db_session, IssuePolicy.MANUAL, payment_state=PaymentState.UNPAID)
    payments.record_manual(
        db_session, order, ACTOR, kind="payment", source="bank_transfer", amount="73.00"
    )
    modes = ensure_default_shipping_modes(db_session)
    shipments.create_shipment(
        db_session, order, ACTOR, shipping_mode=modes["mondial_relay"], ship=True
    )
    assert _run(db_session, session_factory) == []
    assert _invoices(db_session, order) == []


def test_each_shipment_is_invoiced_when_it_leaves(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_SHIPMENT)
    mug, tea, card = order.lines
    first = shipments.create_shipment(db_session, order, ACTOR, {mug.id: 2, tea.id: 2})
    assert _run(db_session, session_factory) == []  # a draft has not left
    shipments.ship_shipment(db_session, first, ACTOR)
    [job] = _run(db_session, session_factory)
    assert job.state == JobState.DONE and job.payload["shipment_id"] == first.id

    [invoice] = _invoices(db_session, order)
    quantities = {
        line.order_line_id: line.quantity for line in invoice.lines if line.kind == "product"
    }
    # The shipment's lines, the card that never ships, and the shipping fee.
    assert quantities == {mug.id: 2, tea.id: 2, card.id: 1}
    assert [line.kind for line in invoice.lines].count("shipping") == 1
    assert invoice.snapshot["shop_check"] is None  # one mug remains

    shipments.create_shipment(db_session, order, ACTOR, ship=True)
    _run(db_session, session_factory)
    first_invoice, second_invoice = _invoices(db_session, order)
    assert [(line.order_line_id, line.quantity) for line in second_invoice.lines] == [(mug.id, 1)]
    assert second_invoice.snapshot["shop_check"]["difference"] == "0.00"
    assert first_invoice.total_gross + second_invoice.total_gross == order.grand_total


def test_a_shipment_already_invoiced_by_hand_is_a_refusal_on_the_timeline(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    from web.documents import invoices

    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_SHIPMENT)
    invoices.issue_invoice(db_session, order, ACTOR, storage=stored)  # everything, by hand
    shipments.create_shipment(db_session, order, ACTOR, ship=True)
    [job] = _run(db_session, session_factory)

    assert job.state == JobState.DONE
    assert job.result == {"refused": invoicing.NOTHING_SHIPPED}
    assert len(_invoices(db_session, order)) == 1
    [refused] = _events(db_session, order, "invoice.refused")
    assert refused.details["reason"] == invoicing.NOTHING_SHIPPED
    assert refused.details["shipment_id"] == job.payload["shipment_id"]


def test_a_shipment_job_run_twice_answers_with_its_invoice_not_a_refusal(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_SHIPMENT)
    shipment = shipments.create_shipment(db_session, order, ACTOR, ship=True)
    payload = {"order_id": order.id, "shipment_id": shipment.id}
    queue.enqueue(db_session, invoicing.INVOICE_JOB, payload)  # a retry, a double delivery
    jobs = _run(db_session, session_factory)

    assert [job.state for job in jobs] == [JobState.DONE, JobState.DONE]
    [invoice] = _invoices(db_session, order)
    assert jobs[0].result == jobs[1].result == {"reference": invoice.reference}
    assert _events(db_session, order, "invoice.refused") == []


def test_incomplete_company_settings_are_a_refusal_naming_the_fields(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    complete_company(db_session, siren="", vat_number="")
    order = _order(db_session, IssuePolicy.ON_PAYMENT)
    invoicing.queue_when_paid(db_session, order)
    [job] = _run(db_session, session_factory)

    assert job.state == JobState.DONE
    assert _invoices(db_session, order) == []
    [refused] = _events(db_session, order, "invoice.refused")
    assert refused.details["reason"] == invoicing.INCOMPLETE
    assert refused.details["fields"] == ["siren", "vat_number"]
    assert list(stored.root.rglob("*.pdf")) == []


def test_an_order_paid_at_intake_is_invoiced_by_the_worker(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    """Through the connector's parsing and intake: a paid WooCommerce order arrives."""
    from tests.documents.test_invoice_totals import intake_fixture

    complete_company(db_session)
    shop = shops.create_shop(db_session, "woocommerce", "Boutique", "https://shop.example")
    shop.invoice_policy = IssuePolicy.ON_PAYMENT
    order = intake_fixture(db_session, shop, "woocommerce", "fr-order-variation-virtual.json")
    assert order.payment_state == PaymentState.PAID
    assert _invoices(db_session, order) == []  # not in intake's transaction
    [job] = _run(db_session, session_factory)
    assert job.state == JobState.DONE
    [invoice] = _invoices(db_session, order)
    assert invoice.total_gross == order.grand_total


def test_a_shipment_made_in_the_shop_is_invoiced_when_it_arrives(
    db_session: Session, session_factory: sessionmaker[Session], stored: LocalStorage
) -> None:
    from web.connectors.base import ShopShipment

    complete_company(db_session)
    order = _order(db_session, IssuePolicy.ON_SHIPMENT)
    incoming = ShopShipment("fulfillment-1")  # no lines: everything that remained to ship
    assert shipments.record_shop_shipments(db_session, order, [incoming], ACTOR) == 1
    [job] = _run(db_session, session_factory)

    assert job.state == JobState.DONE
    [invoice] = _invoices(db_session, order)
    assert invoice.total_gross == order.grand_total
    assert invoice.snapshot["shop_check"]["difference"] == "0.00"
