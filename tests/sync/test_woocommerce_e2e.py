"""WooCommerce end to end: unsigned ping, signed webhooks, dedupe on modified time, polling."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.woocommerce import WooCommerceEmulator
from web.models import CarrierMapping, InboxEvent, Order, Shop
from web.models.enums import PaymentState
from web.services import shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture()
def emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: WooCommerceEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Thés & Fonte",
        emulator.base_url,
        api_key=emulator.consumer_key,
        api_secret=emulator.consumer_secret,
        webhook_secret=emulator.webhook_secret,
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais®", shipping_mode=modes["mondial_relay"]
        )
    )
    db_session.commit()
    return shop


def post(client: FlaskClient, shop: Shop, body: bytes, headers: dict[str, str]):
    return client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers)


def test_the_unsigned_ping_is_answered_200_and_stores_nothing(
    client: FlaskClient, emulator: WooCommerceEmulator, shop: Shop, db_session: Session
) -> None:
    response = post(client, shop, *emulator.ping(webhook_id=12))
    assert response.status_code == 200
    assert response.get_json()["status"] == "ping"
    assert db_session.scalar(select(func.count()).select_from(InboxEvent)) == 0


def test_order_created_webhook_to_the_desk_with_refund_and_coupon(
    client: FlaskClient,
    emulator: WooCommerceEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = emulator.add_order(fixture("fr-order-relay-coupon-refund.json"))
    response = post(client, shop, *emulator.webhook("order.created", order_id))
    assert response.status_code == 200 and response.get_json()["status"] == "stored"
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    assert order.number == "4127"
    assert order.grand_total == Decimal("73.03")
    assert [line.sku for line in order.lines] == ["THE-SENCHA-100", "TETSUBIN-08-NOIR"]
    assert order.shipping_mode is not None and order.shipping_mode.code == "mondial_relay"
    assert order.payment_state == PaymentState.PARTIALLY_REFUNDED
    assert not order.needs_mapping, order.mapping_issues


def test_redelivery_of_the_same_version_is_a_duplicate_an_update_is_new(
    client: FlaskClient,
    emulator: WooCommerceEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = emulator.add_order(fixture("fr-order-relay-coupon-refund.json"))
    first = emulator.webhook("order.updated", order_id)
    assert post(client, shop, *first).get_json()["status"] == "stored"
    # WooCommerce sends a new delivery id each time: only (id, date_modified_gmt) dedupes.
    assert (
        post(client, shop, *emulator.webhook("order.updated", order_id)).get_json()["status"]
        == "duplicate"
    )
    emulator.update_order(order_id, status="completed")
    assert (
        post(client, shop, *emulator.webhook("order.updated", order_id)).get_json()["status"]
        == "stored"
    )
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    db_session.refresh(order)
    assert order.shop_status == "completed"


def test_wrong_signature_is_refused(
    client: FlaskClient, emulator: WooCommerceEmulator, shop: Shop, db_session: Session
) -> None:
    order_id = emulator.add_order(fixture("fr-order-relay-coupon-refund.json"))
    body, headers = emulator.webhook("order.created", order_id)
    headers["X-WC-Webhook-Signature"] = emulator.sign("not-our-secret", body)
    assert post(client, shop, body, headers).status_code == 401
    assert db_session.scalar(select(func.count()).select_from(InboxEvent)) == 0


def test_a_shop_status_nobody_mapped_parks_the_order_with_its_name(
    client: FlaskClient,
    emulator: WooCommerceEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = emulator.add_order(
        {**fixture("fr-order-relay-coupon-refund.json"), "status": "expedition-partielle"}
    )
    post(client, shop, *emulator.webhook("order.created", order_id))
    run_sync(session_factory, shop.key)
    order = db_session.scalars(select(Order)).one()
    assert order.needs_mapping
    assert "expedition-partielle" in [i["value"] for i in order.mapping_issues]


def test_polling_finds_orders_woocommerce_never_retried(
    emulator: WooCommerceEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    base = fixture("fr-order-relay-coupon-refund.json")
    for index in range(3):
        order_id = emulator.add_order({**base, "id": 5000 + index, "number": f"{5000 + index}"})
        emulator.update_order(order_id)  # changed just now
    report = run_sync(session_factory, shop.key)
    assert report.polls[0].stored == 3 and not report.polls[0].error
    assert sorted(db_session.scalars(select(Order.number))) == ["5000", "5001", "5002"]
    assert run_sync(session_factory, shop.key).polls[0].stored == 0
