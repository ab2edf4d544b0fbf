"""A WooCommerce shop for the drills: orders at the emulator, the shop in Comptoir's database,
and the signed order.created deliveries the shop sends."""

from __future__ import annotations

import copy
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import woocommerce_shop
from web.models import Order, OrderEvent, OrderLine, Shop, Transaction, utcnow
from web.services import intake, sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
FIXTURE = FIXTURES / "woocommerce" / "fr-order-company-bundle.json"


def add_orders(emulator: WooCommerceEmulator, first: int, count: int) -> list[str]:
    """`count` copies of the fixture order at the shop, numbered from `first`; their ids."""
    template = json.loads(FIXTURE.read_text())
    ids = []
    for number in range(first, first + count):
        payload = copy.deepcopy(template)
        payload["id"] = number
        payload["number"] = str(number)
        payload["status"] = "processing"
        ids.append(emulator.add_order(payload))
    return ids


def create_shop(sessions: sessionmaker[Session], emulator: WooCommerceEmulator) -> str:
    """The emulator's shop, its reconciliation poll just done (the drills send every order
    through the inbox themselves); its key."""
    with sessions.begin() as session:
        shop = woocommerce_shop(session, emulator)
        sync.cursor_for(session, shop).last_run_at = utcnow()
        return shop.key


def receive(sessions: sessionmaker[Session], emulator: WooCommerceEmulator, ids: list[str]) -> None:
    """Store the order.created deliveries of these orders, as the webhook view does."""
    with sessions.begin() as session:
        shop = session.scalars(select(Shop)).one()
        for external_id in ids:
            body, headers = emulator.webhook("order.created", external_id)
            intake.receive_webhook(session, shop, body, headers)


@dataclass(frozen=True)
class Applied:
    """What the inbox made of the shop's orders: orders missing (lost), orders, "received"
    facts, lines or payments beyond one application (duplicated), and orders stored without
    all their lines or payments (half-written)."""

    lost: int
    duplicated: int
    half_written: int


def applied(session: Session, external_ids: list[str], lines: int, payments: int) -> Applied:
    """Count against one application of each order: `lines` lines and `payments` payments."""
    orders = Counter(session.scalars(select(Order.external_id)))
    received = Counter(
        session.scalars(
            select(Order.external_id)
            .join(OrderEvent, OrderEvent.order_id == Order.id)
            .where(OrderEvent.kind == "order.received")
        )
    )
    line_counts = _per_order(session, OrderLine.id)
    payment_counts = _per_order(session, Transaction.id)
    stored = [ext for ext in external_ids if orders[ext]]
    return Applied(
        lost=sum(1 for ext in external_ids if not orders[ext] or not received[ext]),
        duplicated=sum(
            orders[ext]
            - 1
            + max(0, received[ext] - 1)
            + (line_counts[ext] > lines)
            + (payment_counts[ext] > payments)
            for ext in stored
        ),
        half_written=sum(
            (line_counts[ext] < lines) + (payment_counts[ext] < payments) for ext in stored
        ),
    )


def _per_order(session: Session, column: Any) -> Counter[str]:
    query = (
        select(Order.external_id, func.count(column))
        .select_from(Order)
        .outerjoin(column.table)
        .group_by(Order.external_id)
    )
    return Counter({ext: int(count) for ext, count in session.execute(query)})
