"""Administration: user accounts and roles (admin only)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.i18n import N_
from web.models.enums import Role
from web.services import paging, users
from web.services.errors import NotFound, ValidationFailed
from web.views.base import db, restrict
from web.views.events import translated

bp = Blueprint("admin", __name__, url_prefix="/admin")
restrict(bp, Role.ADMIN)


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
    if not form.get("password"):
        flash(
            _(
                "User %(email)s created. Their password: %(password)s — shown only once.",
                email=user.email,
                password=password,
            ),
            "success",
        )
    else:
        flash(_("User %(email)s created.", email=user.email), "success")
    return htmx.redirect_after_post(url_for("admin.user_list"))


@bp.post("/users/<id:user_id>/active")
def user_set_active(user_id: int) -> ResponseReturnValue:
    try:
        user = users.get_user(db(), user_id)
    except NotFound:
        abort(404)
    try:
        users.set_active(db(), user, request.form.get("active") == "1", current_user)
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
        token = users.create_api_token(db(), user, form.get("label", ""))
    except (NotFound, ValidationFailed) as exc:
        db().rollback()
        errors = (
            exc.errors if isinstance(exc, ValidationFailed) else {"user_id": N_("Choose a user.")}
        )
        context = _page_context(token_errors=errors, token_form=form)
        return htmx.render("admin/users.html", "admin/_tokens.html", status=422, **context)
    db().commit()
    if not htmx.is_partial_request():
        flash(
            _(
                "API token for %(email)s — shown only once: %(token)s",
                email=user.email,
                token=token,
            ),
            "success",
        )
        return htmx.redirect_after_post(url_for("admin.user_list"))
    new_token = {"email": user.email, "token": token}
    return htmx.render(
        "admin/users.html", "admin/_tokens.html", **_page_context(new_token=new_token)
    )


@bp.post("/users/<id:user_id>/tokens/<id:token_id>/revoke")
def token_revoke(user_id: int, token_id: int) -> ResponseReturnValue:
    try:
        users.revoke_api_token(db(), users.get_user(db(), user_id), token_id)
    except NotFound:
        abort(404)
    db().commit()
    if not htmx.is_partial_request():
        flash(_("Token revoked."), "success")
        return htmx.redirect_after_post(url_for("admin.user_list"))
    return htmx.render("admin/users.html", "admin/_tokens.html", **_page_context(revoked=True))
