"""Documents from the order page: issue a shipment's delivery note, download a stored PDF."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from web import htmx
from web.documents import delivery_notes, issued
from web.models import Shipment
from web.models.enums import Role
from web.services import order_actions
from web.services.errors import InvalidTransition, NotFound
from web.views.base import DESK_ROLES, EDITOR_ROLES, current_actor, db, restrict, roles_required

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
    languages = tuple(current_app.config["LANGUAGES"])
    language = request.form.get("language", languages[0])
    if language not in languages:
        abort(400)
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
