"""Credit notes (avoirs): correcting an issued invoice, in full, by lines or by an amount.

A credit note corrects exactly one issued invoice; it is numbered in its own gapless series
(AV) and its snapshot cites the invoice's number and date (`corrects`). Its lines are
positive amounts like the invoice's (a credited discount stays negative): the document's
kind says they are credited. Three shapes:

- full: every line of the invoice minus what its earlier credit notes credited. "Cancel
  this invoice" is a full credit note with `cancels_invoice` set: the quantities it
  credits may then be invoiced again (`invoices.taken` counts it). Earlier credits by
  amount appear on it as negative `amount` lines ("already credited"), so a full credit
  note always credits exactly what is left.
- by lines: `lines` maps the *invoice's* `DocumentLine` ids to quantities. Each part is
  prorated from what is left of the line with the one rounding rule, so the last part
  takes exactly what is left; a product's discount line follows its product. Discount
  lines are not chosen on their own; the order's discounts outside the lines are
  credited by a full credit note.
- by amount with tax (a refund of 10 €): the amount is split over the invoice's VAT
  rates in proportion to what is left to credit at each rate; each part's net and VAT
  are rounded so that they add up to the part, and the parts to the amount. One
  `amount` line per rate, named after the reason.

Never more than is left: per line (quantity and amounts), per VAT rate and in total;
a request over it is refused with `ValidationFailed` naming what is left.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.documents import invoices
from web.documents.company import require_complete
from web.documents.invoices import HUNDRED, RATE_PLACES, ZERO, Line, money
from web.documents.render import Renderer
from web.documents.storage import DocumentStorage
from web.i18n import N_
from web.models import Document, DocumentLine, Order, OrderEvent
from web.models.enums import CommercialState, DocumentKind, DocumentState
from web.services import order_state
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.payments import payment_counter
from web.services.timeline import Actor, record_event

REASON_MAX_LENGTH = 500
# How an earlier credit by amount is named on a full credit note, in the document's language.
ALREADY_CREDITED = {"fr": "Déjà crédité ({references})", "en": "Already credited ({references})"}

RateKey = tuple[Decimal, str]  # (rate "20.00", VAT category)


class CreditRefused(ValidationFailed):
    """A credit note that asks more than is left (or asks it wrongly).

    `errors` reads as English for the API; `messages` holds the same refusals as msgids
    and their parameters, for the order page to translate.
    """

    def __init__(self, refusals: Mapping[str, tuple[str, Mapping[str, Any]]]) -> None:
        errors = {key: msgid % dict(params) for key, (msgid, params) in refusals.items()}
        super().__init__("the credit note cannot be issued", errors)
        self.messages = {key: (msgid, dict(params)) for key, (msgid, params) in refusals.items()}


# --- What is left to credit ----------------------------------------------------------------


@dataclass(frozen=True)
class LineLeft:
    """One line of the invoice and what its credit notes have not credited yet."""

    line: DocumentLine
    quantity: Decimal
    net: Decimal
    tax: Decimal

    @property
    def gross(self) -> Decimal:
        return self.net + self.tax

    @property
    def rate_key(self) -> RateKey:
        return _rate_key(self.line.tax_rate, self.line.tax_category)

    def as_line(self, quantity: Decimal, net: Decimal, tax: Decimal) -> Line:
        row = self.line
        return Line(
            row.kind,
            row.name,
            quantity,
            Decimal(row.unit_price_net),
            Decimal(row.tax_rate),
            net,
            tax,
            row.order_line_id,
            row.sku,
            row.tax_category,
        )


@dataclass(frozen=True)
class Creditable:
    """What is left to credit of one invoice: per line, per VAT rate and in total."""

    invoice: Document
    lines: tuple[LineLeft, ...]
    # Per rate: (net, tax) left, after every credit note (by lines and by amount).
    by_rate: Mapping[RateKey, tuple[Decimal, Decimal]]
    # Per rate: (net, tax) the credits by amount took, and their references.
    by_amount: Mapping[RateKey, tuple[Decimal, Decimal]]
    amount_references: tuple[str, ...] = field(default=())
    cancelled: bool = False

    @property
    def gross(self) -> Decimal:
        return sum((net + tax for net, tax in self.by_rate.values()), ZERO)

    def rate_gross(self, key: RateKey) -> Decimal:
        net, tax = self.by_rate.get(key, (ZERO, ZERO))
        return net + tax

    def line(self, line_id: int) -> LineLeft | None:
        return next((left for left in self.lines if left.line.id == line_id), None)

    def discount_of(self, left: LineLeft) -> LineLeft | None:
        """The discount line that follows a product line, if any."""
        if left.line.order_line_id is None or left.line.kind == "discount":
            return None
        return next(
            (
                other
                for other in self.lines
                if other.line.kind == "discount"
                and other.line.order_line_id == left.line.order_line_id
            ),
            None,
        )


def credit_notes_of(session: Session, invoice: Document) -> list[Document]:
    """The issued credit notes correcting the invoice, oldest first."""
    return list(
        session.scalars(
            select(Document)
            .where(
                Document.corrects_id == invoice.id,
                Document.kind == DocumentKind.CREDIT_NOTE,
                Document.state == DocumentState.ISSUED,
            )
            .order_by(Document.number)
        )
    )


def creditable(session: Session, invoice: Document) -> Creditable:
    """What the invoice's issued credit notes have not credited yet."""
    return remaining(invoice, credit_notes_of(session, invoice))


def remaining(invoice: Document, notes: Sequence[Document]) -> Creditable:
    """What these credit notes of the invoice leave to credit (plain arithmetic)."""
    credited_lines: dict[tuple[Any, ...], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    by_amount: dict[RateKey, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    references = []
    for note in notes:
        for row in note.lines:
            if row.kind == "amount":
                # A refund adds to it; a full note taking earlier refunds off subtracts.
                figures = by_amount[_rate_key(row.tax_rate, row.tax_category)]
                figures[0] += row.total_net
                figures[1] += row.tax_amount
                if row.total_gross > 0 and note.reference not in references:
                    references.append(note.reference or "")
                continue
            figures = credited_lines[_line_key(row)]
            figures[0] += Decimal(row.quantity)
            figures[1] += row.total_net
            figures[2] += row.tax_amount
    lines = []
    by_rate: dict[RateKey, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for row in invoice.lines:
        quantity, net, tax = credited_lines.pop(_line_key(row), [ZERO, ZERO, ZERO])
        left = LineLeft(
            row, Decimal(row.quantity) - quantity, row.total_net - net, row.tax_amount - tax
        )
        lines.append(left)
        by_rate[left.rate_key][0] += left.net
        by_rate[left.rate_key][1] += left.tax
    for key, (net, tax) in by_amount.items():
        by_rate[key][0] -= net
        by_rate[key][1] -= tax
    return Creditable(
        invoice,
        tuple(lines),
        {key: (net, tax) for key, (net, tax) in by_rate.items()},
        {key: (net, tax) for key, (net, tax) in by_amount.items() if net or tax},
        tuple(references),
        cancelled=any(note.cancels_invoice for note in notes),
    )


def _rate_key(rate: Decimal, category: str) -> RateKey:
    return (Decimal(rate).quantize(RATE_PLACES), category)


def _line_key(row: DocumentLine) -> tuple[Any, ...]:
    # One invoice never holds two lines of the same kind, order line and rate.
    return (row.kind, row.order_line_id, Decimal(row.tax_rate).quantize(RATE_PLACES))


# --- The lines of a credit note ------------------------------------------------------------


def full_lines(left: Creditable, locale: str = "fr") -> list[Line]:
    """Everything left: each line's rest, then earlier credits by amount taken off."""
    lines = [
        entry.as_line(entry.quantity, entry.net, entry.tax)
        for entry in left.lines
        # A discount whose amounts are all credited has nothing to say, whatever its quantity.
        if entry.net or entry.tax or (entry.quantity and entry.line.kind != "discount")
    ]
    references = ", ".join(left.amount_references)
    name = ALREADY_CREDITED.get(locale, ALREADY_CREDITED["en"]).format(references=references)
    for (rate, category), (net, tax) in sorted(left.by_amount.items(), reverse=True):
        lines.append(
            Line("amount", name, Decimal(1), -net, rate, -net, -tax, tax_category=category)
        )
    return lines


def lines_by_quantity(left: Creditable, quantities: Mapping[int, Decimal]) -> list[Line]:
    """The parts of the invoice's lines asked, each product followed by its discount."""
    refusals: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for line_id, quantity in quantities.items():
        entry = left.line(line_id)
        key = f"line {line_id}"
        if entry is None:
            refusals[key] = (N_("not a line of this invoice"), {})
        elif entry.line.kind == "discount":
            refusals[key] = (N_("a discount is credited with its product"), {})
        elif quantity <= 0:
            refusals[key] = (N_("the quantity must be positive"), {})
        elif quantity > entry.quantity:
            refusals[key] = (
                N_("only %(quantity)s left to credit"),
                {"quantity": _number(entry.quantity)},
            )
    if refusals:
        raise CreditRefused(refusals)
    lines: list[Line] = []
    for entry in left.lines:
        if entry.line.id not in quantities:
            continue
        quantity = quantities[entry.line.id]
        lines.append(_part(entry, quantity, entry.quantity))
        discount = left.discount_of(entry)
        if discount is not None and (discount.net or discount.tax):
            # The discount follows its product: the same share of what is left of it.
            lines.append(_part(discount, quantity, entry.quantity))
    _check_rates(left, lines)
    return lines


def _part(entry: LineLeft, quantity: Decimal, of: Decimal) -> Line:
    """`quantity` out of `of` of what is left of the line; all of it when it is all."""
    if quantity >= of:
        return entry.as_line(entry.quantity, entry.net, entry.tax)
    share = min(quantity, entry.quantity)
    return entry.as_line(share, money(entry.net * quantity / of), money(entry.tax * quantity / of))


def lines_by_amount(left: Creditable, amount: Decimal, name: str) -> list[Line]:
    """An amount with tax split over the rates in proportion to what is left at each."""
    if amount <= 0:
        raise CreditRefused({"amount": (N_("the amount must be positive"), {})})
    if money(amount) != amount:
        raise CreditRefused({"amount": (N_("the amount has at most two decimals"), {})})
    rates = sorted(
        (key for key, (net, tax) in left.by_rate.items() if net + tax > 0),
        key=lambda key: (left.rate_gross(key), key),
    )
    room = sum((left.rate_gross(key) for key in rates), ZERO)
    if amount > min(room, left.gross):
        raise CreditRefused(
            {
                "amount": (
                    N_("only %(amount)s left to credit"),
                    {"amount": str(max(min(room, left.gross), ZERO))},
                )
            }
        )
    lines = []
    amount_left, room_left = amount, room
    for key in rates:  # the largest rest last: it takes what is left of the amount
        net_left, tax_left = left.by_rate[key]
        rest = net_left + tax_left
        room_left -= rest
        # Proportional, but never more than the rate's rest nor less than the others can hold.
        share = money(amount_left * rest / (rest + room_left))
        share = min(rest, max(share, amount_left - room_left))
        amount_left -= share
        if share:
            net, tax = _split_gross(share, key, net_left, tax_left)
            lines.append(
                Line("amount", name, Decimal(1), net, key[0], net, tax, tax_category=key[1])
            )
    return lines


def _split_gross(
    share: Decimal, key: RateKey, net_left: Decimal, tax_left: Decimal
) -> tuple[Decimal, Decimal]:
    """A part with tax as net + VAT at the rate, never more of either than is left."""
    rate = key[0]
    if share == net_left + tax_left:
        return net_left, tax_left
    net = money(share * HUNDRED / (HUNDRED + rate))
    net = min(net, net_left)
    tax = share - net
    if tax > tax_left:
        tax = tax_left
        net = share - tax
    return net, tax


def _check_rates(left: Creditable, lines: list[Line]) -> None:
    """No rate, and not the whole, credited beyond what is left (credits by amount count)."""
    asked: dict[RateKey, Decimal] = defaultdict(lambda: ZERO)
    asked_net: dict[RateKey, Decimal] = defaultdict(lambda: ZERO)
    asked_tax: dict[RateKey, Decimal] = defaultdict(lambda: ZERO)
    for line in lines:
        key = _rate_key(line.tax_rate, line.tax_category)
        asked[key] += line.total_gross
        asked_net[key] += line.total_net
        asked_tax[key] += line.tax_amount
    refusals: dict[str, tuple[str, Mapping[str, Any]]] = {}
    for key, gross in asked.items():
        rest = left.rate_gross(key)
        net_left, tax_left = left.by_rate.get(key, (ZERO, ZERO))
        if gross > rest or asked_net[key] > net_left or asked_tax[key] > tax_left:
            refusals[f"rate {key[0]}"] = (
                N_("only %(amount)s left to credit at %(rate)s %% VAT"),
                {"amount": str(max(rest, ZERO)), "rate": _number(key[0])},
            )
    total = sum(asked.values(), ZERO)
    if not refusals and total > left.gross:
        refusals["total"] = (
            N_("only %(amount)s left to credit"),
            {"amount": str(max(left.gross, ZERO))},
        )
    if not refusals and total <= 0:
        refusals["total"] = (N_("nothing to credit"), {})
    if refusals:
        raise CreditRefused(refusals)


def _number(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


# --- Issuing -------------------------------------------------------------------------------


def issue_credit_note(
    session: Session,
    invoice: Document,
    actor: Actor,
    *,
    lines: Mapping[int, Decimal] | None = None,
    amount: Decimal | None = None,
    reason: str,
    cancels_invoice: bool = False,
    idempotency_key: str | None = None,
    locale: str = "fr",
    storage: DocumentStorage | None = None,
    renderer: Renderer | None = None,
) -> Document:
    """Issue a credit note of the invoice: in full (default), by lines or by an amount.

    `lines` maps the invoice's document line ids to quantities; `amount` is an amount with
    tax. `cancels_invoice` (full only) frees the quantities for a corrected invoice. One
    unit of work in the caller's transaction, like `invoices.issue_invoice`: the order row
    is locked, the company must be complete, the next AV number is taken.

    Raises ValidationFailed (`CreditRefused`) for a missing reason or more than is left,
    InvalidTransition for a document that is not an issued invoice or nothing left.
    """
    if idempotency_key:
        existing = invoices._by_key(session, idempotency_key)
        if existing is not None:
            if existing.corrects_id != invoice.id:
                raise InvalidTransition(
                    "issue a credit note", N_("this Idempotency-Key was used for another document")
                )
            return existing
    reason = (reason or "").strip()
    if not reason:
        raise CreditRefused({"reason": (N_("Say why the invoice is credited."), {})})
    if len(reason) > REASON_MAX_LENGTH:
        raise CreditRefused({"reason": (N_("Keep the reason under 500 characters."), {})})
    if lines is not None and amount is not None:
        raise CreditRefused({"amount": (N_("Credit either lines or an amount, not both."), {})})
    if cancels_invoice and (lines is not None or amount is not None):
        raise CreditRefused({"lines": (N_("Cancelling an invoice credits all of it."), {})})
    if invoice.kind != DocumentKind.INVOICE or invoice.state != DocumentState.ISSUED:
        raise InvalidTransition("issue a credit note", N_("only an issued invoice can be credited"))
    company = require_complete(session)
    order = invoices._locked_order(session, invoice.order)
    left = creditable(session, invoice)
    if left.gross <= 0:
        raise InvalidTransition("issue a credit note", N_("nothing is left to credit"))
    if amount is not None:
        credit = lines_by_amount(left, amount, reason)
    elif lines is not None:
        credit = lines_by_quantity(left, lines)
    else:
        credit = full_lines(left, locale)
    return invoices._issue(
        session,
        order,
        actor,
        DocumentKind.CREDIT_NOTE,
        credit,
        company,
        locale=locale,
        storage=storage,
        renderer=renderer,
        idempotency_key=idempotency_key,
        corrects=invoice,
        reason=reason,
        cancels_invoice=cancels_invoice,
    )


def parse_amount(value: object) -> Decimal:
    """An amount typed or sent as text ("10", "10.5", "10,50"), refused when not one."""
    try:
        amount = Decimal(
            str(value).strip().replace(",", ".").replace("\u00a0", "").replace(" ", "")
        )
    except (InvalidOperation, ValueError):
        raise CreditRefused({"amount": (N_("Enter an amount such as 10.50."), {})}) from None
    if not amount.is_finite():
        raise CreditRefused({"amount": (N_("Enter an amount such as 10.50."), {})})
    return amount


# --- Proposals: a refund or a cancellation not credited yet ---------------------------------

PROPOSED_EVENT = "credit_note.proposed"
CANCEL_REASON = N_("Order cancelled")
REFUND_REASON = N_("Refund")


@dataclass(frozen=True)
class Proposal:
    """A credit note the order page offers to prefill; a person confirms it.

    `kind` "cancel": the order was cancelled, the invoice is not (a full credit note that
    cancels it, `amount` being what is left of it); "amount": money refunded and not
    credited yet (a credit by amount of `amount`). `reason` is a msgid to prefill.
    """

    kind: str
    invoice: Document
    amount: Decimal
    reason: str


def issued_invoices(session: Session, order: Order) -> list[Document]:
    """The order's issued invoices, oldest first."""
    return list(
        session.scalars(
            select(Document)
            .where(
                Document.order_id == order.id,
                Document.kind == DocumentKind.INVOICE,
                Document.state == DocumentState.ISSUED,
            )
            .order_by(Document.number)
        )
    )


def creditables(session: Session, order: Order) -> dict[int, Creditable]:
    """What each of the order's issued invoices leaves to credit, by invoice id, oldest
    invoice first."""
    return {invoice.id: creditable(session, invoice) for invoice in issued_invoices(session, order)}


def proposals(
    session: Session, order: Order, left: Mapping[int, Creditable] | None = None
) -> list[Proposal]:
    """The credit notes a refund or a cancellation calls for and no credit note made yet.

    A cancelled order proposes cancelling each invoice not cancelled yet. Otherwise the
    money refunded (as the order page counts it) minus what credit notes other than
    cancellations credited, never more than the documents still invoice, is proposed
    as credits by amount, on the latest invoices first. `left`: `creditables(order)` when
    the caller has it already (the order page shows it too).
    """
    if left is None:
        left = creditables(session, order)
    invoices_ = [entry.invoice for entry in left.values()]
    if not invoices_:
        return []
    if order.commercial_state == CommercialState.CANCELLED:
        return [
            Proposal("cancel", invoice, left[invoice.id].gross, CANCEL_REASON)
            for invoice in invoices_
            if not left[invoice.id].cancelled and left[invoice.id].gross > 0
        ]
    notes = list(
        session.scalars(
            select(Document).where(
                Document.order_id == order.id,
                Document.kind == DocumentKind.CREDIT_NOTE,
                Document.state == DocumentState.ISSUED,
            )
        )
    )
    refunded = order_state.refunded_amount(order.transactions, payment_counter(order.shop, order))
    credited = sum((note.total_gross or ZERO for note in notes if not note.cancels_invoice), ZERO)
    invoiced = sum((invoice.total_gross or ZERO for invoice in invoices_), ZERO) - sum(
        (note.total_gross or ZERO for note in notes), ZERO
    )
    wanted = min(refunded - credited, invoiced)
    found = []
    for invoice in reversed(invoices_):
        room = _amount_room(left[invoice.id])
        part = min(room, wanted)
        if part > 0:
            found.append(Proposal("amount", invoice, part, REFUND_REASON))
            wanted -= part
    return found


def _amount_room(left: Creditable) -> Decimal:
    """The most a credit by amount of this invoice can take."""
    room = sum((left.rate_gross(key) for key in left.by_rate if left.rate_gross(key) > 0), ZERO)
    return max(min(room, left.gross), ZERO)


def note_proposals(session: Session, order: Order, actor: Actor) -> None:
    """Record "credit note proposed" on the order when what is proposed has changed.

    Called when a refund or a cancellation reaches the order (from the shop or by hand);
    nothing is issued: a person confirms on the order page.
    """
    if not any(document.kind == DocumentKind.INVOICE for document in order.documents):
        return
    found = proposals(session, order)
    if not found:
        return
    params: dict[str, Any] = {
        "cancel": found[0].kind == "cancel",
        "invoices": ", ".join(proposal.invoice.reference or "" for proposal in found),
        "amount": str(sum((proposal.amount for proposal in found), ZERO)),
        "currency": order.currency,
    }
    last = session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.kind == PROPOSED_EVENT)
        .order_by(OrderEvent.id.desc())
        .limit(1)
    ).first()
    if last is not None and {key: last.details.get(key) for key in params} == params:
        return
    record_event(session, order, actor, PROPOSED_EVENT, params)
