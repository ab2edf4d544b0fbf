"""Dashboard: order counts per state, orders per day, and what needs attention."""

from __future__ import annotations

from flask import Blueprint, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from web import htmx
from web.models.enums import Role
from web.services import dashboard
from web.views.base import DESK_ROLES, db, has_role, restrict

bp = Blueprint("dashboard", __name__)


@bp.before_request
def _warehouse_home() -> ResponseReturnValue | None:
    """Warehouse staff opening `/` (a bookmark, the logo) land on their queue, not a 403."""
    if request.endpoint == "dashboard.index" and has_role(Role.WAREHOUSE):
        return redirect(url_for("warehouse.queue"))
    return None


restrict(bp, *DESK_ROLES)  # after the redirect above: before_request hooks run in order

# The chart's drawing area in SVG units; the page scales it to the screen (viewBox).
CHART = {"width": 600, "height": 220, "left": 40, "right": 8, "top": 12, "bottom": 30}
PLOT_WIDTH = CHART["width"] - CHART["left"] - CHART["right"]
PLOT_HEIGHT = CHART["height"] - CHART["top"] - CHART["bottom"]
CHART_DAYS = 30

ATTENTION_LABELS = {
    "on_hold": _l("On hold"),
    "needs_mapping": _l("Needs mapping"),
    "needs_review": _l("To review"),
    "totals_mismatch": _l("Totals do not add up"),
    "inbox": _l("Incoming event stuck"),
    "outbox": _l("Update to the shop failed"),
}


@bp.get("/")
def index() -> ResponseReturnValue:
    """Show the counts, the last 30 days and the things that need someone."""
    days = dashboard.orders_per_day(db(), days=CHART_DAYS)
    bars = dashboard.chart_bars(days, PLOT_WIDTH, PLOT_HEIGHT)
    return htmx.render(
        "dashboard/index.html",
        counts=dashboard.state_counts(db()),
        chart=CHART,
        plot={"width": PLOT_WIDTH, "height": PLOT_HEIGHT, "slot": PLOT_WIDTH / len(days)},
        axis=dashboard.chart_axis(days, PLOT_HEIGHT),
        days=list(zip(bars, days, strict=True)),
        total_30=sum(day.count for day in days),
        busiest=max(days, key=lambda day: (day.count, day.date)),
        attention=dashboard.needs_attention(db()),
        attention_labels=ATTENTION_LABELS,
    )
