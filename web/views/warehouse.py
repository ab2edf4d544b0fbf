"""Warehouse queue (placeholder)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from web import htmx
from web.views.base import WAREHOUSE_ROLES, restrict

bp = Blueprint("warehouse", __name__, url_prefix="/warehouse")
restrict(bp, *WAREHOUSE_ROLES)


@bp.get("/")
def queue() -> ResponseReturnValue:
    return htmx.render("warehouse/queue.html")
