"""My account: my password, my sessions, my language (every role)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.models import utcnow
from web.services import login_throttle, users
from web.services.errors import ValidationFailed
from web.views import sessions
from web.views.base import db

bp = Blueprint("account", __name__, url_prefix="/account")


def _page(status: int = 200, **context: Any) -> ResponseReturnValue:
    return htmx.render("account/index.html", status=status, **({"errors": {}} | context))


def _now() -> dt.datetime:
    return current_app.extensions.get("comptoir.clock", utcnow)()


@bp.get("")
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/password")
def change_password() -> ResponseReturnValue:
    form = request.form
    # Guessing the current password here is guessing a login: the login throttle counts it.
    attempt = login_throttle.Attempt(current_user.email, request.remote_addr or "")
    now = _now()
    wait = login_throttle.check(db(), attempt, now)
    if wait is not None:
        db().rollback()
        message = _(
            "Too many failed attempts. Try again in %(wait)s.",
            wait=format_timedelta(dt.timedelta(seconds=wait.wait_seconds), threshold=1.5),
        )
        return _page(status=429, throttled=message)
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
        if "current_password" in exc.errors:
            login_throttle.record_failure(db(), attempt, now)
            db().commit()
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
