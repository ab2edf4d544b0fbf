"""Administration: user accounts and roles (admin only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.i18n import N_
from web.models import User
from web.models.enums import Role
from web.services import paging, users
from web.services.errors import NotFound, ValidationFailed
from web.views import sessions
from web.views.base import db, restrict
from web.views.events import translated

bp = Blueprint("admin", __name__, url_prefix="/admin")
restrict(bp, Role.ADMIN)


def _address() -> str:
    return request.remote_addr or ""


def _secret(response: Response) -> Response:
    """Keep an answer that shows a one-time secret out of every cache."""
    response.headers["Cache-Control"] = "no-store"
    return response


def _user(user_id: int) -> User:
    try:
        return users.get_user(db(), user_id)
    except NotFound:
        abort(404)


def _page_context(**context: Any) -> dict[str, Any]:
    defaults: dict[str, Any] = {
        "users": users.list_users(db()),
        "roles": list(Role),
        "errors": {},
        "form": {},
        "tokens": users.list_api_tokens(db()),
        "token_errors": {},
        "token_form": {},
        "new_token": None,
        "new_password": None,
        "revoked": False,
    }
    return defaults | context


@bp.get("/users")
def user_list() -> ResponseReturnValue:
    return htmx.render("admin/users.html", **_page_context())


@bp.post("/users")
def user_create() -> ResponseReturnValue:
    form = request.form
    try:
        user, password = users.create_user(
            db(),
            form.get("email", ""),
            form.get("role", ""),
            form.get("password") or None,
            form.get("display_name", ""),
        )
    except ValidationFailed as exc:
        db().rollback()
        return htmx.render(
            "admin/users.html", status=422, **_page_context(errors=exc.errors, form=form)
        )
    db().commit()
    if form.get("password"):
        flash(_("User %(email)s created.", email=user.email), "success")
        return htmx.redirect_after_post(url_for("admin.user_list"))
    # A generated password is shown in this answer only, never put in the session cookie.
    new_password = {"email": user.email, "password": password, "created": True}
    return _secret(
        htmx.render("admin/users.html", status=201, **_page_context(new_password=new_password))
    )


@bp.post("/users/<id:user_id>/active")
def user_set_active(user_id: int) -> ResponseReturnValue:
    try:
        user = users.get_user(db(), user_id)
    except NotFound:
        abort(404)
    try:
        active = request.form.get("active") == "1"
        users.set_active(db(), user, active, current_user, address=_address())
    except ValidationFailed as exc:
        flash(translated(str(exc)), "error")
        return htmx.redirect_after_post(url_for("admin.user_list"))
    db().commit()
    return htmx.redirect_after_post(url_for("admin.user_list"))


@bp.post("/tokens")
def token_create() -> ResponseReturnValue:
    form = request.form
    # 0 for anything that is not an id: no user has it.
    user_id = paging.whole_number(form.get("user_id"), 1, paging.MAX_ID) or 0
    try:
        user = users.get_user(db(), user_id)
        if not user.is_active:
            raise NotFound(f"user {user_id} is not active")
        token = users.create_api_token(
            db(), user, form.get("label", ""), actor=current_user, address=_address()
        )
    except (NotFound, ValidationFailed) as exc:
        db().rollback()
        errors = (
            exc.errors if isinstance(exc, ValidationFailed) else {"user_id": N_("Choose a user.")}
        )
        context = _page_context(token_errors=errors, token_form=form)
        return htmx.render("admin/users.html", "admin/_tokens.html", status=422, **context)
    db().commit()
    # Shown in this answer only (the fragment, or the whole page without htmx), never
    # put in the session cookie.
    new_token = {"email": user.email, "token": token}
    context = _page_context(new_token=new_token)
    return _secret(htmx.render("admin/users.html", "admin/_tokens.html", status=201, **context))


@bp.post("/users/<id:user_id>/tokens/<id:token_id>/revoke")
def token_revoke(user_id: int, token_id: int) -> ResponseReturnValue:
    try:
        users.revoke_api_token(
            db(), users.get_user(db(), user_id), token_id, actor=current_user, address=_address()
        )
    except NotFound:
        abort(404)
    db().commit()
    if not htmx.is_partial_request():
        flash(_("Token revoked."), "success")
        return htmx.redirect_after_post(url_for("admin.user_list"))
    return htmx.render("admin/users.html", "admin/_tokens.html", **_page_context(revoked=True))


@bp.post("/users/<id:user_id>/sessions/end")
def user_log_out_everywhere(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    users.log_out_everywhere(db(), user, actor=current_user, address=_address())
    db().commit()
    if user.id == current_user.id:
        sessions.log_out()
        flash(_("You are logged out everywhere."), "info")
        return htmx.redirect_after_post(url_for("auth.login"))
    flash(_("Every session of %(email)s has ended.", email=user.email), "success")
    return htmx.redirect_after_post(url_for("admin.user_list"))


@bp.post("/users/<id:user_id>/password")
def user_reset_password(user_id: int) -> ResponseReturnValue:
    user = _user(user_id)
    password = users.reset_password(db(), user, actor=current_user, address=_address())
    db().commit()
    if user.id == current_user.id:
        sessions.keep(user)  # the admin stays logged in here; their other sessions end
    new_password = {"email": user.email, "password": password, "created": False}
    return _secret(htmx.render("admin/users.html", **_page_context(new_password=new_password)))
