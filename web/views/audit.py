"""The audit log (admins): who slowed down, ended, changed or revoked what, newest first."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l

from web import htmx
from web.models.enums import Role
from web.services import audit
from web.views.base import db, restrict
from web.views.events import AUDIT, render_audit

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")
restrict(bp, Role.ADMIN)

# What the filter list calls each kind; a kind missing here is listed as its code.
KIND_NAMES = {
    "login.throttled": _l("Logins slowed down"),
    "session.ended_everywhere": _l("Sessions ended everywhere"),
    "password.changed": _l("Passwords changed"),
    "user.deactivated": _l("Users deactivated"),
    "api_token.created": _l("API tokens created"),
    "api_token.revoked": _l("API tokens revoked"),
    "shop.url_changed": _l("Shop addresses changed"),
    "shipping_mode.tracking_url_changed": _l("Tracking links changed"),
    "company.identity_changed": _l("Company identity or bank details changed"),
    "company.settings_changed": _l("Company settings changed"),
    "company.logo_changed": _l("Company logos replaced"),
    "company.logo_removed": _l("Company logos removed"),
}


def kind_name(kind: str) -> str:
    return str(KIND_NAMES.get(kind, kind))


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"render_audit": render_audit, "kind_name": kind_name}


@bp.get("/")
def index() -> ResponseReturnValue:
    """List audit entries, newest first; htmx swaps get the results region only."""
    filters, refused = audit.parse_filters(request.args)
    kinds = sorted(set(AUDIT) | set(audit.kinds(db())), key=kind_name)
    return htmx.render(
        "admin/audit.html",
        "admin/_audit_results.html",
        filters=filters,
        refused=refused,
        results=audit.list_entries(db(), filters),
        args=filters.args(),
        kinds=kinds,
    )
