"""Login, logout and the language switch."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import EmailField, Field, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length, ValidationError

from web.models import User, utcnow
from web.models.enums import Role
from web.services import login_throttle, users
from web.views import sessions
from web.views.base import db
from web.views.known_device import device_for
from web.views.known_device import remember as remember_device

bp = Blueprint("auth", __name__)


def no_nul(form: FlaskForm, field: Field) -> None:
    """Refuse a NUL character: no account holds one, and PostgreSQL refuses it in a query."""
    if "\x00" in (field.data or ""):
        raise ValidationError(_("This field cannot hold a NUL character."))


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254), no_nul])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024), no_nul])
    next = HiddenField()


def home_url() -> str:
    """Where a user lands: the warehouse queue for warehouse staff, the dashboard otherwise."""
    if current_user.is_authenticated and current_user.role == Role.WAREHOUSE:
        return url_for("warehouse.queue")
    return url_for("dashboard.index")


def _safe_next(target: str | None) -> str | None:
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _now() -> dt.datetime:
    # Tests move time through this clock; the throttle never sleeps.
    clock = current_app.extensions.get("comptoir.clock", utcnow)
    return clock()


def _throttled(form: LoginForm, wait: login_throttle.Throttled) -> ResponseReturnValue:
    """Refused unheard: the same answer whether the account exists or not."""
    message = _(
        "Too many failed attempts. Try again in %(wait)s.",
        wait=format_timedelta(dt.timedelta(seconds=wait.wait_seconds), threshold=1.5),
    )
    html = render_template("auth/login.html", form=form, throttled=message)
    return html, 429, {"Retry-After": str(wait.wait_seconds)}


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(home_url())
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        email, now = form.email.data or "", _now()
        attempt = login_throttle.Attempt(email, request.remote_addr or "", device_for(email))
        wait = login_throttle.check(db(), attempt, now)
        if wait is not None:
            db().rollback()
            return _throttled(form, wait)
        user = users.authenticate(db(), email, form.password.data or "")
        if user is not None:
            login_throttle.record_success(db(), attempt)
            db().commit()
            return _logged_in(user, email, form.next.data)
        login_throttle.record_failure(db(), attempt, now)
        db().commit()
        form.password.errors = [_("Wrong e-mail or password.")]
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


def _logged_in(user: User, email: str, target: str | None) -> Response:
    lang = session.get("lang")
    session.clear()  # a fresh session on every login
    if lang:
        session["lang"] = lang
    login_user(user)
    sessions.start(user)
    response = redirect(_safe_next(target) or home_url(), code=303)
    remember_device(response, email)
    return response


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    # Every session of the user ends, so a copy of this cookie is worth nothing either.
    users.end_sessions(db(), current_user)
    db().commit()
    sessions.log_out()
    flash(_("You are logged out."), "info")
    return redirect(url_for("auth.login"), code=303)


@bp.post("/language")
def set_language() -> ResponseReturnValue:
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
        if current_user.is_authenticated:
            current_user.locale = lang
            db().commit()
    target = _safe_next(request.form.get("next")) or url_for("auth.login")
    return redirect(target, code=303)
