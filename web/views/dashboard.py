"""Dashboard (placeholder until the order desk lands)."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue

from web import htmx
from web.views.base import DESK_ROLES, restrict

bp = Blueprint("dashboard", __name__)
restrict(bp, *DESK_ROLES)


@bp.get("/")
def index() -> ResponseReturnValue:
    return htmx.render("dashboard/index.html")
