"""The dashboard: order counts per state, orders per day, and what needs someone's attention."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypedDict
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, joinedload

from web import state_counts as state_counts_store
from web.models import InboxEvent, OutboxMessage
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    InboxState,
    OutboxState,
    PaymentState,
)
from web.models.orders import Order
from web.services.order_state import ready_to_prepare_clause

ZERO = Decimal("0.00")
CENT = Decimal("0.01")


class StateCounts(TypedDict):
    """Order counts keyed by state value ("new", "paid", ...), every state present."""

    commercial: dict[str, int]
    fulfilment: dict[str, int]
    payment: dict[str, int]
    total: int
    on_hold: int
    needs_mapping: int
    needs_review: int
    ready_to_prepare: int


@dataclass(frozen=True)
class DayCount:
    """Orders placed on one local day, and their revenue."""

    date: dt.date
    count: int
    revenue: Decimal


@dataclass(frozen=True)
class AttentionItem:
    """Something a person should look at: an order, an inbound event or an outbound message.

    kind is one of on_hold, needs_mapping, needs_review, totals_mismatch (lines, shipping and
    discounts that do not add up to the total; detail holds both figures), inbox, outbox; title
    names the thing (order number, webhook topic, message kind) and detail says what is wrong:
    words typed by a person or a technical text, or (rendered by the views) the order's mapping
    issues or the inbound event's cause.
    """

    kind: str
    title: str
    detail: str
    occurred_at: dt.datetime
    order_id: int | None
    shop_name: str
    source_id: int
    mapping_issues: list[dict[str, Any]] = field(default_factory=list)
    cause_kind: str = ""
    cause_params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Bar:
    """One day's bar in the SVG chart, in SVG user units (y grows downwards)."""

    x: float
    y: float
    w: float
    h: float
    label: str
    count: int
    is_weekend: bool
    date: dt.date


@dataclass(frozen=True)
class AxisTick:
    """One y-axis graduation and its height in the chart."""

    value: int
    y: float


@dataclass(frozen=True)
class Axis:
    """The y axis of the chart: its top value and its graduations from 0 upwards."""

    max_count: int
    ticks: list[AxisTick]


# --- Counts ----------------------------------------------------------------------------------


def _zeros(states: type[StrEnum]) -> dict[str, int]:
    return dict.fromkeys((state.value for state in states), 0)


def state_counts(session: Session) -> StateCounts:
    """Count orders per commercial, fulfilment and payment state, and the flagged ones."""
    # The combinations the triggers keep (web/state_counts.py), a few dozen added up here;
    # the ready orders from the warehouse queue's own index.
    counts = StateCounts(
        commercial=_zeros(CommercialState),
        fulfilment=_zeros(FulfilmentState),
        payment=_zeros(PaymentState),
        total=0,
        on_hold=0,
        needs_mapping=0,
        needs_review=0,
        ready_to_prepare=0,
    )
    for row in state_counts_store.read(session):
        commercial, fulfilment, payment, on_hold, needs_mapping, needs_review, count = row
        counts["commercial"][CommercialState(commercial).value] += count
        counts["fulfilment"][FulfilmentState(fulfilment).value] += count
        counts["payment"][PaymentState(payment).value] += count
        counts["total"] += count
        counts["on_hold"] += count if on_hold else 0
        counts["needs_mapping"] += count if needs_mapping else 0
        counts["needs_review"] += count if needs_review else 0
    ready = select(func.count()).select_from(Order).where(ready_to_prepare_clause())
    counts["ready_to_prepare"] = session.scalar(ready) or 0
    return counts


# --- Orders per day --------------------------------------------------------------------------


def orders_per_day(
    session: Session, days: int = 30, today: dt.date | None = None, tz: str = "Europe/Paris"
) -> list[DayCount]:
    """Count the orders placed on each of the last `days` local days, oldest first.

    Every day is present, zero or not. Revenue sums grand totals of orders not cancelled
    (in their own currencies: merchants here sell in one).
    """
    zone = ZoneInfo(tz)
    today = today or dt.datetime.now(zone).date()
    first = today - dt.timedelta(days=max(days, 1) - 1)
    start = dt.datetime.combine(first, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(today + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    counts = {first + dt.timedelta(days=offset): 0 for offset in range(max(days, 1))}
    revenue = dict.fromkeys(counts, ZERO)
    # Grouped by UTC hour in the database (in a zone a whole number of hours from UTC an hour
    # never straddles two local days), then by local day here, where the time-zone arithmetic
    # is the same for SQLite and PostgreSQL; in other zones, by the minute.
    whole_hours = all(
        (moment.utcoffset() or dt.timedelta()) % dt.timedelta(hours=1) == dt.timedelta()
        for moment in (start, end)
    )
    hour = _utc_hour(session, Order.placed_at, "%H:00" if whole_hours else "%H:%M")
    kept = case((Order.commercial_state == CommercialState.CANCELLED, 0), else_=Order.grand_total)
    rows = session.execute(
        select(hour, func.count(), func.sum(kept))
        .where(
            Order.placed_at >= start.astimezone(dt.UTC), Order.placed_at < end.astimezone(dt.UTC)
        )
        .group_by(hour)
    )
    for started, count, amount in rows:
        day = _as_utc(started).astimezone(zone).date()
        counts[day] += count
        # SQLite sums its numbers as floats: back to cents.
        revenue[day] += Decimal(str(amount or 0)).quantize(CENT)
    return [DayCount(date=day, count=counts[day], revenue=revenue[day]) for day in counts]


def _utc_hour(session: Session, column: Any, clock: str) -> ColumnElement[Any]:
    """The UTC hour (clock "%H:00") or minute ("%H:%M") of a time, as text."""
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime(f"%Y-%m-%d {clock}", column)
    return func.to_char(
        func.timezone("UTC", column),
        "YYYY-MM-DD " + clock.replace("%H", "HH24").replace("%M", "MI"),
    )


def _as_utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


# --- Needs attention -------------------------------------------------------------------------


def _flagged_orders(
    session: Session, kind: str, flag: Any, occurred: Any, reason: Any, limit: int
) -> list[AttentionItem]:
    orders = session.scalars(
        select(Order)
        .where(flag)
        .options(joinedload(Order.shop))
        .order_by(occurred.desc(), Order.id.desc())
        .limit(limit)
    )
    return [
        AttentionItem(
            kind=kind,
            title=order.number,
            detail=reason(order),
            occurred_at=getattr(order, occurred.key),
            order_id=order.id,
            shop_name=order.shop.name,
            source_id=order.id,
            mapping_issues=list(order.mapping_issues or []) if kind == "needs_mapping" else [],
        )
        for order in orders
    ]


def needs_attention(session: Session, limit: int = 20) -> list[AttentionItem]:
    """List what needs someone: held, unmapped, to-review and not-adding-up orders, stuck
    sync, newest first."""
    items = [
        *_flagged_orders(
            session,
            "on_hold",
            Order.on_hold.is_(True),
            Order.updated_at,
            lambda o: o.hold_reason,
            limit,
        ),
        *_flagged_orders(
            session,
            "needs_mapping",
            Order.needs_mapping.is_(True),
            Order.updated_at,
            lambda o: "",
            limit,
        ),
        *_flagged_orders(
            session,
            "needs_review",
            Order.needs_review.is_(True),
            Order.updated_at,
            lambda o: "",
            limit,
        ),
        *_flagged_orders(
            session,
            "totals_mismatch",
            Order.computed_total.is_not(None),
            Order.updated_at,
            lambda o: f"{o.computed_total} ≠ {o.grand_total} {o.currency}",
            limit,
        ),
    ]
    events = session.scalars(
        select(InboxEvent)
        .where(InboxEvent.state.in_([InboxState.PARKED, InboxState.FAILED]))
        .options(joinedload(InboxEvent.shop))
        .order_by(InboxEvent.received_at.desc(), InboxEvent.id.desc())
        .limit(limit)
    )
    items += [
        AttentionItem(
            kind="inbox",
            title=event.topic,
            detail=event.error,
            occurred_at=event.received_at,
            order_id=event.order_id,
            shop_name=event.shop.name,
            source_id=event.id,
            cause_kind=event.cause_kind,
            cause_params=dict(event.cause_params or {}),
        )
        for event in events
    ]
    messages = session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.state.in_([OutboxState.FAILED, OutboxState.DEAD]))
        .options(joinedload(OutboxMessage.shop))
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
        .limit(limit)
    )
    items += [
        AttentionItem(
            kind="outbox",
            title=message.kind,
            detail=message.last_error,
            occurred_at=message.created_at,
            order_id=message.order_id,
            shop_name=message.shop.name,
            source_id=message.id,
        )
        for message in messages
    ]
    items.sort(key=lambda item: (item.occurred_at, item.kind, item.source_id), reverse=True)
    return items[:limit]


# --- Chart -----------------------------------------------------------------------------------


def _axis_step(peak: int) -> int:
    rough = max(peak, 1) / 4
    magnitude = 10 ** math.floor(math.log10(rough)) if rough >= 1 else 1
    for multiple in (1, 2, 5, 10):
        if multiple * magnitude >= rough:
            return multiple * magnitude
    return 10 * magnitude


def chart_axis(days: Sequence[DayCount], height: float) -> Axis:
    """Choose a round top for the y axis (13 orders → 15) and its ticks (0, 5, 10, 15)."""
    peak = max((day.count for day in days), default=0)
    step = _axis_step(peak)
    top = max(math.ceil(peak / step), 1) * step
    ticks = [
        AxisTick(value=value, y=round(height - value / top * height, 2))
        for value in range(0, top + 1, step)
    ]
    return Axis(max_count=top, ticks=ticks)


def chart_bars(days: Sequence[DayCount], width: float, height: float) -> list[Bar]:
    """Lay out one bar per day for a server-rendered SVG chart of the given size."""
    if not days:
        return []
    top = chart_axis(days, height).max_count
    slot = width / len(days)
    gap = slot * 0.2
    bars = []
    for index, day in enumerate(days):
        bar_height = day.count / top * height
        bars.append(
            Bar(
                x=round(index * slot + gap / 2, 2),
                y=round(height - bar_height, 2),
                w=round(slot - gap, 2),
                h=round(bar_height, 2),
                label=str(day.date.day),
                count=day.count,
                is_weekend=day.date.weekday() >= 5,
                date=day.date,
            )
        )
    return bars
