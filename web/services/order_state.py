"""Order state rules: payment derivation, milestones, the preparation queue and manual actions.

An order moves on three independent axes (commercial, fulfilment, payment, see PRODUCT.md,
"Order states"); the shop is told one derived milestone. Every action here mutates the order,
writes one timeline event and leaves the commit to the caller.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal

from sqlalchemy import ColumnElement, and_, false, literal, or_
from sqlalchemy.orm import Session

from web.i18n import N_
from web.models.base import utcnow
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    Milestone,
    PaymentState,
    TransactionKind,
    TransactionStatus,
)
from web.models.orders import WAREHOUSE_STATES, Order, Transaction
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.timeline import Actor, record_event

ZERO = Decimal("0")
REASON_MAX_LENGTH = 500

PAID_KINDS = frozenset({TransactionKind.CAPTURE, TransactionKind.SALE})
SHIPPED_STATES = frozenset({FulfilmentState.SHIPPED, FulfilmentState.DELIVERED})
ANY_SHIPPED_STATES = SHIPPED_STATES | {FulfilmentState.PARTIALLY_SHIPPED}
PREPARABLE_STATES = WAREHOUSE_STATES

# Forward moves a shipment may cause; preparation has its own action.
FULFILMENT_MOVES: dict[FulfilmentState, frozenset[FulfilmentState]] = {
    FulfilmentState.UNFULFILLED: frozenset(
        {FulfilmentState.PARTIALLY_SHIPPED, FulfilmentState.SHIPPED}
    ),
    FulfilmentState.IN_PREPARATION: frozenset(
        {FulfilmentState.PARTIALLY_SHIPPED, FulfilmentState.SHIPPED}
    ),
    FulfilmentState.PARTIALLY_SHIPPED: frozenset({FulfilmentState.SHIPPED}),
    FulfilmentState.SHIPPED: frozenset({FulfilmentState.DELIVERED}),
    FulfilmentState.DELIVERED: frozenset(),
}

# How far an order has gone; a cancelled shipment may move it back down.
FULFILMENT_RANK = {state: rank for rank, state in enumerate(FulfilmentState)}

PaymentFilter = Callable[[Transaction], bool]


# --- Payment -------------------------------------------------------------------------------


def _sums(
    transactions: Iterable[Transaction], counts_as_payment: PaymentFilter | None
) -> tuple[Decimal, Decimal]:
    paid = ZERO
    refunded = ZERO
    for transaction in transactions:
        if transaction.status != TransactionStatus.SUCCESS:
            continue
        if counts_as_payment is not None and not counts_as_payment(transaction):
            continue
        if transaction.kind in PAID_KINDS:
            paid += transaction.amount
        elif transaction.kind == TransactionKind.REFUND:
            refunded += transaction.amount
    return paid, refunded


def paid_amount(
    transactions: Iterable[Transaction], counts_as_payment: PaymentFilter | None = None
) -> Decimal:
    """Return the money received: successful captures and sales."""
    return _sums(transactions, counts_as_payment)[0]


def refunded_amount(
    transactions: Iterable[Transaction], counts_as_payment: PaymentFilter | None = None
) -> Decimal:
    """Return the money given back: successful refunds."""
    return _sums(transactions, counts_as_payment)[1]


def amount_due(
    total: Decimal,
    transactions: Iterable[Transaction],
    counts_as_payment: PaymentFilter | None = None,
) -> Decimal:
    """Return what the customer still owes, never below zero."""
    paid, _ = _sums(transactions, counts_as_payment)
    # A refund gives money back; it never makes the customer owe it again.
    return max(total - paid, ZERO)


def overpaid_amount(
    total: Decimal,
    transactions: Iterable[Transaction],
    counts_as_payment: PaymentFilter | None = None,
) -> Decimal:
    """Return what was received beyond the total and not yet refunded, never below zero."""
    paid, refunded = _sums(transactions, counts_as_payment)
    return max(paid - refunded - total, ZERO)


def derive_payment_state(
    total: Decimal,
    transactions: Iterable[Transaction],
    counts_as_payment: PaymentFilter | None = None,
) -> PaymentState:
    """Derive the payment state from the order total and its successful transactions."""
    paid, refunded = _sums(transactions, counts_as_payment)
    if refunded > ZERO:
        if paid > ZERO and refunded >= paid:
            return PaymentState.REFUNDED
        return PaymentState.PARTIALLY_REFUNDED
    if total == ZERO or paid >= total:
        return PaymentState.PAID
    if paid > ZERO:
        return PaymentState.PARTIALLY_PAID
    return PaymentState.UNPAID


def is_paid_or_free(order: Order) -> bool:
    """Tell whether the order is fully paid or costs nothing."""
    return order.payment_state == PaymentState.PAID or order.grand_total == ZERO


def refresh_payment_state(
    session: Session,
    order: Order,
    actor: Actor,
    counts_as_payment: PaymentFilter | None = None,
) -> bool:
    """Re-derive the payment state from the order's transactions, then auto-validate."""
    previous = order.payment_state
    current = derive_payment_state(order.grand_total, order.transactions, counts_as_payment)
    changed = current != previous
    if changed:
        order.payment_state = current
        record_event(
            session,
            order,
            actor,
            "payment.state_changed",
            {"from": previous.value, "to": current.value},
        )
    auto_validate(session, order, actor)
    _propose_credit_notes(session, order, actor)
    return changed


def _propose_credit_notes(session: Session, order: Order, actor: Actor) -> None:
    """A refund or a cancellation of an invoiced order proposes a credit note."""
    # Imported here: the documents import this module (through order_queries).
    from web.documents.credit_notes import note_proposals

    note_proposals(session, order, actor)


# --- Milestones ----------------------------------------------------------------------------

_PRECEDENCE = {milestone: rank for rank, milestone in enumerate(Milestone)}


def milestone(order: Order) -> Milestone | None:
    """Return the milestone the shop should currently show for the order."""
    if order.commercial_state == CommercialState.CANCELLED:
        return Milestone.CANCELLED
    if order.fulfilment_state in SHIPPED_STATES:
        # A B2B order shipped on credit stays "processing" until it is paid.
        return Milestone.COMPLETED if is_paid_or_free(order) else Milestone.PROCESSING
    if order.fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED:
        return Milestone.PARTIALLY_SHIPPED
    if order.fulfilment_state == FulfilmentState.IN_PREPARATION:
        return Milestone.PROCESSING
    if order.commercial_state in (CommercialState.VALIDATED, CommercialState.CLOSED):
        return Milestone.VALIDATED
    if order.payment_state == PaymentState.PAID:
        return Milestone.PAID
    if order.payment_state == PaymentState.PARTIALLY_PAID:
        return Milestone.PARTIALLY_PAID
    return None


def milestone_to_push(order: Order) -> Milestone | None:
    """Return the milestone to push to the shop now, or None when nothing should be sent."""
    current = milestone(order)
    if current is None:
        return None
    last = order.last_pushed_milestone
    # Completed and cancelled rank highest, so "never twice, never backwards" also means only
    # a cancellation may follow completed, and nothing may follow cancelled.
    if last is not None and _PRECEDENCE[current] <= _PRECEDENCE[last]:
        return None
    return current


def mark_milestone_pushed(order: Order, milestone: Milestone) -> None:
    """Remember that the shop has been told this milestone."""
    order.last_pushed_milestone = milestone


# --- The preparation queue -----------------------------------------------------------------


def is_ready_to_prepare(order: Order) -> bool:
    """Tell whether the warehouse may work on the order."""
    return (
        order.commercial_state == CommercialState.VALIDATED
        and is_paid_or_free(order)
        and not order.on_hold
        and order.fulfilment_state in PREPARABLE_STATES
    )


def ready_to_prepare_clause() -> ColumnElement[bool]:
    """Build the WHERE clause equivalent to is_ready_to_prepare over Order columns."""
    # The states written into the SQL, not bound: SQLite uses the warehouse queue's partial
    # indexes (ix_orders_warehouse_*) only for a WHERE that repeats their own terms.
    commercial_type, fulfilment_type = Order.commercial_state.type, Order.fulfilment_state.type
    return and_(
        Order.commercial_state
        == literal(CommercialState.VALIDATED, commercial_type, literal_execute=True),
        or_(Order.payment_state == PaymentState.PAID, Order.grand_total == ZERO),
        Order.on_hold.is_(false()),
        Order.fulfilment_state.in_(
            [literal(state, fulfilment_type, literal_execute=True) for state in PREPARABLE_STATES]
        ),
    )


# --- Why an action is refused (None means allowed) -----------------------------------------


def _words(state: str) -> str:
    return state.replace("_", " ")


_ALREADY = {
    FulfilmentState.UNFULFILLED: N_("the order is not shipped yet"),
    FulfilmentState.IN_PREPARATION: N_("the order is already in preparation"),
    FulfilmentState.PARTIALLY_SHIPPED: N_("the order is already partially shipped"),
    FulfilmentState.SHIPPED: N_("the order is already shipped"),
    FulfilmentState.DELIVERED: N_("the order is already delivered"),
}


def _validate_refusal(order: Order) -> str | None:
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is closed")
    if order.commercial_state == CommercialState.VALIDATED:
        return N_("the order is already validated")
    return None


def _hold_refusal(order: Order) -> str | None:
    if order.on_hold:
        return N_("the order is already on hold")
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is closed")
    if order.fulfilment_state in SHIPPED_STATES:
        return _ALREADY[order.fulfilment_state]
    return None


def _release_refusal(order: Order) -> str | None:
    if not order.on_hold:
        return N_("the order is not on hold")
    return None


def _prepare_refusal(order: Order) -> str | None:
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is closed")
    if order.commercial_state == CommercialState.NEW:
        return N_("the order is not validated yet")
    if not is_paid_or_free(order):
        return N_("the order is not paid yet")
    if order.on_hold:
        return N_("the order is on hold")
    if order.fulfilment_state == FulfilmentState.IN_PREPARATION:
        return N_("preparation has already started")
    if order.fulfilment_state != FulfilmentState.UNFULFILLED:
        return _ALREADY[order.fulfilment_state]
    return None


def _cancel_refusal(order: Order) -> str | None:
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is already cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is closed")
    if order.fulfilment_state in ANY_SHIPPED_STATES:
        return _ALREADY[order.fulfilment_state]
    return None


def _close_refusal(order: Order) -> str | None:
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is already closed")
    if order.commercial_state == CommercialState.NEW:
        return N_("the order is not validated yet")
    if order.fulfilment_state not in SHIPPED_STATES:
        return N_("the order is not fully shipped yet")
    return None


_REFUSALS: dict[str, Callable[[Order], str | None]] = {
    "validate": _validate_refusal,
    "hold": _hold_refusal,
    "release": _release_refusal,
    "prepare": _prepare_refusal,
    "cancel": _cancel_refusal,
    "close": _close_refusal,
}


def _ensure_allowed(action: str, order: Order) -> None:
    reason = _REFUSALS[action](order)
    if reason is not None:
        raise InvalidTransition(action, reason)


def _required_reason(reason: str, message: str) -> str:
    cleaned = (reason or "").strip()
    if not cleaned:
        raise ValidationFailed(message, {"reason": message})
    if len(cleaned) > REASON_MAX_LENGTH:
        message = f"Keep the reason under {REASON_MAX_LENGTH} characters."
        raise ValidationFailed(message, {"reason": message})
    return cleaned


def allowed_actions(order: Order) -> set[str]:
    """Return the names of the manual actions the order allows right now."""
    return {action for action, refusal in _REFUSALS.items() if refusal(order) is None}


# --- Manual actions ------------------------------------------------------------------------


def validate(session: Session, order: Order, actor: Actor) -> None:
    """Validate a new order by hand."""
    _ensure_allowed("validate", order)
    order.commercial_state = CommercialState.VALIDATED
    order.validated_at = utcnow()
    record_event(session, order, actor, "order.validated")


def hold(session: Session, order: Order, actor: Actor, reason: str) -> None:
    """Put the order on hold, with a reason."""
    _ensure_allowed("hold", order)
    reason = _required_reason(reason, N_("Say why the order is put on hold."))
    order.on_hold = True
    order.hold_reason = reason
    record_event(
        session,
        order,
        actor,
        "order.held",
        {"reason": reason},
    )


def release(session: Session, order: Order, actor: Actor) -> None:
    """Release the order from hold."""
    _ensure_allowed("release", order)
    previous_reason = order.hold_reason
    order.on_hold = False
    order.hold_reason = ""
    record_event(
        session,
        order,
        actor,
        "order.released",
        {"previous_reason": previous_reason},
    )


def start_preparation(session: Session, order: Order, actor: Actor) -> None:
    """Start preparing an order that is ready and not yet touched by the warehouse."""
    _ensure_allowed("prepare", order)
    order.fulfilment_state = FulfilmentState.IN_PREPARATION
    record_event(session, order, actor, "order.preparation_started")


def cancel(session: Session, order: Order, actor: Actor, reason: str) -> None:
    """Cancel an order that has not shipped anything, with a reason."""
    _ensure_allowed("cancel", order)
    reason = _required_reason(reason, N_("Say why the order is cancelled."))
    order.commercial_state = CommercialState.CANCELLED
    order.cancelled_at = utcnow()
    order.cancel_reason = reason
    # A cancelled order is out of every queue; a leftover hold would only confuse.
    order.on_hold = False
    order.hold_reason = ""
    record_event(
        session,
        order,
        actor,
        "order.cancelled",
        {"reason": reason},
    )
    _propose_credit_notes(session, order, actor)


def close(session: Session, order: Order, actor: Actor) -> None:
    """Close a validated order once it is fully shipped."""
    _ensure_allowed("close", order)
    order.commercial_state = CommercialState.CLOSED
    order.closed_at = utcnow()
    record_event(session, order, actor, "order.closed")


def auto_validate(session: Session, order: Order, actor: Actor) -> bool:
    """Validate a new order automatically when it is paid or free; tell whether it did.

    A partially refunded order was paid first: its first copy may reach us late, after
    the refund, and it must end validated all the same.
    """
    paid = order.payment_state in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED)
    if order.commercial_state != CommercialState.NEW or not (paid or is_paid_or_free(order)):
        return False
    order.commercial_state = CommercialState.VALIDATED
    order.validated_at = utcnow()
    record_event(
        session,
        order,
        actor,
        "order.validated",
        {"automatic": True, "why": "paid" if paid else "free"},
    )
    return True


def apply_fulfilment(
    session: Session, order: Order, actor: Actor, new_state: FulfilmentState
) -> bool:
    """Move the fulfilment state forward after a shipment; tell whether it moved."""
    if order.commercial_state == CommercialState.CANCELLED:
        raise InvalidTransition("fulfilment", "the order is cancelled")
    new_state = FulfilmentState(new_state)
    previous = order.fulfilment_state
    if new_state == previous:
        # A second partial shipment, or a repeated carrier event: nothing changes.
        return False
    if new_state not in FULFILMENT_MOVES[previous]:
        raise InvalidTransition(
            "fulfilment",
            f"an order that is {_words(previous)} cannot become {_words(new_state)}",
        )
    order.fulfilment_state = new_state
    record_event(
        session,
        order,
        actor,
        f"order.{new_state.value}",
        {"from": previous.value, "to": new_state.value},
    )
    return True


def withdraw_fulfilment(
    session: Session, order: Order, actor: Actor, new_state: FulfilmentState
) -> bool:
    """Move the fulfilment state back after a shipped shipment is cancelled; tell whether it did.

    Nothing shipped any more leaves the order in preparation, never unfulfilled: the
    warehouse has worked on it.
    """
    new_state = FulfilmentState(new_state)
    previous = order.fulfilment_state
    if new_state == previous:
        return False
    if (
        new_state == FulfilmentState.UNFULFILLED
        or FULFILMENT_RANK[new_state] > FULFILMENT_RANK[previous]
    ):
        raise InvalidTransition(
            "fulfilment",
            f"an order that is {_words(previous)} cannot go back to {_words(new_state)}",
        )
    order.fulfilment_state = new_state
    record_event(
        session,
        order,
        actor,
        "order.fulfilment_withdrawn",
        {"from": previous.value, "to": new_state.value},
    )
    return True


ACTIONS: dict[str, Callable[..., None]] = {
    "validate": validate,
    "hold": hold,
    "release": release,
    "prepare": start_preparation,
    "cancel": cancel,
    "close": close,
}
"""Manual actions by name; hold and cancel also take a reason."""
