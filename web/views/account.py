"""My account: my password, my sessions, my language (every role)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.extensions import limiter
from web.services import users
from web.services.errors import ValidationFailed
from web.views import sessions
from web.views.base import db

bp = Blueprint("account", __name__, url_prefix="/account")


def _page(status: int = 200, **context: Any) -> ResponseReturnValue:
    return htmx.render("account/index.html", status=status, **({"errors": {}} | context))


def _password_limit() -> str:
    # Guessing the current password here is guessing a login: the same limit applies.
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.get("")
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/password")
@limiter.limit(_password_limit)
def change_password() -> ResponseReturnValue:
    form = request.form
    try:
        users.change_password(
            db(),
            current_user,
            form.get("current_password", ""),
            form.get("new_password", ""),
            form.get("repeat_password", ""),
            address=request.remote_addr or "",
        )
    except ValidationFailed as exc:
        db().rollback()
        return _page(status=422, errors=exc.errors)
    db().commit()
    sessions.keep(current_user)  # this session goes on; every other one has ended
    flash(_("Your password is changed. Your other sessions have ended."), "success")
    return htmx.redirect_after_post(url_for("account.index"))


@bp.post("/sessions/end")
def log_out_everywhere() -> ResponseReturnValue:
    users.log_out_everywhere(
        db(), current_user, actor=current_user, address=request.remote_addr or ""
    )
    db().commit()
    sessions.log_out()
    flash(_("You are logged out everywhere."), "info")
    return htmx.redirect_after_post(url_for("auth.login"))
