"""The order desk: the filtered order list and one order's detail page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from web import htmx
from web.models import Comment, OrderEvent, OrderLine, Shop
from web.models.enums import CommercialState, FulfilmentState, PaymentState, Platform
from web.models.orders import Order
from web.services import (
    comments,
    invoicing,
    order_actions,
    order_queries,
    order_state,
    outbox,
    payments,
)
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.views.base import (
    DESK_ROLES,
    EDITOR_ROLES,
    current_actor,
    db,
    has_role,
    restrict,
    roles_required,
)
from web.views.events import translated

bp = Blueprint("orders", __name__, url_prefix="/orders")
restrict(bp, *DESK_ROLES)

FILTER_LABELS = {
    "shop": _l("Shop"),
    "commercial": _l("Order state"),
    "fulfilment": _l("Shipping state"),
    "payment": _l("Payment state"),
    "on_hold": _l("On hold"),
    "needs_mapping": _l("Needs mapping"),
    "ready": _l("Ready to prepare"),
    "date_from": _l("From"),
    "date_to": _l("To"),
    "sort": _l("Sort by"),
    "page": _l("Page"),
    "after": _l("Page"),
    "before": _l("Page"),
    "per_page": _l("Orders per page"),
}

SORT_LABELS = {
    "-placed_at": _l("Newest first"),
    "placed_at": _l("Oldest first"),
    "-number": _l("Number, descending"),
    "number": _l("Number, ascending"),
    "-total": _l("Total, highest first"),
    "total": _l("Total, lowest first"),
    "customer": _l("Customer, A to Z"),
    "-customer": _l("Customer, Z to A"),
}

STATE_CHOICES = {
    "commercial": CommercialState,
    "payment": PaymentState,
    "fulfilment": FulfilmentState,
}

# Timeline events are grouped by the first part of their kind ("payment.state_changed");
# everything about talking with the shop goes under one filter.
FAMILY_ALIASES = {
    "inbox": "sync",
    "outbox": "sync",
    "invoice": "document",
    "credit_note": "document",
    "delivery_note": "document",
}
EVENT_FAMILIES = {
    "order": _l("Order"),
    "payment": _l("Payment"),
    "shipment": _l("Shipping"),
    "document": _l("Documents"),
    "comment": _l("Comments"),
    "sync": _l("Shop sync"),
}

# Who did it: the audit log's other question.
EVENT_ACTORS = {
    "user": _l("People"),
    "shop": _l("The shop"),
    "system": _l("Comptoir"),
}

EVENT_LABELS = {
    "order.imported": _l("Order imported"),
    "order.received": _l("Order received from the shop"),
    "order.needs_mapping": _l("Needs mapping"),
    "order.validated": _l("Order validated"),
    "order.held": _l("Order put on hold"),
    "order.released": _l("Order released from hold"),
    "order.preparation_started": _l("Preparation started"),
    "order.cancelled": _l("Order cancelled"),
    "order.closed": _l("Order closed"),
    "order.partially_shipped": _l("Order partially shipped"),
    "order.shipped": _l("Order shipped"),
    "order.delivered": _l("Order delivered"),
    "payment.state_changed": _l("Payment state changed"),
    "payment.received": _l("Payment received"),
    "payment.captured": _l("Payment captured"),
    "payment.recorded": _l("Payment recorded by hand"),
    "payment.refunded": _l("Refund"),
    "shipment.created": _l("Shipment prepared"),
    "shipment.packed": _l("Shipment packed"),
    "shipment.shipped": _l("Shipment sent"),
    "shipment.delivered": _l("Shipment delivered"),
    "shipment.cancelled": _l("Shipment cancelled"),
    "shipment.parcel_added": _l("Parcel added"),
    "shipment.tracking_changed": _l("Tracking changed"),
    "order.fulfilment_withdrawn": _l("Shipping state back"),
    "comment.customer": _l("Comment to the buyer"),
    "comment.internal": _l("Internal comment"),
    "comment.edited": _l("Comment edited"),
    "comment.deleted": _l("Comment deleted"),
    "outbox.queued": _l("Update queued for the shop"),
    "outbox.sent": _l("Update delivered to the shop"),
    "outbox.failed": _l("Update to the shop failed, will retry"),
    "outbox.dead": _l("Update to the shop given up"),
    "outbox.retried": _l("Update to the shop sent again"),
    "outbox.ignored": _l("Update to the shop not sent"),
}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "rate": format_rate,
        "weight": format_weight,
        "states": STATE_CHOICES,
        "sort_labels": SORT_LABELS,
    }


def format_rate(value: Decimal | None) -> str:
    """Show a VAT rate stored as a percentage (20.0000) as "20 %"."""
    if value is None:
        return ""
    return _("%(rate)s %%", rate=format_decimal(value.normalize(), "#,##0.##"))


def format_weight(value: Decimal | None) -> str:
    if value is None:
        return ""
    return _("%(weight)s kg", weight=format_decimal(value, "#,##0.###"))


@bp.get("/")
def index() -> ResponseReturnValue:
    """List the orders matching the filters; htmx swaps get the results region only."""
    filters, errors = order_queries.parse_filters(request.args)
    # Read before the search: an order arriving in between is announced twice, never missed.
    newest_id = order_queries.newest_order_id(db())
    shops = db().scalars(select(Shop).order_by(Shop.name)).all()
    results = order_queries.search_orders(db(), filters, shops_loaded=True)
    args = order_queries.filters_to_args(filters)
    args.pop("page", None)
    return htmx.render(
        "orders/index.html",
        "orders/_results.html",
        filters=filters,
        results=results,
        args=args,
        filtering=bool(set(args) - {"sort", "per_page"}),
        errors=filter_error_messages(errors, request.args),
        invalid=set(errors),
        shops=shops,
        newest_id=newest_id,
        numbered_pages=order_queries.NUMBERED_PAGES,
    )


@bp.get("/<id:order_id>")
def detail(order_id: int) -> ResponseReturnValue:
    """Show everything about one order."""
    return _detail_page(order_id)


@bp.get("/<id:order_id>/timeline")
def timeline(order_id: int) -> ResponseReturnValue:
    """Re-render the order's timeline, keeping only the chosen kinds of event and authors.

    An htmx swap needs only the events; without htmx the whole page comes back.
    """
    if not htmx.is_partial_request():
        return _detail_page(order_id)
    order = db().scalar(
        select(Order)
        .where(Order.id == order_id)
        .options(selectinload(Order.events).joinedload(OrderEvent.actor_user))
    )
    if order is None:
        abort(404)
    return htmx.render("orders/_timeline.html", order=order, **_timeline_of(order))


def _detail_page(order_id: int, fragment: str | None = None) -> ResponseReturnValue:
    return htmx.render("orders/detail.html", fragment, **_detail_values(order_id))


def detail_page(order_id: int, status: int, **extra: Any) -> Response:
    """The whole order page with what a refused POST adds to it (a card's refusal), from
    another blueprint's view (this one's context processor does not run there)."""
    values = {**_helpers(), **_detail_values(order_id), **extra}
    response = htmx.render("orders/detail.html", None, status=status, **values)
    response.headers["HX-Replace-Url"] = url_for("orders.detail", order_id=order_id)
    return response


def _detail_values(order_id: int) -> dict[str, Any]:
    try:
        order = order_queries.get_order(db(), order_id)
    except NotFound:
        abort(404)
    return {**detail_context(order), **_timeline_of(order)}


def _timeline_of(order: Order) -> dict[str, Any]:
    return timeline_context(order, request.args.getlist("kinds"), request.args.getlist("who"))


def detail_context(order: Order) -> dict[str, Any]:
    """What the order page shows besides the timeline: states, money, pushes, permissions."""
    counts = payments.payment_counter(order.shop, order)
    comment_messages = outbox.comment_messages(db(), order)
    editor = has_role(*EDITOR_ROLES)
    user = current_user._get_current_object()
    return {
        "order": order,
        "lines": list(nested_lines(order.lines)),
        "milestone": order_state.milestone(order),
        "ready": order_state.is_ready_to_prepare(order),
        "can_edit": editor,
        "allowed": order_state.allowed_actions(order) if editor else set(),
        "action_labels": ACTION_LABELS,
        "money": {
            "paid": order_state.paid_amount(order.transactions, counts),
            "refunded": order_state.refunded_amount(order.transactions, counts),
            "due": order_state.amount_due(order.grand_total, order.transactions, counts),
            "overpaid": order_state.overpaid_amount(order.grand_total, order.transactions, counts),
        },
        "manual_sources": payments.MANUAL_SOURCES,
        "pushes": outbox.order_messages(db(), order),
        "comment_pushes": {
            comment_id: message.state.value for comment_id, message in comment_messages.items()
        },
        "comment_note": COMMENT_NOTES[order.shop.platform],
        "changeable": {
            c.id for c in order.comments if comments.can_change(c, user, comment_messages.get(c.id))
        },
        "today": payments.today().isoformat(),
        "invoicing": invoicing.invoice_state(db(), order),
    }


def filter_error_messages(errors: Mapping[str, str], args: Mapping[str, str]) -> list[str]:
    """Say, in the user's language, which filter values were ignored."""
    messages = []
    for name in errors:
        field = FILTER_LABELS.get(name, name)
        # A well-formed end date can only be refused for coming before the start date.
        if name == "date_to" and errors[name].startswith("the end date is before"):
            messages.append(_("The end date is before the start date; it was ignored."))
        else:
            messages.append(
                _(
                    "%(field)s: “%(value)s” is not a valid value; it was ignored.",
                    field=field,
                    value=(args.get(name) or "")[:60],
                )
            )
    return messages


def nested_lines(lines: Sequence[OrderLine]) -> Iterator[tuple[OrderLine, int]]:
    """Yield each line with its depth, bundle children right after their parent."""
    children: dict[int, list[OrderLine]] = {}
    known = {line.id for line in lines}
    for line in lines:
        if line.parent_line_id in known:
            children.setdefault(line.parent_line_id or 0, []).append(line)

    def walk(line: OrderLine, depth: int) -> Iterator[tuple[OrderLine, int]]:
        yield line, depth
        for child in children.get(line.id, []):
            yield from walk(child, depth + 1)

    for line in lines:
        if line.parent_line_id not in known:
            yield from walk(line, 0)


def event_family(event: OrderEvent) -> str:
    family = event.kind.split(".", 1)[0]
    return FAMILY_ALIASES.get(family, family)


def timeline_context(
    order: Order, raw_kinds: Sequence[str], raw_actors: Sequence[str] = ()
) -> dict[str, Any]:
    """The order's events, newest first, keeping the chosen families and authors (all when
    none is chosen)."""
    kinds = _chosen(raw_kinds)
    actors = _chosen(raw_actors) & set(EVENT_ACTORS)
    events = sorted(order.events, key=lambda event: (event.occurred_at, event.id), reverse=True)
    present = sorted({event_family(event) for event in events}, key=_family_order)
    present_actors = [a for a in EVENT_ACTORS if any(e.actor_type == a for e in events)]
    shown = [
        event
        for event in events
        if (not kinds or event_family(event) in kinds)
        and (not actors or event.actor_type.value in actors)
    ]
    return {
        "events": shown,
        "event_count": len(events),
        "families": [(family, EVENT_FAMILIES.get(family, family)) for family in present],
        "kinds": kinds,
        "actor_choices": [(actor, EVENT_ACTORS[actor]) for actor in present_actors],
        "actors": actors,
        "event_labels": EVENT_LABELS,
    }


def _chosen(raw: Sequence[str]) -> set[str]:
    return {part.strip() for value in raw for part in value.split(",") if part.strip()}


def _family_order(family: str) -> tuple[int, str]:
    names = list(EVENT_FAMILIES)
    return (names.index(family) if family in names else len(names), family)


# --- Working an order: actions, payments, comments -------------------------------------------

ACTION_LABELS = {
    "validate": _l("Validate"),
    "hold": _l("Put on hold"),
    "release": _l("Release"),
    "prepare": _l("Start preparation"),
    "cancel": _l("Cancel the order"),
    "close": _l("Close"),
}

ACTION_DONE = {
    "validate": _l("Order validated."),
    "hold": _l("Order put on hold."),
    "release": _l("Order released."),
    "prepare": _l("Preparation started."),
    "cancel": _l("Order cancelled."),
    "close": _l("Order closed."),
}

COMMENT_NOTES = {
    Platform.SHOPIFY: _l(
        "Shopify has no comment API: a comment for the buyer is added to the order's note "
        "in Shopify, which only the shop's staff see. Shopify neither shows it to the buyer "
        "nor e-mails it."
    ),
    Platform.WOOCOMMERCE: _l(
        "A comment for the buyer becomes a customer note in WooCommerce, which always "
        "e-mails it to the buyer."
    ),
    Platform.PRESTASHOP: _l(
        "A comment for the buyer becomes a public message on the order in PrestaShop, shown "
        "in the buyer's account; PrestaShop does not e-mail it."
    ),
    Platform.MAGENTO: _l(
        "A comment for the buyer is added to the order's history in Magento, shown on the "
        "buyer's order page; tick “notify the buyer” to have Magento e-mail it."
    ),
}


def _order_for_update(order_id: int) -> Order:
    order = order_actions.lock_order(db(), order_id)
    if order is None:
        abort(404)
    return order


def _done(order_id: int, message: str, anchor: str = "") -> ResponseReturnValue:
    db().commit()
    flash(message, "success")
    return htmx.redirect_after_post(url_for("orders.detail", order_id=order_id) + anchor)


def _refused(order_id: int, status: int, **errors: Any) -> Response:
    """Show the order page again with the refusal, at the order's own address."""
    db().rollback()
    response = htmx.render(
        "orders/detail.html",
        status=status,
        form=request.form,
        **_detail_values(order_id),
        **errors,
    )
    response.headers["HX-Replace-Url"] = url_for("orders.detail", order_id=order_id)
    return response


@bp.post("/<id:order_id>/actions/<action>")
@roles_required(*EDITOR_ROLES)
def act(order_id: int, action: str) -> ResponseReturnValue:
    """Run one state action from the order page."""
    if action not in order_actions.ACTIONS:
        abort(404)
    order = _order_for_update(order_id)
    try:
        order_actions.perform(
            db(),
            order,
            action,
            current_actor(),
            reason=request.form.get("reason", ""),
            notify=request.form.get("notify", "on") == "on",
        )
    except ValidationFailed as exc:
        return _refused(order_id, 422, action_error=translated(str(exc)), open_action=action)
    except InvalidTransition as exc:
        return _refused(
            order_id,
            409,
            action_error=_(
                "%(action)s is not possible: %(reason)s.",
                action=ACTION_LABELS[action],
                reason=translated(exc.reason),
            ),
        )
    return _done(order_id, str(ACTION_DONE[action]))


@bp.post("/<id:order_id>/transactions")
@roles_required(*EDITOR_ROLES)
def add_transaction(order_id: int) -> ResponseReturnValue:
    """Record a payment or refund entered by hand (transfer, cheque, cash, other)."""
    order = _order_for_update(order_id)
    form = request.form
    try:
        typed = form.get("occurred_at", "").strip()
        day = dt.date.fromisoformat(typed) if typed else payments.today()
    except ValueError:
        message = _("Give the date as YYYY-MM-DD.")
        return _refused(order_id, 422, payment_errors={"occurred_at": message})
    try:
        payments.record_manual(
            db(),
            order,
            current_actor(),
            kind=form.get("kind", ""),
            source=form.get("source", ""),
            amount=form.get("amount", ""),
            occurred_at=day,
            reference=form.get("reference", ""),
        )
    except ValidationFailed as exc:
        return _refused(
            order_id, 422, payment_errors={k: translated(v) for k, v in exc.errors.items()}
        )
    done = _("Refund recorded.") if form.get("kind") == "refund" else _("Payment recorded.")
    return _done(order_id, done, "#payment-title")


@bp.post("/<id:order_id>/comments")
@roles_required(*EDITOR_ROLES)
def add_comment(order_id: int) -> ResponseReturnValue:
    """Write a comment, internal or for the buyer."""
    order = _order_for_update(order_id)
    form = request.form
    try:
        comments.add_comment(
            db(),
            order,
            current_actor(),
            form.get("text", ""),
            form.get("visibility", "internal"),
            notify=form.get("notify") == "on",
        )
    except ValidationFailed as exc:
        return _refused(
            order_id, 422, comment_errors={k: translated(v) for k, v in exc.errors.items()}
        )
    return _done(order_id, _("Comment added."), "#comments-title")


def _comment(order_id: int, comment_id: int) -> Comment:
    comment = db().get(Comment, comment_id)
    if comment is None or comment.order_id != order_id:
        abort(404)
    return comment


@bp.post("/<id:order_id>/comments/<id:comment_id>/edit")
@roles_required(*EDITOR_ROLES)
def edit_comment(order_id: int, comment_id: int) -> ResponseReturnValue:
    """Change an internal comment's text (its author or an admin)."""
    _order_for_update(order_id)
    comment = _comment(order_id, comment_id)
    user = current_user._get_current_object()
    try:
        comments.edit_comment(db(), comment, current_actor(), request.form.get("text", ""), user)
    except ValidationFailed as exc:
        errors = {k: translated(v) for k, v in exc.errors.items()}
        return _refused(order_id, 422, edit_errors={comment_id: errors}, editing=comment_id)
    except InvalidTransition as exc:
        return _refused(order_id, 409, comment_refusal=translated(exc.reason))
    return _done(order_id, _("Comment changed."), "#comments-title")


@bp.post("/<id:order_id>/comments/<id:comment_id>/delete")
@roles_required(*EDITOR_ROLES)
def delete_comment(order_id: int, comment_id: int) -> ResponseReturnValue:
    """Delete an internal comment; the timeline keeps its text."""
    _order_for_update(order_id)
    comment = _comment(order_id, comment_id)
    user = current_user._get_current_object()
    try:
        comments.delete_comment(db(), comment, current_actor(), user)
    except InvalidTransition as exc:
        return _refused(order_id, 409, comment_refusal=translated(exc.reason))
    return _done(order_id, _("Comment deleted."), "#comments-title")
