"""The outbox end to end: a change in Comptoir reaches the loopback shop once, whatever fails.

Orders are imported through the real intake from the emulated shop, worked with the real
services, and delivered by the dispatcher over HTTP. Faults come from the emulator: 5xx,
429 with Retry-After, slow answers past the push timeout.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import wait_until
from tests.emulators.base import RecordedRequest
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_line, make_message, make_order, make_shop
from web.models import (
    Comment,
    InboxEvent,
    OrderEvent,
    OutboxMessage,
    Shop,
    ShopPacing,
    utcnow,
)
from web.models.enums import CommercialState, InboxState, OutboxState, ShipmentState
from web.models.orders import Order
from web.services import comments, intake, order_actions, outbox, shipments, shops
from web.services.errors import InvalidTransition
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync
from web.services.timeline import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PERSON = Actor.system("test")


def fixture(platform: str, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / platform / name).read_text())
    return data


def writes(emulator: Any) -> list[RecordedRequest]:
    return [request for request in emulator.requests if request.method != "GET"]


def import_order(session: Session, shop: Shop, external_id: str) -> Order:
    """Bring the shop's order in through the real intake."""
    incoming = shops.connector_for(shop).fetch_order(external_id)
    outcome = intake.upsert_order(session, shop, incoming, Actor.shop(shop.name))
    assert outcome.order is not None
    session.commit()
    return outcome.order


def message_of(session: Session, order: Order) -> OutboxMessage:
    session.expire_all()
    return session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id).order_by(OutboxMessage.id)
    ).all()[-1]


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


# --- WooCommerce --------------------------------------------------------------------------


@pytest.fixture()
def woo_emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def woo_shop(session: Session, emulator: WooCommerceEmulator, name: str) -> Shop:
    shop = shops.create_shop(
        session,
        "woocommerce",
        name,
        emulator.base_url,
        api_key=emulator.consumer_key,
        api_secret=emulator.consumer_secret,
        webhook_secret=emulator.webhook_secret,
    )
    session.commit()
    return shop


def processing_woo_order(session: Session, shop: Shop, emulator: WooCommerceEmulator) -> Order:
    """A paid order, "processing" at the shop, imported into Comptoir."""
    payload = copy.deepcopy(fixture("woocommerce", "fr-order-company-bundle.json"))
    payload["status"] = "processing"
    order = import_order(session, shop, emulator.add_order(payload))
    emulator.requests.clear()
    return order


@pytest.fixture()
def woo(db_session: Session, woo_emulator: WooCommerceEmulator) -> Shop:
    return woo_shop(db_session, woo_emulator, "Thés & Fonte")


@pytest.fixture()
def woo_order(db_session: Session, woo: Shop, woo_emulator: WooCommerceEmulator) -> Order:
    return processing_woo_order(db_session, woo, woo_emulator)


def test_a_cancellation_reaches_woocommerce_once_with_its_reason(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Rupture de stock")
    db_session.commit()

    assert outbox.dispatch_due(session_factory) == 1
    assert outbox.dispatch_due(session_factory) == 0

    status_puts = woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}")
    assert [request.json() for request in status_puts] == [{"status": "cancelled"}]
    assert woo_emulator.orders[woo_order.external_id]["status"] == "cancelled"
    notes = [n["note"] for n in woo_emulator.notes.get(woo_order.external_id, [])]
    assert any("Rupture de stock" in note for note in notes)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT and message.attempts == 1
    sent = db_session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.sent"
        )
    )
    assert sent is not None and sent.details["status"] == "cancelled"


def test_a_customer_comment_becomes_a_customer_note(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    comment = comments.add_comment(
        db_session, woo_order, PERSON, "Votre colis part demain.", "customer", notify=True
    )
    comments.add_comment(db_session, woo_order, PERSON, "Client pénible", "internal")
    db_session.commit()

    outbox.dispatch_due(session_factory)

    [post] = woo_emulator.requests_to("POST", "/notes")
    assert post.json() == {
        "note": "Votre colis part demain.",
        "customer_note": True,
        "added_by_user": False,
    }
    db_session.expire_all()
    assert db_session.get_one(Comment, comment.id).pushed_at is not None
    assert all("pénible" not in r.body.decode() for r in woo_emulator.requests)
    sent = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.sent"
        )
    ).one()
    assert sent["excerpt"] == "Votre colis part demain." and sent["customer_visible"] is True


def test_500s_and_a_429_are_retried_with_backoff_then_delivered_once(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Doublon")
    db_session.commit()
    path = f"/orders/{woo_order.external_id}"

    t0 = utcnow()  # one clock for the whole test: every step says when it runs
    woo_emulator.fail_next(500, path_contains=path, method="PUT")
    outbox.dispatch_due(session_factory, now=t0)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.FAILED and message.attempts == 1
    assert "PlatformUnavailable" in message.last_error
    first_wait = message.next_attempt_at - t0
    base = outbox.BASE_DELAY
    assert base / 2 <= first_wait <= base
    # Not due yet: nothing is sent before its time.
    assert outbox.dispatch_due(session_factory, now=t0 + base / 2 - dt.timedelta(seconds=0.1)) == 0

    woo_emulator.fail_next(503, path_contains=path, method="PUT")
    outbox.dispatch_due(session_factory, now=t0 + dt.timedelta(seconds=10))
    message = message_of(db_session, woo_order)
    assert message.attempts == 2 and message.state == OutboxState.FAILED

    woo_emulator.fail_next(429, retry_after="120", path_contains=path)
    third = t0 + dt.timedelta(seconds=60)
    outbox.dispatch_due(session_factory, now=third)
    message = message_of(db_session, woo_order)
    assert message.attempts == 3 and message.state == OutboxState.FAILED
    assert message.next_attempt_at >= third + dt.timedelta(seconds=119)
    assert outbox.dispatch_due(session_factory, now=third + dt.timedelta(seconds=90)) == 0
    # The Retry-After also holds back every other call to the shop, on the real clock:
    # let it run out as the dispatcher's clock does.
    pacing = db_session.scalars(select(ShopPacing)).one()
    assert pacing.refusals == 1
    assert pacing.blocked_until is not None
    assert pacing.blocked_until >= utcnow() + dt.timedelta(seconds=100)
    pacing.blocked_until = None
    db_session.commit()

    outbox.dispatch_due(session_factory, now=t0 + dt.timedelta(seconds=200))
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT and message.attempts == 4
    assert len(woo_emulator.requests_to("PUT", path)) == 3  # 500, 503, then the real one
    assert woo_emulator.orders[woo_order.external_id]["status"] == "cancelled"
    failures = db_session.scalars(
        select(OrderEvent).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.failed"
        )
    ).all()
    assert len(failures) == 3
    assert "PlatformUnavailable" in failures[0].details["error"]
    assert "RateLimited" in failures[2].details["error"]


def test_a_timeout_whose_write_landed_is_not_written_again(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "PUSH_TIMEOUT", 0.5)
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Fraude")
    db_session.commit()
    path = f"/orders/{woo_order.external_id}"
    # The shop is slow: we give up waiting, but it applies the change all the same.
    woo_emulator.slow_next(1.5, path_contains=path, method="PUT")

    outbox.dispatch_due(session_factory)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.FAILED and "timed out" in message.last_error

    woo_emulator.wait_landed()  # the shop finishes the write we stopped waiting for
    assert woo_emulator.orders[woo_order.external_id]["status"] == "cancelled"
    outbox.dispatch_due(session_factory, now=later(10))
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT
    assert len(woo_emulator.requests_to("PUT", path)) == 1
    sent = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.sent"
        )
    ).all()
    assert sent and sent[-1]["written"] is False  # already at the shop, nothing written


def test_after_max_attempts_the_message_is_dead_then_a_person_replays_it(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Adresse fausse")
    db_session.commit()
    path = f"/orders/{woo_order.external_id}"
    woo_emulator.fail_next(*([502] * outbox.MAX_ATTEMPTS), path_contains=path, method="PUT")
    for attempt in range(outbox.MAX_ATTEMPTS):
        outbox.dispatch_due(session_factory, now=later(3600 * (attempt + 1) + 1))
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.DEAD
    assert message.attempts == outbox.MAX_ATTEMPTS
    assert outbox.dispatch_due(session_factory, now=later(10**6)) == 0

    outbox.retry(db_session, message, PERSON)
    db_session.commit()
    outbox.dispatch_due(session_factory)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT
    assert woo_emulator.orders[woo_order.external_id]["status"] == "cancelled"
    kinds = db_session.scalars(
        select(OrderEvent.kind).where(OrderEvent.order_id == woo_order.id)
    ).all()
    assert "outbox.dead" in kinds and "outbox.retried" in kinds


def test_a_refusal_by_the_shop_is_dead_at_once_with_its_cause(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    for mapping in woo.milestone_mappings:
        if mapping.milestone == "cancelled":
            mapping.shop_status = "annulee-maison"  # a status the shop does not have
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Test")
    db_session.commit()
    outbox.dispatch_due(session_factory)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.DEAD and message.attempts == 1
    assert "400" in message.last_error
    dead = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.dead"
        )
    ).one()
    assert dead["refused"] is True and dead["error"] == message.last_error


def test_messages_of_one_order_go_out_in_order(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    comments.add_comment(db_session, woo_order, PERSON, "Premier message", "customer")
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Annulé")
    db_session.commit()
    woo_emulator.fail_next(500, path_contains="/notes", method="POST")
    outbox.dispatch_due(session_factory)
    # The comment failed: the cancellation written after it waits its turn.
    assert woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}") == []
    outbox.dispatch_due(session_factory, now=later(10))
    assert len(woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}")) == 1
    states = db_session.scalars(
        select(OutboxMessage.state).where(OutboxMessage.order_id == woo_order.id)
    ).all()
    assert set(states) == {OutboxState.SENT}


def test_a_switch_turned_off_before_delivery_ignores_the_message(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    comments.add_comment(db_session, woo_order, PERSON, "Bonjour", "customer")
    db_session.commit()
    woo.push_comments = False
    db_session.commit()
    outbox.dispatch_due(session_factory)
    assert message_of(db_session, woo_order).state == OutboxState.IGNORED
    assert writes(woo_emulator) == []


# --- Shopify ------------------------------------------------------------------------------


@pytest.fixture()
def shopify_emulator() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture()
def shopify(db_session: Session, shopify_emulator: ShopifyEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "shopify",
        "Maison Lumière",
        shopify_emulator.base_url,
        api_key=shopify_emulator.access_token,
        webhook_secret="secret",
    )
    db_session.commit()
    return shop


def test_shopify_gets_the_cancel_call_and_comments_in_the_note(
    db_session: Session,
    session_factory: sessionmaker[Session],
    shopify: Shop,
    shopify_emulator: ShopifyEmulator,
) -> None:
    data = shopify_emulator.add_order(fixture("shopify", "order-fr-relay-point.json"))
    order = import_order(db_session, shopify, str(data["id"]))
    shopify_emulator.requests.clear()
    comments.add_comment(db_session, order, PERSON, "Colis retardé", "customer")
    order_actions.perform(db_session, order, "cancel", PERSON, reason="Rupture")
    db_session.commit()

    outbox.dispatch_due(session_factory)
    outbox.dispatch_due(session_factory)

    [note_put] = shopify_emulator.requests_to("PUT", f"/orders/{order.external_id}.json")
    assert "Colis retardé" in note_put.json()["order"]["note"]
    [cancel] = shopify_emulator.requests_to("POST", f"/orders/{order.external_id}/cancel.json")
    assert cancel.json() == {"reason": "other", "email": True}  # the buyer is told
    comment = db_session.scalars(select(Comment).where(Comment.order_id == order.id)).one()
    # The note line names the comment, so a retry finds it and writes nothing twice.
    assert f"Comptoir [c{comment.id}]: Colis retardé" in note_put.json()["order"]["note"]
    assert shopify_emulator.orders[order.external_id]["cancelled_at"]
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).commercial_state == CommercialState.CANCELLED
    states = db_session.scalars(
        select(OutboxMessage.state).where(OutboxMessage.order_id == order.id)
    ).all()
    assert states == [OutboxState.SENT, OutboxState.SENT]


# --- PrestaShop ---------------------------------------------------------------------------

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


def test_prestashop_gets_an_order_history_and_a_public_message(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    with PrestaShopEmulator() as emulator:
        for name in PRESTASHOP_RELATED:
            emulator.load((FIXTURES / "prestashop" / name).read_bytes())  # type: ignore[attr-defined]
        external_id = emulator.add_order(  # type: ignore[attr-defined]
            (FIXTURES / "prestashop" / "fr-order-101.xml").read_bytes()
        )
        shop = shops.create_shop(
            db_session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
        )
        db_session.commit()
        order = import_order(db_session, shop, external_id)
        emulator.requests.clear()
        comments.add_comment(db_session, order, PERSON, "Expédié demain", "customer")
        order_actions.perform(db_session, order, "cancel", PERSON, reason="Rupture")
        db_session.commit()

        assert outbox.dispatch_due(session_factory) == 2

        [history] = emulator.requests_to("POST", "/api/order_histories")
        assert ("sendemail", "1") in history.query
        body = history.body.decode()
        assert f"<id_order>{external_id}</id_order>" in body
        assert "<id_order_state>6</id_order_state>" in body
        messages = emulator.requests_to("POST", "/api/customer_messages")
        public = [m.body.decode() for m in messages if "Expédié demain" in m.body.decode()]
        assert len(public) == 1 and "<private>0</private>" in public[0]
        assert outbox.dispatch_due(session_factory, now=later(10**5)) == 0
        assert len(emulator.requests_to("POST", "/api/order_histories")) == 1


# --- Magento ------------------------------------------------------------------------------


def test_magento_gets_the_cancel_call_and_a_visible_comment(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    with MagentoEmulator() as emulator:
        stored = emulator.add_order(fixture("magento", "fr-order-company-bundle.json"))
        external_id = str(stored["entity_id"])
        shop = shops.create_shop(
            db_session, "magento", "Papeterie", emulator.base_url, api_key=emulator.token
        )
        db_session.commit()
        order = import_order(db_session, shop, external_id)
        emulator.requests.clear()
        comments.add_comment(
            db_session, order, PERSON, "Votre commande est annulée", "customer", notify=True
        )
        order_actions.perform(db_session, order, "cancel", PERSON, reason="Rupture")
        db_session.commit()

        assert outbox.dispatch_due(session_factory) == 2

        comment_posts = emulator.requests_to("POST", f"/V1/orders/{external_id}/comments")
        visible = [
            r.json()["statusHistory"]
            for r in comment_posts
            if r.json()["statusHistory"]["comment"] == "Votre commande est annulée"
        ]
        assert len(visible) == 1
        assert visible[0]["is_visible_on_front"] == 1
        assert visible[0]["is_customer_notified"] == 1
        assert visible[0]["parent_id"] == int(external_id)
        assert len(emulator.requests_to("POST", f"/V1/orders/{external_id}/cancel")) == 1
        assert emulator.orders[int(external_id)]["status"] == "canceled"
        assert outbox.dispatch_due(session_factory, now=later(10**5)) == 0


def test_the_shop_echoing_our_change_back_causes_no_second_push(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    """After our push the shop reports the new status (poll or webhook): nothing bounces."""
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Rupture")
    db_session.commit()
    run_sync(session_factory, woo.key)  # delivers, then polls the shop, which now says so
    run_sync(session_factory, woo.key)

    db_session.expire_all()
    assert len(woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}")) == 1
    messages = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == woo_order.id)
    ).all()
    assert [m.state for m in messages] == [OutboxState.SENT]
    fresh = db_session.get_one(Order, woo_order.id)
    assert fresh.commercial_state == CommercialState.CANCELLED
    assert fresh.shop_status == "cancelled"
    stuck = db_session.scalars(
        select(InboxEvent).where(InboxEvent.state != InboxState.PROCESSED)
    ).all()
    assert [(e.state, e.error) for e in stuck] == []


def test_an_internal_comment_becomes_a_private_note_when_the_shop_asks_for_them(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    woo.push_internal_comments = True
    comments.add_comment(db_session, woo_order, PERSON, "Client VIP, soigner le colis")
    db_session.commit()
    outbox.dispatch_due(session_factory)
    [post] = woo_emulator.requests_to("POST", "/notes")
    assert post.json() == {
        "note": "Client VIP, soigner le colis",
        "customer_note": False,
        "added_by_user": False,
    }
    assert woo_emulator.emails == []  # a private note is never e-mailed to the buyer
    # The order page tells it apart from a note the buyer reads.
    sent = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == woo_order.id, OrderEvent.kind == "outbox.sent"
        )
    ).one()
    assert sent["customer_visible"] is False and sent["excerpt"] == "Client VIP, soigner le colis"


def test_a_message_being_sent_cannot_be_ignored_or_retried_meanwhile(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Rupture")
    db_session.commit()
    woo_emulator.slow_next(1.0, path_contains=f"/orders/{woo_order.external_id}", method="PUT")
    sending = threading.Thread(target=outbox.dispatch_due, args=(session_factory,))
    sending.start()
    try:
        wait_until(lambda: woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}"))
        message = message_of(db_session, woo_order)
        assert message.claimed_until is not None and message.attempts == 1
        with pytest.raises(InvalidTransition) as refused:
            outbox.ignore(db_session, message, PERSON)
        assert "being sent right now" in refused.value.reason
        outbox.retry(db_session, message, PERSON)  # still on its way: nothing to do
        assert message.attempts == 1 and message.state == OutboxState.PENDING
        db_session.rollback()
        assert outbox.dispatch_due(session_factory) == 0  # nobody else takes it meanwhile
    finally:
        sending.join(timeout=10)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT and message.claimed_until is None
    assert len(woo_emulator.requests_to("PUT", f"/orders/{woo_order.external_id}")) == 1


def test_a_delivery_back_after_its_lease_ran_out_leaves_the_new_attempts_outcome(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
    caplog: pytest.LogCaptureFixture,
) -> None:
    message_id = _cancel(db_session, woo_order)
    path = f"/orders/{woo_order.external_id}"
    woo_emulator.slow_next(1.5, path_contains=path, method="PUT")
    first: list[OutboxState | None] = []
    sending = threading.Thread(
        target=lambda: first.append(outbox.deliver(session_factory, message_id))
    )
    with caplog.at_level(logging.WARNING, logger="web.services.outbox"):
        sending.start()
        try:
            wait_until(lambda: woo_emulator.requests_to("PUT", path))
            # The first dispatcher's lease ran out: a second one takes the message over.
            takeover = utcnow() + outbox.LEASE + dt.timedelta(seconds=1)
            assert outbox.deliver(session_factory, message_id, now=takeover) == OutboxState.SENT
        finally:
            sending.join(timeout=10)
    assert first == [None]
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.SENT and message.attempts == 2
    # The outbox's own records: a live app left by an earlier test may log its polls too.
    logged = [r.getMessage() for r in caplog.records if r.name == "web.services.outbox"]
    assert logged == [f"outbox message {message_id}: attempt 1 came back too late"]


def test_an_old_status_is_not_sent_again_after_a_newer_one(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    woo_emulator.orders[woo_order.external_id]["status"] = "on-hold"
    woo_order.shop_status = "on-hold"
    woo_order.commercial_state = CommercialState.NEW
    woo_order.last_pushed_milestone = None
    for mapping in woo.milestone_mappings:
        if mapping.milestone == "validated":
            mapping.enabled = True  # tell the shop about validations ("processing")
    order_actions.perform(db_session, woo_order, "validate", PERSON)
    db_session.commit()
    woo_emulator.fail_next(400, path_contains=f"/orders/{woo_order.external_id}", method="PUT")
    outbox.dispatch_due(session_factory)
    processing = message_of(db_session, woo_order)
    assert processing.state == OutboxState.DEAD
    order_actions.perform(db_session, woo_order, "cancel", PERSON, reason="Client parti")
    db_session.commit()
    outbox.dispatch_due(session_factory)
    assert message_of(db_session, woo_order).state == OutboxState.SENT
    with pytest.raises(InvalidTransition) as refused:
        outbox.retry(db_session, processing, PERSON)
    assert refused.value.reason == "a newer status was already sent to the shop"
    assert woo_emulator.orders[woo_order.external_id]["status"] == "cancelled"


# --- Guards mutation testing found unguarded (issue 13, item 14) ---------------------------
# A message already sent, dead or not yet due is never sent again by a delivery asked for by id
# (an SQS consumer's way); a status switch turned off means no status push; a dispatch for one
# shop leaves the other shops' messages alone.


def _cancel(session: Session, order: Order) -> int:
    order_actions.perform(session, order, "cancel", PERSON, reason="Doublon")
    session.commit()
    return message_of(session, order).id


def test_a_sent_message_delivered_again_by_id_is_not_written_twice(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    message_id = _cancel(db_session, woo_order)
    t0 = utcnow()
    assert outbox.deliver(session_factory, message_id, now=t0) == OutboxState.SENT
    written = len(writes(woo_emulator))  # the status, and the reason as a note
    assert written == 2
    sent = message_of(db_session, woo_order)
    assert sent.sent_at == t0 and sent.claimed_until is None and sent.last_error == ""

    # SQS delivers at least once: the same id again, now and much later.
    assert outbox.deliver(session_factory, message_id) is None
    assert outbox.deliver(session_factory, message_id, now=later(10**6)) is None
    assert len(writes(woo_emulator)) == written
    assert message_of(db_session, woo_order).attempts == 1


def test_a_dead_message_delivered_again_by_id_stays_dead(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    message_id = _cancel(db_session, woo_order)
    woo_emulator.fail_next(400, path_contains=f"/orders/{woo_order.external_id}", method="PUT")
    assert outbox.deliver(session_factory, message_id) == OutboxState.DEAD
    tried = len(woo_emulator.requests)

    assert outbox.deliver(session_factory, message_id, now=later(10**6)) is None
    assert len(woo_emulator.requests) == tried
    assert message_of(db_session, woo_order).state == OutboxState.DEAD


def test_a_message_waiting_for_its_retry_is_not_sent_before_its_time(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    message_id = _cancel(db_session, woo_order)
    t0 = utcnow()
    woo_emulator.fail_next(503, path_contains=f"/orders/{woo_order.external_id}", method="PUT")
    assert outbox.deliver(session_factory, message_id, now=t0) == OutboxState.FAILED
    tried = len(woo_emulator.requests)
    waiting = message_of(db_session, woo_order)
    assert waiting.next_attempt_at > t0

    # Asked for by id before its time (a resend, a replay): nothing goes out.
    assert outbox.deliver(session_factory, message_id, now=t0) is None
    assert len(woo_emulator.requests) == tried
    assert outbox.deliver(session_factory, message_id, now=waiting.next_attempt_at) == (
        OutboxState.SENT
    )


def test_no_status_push_when_the_shops_status_switch_is_off(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    _cancel(db_session, woo_order)
    woo.push_statuses = False  # switched off after the change was queued, before its push
    db_session.commit()
    outbox.dispatch_due(session_factory)
    message = message_of(db_session, woo_order)
    assert message.state == OutboxState.IGNORED
    assert "switched off" in message.last_error
    assert writes(woo_emulator) == []


@pytest.fixture()
def other_woo_emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def test_a_dispatch_for_one_shop_leaves_the_other_shops_messages(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
    other_woo_emulator: WooCommerceEmulator,
) -> None:
    other = woo_shop(db_session, other_woo_emulator, "L'Autre Boutique")
    other_order = processing_woo_order(db_session, other, other_woo_emulator)
    _cancel(db_session, woo_order)
    _cancel(db_session, other_order)

    assert outbox.dispatch_due(session_factory, shop_id=woo.id) == 1
    assert message_of(db_session, woo_order).state == OutboxState.SENT
    assert message_of(db_session, other_order).state == OutboxState.PENDING
    assert writes(other_woo_emulator) == []

    assert outbox.dispatch_due(session_factory, shop_id=other.id) == 1
    assert message_of(db_session, other_order).state == OutboxState.SENT


def test_a_fact_the_platform_cannot_take_is_ignored_with_its_reason(
    db_session: Session,
    session_factory: sessionmaker[Session],
    shopify: Shop,
    shopify_emulator: ShopifyEmulator,
) -> None:
    data = shopify_emulator.add_order(fixture("shopify", "order-fr-relay-point.json"))
    order = import_order(db_session, shopify, str(data["id"]))
    # Shipped from Shopify meanwhile: Shopify refuses to cancel a fulfilled order.
    shopify_emulator.orders[order.external_id]["fulfillment_status"] = "fulfilled"
    shopify_emulator.requests.clear()
    order_actions.perform(db_session, order, "cancel", PERSON, reason="Rupture")
    db_session.commit()

    outbox.dispatch_due(session_factory)

    message = message_of(db_session, order)
    assert message.state == OutboxState.IGNORED and message.sent_at is None
    assert "cancel its fulfilments in Shopify first" in message.last_error
    assert writes(shopify_emulator) == []
    ignored = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "outbox.ignored"
        )
    ).one()
    assert "fulfilled" in ignored["reason"]


def test_a_comment_said_again_reaches_the_buyer_again(
    db_session: Session,
    session_factory: sessionmaker[Session],
    woo_emulator: WooCommerceEmulator,
    woo_order: Order,
) -> None:
    """Only notes written since the message was queued count as ours: the same words said a
    day before are another comment, and this one is written."""
    yesterday = utcnow() - dt.timedelta(days=1)
    woo_emulator.notes.setdefault(woo_order.external_id, []).append(
        {
            "id": 999,
            "author": "admin",
            "date_created": yesterday.strftime("%Y-%m-%dT%H:%M:%S"),
            "date_created_gmt": yesterday.strftime("%Y-%m-%dT%H:%M:%S"),
            "note": "Votre colis part demain.",
            "customer_note": True,
        }
    )
    comments.add_comment(db_session, woo_order, PERSON, "Votre colis part demain.", "customer")
    db_session.commit()

    outbox.dispatch_due(session_factory)

    assert len(woo_emulator.requests_to("POST", "/notes")) == 1
    assert message_of(db_session, woo_order).state == OutboxState.SENT


# --- "A newer status already reached the shop": each of its conditions --------------------


@pytest.mark.parametrize(
    ("later_message", "refused"),
    [
        ("a newer status, sent", True),
        ("a newer status, failed too", False),
        ("a newer comment, sent", False),
        ("an older status, sent", False),
        ("a newer status of another order, sent", False),
    ],
)
def test_a_status_is_replayed_unless_a_newer_status_of_its_order_reached_the_shop(
    db_session: Session, later_message: str, refused: bool
) -> None:
    shop = make_shop(db_session)
    order, other_order = make_order(db_session, shop), make_order(db_session, shop)
    if later_message == "an older status, sent":
        make_message(db_session, order, state=OutboxState.SENT)
    dead = make_message(db_session, order, status="processing")
    if later_message == "a newer status, sent":
        make_message(db_session, order, state=OutboxState.SENT)
    elif later_message == "a newer status, failed too":
        make_message(db_session, order, state=OutboxState.FAILED)
    elif later_message == "a newer comment, sent":
        make_message(db_session, order, state=OutboxState.SENT).kind = outbox.COMMENT
    elif later_message == "a newer status of another order, sent":
        make_message(db_session, other_order, state=OutboxState.SENT)
    db_session.flush()

    if refused:
        with pytest.raises(InvalidTransition) as refusal:
            outbox.retry(db_session, dead, PERSON)
        assert refusal.value.action == "retry"
        assert refusal.value.reason == "a newer status was already sent to the shop"
        assert dead.state == OutboxState.DEAD
    else:
        outbox.retry(db_session, dead, PERSON)
        assert dead.state == OutboxState.PENDING and dead.attempts == 0


# --- People acting on messages: refusals and what the timeline says ------------------------


def test_a_failed_message_being_sent_again_cannot_be_retried_or_ignored(
    db_session: Session,
) -> None:
    order = make_order(db_session, make_shop(db_session))
    message = make_message(db_session, order, state=OutboxState.FAILED, attempts=2)
    message.claimed_until = utcnow() + outbox.LEASE  # a dispatcher holds it right now
    for act, name in ((outbox.retry, "retry"), (outbox.ignore, "ignore")):
        with pytest.raises(InvalidTransition) as refused:
            act(db_session, message, PERSON)
        assert refused.value.action == name
        assert refused.value.reason == "it is being sent right now; try again in a moment"
    assert message.state == OutboxState.FAILED and message.attempts == 2


def test_ignoring_a_message_by_hand_lets_the_next_one_of_its_order_go_out_now(
    db_session: Session,
) -> None:
    order = make_order(db_session, make_shop(db_session))
    stuck = make_message(db_session, order)
    waiting = make_message(db_session, order, state=OutboxState.PENDING, attempts=0)
    waiting.next_attempt_at = utcnow() - dt.timedelta(minutes=1)
    db_session.info.pop("comptoir.announce", None)

    outbox.ignore(db_session, stuck, Actor.system("Camille"))

    assert stuck.state == OutboxState.IGNORED
    announced = db_session.info.pop("comptoir.announce", [])
    assert [work.id for work in announced] == [waiting.id]
    event = db_session.scalars(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "outbox.ignored"
        )
    ).one()
    assert event.details["by_hand"] is True and event.details["message_id"] == stuck.id
    assert event.details["via"] == "Camille"


def test_a_shipment_or_document_message_whose_subject_is_gone_is_not_retried(
    db_session: Session,
) -> None:
    order = make_order(db_session, make_shop(db_session))
    gone = {"shipment_id": 404, "number": "EXP-9"}, {"document_id": 404, "reference": "F-9"}
    for kind, payload, reason in (
        (outbox.SHIPMENT, gone[0], "its shipment no longer exists"),
        (outbox.DOCUMENT, gone[1], "its document no longer exists"),
    ):
        message = make_message(db_session, order)
        message.kind, message.payload = kind, payload
        with pytest.raises(InvalidTransition) as refused:
            outbox.retry(db_session, message, PERSON)
        assert refused.value.reason == reason
        assert message.state == OutboxState.DEAD


def test_a_cancellation_the_buyer_is_not_told_of_reaches_shopify_without_its_email(
    db_session: Session,
    session_factory: sessionmaker[Session],
    shopify: Shop,
    shopify_emulator: ShopifyEmulator,
) -> None:
    data = shopify_emulator.add_order(fixture("shopify", "order-fr-relay-point.json"))
    order = import_order(db_session, shopify, str(data["id"]))
    order_actions.perform(db_session, order, "cancel", PERSON, reason="Doublon", notify=False)
    db_session.commit()

    outbox.dispatch_due(session_factory)

    [cancel] = shopify_emulator.requests_to("POST", f"/orders/{order.external_id}/cancel.json")
    assert cancel.json() == {"reason": "other", "email": False}


# --- Messages with nothing left to tell ----------------------------------------------------


def _due_message(session: Session, kind: str, payload: dict[str, Any]) -> OutboxMessage:
    shop = make_shop(session, show_documents_in_account=True)
    message = make_message(
        session, make_order(session, shop), state=OutboxState.PENDING, attempts=0
    )
    message.kind, message.payload = kind, payload
    message.next_attempt_at = utcnow() - dt.timedelta(minutes=1)
    session.commit()
    return message


def test_a_document_message_whose_document_is_gone_is_ignored_with_its_reason(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    message = _due_message(db_session, outbox.DOCUMENT, {"document_id": 404, "reference": "F"})
    assert outbox.deliver(session_factory, message.id) == OutboxState.IGNORED
    db_session.expire_all()
    assert message.last_error == "Its document no longer exists."
    assert message.attempts == 0 and message.sent_at is None


def test_a_shipment_that_has_not_left_the_warehouse_is_not_told(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    message = _due_message(db_session, outbox.SHIPMENT, {})
    order = message.order
    assert order is not None
    order.lines.append(make_line("SKU-9", 1, external_id="L9"))
    order.commercial_state = CommercialState.VALIDATED
    order.shipping_mode = ensure_default_shipping_modes(db_session)["colissimo"]
    db_session.flush()
    packed = shipments.create_shipment(db_session, order, PERSON, ship=False)
    assert packed.state in (ShipmentState.DRAFT, ShipmentState.PACKED)
    message.payload = {"shipment_id": packed.id, "number": packed.number}
    db_session.commit()

    assert outbox.deliver(session_factory, message.id) == OutboxState.IGNORED
    db_session.expire_all()
    assert message.last_error == (
        "The shipment has not left the warehouse: nothing to tell the shop."
    )
