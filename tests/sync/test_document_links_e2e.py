"""Invoice links reach the buyer's account at each shop, once, and open the stored PDF.

For each platform, an order is imported from its loopback emulator through the real intake,
an invoice is issued with the real service on a shop that shows documents in the buyer's
account, and the dispatcher delivers the outbox message over HTTP. The emulator then holds
the customer-visible note; the link read from it is opened through the Flask test client,
not logged in, as the buyer would. Lost answers come from the emulator (the write lands,
the answer is a 500).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.documents.conftest import complete_company
from tests.emulators.base import Emulator
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web.documents import invoices, links
from web.documents.storage import sha256
from web.models import Document, OrderEvent, OutboxMessage, Shop, utcnow
from web.models.enums import OutboxState, Role
from web.models.orders import Order
from web.services import intake, outbox, shops
from web.services.timeline import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PERSON = Actor.system("test")
LINK = re.compile(r"http://comptoir\.test(/d/[A-Za-z0-9_.-]+)")
PRESTASHOP_RELATED = (
    "fr-customers.xml",
    "fr-addresses.xml",
    "fr-order_details.xml",
    "fr-order_payments.xml",
    "fr-order_slip.xml",
    "fr-order_cart_rules.xml",
    "fr-cart_rules.xml",
    "fr-messages.xml",
    "fr-order_histories.xml",
)


def fixture(platform: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / platform / name).read_text())
    return data


@dataclass
class Platform:
    """One shop emulator, the order it holds, and how to read what the buyer sees there."""

    emulator: Emulator
    shop: Shop
    external_id: str
    # The texts the buyer can read in their account, as the shop holds them.
    visible_notes: Callable[[], list[str]]
    # Where the comment is written (for a lost answer).
    write_method: str
    write_path: str


def _woocommerce(session: Session, stack: list[Emulator]) -> Platform:
    emulator = WooCommerceEmulator()
    stack.append(emulator.__enter__())
    shop = shops.create_shop(
        session,
        "woocommerce",
        "Thés & Fonte",
        emulator.base_url,
        api_key=emulator.consumer_key,
        api_secret=emulator.consumer_secret,
        webhook_secret=emulator.webhook_secret,
    )
    payload = copy.deepcopy(fixture("woocommerce", "fr-order-company-bundle.json"))
    payload["status"] = "processing"
    external_id = emulator.add_order(payload)

    def notes() -> list[str]:
        held = emulator.notes.get(external_id, [])
        return [str(n["note"]) for n in held if n["customer_note"] is True]

    return Platform(emulator, shop, external_id, notes, "POST", f"/orders/{external_id}/notes")


def _shopify(session: Session, stack: list[Emulator]) -> Platform:
    emulator = ShopifyEmulator()
    stack.append(emulator.__enter__())
    shop = shops.create_shop(
        session,
        "shopify",
        "Maison Lumière",
        emulator.base_url,
        api_key=emulator.access_token,
        webhook_secret="secret",
    )
    external_id = str(emulator.add_order(fixture("shopify", "order-fr-relay-point.json"))["id"])

    def notes() -> list[str]:
        # Shopify has no comment the buyer sees: the order note's lines are what it holds.
        return str(emulator.orders[external_id].get("note") or "").splitlines()

    return Platform(emulator, shop, external_id, notes, "PUT", f"/orders/{external_id}.json")


def _prestashop(session: Session, stack: list[Emulator]) -> Platform:
    emulator = PrestaShopEmulator()
    stack.append(emulator.__enter__())
    for name in PRESTASHOP_RELATED:
        emulator.load((FIXTURES / "prestashop" / name).read_bytes())
    external_id = emulator.add_order((FIXTURES / "prestashop" / "fr-order-101.xml").read_bytes())
    shop = shops.create_shop(
        session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
    )

    def notes() -> list[str]:
        threads = {
            int(t["id"])
            for t in emulator.objects("customer_threads")
            if str(t["id_order"]) == external_id
        }
        return [
            str(m["message"])
            for m in emulator.objects("customer_messages")
            if int(m["id_customer_thread"]) in threads and str(m["private"]) == "0"
        ]

    return Platform(emulator, shop, external_id, notes, "POST", "/api/customer_messages")


def _magento(session: Session, stack: list[Emulator]) -> Platform:
    emulator = MagentoEmulator()
    stack.append(emulator.__enter__())
    stored = emulator.add_order(fixture("magento", "fr-order-company-bundle.json"))
    external_id = str(stored["entity_id"])
    shop = shops.create_shop(
        session, "magento", "Papeterie", emulator.base_url, api_key=emulator.token
    )

    def notes() -> list[str]:
        histories = emulator.orders[int(external_id)].get("status_histories") or []
        return [str(h["comment"]) for h in histories if int(h["is_visible_on_front"]) == 1]

    return Platform(
        emulator, shop, external_id, notes, "POST", f"/V1/orders/{external_id}/comments"
    )


PLATFORMS = {
    "woocommerce": _woocommerce,
    "shopify": _shopify,
    "prestashop": _prestashop,
    "magento": _magento,
}


@pytest.fixture(params=sorted(PLATFORMS))
def platform(request: pytest.FixtureRequest, db_session: Session) -> Iterator[Platform]:
    stack: list[Emulator] = []
    try:
        built = PLATFORMS[request.param](db_session, stack)
        built.shop.show_documents_in_account = True
        db_session.commit()
        yield built
    finally:
        for emulator in stack:
            emulator.__exit__(None, None, None)


def import_order(session: Session, platform: Platform) -> Order:
    """Bring the shop's order in through the real intake."""
    incoming = shops.connector_for(platform.shop).fetch_order(platform.external_id)
    outcome = intake.upsert_order(session, platform.shop, incoming, Actor.shop("shop"))
    assert outcome.order is not None
    session.commit()
    platform.emulator.requests.clear()
    return outcome.order


def issue(session: Session, order: Order) -> Document:
    complete_company(session)
    document = invoices.issue_invoice(session, order, PERSON)
    session.commit()
    return document


def messages(session: Session, order: Order) -> list[OutboxMessage]:
    session.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.order_id == order.id)
    return list(session.scalars(query.order_by(OutboxMessage.id)))


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


def opens_the_pdf(client: FlaskClient, note: str, document: Document) -> None:
    match = LINK.search(note)
    assert match, note
    response = client.get(match[1])
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert sha256(response.get_data()) == document.pdf_sha256


def test_an_issued_invoice_reaches_the_buyers_account_and_its_link_opens_the_pdf(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    platform: Platform,
) -> None:
    order = import_order(db_session, platform)
    document = issue(db_session, order)
    [message] = messages(db_session, order)
    assert message.kind == outbox.DOCUMENT and message.state == OutboxState.PENDING
    assert message.payload == {"document_id": document.id, "reference": document.reference}

    assert outbox.dispatch_due(session_factory) == 1

    [note] = [n for n in platform.visible_notes() if str(document.reference) in n]
    # Shopify's note line starts "Comptoir [d<id>]: ", the others hold the words alone.
    assert f"Votre facture {document.reference} : http://comptoir.test/d/" in note
    opens_the_pdf(client, note, document)
    [message] = messages(db_session, order)
    assert message.state == OutboxState.SENT
    assert outbox.dispatch_due(session_factory, now=later(10**5)) == 0
    # The order page names the message.
    sent = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "outbox.sent"
        )
    ).one()
    assert sent["document"] == document.reference and sent["written"] is True


def test_a_retry_after_a_lost_answer_does_not_write_the_link_twice(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    platform: Platform,
) -> None:
    order = import_order(db_session, platform)
    document = issue(db_session, order)
    # The shop writes the note, but its answer is lost.
    platform.emulator.fail_next(
        500, path_contains=platform.write_path, method=platform.write_method, after=True
    )

    outbox.dispatch_due(session_factory)
    [message] = messages(db_session, order)
    assert message.state == OutboxState.FAILED
    assert len([n for n in platform.visible_notes() if str(document.reference) in n]) == 1

    assert outbox.dispatch_due(session_factory, now=later(3600)) == 1
    [message] = messages(db_session, order)
    assert message.state == OutboxState.SENT and message.attempts == 2
    [note] = [n for n in platform.visible_notes() if str(document.reference) in n]
    opens_the_pdf(client, note, document)
    writes = platform.emulator.requests_to(platform.write_method, platform.write_path)
    assert len(writes) == 1


def test_nothing_is_sent_when_the_shop_does_not_show_documents(
    app: Flask,
    db_session: Session,
    session_factory: sessionmaker[Session],
    platform: Platform,
) -> None:
    platform.shop.show_documents_in_account = False
    db_session.commit()
    order = import_order(db_session, platform)
    document = issue(db_session, order)
    assert messages(db_session, order) == []
    assert outbox.dispatch_due(session_factory, now=later(10**5)) == 0
    assert platform.emulator.writes() == []
    assert not [n for n in platform.visible_notes() if str(document.reference) in n]


def test_a_setting_turned_off_before_delivery_ignores_the_message_with_its_reason(
    app: Flask,
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    platform: Platform,
) -> None:
    order = import_order(db_session, platform)
    issue(db_session, order)
    platform.shop.show_documents_in_account = False
    db_session.commit()

    outbox.dispatch_due(session_factory)

    [message] = messages(db_session, order)
    assert message.state == OutboxState.IGNORED
    assert message.last_error == "Documents are not shown in the buyer's account for this shop."
    assert platform.emulator.writes() == []


def test_the_sync_issues_page_and_the_order_page_name_a_refused_link(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., Any],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stack: list[Emulator] = []
    try:
        woo = _woocommerce(db_session, stack)
        woo.shop.show_documents_in_account = True
        db_session.commit()
        order = import_order(db_session, woo)
        document = issue(db_session, order)
        woo.emulator.fail_next(400, path_contains=woo.write_path, method="POST")
        outbox.dispatch_due(session_factory)
    finally:
        for emulator in stack:
            emulator.__exit__(None, None, None)
    [message] = messages(db_session, order)
    assert message.state == OutboxState.DEAD
    login_as(Role.MANAGER)
    name = f"Lien du document {document.reference}"
    issues = client.get("/sync/issues/").get_data(as_text=True)
    assert name in issues
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    pushes = page[page.index('id="pushes-title"') :]
    assert name in pushes[: pushes.index("</section>")]
    # The timeline tells the story in the same words.
    assert f"{name} mis en file pour Thés &amp; Fonte." in page


def test_a_dispatcher_without_the_key_that_signs_links_says_so_and_retries_later(
    app: Flask,
    db_session: Session,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stack: list[Emulator] = []
    try:
        woo = _woocommerce(db_session, stack)
        woo.shop.show_documents_in_account = True
        db_session.commit()
        order = import_order(db_session, woo)
        issue(db_session, order)
        # A dispatcher started without create_app: no key to sign the link with.
        monkeypatch.setattr(links, "_secret_key", None)
        with caplog.at_level(logging.ERROR, logger="web.services.outbox"):
            outbox.dispatch_due(session_factory)
        assert woo.emulator.writes() == []
    finally:
        for emulator in stack:
            emulator.__exit__(None, None, None)
    [message] = messages(db_session, order)
    assert message.state == OutboxState.FAILED and message.next_attempt_at is not None
    assert message.last_error == "ValueError: no link could be made to the document of this message"
    # The outbox's own records: a live app left by an earlier test may log its polls too.
    logged = [r.getMessage() for r in caplog.records if r.name == "web.services.outbox"]
    assert logged == [
        f"outbox message {message.id}: no key to sign document links",
        f"outbox message {message.id} failed unexpectedly",
    ]
