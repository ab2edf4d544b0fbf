"""The dashboard's state counts kept by triggers (web/state_counts.py) against a plain count."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_order, make_shop
from web import state_counts
from web.models import Order, OrderStateCount
from web.models.enums import CommercialState, FulfilmentState, PaymentState
from web.services.dashboard import state_counts as dashboard_counts


def counted(session: Session) -> Counter[tuple[object, ...]]:
    """The combinations as a plain GROUP BY over every order counts them."""
    session.flush()
    states = [getattr(Order, name) for name in state_counts.STATES]
    rows = session.execute(select(*states, func.count()).group_by(*states))
    return Counter({tuple(row[:-1]): row[-1] for row in rows})


def kept(session: Session) -> Counter[tuple[object, ...]]:
    session.flush()
    return Counter({tuple(row[:-1]): row[-1] for row in state_counts.read(session)})


def test_the_counts_follow_inserts_state_changes_flags_and_deletes(db_session: Session) -> None:
    shop = make_shop(db_session)
    first = make_order(db_session, shop)
    second = make_order(db_session, shop, payment_state=PaymentState.PAID)
    third = make_order(db_session, shop, needs_mapping=True)
    assert kept(db_session) == counted(db_session)
    assert dashboard_counts(db_session)["commercial"]["new"] == 3

    first.commercial_state = CommercialState.VALIDATED
    second.on_hold = True
    third.needs_mapping = False
    third.needs_review = True
    assert kept(db_session) == counted(db_session)
    counts = dashboard_counts(db_session)
    assert (counts["commercial"]["new"], counts["commercial"]["validated"]) == (2, 1)
    assert (counts["on_hold"], counts["needs_mapping"], counts["needs_review"]) == (1, 0, 1)

    # Written without the ORM (a bulk action's UPDATE), then deleted.
    db_session.execute(
        update(Order)
        .where(Order.id.in_([first.id, second.id]))
        .values(fulfilment_state=FulfilmentState.SHIPPED)
    )
    db_session.execute(delete(Order).where(Order.id == third.id))
    db_session.expire_all()
    assert kept(db_session) == counted(db_session)
    counts = dashboard_counts(db_session)
    assert counts["total"] == 2
    assert counts["fulfilment"]["shipped"] == 2
    assert counts["needs_review"] == 0


def test_an_update_that_changes_no_state_writes_no_row(db_session: Session) -> None:
    order = make_order(db_session, make_shop(db_session))
    db_session.flush()
    rows = db_session.scalar(select(func.count()).select_from(OrderStateCount))
    order.buyer_note = "Laisser chez le voisin"
    order.commercial_state = CommercialState.NEW  # the state it has
    db_session.flush()
    assert db_session.scalar(select(func.count()).select_from(OrderStateCount)) == rows


def test_compacting_keeps_every_count_in_one_row_per_combination(db_session: Session) -> None:
    shop = make_shop(db_session)
    orders = [make_order(db_session, shop) for _ in range(4)]
    for order in orders[:3]:
        order.commercial_state = CommercialState.VALIDATED
    db_session.flush()
    for order in orders[:3]:
        order.commercial_state = CommercialState.CANCELLED
    before = counted(db_session)

    state_counts.compact(db_session.connection())

    assert kept(db_session) == before
    rows = db_session.execute(select(OrderStateCount.commercial_state, OrderStateCount.delta))
    # "validated" was taken and left by three orders: nothing left of it.
    assert sorted(tuple(row) for row in rows) == [("cancelled", 3), ("new", 1)]


def test_rebuild_counts_orders_written_without_the_triggers(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop)
    make_order(db_session, shop, payment_state=PaymentState.PAID)
    db_session.flush()
    db_session.execute(delete(OrderStateCount))
    assert kept(db_session) == Counter()

    state_counts.rebuild(db_session.connection())

    assert kept(db_session) == counted(db_session)
    assert dashboard_counts(db_session)["payment"]["paid"] == 1


def test_the_sync_pass_compacts_only_past_the_threshold(
    session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(state_counts, "COMPACT_AT", 5)
    with session_factory.begin() as session:
        shop = make_shop(session)
        orders = [make_order(session, shop) for _ in range(3)]
        session.flush()
        for order in orders:
            order.payment_state = PaymentState.PAID  # 3 + 6 rows
        session.flush()
        expected = counted(session)

    assert state_counts.compact_if_needed(session_factory) is True

    with session_factory() as session:
        assert kept(session) == expected
        assert session.scalar(select(func.count()).select_from(OrderStateCount)) == 1
    assert state_counts.compact_if_needed(session_factory) is False


def test_the_triggers_are_in_the_database_not_in_the_orm(db_session: Session) -> None:
    shop = make_shop(db_session)
    db_session.flush()
    # An order inserted by plain SQL, as a shop import or a repair script would.
    order = make_order(db_session, shop)
    db_session.flush()
    db_session.execute(
        text("UPDATE orders SET payment_state = 'paid', on_hold = :yes WHERE id = :id"),
        {"yes": True, "id": order.id},
    )
    assert kept(db_session) == counted(db_session)
    assert dashboard_counts(db_session)["on_hold"] == 1
