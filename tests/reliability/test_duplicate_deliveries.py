"""Drill 7: webhook deliveries sent again and out of order reach the state of sending each once,
in order.

Orders on a Shopify and a WooCommerce emulator go through their lives (created, updated,
paid, cancelled); every change is captured as the signed delivery the shop would POST. The
deliveries plus 20 % duplicates (the same delivery again, as a shop's retry) are shuffled and
POSTed over real HTTP to a live Comptoir on loopback, and its worker applies the inbox. A
fresh database is sent the distinct deliveries once each, in order. The orders, their lines,
payments, states, timeline facts and outbox messages must be equal; the drill counts what was
lost and what was duplicated, prints both and asserts they are zero.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select
from werkzeug.serving import make_server

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import drill_size, shopify_shop, woocommerce_shop
from web.app import create_app
from web.db import make_engine
from web.models import (
    CarrierMapping,
    InboxEvent,
    Order,
    OrderEvent,
    OrderLine,
    OutboxMessage,
    Shop,
    Transaction,
)
from web.models.enums import InboxState
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import process_pending

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
DUPLICATE_SHARE = 0.2
# Partial: an order refunded in full before the desk saw it paid is never validated, while
# one seen paid first was (the desk does not go back in time), so a full refund's final
# state depends on the order the deliveries came in by design.
PARTIAL_REFUND = "10.00"
# The path an order took to its final state, as its timeline tells it: a copy older than the
# one applied is noted as stale, a newer one as an update, each payment state passed through
# as a change. Which copies and states a shuffled run sees depends on the order they came in,
# so these are counted apart and not compared (the final payment state is).
PATH_KINDS = frozenset({"inbox.stale", "order.updated_by_shop", "payment.state_changed"})


@dataclass(frozen=True)
class Delivery:
    platform: str
    body: bytes
    headers: dict[str, str]


def fixture(platform: str, name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / platform / name).read_text())
    order: dict[str, Any] = data.get("order", data)
    order.pop("id", None)
    return order


# --- The shops' side: orders living their lives, each change a signed delivery ---------------


def shopify_lives(shop: ShopifyEmulator, orders: int, rng: random.Random) -> list[Delivery]:
    base = fixture("shopify", "order-fr-relay-point.json")
    base.update(financial_status="pending", cancelled_at=None, cancel_reason=None)
    deliveries: list[Delivery] = []

    def send(topic: str, order_id: Any) -> None:
        deliveries.append(Delivery("shopify", *shop.webhook(topic, order_id)))

    for n in range(orders):
        stored = shop.add_order({**base, "name": f"#S{n}", "order_number": 10_000 + n})
        order_id = stored["id"]
        shop.set_transactions(order_id, [])
        send("orders/create", order_id)
        shop.update_order(order_id, note=f"Sonner {n} fois")
        send("orders/updated", order_id)
        if rng.random() < 0.3:
            shop.update_order(
                order_id,
                cancelled_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                cancel_reason="customer",
                financial_status="voided",
            )
            send("orders/cancelled", order_id)
            continue
        order = shop.orders[str(order_id)]
        shop.set_transactions(order_id, [shop._transaction(order, "sale", order["total_price"])])
        shop.update_order(order_id, financial_status="paid")
        send("orders/paid", order_id)
        if rng.random() < 0.3:
            refund = shop._transaction(order, "refund", PARTIAL_REFUND)
            shop.set_transactions(order_id, [*shop.transactions[str(order_id)], refund])
            shop.update_order(
                order_id,
                financial_status="partially_refunded",
                refunds=[{"id": refund["id"], "note": "Retour", "transactions": [refund]}],
            )
            send("orders/updated", order_id)
    return deliveries


def woo_lives(shop: WooCommerceEmulator, orders: int, rng: random.Random) -> list[Delivery]:
    base = fixture("woocommerce", "fr-order-relay-coupon-refund.json")
    base.update(status="pending", date_paid=None, date_paid_gmt=None, transaction_id="", refunds=[])
    deliveries: list[Delivery] = []

    def send(topic: str, order_id: str) -> None:
        deliveries.append(Delivery("woocommerce", *shop.webhook(topic, order_id)))

    for n in range(orders):
        order_id = shop.add_order({**base, "number": f"W{n}"})
        shop.update_order(order_id)  # stamped now, strictly later than the fixture's date
        send("order.created", order_id)
        shop.update_order(order_id, customer_note=f"Sonner {n} fois")
        send("order.updated", order_id)
        if rng.random() < 0.3:
            shop.update_order(order_id, status="cancelled")
            send("order.updated", order_id)
            continue
        paid = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat()
        shop.update_order(
            order_id,
            status="processing",
            date_paid=paid,
            date_paid_gmt=paid,
            transaction_id=f"ch_{order_id}",
        )
        send("order.updated", order_id)
        if rng.random() < 0.3:
            refund = {"id": 700_000 + n, "reason": "Retour", "total": f"-{PARTIAL_REFUND}"}
            shop.update_order(order_id, refunds=[refund])
            send("order.updated", order_id)
    return deliveries


# --- Comptoir's side: a live app over loopback HTTP, its worker applying the inbox -----------


class LiveComptoir:
    """A migrated database of its own, served over loopback by a threaded WSGI server."""

    def __init__(self, tmp: Path, name: str, encryption_key: str) -> None:
        url = separate_database_url(tmp, name)
        engine = make_engine(url)
        reset_schema(engine)
        engine.dispose()
        migrate(url)
        self.app = create_app(
            {
                "DATABASE_URL": url,
                "INSTANCE_PATH": str(tmp / name),
                "SECRET_KEY": "drill-7",
                "ENCRYPTION_KEY": encryption_key,
                "ALLOW_PRIVATE_SHOP_URLS": True,
            }
        )
        self.sessions = self.app.extensions["comptoir.sessions"]
        self.engine: Engine = self.app.extensions["comptoir.engine"]
        self._server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_port}"

    def add_shops(self, shopify: ShopifyEmulator, woo: WooCommerceEmulator) -> None:
        with self.sessions.begin() as session:
            modes = ensure_default_shipping_modes(session)
            made = shopify_shop(session, shopify, key="shopify")
            made.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Mondial Relay - Point Relais", shipping_mode=modes["mondial_relay"]
                )
            )
            made = woocommerce_shop(session, woo, key="woocommerce")
            made.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Mondial Relay - Point Relais®",
                    shipping_mode=modes["mondial_relay"],
                )
            )

    def post_all(self, deliveries: list[Delivery]) -> Counter[str]:
        """POST each delivery, one connection kept alive; the answers' statuses counted."""
        answers: Counter[str] = Counter()
        with httpx.Client(base_url=self.base_url, timeout=30) as http:
            for delivery in deliveries:
                url = f"/hooks/{delivery.platform}/{delivery.platform}"
                response = http.post(url, content=delivery.body, headers=delivery.headers)
                assert response.status_code == 200, response.text[:300]
                answers[response.json()["status"]] += 1
        return answers

    def apply_inbox(self) -> None:
        """The worker's inbox pass, until nothing is due (follow-ups read the shops)."""
        while process_pending(self.sessions, limit=10_000):
            pass
        with self.sessions() as session:
            waiting = session.scalars(
                select(InboxEvent).where(InboxEvent.state != InboxState.PROCESSED)
            ).all()
            assert not waiting, [(e.topic, e.state, e.error) for e in waiting]

    def close(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)
        self.engine.dispose()


# --- What is compared ------------------------------------------------------------------------

# Set by the desk when it processed a delivery, not by what the shops said.
LOCAL_COLUMNS = frozenset(
    {
        "id",
        "order_id",
        "shop_id",
        "customer_id",
        "created_at",
        "updated_at",
        "validated_at",
        "cancelled_at",
        "closed_at",
        "created_by_id",
        "next_attempt_at",
        "claimed_until",
        "sent_at",
    }
)


def columns(row: Any, table: Any) -> tuple[Any, ...]:
    return tuple(
        (column.name, str(getattr(row, column.name)))
        for column in table.columns
        if column.name not in LOCAL_COLUMNS
    )


def state_of(live: LiveComptoir) -> dict[str, Counter[Any]]:
    """Every fact the deliveries left, keyed by shop and order as the shops name them."""
    with live.sessions() as session:
        orders = {
            order.id: (order.shop.key, order.external_id)
            for order in session.scalars(select(Order).join(Shop))
        }
        found: dict[str, Counter[Any]] = {}
        for name, model in (
            ("orders", Order),
            ("lines", OrderLine),
            ("payments", Transaction),
            ("outbox", OutboxMessage),
        ):
            table = model.__table__
            key = "id" if model is Order else "order_id"
            found[name] = Counter(
                (orders.get(getattr(row, key)), columns(row, table))
                for row in session.execute(select(table))
            )
        timeline: Counter[Any] = Counter()
        path: Counter[Any] = Counter()
        for event in session.scalars(select(OrderEvent)):
            fact = (orders[event.order_id], event.kind, event.actor_type.value)
            (path if event.kind in PATH_KINDS else timeline)[fact] += 1
        found["timeline"] = timeline
        found["path"] = path
    return found


def differences(name: str, fact: Any, extra: Counter[Any]) -> tuple[Any, ...]:
    """A lost fact, and how the same order's row that came instead differs from it."""
    if name == "timeline":
        return ("lost", name, fact)
    owner, wanted = fact
    for other_owner, other in extra:
        if other_owner == owner:
            changed = [(w, o) for w, o in zip(wanted, other, strict=False) if w != o]
            return ("changed", name, owner, changed)
    return ("lost", name, fact)


def lost_and_duplicated(
    expected: dict[str, Counter[Any]], got: dict[str, Counter[Any]]
) -> tuple[dict[str, int], dict[str, int], list[Any]]:
    lost: dict[str, int] = {}
    duplicated: dict[str, int] = {}
    examples: list[Any] = []
    for name, wanted in expected.items():
        if name == "path":
            continue
        missing = wanted - got[name]
        extra = got[name] - wanted
        lost[name] = sum(missing.values())
        duplicated[name] = sum(extra.values())
        examples += [differences(name, fact, extra) for fact in list(missing)[:3]]
        examples += [("extra", name, fact) for fact in list(extra)[:3]]
    return lost, duplicated, examples


# --- The drill --------------------------------------------------------------------------------


@pytest.fixture()
def emulators() -> Iterator[tuple[ShopifyEmulator, WooCommerceEmulator]]:
    # A bucket that never fills: the drill is about duplicates, not Shopify's rate limit.
    with (
        ShopifyEmulator(bucket_capacity=1_000_000, leak_rate=1_000_000.0) as shopify,
        WooCommerceEmulator() as woo,
    ):
        yield shopify, woo  # type: ignore[misc]


def test_shuffled_duplicated_deliveries_reach_the_in_order_state(
    emulators: tuple[ShopifyEmulator, WooCommerceEmulator],
    tmp_path: Path,
    encryption_key: str,
) -> None:
    shopify, woo = emulators
    total = drill_size(60, 10_000)
    distinct_wanted = round(total / (1 + DUPLICATE_SHARE))
    rng = random.Random(7)
    # About 3.2 deliveries per order's life.
    orders = max(2, round(distinct_wanted / 3.2))
    distinct = shopify_lives(shopify, orders // 2, rng) + woo_lives(woo, orders - orders // 2, rng)
    again = rng.choices(distinct, k=round(len(distinct) * DUPLICATE_SHARE))
    shuffled = distinct + again
    rng.shuffle(shuffled)

    runs: dict[str, dict[str, Counter[Any]]] = {}
    answers: dict[str, Counter[str]] = {}
    for name, sent in (("in_order", distinct), ("shuffled", shuffled)):
        live = LiveComptoir(tmp_path, f"drill7_{name}", encryption_key)
        try:
            live.add_shops(shopify, woo)
            answers[name] = live.post_all(sent)
            live.apply_inbox()
            runs[name] = state_of(live)
        finally:
            live.close()

    lost, duplicated, examples = lost_and_duplicated(runs["in_order"], runs["shuffled"])
    print(
        f"\ndrill 7: {len(shuffled)} deliveries ({len(distinct)} distinct, {len(again)} again, "
        f"shuffled) for {orders} orders; answers {dict(answers['shuffled'])}; "
        f"lost {sum(lost.values())} {lost}; duplicated {sum(duplicated.values())} {duplicated}"
    )
    assert answers["in_order"] == {"stored": len(distinct)}
    assert answers["shuffled"] == {"stored": len(distinct), "duplicate": len(again)}
    assert not examples, examples[:12]
    assert sum(lost.values()) == 0 and sum(duplicated.values()) == 0
    # The check is not vacuous: every order arrived, paid ones with their payment.
    assert sum(runs["in_order"]["orders"].values()) == orders
    assert sum(runs["in_order"]["payments"].values()) > 0
