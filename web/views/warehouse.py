"""Warehouse queue: the orders ready to prepare, oldest first, for phones."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta

from web import htmx
from web.models.base import utcnow
from web.services import order_queries
from web.views.base import WAREHOUSE_ROLES, db, restrict

bp = Blueprint("warehouse", __name__, url_prefix="/warehouse")
restrict(bp, *WAREHOUSE_ROLES)

LATE_AFTER = dt.timedelta(days=2)


@bp.get("/")
def queue() -> ResponseReturnValue:
    """List the orders the warehouse may prepare now, the oldest first."""
    filters = order_queries.OrderFilters(
        ready=True,
        sort="placed_at",
        page=max(request.args.get("page", 1, type=int) or 1, 1),
        per_page=order_queries.MAX_PER_PAGE,
    )
    results = order_queries.search_orders(db(), filters, with_lines=True)
    now = utcnow()
    return htmx.render(
        "warehouse/queue.html",
        results=results,
        ages={order.id: now - order.placed_at for order in results.items},
        late_after=LATE_AFTER,
        age_text=lambda age: format_timedelta(-age, add_direction=True),
    )
