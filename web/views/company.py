"""The company settings page: who the documents name as the seller (admins edit, managers read)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Blueprint, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.documents.company import missing_fields
from web.i18n import N_
from web.models import CompanySettings
from web.models.enums import Role, VatRegime
from web.services import company
from web.services.errors import ValidationFailed
from web.views.base import db, restrict, roles_required
from web.views.labels import COMPANY_FIELD_LABELS

bp = Blueprint("company", __name__, url_prefix="/admin/company")
# Managers issue the invoices: they may see what the settings say and what is missing.
restrict(bp, Role.ADMIN, Role.MANAGER)

PAGE = "company/edit.html"
FORM = "company/_form.html"


def _address() -> str:
    return request.remote_addr or ""


def _logo_uri(settings: CompanySettings) -> str | None:
    if not settings.logo:
        return None
    encoded = base64.b64encode(settings.logo).decode("ascii")
    return f"data:{settings.logo_mime_type};base64,{encoded}"


def _page(status: int = 200, fragment: str | None = None, **context: Any) -> ResponseReturnValue:
    """The page, or the fragment for an htmx swap of it."""
    settings = company.company_or_defaults(db())
    context.setdefault("form", company.settings_values(settings))
    context.setdefault("errors", {})
    context.setdefault("logo_error", None)
    return htmx.render(
        PAGE,
        fragment,
        status=status,
        company=settings,
        missing=missing_fields(settings),
        labels=COMPANY_FIELD_LABELS,
        regimes=list(VatRegime),
        engines=company.engine_choices(),
        logo_uri=_logo_uri(settings),
        can_edit=current_user.role == Role.ADMIN,
        **context,
    )


@bp.get("")
def edit() -> ResponseReturnValue:
    """The settings, in sections, with what is still missing before invoicing."""
    return _page()


@bp.post("")
@roles_required(Role.ADMIN)
def update() -> ResponseReturnValue:
    form = request.form
    fields = {key: form[key] for key in company.KEYS if key in form}
    try:
        company.update_company(db(), fields, actor=current_user, address=_address())
    except ValidationFailed as exc:
        db().rollback()
        return _page(422, FORM, form=form, errors=exc.errors)
    db().commit()
    flash(_("Company settings saved."), "success")
    return htmx.redirect_after_post(url_for("company.edit"))


@bp.post("/logo")
@roles_required(Role.ADMIN)
def logo_upload() -> ResponseReturnValue:
    upload = request.files.get("logo")
    data = upload.read(company.MAX_LOGO_BYTES + 1) if upload else b""
    try:
        if not data:
            raise ValidationFailed(N_("No file."), {"logo": N_("Choose an image file.")})
        company.set_logo(db(), data, actor=current_user, address=_address())
    except ValidationFailed as exc:
        db().rollback()
        return _page(422, logo_error=exc.errors["logo"])
    db().commit()
    flash(_("Logo saved."), "success")
    return htmx.redirect_after_post(url_for("company.edit"))


@bp.post("/logo/remove")
@roles_required(Role.ADMIN)
def logo_remove() -> ResponseReturnValue:
    company.remove_logo(db(), actor=current_user, address=_address())
    db().commit()
    flash(_("Logo removed: documents print without it."), "info")
    return htmx.redirect_after_post(url_for("company.edit"))
