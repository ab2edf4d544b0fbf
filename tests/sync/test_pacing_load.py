"""A burst of Shopify orders against a shop that enforces its leaky bucket, worked by two
workers that share the shop's pacing only through the database.

The default run is COMPTOIR_PACING_ORDERS=150 deliveries with the emulator's bucket (40)
leaking COMPTOIR_PACING_RATE=10 requests per second, and the shop set to the same rate;
`COMPTOIR_PACING_ORDERS=1000 COMPTOIR_PACING_RATE=50 pytest tests/sync/test_pacing_load.py
-s` is the full burst of issue 8 and prints its figures.
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.emulators.shopify import ShopifyEmulator
from web.db import make_engine, make_session_factory
from web.models import CarrierMapping, InboxEvent, Order, OutboxMessage, ShopPacing
from web.models.enums import InboxState, OutboxState, PaymentState
from web.services import intake, outbox, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import process_pending

ORDERS = int(os.environ.get("COMPTOIR_PACING_ORDERS", "150"))
CALLS_PER_SECOND = Decimal(os.environ.get("COMPTOIR_PACING_RATE", "10"))
WORKERS = 2
# A guard against a hang only: a loaded machine applies a few deliveries per second.
DEADLINE = 120.0 + ORDERS * 1.0
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "shopify" / "order-fr-relay-point.json"


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[str]:
    url = separate_database_url(tmp_path, "pacing_load")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


def _orders(emulator: ShopifyEmulator, count: int) -> list[dict[str, Any]]:
    base = json.loads(FIXTURE.read_text())
    base = base.get("order", base)
    stored = []
    for n in range(count):
        order = copy.deepcopy(base)
        order["id"] = 7_000_000_000_000 + n
        order["name"] = f"#{10_000 + n}"
        order["order_number"] = order["number"] = 10_000 + n
        order["email"] = order["contact_email"] = f"buyer{n}@example.fr"
        order["customer"] = {**order["customer"], "id": 8_000_000_000_000 + n}
        order["customer"]["email"] = order["email"]
        order = emulator.add_order(order)
        emulator.set_transactions(
            order["id"],
            [
                {
                    "id": 9_000_000_000_000 + n,
                    "kind": "sale",
                    "status": "success",
                    "amount": order["total_price"],
                    "currency": "EUR",
                    "gateway": "shopify_payments",
                    "created_at": order["created_at"],
                }
            ],
        )
        stored.append(order)
    return stored


def _open_work(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(InboxEvent)
            .where(InboxEvent.state.in_((InboxState.PENDING, InboxState.FAILED)))
        )
        or 0
    ) + (
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.state.in_((OutboxState.PENDING, OutboxState.FAILED)))
        )
        or 0
    )


def _worker(url: str, shop_id: int, deadline: float, errors: list[BaseException]) -> None:
    """One worker process's loop: its own engine, so its own connections and pacer."""
    engine = make_engine(url)
    sessions = make_session_factory(engine)
    try:
        while time.monotonic() < deadline:
            done = process_pending(sessions, shop_id) + outbox.dispatch_due(sessions, shop_id)
            if done:
                continue
            with sessions() as session:
                if _open_work(session) == 0:
                    return
            time.sleep(0.05)  # a retry is scheduled later: wait for it
    except BaseException as exc:  # reported by the test, not lost in the thread
        errors.append(exc)
    finally:
        engine.dispose()


def test_a_burst_of_orders_meets_the_shops_bucket_without_a_storm_or_a_dead_message(
    database: str, encryption_key: str
) -> None:
    engine = make_engine(database)
    sessions = make_session_factory(engine)
    emulator = ShopifyEmulator(bucket_capacity=40, leak_rate=float(CALLS_PER_SECOND))
    with emulator:
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "shopify",
                "Maison Lumière",
                emulator.base_url,
                api_key=emulator.access_token,
                webhook_secret=emulator.webhook_secret,
            )
            shop.api_calls_per_second = CALLS_PER_SECOND
            modes = ensure_default_shipping_modes(session)
            shop.carrier_mappings.append(
                CarrierMapping(
                    shop_label="Mondial Relay - Point Relais",
                    shipping_mode=modes["mondial_relay"],
                )
            )
            session.flush()
            shop_id = shop.id
        stored = _orders(emulator, ORDERS)

        started = time.monotonic()
        for first in range(0, ORDERS, 100):
            with sessions.begin() as session:
                shop = shops.get_by_key(session, shop.key)
                for order in stored[first : first + 100]:
                    body, headers = emulator.webhook("orders/create", order["id"])
                    assert intake.receive_webhook(session, shop, body, headers).event is not None
        received = time.monotonic() - started
        assert emulator.requests == [], "storing a delivery calls the shop"

        errors: list[BaseException] = []
        deadline = time.monotonic() + DEADLINE
        workers = [
            threading.Thread(target=_worker, args=(database, shop_id, deadline, errors))
            for _ in range(WORKERS)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        worked = time.monotonic() - started - received
        assert errors == []

        with sessions() as session:
            states = dict(
                session.execute(
                    select(InboxEvent.state, func.count()).group_by(InboxEvent.state)
                ).all()
            )
            assert states == {InboxState.PROCESSED: states.get(InboxState.PROCESSED, 0)}, states
            dead = session.scalar(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.state != OutboxState.SENT)
            )
            assert dead == 0
            orders = {
                order.external_id: order
                for order in session.scalars(
                    select(Order).options(
                        selectinload(Order.lines),
                        selectinload(Order.transactions),
                        selectinload(Order.customer),
                    )
                )
            }
            assert len(orders) == ORDERS
            for sent in stored:
                order = orders[str(sent["id"])]
                assert order.number == sent["name"]
                assert order.grand_total == Decimal(sent["total_price"])
                assert [line.sku for line in order.lines] == ["LIV-CUIS-01", "TAB-LIN-BLE-M"]
                assert order.customer is not None and order.customer.email == sent["email"]
                assert [t.amount for t in order.transactions] == [Decimal(sent["total_price"])]
                assert order.payment_state == PaymentState.PAID
            pacing = session.scalars(select(ShopPacing)).one()
        calls = len(emulator.requests)
        # The pacer keeps two requests of the 40 free and counts its own reservations
        # before they leave: the shop's bucket never fills, so it never refuses.
        assert emulator.refusals == 0, f"{emulator.refusals} refusals in {calls} calls"
        assert pacing.refusals == 0 and pacing.capacity == 40
        # Paced, not throttled to a crawl: the calls took about what the bucket allows.
        floor = (calls - 38) / float(CALLS_PER_SECOND)
        print(
            f"\n{engine.dialect.name}: {ORDERS} deliveries stored in {received:.1f} s; "
            f"{WORKERS} workers applied them in {worked:.1f} s (bucket floor {floor:.1f} s) "
            f"with {calls} calls to the shop, {emulator.refusals} answered 429, "
            f"bucket at most {emulator.peak}/40"
        )
        assert worked >= floor * 0.9
    engine.dispose()
