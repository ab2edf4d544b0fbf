"""Small, deterministic builders of shops, customers and orders for tests.

Every builder takes the session first, adds and flushes what it builds (so ids exist), and
accepts keyword overrides for any model attribute. Defaults never read the clock: numbers and
keys count what the session already holds, times start from a fixed instant.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.models import Customer, InboxEvent, Order, OrderLine, OutboxMessage, Shop
from web.models.enums import InboxState, OutboxState, Platform
from web.services import outbox

BASE_TIME = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
"""Default placed_at of orders: a fixed Monday morning, never the real clock."""

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)
"""The sync builders' "now": deliveries and messages are dated minutes before it."""


def _count(session: Session, model: type[Any]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


def make_shop(
    session: Session,
    key: str | None = None,
    platform: Platform | str = Platform.SHOPIFY,
    **overrides: Any,
) -> Shop:
    """Add a shop; the key defaults to shop-<n>, n counting the shops already there."""
    key = key or f"shop-{_count(session, Shop) + 1}"
    values: dict[str, Any] = {
        "name": f"Shop {key}",
        "base_url": f"https://{key}.example.test",
    }
    values.update(overrides)
    shop = Shop(key=key, platform=Platform(platform), **values)
    session.add(shop)
    session.flush()
    return shop


def make_customer(
    session: Session,
    email: str | None = None,
    first_name: str = "Jean",
    last_name: str = "Dupont",
    **overrides: Any,
) -> Customer:
    """Add a customer; the e-mail defaults to customer<n>@example.test."""
    if email is None:
        email = f"customer{_count(session, Customer) + 1}@example.test"
    customer = Customer(email=email, first_name=first_name, last_name=last_name, **overrides)
    session.add(customer)
    session.flush()
    return customer


def make_line(
    sku: str = "SKU-1",
    quantity: int = 1,
    unit_price: Decimal | str = "10.00",
    **overrides: Any,
) -> OrderLine:
    """Build an order line (not added: give it to make_order)."""
    price = Decimal(unit_price)
    total = price * quantity
    values: dict[str, Any] = {
        "name": f"Article {sku}",
        "tax_rate": Decimal("20"),
        "total_gross": total,
        "total_net": (total / Decimal("1.2")).quantize(Decimal("0.01")),
    }
    values["tax_amount"] = total - values["total_net"]
    values.update(overrides)
    return OrderLine(sku=sku, quantity=quantity, unit_price=price, **values)


def make_order(
    session: Session,
    shop: Shop,
    lines: list[OrderLine] | None = None,
    customer: Customer | None = None,
    **overrides: Any,
) -> Order:
    """Add an order to the shop with its lines (one 10.00 line by default).

    The number and external id count the shop's orders (#1001, #1002, ...); the grand total
    is the sum of the lines unless given; billing names and e-mail come from the customer.
    """
    sequence = (
        session.scalar(select(func.count()).select_from(Order).where(Order.shop_id == shop.id)) or 0
    ) + 1
    lines = lines if lines is not None else [make_line()]
    for position, line in enumerate(lines):
        line.position = position
    placed_at = overrides.pop("placed_at", BASE_TIME)
    billing: dict[str, Any] = {}
    if customer is not None:
        billing = {"first_name": customer.first_name, "last_name": customer.last_name}
    values: dict[str, Any] = {
        "external_id": str(5000 + sequence),
        "number": f"#{1000 + sequence}",
        "email": customer.email if customer is not None and customer.email else "",
        "customer": customer,
        "placed_at": placed_at,
        "shop_updated_at": placed_at,
        "billing_address": billing,
        "shipping_address": dict(billing),
        "subtotal": sum((line.total_gross for line in lines), Decimal("0.00")),
        "grand_total": sum((line.total_gross for line in lines), Decimal("0.00")),
    }
    values.update(overrides)
    order = Order(shop=shop, lines=lines, **values)
    session.add(order)
    session.flush()
    return order


def make_event(
    session: Session,
    shop: Shop,
    *,
    topic: str = "orders/updated",
    state: InboxState = InboxState.PROCESSED,
    body: bytes = b'{"id": 1}',
    minutes_ago: int = 0,
    external_order_id: str | None = None,
    error: str = "",
) -> InboxEvent:
    """Add a delivery from the shop, received `minutes_ago` before NOW (failed ones retry)."""
    count = _count(session, InboxEvent)
    event = InboxEvent(
        shop=shop,
        topic=topic,
        dedupe_key=f"key-{count}",
        external_order_id=external_order_id,
        raw_body=body,
        headers={"x-shopify-topic": topic},
        received_at=NOW - dt.timedelta(minutes=minutes_ago),
        state=state,
        attempts=3 if state == InboxState.FAILED else 1,
        next_attempt_at=NOW if state == InboxState.FAILED else None,
        error=error,
    )
    session.add(event)
    session.flush()
    return event


def make_message(
    session: Session,
    order: Order,
    *,
    state: OutboxState = OutboxState.DEAD,
    minutes_ago: int = 0,
    attempts: int = outbox.MAX_ATTEMPTS,
    error: str = "PlatformUnavailable: GET /orders/5001: connection refused",
    status: str = "completed",
) -> OutboxMessage:
    """Add a status update for the order's shop, given up by default, written before NOW."""
    count = _count(session, OutboxMessage)
    message = OutboxMessage(
        shop_id=order.shop_id,
        order_id=order.id,
        kind=outbox.STATUS,
        payload={"milestone": "shipped", "status": status, "notify": True},
        idempotency_key=f"status:{order.id}:{count}",
        state=state,
        attempts=attempts,
        next_attempt_at=NOW + dt.timedelta(minutes=5),
        last_error=error if state in outbox.PROBLEM_STATES else "",
        created_at=NOW - dt.timedelta(minutes=minutes_ago),
    )
    session.add(message)
    session.flush()
    return message
