"""Shipments on the order page: ship everything, a chosen part, parcels, pack/ship/deliver/cancel.

The section is the fragment orders/_shipments.html, included by the order page. A change ends
like the page's other forms (a 303, or HX-Location for htmx, so the states and the timeline
are fresh); a refusal answers the section alone for htmx (409/422) and the whole page
otherwise. Desk editors and the warehouse ship; viewers only read.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from web import htmx
from web.models import ShippingMode
from web.models.enums import Role
from web.models.orders import Order
from web.models.shipping import Parcel, Shipment
from web.services import order_actions, order_queries, shipments
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.views import orders
from web.views.base import WAREHOUSE_ROLES, current_actor, db, has_role, restrict
from web.views.events import translated

bp = Blueprint("shipments", __name__)
restrict(bp, *WAREHOUSE_ROLES)

PARCEL_ROWS = 3

ACTION_LABELS = {
    "pack": _l("Mark packed"),
    "ship": _l("Mark shipped"),
    "deliver": _l("Mark delivered"),
    "cancel": _l("Cancel the shipment"),
}
ACTION_DONE = {
    "pack": _l("Shipment packed."),
    "ship": _l("Shipment shipped."),
    "deliver": _l("Shipment delivered."),
    "cancel": _l("Shipment cancelled."),
}


@bp.app_context_processor
def _section() -> dict[str, Any]:
    return {"shipment_section": section_context}


@bp.context_processor
def _order_page_helpers() -> dict[str, Any]:
    # A refusal renders the order page (or its section) from here: the same helpers.
    return {
        "rate": orders.format_rate,
        "weight": orders.format_weight,
        "states": orders.STATE_CHOICES,
        "sort_labels": orders.SORT_LABELS,
    }


def section_context(order: Order, **errors: Any) -> dict[str, Any]:
    """What the shipments section shows: shipments, what remains, the forms' choices."""
    remaining = shipments.remaining_quantities(order)
    return {
        "shipments": [
            (shipment, shipments.allowed_actions(shipment)) for shipment in order.shipments
        ],
        "lines": {line.id: line for line in order.lines},
        "shippable": shipments.shippable_lines(order),
        "remaining": remaining,
        "left": sum(remaining.values()),
        "refusal": shipments.order_refusal(order),
        "can_ship": has_role(*WAREHOUSE_ROLES),
        "modes": db()
        .scalars(select(ShippingMode).where(ShippingMode.is_active).order_by(ShippingMode.name))
        .all(),
        "parcel_rows": range(1, PARCEL_ROWS + 1),
        "action_labels": ACTION_LABELS,
        "form_key": secrets.token_urlsafe(16),
        **errors,
    }


# --- Answers ---------------------------------------------------------------------------------


def _order_url(order_id: int) -> str:
    if has_role(Role.WAREHOUSE):
        return url_for("warehouse.queue")
    return url_for("orders.detail", order_id=order_id) + "#shipments"


def _done(order_id: int, message: str) -> ResponseReturnValue:
    db().commit()
    flash(message, "success")
    return htmx.redirect_after_post(_order_url(order_id))


def _refused(order_id: int, status: int, **errors: Any) -> Response:
    """The section again with the refusal: alone for htmx, in the whole page otherwise."""
    db().rollback()
    try:
        order = order_queries.get_order(db(), order_id)
    except NotFound:
        abort(404)
    section: dict[str, Any] = {"ship": section_context(order, form=request.form, **errors)}
    if htmx.is_partial_request():
        return htmx.render(
            "orders/_shipments.html", "orders/_shipments.html", status, order=order, **section
        )
    values = {**orders.detail_context(order), **orders.timeline_context(order, [], [])}
    return htmx.render("orders/detail.html", status=status, form=request.form, **values, **section)


def _messages(errors: Mapping[str, str]) -> dict[str, str]:
    return {name: translated(message) for name, message in errors.items()}


def _refusal(exc: InvalidTransition) -> str:
    return _("Not possible: %(reason)s.", reason=translated(exc.reason))


def _locked_order(order_id: int) -> Order:
    order = order_actions.lock_order(db(), order_id)
    if order is None:
        abort(404)
    return order


def _locked_shipment(shipment_id: int) -> Shipment:
    try:
        return shipments.lock_shipment(db(), shipment_id)
    except NotFound:
        abort(404)


def _parcels(form: Mapping[str, str]) -> list[shipments.ParcelInput]:
    return [
        shipments.ParcelInput(form.get(f"tracking-{row}", ""), form.get(f"weight-{row}", ""))
        for row in range(1, PARCEL_ROWS + 1)
    ]


def _quantities(order: Order, form: Mapping[str, str]) -> dict[int, int] | None:
    chosen: dict[int, int] = {}
    for line in shipments.shippable_lines(order):
        typed = (form.get(f"qty-{line.id}") or "0").strip()
        if not typed.isdigit() or len(typed) > 6:
            return None
        chosen[line.id] = int(typed)
    return chosen


def _mode(form: Mapping[str, str]) -> ShippingMode | None:
    typed = form.get("shipping_mode_id", "").strip()
    if not typed.isdigit() or len(typed) > 18:
        return None
    return db().get(ShippingMode, int(typed))


# --- Routes ----------------------------------------------------------------------------------


@bp.post("/orders/<id:order_id>/shipments/everything")
def ship_everything(order_id: int) -> ResponseReturnValue:
    """Ship all that remains in one parcel, with an optional tracking number and weight."""
    order = _locked_order(order_id)
    form = request.form
    try:
        shipments.ship_everything(
            db(),
            order,
            current_actor(),
            form.get("tracking_number", ""),
            form.get("weight_kg", ""),
            idempotency_key=form.get("form_key", ""),
        )
    except ValidationFailed as exc:
        return _refused(order_id, 422, everything_errors=_messages(exc.errors))
    except InvalidTransition as exc:
        return _refused(order_id, 409, section_error=_refusal(exc))
    return _done(order_id, _("Everything that remained is shipped."))


@bp.post("/orders/<id:order_id>/shipments")
def create(order_id: int) -> ResponseReturnValue:
    """Create a shipment of the chosen quantities and parcels, shipped now or kept as a draft."""
    order = _locked_order(order_id)
    form = request.form
    quantities = _quantities(order, form)
    if quantities is None:
        message = _("Give each quantity as a whole number, 0 or more.")
        return _refused(order_id, 422, create_errors={"lines": message})
    try:
        shipments.create_shipment(
            db(),
            order,
            current_actor(),
            quantities,
            _parcels(form),
            _mode(form),
            ship=form.get("ship") == "on",
            idempotency_key=form.get("form_key", ""),
        )
    except ValidationFailed as exc:
        return _refused(order_id, 422, create_errors=_messages(exc.errors))
    except InvalidTransition as exc:
        return _refused(order_id, 409, create_errors={"lines": _refusal(exc)})
    return _done(order_id, _("Shipment created."))


@bp.post("/shipments/<id:shipment_id>/actions/<any(pack, ship, deliver, cancel):action>")
def act(shipment_id: int, action: str) -> ResponseReturnValue:
    """Pack, ship, deliver or cancel one shipment."""
    shipment = _locked_shipment(shipment_id)
    order_id = shipment.order_id
    try:
        shipments.perform(
            db(), shipment, action, current_actor(), reason=request.form.get("reason", "")
        )
    except ValidationFailed as exc:
        errors = {shipment_id: _messages(exc.errors)}
        return _refused(order_id, 422, shipment_errors=errors, open_cancel=shipment_id)
    except InvalidTransition as exc:
        return _refused(order_id, 409, shipment_errors={shipment_id: {"action": _refusal(exc)}})
    return _done(order_id, str(ACTION_DONE[action]))


@bp.post("/shipments/<id:shipment_id>/parcels")
def add_parcel(shipment_id: int) -> ResponseReturnValue:
    """Add a parcel with its tracking number and weight."""
    shipment = _locked_shipment(shipment_id)
    form = request.form
    try:
        shipments.add_parcel(
            db(), shipment, current_actor(), form.get("tracking_number", ""), form.get("weight_kg")
        )
    except ValidationFailed as exc:
        errors = {shipment_id: _messages(exc.errors)}
        return _refused(shipment.order_id, 422, shipment_errors=errors, open_parcel=shipment_id)
    except InvalidTransition as exc:
        errors = {shipment_id: {"action": _refusal(exc)}}
        return _refused(shipment.order_id, 409, shipment_errors=errors)
    return _done(shipment.order_id, _("Parcel added."))


@bp.post("/parcels/<id:parcel_id>/tracking")
def correct_tracking(parcel_id: int) -> ResponseReturnValue:
    """Correct a parcel's tracking number."""
    shipment_id = db().scalar(select(Parcel.shipment_id).where(Parcel.id == parcel_id))
    if shipment_id is None:
        abort(404)
    shipment = _locked_shipment(shipment_id)
    parcel = next(p for p in shipment.parcels if p.id == parcel_id)
    try:
        shipments.correct_tracking(
            db(), parcel, current_actor(), request.form.get("tracking_number", "")
        )
    except ValidationFailed as exc:
        errors = {f"parcel-{parcel_id}": _messages(exc.errors)}
        return _refused(shipment.order_id, 422, parcel_errors=errors, open_tracking=parcel_id)
    except InvalidTransition as exc:
        refusal = {shipment_id: {"action": _refusal(exc)}}
        return _refused(shipment.order_id, 409, shipment_errors=refusal)
    return _done(shipment.order_id, _("Tracking number changed."))
