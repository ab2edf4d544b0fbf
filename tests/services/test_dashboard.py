from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy.orm import Session

from tests.factories import make_line, make_order, make_shop
from web.models import InboxEvent, OutboxMessage
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    InboxState,
    OutboxState,
    PaymentState,
)
from web.services.dashboard import (
    DayCount,
    chart_axis,
    chart_bars,
    needs_attention,
    orders_per_day,
    state_counts,
)

UTC = dt.UTC


def at(day: int, hour: int = 10, minute: int = 0, month: int = 3) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=UTC)


# --- State counts ----------------------------------------------------------------------------


def test_state_counts_on_an_empty_database_lists_every_state_at_zero(db_session: Session) -> None:
    counts = state_counts(db_session)

    assert counts["commercial"] == dict.fromkeys(["new", "validated", "closed", "cancelled"], 0)
    assert set(counts["fulfilment"]) == {state.value for state in FulfilmentState}
    assert set(counts["payment"]) == {state.value for state in PaymentState}
    assert not any(counts["fulfilment"].values()) and not any(counts["payment"].values())
    assert (counts["total"], counts["on_hold"], counts["needs_mapping"]) == (0, 0, 0)
    assert counts["ready_to_prepare"] == 0


def test_state_counts_count_each_axis_and_flag(db_session: Session) -> None:
    shop = make_shop(db_session)
    ready = {
        "commercial_state": CommercialState.VALIDATED,
        "payment_state": PaymentState.PAID,
    }
    make_order(db_session, shop, **ready)
    make_order(db_session, shop, fulfilment_state=FulfilmentState.IN_PREPARATION, **ready)
    make_order(db_session, shop, on_hold=True, **ready)
    make_order(db_session, shop, needs_mapping=True, needs_review=True)
    make_order(
        db_session,
        shop,
        commercial_state=CommercialState.CANCELLED,
        payment_state=PaymentState.REFUNDED,
    )

    counts = state_counts(db_session)

    assert counts["commercial"] == {"new": 1, "validated": 3, "closed": 0, "cancelled": 1}
    assert counts["fulfilment"] == {
        "unfulfilled": 4,
        "in_preparation": 1,
        "partially_shipped": 0,
        "shipped": 0,
        "delivered": 0,
    }
    assert counts["payment"] == {
        "unpaid": 1,
        "partially_paid": 0,
        "paid": 3,
        "partially_refunded": 0,
        "refunded": 1,
    }
    assert counts["total"] == 5
    assert (counts["on_hold"], counts["needs_mapping"], counts["needs_review"]) == (1, 1, 1)
    assert counts["ready_to_prepare"] == 2


# --- Orders per day --------------------------------------------------------------------------


def test_orders_per_day_has_every_day_oldest_first_with_zeros(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, placed_at=at(3), lines=[make_line(unit_price="12.50")])
    make_order(db_session, shop, placed_at=at(3, 15), lines=[make_line(unit_price="7.50")])
    make_order(db_session, shop, placed_at=at(5))
    make_order(db_session, shop, placed_at=at(1))  # before the window

    series = orders_per_day(db_session, days=4, today=dt.date(2026, 3, 5))

    assert series == [
        DayCount(dt.date(2026, 3, 2), 0, Decimal("0.00")),
        DayCount(dt.date(2026, 3, 3), 2, Decimal("20.00")),
        DayCount(dt.date(2026, 3, 4), 0, Decimal("0.00")),
        DayCount(dt.date(2026, 3, 5), 1, Decimal("10.00")),
    ]


def test_orders_per_day_counts_in_paris_local_days(db_session: Session) -> None:
    shop = make_shop(db_session)
    # 23:30 UTC on the 1st is 00:30 on the 2nd in Paris.
    make_order(db_session, shop, placed_at=at(1, 23, 30))
    # 22:59 UTC on the 1st is still the 1st (23:59 in Paris).
    make_order(db_session, shop, placed_at=at(1, 22, 59))
    # 23:00 UTC on the 2nd is already the 3rd in Paris: outside a window ending on the 2nd.
    make_order(db_session, shop, placed_at=at(2, 23, 0))

    series = orders_per_day(db_session, days=2, today=dt.date(2026, 3, 2))

    assert [(day.date.day, day.count) for day in series] == [(1, 1), (2, 1)]


def test_orders_per_day_other_time_zone(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, placed_at=at(1, 23, 30))

    series = orders_per_day(db_session, days=2, today=dt.date(2026, 3, 2), tz="UTC")

    assert [(day.date.day, day.count) for day in series] == [(1, 1), (2, 0)]


def test_orders_per_day_in_a_zone_half_an_hour_off_utc(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, placed_at=at(1, 18, 20))  # 23:50 in Kolkata
    make_order(db_session, shop, placed_at=at(1, 18, 40))  # 00:10 the next day

    series = orders_per_day(db_session, days=2, today=dt.date(2026, 3, 2), tz="Asia/Kolkata")

    assert [(day.date.day, day.count) for day in series] == [(1, 1), (2, 1)]


def test_orders_per_day_leaves_cancelled_orders_out_of_revenue(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, placed_at=at(2))
    make_order(db_session, shop, placed_at=at(2), commercial_state=CommercialState.CANCELLED)

    (day,) = orders_per_day(db_session, days=1, today=dt.date(2026, 3, 2))

    assert (day.count, day.revenue) == (2, Decimal("10.00"))


def test_orders_per_day_defaults_to_thirty_days_ending_today(db_session: Session) -> None:
    series = orders_per_day(db_session)

    assert len(series) == 30
    assert series[-1].date - series[0].date == dt.timedelta(days=29)
    assert all(day.count == 0 for day in series)


# --- Needs attention -------------------------------------------------------------------------


def test_needs_attention_lists_every_kind_newest_first(db_session: Session) -> None:
    shop = make_shop(db_session, name="Boutique Lumière")
    held = make_order(db_session, shop, number="#1", on_hold=True, hold_reason="Adresse à vérifier")
    unmapped = make_order(
        db_session,
        shop,
        number="#2",
        needs_mapping=True,
        mapping_issues=[{"kind": "carrier", "value": "Colissimo Relais", "label": ""}],
    )
    review = make_order(db_session, shop, number="#3", needs_review=True)
    make_order(db_session, shop, number="#4")
    held.updated_at = at(10)
    unmapped.updated_at = at(12)
    review.updated_at = at(9)
    db_session.add_all(
        [
            InboxEvent(
                shop=shop,
                topic="orders/updated",
                dedupe_key="parked-1",
                raw_body=b"{}",
                state=InboxState.PARKED,
                error="unknown status 'wc-custom'",
                received_at=at(11),
                order_id=unmapped.id,
            ),
            InboxEvent(
                shop=shop,
                topic="orders/create",
                dedupe_key="failed-1",
                raw_body=b"{}",
                state=InboxState.FAILED,
                error="bad JSON",
                received_at=at(8),
            ),
            InboxEvent(
                shop=shop,
                topic="orders/create",
                dedupe_key="fine-1",
                raw_body=b"{}",
                state=InboxState.PROCESSED,
                received_at=at(13),
            ),
            OutboxMessage(
                shop=shop,
                order_id=held.id,
                kind="push_tracking",
                idempotency_key="out-1",
                state=OutboxState.DEAD,
                last_error="401 Unauthorized",
                created_at=at(7),
            ),
            OutboxMessage(
                shop=shop,
                kind="push_status",
                idempotency_key="out-2",
                state=OutboxState.FAILED,
                last_error="timeout",
                created_at=at(6),
            ),
            OutboxMessage(
                shop=shop,
                kind="push_status",
                idempotency_key="out-3",
                state=OutboxState.SENT,
                created_at=at(14),
            ),
        ]
    )
    db_session.flush()

    items = needs_attention(db_session)

    assert items[0].mapping_issues == [
        {"kind": "carrier", "value": "Colissimo Relais", "label": ""}
    ]
    assert [(item.kind, item.title, item.detail) for item in items] == [
        ("needs_mapping", "#2", ""),
        ("inbox", "orders/updated", "unknown status 'wc-custom'"),
        ("on_hold", "#1", "Adresse à vérifier"),
        ("needs_review", "#3", ""),
        ("inbox", "orders/create", "bad JSON"),
        ("outbox", "push_tracking", "401 Unauthorized"),
        ("outbox", "push_status", "timeout"),
    ]
    assert [item.order_id for item in items] == [
        unmapped.id,
        unmapped.id,
        held.id,
        review.id,
        None,
        held.id,
        None,
    ]
    assert {item.shop_name for item in items} == {"Boutique Lumière"}
    assert items[0].occurred_at == at(12)


def test_needs_attention_keeps_the_newest_up_to_the_limit(db_session: Session) -> None:
    shop = make_shop(db_session)
    for day in range(1, 6):
        order = make_order(db_session, shop, on_hold=True, hold_reason=f"day {day}")
        order.updated_at = at(day)
    db_session.flush()

    items = needs_attention(db_session, limit=3)

    assert [item.detail for item in items] == ["day 5", "day 4", "day 3"]


def test_needs_attention_is_empty_when_all_is_well(db_session: Session) -> None:
    make_order(db_session, make_shop(db_session))

    assert needs_attention(db_session) == []


# --- Chart -----------------------------------------------------------------------------------


def days_with(counts: list[int], start: dt.date = dt.date(2026, 3, 2)) -> list[DayCount]:
    return [
        DayCount(start + dt.timedelta(days=offset), count, Decimal("0"))
        for offset, count in enumerate(counts)
    ]


def test_chart_axis_rounds_the_top_to_readable_ticks() -> None:
    def ticks(peak: int) -> list[int]:
        return [tick.value for tick in chart_axis(days_with([peak]), 100).ticks]

    assert ticks(13) == [0, 5, 10, 15]
    assert ticks(3) == [0, 1, 2, 3]
    assert ticks(7) == [0, 2, 4, 6, 8]
    assert ticks(20) == [0, 5, 10, 15, 20]
    assert ticks(95) == [0, 50, 100]
    assert ticks(0) == [0, 1]


def test_chart_axis_places_ticks_from_the_bottom() -> None:
    axis = chart_axis(days_with([13]), 150)

    assert axis.max_count == 15
    assert [(tick.value, tick.y) for tick in axis.ticks] == [
        (0, 150),
        (5, 100),
        (10, 50),
        (15, 0),
    ]


def test_chart_bars_fill_the_width_and_scale_to_the_axis() -> None:
    # 2026-03-06 is a Friday: the 7th and 8th are the weekend.
    bars = chart_bars(days_with([0, 5, 10, 15], start=dt.date(2026, 3, 6)), 400, 150)

    assert [(bar.x, bar.w) for bar in bars] == [(10, 80), (110, 80), (210, 80), (310, 80)]
    assert [(bar.y, bar.h) for bar in bars] == [(150, 0), (100, 50), (50, 100), (0, 150)]
    assert [bar.label for bar in bars] == ["6", "7", "8", "9"]
    assert [bar.is_weekend for bar in bars] == [False, True, True, False]
    assert [bar.count for bar in bars] == [0, 5, 10, 15]


def test_chart_bars_of_a_quiet_month_stay_flat() -> None:
    bars = chart_bars(days_with([0] * 30), 300, 100)

    assert len(bars) == 30
    assert all(bar.h == 0 and bar.y == 100 for bar in bars)
    assert chart_bars([], 300, 100) == []


def test_chart_of_the_real_series(db_session: Session) -> None:
    shop = make_shop(db_session)
    for hour in range(3):
        make_order(db_session, shop, placed_at=at(4, 8 + hour))

    series = orders_per_day(db_session, days=7, today=dt.date(2026, 3, 8))
    bars = chart_bars(series, 700, 100)

    assert [bar.count for bar in bars] == [0, 0, 3, 0, 0, 0, 0]
    assert bars[2].h == 100


def test_chart_bars_are_placed_to_the_hundredth() -> None:
    bars = chart_bars(days_with([1, 2, 3]), 300, 100)

    assert [(bar.y, bar.h) for bar in bars] == [(66.67, 33.33), (33.33, 66.67), (0, 100)]


def test_an_order_that_does_not_add_up_needs_attention_with_both_figures(
    db_session: Session,
) -> None:
    shop = make_shop(db_session, name="Boutique Lumière")
    order = make_order(db_session, shop, number="#5")
    order.computed_total = Decimal("64.66")
    order.grand_total = Decimal("64.67")
    db_session.flush()

    (item,) = needs_attention(db_session)

    assert (item.kind, item.title, item.order_id) == ("totals_mismatch", "#5", order.id)
    assert item.detail == "64.66 ≠ 64.67 EUR"
