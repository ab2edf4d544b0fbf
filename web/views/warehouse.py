"""The warehouse on the phone: the queue by shipping mode, pick lists, the pack screen.

The pack screen scans in the browser (static/js/pack.js keeps the scans in localStorage);
its confirm is one POST that the server checks again against what remains to ship, made
once per idempotency key the page generated, so a resent confirm finds its shipment. The
confirm answers JSON to the page's fetch and a redirect to a plain form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta, get_locale
from flask_babel import gettext as _
from sqlalchemy import select

from web import htmx
from web.models import ShippingMode
from web.models.base import utcnow
from web.models.enums import LineKind
from web.models.orders import Order
from web.services import order_actions, order_queries, order_state, paging, shipments, warehouse
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.views.base import WAREHOUSE_ROLES, current_actor, db, restrict
from web.views.events import translated

bp = Blueprint("warehouse", __name__, url_prefix="/warehouse")
restrict(bp, *WAREHOUSE_ROLES)

LATE_AFTER = dt.timedelta(days=2)
MAX_PARCELS = 10
CODE_MAX_LENGTH = 40


def _mode_arg() -> str | None:
    mode = (request.args.get("mode") or "").strip()
    return mode[:CODE_MAX_LENGTH] or None


def _queue_url(mode: str | None) -> str:
    return url_for("warehouse.queue", mode=mode)


def items_to_pick(order: Order) -> int:
    """How many items a card announces: the products' quantities, a bundle's parts left out
    (its own line counts once)."""
    return sum(
        line.quantity
        for line in order.lines
        if line.parent_line_id is None and line.kind == LineKind.PRODUCT
    )


@bp.get("/")
def queue() -> ResponseReturnValue:
    """List the orders the warehouse may prepare now, the oldest first, by shipping mode."""
    mode = _mode_arg()
    page = paging.whole_number(request.args.get("page"), 1, paging.MAX_PAGE) or 1
    results = warehouse.queue_page(db(), mode, page)
    counts = warehouse.mode_counts(db())
    now = utcnow()
    return htmx.render(
        "warehouse/queue.html",
        "warehouse/_queue.html",
        results=results,
        counts=counts,
        everything=sum(count.count for count in counts),
        mode=mode,
        no_mode=warehouse.NO_MODE,
        ages={order.id: now - order.placed_at for order in results.items},
        items={order.id: items_to_pick(order) for order in results.items},
        late_after=LATE_AFTER,
        age_text=lambda age: format_timedelta(-age, add_direction=True),
    )


@bp.get("/pick")
def pick() -> ResponseReturnValue:
    """The pick list of the chosen orders: SKUs grouped, with their bins, ready to print."""
    ids = [
        number
        for number in (
            paging.whole_number(text, 1, paging.MAX_ID) for text in request.args.getlist("ids")
        )
        if number is not None
    ]
    orders = warehouse.orders_to_pick(db(), ids)
    return htmx.render(
        "warehouse/pick.html",
        orders=orders,
        rows=warehouse.pick_list(db(), orders),
        asked=len(ids),
        mode=_mode_arg(),
    )


def _order(order_id: int) -> Order:
    try:
        return order_queries.get_order(db(), order_id)
    except NotFound:
        abort(404)


def _pack_context(order: Order, mode: str | None, **extra: Any) -> dict[str, Any]:
    lines = warehouse.pack_lines(db(), order)
    refusal = shipments.order_refusal(order)
    modes = db().scalars(
        select(ShippingMode).where(ShippingMode.is_active).order_by(ShippingMode.name)
    )
    return {
        "order": order,
        "lines": lines,
        "total": sum(line.quantity for line in lines),
        "refusal": refusal,
        "ready": refusal is None and bool(lines),
        "modes": list(modes),
        "mode": mode,
        "parcel_rows": range(1, 2),
        "max_parcels": MAX_PARCELS,
        **extra,
    }


@bp.get("/orders/<id:order_id>/pack")
def pack(order_id: int) -> ResponseReturnValue:
    """The pack screen of one order: scan each item, then parcels and confirm."""
    order = _order(order_id)
    return htmx.render("warehouse/pack.html", **_pack_context(order, _mode_arg()))


# --- Confirm ---------------------------------------------------------------------------------


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json"


def _quantities(order: Order, form: Mapping[str, str]) -> dict[int, int] | None:
    chosen: dict[int, int] = {}
    for line in shipments.shippable_lines(order):
        typed = (form.get(f"qty-{line.id}") or "0").strip()
        number = paging.whole_number(typed, 0, 999_999)
        if number is None:
            return None
        if number:
            chosen[line.id] = number
    return chosen


def _parcels(form: Mapping[str, str]) -> list[shipments.ParcelInput]:
    return [
        shipments.ParcelInput(form.get(f"tracking-{row}", ""), form.get(f"weight-{row}", ""))
        for row in range(1, MAX_PARCELS + 1)
    ]


def _mode(form: Mapping[str, str]) -> ShippingMode | None:
    number = paging.whole_number(form.get("shipping_mode_id"), 1, paging.MAX_ID)
    return db().get(ShippingMode, number) if number is not None else None


def _refused(order_id: int, status: int, message: str, errors: Mapping[str, str]) -> Response:
    db().rollback()
    if _wants_json():
        response = jsonify(error=message, errors=dict(errors))
        response.status_code = status
        return response
    order = _order(order_id)
    context = _pack_context(order, _mode_arg(), error=message)
    return htmx.render("warehouse/pack.html", status=status, **context)


def _next_url(order: Order, mode: str | None) -> str:
    upcoming = warehouse.next_order(db(), mode, after=order.id)
    if upcoming is None:
        return _queue_url(mode)
    return url_for("warehouse.pack", order_id=upcoming.id, mode=mode)


@bp.post("/orders/<id:order_id>/pack")
def confirm(order_id: int) -> ResponseReturnValue:
    """Ship what was scanned, with its parcels, and issue its delivery note: once per key."""
    order = order_actions.lock_order(db(), order_id)
    if order is None:
        abort(404)
    form = request.form
    quantities = _quantities(order, form)
    if quantities is None:
        message = _("Give each quantity as a whole number, 0 or more.")
        return _refused(order_id, 400, message, {"lines": message})
    try:
        packed = warehouse.confirm_pack(
            db(),
            order,
            current_actor(),
            quantities,
            _parcels(form),
            _mode(form),
            form.get("key", ""),
            locale=str(get_locale() or current_app.config["LANGUAGES"][0]),
        )
    except ValidationFailed as exc:
        errors = {name: translated(text) for name, text in exc.errors.items()}
        return _refused(order_id, 422, translated(str(exc)), errors)
    except InvalidTransition as exc:
        message = _("Not possible: %(reason)s.", reason=translated(exc.reason))
        return _refused(order_id, 409, message, {})
    db().commit()
    shipment, note = packed.shipment, packed.delivery_note
    next_url = _next_url(order, _mode_arg())
    if not _wants_json():
        flash(_("Shipment %(number)s shipped.", number=shipment.number), "success")
        return htmx.redirect_after_post(next_url)
    answer = jsonify(
        shipment={"id": shipment.id, "number": shipment.number, "state": shipment.state.value},
        delivery_note={
            "id": note.id,
            "reference": note.reference,
            "url": url_for("documents.pdf", document_id=note.id),
        },
        repeated=not packed.created,
        next_url=next_url,
    )
    answer.status_code = 201 if packed.created else 200
    return answer


@bp.post("/orders/<id:order_id>/missing")
def missing(order_id: int) -> ResponseReturnValue:
    """Put the order on hold for a missing item, then on to the next order of the queue."""
    order = order_actions.lock_order(db(), order_id)
    if order is None:
        abort(404)
    form = request.form
    chosen = paging.whole_number(form.get("line_id"), 1, paging.MAX_ID)
    line = next((line for line in order.lines if line.id == chosen), None)
    if line is None or not shipments.is_shippable(line):
        return _refused(order_id, 422, _("Choose the missing item."), {})
    item = warehouse.missing_item(line, form.get("comment", ""))
    reason = _("Missing item at packing: %(item)s", item=item)[: order_state.REASON_MAX_LENGTH]
    try:
        order_state.hold(db(), order, current_actor(), reason)
    except ValidationFailed as exc:
        return _refused(order_id, 422, translated(str(exc)), {})
    except InvalidTransition as exc:
        message = _("Not possible: %(reason)s.", reason=translated(exc.reason))
        return _refused(order_id, 409, message, {})
    db().commit()
    flash(
        _("Order %(number)s is on hold: %(reason)s", number=order.number, reason=reason), "success"
    )
    return htmx.redirect_after_post(_next_url(order, _mode_arg()))
