"""Order state rules: payment derivation, milestones, the preparation queue and manual actions."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import Order, OrderEvent, Shop, Transaction, User
from web.models.enums import (
    ActorType,
    CommercialState,
    FulfilmentState,
    Milestone,
    PaymentState,
    Platform,
    Role,
    TransactionKind,
    TransactionStatus,
)
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.order_state import (
    ACTIONS,
    allowed_actions,
    amount_due,
    apply_fulfilment,
    auto_validate,
    cancel,
    close,
    derive_payment_state,
    hold,
    is_paid_or_free,
    is_ready_to_prepare,
    mark_milestone_pushed,
    milestone,
    milestone_to_push,
    overpaid_amount,
    paid_amount,
    ready_to_prepare_clause,
    refresh_payment_state,
    refunded_amount,
    release,
    start_preparation,
    validate,
)
from web.services.timeline import Actor

C = CommercialState
F = FulfilmentState
P = PaymentState
M = Milestone
K = TransactionKind
S = TransactionStatus

TOTAL = Decimal("100.00")
FREE = Decimal("0.00")
ACTOR = Actor.system()

EVENT_KINDS = {
    "validate": "order.validated",
    "hold": "order.held",
    "release": "order.released",
    "prepare": "order.preparation_started",
    "cancel": "order.cancelled",
    "close": "order.closed",
}
NEEDS_REASON = {"hold", "cancel"}

EVERY_STATE = list(
    itertools.product(C, F, P, [False, True], [TOTAL, FREE]),
)
EVERY_STATE_IDS = [
    f"{c}-{f}-{p}-{'held' if h else 'free_to_go'}-{'total' if t else 'zero'}"
    for c, f, p, h, t in EVERY_STATE
]


def make_order(
    commercial: CommercialState = C.NEW,
    fulfilment: FulfilmentState = F.UNFULFILLED,
    payment: PaymentState = P.UNPAID,
    *,
    on_hold: bool = False,
    total: Decimal = TOTAL,
    last_pushed: Milestone | None = None,
) -> Order:
    """Build an unsaved order with every field the rules read set explicitly."""
    return Order(
        commercial_state=commercial,
        fulfilment_state=fulfilment,
        payment_state=payment,
        on_hold=on_hold,
        hold_reason="Address to check" if on_hold else "",
        grand_total=total,
        last_pushed_milestone=last_pushed,
        validated_at=None,
        closed_at=None,
        cancelled_at=None,
        cancel_reason="",
    )


def tx(
    kind: TransactionKind,
    amount: str,
    status: TransactionStatus = S.SUCCESS,
    method: str = "card",
) -> Transaction:
    return Transaction(kind=kind, status=status, amount=Decimal(amount), method=method)


def snapshot(order: Order) -> dict[str, Any]:
    fields = [
        "commercial_state",
        "fulfilment_state",
        "payment_state",
        "on_hold",
        "hold_reason",
        "validated_at",
        "closed_at",
        "cancelled_at",
        "cancel_reason",
    ]
    return {name: getattr(order, name) for name in fields}


@pytest.fixture()
def session() -> Iterator[Session]:
    """An unbound session: enough to collect events on unsaved orders, never flushed."""
    session = Session()
    yield session
    session.close()


# --- Payment derivation --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "transactions", "expected"),
    [
        pytest.param(TOTAL, [], P.UNPAID, id="nothing-yet"),
        pytest.param(TOTAL, [tx(K.CAPTURE, "40")], P.PARTIALLY_PAID, id="partial-capture"),
        pytest.param(TOTAL, [tx(K.SALE, "99.99")], P.PARTIALLY_PAID, id="one-cent-short"),
        pytest.param(TOTAL, [tx(K.CAPTURE, "100")], P.PAID, id="exact-capture"),
        pytest.param(TOTAL, [tx(K.SALE, "100.00")], P.PAID, id="exact-sale"),
        pytest.param(
            TOTAL, [tx(K.SALE, "60"), tx(K.CAPTURE, "40")], P.PAID, id="instalments-add-up"
        ),
        pytest.param(TOTAL, [tx(K.CAPTURE, "120")], P.PAID, id="overpaid-is-paid"),
        pytest.param(FREE, [], P.PAID, id="zero-total"),
        pytest.param(TOTAL, [tx(K.AUTHORIZATION, "100")], P.UNPAID, id="authorization-only"),
        pytest.param(
            TOTAL,
            [tx(K.AUTHORIZATION, "100"), tx(K.CAPTURE, "30")],
            P.PARTIALLY_PAID,
            id="authorization-not-added-to-capture",
        ),
        pytest.param(TOTAL, [tx(K.VOID, "100")], P.UNPAID, id="void-only"),
        pytest.param(TOTAL, [tx(K.CAPTURE, "100", S.PENDING)], P.UNPAID, id="pending-capture"),
        pytest.param(TOTAL, [tx(K.SALE, "100", S.FAILURE)], P.UNPAID, id="failed-sale"),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "50"), tx(K.CAPTURE, "50", S.FAILURE), tx(K.SALE, "50", S.PENDING)],
            P.PARTIALLY_PAID,
            id="only-successes-count",
        ),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "100"), tx(K.REFUND, "30")],
            P.PARTIALLY_REFUNDED,
            id="partial-refund",
        ),
        pytest.param(
            TOTAL, [tx(K.CAPTURE, "100"), tx(K.REFUND, "100")], P.REFUNDED, id="full-refund"
        ),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "100"), tx(K.REFUND, "60"), tx(K.REFUND, "40")],
            P.REFUNDED,
            id="refunds-add-up",
        ),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "40"), tx(K.REFUND, "40")],
            P.REFUNDED,
            id="partial-payment-fully-refunded",
        ),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "120"), tx(K.REFUND, "20")],
            P.PARTIALLY_REFUNDED,
            id="overpayment-refunded",
        ),
        pytest.param(
            TOTAL, [tx(K.CAPTURE, "100"), tx(K.REFUND, "30", S.FAILURE)], P.PAID, id="failed-refund"
        ),
        pytest.param(
            TOTAL,
            [tx(K.CAPTURE, "100"), tx(K.REFUND, "100", S.PENDING)],
            P.PAID,
            id="pending-refund",
        ),
        pytest.param(
            TOTAL, [tx(K.REFUND, "10")], P.PARTIALLY_REFUNDED, id="refund-without-payment"
        ),
    ],
)
def test_derive_payment_state(
    total: Decimal, transactions: list[Transaction], expected: PaymentState
) -> None:
    assert derive_payment_state(total, transactions) == expected


def test_paid_and_refunded_amounts() -> None:
    transactions = [
        tx(K.AUTHORIZATION, "80"),
        tx(K.CAPTURE, "50"),
        tx(K.SALE, "30.25"),
        tx(K.SALE, "99", S.FAILURE),
        tx(K.REFUND, "10"),
        tx(K.REFUND, "5", S.PENDING),
        tx(K.VOID, "80"),
    ]

    assert paid_amount(transactions) == Decimal("80.25")
    assert refunded_amount(transactions) == Decimal("10")


def test_a_shop_can_leave_a_payment_method_uncounted() -> None:
    transactions = [
        tx(K.SALE, "50", method="card"),
        tx(K.CAPTURE, "50", method="cheque"),
        tx(K.REFUND, "50", method="cheque"),
    ]

    def not_cheques(transaction: Transaction) -> bool:
        return transaction.method != "cheque"

    assert derive_payment_state(TOTAL, transactions) == P.PARTIALLY_REFUNDED
    assert derive_payment_state(TOTAL, transactions, not_cheques) == P.PARTIALLY_PAID
    assert amount_due(TOTAL, transactions, not_cheques) == Decimal("50")


@pytest.mark.parametrize(
    ("transactions", "due", "overpaid"),
    [
        ([], Decimal("100"), Decimal("0")),
        ([tx(K.CAPTURE, "40")], Decimal("60"), Decimal("0")),
        ([tx(K.CAPTURE, "40", S.PENDING)], Decimal("100"), Decimal("0")),
        ([tx(K.AUTHORIZATION, "100")], Decimal("100"), Decimal("0")),
        ([tx(K.CAPTURE, "100")], Decimal("0"), Decimal("0")),
        ([tx(K.CAPTURE, "125.50")], Decimal("0"), Decimal("25.50")),
        ([tx(K.CAPTURE, "125.50"), tx(K.REFUND, "25.50")], Decimal("0"), Decimal("0")),
        ([tx(K.CAPTURE, "100"), tx(K.REFUND, "100")], Decimal("0"), Decimal("0")),
    ],
)
def test_amount_due_and_overpaid(
    transactions: list[Transaction], due: Decimal, overpaid: Decimal
) -> None:
    assert amount_due(TOTAL, transactions) == due
    assert overpaid_amount(TOTAL, transactions) == overpaid


@pytest.mark.parametrize(
    ("payment", "total", "expected"),
    [
        (P.PAID, TOTAL, True),
        (P.UNPAID, FREE, True),
        (P.UNPAID, TOTAL, False),
        (P.PARTIALLY_PAID, TOTAL, False),
        (P.PARTIALLY_REFUNDED, TOTAL, False),
        (P.REFUNDED, TOTAL, False),
    ],
)
def test_is_paid_or_free(payment: PaymentState, total: Decimal, expected: bool) -> None:
    assert is_paid_or_free(make_order(payment=payment, total=total)) is expected


# --- Milestones ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "payment", "total", "expected"),
    [
        (C.CANCELLED, F.UNFULFILLED, P.UNPAID, TOTAL, M.CANCELLED),
        (C.CANCELLED, F.IN_PREPARATION, P.PAID, TOTAL, M.CANCELLED),
        (C.CANCELLED, F.SHIPPED, P.PAID, TOTAL, M.CANCELLED),
        (C.CANCELLED, F.UNFULFILLED, P.REFUNDED, TOTAL, M.CANCELLED),
        (C.VALIDATED, F.SHIPPED, P.PAID, TOTAL, M.COMPLETED),
        (C.VALIDATED, F.DELIVERED, P.PAID, TOTAL, M.COMPLETED),
        (C.CLOSED, F.DELIVERED, P.PAID, TOTAL, M.COMPLETED),
        (C.NEW, F.SHIPPED, P.PAID, TOTAL, M.COMPLETED),
        (C.VALIDATED, F.SHIPPED, P.UNPAID, FREE, M.COMPLETED),
        (C.VALIDATED, F.SHIPPED, P.UNPAID, TOTAL, M.PROCESSING),
        (C.VALIDATED, F.DELIVERED, P.PARTIALLY_PAID, TOTAL, M.PROCESSING),
        (C.CLOSED, F.SHIPPED, P.UNPAID, TOTAL, M.PROCESSING),
        (C.VALIDATED, F.SHIPPED, P.PARTIALLY_REFUNDED, TOTAL, M.PROCESSING),
        (C.VALIDATED, F.PARTIALLY_SHIPPED, P.PAID, TOTAL, M.PARTIALLY_SHIPPED),
        (C.VALIDATED, F.PARTIALLY_SHIPPED, P.UNPAID, TOTAL, M.PARTIALLY_SHIPPED),
        (C.NEW, F.PARTIALLY_SHIPPED, P.UNPAID, TOTAL, M.PARTIALLY_SHIPPED),
        (C.VALIDATED, F.IN_PREPARATION, P.PAID, TOTAL, M.PROCESSING),
        (C.NEW, F.IN_PREPARATION, P.UNPAID, TOTAL, M.PROCESSING),
        (C.VALIDATED, F.UNFULFILLED, P.PAID, TOTAL, M.VALIDATED),
        (C.VALIDATED, F.UNFULFILLED, P.UNPAID, TOTAL, M.VALIDATED),
        (C.CLOSED, F.UNFULFILLED, P.UNPAID, TOTAL, M.VALIDATED),
        (C.NEW, F.UNFULFILLED, P.PAID, TOTAL, M.PAID),
        (C.NEW, F.UNFULFILLED, P.PARTIALLY_PAID, TOTAL, M.PARTIALLY_PAID),
        (C.NEW, F.UNFULFILLED, P.UNPAID, TOTAL, None),
        (C.NEW, F.UNFULFILLED, P.UNPAID, FREE, None),
        (C.NEW, F.UNFULFILLED, P.PARTIALLY_REFUNDED, TOTAL, None),
        (C.NEW, F.UNFULFILLED, P.REFUNDED, TOTAL, None),
    ],
)
def test_milestone_precedence(
    commercial: CommercialState,
    fulfilment: FulfilmentState,
    payment: PaymentState,
    total: Decimal,
    expected: Milestone | None,
) -> None:
    assert milestone(make_order(commercial, fulfilment, payment, total=total)) == expected


# One order per milestone, and the precedence PRODUCT.md states, lowest first.
ORDER_SHOWING = {
    None: (C.NEW, F.UNFULFILLED, P.UNPAID),
    M.PARTIALLY_PAID: (C.NEW, F.UNFULFILLED, P.PARTIALLY_PAID),
    M.PAID: (C.NEW, F.UNFULFILLED, P.PAID),
    M.VALIDATED: (C.VALIDATED, F.UNFULFILLED, P.PAID),
    M.PROCESSING: (C.VALIDATED, F.IN_PREPARATION, P.PAID),
    M.PARTIALLY_SHIPPED: (C.VALIDATED, F.PARTIALLY_SHIPPED, P.PAID),
    M.COMPLETED: (C.VALIDATED, F.SHIPPED, P.PAID),
    M.CANCELLED: (C.CANCELLED, F.UNFULFILLED, P.PAID),
}
PRECEDENCE = [
    M.PARTIALLY_PAID,
    M.PAID,
    M.VALIDATED,
    M.PROCESSING,
    M.PARTIALLY_SHIPPED,
    M.COMPLETED,
    M.CANCELLED,
]


@pytest.mark.parametrize("last", [None, *PRECEDENCE])
@pytest.mark.parametrize("current", [None, *PRECEDENCE])
def test_milestone_push_protection(last: Milestone | None, current: Milestone | None) -> None:
    order = make_order(*ORDER_SHOWING[current], last_pushed=last)
    assert milestone(order) == current

    pushed = milestone_to_push(order)

    if current is None:
        assert pushed is None
    elif last is None:
        assert pushed == current
    elif last == current:
        assert pushed is None, "a milestone is never pushed twice"
    elif last == M.CANCELLED:
        assert pushed is None, "nothing overrides cancelled"
    elif last == M.COMPLETED:
        assert pushed == (M.CANCELLED if current == M.CANCELLED else None)
    elif PRECEDENCE.index(current) < PRECEDENCE.index(last):
        assert pushed is None, "no regression"
    else:
        assert pushed == current


def test_marking_a_milestone_pushed_stops_it_being_pushed_again() -> None:
    order = make_order(C.VALIDATED, F.UNFULFILLED, P.PAID)
    assert milestone_to_push(order) == M.VALIDATED

    mark_milestone_pushed(order, M.VALIDATED)

    assert order.last_pushed_milestone == M.VALIDATED
    assert milestone_to_push(order) is None


def test_b2b_order_shipped_unpaid_completes_once_paid_and_never_regresses() -> None:
    order = make_order(C.VALIDATED, F.SHIPPED, P.UNPAID, last_pushed=M.VALIDATED)
    assert milestone_to_push(order) == M.PROCESSING
    mark_milestone_pushed(order, M.PROCESSING)

    order.payment_state = P.PAID
    assert milestone_to_push(order) == M.COMPLETED
    mark_milestone_pushed(order, M.COMPLETED)

    order.payment_state = P.PARTIALLY_REFUNDED
    assert milestone(order) == M.PROCESSING
    assert milestone_to_push(order) is None


# --- The preparation queue -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "payment", "on_hold", "total", "expected"),
    [
        (C.VALIDATED, F.UNFULFILLED, P.PAID, False, TOTAL, True),
        (C.VALIDATED, F.IN_PREPARATION, P.PAID, False, TOTAL, True),
        (C.VALIDATED, F.PARTIALLY_SHIPPED, P.PAID, False, TOTAL, True),
        (C.VALIDATED, F.UNFULFILLED, P.UNPAID, False, FREE, True),
        (C.VALIDATED, F.SHIPPED, P.PAID, False, TOTAL, False),
        (C.VALIDATED, F.DELIVERED, P.PAID, False, TOTAL, False),
        (C.VALIDATED, F.UNFULFILLED, P.PAID, True, TOTAL, False),
        (C.VALIDATED, F.UNFULFILLED, P.PARTIALLY_PAID, False, TOTAL, False),
        (C.VALIDATED, F.UNFULFILLED, P.UNPAID, False, TOTAL, False),
        (C.VALIDATED, F.UNFULFILLED, P.PARTIALLY_REFUNDED, False, TOTAL, False),
        (C.NEW, F.UNFULFILLED, P.PAID, False, TOTAL, False),
        (C.CLOSED, F.UNFULFILLED, P.PAID, False, TOTAL, False),
        (C.CANCELLED, F.UNFULFILLED, P.PAID, False, TOTAL, False),
    ],
)
def test_is_ready_to_prepare(
    commercial: CommercialState,
    fulfilment: FulfilmentState,
    payment: PaymentState,
    on_hold: bool,
    total: Decimal,
    expected: bool,
) -> None:
    order = make_order(commercial, fulfilment, payment, on_hold=on_hold, total=total)
    assert is_ready_to_prepare(order) is expected


# --- Manual actions: allowed moves ---------------------------------------------------------


def test_validate_by_hand(session: Session) -> None:
    order = make_order(C.NEW, payment=P.UNPAID)

    validate(session, order, ACTOR)

    assert order.commercial_state == C.VALIDATED
    assert order.validated_at is not None
    assert [(e.kind, e.details) for e in order.events] == [("order.validated", {})]


@pytest.mark.parametrize(
    ("commercial", "reason"),
    [
        (C.VALIDATED, "the order is already validated"),
        (C.CLOSED, "the order is closed"),
        (C.CANCELLED, "the order is cancelled"),
    ],
)
def test_validate_refused(session: Session, commercial: CommercialState, reason: str) -> None:
    order = make_order(commercial)

    with pytest.raises(InvalidTransition) as refused:
        validate(session, order, ACTOR)

    assert (refused.value.action, refused.value.reason) == ("validate", reason)
    assert order.commercial_state == commercial
    assert order.events == []


@pytest.mark.parametrize(
    ("commercial", "fulfilment"),
    [
        (C.NEW, F.UNFULFILLED),
        (C.VALIDATED, F.UNFULFILLED),
        (C.VALIDATED, F.IN_PREPARATION),
        (C.VALIDATED, F.PARTIALLY_SHIPPED),
    ],
)
def test_hold_and_release(
    session: Session, commercial: CommercialState, fulfilment: FulfilmentState
) -> None:
    order = make_order(commercial, fulfilment, P.PAID)

    hold(session, order, ACTOR, "  Suspicious address  ")

    assert order.on_hold is True
    assert order.hold_reason == "Suspicious address"
    assert not is_ready_to_prepare(order)

    release(session, order, ACTOR)

    assert order.on_hold is False
    assert order.hold_reason == ""
    assert [(e.kind, e.details) for e in order.events] == [
        ("order.held", {"reason": "Suspicious address"}),
        ("order.released", {"previous_reason": "Suspicious address"}),
    ]
    assert order.events[1].details == {"previous_reason": "Suspicious address"}


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "on_hold", "reason"),
    [
        (C.NEW, F.UNFULFILLED, True, "the order is already on hold"),
        (C.CANCELLED, F.UNFULFILLED, False, "the order is cancelled"),
        (C.CLOSED, F.SHIPPED, False, "the order is closed"),
        (C.VALIDATED, F.SHIPPED, False, "the order is already shipped"),
        (C.VALIDATED, F.DELIVERED, False, "the order is already delivered"),
    ],
)
def test_hold_refused(
    session: Session,
    commercial: CommercialState,
    fulfilment: FulfilmentState,
    on_hold: bool,
    reason: str,
) -> None:
    order = make_order(commercial, fulfilment, P.PAID, on_hold=on_hold)
    before = snapshot(order)

    with pytest.raises(InvalidTransition) as refused:
        hold(session, order, ACTOR, "Check stock")

    assert (refused.value.action, refused.value.reason) == ("hold", reason)
    assert snapshot(order) == before
    assert order.events == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
@pytest.mark.parametrize("action", [hold, cancel])
def test_hold_and_cancel_need_a_reason(session: Session, action: Any, reason: str) -> None:
    order = make_order(C.VALIDATED, payment=P.PAID)
    before = snapshot(order)

    with pytest.raises(ValidationFailed) as refused:
        action(session, order, ACTOR, reason)

    assert "reason" in refused.value.errors
    assert snapshot(order) == before
    assert order.events == []


@pytest.mark.parametrize(
    ("action", "words"),
    [(hold, "Say why the order is put on hold."), (cancel, "Say why the order is cancelled.")],
)
def test_a_missing_reason_is_asked_for_in_words_naming_the_action(
    session: Session, action: Any, words: str
) -> None:
    order = make_order(C.VALIDATED, payment=P.PAID)

    with pytest.raises(ValidationFailed) as refused:
        action(session, order, ACTOR, " ")

    assert refused.value.errors == {"reason": words}


def test_a_long_reason_fits_the_timeline(session: Session) -> None:
    order = make_order(C.VALIDATED, payment=P.PAID)

    cancel(session, order, ACTOR, "y" * 500)

    assert order.cancel_reason == "y" * 500
    assert order.events[0].details == {"reason": "y" * 500}


def test_release_refused_when_not_on_hold(session: Session) -> None:
    order = make_order(C.VALIDATED, payment=P.PAID)

    with pytest.raises(InvalidTransition) as refused:
        release(session, order, ACTOR)

    assert refused.value.reason == "the order is not on hold"
    assert order.events == []


@pytest.mark.parametrize(("payment", "total"), [(P.PAID, TOTAL), (P.UNPAID, FREE)])
def test_start_preparation(session: Session, payment: PaymentState, total: Decimal) -> None:
    order = make_order(C.VALIDATED, F.UNFULFILLED, payment, total=total)

    start_preparation(session, order, ACTOR)

    assert order.fulfilment_state == F.IN_PREPARATION
    assert is_ready_to_prepare(order)
    assert [(e.kind, e.details) for e in order.events] == [("order.preparation_started", {})]


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "payment", "on_hold", "reason"),
    [
        (C.NEW, F.UNFULFILLED, P.PAID, False, "the order is not validated yet"),
        (C.CANCELLED, F.UNFULFILLED, P.PAID, False, "the order is cancelled"),
        (C.CLOSED, F.UNFULFILLED, P.PAID, False, "the order is closed"),
        (C.VALIDATED, F.UNFULFILLED, P.UNPAID, False, "the order is not paid yet"),
        (C.VALIDATED, F.UNFULFILLED, P.PARTIALLY_PAID, False, "the order is not paid yet"),
        (C.VALIDATED, F.UNFULFILLED, P.PAID, True, "the order is on hold"),
        (C.VALIDATED, F.IN_PREPARATION, P.PAID, False, "preparation has already started"),
        (
            C.VALIDATED,
            F.PARTIALLY_SHIPPED,
            P.PAID,
            False,
            "the order is already partially shipped",
        ),
        (C.VALIDATED, F.SHIPPED, P.PAID, False, "the order is already shipped"),
    ],
)
def test_start_preparation_refused(
    session: Session,
    commercial: CommercialState,
    fulfilment: FulfilmentState,
    payment: PaymentState,
    on_hold: bool,
    reason: str,
) -> None:
    order = make_order(commercial, fulfilment, payment, on_hold=on_hold)
    before = snapshot(order)

    with pytest.raises(InvalidTransition) as refused:
        start_preparation(session, order, ACTOR)

    assert (refused.value.action, refused.value.reason) == ("prepare", reason)
    assert snapshot(order) == before
    assert order.events == []


@pytest.mark.parametrize(
    ("commercial", "fulfilment"),
    [(C.NEW, F.UNFULFILLED), (C.VALIDATED, F.UNFULFILLED), (C.VALIDATED, F.IN_PREPARATION)],
)
def test_cancel(session: Session, commercial: CommercialState, fulfilment: FulfilmentState) -> None:
    order = make_order(commercial, fulfilment, P.PAID, on_hold=True)

    cancel(session, order, ACTOR, "Customer changed their mind")

    assert order.commercial_state == C.CANCELLED
    assert order.cancelled_at is not None
    assert order.cancel_reason == "Customer changed their mind"
    assert (order.on_hold, order.hold_reason) == (False, "")
    assert milestone(order) == M.CANCELLED
    assert [(e.kind, e.details) for e in order.events] == [
        ("order.cancelled", {"reason": "Customer changed their mind"})
    ]


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "reason"),
    [
        (C.VALIDATED, F.PARTIALLY_SHIPPED, "the order is already partially shipped"),
        (C.VALIDATED, F.SHIPPED, "the order is already shipped"),
        (C.VALIDATED, F.DELIVERED, "the order is already delivered"),
        (C.NEW, F.SHIPPED, "the order is already shipped"),
        (C.CLOSED, F.DELIVERED, "the order is closed"),
        (C.CANCELLED, F.UNFULFILLED, "the order is already cancelled"),
    ],
)
def test_cancel_refused(
    session: Session, commercial: CommercialState, fulfilment: FulfilmentState, reason: str
) -> None:
    order = make_order(commercial, fulfilment, P.PAID)
    before = snapshot(order)

    with pytest.raises(InvalidTransition) as refused:
        cancel(session, order, ACTOR, "Out of stock")

    assert (refused.value.action, refused.value.reason) == ("cancel", reason)
    assert snapshot(order) == before
    assert order.events == []


@pytest.mark.parametrize("fulfilment", [F.SHIPPED, F.DELIVERED])
def test_close(session: Session, fulfilment: FulfilmentState) -> None:
    order = make_order(C.VALIDATED, fulfilment, P.PAID)

    close(session, order, ACTOR)

    assert order.commercial_state == C.CLOSED
    assert order.closed_at is not None
    assert [(e.kind, e.details) for e in order.events] == [("order.closed", {})]


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "reason"),
    [
        (C.NEW, F.SHIPPED, "the order is not validated yet"),
        (C.VALIDATED, F.UNFULFILLED, "the order is not fully shipped yet"),
        (C.VALIDATED, F.IN_PREPARATION, "the order is not fully shipped yet"),
        (C.VALIDATED, F.PARTIALLY_SHIPPED, "the order is not fully shipped yet"),
        (C.CLOSED, F.DELIVERED, "the order is already closed"),
        (C.CANCELLED, F.UNFULFILLED, "the order is cancelled"),
    ],
)
def test_close_refused(
    session: Session, commercial: CommercialState, fulfilment: FulfilmentState, reason: str
) -> None:
    order = make_order(commercial, fulfilment, P.PAID)
    before = snapshot(order)

    with pytest.raises(InvalidTransition) as refused:
        close(session, order, ACTOR)

    assert (refused.value.action, refused.value.reason) == ("close", reason)
    assert snapshot(order) == before
    assert order.events == []


# --- Automatic validation and fulfilment ---------------------------------------------------


@pytest.mark.parametrize(
    ("payment", "total", "why"),
    [
        (P.PAID, TOTAL, "paid"),
        (P.UNPAID, FREE, "free"),
        (P.PARTIALLY_REFUNDED, TOTAL, "paid"),
    ],
)
def test_auto_validate(session: Session, payment: PaymentState, total: Decimal, why: str) -> None:
    order = make_order(C.NEW, payment=payment, total=total)

    assert auto_validate(session, order, ACTOR) is True

    assert order.commercial_state == C.VALIDATED
    assert order.validated_at is not None
    assert [(e.kind, e.details) for e in order.events] == [
        ("order.validated", {"automatic": True, "why": why})
    ]


@pytest.mark.parametrize(
    ("commercial", "payment"),
    [
        (C.NEW, P.UNPAID),
        (C.NEW, P.PARTIALLY_PAID),
        (C.NEW, P.REFUNDED),
        (C.VALIDATED, P.PAID),
        (C.CLOSED, P.PAID),
        (C.CANCELLED, P.PAID),
    ],
)
def test_auto_validate_does_nothing(
    session: Session, commercial: CommercialState, payment: PaymentState
) -> None:
    order = make_order(commercial, payment=payment)
    before = snapshot(order)

    assert auto_validate(session, order, ACTOR) is False

    assert snapshot(order) == before
    assert order.events == []


FORWARD_MOVES = {
    (F.UNFULFILLED, F.PARTIALLY_SHIPPED),
    (F.UNFULFILLED, F.SHIPPED),
    (F.IN_PREPARATION, F.PARTIALLY_SHIPPED),
    (F.IN_PREPARATION, F.SHIPPED),
    (F.PARTIALLY_SHIPPED, F.SHIPPED),
    (F.SHIPPED, F.DELIVERED),
}


@pytest.mark.parametrize(("current", "new"), list(itertools.product(F, F)))
def test_apply_fulfilment(session: Session, current: FulfilmentState, new: FulfilmentState) -> None:
    order = make_order(C.VALIDATED, current, P.PAID)

    if (current, new) in FORWARD_MOVES:
        assert apply_fulfilment(session, order, ACTOR, new) is True
        assert order.fulfilment_state == new
        assert [e.kind for e in order.events] == [f"order.{new}"]
        assert order.events[0].details == {"from": current.value, "to": new.value}
    elif current == new:
        assert apply_fulfilment(session, order, ACTOR, new) is False
        assert order.events == []
    else:
        with pytest.raises(InvalidTransition) as refused:
            apply_fulfilment(session, order, ACTOR, new)
        assert refused.value.action == "fulfilment"
        assert order.fulfilment_state == current
        assert order.events == []


def test_apply_fulfilment_records_both_states(session: Session) -> None:
    order = make_order(C.VALIDATED, F.IN_PREPARATION, P.PAID)

    apply_fulfilment(session, order, ACTOR, F.PARTIALLY_SHIPPED)

    assert [(e.kind, e.details) for e in order.events] == [
        ("order.partially_shipped", {"from": "in_preparation", "to": "partially_shipped"})
    ]


def test_a_delivery_may_follow_closing(session: Session) -> None:
    order = make_order(C.CLOSED, F.SHIPPED, P.PAID)

    assert apply_fulfilment(session, order, ACTOR, F.DELIVERED) is True


@pytest.mark.parametrize("new", list(F))
def test_apply_fulfilment_refused_on_cancelled_orders(
    session: Session, new: FulfilmentState
) -> None:
    order = make_order(C.CANCELLED, F.UNFULFILLED, P.PAID)

    with pytest.raises(InvalidTransition) as refused:
        apply_fulfilment(session, order, ACTOR, new)

    assert refused.value.reason == "the order is cancelled"
    assert order.fulfilment_state == F.UNFULFILLED


# --- Every action against every state ------------------------------------------------------


def test_actions_table_names_every_action() -> None:
    assert set(ACTIONS) == set(EVENT_KINDS)
    assert ACTIONS["prepare"] is start_preparation


@pytest.mark.parametrize(
    ("commercial", "fulfilment", "payment", "on_hold", "total"), EVERY_STATE, ids=EVERY_STATE_IDS
)
def test_each_action_succeeds_exactly_when_allowed(
    session: Session,
    commercial: CommercialState,
    fulfilment: FulfilmentState,
    payment: PaymentState,
    on_hold: bool,
    total: Decimal,
) -> None:
    def fresh() -> Order:
        return make_order(commercial, fulfilment, payment, on_hold=on_hold, total=total)

    allowed = allowed_actions(fresh())
    assert allowed <= set(ACTIONS)
    if "prepare" in allowed:
        assert is_ready_to_prepare(fresh())

    for action, function in ACTIONS.items():
        order = fresh()
        before = snapshot(order)
        args = ("Needs a look",) if action in NEEDS_REASON else ()
        try:
            function(session, order, ACTOR, *args)
        except InvalidTransition as refused:
            assert action not in allowed, f"{action} listed but refused: {refused.reason}"
            assert refused.action == action
            assert refused.reason
            assert snapshot(order) == before
            assert order.events == []
        else:
            assert action in allowed, f"{action} succeeded but is not listed"
            assert [e.kind for e in order.events] == [EVENT_KINDS[action]]
            assert snapshot(order) != before


# --- With a database -----------------------------------------------------------------------

PLACED = dt.datetime(2024, 5, 2, 9, 30, tzinfo=dt.UTC)


def _shop(db_session: Session) -> Shop:
    shop = Shop(
        key="os1", platform=Platform.WOOCOMMERCE, name="Boutique", base_url="https://x.test"
    )
    db_session.add(shop)
    return shop


def _saved_order(db_session: Session, shop: Shop, external_id: str, **states: Any) -> Order:
    order = Order(
        shop=shop,
        external_id=external_id,
        number=f"#{external_id}",
        placed_at=PLACED,
        shop_updated_at=PLACED,
        **states,
    )
    db_session.add(order)
    return order


def _events(db_session: Session, order: Order) -> list[OrderEvent]:
    db_session.flush()
    statement = select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    return list(db_session.scalars(statement))


def test_ready_to_prepare_clause_agrees_with_the_function(db_session: Session) -> None:
    shop = _shop(db_session)
    orders = [
        _saved_order(
            db_session,
            shop,
            f"r{index}",
            commercial_state=commercial,
            fulfilment_state=fulfilment,
            payment_state=payment,
            on_hold=on_hold,
            grand_total=total,
        )
        for index, (commercial, fulfilment, payment, on_hold, total) in enumerate(EVERY_STATE)
    ]
    db_session.flush()
    db_session.expire_all()  # compare what the database holds, not what Python set

    in_memory = {order.id for order in orders if is_ready_to_prepare(order)}
    statement = select(Order.id).where(Order.shop_id == shop.id, ready_to_prepare_clause())
    from_sql = set(db_session.scalars(statement))

    assert in_memory
    assert from_sql == in_memory


def test_events_record_the_actor(db_session: Session) -> None:
    user = User(email="ana@example.test", display_name="Ana", password_hash="x", role=Role.MANAGER)
    db_session.add(user)
    order = _saved_order(db_session, _shop(db_session), "e1", grand_total=TOTAL)
    db_session.flush()

    validate(db_session, order, Actor.for_user(user))
    hold(db_session, order, Actor.shop("WooCommerce"), "Fraud check")
    release(db_session, order, Actor.system("rules"))

    events = _events(db_session, order)
    assert [(e.kind, e.actor_type, e.actor_user_id) for e in events] == [
        ("order.validated", ActorType.USER, user.id),
        ("order.held", ActorType.SHOP, None),
        ("order.released", ActorType.SYSTEM, None),
    ]
    assert events[1].details == {"reason": "Fraud check", "via": "WooCommerce"}


def test_refresh_payment_state_records_the_change_then_validates(db_session: Session) -> None:
    order = _saved_order(db_session, _shop(db_session), "p1", grand_total=TOTAL)
    order.transactions.append(tx(K.CAPTURE, "40"))
    db_session.flush()
    actor = Actor.shop("WooCommerce")

    assert refresh_payment_state(db_session, order, actor) is True
    assert order.payment_state == P.PARTIALLY_PAID
    assert order.commercial_state == C.NEW

    order.transactions.append(tx(K.CAPTURE, "60"))
    assert refresh_payment_state(db_session, order, actor) is True
    assert order.payment_state == P.PAID
    assert order.commercial_state == C.VALIDATED

    assert refresh_payment_state(db_session, order, actor) is False

    events = _events(db_session, order)
    assert [(e.kind, e.details.get("to") or e.details.get("why")) for e in events] == [
        ("payment.state_changed", "partially_paid"),
        ("payment.state_changed", "paid"),
        ("order.validated", "paid"),
    ]
    assert events[1].details == {"from": "partially_paid", "to": "paid", "via": "WooCommerce"}
    assert {e.actor_type for e in events} == {ActorType.SHOP}


def test_refresh_payment_state_honours_the_shop_filter(db_session: Session) -> None:
    order = _saved_order(db_session, _shop(db_session), "p2", grand_total=TOTAL)
    order.transactions.append(tx(K.SALE, "100", method="cheque"))
    db_session.flush()

    changed = refresh_payment_state(
        db_session, order, ACTOR, counts_as_payment=lambda t: t.method != "cheque"
    )

    assert changed is False
    assert order.payment_state == P.UNPAID
    assert order.commercial_state == C.NEW
    assert _events(db_session, order) == []


def test_the_rules_do_not_load_flask() -> None:
    code = "import sys, web.services.order_state; sys.exit('flask' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
