"""Shipping files: a carrier's tracking numbers in, the orders ready to ship out."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_login import current_user

from web import htmx
from web.models import Job
from web.models.base import utcnow
from web.models.enums import JobState, Role
from web.services import ready_to_ship, shipping_modes, tracking_import
from web.services.errors import NotFound, ValidationFailed
from web.views.base import WAREHOUSE_ROLES, db, restrict
from web.views.events import translated

bp = Blueprint("tracking", __name__, url_prefix="/shipping")
restrict(bp, *WAREHOUSE_ROLES)


def _index(status: int = 200, **errors: str) -> Response:
    return htmx.render(
        "tracking/index.html",
        status=status,
        modes=shipping_modes.active_modes(db()),
        max_rows=tracking_import.MAX_ROWS,
        errors=errors,
        chosen_mode=request.args.get("mode", ""),
    )


@bp.get("/")
def index() -> ResponseReturnValue:
    """The tracking import form and the ready-to-ship export."""
    return _index()


@bp.post("/tracking-import")
def upload() -> ResponseReturnValue:
    """Read the uploaded file and queue its rows as an import job, or say why not."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _index(422, file=_("Choose a CSV file to import."))
    data = upload.stream.read(tracking_import.MAX_BYTES + 1)
    try:
        job = tracking_import.start_import(db(), data, upload.filename, current_user.id)
    except ValidationFailed as exc:
        db().rollback()
        return _index(422, file=translated(str(exc)))
    db().commit()
    return htmx.redirect_after_post(url_for("tracking.job_status", job_id=job.id))


def _own_job(job_id: int) -> Job:
    """The import job, if the user started it or is an admin."""
    try:
        job = tracking_import.get_job(db(), job_id)
    except NotFound:
        abort(404)
    if job.created_by_id != current_user.id and current_user.role != Role.ADMIN:
        abort(403)
    return job


@bp.get("/tracking-import/jobs/<id:job_id>")
def job_status(job_id: int) -> ResponseReturnValue:
    """An import's progress, then its outcome; the fragment polls itself until done."""
    job = _own_job(job_id)
    summary = tracking_import.job_summary(job)
    return htmx.render(
        "tracking/job.html",
        "tracking/_job.html",
        job=job,
        label=outcome_label,
        active=job.state in (JobState.QUEUED, JobState.RUNNING),
        counts=summary.counts,
        refused=summary.refused[: tracking_import.MAX_REFUSALS_SHOWN],
        applied=[o for o in summary.outcomes if o.outcome != tracking_import.REFUSED][
            : tracking_import.MAX_REFUSALS_SHOWN
        ],
    )


def _download(data: bytes, name: str) -> Response:
    response = Response(data, mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/tracking-import/jobs/<id:job_id>/refused.csv")
def refused_csv(job_id: int) -> ResponseReturnValue:
    """The refused rows of an import, with their reasons, to fix and import again."""
    job = _own_job(job_id)
    data = tracking_import.refused_csv(tracking_import.job_summary(job), translated)
    return _download(data, f"tracking-refused-{job.id}.csv")


@bp.get("/ready.csv")
def ready_csv() -> ResponseReturnValue:
    """The orders ready to ship, optionally of one shipping mode, for label software."""
    try:
        mode = ready_to_ship.mode_by_code(db(), request.args.get("mode", ""))
    except ValidationFailed as exc:
        return _index(422, mode=translated(str(exc)))
    data, _count = ready_to_ship.ready_csv(db(), mode)
    suffix = f"-{mode.code}" if mode is not None else ""
    return _download(data, f"orders-ready{suffix}-{utcnow():%Y%m%d-%H%M}.csv")


def outcome_label(outcome: str) -> Any:
    """An outcome's name in the reader's language."""
    labels = {
        tracking_import.CREATED: _("Shipped"),
        tracking_import.COMPLETED: _("Tracking added"),
        tracking_import.ALREADY: _("Already there"),
        tracking_import.REFUSED: _("Refused"),
    }
    return labels.get(outcome, outcome)
