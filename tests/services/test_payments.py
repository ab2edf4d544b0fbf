"""Money entered by hand, as the person typing it sees it: what is read from what they typed,
the message shown when it is refused, the date recorded, and which shop payments count.

tests/services/test_order_work.py follows a payment through the order's states; these tests
pin the words and the edges (issue 13, item 14: mutation testing found them unasserted)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_line, make_order
from web.models import OrderEvent, PaymentMethodMapping, Shop, Transaction, User, utcnow
from web.models.enums import Role, TransactionKind, TransactionSource
from web.models.orders import Order
from web.services import payments, shops
from web.services.errors import ValidationFailed
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor
from web.services.users import create_user


@pytest.fixture()
def shop(db_session: Session) -> Shop:
    shop = shops.create_shop(db_session, "woocommerce", "Thés", "https://thes.example.com")
    db_session.flush()
    return shop


@pytest.fixture()
def actor(db_session: Session) -> Actor:
    user: User
    user, _ = create_user(db_session, "compta@example.com", Role.MANAGER, "x" * 12, "Compta")
    return Actor.for_user(user)


@pytest.fixture()
def order(db_session: Session, shop: Shop) -> Order:
    return make_order(db_session, shop, lines=[make_line(unit_price="100.00")])


def refusal(session: Session, order: Order, actor: Actor, **entry: object) -> dict[str, str]:
    values: dict[str, object] = {"kind": "payment", "source": "cash", "amount": "10"}
    values.update(entry)
    with pytest.raises(ValidationFailed) as refused:
        payments.record_manual(session, order, actor, **values)  # type: ignore[arg-type]
    assert order.transactions == []
    return refused.value.errors


@pytest.mark.parametrize(
    ("typed", "read"),
    [
        ("12.50", "12.50"),
        ("12,5", "12.50"),
        (" 1 234,56 ", "1234.56"),
        ("1\u00a0234", "1234.00"),  # a French thousands separator
        (12.5, "12.50"),
        (Decimal("7"), "7.00"),
        ("999999999.99", "999999999.99"),
        ("0.01", "0.01"),
    ],
)
def test_amounts_are_read_as_people_type_them(typed: object, read: str) -> None:
    amount = payments.parse_amount(typed)
    assert amount == Decimal(read) and str(amount) == read


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        (None, "Give the amount, for example 12.50."),
        (False, "Give the amount, for example 12.50."),
        ("", "Give the amount as a number, for example 12.50."),
        ("douze", "Give the amount as a number, for example 12.50."),
        ("NaN", "Give the amount as a number, for example 12.50."),
        ("-Infinity", "Give the amount as a number, for example 12.50."),
        ("0", "The amount must be above zero."),
        ("-3", "The amount must be above zero."),
        ("1000000000", "The amount is too large."),
        ("12.345", "Use at most two decimals."),
    ],
)
def test_each_unreadable_amount_says_what_to_type(typed: object, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        payments.parse_amount(typed)
    assert refused.value.errors == {"amount": message}
    assert str(refused.value) == message


def test_a_payment_is_recorded_as_typed_with_its_event(
    db_session: Session, order: Order, actor: Actor
) -> None:
    paid = payments.record_manual(
        db_session,
        order,
        actor,
        kind="payment",
        source="bank_transfer",
        amount="40,00",
        reference="  VIR 2026-118  ",
    )
    assert (paid.kind, paid.source, paid.method) == (
        TransactionKind.SALE,
        TransactionSource.BANK_TRANSFER,
        "bank_transfer",
    )
    assert paid.amount == Decimal("40.00") and paid.currency == order.currency
    assert paid.reference == "VIR 2026-118"
    assert paid.external_id is not None and paid.external_id.startswith("manual:")
    refund = payments.record_manual(
        db_session, order, actor, kind="refund", source="cheque", amount="15"
    )
    assert refund.kind == TransactionKind.REFUND and refund.external_id != paid.external_id
    events = db_session.scalars(
        select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    ).all()
    recorded = [
        (e.kind, e.details) for e in events if e.kind in ("payment.recorded", "payment.refunded")
    ]
    assert recorded == [
        (
            "payment.recorded",
            {
                "transaction_id": paid.id,
                "amount": "40.00",
                "currency": order.currency,
                "source": "bank_transfer",
                "reference": "VIR 2026-118",
            },
        ),
        (
            "payment.refunded",
            {
                "transaction_id": refund.id,
                "amount": "15.00",
                "currency": order.currency,
                "source": "cheque",
                "reference": "",
            },
        ),
    ]


def test_money_is_recorded_in_the_orders_currency(
    db_session: Session, shop: Shop, actor: Actor
) -> None:
    swiss = make_order(db_session, shop, currency="CHF")
    paid = payments.record_manual(
        db_session, swiss, actor, kind="payment", source="cash", amount="5"
    )
    db_session.flush()
    db_session.expire(paid)
    assert paid.currency == "CHF"


def test_each_refused_entry_says_why_on_its_field(
    db_session: Session, order: Order, actor: Actor
) -> None:
    assert refusal(db_session, order, actor, kind="gift") == {
        "kind": "Choose a payment or a refund."
    }
    how = "Choose how the money moved: transfer, cheque, cash or other."
    assert refusal(db_session, order, actor, source="shop") == {"source": how}
    assert refusal(db_session, order, actor, source="paypal") == {"source": how}
    assert refusal(db_session, order, actor, reference="x" * 201) == {
        "reference": "Keep the reference under 200 characters."
    }
    assert refusal(db_session, order, actor, kind="refund", amount="0.01") == {
        "amount": "A refund cannot exceed the money received and not yet refunded."
    }
    kept = payments.record_manual(
        db_session, order, actor, kind="payment", source="other", amount="1", reference="x" * 200
    )
    assert len(kept.reference) == 200


def test_a_refund_may_take_back_exactly_what_is_left(
    db_session: Session, order: Order, actor: Actor
) -> None:
    payments.record_manual(db_session, order, actor, kind="payment", source="cash", amount="30")
    payments.record_manual(db_session, order, actor, kind="refund", source="cash", amount="10")
    last = payments.record_manual(
        db_session, order, actor, kind="refund", source="cash", amount="20.00"
    )
    assert last.amount == Decimal("20.00")
    with pytest.raises(ValidationFailed):
        payments.record_manual(
            db_session, order, actor, kind="refund", source="cash", amount="0.01"
        )


@pytest.fixture()
def server_far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own clock 14 hours ahead of UTC: nothing may depend on it."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_far_east")
def test_the_date_recorded_is_the_moment_given_or_noon_of_the_day_given(
    db_session: Session, order: Order, actor: Actor
) -> None:
    def entered(when: dt.date | dt.datetime | None) -> dt.datetime:
        t = payments.record_manual(
            db_session, order, actor, kind="payment", source="cash", amount="1", occurred_at=when
        )
        return t.occurred_at.astimezone(dt.UTC)

    before = utcnow()
    assert before <= entered(None) <= utcnow()
    assert before <= entered(payments.today()) <= utcnow()  # today: now, not noon
    moment = dt.datetime(2026, 2, 10, 9, 30, tzinfo=DESK_TZ)
    assert entered(moment) == moment.astimezone(dt.UTC)
    assert entered(dt.datetime(2026, 2, 10, 9, 30)) == dt.datetime(
        2026, 2, 10, 9, 30, tzinfo=dt.UTC
    )
    # Summer time in Paris: noon there is 10:00 UTC.
    assert entered(dt.date(2025, 7, 14)) == dt.datetime(2025, 7, 14, 10, tzinfo=dt.UTC)
    assert entered(dt.date(2000, 1, 1)) == dt.datetime(2000, 1, 1, 11, tzinfo=dt.UTC)
    soon = utcnow() + dt.timedelta(minutes=4)  # a clock a little ahead is not the future
    assert entered(soon) == soon


def test_dates_in_the_future_or_before_2000_are_refused(
    db_session: Session, order: Order, actor: Actor
) -> None:
    future = {"occurred_at": "The date cannot be in the future."}
    later = utcnow() + dt.timedelta(minutes=6)
    assert refusal(db_session, order, actor, occurred_at=later) == future
    tomorrow = payments.today() + dt.timedelta(days=1)
    assert refusal(db_session, order, actor, occurred_at=tomorrow) == future
    old = {"occurred_at": "Give a date after 2000."}
    assert refusal(db_session, order, actor, occurred_at=dt.date(1999, 12, 31)) == old
    moment = dt.datetime(1999, 12, 31, 23, tzinfo=dt.UTC)
    assert refusal(db_session, order, actor, occurred_at=moment) == old


@pytest.mark.parametrize("server_zone", ["Etc/GMT+12", "Etc/GMT-14"])
def test_today_is_the_merchants_day_wherever_the_server_is(
    monkeypatch: pytest.MonkeyPatch, server_zone: str
) -> None:
    # A server far from Paris: its own date differs from the merchant's most of the day.
    monkeypatch.setenv("TZ", server_zone)
    time.tzset()
    try:
        assert payments.today() == utcnow().astimezone(DESK_TZ).date()
    finally:
        monkeypatch.undo()
        time.tzset()


def test_which_shop_payments_count_as_money_received(
    db_session: Session, shop: Shop, order: Order
) -> None:
    shop.payment_mappings.clear()
    for method, counts in (("stripe", True), ("cod", False), ("bacs", True)):
        shop.payment_mappings.append(
            PaymentMethodMapping(shop_method=method, label=method, counts_as_payment=counts)
        )
    order.payment_method = "bacs"
    assert payments.payment_mapping(shop, "cod") is not None
    assert payments.payment_mapping(shop, "paypal") is None

    def counts(method: str, source: TransactionSource = TransactionSource.SHOP) -> bool:
        paid = Transaction(kind=TransactionKind.SALE, amount=Decimal("1"), method=method)
        paid.source = source
        return payments.payment_counter(shop, order)(paid)

    assert counts("stripe") and not counts("cod")
    assert counts("Carte bancaire")  # a method the mappings do not know: the order's (bacs)
    assert counts("")  # no method: the order's
    assert counts("cod", TransactionSource.CASH)  # money entered by hand always counts
    order.payment_method = "cod"
    assert not counts("Carte bancaire") and not counts("")
    order.payment_method = "unknown"
    assert not counts("Carte bancaire")
