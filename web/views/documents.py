"""Documents: the issued documents' list and bulk download, issuing an invoice or a
shipment's delivery note from the order page, stored PDFs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from web import htmx
from web.documents import delivery_notes, invoices, issued
from web.documents.company import CompanyIncomplete
from web.models import Document, Job, Shipment, Shop
from web.models.enums import DocumentKind, Role
from web.services import documents_list, invoicing, order_actions
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.views.base import (
    DESK_ROLES,
    EDITOR_ROLES,
    current_actor,
    db,
    has_role,
    restrict,
    roles_required,
)
from web.views.events import company_fields, translated
from web.views.orders import detail_page

bp = Blueprint("documents", __name__, url_prefix="/documents")
restrict(bp, *DESK_ROLES, Role.WAREHOUSE)


def stored_pdf_response(
    document: Document, *, inline: bool = False, headers: Mapping[str, str] | None = None
) -> Response:
    """The issued document's PDF, for a caller whose access was checked (pages, API, links).

    On S3 a 302 to a presigned URL of the stored version (valid APP_S3_URL_SECONDS), never
    kept by a cache; with the local folder, the bytes. Either way the hash kept at issue is
    checked first (DocumentDamaged otherwise).
    """
    url = issued.pdf_url(document, inline=inline)
    if url is not None:
        response = Response(status=302, headers={"Location": url})
        response.headers["Cache-Control"] = "private, no-store"
    else:
        _document, data = issued.stored_pdf(db(), document.id)
        response = Response(data, mimetype="application/pdf")
        disposition = "inline" if inline else "attachment"
        filename = issued.pdf_filename(document)
        response.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    response.headers.update(headers or {})
    return response


@bp.get("/<id:document_id>/pdf")
def pdf(document_id: int) -> ResponseReturnValue:
    """Download a document's PDF as it was issued."""
    try:
        document = issued.document_with_pdf(db(), document_id)
    except NotFound:
        abort(404)
    # The warehouse prints delivery notes; invoices and credit notes are the desk's.
    if document.kind != DocumentKind.DELIVERY_NOTE and not has_role(*DESK_ROLES):
        abort(403)
    return stored_pdf_response(document)


@bp.post("/shipments/<id:shipment_id>/delivery-note")
@roles_required(*EDITOR_ROLES, Role.WAREHOUSE)
def issue_delivery_note(shipment_id: int) -> ResponseReturnValue:
    """Issue the shipment's delivery note (or find the one it has), then back to the order."""
    shipment = db().get(Shipment, shipment_id)
    if shipment is None:
        abort(404)
    order_actions.lock_order(db(), shipment.order_id)  # writers take the order first
    with_prices = request.form.get("with_prices") == "on"
    language = _language()
    try:
        document = delivery_notes.issue_delivery_note(
            db(), shipment, current_actor(), with_prices, locale=language
        )
    except InvalidTransition:
        db().rollback()
        flash(_("A cancelled shipment gets no delivery note."), "error")
        return htmx.redirect_after_post(url_for("orders.detail", order_id=shipment.order_id))
    db().commit()
    flash(_("Delivery note %(reference)s issued.", reference=document.reference), "success")
    return htmx.redirect_after_post(
        url_for("orders.detail", order_id=shipment.order_id) + "#documents-title"
    )


# --- The documents list and its bulk download ------------------------------------------------


@bp.get("/")
@roles_required(*DESK_ROLES)
def index() -> ResponseReturnValue:
    """List the issued documents matching the filters; htmx swaps get the results only."""
    filters, refused = documents_list.parse_filters(request.args)
    # Read before the list: "all matching" then means the documents this list had.
    newest_id = documents_list.newest_document_id(db())
    return htmx.render(
        "documents/index.html",
        "documents/_results.html",
        filters=filters,
        refused=refused,
        results=documents_list.list_documents(db(), filters),
        args=filters.args(),
        kinds=list(DocumentKind),
        series=documents_list.series(db()),
        shops=db().scalars(select(Shop).order_by(Shop.name)).all(),
        newest_id=newest_id,
    )


@bp.post("/download")
@roles_required(*DESK_ROLES)
def download() -> ResponseReturnValue:
    """Queue the download of the chosen documents as one PDF or a ZIP; show its progress."""
    form = request.form
    matching = form if form.get("scope") == "all" else None
    folder = Path(current_app.instance_path) / "exports"
    try:
        selection = documents_list.select_documents(db(), form.getlist("ids"), matching)
        job = documents_list.start_download(
            db(), selection, form.get("format", ""), folder, current_user.id
        )
    except ValidationFailed as exc:
        db().rollback()
        texts = list(dict.fromkeys(exc.errors.values())) or [str(exc)]
        return htmx.render(
            "documents/download_job.html",
            "orders/_bulk_errors.html",
            status=422,
            messages=[translated(text) for text in texts],
        )
    db().commit()
    if htmx.is_htmx_request():
        return htmx.render("documents/download_job.html", "documents/_download_job.html", job=job)
    return htmx.redirect_after_post(url_for("documents.download_status", job_id=job.id))


def _own_download(job_id: int) -> Job:
    """The download job, if the user started it or is an admin."""
    try:
        job = documents_list.get_job(db(), job_id)
    except NotFound:
        abort(404)
    if job.created_by_id != current_user.id and current_user.role != Role.ADMIN:
        abort(403)
    return job


@bp.get("/download/<id:job_id>")
@roles_required(*DESK_ROLES)
def download_status(job_id: int) -> ResponseReturnValue:
    """A download job's progress and outcome; the fragment polls itself until done."""
    job = _own_download(job_id)
    return htmx.render("documents/download_job.html", "documents/_download_job.html", job=job)


@bp.get("/download/<id:job_id>/file")
@roles_required(*DESK_ROLES)
def download_file(job_id: int) -> ResponseReturnValue:
    """Send the PDF or ZIP a download job wrote, to the user who asked for it or an admin."""
    job = _own_download(job_id)
    try:
        kept = documents_list.download_file(job)
    except NotFound:
        abort(404)
    if kept is None:
        return htmx.render(
            "errors/page.html",
            "errors/_message.html",
            status=410,
            status_code=410,
            title=_("Download removed"),
            message=_("This file was removed after 24 hours. Download the documents again."),
        )
    if kept.path is None:  # on S3: the browser reads it there, by a URL valid a few minutes
        return redirect(str(kept.url))
    fmt = job.payload["format"]
    response = send_file(
        kept.path,
        mimetype="application/zip" if fmt == "zip" else "application/pdf",
        as_attachment=True,
        download_name=documents_list.download_name(job),
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/orders/<id:order_id>/invoices")
@roles_required(*EDITOR_ROLES)
def issue_invoice(order_id: int) -> ResponseReturnValue:
    """Issue the order's invoice: everything not invoiced yet, or the quantities typed."""
    order = order_actions.lock_order(db(), order_id)  # writers take the order first
    if order is None:
        abort(404)
    language = _language()
    try:
        quantities = None
        if request.form.get("scope") == "part":
            remaining = invoices.remaining_quantities(db(), order)
            quantities = invoicing.parse_quantities(order, remaining, request.form)
        document = invoices.issue_invoice(db(), order, current_actor(), quantities, locale=language)
    except ValidationFailed as exc:
        db().rollback()
        errors = {key: translated(text) for key, text in exc.errors.items()}
        refusal = {
            "message": translated(str(exc)),
            "errors": errors,
            "part": True,
            "typed": request.form.to_dict(),
        }
        return detail_page(order_id, 422, invoice_refusal=refusal)
    except InvalidTransition as exc:
        db().rollback()
        return detail_page(order_id, 409, invoice_refusal=_refusal(exc))
    db().commit()
    flash(_("Invoice %(reference)s issued.", reference=document.reference), "success")
    return htmx.redirect_after_post(
        url_for("orders.detail", order_id=order_id) + "#documents-title"
    )


def _language() -> str:
    languages = tuple(current_app.config["LANGUAGES"])
    language = request.form.get("language", languages[0])
    if language not in languages:
        abort(400)
    return language


def _refusal(exc: InvalidTransition) -> dict[str, object]:
    """Why no invoice was issued, in the reader's language."""
    if isinstance(exc, CompanyIncomplete):
        fields = company_fields(exc.fields)
        message = _("The company settings are incomplete: %(fields)s.", fields=fields)
        return {"message": message, "company": True}
    return {"message": _("No invoice issued: %(reason)s.", reason=translated(exc.reason))}
