"""Money on an order: which transactions count, and payments or refunds entered by hand."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

from sqlalchemy.orm import Session

from web.i18n import N_
from web.models import PaymentMethodMapping, Shop, utcnow
from web.models.enums import TransactionKind, TransactionSource, TransactionStatus
from web.models.orders import Order, Transaction
from web.services import invoicing, order_state, outbox
from web.services.errors import ValidationFailed
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor, record_event

MANUAL_SOURCES = (
    TransactionSource.BANK_TRANSFER,
    TransactionSource.CHEQUE,
    TransactionSource.CASH,
    TransactionSource.OTHER,
)
MANUAL_KINDS = {"payment": TransactionKind.SALE, "refund": TransactionKind.REFUND}
MAX_AMOUNT = Decimal("1000000000")
REFERENCE_MAX_LENGTH = 200


def payment_mapping(shop: Shop, method: str) -> PaymentMethodMapping | None:
    """The shop's mapping row for a payment method code, if any."""
    return next((m for m in shop.payment_mappings if m.shop_method == method), None)


def payment_counter(shop: Shop, order: Order) -> Callable[[Transaction], bool]:
    """Tell which of the order's transactions count as money received (payment mappings).

    Money entered by hand always counts; a shop's transaction counts when its method (or,
    failing that, the order's payment method) is mapped as counting as payment.
    """

    def counts(transaction: Transaction) -> bool:
        if transaction.source != TransactionSource.SHOP:
            return True
        # Platforms name a payment's method in their own words ("Carte bancaire" on a
        # PrestaShop order_payment): a method the mappings do not know falls back to the
        # order's payment method code, which they do.
        mapping = payment_mapping(shop, transaction.method) if transaction.method else None
        if mapping is None:
            mapping = payment_mapping(shop, order.payment_method)
        return mapping is not None and mapping.counts_as_payment

    return counts


def parse_amount(value: object) -> Decimal:
    """Read an amount typed by a person or sent by a client: "12.50", "12,50", 12.5 as text."""
    if isinstance(value, bool) or value is None:
        raise _invalid("amount", N_("Give the amount, for example 12.50."))
    text = str(value).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise _invalid("amount", N_("Give the amount as a number, for example 12.50.")) from None
    if not amount.is_finite():
        raise _invalid("amount", N_("Give the amount as a number, for example 12.50."))
    if amount <= 0:
        raise _invalid("amount", N_("The amount must be above zero."))
    if amount >= MAX_AMOUNT:
        raise _invalid("amount", N_("The amount is too large."))
    if amount != amount.quantize(Decimal("0.01")):
        raise _invalid("amount", N_("Use at most two decimals."))
    return amount.quantize(Decimal("0.01"))


def _manual_source(value: TransactionSource | str) -> TransactionSource:
    try:
        source = TransactionSource(value)
    except ValueError:
        source = TransactionSource.SHOP
    if source not in MANUAL_SOURCES:
        raise _invalid("source", N_("Choose how the money moved: transfer, cheque, cash or other."))
    return source


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {field: message})


def today() -> dt.date:
    """Today where the merchant works (the desk's time zone), the default payment date."""
    return utcnow().astimezone(DESK_TZ).date()


def _when(value: dt.date | dt.datetime | None) -> dt.datetime:
    """A payment's time: now, a moment, or a day (noon there) where the merchant works."""
    now = utcnow()
    if value is None:
        return now
    if isinstance(value, dt.datetime):
        when = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        when = when.astimezone(dt.UTC)
        if when > now + dt.timedelta(minutes=5):
            raise _invalid("occurred_at", N_("The date cannot be in the future."))
    elif value > today():
        raise _invalid("occurred_at", N_("The date cannot be in the future."))
    elif value == today():
        when = now
    else:
        when = dt.datetime.combine(value, dt.time(12), DESK_TZ).astimezone(dt.UTC)
    if when.year < 2000:
        raise _invalid("occurred_at", N_("Give a date after 2000."))
    return when


def record_manual(
    session: Session,
    order: Order,
    actor: Actor,
    *,
    kind: str,
    source: TransactionSource | str,
    amount: object,
    occurred_at: dt.date | dt.datetime | None = None,
    reference: str = "",
) -> Transaction:
    """Record a payment or refund entered by hand, then re-derive the payment state.

    A refund cannot exceed the money received and not yet refunded. The order may become
    paid, hence validated, hence a new milestone for the shop: all in this transaction.
    """
    if kind not in MANUAL_KINDS:
        raise _invalid("kind", N_("Choose a payment or a refund."))
    method = _manual_source(source)
    value = parse_amount(amount)
    when = _when(occurred_at)
    reference = (reference or "").strip()
    if len(reference) > REFERENCE_MAX_LENGTH:
        raise _invalid("reference", N_("Keep the reference under 200 characters."))
    transaction_kind = MANUAL_KINDS[kind]
    if transaction_kind == TransactionKind.REFUND:
        # The same money the page shows as received: mapped payment methods only.
        counts = payment_counter(order.shop, order)
        received = order_state.paid_amount(order.transactions, counts)
        if value > received - order_state.refunded_amount(order.transactions, counts):
            message = N_("A refund cannot exceed the money received and not yet refunded.")
            raise _invalid("amount", message)
    transaction = Transaction(
        order=order,
        external_id=f"manual:{uuid.uuid4().hex}",
        method=method.value,
        kind=transaction_kind,
        status=TransactionStatus.SUCCESS,
        source=method,
        amount=value,
        currency=order.currency,
        reference=reference,
        occurred_at=when,
        created_by_id=actor.user_id,
    )
    session.add(transaction)
    session.flush()
    record_event(
        session,
        order,
        actor,
        "payment.recorded" if kind == "payment" else "payment.refunded",
        {
            "transaction_id": transaction.id,
            "amount": str(value),
            "currency": order.currency,
            "source": method.value,
            "reference": reference,
        },
    )
    changed = order_state.refresh_payment_state(
        session, order, actor, counts_as_payment=payment_counter(order.shop, order)
    )
    outbox.queue_milestone(session, order, actor)
    if changed:
        invoicing.queue_when_paid(session, order)
    return transaction
