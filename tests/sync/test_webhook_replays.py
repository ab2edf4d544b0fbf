"""Replaying signed webhook bodies under other headers, as an attacker who saw one would.

The HMAC covers the body only: topic, delivery id and webhook id are whatever the sender
writes. Each attack posts a body the shop really signed, through /hooks, then runs the sync.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web.models import CarrierMapping, InboxEvent, Order, OrderEvent, Shop, User
from web.models.enums import InboxState, Role
from web.services import shops, users
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DELETED = "order.deleted_at_shop"


def fixture(platform: str, name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / platform / name).read_text())
    return data.get("order", data)


def event_kinds(session: Session, order: Order) -> list[str]:
    query = select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    return list(session.scalars(query))


def events_with_body(session: Session, body: bytes) -> list[InboxEvent]:
    return list(session.scalars(select(InboxEvent).where(InboxEvent.raw_body == body)))


def the_order(session: Session) -> Order:
    order = session.scalars(select(Order)).one()
    session.refresh(order)
    return order


# --- WooCommerce ----------------------------------------------------------------------------


@pytest.fixture()
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture()
def woo_shop(db_session: Session, woo: WooCommerceEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Thés & Fonte",
        woo.base_url,
        api_key=woo.consumer_key,
        api_secret=woo.consumer_secret,
        webhook_secret=woo.webhook_secret,
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais®", shipping_mode=modes["mondial_relay"]
        )
    )
    db_session.commit()
    return shop


def to_woo(client: FlaskClient, shop: Shop, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers)


def as_woo_topic(headers: dict[str, str], topic: str) -> dict[str, str]:
    """The same signed delivery with another topic and fresh delivery and webhook ids."""
    return {
        **headers,
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Event": topic.partition(".")[2],
        "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        "X-WC-Webhook-ID": str(uuid.uuid4().int % 10_000),
    }


def test_an_updated_order_re_posted_as_deleted_three_times_is_never_applied(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    body, headers = woo.webhook("order.updated", order_id)
    assert to_woo(client, woo_shop, body, headers).get_json()["status"] == "stored"
    run_sync(session_factory, woo_shop.key)
    before = the_order(db_session)
    kinds_before = event_kinds(db_session, before)

    answers = [
        to_woo(client, woo_shop, body, as_woo_topic(headers, "order.deleted")) for _ in range(3)
    ]
    run_sync(session_factory, woo_shop.key)

    for answer in answers:
        # Refused, but 2xx: the same body would be refused again, so the shop is not made
        # to count a failure.
        assert answer.status_code == 200
        assert answer.get_json()["status"] == "refused"
        assert "order.deleted" in answer.get_json()["reason"]
    order = the_order(db_session)
    assert DELETED not in event_kinds(db_session, order)
    assert event_kinds(db_session, order) == kinds_before
    assert not order.needs_review and order.shop_status == before.shop_status
    stored = events_with_body(db_session, body)
    assert sorted((e.topic, e.state) for e in stored) == [
        ("order.updated", InboxState.PROCESSED),
        ("rejected", InboxState.REJECTED),  # the re-posts, kept once with their cause
    ]
    refused = next(e for e in stored if e.state == InboxState.REJECTED)
    assert refused.cause_kind == "topic_mismatch"
    assert refused.cause_params["topic"] == "order.deleted"


def test_a_deletion_re_posted_with_new_delivery_ids_is_stored_and_applied_once(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    to_woo(client, woo_shop, *woo.webhook("order.created", order_id))
    run_sync(session_factory, woo_shop.key)

    body, headers = woo.webhook("order.deleted", order_id)
    assert body == f'{{"id":{order_id}}}'.encode()
    assert to_woo(client, woo_shop, body, headers).get_json()["status"] == "stored"
    replays = [
        to_woo(client, woo_shop, body, as_woo_topic(headers, "order.deleted")).get_json()
        for _ in range(3)
    ]
    run_sync(session_factory, woo_shop.key)

    assert [answer["status"] for answer in replays] == ["duplicate"] * 3
    assert len(events_with_body(db_session, body)) == 1
    order = the_order(db_session)
    assert order.needs_review  # the genuine deletion still reaches the desk
    assert event_kinds(db_session, order).count(DELETED) == 1


def test_an_order_deleted_restored_and_deleted_again_is_deleted_twice(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    to_woo(client, woo_shop, *woo.webhook("order.created", order_id))
    first = woo.webhook("order.deleted", order_id)
    assert to_woo(client, woo_shop, *first).get_json()["status"] == "stored"
    run_sync(session_factory, woo_shop.key)

    woo.update_order(order_id, status="processing")  # untrashed: modified again
    assert to_woo(client, woo_shop, *woo.webhook("order.restored", order_id)).get_json() == {
        "status": "stored"
    }
    run_sync(session_factory, woo_shop.key)
    again = woo.webhook("order.deleted", order_id)
    assert again[0] == first[0]  # the very same body: only the restore tells them apart
    assert to_woo(client, woo_shop, *again).get_json()["status"] == "stored"
    run_sync(session_factory, woo_shop.key)

    assert event_kinds(db_session, the_order(db_session)).count(DELETED) == 2
    # Until the next restore, a re-post of that deletion is a duplicate again.
    replay = to_woo(client, woo_shop, again[0], as_woo_topic(again[1], "order.deleted"))
    assert replay.get_json()["status"] == "duplicate"


def test_a_bare_id_under_an_order_topic_is_not_applied_as_an_order(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    to_woo(client, woo_shop, *woo.webhook("order.created", order_id))
    run_sync(session_factory, woo_shop.key)
    body, headers = woo.webhook("order.deleted", order_id)
    kinds_before = event_kinds(db_session, the_order(db_session))

    for topic in ("order.created", "order.updated", "order.restored"):
        answer = to_woo(client, woo_shop, body, as_woo_topic(headers, topic))
        assert answer.status_code == 200 and answer.get_json()["status"] == "refused"
    run_sync(session_factory, woo_shop.key)

    assert [e.state for e in events_with_body(db_session, body)] == [InboxState.REJECTED]
    order = the_order(db_session)
    assert event_kinds(db_session, order) == kinds_before and not order.needs_review


def test_a_topic_comptoir_does_not_handle_is_refused(
    client: FlaskClient,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    body, headers = woo.webhook("order.updated", order_id)
    answer = to_woo(client, woo_shop, body, as_woo_topic(headers, "product.updated"))
    assert answer.get_json()["status"] == "refused"
    run_sync(session_factory, woo_shop.key)
    assert db_session.scalar(select(func.count()).select_from(Order)) == 0


# --- Shopify --------------------------------------------------------------------------------


@pytest.fixture()
def shopify() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture()
def shopify_shop(db_session: Session, shopify: ShopifyEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "shopify",
        "Maison Lumière",
        shopify.base_url,
        api_key=shopify.access_token,
        webhook_secret=shopify.webhook_secret,
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais", shipping_mode=modes["mondial_relay"]
        )
    )
    db_session.commit()
    return shop


def to_shopify(client: FlaskClient, shop: Shop, body: bytes, headers: dict[str, str]) -> Any:
    return client.post(f"/hooks/shopify/{shop.key}", data=body, headers=headers)


def as_shopify_topic(headers: dict[str, str], topic: str) -> dict[str, str]:
    """The same signed delivery with another topic and fresh webhook and event ids."""
    return {
        **headers,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": str(uuid.uuid4()),
        "X-Shopify-Event-Id": str(uuid.uuid4()),
    }


def test_a_shopify_body_re_posted_with_new_webhook_ids_is_stored_once(
    client: FlaskClient,
    shopify: ShopifyEmulator,
    shopify_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = shopify.add_order(fixture("shopify", "order-fr-relay-point.json"))
    body, headers = shopify.webhook("orders/updated", stored["id"])
    assert to_shopify(client, shopify_shop, body, headers).get_json()["status"] == "stored"
    # Shopify's own orders/create and orders/paid for one change carry the same body too.
    answers = [
        to_shopify(client, shopify_shop, body, as_shopify_topic(headers, topic)).get_json()
        for topic in ("orders/updated", "orders/create", "orders/paid")
    ]
    run_sync(session_factory, shopify_shop.key)

    assert [answer["status"] for answer in answers] == ["duplicate"] * 3
    assert [e.topic for e in events_with_body(db_session, body)] == ["orders/updated"]
    order = the_order(db_session)
    assert order.number == "#1042" and order.buyer_note != "Sonner deux fois"

    # A genuine later change has a new updated_at: stored and applied.
    shopify.update_order(stored["id"], note="Sonner deux fois")
    later = shopify.webhook("orders/updated", stored["id"])
    assert to_shopify(client, shopify_shop, *later).get_json()["status"] == "stored"
    run_sync(session_factory, shopify_shop.key)
    assert the_order(db_session).buyer_note == "Sonner deux fois"


def test_a_shopify_order_body_re_posted_as_a_deletion_is_never_applied(
    client: FlaskClient,
    shopify: ShopifyEmulator,
    shopify_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = shopify.add_order(fixture("shopify", "order-fr-relay-point.json"))
    body, headers = shopify.webhook("orders/updated", stored["id"])
    to_shopify(client, shopify_shop, body, headers)
    run_sync(session_factory, shopify_shop.key)
    kinds_before = event_kinds(db_session, the_order(db_session))

    for _ in range(3):
        answer = to_shopify(client, shopify_shop, body, as_shopify_topic(headers, "orders/delete"))
        assert answer.status_code == 200 and answer.get_json()["status"] == "refused"
    # A refund's body is no order, and an order's body is no refund.
    refund_body, refund_headers = shopify.webhook("refunds/create", stored["id"])
    answer = to_shopify(
        client, shopify_shop, refund_body, as_shopify_topic(refund_headers, "orders/updated")
    )
    assert answer.get_json()["status"] == "refused"
    answer = to_shopify(client, shopify_shop, body, as_shopify_topic(headers, "refunds/create"))
    assert answer.get_json()["status"] == "refused"
    run_sync(session_factory, shopify_shop.key)

    order = the_order(db_session)
    assert event_kinds(db_session, order) == kinds_before and not order.needs_review
    assert sorted(e.state for e in events_with_body(db_session, body)) == sorted(
        [InboxState.PROCESSED, InboxState.REJECTED]
    )


def test_a_genuine_shopify_deletion_reaches_the_desk_once(
    client: FlaskClient,
    shopify: ShopifyEmulator,
    shopify_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    stored = shopify.add_order(fixture("shopify", "order-fr-relay-point.json"))
    to_shopify(client, shopify_shop, *shopify.webhook("orders/create", stored["id"]))
    body, headers = shopify.webhook("orders/delete", stored["id"])
    assert json.loads(body) == {"id": stored["id"]}
    assert to_shopify(client, shopify_shop, body, headers).get_json()["status"] == "stored"
    replay = to_shopify(client, shopify_shop, body, as_shopify_topic(headers, "orders/delete"))
    assert replay.get_json()["status"] == "duplicate"
    run_sync(session_factory, shopify_shop.key)

    order = the_order(db_session)
    assert order.needs_review
    assert event_kinds(db_session, order).count(DELETED) == 1


# --- What the sync log and the API show ----------------------------------------------------


def test_signatures_are_neither_stored_nor_shown_nor_in_the_api(
    client: FlaskClient,
    shopify: ShopifyEmulator,
    shopify_shop: Shop,
    woo: WooCommerceEmulator,
    woo_shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    login_as: Any,
) -> None:
    stored = shopify.add_order(fixture("shopify", "order-fr-relay-point.json"))
    shopify_body, shopify_headers = shopify.webhook("orders/create", stored["id"])
    to_shopify(client, shopify_shop, shopify_body, shopify_headers)
    order_id = woo.add_order(fixture("woocommerce", "fr-order-relay-coupon-refund.json"))
    woo_body, woo_headers = woo.webhook("order.created", order_id)
    to_woo(client, woo_shop, woo_body, woo_headers)
    refused_headers = as_woo_topic(woo_headers, "order.deleted")
    to_woo(client, woo_shop, woo_body, refused_headers)
    run_sync(session_factory)
    signatures = [
        shopify_headers["X-Shopify-Hmac-Sha256"],
        woo_headers["X-WC-Webhook-Signature"],
    ]
    # A row stored before signatures were dropped still holds one: it is not shown either.
    old = InboxEvent(
        shop=shopify_shop,
        topic="orders/updated",
        dedupe_key="stored-before-the-fix",
        raw_body=shopify_body,
        headers={"x-shopify-topic": "orders/updated", "x-shopify-hmac-sha256": "T2xkU2lnbmF0dXJl"},
        state=InboxState.PROCESSED,
    )
    db_session.add(old)
    db_session.commit()
    signatures.append("T2xkU2lnbmF0dXJl")

    events = db_session.scalars(select(InboxEvent).where(InboxEvent.id != old.id)).all()
    assert {"x-shopify-topic", "x-wc-webhook-topic"} <= {h for e in events for h in e.headers}
    assert not [h for e in events for h in e.headers if "hmac" in h or "signature" in h]

    manager: User = login_as(Role.MANAGER)
    pages = [client.get("/sync/").get_data(as_text=True)]
    for event in db_session.scalars(select(InboxEvent)):
        response = client.get(f"/sync/events/{event.id}")
        assert response.status_code == 200
        pages.append(response.get_data(as_text=True))
    pages.append(client.get("/sync/issues/").get_data(as_text=True))
    shown = "\n".join(pages)
    assert "x-shopify-topic" in shown and "x-wc-webhook-delivery-id" in shown
    assert "hmac" not in shown.lower() and "x-wc-webhook-signature" not in shown
    for signature in signatures:
        assert signature not in shown
    # The refused re-post is listed with its cause, in the reader's language.
    assert "ne correspond pas au corps signé" in shown

    token = users.create_api_token(db_session, manager, "tests")
    db_session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    answers = [client.get("/api/v1/orders", headers=bearer)]
    for order in db_session.scalars(select(Order)):
        answers.append(client.get(f"/api/v1/orders/{order.id}", headers=bearer))
    assert all(answer.status_code == 200 for answer in answers)
    api = "\n".join(answer.get_data(as_text=True) for answer in answers)
    for signature in signatures:
        assert signature not in api
