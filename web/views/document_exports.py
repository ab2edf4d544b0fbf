"""The accountant's exports: the CSV of documents, the FEC sales journal, the B2C summary."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.routing import BuildError

from web import htmx
from web.models.base import utcnow
from web.services import accounting_exports
from web.services.errors import ValidationFailed
from web.services.order_queries import DESK_TZ
from web.views.base import EDITOR_ROLES, db, restrict

bp = Blueprint("document_exports", __name__, url_prefix="/documents")
# Exports carry every buyer's name and the company's figures: managers and admins.
restrict(bp, *EDITOR_ROLES)


def _last_month() -> tuple[dt.date, dt.date]:
    first_of_this_month = utcnow().astimezone(DESK_TZ).date().replace(day=1)
    end = first_of_this_month - dt.timedelta(days=1)
    return end.replace(day=1), end


def _documents_list_url() -> str | None:
    """The documents list, once the app has one."""
    try:
        return url_for("documents.index")
    except BuildError:
        return None


def _page(
    form: dict[str, str], errors: dict[str, str] | None = None, status: int = 200
) -> Response:
    return htmx.render(
        "document_exports/index.html",
        status=status,
        form=form,
        errors=errors or {},
        formats=accounting_exports.FORMATS,
        documents_url=_documents_list_url(),
    )


@bp.get("/exports")
def index() -> ResponseReturnValue:
    """The export form, last month chosen."""
    start, end = _last_month()
    return _page({"format": "csv", "from": start.isoformat(), "to": end.isoformat()})


@bp.get("/exports/download")
def download() -> ResponseReturnValue:
    """The export as a file, or the form again naming what is wrong."""
    form = {key: request.args.get(key, "").strip() for key in ("format", "from", "to")}
    errors = {}
    if form["format"] not in accounting_exports.FORMATS:
        errors["format"] = accounting_exports.CHOOSE_FORMAT
    try:
        start, end = accounting_exports.parse_range(form["from"], form["to"])
        if not errors:
            result = accounting_exports.export(db(), form["format"], start, end)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        return _page(form, errors, 422)
    response = Response(result.data, content_type=result.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{result.filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response
