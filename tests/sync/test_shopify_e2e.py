"""Shopify end to end: signed webhooks into /hooks, the worker's sync, polling the emulator."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.shopify import ShopifyEmulator
from web.models import CarrierMapping, InboxEvent, Order, Shop, SyncCursor, utcnow
from web.models.enums import InboxState, PaymentState
from web.services import shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import process_pending, run_sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"


def fixture(name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / name).read_text())
    return data.get("order", data)


@pytest.fixture()
def emulator() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: ShopifyEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "shopify",
        "Maison Lumière",
        emulator.base_url,
        api_key=emulator.access_token,
        webhook_secret=emulator.webhook_secret,
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais", shipping_mode=modes["mondial_relay"]
        )
    )
    db_session.commit()
    return shop


def post(client: FlaskClient, shop: Shop, body: bytes, headers: dict[str, str]):
    return client.post(f"/hooks/shopify/{shop.key}", data=body, headers=headers)


def inbox_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(InboxEvent)) or 0


def test_a_signed_order_webhook_becomes_an_order_on_the_desk(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    login_as,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/create", stored["id"])
    response = post(client, shop, body, headers)
    assert response.status_code == 200
    assert response.get_json() == {"status": "stored"}
    # The request itself did not talk to the shop.
    assert not emulator.requests

    report = run_sync(session_factory, shop.key)
    assert report.processed >= 1
    order = db_session.scalars(select(Order)).one()
    assert order.number == "#1042"
    assert order.grand_total == Decimal("84.82")
    assert [line.sku for line in order.lines] == ["LIV-CUIS-01", "TAB-LIN-BLE-M"]
    assert order.shipping_mode is not None and order.shipping_mode.code == "mondial_relay"
    assert order.payment_state == PaymentState.PAID  # transactions read from the shop
    assert emulator.requests_to("GET", "/transactions.json")

    login_as("manager")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "#1042" in page and "LIV-CUIS-01" in page


def test_the_same_delivery_ten_times_is_stored_once(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/paid", stored["id"], webhook_id="retry-me")
    answers = [post(client, shop, body, headers).get_json()["status"] for _ in range(10)]
    assert answers == ["stored"] + ["duplicate"] * 9
    run_sync(session_factory, shop.key)
    topics = db_session.scalars(select(InboxEvent.topic).order_by(InboxEvent.id)).all()
    # The delivery once, and once the follow-up that read its payments.
    assert topics == ["orders/paid", "fetch/transactions"]
    order = db_session.scalars(select(Order)).one()
    assert [(tx.kind.value, tx.amount) for tx in order.transactions] == [("sale", Decimal("84.82"))]
    assert len(emulator.requests_to("GET", "/transactions.json")) == 1


@pytest.mark.parametrize("outage", ["connection refused", "401", "429"])
def test_an_order_arrives_whole_while_the_shops_api_refuses_every_call(
    outage: str,
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    login_as,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/create", stored["id"])
    port = urlsplit(emulator.base_url).port or 0
    if outage == "connection refused":
        emulator.stop()
    else:
        emulator.fail_next(*[int(outage)] * 100, retry_after="1")
    assert post(client, shop, body, headers).get_json() == {"status": "stored"}
    process_pending(session_factory)  # the delivery
    process_pending(session_factory)  # its follow-up, which the shop refuses

    order = db_session.scalars(select(Order)).one()
    assert order.number == "#1042" and order.grand_total == Decimal("84.82")
    assert [line.sku for line in order.lines] == ["LIV-CUIS-01", "TAB-LIN-BLE-M"]
    assert order.customer is not None and order.email
    # Paid, as the order body says, and marked as awaiting the shop's transactions.
    assert order.payment_state == PaymentState.PAID
    assert order.payment_details_pending
    follow_up = db_session.scalars(
        select(InboxEvent).where(InboxEvent.topic == "fetch/transactions")
    ).one()
    assert follow_up.state == InboxState.FAILED and follow_up.error
    login_as("manager")
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="payment-details-pending"' in page and "en attente du détail" in page
    sync_log = client.get("/sync/?topic=fetch/transactions").get_data(as_text=True)
    assert "Paiements lus auprès de la boutique après réception" in sync_log

    # The API comes back; the follow-up's retry time arrives.
    if outage == "connection refused":
        emulator.start(port)
    else:
        emulator.clear_faults()
    follow_up.next_attempt_at = utcnow()
    db_session.commit()
    process_pending(session_factory)
    # A late duplicate of the delivery changes nothing.
    post(client, shop, body, {**headers, "X-Shopify-Webhook-Id": "late-copy"})
    process_pending(session_factory)

    db_session.expire_all()
    order = db_session.scalars(select(Order)).one()
    assert not order.payment_details_pending
    assert order.payment_state == PaymentState.PAID
    assert [(tx.kind.value, tx.amount) for tx in order.transactions] == [("sale", Decimal("84.82"))]
    assert not order.transactions[0].external_id.startswith("body:")
    assert len(emulator.requests_to("GET", "/transactions.json")) >= 1
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert 'id="payment-details-pending"' not in page


def test_an_unpaid_order_needs_no_follow_up(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = emulator.add_order(fixture("order-fr-company-bundle.json"))  # pending
    post(client, shop, *emulator.webhook("orders/create", stored["id"]))
    process_pending(session_factory)
    order = db_session.scalars(select(Order)).one()
    assert order.payment_state == PaymentState.UNPAID and not order.payment_details_pending
    assert db_session.scalars(select(InboxEvent.topic)).all() == ["orders/create"]
    assert not emulator.requests


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda body, headers: (body + b" ", headers), 401),  # tampered body
        (
            lambda body, headers: (
                body,
                {k: v for k, v in headers.items() if k != "X-Shopify-Hmac-Sha256"},
            ),
            401,
        ),
        (lambda body, headers: (body, {**headers, "X-Shopify-Hmac-Sha256": "AAAA"}), 401),
    ],
    ids=["tampered", "missing-signature", "wrong-signature"],
)
def test_bad_signatures_are_refused_and_nothing_is_stored(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    mutate,
    status: int,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = mutate(*emulator.webhook("orders/create", stored["id"]))
    response = post(client, shop, body, headers)
    assert response.status_code == status
    assert "signature" in response.get_json()["error"]
    assert inbox_count(db_session) == 0


def test_a_body_signed_with_another_shops_secret_is_refused(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/create", stored["id"], secret="another-shop")
    assert post(client, shop, body, headers).status_code == 401


def test_unknown_shop_wrong_platform_and_oversized_bodies(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/create", stored["id"])
    assert client.post("/hooks/shopify/nope", data=body, headers=headers).status_code == 404
    assert (
        client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers).status_code == 404
    )
    huge = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    assert post(client, shop, huge, headers).status_code == 413
    assert inbox_count(db_session) == 0


def test_shopify_test_notifications_are_acknowledged_not_imported(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    body, headers = emulator.webhook("orders/create", stored["id"])
    response = post(client, shop, body, {**headers, "X-Shopify-Test": "true"})
    assert response.status_code == 200 and response.get_json()["status"] == "ping"
    assert inbox_count(db_session) == 0


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(max_size=2048) | st.text(max_size=512).map(str.encode))
def test_hostile_signed_bodies_never_cause_a_500(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    body: bytes,
) -> None:
    import base64
    import hashlib
    import hmac

    signature = base64.b64encode(
        hmac.new(emulator.webhook_secret.encode(), body, hashlib.sha256).digest()
    ).decode()
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Hmac-Sha256": signature,
        "X-Shopify-Webhook-Id": hashlib.sha1(body).hexdigest(),
        "Content-Type": "application/json",
    }
    response = post(client, shop, body, headers)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 400:
        event = db_session.scalars(
            select(InboxEvent).where(InboxEvent.state == InboxState.REJECTED)
        ).first()
        assert event is not None and event.error
    run_sync(session_factory, shop.key)
    # Whatever was stored is either processed into an order or parked with a reason.
    for event in db_session.scalars(select(InboxEvent)):
        db_session.refresh(event)
        assert event.state in (
            InboxState.PROCESSED,
            InboxState.PARKED,
            InboxState.REJECTED,
            InboxState.FAILED,
        )


def test_a_refund_webhook_reads_the_refund_and_records_it(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    sale = {
        "id": 1,
        "kind": "sale",
        "status": "success",
        "amount": "84.82",
        "currency": "EUR",
        "gateway": "shopify_payments",
        "created_at": stored["created_at"],
    }
    emulator.set_transactions(stored["id"], [sale])
    post(client, shop, *emulator.webhook("orders/create", stored["id"]))
    run_sync(session_factory, shop.key)
    emulator.update_order(stored["id"], financial_status="partially_refunded")
    emulator.set_transactions(
        stored["id"],
        [
            sale,
            {
                "id": 2,
                "kind": "refund",
                "status": "success",
                "amount": "10.00",
                "currency": "EUR",
                "gateway": "shopify_payments",
                "created_at": stored["created_at"],
            },
        ],
    )
    # The synthetic refund body carries no transaction: how much is read from the shop.
    response = post(client, shop, *emulator.webhook("refunds/create", stored["id"]))
    assert response.status_code == 200
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    db_session.refresh(order)
    assert order.payment_state == PaymentState.PARTIALLY_REFUNDED
    assert sorted((tx.kind.value, tx.amount) for tx in order.transactions) == [
        ("refund", Decimal("10.00")),
        ("sale", Decimal("84.82")),
    ]
    assert not order.payment_details_pending


def refund_body(order_id: int, amount: str, transaction_id: int = 77) -> dict[str, Any]:
    """A refunds/create body as Shopify sends it, with the refund's transaction."""
    return {
        "id": 900 + transaction_id,
        "order_id": order_id,
        "created_at": "2025-03-03T10:00:00+01:00",
        "note": "Article abîmé",
        "restock": False,
        "refund_line_items": [],
        "order_adjustments": [],
        "transactions": [
            {
                "id": transaction_id,
                "order_id": order_id,
                "kind": "refund",
                "status": "success",
                "amount": amount,
                "currency": "EUR",
                "gateway": "shopify_payments",
                "created_at": "2025-03-03T10:00:00+01:00",
                "processed_at": "2025-03-03T10:00:00+01:00",
            }
        ],
    }


def signed(emulator: ShopifyEmulator, topic: str, data: dict[str, Any]) -> tuple[bytes, dict]:
    """Sign a body of our own the way the emulator signs its webhooks."""
    body = json.dumps(data).encode()
    _, headers = emulator.webhook("orders/create", data.get("order_id") or data["id"])
    key = emulator.webhook_secret.encode()
    headers["X-Shopify-Hmac-Sha256"] = base64.b64encode(
        hmac.new(key, body, hashlib.sha256).digest()
    ).decode()
    headers["X-Shopify-Topic"] = topic
    return body, headers


def test_a_refund_carrying_its_transaction_is_recorded_without_asking_the_shop(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    post(client, shop, *emulator.webhook("orders/create", stored["id"]))
    run_sync(session_factory, shop.key)
    reads = len(emulator.requests_to("GET", "/transactions.json"))
    post(client, shop, *signed(emulator, "refunds/create", refund_body(stored["id"], "12.50")))
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    db_session.refresh(order)
    assert order.payment_state == PaymentState.PARTIALLY_REFUNDED
    refunds = [tx for tx in order.transactions if tx.kind.value == "refund"]
    assert [(tx.external_id, tx.amount) for tx in refunds] == [("77", Decimal("12.50"))]
    # Everything was in the delivery: neither the order nor its payments were read again.
    assert len(emulator.requests_to("GET", "/transactions.json")) == reads
    assert not emulator.requests_to("GET", f"/orders/{stored['id']}.json")


def test_a_refund_of_an_unknown_order_reads_the_order_by_a_follow_up(
    client: FlaskClient,
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = emulator.add_order(fixture("order-fr-relay-point.json"))
    post(client, shop, *signed(emulator, "refunds/create", refund_body(stored["id"], "5.00")))
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    assert order.number == "#1042" and order.grand_total == Decimal("84.82")
    assert order.payment_state == PaymentState.PAID
    topics = db_session.scalars(select(InboxEvent.topic).order_by(InboxEvent.id)).all()
    assert topics == ["refunds/create", "fetch/order"]
    assert emulator.requests_to("GET", f"/orders/{stored['id']}.json")


def add_recent_orders(emulator: ShopifyEmulator, count: int, first_id: int, prefix: str) -> None:
    """Orders changed just now, so the first poll window (one day) sees them."""
    base = fixture("order-fr-relay-point.json")
    for index in range(count):
        stored = emulator.add_order(
            {**base, "id": first_id + index, "name": f"{prefix}{index:02d}"}
        )
        emulator.update_order(stored["id"])


@pytest.fixture()
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    from web.connectors.shopify import ShopifyConnector

    monkeypatch.setattr(ShopifyConnector, "page_size", 3)


def test_polling_catches_orders_whose_webhooks_were_missed(
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    small_pages: None,
) -> None:
    add_recent_orders(emulator, 7, 9_200_000_000_000, "#20")
    report = run_sync(session_factory, shop.key)
    assert report.polls[0].pages >= 3 and report.polls[0].stored == 7
    assert db_session.scalar(select(func.count()).select_from(Order)) == 7
    cursor = db_session.scalars(select(SyncCursor)).one()
    db_session.refresh(cursor)
    assert cursor.position_at is not None and cursor.last_success_at is not None
    # A second run reads the overlap window again and changes nothing.
    again = run_sync(session_factory, shop.key)
    assert again.polls[0].stored == 0
    assert db_session.scalar(select(func.count()).select_from(Order)) == 7


def test_a_poll_that_fails_mid_batch_loses_nothing_and_duplicates_nothing(
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    small_pages: None,
) -> None:
    add_recent_orders(emulator, 6, 9_300_000_000_000, "#30")
    # The first page answers, then the shop falls over on the second.
    emulator.fail_next(503, path_contains="orders.json")
    emulator.requests.clear()
    calls = {"n": 0}
    original = emulator.route

    def flaky(request):  # the 2nd list request fails, after page one was stored
        if request.path.endswith("orders.json"):
            calls["n"] += 1
            if calls["n"] == 2:
                from tests.emulators.base import Reply

                return Reply.json({"errors": "emulated outage"}, 503)
        return original(request)

    emulator._faults.clear()
    emulator.route = flaky  # type: ignore[method-assign]
    first = run_sync(session_factory, shop.key)
    assert first.polls[0].error and first.polls[0].stored == 3
    cursor = db_session.scalars(select(SyncCursor)).one()
    db_session.refresh(cursor)
    assert cursor.position_at is None  # never moved past orders it has not seen
    assert "PlatformUnavailable" in cursor.last_error
    second = run_sync(session_factory, shop.key)
    assert not second.polls[0].error and second.polls[0].stored == 3
    numbers = sorted(db_session.scalars(select(Order.number)))
    assert numbers == [f"#30{index:02d}" for index in range(6)]


def test_one_unreadable_order_in_a_polled_page_is_parked_alone(
    emulator: ShopifyEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    small_pages: None,
) -> None:
    add_recent_orders(emulator, 4, 9_400_000_000_000, "#40")
    emulator.update_order(9_400_000_000_001, total_price="douze euros")
    report = run_sync(session_factory, shop.key)
    assert not report.polls[0].error
    assert report.polls[0].rejected == 1
    numbers = sorted(db_session.scalars(select(Order.number)))
    assert numbers == ["#4000", "#4002", "#4003"]
    parked = db_session.scalars(
        select(InboxEvent).where(InboxEvent.state == InboxState.PARKED)
    ).one()
    assert parked.external_order_id == "9400000000001"
    assert "total_price" in parked.error
