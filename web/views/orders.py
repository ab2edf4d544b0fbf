"""Order desk (placeholder)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from web import htmx
from web.views.base import DESK_ROLES, restrict

bp = Blueprint("orders", __name__, url_prefix="/orders")
restrict(bp, *DESK_ROLES)


@bp.get("/")
def index() -> ResponseReturnValue:
    return htmx.render("orders/index.html")
