"""Credit notes from the order page: cancel an invoice, or credit lines or an amount of it.

Managers and admins only. Each issued invoice gets a panel in the order's documents card
(templates/orders/_credit_notes.html): what is left to credit, the credit notes a refund or
a cancellation proposes (one click prefills the form), "Cancel this invoice" and the
"Credit note…" form. A refusal comes back as the panel with its errors (the whole order
page without htmx); an issued credit note goes back to the order page.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from web import htmx
from web.documents import credit_notes
from web.documents.company import CompanyIncomplete
from web.documents.credit_notes import Creditable, CreditRefused, LineLeft, Proposal
from web.i18n import N_
from web.models import Document, Order
from web.models.enums import DocumentKind, DocumentState
from web.services import order_actions, order_queries
from web.services.errors import InvalidTransition, ValidationFailed
from web.views.base import EDITOR_ROLES, current_actor, db, has_role, restrict
from web.views.events import translated
from web.views.orders import _helpers as order_page_helpers
from web.views.orders import detail_context, timeline_context

bp = Blueprint("credit_notes", __name__, url_prefix="/documents")
restrict(bp, *EDITOR_ROLES)

WAYS = ("lines", "amount", "all")
NO_LINE = N_("Give a quantity to credit for at least one line.")
BAD_QUANTITY = N_("Give the quantity as a number, such as 1 or 0.5.")


@dataclass(frozen=True)
class LineChoice:
    """An invoice line that can still be credited, and how much of it is left."""

    entry: LineLeft

    @property
    def left_text(self) -> str:
        return format_decimal(self.entry.quantity.normalize(), "#,##0.###")

    @property
    def left_value(self) -> str:
        return format(self.entry.quantity.normalize(), "f")


@dataclass
class Panel:
    """One issued invoice as the order page offers to credit it."""

    invoice: Document
    left: Creditable
    proposals: list[Proposal]
    lines: list[LineChoice]
    # What the form shows: typed values or a proposal's, the errors, which form is open
    # ("credit" or "cancel").
    form: Mapping[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    opened: str = ""
    key: str = field(default_factory=lambda: f"ui:{uuid.uuid4().hex}")


@bp.app_template_global("credit_note_panels")
def credit_note_panels(order: Order, shown: Panel | None = None) -> list[Panel]:
    """The panels of the order's invoices that have something left to credit."""
    if not has_role(*EDITOR_ROLES):
        return []
    creditables = credit_notes.creditables(db(), order)
    proposals = credit_notes.proposals(db(), order, creditables)
    panels = []
    for left in creditables.values():
        if shown is not None and shown.invoice.id == left.invoice.id:
            panels.append(shown)
            continue
        if left.gross > 0:
            panels.append(_panel(left.invoice, left, proposals))
    return panels


def _panel(invoice: Document, left: Creditable, proposals: list[Proposal]) -> Panel:
    lines = [
        LineChoice(entry)
        for entry in left.lines
        if entry.line.kind != "discount" and entry.quantity > 0
    ]
    mine = [proposal for proposal in proposals if proposal.invoice.id == invoice.id]
    return Panel(invoice, left, mine, lines)


@bp.get("/<id:document_id>/credit-notes/new")
def new(document_id: int) -> ResponseReturnValue:
    """The invoice's credit-note form, prefilled from a proposal (?proposal=amount|cancel)."""
    invoice = _invoice(document_id)
    panel = _panel(
        invoice, credit_notes.creditable(db(), invoice), credit_notes.proposals(db(), invoice.order)
    )
    chosen = next((p for p in panel.proposals if p.kind == request.args.get("proposal")), None)
    panel.opened = "credit"
    if chosen is not None and chosen.kind == "cancel":
        panel.form = {"cancel": "on", "reason": translated(chosen.reason)}
        panel.opened = "cancel"
    elif chosen is not None:
        panel.form = {
            "way": "amount",
            "amount": str(chosen.amount),
            "reason": translated(chosen.reason),
        }
    return _render(invoice.order, panel)


@bp.post("/<id:document_id>/credit-notes")
def issue(document_id: int) -> ResponseReturnValue:
    """Issue a credit note of the invoice: all that is left (cancelling it or not), some
    lines' quantities or an amount with tax."""
    invoice = _invoice(document_id)
    order = order_actions.lock_order(db(), invoice.order_id)  # writers take the order first
    if order is None:
        abort(404)
    form = request.form
    try:
        note = credit_notes.issue_credit_note(
            db(),
            invoice,
            current_actor(),
            **_request(form, invoice),
            reason=form.get("reason", ""),
            idempotency_key=(form.get("key") or "")[:200] or None,
            locale=str((invoice.snapshot or {}).get("locale") or "fr"),
        )
    except (ValidationFailed, InvalidTransition) as exc:
        db().rollback()
        return _refused(invoice, form, exc)
    db().commit()
    flash(_("Credit note %(reference)s issued.", reference=note.reference), "success")
    return htmx.redirect_after_post(
        url_for("orders.detail", order_id=invoice.order_id) + "#documents-title"
    )


def _invoice(document_id: int) -> Document:
    invoice = db().get(Document, document_id)
    if invoice is None or invoice.kind != DocumentKind.INVOICE:
        abort(404)
    if invoice.state != DocumentState.ISSUED:
        abort(404)
    return invoice


def _request(form: MultiDict[str, str], invoice: Document) -> dict[str, Any]:
    """What the form asks: cancel, everything left, some quantities, or an amount."""
    if form.get("cancel") == "on":
        return {"cancels_invoice": True}
    way = form.get("way", "lines")
    if way == "all":
        return {}
    if way == "amount":
        return {"amount": credit_notes.parse_amount(form.get("amount", ""))}
    quantities: dict[int, Decimal] = {}
    refusals: dict[str, tuple[str, Mapping[str, Any]]] = {}
    known = {line.id for line in invoice.lines}
    for name, value in form.items():
        if not name.startswith("quantity-") or not value.strip():
            continue
        line_id = name.removeprefix("quantity-")
        if not line_id.isdigit() or int(line_id) not in known:
            abort(400)  # not a line the form showed
        try:
            quantity = Decimal(value.strip().replace(",", "."))
        except InvalidOperation:
            quantity = Decimal("NaN")
        if not quantity.is_finite():
            refusals[f"line {line_id}"] = (BAD_QUANTITY, {})
        elif quantity:
            quantities[int(line_id)] = quantity
    if refusals:
        raise CreditRefused(refusals)
    if not quantities:
        raise CreditRefused({"lines": (NO_LINE, {})})
    return {"lines": quantities}


def _refused(
    invoice: Document, form: MultiDict[str, str], exc: ValidationFailed | InvalidTransition
) -> ResponseReturnValue:
    order = db().get(Order, invoice.order_id)
    assert order is not None
    panel = _panel(
        invoice, credit_notes.creditable(db(), invoice), credit_notes.proposals(db(), order)
    )
    panel.form = form.to_dict()
    panel.opened = "cancel" if form.get("cancel") == "on" else "credit"
    panel.errors, panel.fields = _messages(invoice, exc)
    status = 422 if isinstance(exc, ValidationFailed) else 409
    response = _render(order, panel, status)
    response.headers["HX-Replace-Url"] = url_for("orders.detail", order_id=order.id)
    return response


def _messages(
    invoice: Document, exc: ValidationFailed | InvalidTransition
) -> tuple[list[str], set[str]]:
    """The refusal in the reader's language, and the fields it is about."""
    if isinstance(exc, CompanyIncomplete):
        fields = ", ".join(exc.fields)
        return [_("Complete the company settings first: %(fields)s.", fields=fields)], set()
    if isinstance(exc, InvalidTransition):
        return [translated(exc.reason)], set()
    if not isinstance(exc, CreditRefused):
        return [translated(message) for message in exc.errors.values()], set(exc.errors)
    names = {f"line {line.id}": line.name for line in invoice.lines}
    messages = []
    for key, (msgid, params) in exc.messages.items():
        text = translated(msgid) % _for_reader(params)
        if key in names:
            text = _("%(line)s: %(error)s", line=names[key], error=text)
        messages.append(text)
    return messages, set(exc.messages)


def _for_reader(params: Mapping[str, Any]) -> dict[str, Any]:
    """Amounts, quantities and rates as the reader writes numbers."""
    shown = dict(params)
    for key, pattern in (("amount", "#,##0.00"), ("quantity", "#,##0.###"), ("rate", "#,##0.##")):
        if key in shown:
            shown[key] = format_decimal(Decimal(str(shown[key])), pattern)
    return shown


def _render(order: Order, panel: Panel, status: int = 200) -> Any:
    """The panels alone for htmx, else the order page with them."""
    if htmx.is_partial_request():
        return htmx.render(
            "orders/_credit_notes.html",
            status=status,
            order=order,
            can_edit=True,
            credit_panel=panel,
        )
    order = order_queries.get_order(db(), order.id)
    return htmx.render(
        "orders/detail.html",
        status=status,
        **order_page_helpers(),  # what the orders blueprint gives its own pages
        **detail_context(order),
        **timeline_context(order, [], []),
        credit_panel=panel,
    )
