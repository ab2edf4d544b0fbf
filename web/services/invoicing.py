"""Invoices issued on their own, per the shop's policy, and in bulk from the order list.

A shop's `invoice_policy` says when an invoice is issued without anyone asking: when the
order becomes paid (everything not invoiced yet) or when a shipment leaves (that shipment's
lines, capped by what remains, with the lines that never ship). Intake and shipping only
queue an `invoice_order` job in their own transaction: rendering a PDF there would hold
their locks for the time of a print. The job issues in a transaction of its own; when
issuing is refused (nothing left, company settings incomplete) it writes the reason on the
order's timeline, so the desk sees why no invoice came, and finishes without error.

Running a job twice issues nothing twice: its idempotency key finds the invoice it already
issued, and an order with nothing left to invoice is a refusal, not a failure.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from web import queue
from web.documents import company, invoices
from web.documents.company import CompanyIncomplete
from web.i18n import N_
from web.models import Document, Job, Order, Shipment
from web.models.enums import IssuePolicy, PaymentState, ShipmentState
from web.services import order_actions
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.services.timeline import Actor, record_event

log = logging.getLogger(__name__)

INVOICE_JOB = "invoice_order"
ACTOR = Actor.system("invoicing")

# The reason issue_invoice gives, marked here for the catalogues.
NOTHING_LEFT = N_("nothing is left to invoice")
NOTHING_SHIPPED = N_("nothing of this shipment is left to invoice")
INCOMPLETE = N_("the company settings are incomplete")
GONE = N_("the order no longer exists")
CANCELLED = N_("the order is cancelled")
BAD_QUANTITY = N_("Type whole quantities, from 0 to what remains to invoice.")
TOO_MUCH = N_("More than remains to invoice.")
NO_QUANTITY = N_("Type at least one quantity to invoice.")


# --- What the order page shows ---------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceState:
    """What remains to invoice per order line, and the company settings issuing still needs."""

    remaining: dict[int, Decimal]
    missing: list[str]

    @property
    def anything_left(self) -> bool:
        return any(left > 0 for left in self.remaining.values())


def invoice_state(session: Session, order: Order) -> InvoiceState:
    """What the order page's documents card needs to offer issuing."""
    missing = company.missing_fields(company.company_settings(session))
    return InvoiceState(invoices.remaining_quantities(session, order), missing)


def parse_quantities(
    order: Order, remaining: dict[int, Decimal], form: Mapping[str, str]
) -> dict[int, Decimal]:
    """The quantities typed per line (`quantity-<line id>`), blanks and zeros left out.

    Raises ValidationFailed naming each line whose quantity is not a whole number between 0
    and what remains, or when every quantity is zero.
    """
    wanted: dict[int, Decimal] = {}
    errors: dict[str, str] = {}
    for line in invoices.invoiceable_lines(order):
        raw = str(form.get(f"quantity-{line.id}", "") or "").strip()
        if not raw or remaining.get(line.id, Decimal(0)) <= 0:
            continue
        try:
            quantity = Decimal(raw.replace(",", "."))
        except InvalidOperation:
            quantity = Decimal(-1)
        if not quantity.is_finite() or quantity != quantity.to_integral_value() or quantity < 0:
            errors[f"quantity-{line.id}"] = BAD_QUANTITY
        elif quantity > remaining[line.id]:
            errors[f"quantity-{line.id}"] = TOO_MUCH
        elif quantity:
            wanted[line.id] = quantity
    if errors:
        raise ValidationFailed(BAD_QUANTITY, errors)
    if not wanted:
        raise ValidationFailed(NO_QUANTITY, {"quantities": NO_QUANTITY})
    return wanted


# --- Queueing (the caller's transaction) ----------------------------------------------------


def queue_when_paid(session: Session, order: Order) -> Job | None:
    """Queue the order's invoice if it is paid now and its shop invoices on payment."""
    if order.shop.invoice_policy != IssuePolicy.ON_PAYMENT:
        return None
    if order.payment_state != PaymentState.PAID:
        return None
    return queue.enqueue(session, INVOICE_JOB, {"order_id": order.id})


def queue_when_shipped(session: Session, shipment: Shipment) -> Job | None:
    """Queue the invoice of a shipment that left, if its shop invoices on shipment."""
    order = shipment.order
    if order.shop.invoice_policy != IssuePolicy.ON_SHIPMENT:
        return None
    if shipment.state != ShipmentState.SHIPPED:
        return None
    session.flush()  # the shipment's id goes into the job
    payload = {"order_id": order.id, "shipment_id": shipment.id}
    return queue.enqueue(session, INVOICE_JOB, payload)


# --- What a shipment invoices ---------------------------------------------------------------


def shipment_quantities(
    order: Order, shipment: Shipment, remaining: dict[int, Decimal]
) -> dict[int, Decimal]:
    """The shipment's lines capped by what remains, plus the lines that never ship."""
    wanted: dict[int, Decimal] = {}
    for item in shipment.lines:
        left = remaining.get(item.order_line_id, Decimal(0))
        quantity = min(Decimal(item.quantity), left)
        if quantity > 0:
            wanted[item.order_line_id] = wanted.get(item.order_line_id, Decimal(0)) + quantity
    for line in invoices.invoiceable_lines(order):
        never_ships = not line.needs_shipping or line.kind.value != "product"
        if never_ships and remaining.get(line.id, Decimal(0)) > 0:
            wanted[line.id] = remaining[line.id]
    return {line_id: min(q, remaining[line_id]) for line_id, q in wanted.items()}


# --- Issuing one order (a unit of work) -----------------------------------------------------


def issue_for(
    session: Session,
    order: Order,
    actor: Actor,
    *,
    shipment_id: int | None = None,
    idempotency_key: str | None = None,
) -> Document:
    """Issue the order's invoice: everything left, or what the shipment carried.

    The order row is taken first, so what remains is read under the lock that issuing holds.
    Raises InvalidTransition (nothing left, company incomplete) as issue_invoice does.
    """
    if idempotency_key:
        done = session.scalars(
            select(Document).where(Document.idempotency_key == idempotency_key)
        ).first()
        if done is not None:
            return done
    order = order_actions.lock_order(session, order.id) or order
    quantities = None
    if shipment_id is not None:
        shipment = session.get(Shipment, shipment_id)
        if shipment is None or shipment.order_id != order.id:
            raise NotFound(f"no shipment {shipment_id} on order {order.id}")
        remaining = invoices.remaining_quantities(session, order)
        quantities = shipment_quantities(order, shipment, remaining)
        if not quantities:
            raise InvalidTransition("issue an invoice", NOTHING_SHIPPED)
    return invoices.issue_invoice(
        session, order, actor, quantities, idempotency_key=idempotency_key
    )


def refusal_reason(exc: Exception) -> str:
    """Why issuing was refused, as a msgid the pages translate."""
    if isinstance(exc, CompanyIncomplete):
        return INCOMPLETE
    if isinstance(exc, InvalidTransition):
        return exc.reason  # NOTHING_LEFT and NOTHING_SHIPPED are msgids
    return str(exc)


def refusal_params(exc: Exception) -> dict[str, Any]:
    """The refusal as an event's parameters: its reason, and the missing fields if any."""
    params: dict[str, Any] = {"reason": refusal_reason(exc)}
    if isinstance(exc, CompanyIncomplete):
        params["fields"] = list(exc.fields)
    return params


def invoice_order_job(
    session: Session, job: Job, sessions: sessionmaker[Session]
) -> dict[str, Any]:
    """Issue the invoice the policy asked for; a refusal goes on the order's timeline."""
    order_id = int(job.payload["order_id"])
    shipment_id = job.payload.get("shipment_id")
    key = f"{INVOICE_JOB}:{order_id}:" + (f"shipment-{shipment_id}" if shipment_id else "paid")
    try:
        with sessions.begin() as unit:
            order = unit.get(Order, order_id)
            if order is None:
                return {"refused": GONE}
            document = issue_for(
                unit,
                order,
                ACTOR,
                shipment_id=int(shipment_id) if shipment_id else None,
                idempotency_key=key,
            )
            reference = document.reference
    except (InvalidTransition, NotFound) as exc:
        params = refusal_params(exc)
        if shipment_id:
            params["shipment_id"] = int(shipment_id)
        with sessions.begin() as unit:
            order = unit.get(Order, order_id)
            if order is not None:
                record_event(unit, order, ACTOR, "invoice.refused", params)
        return {"refused": params["reason"]}
    return {"reference": reference}
