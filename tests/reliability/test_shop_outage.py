"""Drill 9: the shops fail for a while, then recover; the outbox delivers everything once.

Orders imported from WooCommerce, Shopify, Magento and PrestaShop emulators are cancelled,
every other one after a customer comment: one or two outbox messages each; others are shipped
with a tracking number (the shipment, then the status it moves). The shops then go
down: every request in turn is answered 500 or 503, hangs past the push timeout, is refused
429 with Retry-After, or is let through; and each round one write of each kind is acted on and
its answer dropped mid-body. The dispatcher runs round after round on its own clock, fewer
rounds than MAX_ATTEMPTS, then the shops come back and it runs until nothing is due. One more
order's shop refuses its cancellation at every attempt: its message alone is dead.

Counted per message: the requests the shop accepted (acted on) for it, which must be one;
lost (never accepted), duplicated (accepted twice), dead letters other than the expected one,
and retries scheduled before a Retry-After ran out. All zero, printed and asserted.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.base import Emulator, Failure, Fault
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, record_from_element
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import drill_size, shopify_shop, woocommerce_shop
from web.models import Order, OutboxMessage, Shop, ShopPacing, utcnow
from web.models.enums import CommercialState, OutboxState
from web.services import comments, intake, order_actions, outbox, shipments, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
PERSON = Actor.system("drill")
RETRY_AFTER = 30
HANG = 0.8
# Short, to keep the drill quick; still far above what a loopback answer takes.
PUSH_TIMEOUT = 0.5
OUTAGE_ROUNDS = 5
assert OUTAGE_ROUNDS < outbox.MAX_ATTEMPTS
# One request in turn gets each: the outage as a shop's failing load balancer shows it.
OUTAGE = (
    Fault(status=500),
    Fault(status=504, delay=HANG, failure=Failure.HANG),
    Fault(status=200, failure=Failure.CUT),
    Fault(failure=Failure.SKIP),
    Fault(status=503),
    # Last: the pacing then holds back the shop's other calls for the rest of the round.
    Fault(status=429, retry_after=str(RETRY_AFTER)),
)


def fixture(platform: str, name: str) -> dict[str, Any]:
    """An order of the fixtures without its ids: the emulator gives each copy its own."""
    data = json.loads((FIXTURES / platform / name).read_text())
    order: dict[str, Any] = copy.deepcopy(data.get("order", data))
    for key in ("id", "entity_id", "increment_id"):
        order.pop(key, None)
    return order


@dataclass
class Platform:
    """One shop of the drill: its emulator, and how its requests name a message's effect."""

    name: str
    emulator: Emulator
    shop: Shop
    add_order: Callable[[int], str]
    # (method, path) of the write that applies a cancellation, of the one carrying a comment.
    cancel_write: Callable[[str], tuple[str, str]]
    comment_write: Callable[[str], tuple[str, str]]
    # The write that shows a shipment's tracking number (in its body) at the shop.
    shipment_write: tuple[str, str]
    # What the cancellation's body holds when its path does not name the order.
    cancel_body: Callable[[str], str] = lambda external_id: ""

    def accepted(self, write: tuple[str, str], text: str = "") -> int:
        method, path = write
        return sum(
            1
            for request in self.emulator.accepted(method, path)
            if text in request.body.decode(errors="replace")
        )


Emulators = tuple[WooCommerceEmulator, ShopifyEmulator, MagentoEmulator, PrestaShopEmulator]
PRESTASHOP_RELATED = (
    "fr-customers.xml",
    "fr-addresses.xml",
    "fr-order_details.xml",
    "fr-order_payments.xml",
    "fr-messages.xml",
    "fr-order_histories.xml",
)


@pytest.fixture()
def emulators() -> Iterator[Emulators]:
    # A bucket that never fills: the drill is about outages, not Shopify's rate limit.
    with (
        WooCommerceEmulator() as woo,
        ShopifyEmulator(bucket_capacity=1_000_000, leak_rate=1_000_000.0) as shopify,
        MagentoEmulator() as magento,
        PrestaShopEmulator() as prestashop,
    ):
        yield woo, shopify, magento, prestashop  # type: ignore[misc]


def prestashop_orders(prestashop: PrestaShopEmulator) -> Callable[[int], str]:
    """Copies of the fixtures' order 101, each its own id and reference, sharing its lines."""
    for name in PRESTASHOP_RELATED:
        prestashop.load((FIXTURES / "prestashop" / name).read_bytes())
    element = ElementTree.fromstring((FIXTURES / "prestashop" / "fr-order-101.xml").read_bytes())
    order = record_from_element(element.find("order"))

    def add(n: int) -> str:
        copied = {**copy.deepcopy(order), "id": str(2000 + n), "reference": f"DRILL{n:05d}"}
        external_id = prestashop.add_order(copied)
        prestashop.add_order_carrier(external_id)  # where a tracking number goes
        return external_id

    return add


def platforms(session: Session, emulators: Emulators) -> list[Platform]:
    woo, shopify, magento, prestashop = emulators
    woo_shop = woocommerce_shop(session, woo)
    the_shopify_shop = shopify_shop(session, shopify)
    magento_shop = shops.create_shop(
        session, "magento", "Papeterie", magento.base_url, api_key=magento.token
    )
    prestashop_shop = shops.create_shop(
        session, "prestashop", "Épicerie Fine", prestashop.base_url, api_key=DEFAULT_KEY
    )
    session.commit()
    magento_order = fixture("magento", "fr-order-company-bundle.json")
    woo_order = fixture("woocommerce", "fr-order-company-bundle.json")
    shopify_order = fixture("shopify", "order-fr-relay-point.json")
    return [
        Platform(
            "woocommerce",
            woo,
            woo_shop,
            lambda n: woo.add_order({**woo_order, "status": "processing", "number": f"W{n}"}),
            lambda order_id: ("PUT", f"/orders/{order_id}"),
            lambda order_id: ("POST", f"/orders/{order_id}/notes"),
            ("POST", "/shipment-trackings"),  # the Shipment Tracking extension
        ),
        Platform(
            "shopify",
            shopify,
            the_shopify_shop,
            lambda n: str(shopify.add_order({**shopify_order, "name": f"#S{n}"})["id"]),
            lambda order_id: ("POST", f"/orders/{order_id}/cancel.json"),
            lambda order_id: ("PUT", f"/orders/{order_id}.json"),
            ("POST", "/fulfillments.json"),
        ),
        Platform(
            "magento",
            magento,
            magento_shop,
            lambda n: str(magento.add_order(copy.deepcopy(magento_order))["entity_id"]),
            lambda order_id: ("POST", f"/V1/orders/{order_id}/cancel"),
            lambda order_id: ("POST", f"/V1/orders/{order_id}/comments"),
            ("POST", "/ship"),
        ),
        Platform(
            "prestashop",
            prestashop,
            prestashop_shop,
            prestashop_orders(prestashop),
            # A new order history moves the order's state; a public message in its thread.
            lambda order_id: ("POST", "/api/order_histories"),
            lambda order_id: ("POST", "/api/customer_messages"),
            ("PUT", "/api/order_carriers/"),
            lambda order_id: f"<id_order>{order_id}</id_order>",
        ),
    ]


def import_order(session: Session, shop: Shop, external_id: str) -> Order:
    incoming = shops.connector_for(shop).fetch_order(external_id)
    outcome = intake.upsert_order(session, shop, incoming, Actor.shop(shop.name))
    assert outcome.order is not None
    return outcome.order


def clock_passes_retry_after(session: Session) -> None:
    """The dispatcher's clock jumps hours ahead each round: the shops' Retry-After blocks and
    API buckets, kept on the real clock for every process, have run out and leaked as well."""
    session.execute(update(ShopPacing).values(blocked_until=None, level=0.0))
    session.commit()


def messages(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_shops_failing_then_recovering_get_every_message_once(
    emulators: Emulators,
    db_session: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(outbox, "PUSH_TIMEOUT", PUSH_TIMEOUT)
    woo = emulators[0]
    per_shop = drill_size(2, 40)
    drill = platforms(db_session, emulators)
    # (platform, external id, comment text) of every order worked on the desk.
    worked: list[tuple[Platform, str, str]] = []
    for platform in drill:
        for n in range(per_shop):
            order = import_order(db_session, platform.shop, platform.add_order(n))
            # Every other order gets a comment before its cancellation, which waits for it.
            text = f"Colis {platform.name} {n} : départ retardé" if n % 2 == 0 else ""
            if text:
                comments.add_comment(db_session, order, PERSON, text, "customer")
            order_actions.perform(db_session, order, "cancel", PERSON, reason="Rupture")
            db_session.commit()
            worked.append((platform, order.external_id, text))
    # Orders shipped with a tracking number each: the shipment, then the status it moves.
    shipped: list[tuple[Platform, str]] = []
    colissimo = ensure_default_shipping_modes(db_session)["colissimo"]  # as chosen at packing
    for platform in drill:
        for n in range(per_shop):
            order = import_order(db_session, platform.shop, platform.add_order(100 + n))
            tracking = f"6A{len(shipped) + 1:011d}"
            if order.commercial_state == CommercialState.NEW:  # not paid at the shop yet
                order_actions.perform(db_session, order, "validate", PERSON)
            parcel = shipments.ParcelInput(tracking)
            shipments.create_shipment(
                db_session, order, PERSON, None, [parcel], colissimo, ship=True
            )
            db_session.commit()
            shipped.append((platform, tracking))
    # One more WooCommerce order whose cancellation the shop refuses at every attempt.
    doomed = import_order(db_session, drill[0].shop, drill[0].add_order(per_shop))
    order_actions.perform(db_session, doomed, "cancel", PERSON, reason="Rupture")
    db_session.commit()
    for platform in drill:
        platform.emulator.requests.clear()
    method, path = drill[0].cancel_write(doomed.external_id)
    woo.fail_next(*[502] * outbox.MAX_ATTEMPTS, path_contains=path, method=method)

    now = utcnow()
    rate_limited = 0
    early = 0
    for platform in drill:
        platform.emulator.go_down(*OUTAGE)
    for _ in range(OUTAGE_ROUNDS):
        clock_passes_retry_after(db_session)
        # Each round, one write of each kind lands but its answer is lost.
        for platform in drill:
            for verb in {platform.cancel_write("")[0], platform.comment_write("")[0]}:
                platform.emulator.cut_next(method=verb)
            platform.emulator.cut_next(method=platform.shipment_write[0])
        started = time.monotonic()
        outbox.dispatch_due(session_factory, now=now, limit=10_000)
        # A 429's Retry-After holds back the message it answered and, through the shop's
        # pacing, every later call to that shop in the round: the wait left when it was
        # refused is at least the Retry-After less the round's time so far.
        least = dt.timedelta(seconds=RETRY_AFTER - (time.monotonic() - started))
        for message in messages(db_session):
            if message.state == OutboxState.FAILED and "RateLimited" in message.last_error:
                rate_limited += 1
                early += message.next_attempt_at < now + least
        now += outbox.MAX_DELAY + dt.timedelta(seconds=1)
    during = [m.state for m in messages(db_session)]
    for platform in drill:
        platform.emulator.come_back()
    for _ in range(outbox.MAX_ATTEMPTS + 2):
        clock_passes_retry_after(db_session)
        outbox.dispatch_due(session_factory, now=now, limit=10_000)
        now += outbox.MAX_DELAY + dt.timedelta(seconds=1)
    for platform in drill:
        platform.emulator.wait_idle()

    lost = duplicated = 0
    for platform, external_id, text in worked:
        writes = [
            platform.accepted(platform.cancel_write(external_id), platform.cancel_body(external_id))
        ]
        if text:
            writes.append(platform.accepted(platform.comment_write(external_id), text))
        for accepted in writes:
            lost += accepted == 0
            duplicated += max(0, accepted - 1)
    for platform, tracking in shipped:
        accepted = platform.accepted(platform.shipment_write, tracking)
        lost += accepted == 0
        duplicated += max(0, accepted - 1)
    final = messages(db_session)
    dead = [m for m in final if m.state == OutboxState.DEAD]
    doomed_ids = {m.id for m in final if m.order_id == doomed.id}
    wrongly_dead = [m.id for m in dead if m.id not in doomed_ids]
    unsent = [
        (m.id, m.kind, m.state.value, m.last_error)
        for m in final
        if m.id not in doomed_ids and m.state != OutboxState.SENT
    ]
    requests = sum(len(platform.emulator.requests) for platform in drill)
    failures = sum((platform.emulator.failures for platform in drill), Counter[Failure]())
    failed = {failure.value: count for failure, count in failures.items()}
    # Writes the shop acted on whose answer was lost: a retry must not write them again.
    cut_writes = sum(
        1
        for platform in drill
        for request in platform.emulator.requests
        if request.failure == Failure.CUT and request.method != "GET"
    )
    # Of them, shipments shown at the shop: a retry must find them, not show them again.
    cut_shipments = sum(
        1
        for platform in drill
        for request in platform.emulator.requests
        if request.failure == Failure.CUT
        and request.method == platform.shipment_write[0]
        and platform.shipment_write[1] in request.path
    )
    print(
        f"\ndrill 9: {len(final)} messages to {len(drill)} shops down for {OUTAGE_ROUNDS} rounds "
        f"({requests} requests, failed {failed}, {cut_writes} writes cut after the shop acted, "
        f"{cut_shipments} of them shipments, "
        f"{rate_limited} retries after a 429 or the pacing it set); lost {lost}, duplicated "
        f"{duplicated}, dead {len(dead)} (expected {len(doomed_ids)}), dead too early "
        f"{len(wrongly_dead)}, retried before Retry-After {early}"
    )
    assert (lost, duplicated, early) == (0, 0, 0)
    assert not wrongly_dead and not unsent, unsent
    # The doomed order's messages died after MAX_ATTEMPTS tries, not before.
    doomed_messages = [m for m in final if m.id in doomed_ids]
    assert [m.state for m in doomed_messages] == [OutboxState.DEAD]
    assert doomed_messages[0].attempts == outbox.MAX_ATTEMPTS
    assert drill[0].accepted((method, path)) == 0
    # The outage really bit: messages failed during it, some on a 429.
    assert OutboxState.FAILED in during and rate_limited > 0
    assert all(failures[failure] > 0 for failure in (Failure.ERROR, Failure.HANG, Failure.CUT))
    assert cut_writes > 0 and cut_shipments > 0
