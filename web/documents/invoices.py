"""Invoices (factures): what remains to invoice, one rounding rule, and issuing in one unit of work.

The arithmetic. Every amount is a `Decimal` rounded half-up to the cent *on each line*; a
document's totals are the sums of its lines (as shops compute them), and its VAT per rate is
the sum of its lines' VAT at that rate. A product line invoiced in full carries exactly the
shop's own line figures (`OrderLine.total_net`, `tax_amount`); a part of a line is prorated
and rounded, and the last part takes what is left, so the invoices of an order always add
up to the shop's lines to the cent. A line's discount is its own `discount` line right
after it (its VAT = the shop's line VAT − the VAT of the undiscounted amount), shipping is
a `shipping` line at the rate the shop's shipping tax implies, and the order's discounts
outside the lines are `discount` lines per rate. Under the VAT franchise (art. 293 B du
CGI) nothing carries VAT: each line is the amount the buyer pays, category E.

What remains to invoice is what the order holds minus what invoices took, plus what the
credit notes that cancel an invoice gave back (a partial credit note — a refund — gives
nothing back: the goods were invoiced). The same quantity is never invoiced twice.

The snapshot (JSON frozen in `Document.snapshot`; every amount a string; what the PDF
template, the Factur-X XML, the exports and the API read):

    kind           "invoice" | "credit_note"
    reference, issue_date ("YYYY-MM-DD"), due_date (invoice: issue + payment_days; else null)
    delivery_date  the goods' date (last shipment's day, or the order's day)
    locale, currency
    seller         web.documents.company.seller(): name, legal_name, trade_name,
                   address_lines, street_lines, postcode, city, country (ISO 2), email,
                   phone, website, siren, siret, rcs_city, legal_form, share_capital,
                   vat_number, vat_regime, iban, bic, has_logo
    buyer          name, company, address_lines, street_lines, postcode, city, country (ISO
                   2), email, phone, vat_number, siren, is_business
    delivery       the delivery party (as on delivery notes), with country (ISO 2)
    order          number, placed_on, marketplace_ref, shop
    lines          [{position, kind, order_line_id, sku, name, quantity, unit_price_net,
                     tax_rate ("20.00"), tax_category ("S" | "E"), total_net, tax_amount,
                     total_gross}]
    taxes          [{rate, category, base, tax, exemption_reason}] per rate and category
    totals         {net, tax, gross, paid, due}
    shop_check     {shop_gross, invoiced_gross, difference} when this invoice completes
                   the order (the order's invoices then add up to the shop's total, or
                   the difference is shown and recorded), else null
    vat_regime     "normal" | "franchise";  vat_exemption  the franchise mention or ""
    terms          {payment_terms, early_payment, late_penalty, recovery_indemnity,
                    business_buyer}
    corrects       credit notes: {reference, issue_date} of the invoice; else null
    reason         credit notes: why (as typed); else ""
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.documents import facturx, parties
from web.documents.company import FRANCHISE_MENTION, require_complete, seller
from web.documents.numbering import next_number
from web.documents.render import Asset, Renderer, WeasyPrintEngine, load_assets
from web.documents.storage import DocumentStorage, KeyExists, configured, sha256
from web.models import CompanySettings, Document, DocumentLine, Order, OrderLine, utcnow
from web.models.enums import (
    CommercialState,
    DocumentKind,
    DocumentState,
    PaymentState,
    ShipmentState,
    VatRegime,
)
from web.services import outbox
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor, record_event

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal(100)
RATE_PLACES = Decimal("0.01")
UNIT_PLACES = Decimal("0.000001")
# French VAT rates: a shipping rate computed from the shop's figures snaps to the nearest.
KNOWN_RATES = (Decimal("20.00"), Decimal("10.00"), Decimal("5.50"), Decimal("2.10"), ZERO)
INVOICED_KINDS = ("product", "fee", "discount", "shipping")
TEMPLATES = {DocumentKind.INVOICE: "invoice.html", DocumentKind.CREDIT_NOTE: "credit_note.html"}
EVENTS = {DocumentKind.INVOICE: "invoice.issued", DocumentKind.CREDIT_NOTE: "credit_note.issued"}


def money(value: Decimal) -> Decimal:
    """Round to the cent, half up: the one rounding rule of documents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --- The arithmetic ------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line of an invoice or credit note, its amounts rounded to the cent."""

    kind: str
    name: str
    quantity: Decimal
    unit_price_net: Decimal
    tax_rate: Decimal
    total_net: Decimal
    tax_amount: Decimal
    order_line_id: int | None = None
    sku: str = ""
    tax_category: str = "S"

    @property
    def total_gross(self) -> Decimal:
        return self.total_net + self.tax_amount

    def as_json(self, position: int) -> dict[str, Any]:
        return {
            "position": position,
            "kind": self.kind,
            "order_line_id": self.order_line_id,
            "sku": self.sku,
            "name": self.name,
            "quantity": str(self.quantity),
            "unit_price_net": str(self.unit_price_net),
            "tax_rate": str(self.tax_rate.quantize(RATE_PLACES)),
            "tax_category": self.tax_category,
            "total_net": str(self.total_net),
            "tax_amount": str(self.tax_amount),
            "total_gross": str(self.total_gross),
        }

    def row(self, position: int) -> DocumentLine:
        return DocumentLine(
            position=position,
            kind=self.kind,
            order_line_id=self.order_line_id,
            sku=self.sku,
            name=self.name,
            quantity=self.quantity,
            unit_price_net=self.unit_price_net,
            tax_rate=self.tax_rate,
            tax_category=self.tax_category,
            total_net=self.total_net,
            tax_amount=self.tax_amount,
            total_gross=self.total_gross,
        )


@dataclass(frozen=True)
class TaxBreakdown:
    """The VAT of one rate and category: its taxable base and the VAT on it."""

    rate: Decimal
    category: str
    base: Decimal
    tax: Decimal


@dataclass(frozen=True)
class Totals:
    net: Decimal
    tax: Decimal
    gross: Decimal
    taxes: tuple[TaxBreakdown, ...]


def totals(lines: Iterable[Line]) -> Totals:
    """The document's totals: sums of its lines, VAT per rate and category (highest first)."""
    lines = list(lines)
    bases: dict[tuple[Decimal, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for line in lines:
        figures = bases[(line.tax_rate.quantize(RATE_PLACES), line.tax_category)]
        figures[0] += line.total_net
        figures[1] += line.tax_amount
    taxes = tuple(
        TaxBreakdown(rate, category, base, tax)
        for (rate, category), (base, tax) in sorted(bases.items(), reverse=True)
    )
    net = sum((line.total_net for line in lines), ZERO)
    tax = sum((line.tax_amount for line in lines), ZERO)
    return Totals(net, tax, net + tax, taxes)


def _prorate(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    return money(amount * part / whole) if whole else ZERO


def _plain(value: Decimal) -> Decimal:
    """The value without trailing zeros beyond the cents, never in exponent form: 12.5 → 12.50."""
    value = value.normalize()
    return value.quantize(CENT) if value.as_tuple().exponent > -2 else value  # type: ignore[operator]


def _snap_rate(rate: Decimal) -> Decimal:
    nearest = min(KNOWN_RATES, key=lambda known: abs(known - rate))
    return nearest if abs(nearest - rate) <= Decimal("0.6") else rate.quantize(RATE_PLACES)


# --- What remains to invoice ---------------------------------------------------------------


@dataclass(frozen=True)
class Taken:
    """What the order's documents took so far, per order line and kind (net of cancellations)."""

    quantities: Mapping[int, Decimal]
    amounts: Mapping[tuple[int | None, str], tuple[Decimal, Decimal]]  # (net, tax)


def taken(session: Session, order: Order) -> Taken:
    """What invoices took, minus what the credit notes cancelling them gave back."""
    sign = _sign()
    query = (
        select(
            DocumentLine.order_line_id,
            DocumentLine.kind,
            func.sum(DocumentLine.quantity * sign),
            func.sum(DocumentLine.total_net * sign),
            func.sum(DocumentLine.tax_amount * sign),
        )
        .join(Document, Document.id == DocumentLine.document_id)
        .where(
            Document.order_id == order.id,
            Document.state == DocumentState.ISSUED,
            (Document.kind == DocumentKind.INVOICE) | Document.cancels_invoice.is_(True),
            DocumentLine.kind.in_(INVOICED_KINDS),
        )
        .group_by(DocumentLine.order_line_id, DocumentLine.kind)
    )
    quantities: dict[int, Decimal] = {}
    amounts: dict[tuple[int | None, str], tuple[Decimal, Decimal]] = {}
    for line_id, kind, quantity, net, tax in session.execute(query):
        amounts[(line_id, kind)] = (Decimal(net or 0), Decimal(tax or 0))
        if line_id is not None and kind in ("product", "fee"):
            quantities[line_id] = Decimal(quantity or 0)
    return Taken(quantities, amounts)


def _sign() -> Any:
    from sqlalchemy import case

    return case((Document.kind == DocumentKind.CREDIT_NOTE, -1), else_=1)


def invoiceable_lines(order: Order) -> list[OrderLine]:
    """The order's lines that carry money: top-level lines (a bundle's parts carry none)."""
    return [line for line in order.lines if line.parent_line_id is None and line.quantity > 0]


def remaining_quantities(session: Session, order: Order) -> dict[int, Decimal]:
    """Per order line, the quantity not invoiced yet."""
    already = taken(session, order).quantities
    return {
        line.id: Decimal(line.quantity) - already.get(line.id, ZERO)
        for line in invoiceable_lines(order)
    }


def invoice_lines(
    session: Session,
    order: Order,
    company: CompanySettings,
    quantities: Mapping[int, Decimal] | None = None,
) -> list[Line]:
    """The lines of the next invoice: the quantities asked (default: all that remains),
    each product followed by its discount, then shipping and the order's discounts when
    no invoice carried them yet.

    Raises ValidationFailed for a line that is not the order's or a quantity above what
    remains, InvalidTransition when nothing is left to invoice.
    """
    state = taken(session, order)
    franchise = company.vat_regime == VatRegime.FRANCHISE
    by_id = {line.id: line for line in invoiceable_lines(order)}
    remaining = {
        line_id: Decimal(line.quantity) - state.quantities.get(line_id, ZERO)
        for line_id, line in by_id.items()
    }
    if quantities is None:
        wanted = {line_id: left for line_id, left in remaining.items() if left > 0}
    else:
        wanted = {}
        errors = {}
        for line_id, quantity in quantities.items():
            if line_id not in by_id:
                errors[f"line {line_id}"] = "not a line of this order"
            elif quantity <= 0:
                errors[f"line {line_id}"] = "the quantity must be positive"
            elif quantity > remaining[line_id]:
                errors[f"line {line_id}"] = f"only {remaining[line_id].normalize()} left to invoice"
            else:
                wanted[line_id] = quantity
        if errors:
            raise ValidationFailed("some lines cannot be invoiced", errors)
    lines: list[Line] = []
    for line in order.lines:
        if line.id in wanted:
            lines += _product_lines(line, wanted[line.id], remaining[line.id], state, franchise)
    lines += _order_level_lines(order, state, franchise, has_products=bool(lines))
    if not lines:
        raise InvalidTransition("issue an invoice", "nothing is left to invoice")
    return lines


def _product_lines(
    line: OrderLine, quantity: Decimal, remaining: Decimal, state: Taken, franchise: bool
) -> list[Line]:
    """One order line's part: the undiscounted amount, then its discount line if any."""
    order = line.order
    whole = Decimal(line.quantity)
    rate = ZERO if franchise else Decimal(line.tax_rate)
    if franchise:
        after_net, after_tax = line.total_gross, ZERO
        discount_net = line.discount_amount
        if not order.prices_include_tax:
            discount_net = money(line.discount_amount * (1 + Decimal(line.tax_rate) / HUNDRED))
    else:
        after_net, after_tax = line.total_net, line.tax_amount
        discount_net = line.discount_amount
        if order.prices_include_tax:
            discount_net = money(line.discount_amount * HUNDRED / (HUNDRED + rate))
    before_net = after_net + discount_net
    # Without a discount the line is the shop's own figures, its VAT as the shop computed it
    # (a shop may spread an order-level VAT over its lines: rate × net would differ).
    before_tax = money(before_net * rate / HUNDRED) if discount_net else after_tax
    discount_tax = before_tax - after_tax
    kind = "fee" if line.kind.value != "product" else "product"
    if quantity == remaining:  # the last part takes what is left: the parts add up exactly
        net_taken, tax_taken = state.amounts.get((line.id, kind), (ZERO, ZERO))
        dnet_taken, dtax_taken = state.amounts.get((line.id, "discount"), (ZERO, ZERO))
        part_net, part_tax = before_net - net_taken, before_tax - tax_taken
        # Discount lines are stored negative: what they took is added back.
        part_dnet, part_dtax = discount_net + dnet_taken, discount_tax + dtax_taken
    else:
        part_net, part_tax = (
            _prorate(before_net, quantity, whole),
            _prorate(before_tax, quantity, whole),
        )
        part_dnet = _prorate(discount_net, quantity, whole)
        part_dtax = _prorate(discount_tax, quantity, whole)
    category = "E" if franchise else "S"
    unit = _plain((before_net / whole).quantize(UNIT_PLACES, rounding=ROUND_HALF_UP))
    name = f"{line.name} — {line.options}" if line.options else line.name
    result = [
        Line(
            kind,
            name,
            quantity,
            max(unit, ZERO),
            rate,
            part_net,
            part_tax,
            line.id,
            line.sku,
            category,
        )
    ]
    if part_dnet:
        result.append(
            Line(
                "discount",
                name,
                quantity,
                ZERO,
                rate,
                -part_dnet,
                -part_dtax,
                line.id,
                line.sku,
                category,
            )
        )
    return result


def _order_level_lines(
    order: Order, state: Taken, franchise: bool, has_products: bool
) -> list[Line]:
    """Shipping and the discounts outside the lines, on the first invoice that has room."""
    lines: list[Line] = []
    category = "E" if franchise else "S"
    if order.shipping_total and not _carried(state, "shipping"):
        gross = order.shipping_total
        net = gross if franchise else gross - order.shipping_tax
        tax = ZERO if franchise else order.shipping_tax
        rate = ZERO if franchise or not net else _snap_rate(tax * HUNDRED / net)
        label = order.shipping_label or "Shipping"
        lines.append(
            Line("shipping", label, Decimal(1), net, rate, net, tax, tax_category=category)
        )
    outside = _outside_discount(order)
    if outside and has_products and not _carried(state, "discount"):
        lines += _split_discount(order, outside, franchise)
    return lines


def _carried(state: Taken, kind: str) -> bool:
    """Whether an invoice carries the order's line of this kind (a cancellation gives it back)."""
    net, tax = state.amounts.get((None, kind), (ZERO, ZERO))
    return bool(net or tax)


def _outside_discount(order: Order) -> Decimal:
    """The order's discount (tax included) that its lines' totals do not already hold."""
    from web.services.reconcile import CENT as _cent

    inside = ZERO
    for line in invoiceable_lines(order):
        if order.prices_include_tax:
            inside += line.discount_amount
        else:
            inside += line.discount_amount * (1 + Decimal(line.tax_rate) / HUNDRED)
    outside = order.discount_total - inside.quantize(_cent, rounding=ROUND_HALF_UP)
    return outside if outside > 0 else ZERO


def _split_discount(order: Order, outside: Decimal, franchise: bool) -> list[Line]:
    """The discount over the rates in proportion to the lines' amounts with tax."""
    label = ", ".join(str(code) for code in order.discount_codes) or "Discount"
    if franchise:
        return [Line("discount", label, Decimal(1), ZERO, ZERO, -outside, ZERO, tax_category="E")]
    weights: dict[Decimal, Decimal] = defaultdict(lambda: ZERO)
    for line in invoiceable_lines(order):
        weights[Decimal(line.tax_rate).quantize(RATE_PLACES)] += line.total_gross
    total_weight = sum(weights.values(), ZERO)
    rates = sorted(weights, reverse=True)
    lines = []
    left = outside
    for index, rate in enumerate(rates):
        share = left if index == len(rates) - 1 else _prorate(outside, weights[rate], total_weight)
        left -= share
        net = money(share * HUNDRED / (HUNDRED + rate))
        lines.append(Line("discount", label, Decimal(1), ZERO, rate, -net, -(share - net)))
    return lines


# --- The snapshot --------------------------------------------------------------------------


def buyer_party(order: Order, locale: str) -> dict[str, Any]:
    """The buyer as invoiced: a person or a business with its identifiers."""
    billing = order.billing_address or order.shipping_address or {}
    buyer = parties.party(billing, locale, email=order.email)
    company = str(billing.get("company") or "").strip()
    vat_number = str(billing.get("vat_id") or billing.get("vat_number") or "").replace(" ", "")
    siren = str(billing.get("siren") or "")
    if not siren and vat_number.upper().startswith("FR") and len(vat_number) == 13:
        siren = vat_number[4:]  # a French VAT number is FR + key + the SIREN
    street = [str(billing[key]) for key in parties.STREET_KEYS if billing.get(key)]
    buyer.update(
        {
            "company": company,
            "street_lines": street,
            "postcode": str(billing.get("postcode") or billing.get("zip") or ""),
            "city": str(billing.get("city") or ""),
            "country": str(billing.get("country_code") or billing.get("country") or "").upper()[:2],
            "vat_number": vat_number,
            "siren": siren,
            "is_business": bool(company or vat_number or siren),
        }
    )
    return buyer


def _delivery_date(order: Order) -> dt.date:
    shipped = [
        s.shipped_at for s in order.shipments if s.shipped_at and s.state != ShipmentState.CANCELLED
    ]
    moment = max(shipped) if shipped else order.placed_at
    return moment.astimezone(DESK_TZ).date()


def snapshot(
    order: Order,
    company: CompanySettings,
    kind: DocumentKind,
    reference: str,
    issue_date: dt.date,
    lines: list[Line],
    locale: str,
    *,
    corrects: Document | None = None,
    reason: str = "",
    shop_check: dict[str, str] | None = None,
) -> dict[str, Any]:
    """What the document says, as plain JSON frozen in its row (format: the module's doc)."""
    figures = totals(lines)
    franchise = company.vat_regime == VatRegime.FRANCHISE
    buyer = buyer_party(order, locale)
    delivery = parties.delivery_party(order, locale)
    address = order.shipping_address or order.billing_address or {}
    delivery["country"] = str(address.get("country_code") or address.get("country") or "").upper()[
        :2
    ]
    paid = ZERO
    if kind == DocumentKind.INVOICE and order.payment_state == PaymentState.PAID:
        paid = figures.gross
    due_date = None
    if kind == DocumentKind.INVOICE:
        due_date = (issue_date + dt.timedelta(days=company.payment_days)).isoformat()
    return {
        "kind": kind.value,
        "reference": reference,
        "issue_date": issue_date.isoformat(),
        "due_date": due_date,
        "delivery_date": _delivery_date(order).isoformat(),
        "locale": locale,
        "currency": order.currency,
        "seller": seller(company),
        "buyer": buyer,
        "delivery": delivery,
        "order": {
            "number": order.number,
            "placed_on": order.placed_at.astimezone(DESK_TZ).date().isoformat(),
            "marketplace_ref": order.marketplace_ref,
            "shop": order.shop.name,
        },
        "lines": [line.as_json(position) for position, line in enumerate(lines, start=1)],
        "taxes": [
            {
                "rate": str(tax.rate),
                "category": tax.category,
                "base": str(tax.base),
                "tax": str(tax.tax),
                "exemption_reason": FRANCHISE_MENTION if tax.category == "E" else "",
            }
            for tax in figures.taxes
        ],
        "totals": {
            "net": str(figures.net),
            "tax": str(figures.tax),
            "gross": str(figures.gross),
            "paid": str(paid),
            "due": str(figures.gross - paid),
        },
        "shop_check": shop_check,
        "vat_regime": company.vat_regime.value,
        "vat_exemption": FRANCHISE_MENTION if franchise else "",
        "terms": {
            "payment_terms": company.payment_terms,
            "early_payment": company.early_payment,
            "late_penalty": company.late_penalty,
            "recovery_indemnity": company.recovery_indemnity,
            "business_buyer": buyer["is_business"],
        },
        "corrects": (
            {"reference": corrects.reference, "issue_date": corrects.issue_date.isoformat()}
            if corrects is not None and corrects.issue_date is not None
            else None
        ),
        "reason": reason,
    }


# --- Rendering -----------------------------------------------------------------------------


@functools.cache
def _pdfa_renderer() -> Renderer:
    return Renderer(WeasyPrintEngine(pdf_variant="pdf/a-3b"))


def render_document_pdf(
    data: Mapping[str, Any], company: CompanySettings, renderer: Renderer | None = None
) -> bytes:
    """The invoice or credit note as PDF/A-3b carrying its Factur-X XML (raises FacturXError
    when that XML is not valid: such a document must not be issued)."""
    renderer = renderer or _pdfa_renderer()
    assets = dict(renderer.assets)
    if company.logo:
        assets["asset:company-logo"] = Asset(company.logo, company.logo_mime_type or "image/png")
    template = TEMPLATES[DocumentKind(data["kind"])]
    from web.documents.render import render_html

    pdf = renderer.engine.pdf(render_html(template, {"doc": data}, data["locale"]), assets)
    return facturx.embed(pdf, data)


# --- Issuing -------------------------------------------------------------------------------


def issue_invoice(
    session: Session,
    order: Order,
    actor: Actor,
    quantities: Mapping[int, Decimal] | None = None,
    *,
    idempotency_key: str | None = None,
    locale: str = "fr",
    storage: DocumentStorage | None = None,
    renderer: Renderer | None = None,
) -> Document:
    """Issue an invoice of the quantities asked (default: everything not invoiced yet).

    One unit of work in the caller's transaction (never commits; the commit releases the
    series' lock): the order row is locked (two issuers of one order take turns), the
    company must be complete, the next FA number is taken, the snapshot frozen, the PDF
    rendered and stored with its SHA-256, the document and its lines written, the order's
    event recorded. Any failure before the commit gives the number back.
    """
    if idempotency_key:
        existing = _by_key(session, idempotency_key)
        if existing is not None:
            return existing
    company = require_complete(session)
    order = _locked_order(session, order)
    if order.commercial_state == CommercialState.CANCELLED:
        # What was invoiced before the cancellation is corrected by a credit note.
        raise InvalidTransition("issue an invoice", "the order is cancelled")
    lines = invoice_lines(session, order, company, quantities)
    check = _shop_check(session, order, lines, quantities)
    return _issue(
        session,
        order,
        actor,
        DocumentKind.INVOICE,
        lines,
        company,
        locale=locale,
        storage=storage,
        renderer=renderer,
        idempotency_key=idempotency_key,
        shop_check=check,
    )


def _shop_check(
    session: Session, order: Order, lines: list[Line], quantities: Mapping[int, Decimal] | None
) -> dict[str, str] | None:
    """When this invoice leaves nothing to invoice: all the order's invoices vs the shop."""
    remaining = remaining_quantities(session, order)
    for line in lines:
        if line.order_line_id is not None and line.kind in ("product", "fee"):
            remaining[line.order_line_id] -= line.quantity
    if any(left > 0 for left in remaining.values()):
        return None
    sign = _sign()
    before = session.scalar(
        select(func.coalesce(func.sum(DocumentLine.total_gross * sign), 0))
        .join(Document, Document.id == DocumentLine.document_id)
        .where(
            Document.order_id == order.id,
            Document.state == DocumentState.ISSUED,
            (Document.kind == DocumentKind.INVOICE) | Document.cancels_invoice.is_(True),
        )
    )
    invoiced = Decimal(before or 0) + totals(lines).gross
    return {
        "shop_gross": str(order.grand_total),
        "invoiced_gross": str(invoiced),
        "difference": str(invoiced - order.grand_total),
    }


def _by_key(session: Session, key: str) -> Document | None:
    return session.scalars(select(Document).where(Document.idempotency_key == key)).first()


def _locked_order(session: Session, order: Order) -> Order:
    session.flush()
    return session.scalars(
        select(Order)
        .where(Order.id == order.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _issue(
    session: Session,
    order: Order,
    actor: Actor,
    kind: DocumentKind,
    lines: list[Line],
    company: CompanySettings,
    *,
    locale: str,
    storage: DocumentStorage | None,
    renderer: Renderer | None,
    idempotency_key: str | None = None,
    corrects: Document | None = None,
    reason: str = "",
    cancels_invoice: bool = False,
    shop_check: dict[str, str] | None = None,
) -> Document:
    """Number, freeze, render, store and record one invoice or credit note."""
    storage = storage or configured()
    issue_date = utcnow().astimezone(DESK_TZ).date()
    number = next_number(session, kind, issue_date)
    data = snapshot(
        order,
        company,
        kind,
        number.reference,
        issue_date,
        lines,
        locale,
        corrects=corrects,
        reason=reason,
        shop_check=shop_check,
    )
    pdf = render_document_pdf(data, company, renderer)
    digest = sha256(pdf)
    key = f"{kind.value}/{issue_date.year}/{number.reference}-{digest[:16]}.pdf"
    try:
        storage.put(key, pdf)
    except KeyExists:
        pass  # the name carries the bytes' hash: the same name holds the same bytes
    figures = totals(lines)
    document = Document(
        order=order,
        kind=kind,
        state=DocumentState.ISSUED,
        series=number.series,
        number=number.number,
        reference=number.reference,
        issue_date=issue_date,
        due_date=dt.date.fromisoformat(data["due_date"]) if data["due_date"] else None,
        currency=order.currency,
        total_net=figures.net,
        total_tax=figures.tax,
        total_gross=figures.gross,
        snapshot=data,
        pdf_storage_key=key,
        pdf_sha256=digest,
        corrects_id=corrects.id if corrects is not None else None,
        buyer_name=(data["buyer"]["company"] or data["buyer"]["name"])[:200],
        reason=reason[:500],
        cancels_invoice=cancels_invoice,
        idempotency_key=idempotency_key,
        issued_at=utcnow(),
        issued_by_id=actor.user_id,
    )
    document.lines = [line.row(position) for position, line in enumerate(lines, start=1)]
    session.add(document)
    params: dict[str, Any] = {"reference": number.reference, "total": str(figures.gross)}
    if corrects is not None:
        params["corrects"] = corrects.reference
    if shop_check is not None and Decimal(shop_check["difference"]):
        params["difference"] = shop_check["difference"]
        params["shop_total"] = shop_check["shop_gross"]
    record_event(session, order, actor, EVENTS[kind], params)
    session.flush()
    outbox.queue_document(session, document)
    return document


def load_assets_with_logo(company: CompanySettings) -> dict[str, Asset]:
    """Our assets plus the company's logo as `asset:company-logo` (for other engines)."""
    assets = load_assets()
    if company.logo:
        assets["asset:company-logo"] = Asset(company.logo, company.logo_mime_type or "image/png")
    return assets
