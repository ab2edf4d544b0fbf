"""Administration: user accounts and roles (admin only)."""

from __future__ import annotations

from flask import Blueprint, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.models.enums import Role
from web.services import users
from web.services.errors import ValidationFailed
from web.views.base import db, restrict

bp = Blueprint("admin", __name__, url_prefix="/admin")
restrict(bp, Role.ADMIN)


@bp.get("/users")
def user_list() -> ResponseReturnValue:
    return htmx.render(
        "admin/users.html", users=users.list_users(db()), roles=list(Role), errors={}, form={}
    )


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
            "admin/users.html",
            status=422,
            users=users.list_users(db()),
            roles=list(Role),
            errors=exc.errors,
            form=form,
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


@bp.post("/users/<int:user_id>/active")
def user_set_active(user_id: int) -> ResponseReturnValue:
    user = users.get_user(db(), user_id)
    try:
        users.set_active(db(), user, request.form.get("active") == "1", current_user)
    except ValidationFailed as exc:
        flash(_(str(exc)), "error")
        return htmx.redirect_after_post(url_for("admin.user_list"))
    db().commit()
    return htmx.redirect_after_post(url_for("admin.user_list"))
