"""Documents from the order page: issue an invoice or a shipment's delivery note, download a
stored PDF."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from web import htmx
from web.documents import delivery_notes, invoices, issued
from web.documents.company import CompanyIncomplete
from web.models import Shipment
from web.models.enums import Role
from web.services import invoicing, order_actions
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.views.base import DESK_ROLES, EDITOR_ROLES, current_actor, db, restrict, roles_required
from web.views.events import company_fields, translated
from web.views.orders import detail_page

bp = Blueprint("documents", __name__, url_prefix="/documents")
restrict(bp, *DESK_ROLES, Role.WAREHOUSE)


def pdf_response(data: bytes, filename: str) -> Response:
    """A stored PDF as a download (the API answers with the same)."""
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@bp.get("/<id:document_id>/pdf")
def pdf(document_id: int) -> ResponseReturnValue:
    """Download a document's PDF as it was issued."""
    try:
        document, data = issued.stored_pdf(db(), document_id)
    except NotFound:
        abort(404)
    return pdf_response(data, issued.pdf_filename(document))


@bp.post("/shipments/<id:shipment_id>/delivery-note")
@roles_required(*EDITOR_ROLES, Role.WAREHOUSE)
def issue_delivery_note(shipment_id: int) -> ResponseReturnValue:
    """Issue the shipment's delivery note (or find the one it has), then back to the order."""
    shipment = db().get(Shipment, shipment_id)
    if shipment is None:
        abort(404)
    order_actions.lock_order(db(), shipment.order_id)  # writers take the order first
    with_prices = request.form.get("with_prices") == "on"
    language = _language()
    try:
        document = delivery_notes.issue_delivery_note(
            db(), shipment, current_actor(), with_prices, locale=language
        )
    except InvalidTransition:
        db().rollback()
        flash(_("A cancelled shipment gets no delivery note."), "error")
        return htmx.redirect_after_post(url_for("orders.detail", order_id=shipment.order_id))
    db().commit()
    flash(_("Delivery note %(reference)s issued.", reference=document.reference), "success")
    return htmx.redirect_after_post(
        url_for("orders.detail", order_id=shipment.order_id) + "#documents-title"
    )


@bp.post("/orders/<id:order_id>/invoices")
@roles_required(*EDITOR_ROLES)
def issue_invoice(order_id: int) -> ResponseReturnValue:
    """Issue the order's invoice: everything not invoiced yet, or the quantities typed."""
    order = order_actions.lock_order(db(), order_id)  # writers take the order first
    if order is None:
        abort(404)
    language = _language()
    try:
        quantities = None
        if request.form.get("scope") == "part":
            remaining = invoices.remaining_quantities(db(), order)
            quantities = invoicing.parse_quantities(order, remaining, request.form)
        document = invoices.issue_invoice(db(), order, current_actor(), quantities, locale=language)
    except ValidationFailed as exc:
        db().rollback()
        errors = {key: translated(text) for key, text in exc.errors.items()}
        refusal = {
            "message": translated(str(exc)),
            "errors": errors,
            "part": True,
            "typed": request.form.to_dict(),
        }
        return detail_page(order_id, 422, invoice_refusal=refusal)
    except InvalidTransition as exc:
        db().rollback()
        return detail_page(order_id, 409, invoice_refusal=_refusal(exc))
    db().commit()
    flash(_("Invoice %(reference)s issued.", reference=document.reference), "success")
    return htmx.redirect_after_post(
        url_for("orders.detail", order_id=order_id) + "#documents-title"
    )


def _language() -> str:
    languages = tuple(current_app.config["LANGUAGES"])
    language = request.form.get("language", languages[0])
    if language not in languages:
        abort(400)
    return language


def _refusal(exc: InvalidTransition) -> dict[str, object]:
    """Why no invoice was issued, in the reader's language."""
    if isinstance(exc, CompanyIncomplete):
        fields = company_fields(exc.fields)
        message = _("The company settings are incomplete: %(fields)s.", fields=fields)
        return {"message": message, "company": True}
    return {"message": _("No invoice issued: %(reason)s.", reason=translated(exc.reason))}
