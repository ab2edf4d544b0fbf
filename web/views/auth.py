"""Login, logout and the language switch."""

from __future__ import annotations

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
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField
from wtforms.validators import DataRequired, Length

from web.extensions import limiter
from web.models.enums import Role
from web.services import users
from web.views import sessions
from web.views.base import db

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)])
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


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
def login() -> ResponseReturnValue:
    if current_user.is_authenticated:
        return redirect(home_url())
    form = LoginForm(next=request.args.get("next", ""))
    if form.validate_on_submit():
        user = users.authenticate(db(), form.email.data or "", form.password.data or "")
        if user is not None:
            db().commit()
            lang = session.get("lang")
            session.clear()  # a fresh session on every login
            if lang:
                session["lang"] = lang
            login_user(user)
            sessions.start(user)
            return redirect(_safe_next(form.next.data) or home_url(), code=303)
        form.password.errors = [_("Wrong e-mail or password.")]
    status = 400 if form.errors else 200
    return render_template("auth/login.html", form=form), status


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
