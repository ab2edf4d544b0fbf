"""The order list's bulk actions and exports, and the banner of orders arrived since."""

from __future__ import annotations

from pathlib import Path

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    redirect,
    request,
    send_file,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from web import htmx
from web.models import Job
from web.models.enums import JobState, Role
from web.services import bulk, order_actions, order_queries, paging
from web.services.errors import NotFound, ValidationFailed
from web.views.base import DESK_ROLES, EDITOR_ROLES, db, has_role, restrict
from web.views.events import translated

bp = Blueprint("bulk", __name__, url_prefix="/orders")
restrict(bp, *DESK_ROLES)

EXPORTS = {"export_csv": "csv", "export_json": "json", "print_delivery_notes": "pdf"}
MIME_TYPES = {"csv": "text/csv", "json": "application/json", "pdf": "application/pdf"}
TITLES = {
    "validate": _l("Validate orders"),
    "hold": _l("Put orders on hold"),
    "release": _l("Release orders from hold"),
    "prepare": _l("Start preparing orders"),
    "cancel": _l("Cancel orders"),
    "close": _l("Close orders"),
    "deliver": _l("Mark orders delivered"),
    "invoice": _l("Issue invoices"),
    "comment": _l("Comment on orders"),
    "csv": _l("Export to CSV"),
    "json": _l("Export to JSON"),
    "pdf": _l("Print the delivery notes"),
}


def job_title(job: Job) -> str:
    """What the job does, in the user's language."""
    key = job.payload.get("action") or job.payload.get("format") or "comment"
    return str(TITLES.get(key, key))


@bp.post("/bulk")
def submit() -> ResponseReturnValue:
    """Queue a bulk job for the chosen orders and show its progress."""
    operation = request.form.get("op", "")
    if operation not in (*order_actions.ACTIONS, "deliver", "invoice", "comment", *EXPORTS):
        abort(400)
    if operation not in EXPORTS and not has_role(*EDITOR_ROLES):
        abort(403)
    try:
        job = _start(operation, request.form)
    except ValidationFailed as exc:
        db().rollback()
        texts = list(dict.fromkeys(exc.errors.values())) or [str(exc)]
        messages = [translated(text) for text in texts]
        return htmx.render(
            "orders/bulk_job.html", "orders/_bulk_errors.html", status=422, messages=messages
        )
    db().commit()
    if htmx.is_htmx_request():
        return _job_page(job)
    return htmx.redirect_after_post(url_for("bulk.job_status", job_id=job.id))


def _start(operation: str, form: MultiDict[str, str]) -> Job:
    matching = form if form.get("scope") == "all" else None
    selection = bulk.select_orders(db(), form.getlist("ids"), matching)
    if operation in EXPORTS:
        folder = Path(current_app.instance_path) / "exports"
        return bulk.start_export(db(), selection, EXPORTS[operation], folder, current_user.id)
    if operation == "deliver":
        return bulk.start_deliver(db(), selection, current_user.id)
    if operation == "invoice":
        return bulk.start_invoices(db(), selection, current_user.id)
    if operation == "comment":
        return bulk.start_comment(
            db(),
            selection,
            form.get("text", ""),
            form.get("visibility", ""),
            notify=bool(form.get("comment_notify")),
            created_by_id=current_user.id,
        )
    return bulk.start_action(
        db(),
        selection,
        operation,
        reason=form.get("reason", ""),
        notify=bool(form.get("state_notify")),
        created_by_id=current_user.id,
    )


def _own_job(job_id: int) -> Job:
    """The bulk job, if the user started it or is an admin."""
    try:
        job = bulk.get_job(db(), job_id)
    except NotFound:
        abort(404)
    if job.created_by_id != current_user.id and current_user.role != Role.ADMIN:
        abort(403)
    return job


def _job_page(job: Job) -> Response:
    response = htmx.render(
        "orders/bulk_job.html", "orders/_bulk_job.html", job=job, title=job_title(job)
    )
    finished = job.state in (JobState.DONE, JobState.FAILED)
    if finished and job.kind != bulk.EXPORT_JOB and htmx.is_partial_request():
        # The list refreshes itself to show the orders' new states.
        htmx.trigger(response, "orders-changed")
    return response


@bp.get("/bulk/jobs/<id:job_id>")
def job_status(job_id: int) -> ResponseReturnValue:
    """A bulk job's progress and outcome; the fragment polls itself every second until done."""
    return _job_page(_own_job(job_id))


@bp.get("/bulk/jobs/<id:job_id>/download")
def download(job_id: int) -> ResponseReturnValue:
    """Send the file an export job wrote, to the user who asked for it or an admin."""
    job = _own_job(job_id)
    try:
        kept = bulk.export_file(job)
    except NotFound:
        abort(404)
    if kept is None:
        return htmx.render(
            "errors/page.html",
            "errors/_message.html",
            status=410,
            status_code=410,
            title=_("Export removed"),
            message=_("This export was removed after 24 hours. Export the orders again."),
        )
    if kept.path is None:  # on S3: the browser reads it there, by a URL valid a few minutes
        return redirect(str(kept.url))
    response = send_file(
        kept.path,
        mimetype=MIME_TYPES[job.payload["format"]],
        as_attachment=True,
        download_name=bulk.download_name(job),
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/arrivals")
def arrivals() -> ResponseReturnValue:
    """Count the orders matching the list's filters that arrived after the list was shown."""
    filters, _errors = order_queries.parse_filters(request.args)
    after = paging.whole_number(request.args.get("after"), 0, paging.MAX_ID)
    count = 0 if after is None else order_queries.count_newer(db(), filters, after)
    args = order_queries.filters_to_args(filters)
    args.pop("page", None)
    return htmx.render(
        "orders/_bulk_arrivals.html", "orders/_bulk_arrivals.html", count=count, args=args
    )
