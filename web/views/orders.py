"""The order desk: the filtered order list and one order's detail page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from flask import Blueprint, abort, request
from flask.typing import ResponseReturnValue
from flask_babel import format_decimal
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from web import htmx
from web.models import OrderEvent, OrderLine, Shop
from web.models.enums import CommercialState, FulfilmentState, PaymentState
from web.models.orders import Order
from web.services import order_queries, order_state
from web.services.errors import NotFound
from web.views.base import DESK_ROLES, db, restrict

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
FAMILY_ALIASES = {"milestone": "sync", "inbox": "sync", "outbox": "sync", "push": "sync"}
EVENT_FAMILIES = {
    "order": _l("Order"),
    "payment": _l("Payment"),
    "shipment": _l("Shipping"),
    "document": _l("Documents"),
    "comment": _l("Comments"),
    "sync": _l("Shop sync"),
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
    "shipment.shipped": _l("Shipment sent"),
    "milestone.pushed": _l("Status sent to the shop"),
    "comment.customer": _l("Comment to the buyer"),
    "comment.internal": _l("Internal comment"),
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
    results = order_queries.search_orders(db(), filters)
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
        shops=db().scalars(select(Shop).order_by(Shop.name)).all(),
    )


@bp.get("/<int:order_id>")
def detail(order_id: int) -> ResponseReturnValue:
    """Show everything about one order."""
    return _detail_page(order_id)


@bp.get("/<int:order_id>/timeline")
def timeline(order_id: int) -> ResponseReturnValue:
    """Re-render the order's timeline, keeping only the chosen kinds of event."""
    return _detail_page(order_id, "orders/_timeline.html")


def _detail_page(order_id: int, fragment: str | None = None) -> ResponseReturnValue:
    try:
        order = order_queries.get_order(db(), order_id)
    except NotFound:
        abort(404)
    return htmx.render(
        "orders/detail.html",
        fragment,
        order=order,
        lines=list(nested_lines(order.lines)),
        milestone=order_state.milestone(order),
        ready=order_state.is_ready_to_prepare(order),
        **timeline_context(order, request.args.getlist("kinds")),
    )


def filter_error_messages(errors: Mapping[str, str], args: Mapping[str, str]) -> list[str]:
    """Say, in the user's language, which filter values were ignored."""
    messages = []
    for name in errors:
        field = FILTER_LABELS.get(name, name)
        # A well-formed end date can only be refused for coming before the start date.
        if name == "date_to" and _is_date(args.get("date_to") or ""):
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


def _is_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value.strip())
    except ValueError:
        return False
    return True


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


def timeline_context(order: Order, raw_kinds: Sequence[str]) -> dict[str, Any]:
    """The order's events, newest first, keeping the chosen families (all when none)."""
    kinds = {part.strip() for raw in raw_kinds for part in raw.split(",") if part.strip()}
    events = sorted(order.events, key=lambda event: (event.occurred_at, event.id), reverse=True)
    present = sorted({event_family(event) for event in events}, key=_family_order)
    shown = [event for event in events if not kinds or event_family(event) in kinds]
    return {
        "events": shown,
        "event_count": len(events),
        "families": [(family, EVENT_FAMILIES.get(family, family)) for family in present],
        "kinds": kinds,
        "event_labels": EVENT_LABELS,
    }


def _family_order(family: str) -> tuple[int, str]:
    names = list(EVENT_FAMILIES)
    return (names.index(family) if family in names else len(names), family)
