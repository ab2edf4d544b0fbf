"""Shipping modes (admin only): list, add, edit, deactivate and reactivate."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.models import ShippingMode
from web.models.enums import Role
from web.services import shipping_modes
from web.services.errors import NotFound, ValidationFailed
from web.views.base import db, restrict

bp = Blueprint("shipping_modes", __name__, url_prefix="/admin/shipping-modes")
restrict(bp, Role.ADMIN)


def _mode(mode_id: int) -> ShippingMode:
    try:
        return shipping_modes.get_mode(db(), mode_id)
    except NotFound:
        abort(404)


def _status() -> str:
    status = request.values.get("status", "all")
    return status if status in shipping_modes.STATUSES else "all"


def _list_context(status: str) -> dict[str, Any]:
    return {"rows": shipping_modes.list_modes(db(), status), "shown": status}


@bp.get("/")
def index() -> ResponseReturnValue:
    """The modes, active first; the filter swaps the list only."""
    results = "shipping_modes/_results.html" if htmx.is_swap_of("modes-results") else None
    return htmx.render("shipping_modes/index.html", results, **_list_context(_status()))


def _form_page(
    mode: ShippingMode | None, form: Any, errors: dict[str, str], status: int = 200
) -> ResponseReturnValue:
    template = form.get("tracking_url_template", "")
    return htmx.render(
        "shipping_modes/form.html",
        "shipping_modes/_form.html",
        status=status,
        mode=mode,
        form=form,
        errors=errors,
        example=shipping_modes.example_url(template),
        platforms=shipping_modes.PLATFORMS,
    )


@bp.get("/new")
def new() -> ResponseReturnValue:
    return _form_page(None, {}, {})


@bp.post("/")
def create() -> ResponseReturnValue:
    try:
        mode = shipping_modes.create_mode(db(), request.form)
    except ValidationFailed as exc:
        db().rollback()
        return _form_page(None, request.form, exc.errors, 422)
    db().commit()
    flash(_("Shipping mode %(name)s added.", name=mode.name), "success")
    return htmx.redirect_after_post(url_for("shipping_modes.index"))


@bp.get("/<id:mode_id>")
def edit(mode_id: int) -> ResponseReturnValue:
    mode = _mode(mode_id)
    return _form_page(mode, shipping_modes.form_values(mode), {})


@bp.post("/<id:mode_id>")
def update(mode_id: int) -> ResponseReturnValue:
    mode = _mode(mode_id)
    try:
        shipping_modes.update_mode(
            db(),
            mode,
            request.form,
            actor=current_user._get_current_object(),
            address=request.remote_addr or "",
        )
    except ValidationFailed as exc:
        db().rollback()
        form = {**request.form.to_dict(), "code": _mode(mode_id).code}
        return _form_page(_mode(mode_id), form, exc.errors, 422)
    db().commit()
    flash(_("Shipping mode %(name)s saved.", name=mode.name), "success")
    return htmx.redirect_after_post(url_for("shipping_modes.index"))


@bp.post("/<id:mode_id>/active")
def set_active(mode_id: int) -> ResponseReturnValue:
    """Deactivate or reactivate; htmx gets the list back, filtered as it was."""
    mode = _mode(mode_id)
    active = request.form.get("active") == "1"
    shipping_modes.set_active(db(), mode, active)
    db().commit()
    if active:
        message = _("Shipping mode %(name)s is active again.", name=mode.name)
    else:
        message = _("Shipping mode %(name)s deactivated: it is no longer offered.", name=mode.name)
    status = _status()
    if htmx.is_swap_of("modes-results"):
        context = _list_context(status)
        return htmx.render("shipping_modes/_results.html", notice=message, **context)
    flash(message, "success")
    url = url_for("shipping_modes.index", status=status if status != "all" else None)
    return htmx.redirect_after_post(url)


@bp.get("/preview")
def preview() -> ResponseReturnValue:
    """The link a tracking URL template makes for an example parcel, or why it is refused."""
    template = request.args.get("tracking_url_template", "").strip()
    return htmx.render(
        "shipping_modes/_preview.html",
        "shipping_modes/_preview.html",
        error=shipping_modes.template_error(template),
        example=shipping_modes.example_url(template),
        template=template,
    )
