"""Work on many orders at once: state changes, comments and exports as background jobs.

The view checks the request and queues one job; the handler resolves the orders (the ids
chosen on the page, or every order matching the list's filters among those the list had when
it was shown), then changes each order in its own transaction through `sessions`, so one
refused or failing order never undoes the others, and commits the job's progress and
refusals as it goes so the page can show them and a restarted job can resume. The job's own
session only reads.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from web import job_outputs, queue
from web.documents import issued
from web.i18n import N_
from web.models import Job, User
from web.models.enums import CommentVisibility, JobState
from web.models.orders import Order
from web.private_files import open_private
from web.services import (
    comments,
    export,
    invoicing,
    order_actions,
    order_queries,
    order_state,
    paging,
    shipments,
)
from web.services.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from web.services.timeline import Actor

log = logging.getLogger(__name__)

ACTION_JOB = "orders.bulk_action"
COMMENT_JOB = "orders.bulk_comment"
EXPORT_JOB = "orders.export"
DELIVER_JOB = "orders.bulk_deliver"
INVOICE_JOB = "orders.bulk_invoice"
KINDS = (ACTION_JOB, COMMENT_JOB, EXPORT_JOB, DELIVER_JOB, INVOICE_JOB)

MAX_SELECTION = order_queries.COUNT_CAP  # the list counts as far as "all matching" reaches
# The outcome lists at most this many refused orders; the count covers them all.
MAX_REFUSALS_SHOWN = 200
# "pdf": the selected orders' delivery notes, printed as one PDF.
EXPORT_FORMATS = ("csv", "json", "pdf")
# An export file is kept this long, then removed by the next export (any user's) or, on S3,
# by the bucket's lifecycle rule.
EXPORT_TTL = job_outputs.KEEP
FILE_PREFIX = "orders-"  # the exports folder holds document bundles too

REASON_MESSAGES = {
    "hold": N_("Say why the orders are put on hold."),
    "cancel": N_("Say why the orders are cancelled."),
}
GONE = N_("the order no longer exists")
FAILED = N_("the change could not be saved; try again")

OrderWork = Callable[[Session, Order, Actor], object]


# --- Starting a job (the view's transaction) -------------------------------------------------


def select_orders(
    session: Session, raw_ids: Iterable[str], matching: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Name the orders of a job: every order matching the filters, or the ids chosen.

    Matching the filters means among the orders up to `upto`, the newest id the list had
    when it was shown (the newest now when the form does not say): an order arriving
    afterwards was never seen, so it is left alone.
    """
    if matching is not None:
        return _select_matching(session, matching)
    ids = [paging.whole_number(str(raw), 1, paging.MAX_ID) for raw in raw_ids]
    ids = list(dict.fromkeys(order_id for order_id in ids if order_id is not None))
    if not ids:
        message = N_("Select at least one order.")
        raise ValidationFailed(message, {"ids": message})
    if len(ids) > MAX_SELECTION:
        message = N_(
            "Select at most 10,000 orders at once, or all the orders matching the filters."
        )
        raise ValidationFailed(message, {"ids": message})
    return {"ids": ids}


def _select_matching(session: Session, matching: Mapping[str, str]) -> dict[str, Any]:
    filters, _errors = order_queries.parse_filters(matching)
    upto = paging.whole_number(matching.get("upto"), 0, paging.MAX_ID)
    if upto is None:
        upto = order_queries.newest_order_id(session)
    count = order_queries.count_matching(session, filters, upto)
    if count == 0:
        message = N_("Select at least one order.")
        raise ValidationFailed(message, {"ids": message})
    if count > MAX_SELECTION:
        message = N_("More than 10,000 orders match the filters; narrow them down first.")
        raise ValidationFailed(message, {"scope": message})
    args = order_queries.filters_to_args(filters)
    args.pop("page", None)
    args.pop("per_page", None)
    return {"filters": args, "upto": upto}


def start_action(
    session: Session,
    selection: dict[str, Any],
    action: str,
    *,
    reason: str = "",
    notify: bool = True,
    created_by_id: int | None = None,
) -> Job:
    """Queue a state change of the selected orders, once the action and its reason are valid."""
    if action not in order_actions.ACTIONS:
        message = N_("Choose what to do with the orders.")
        raise ValidationFailed(message, {"action": message})
    reason = (reason or "").strip()
    if action in order_actions.REASON_ACTIONS:
        if not reason:
            raise ValidationFailed(REASON_MESSAGES[action], {"reason": REASON_MESSAGES[action]})
        if len(reason) > order_state.REASON_MAX_LENGTH:
            message = N_("Keep the reason under 500 characters.")
            raise ValidationFailed(message, {"reason": message})
    else:
        reason = ""
    payload = {"selection": selection, "action": action, "reason": reason, "notify": notify}
    return queue.enqueue(session, ACTION_JOB, payload, created_by_id)


def start_deliver(
    session: Session, selection: dict[str, Any], created_by_id: int | None = None
) -> Job:
    """Queue "mark delivered" for the shipments on their way of each selected order."""
    payload = {"selection": selection, "action": "deliver"}
    return queue.enqueue(session, DELIVER_JOB, payload, created_by_id)


def start_invoices(
    session: Session, selection: dict[str, Any], created_by_id: int | None = None
) -> Job:
    """Queue the invoice of everything not invoiced yet of each selected order."""
    payload = {"selection": selection, "action": "invoice"}
    return queue.enqueue(session, INVOICE_JOB, payload, created_by_id)


def start_comment(
    session: Session,
    selection: dict[str, Any],
    text: str,
    visibility: str,
    *,
    notify: bool = False,
    created_by_id: int | None = None,
) -> Job:
    """Queue the same comment on each selected order, once the text is valid."""
    text = (text or "").strip()
    if not text:
        message = N_("Write the comment first.")
        raise ValidationFailed(message, {"text": message})
    if len(text) > comments.TEXT_MAX_LENGTH:
        message = N_("Keep the comment under 4,000 characters.")
        raise ValidationFailed(message, {"text": message})
    if visibility not in tuple(CommentVisibility):
        message = N_("Choose who sees the comment: internal or customer.")
        raise ValidationFailed(message, {"visibility": message})
    notify = notify and visibility == CommentVisibility.CUSTOMER
    payload = {"selection": selection, "text": text, "visibility": visibility, "notify": notify}
    return queue.enqueue(session, COMMENT_JOB, payload, created_by_id)


def start_export(
    session: Session,
    selection: dict[str, Any],
    fmt: str,
    folder: Path | str,
    created_by_id: int | None = None,
) -> Job:
    """Queue an export of the selected orders to a file in `folder`."""
    if fmt not in EXPORT_FORMATS:
        message = N_("Choose CSV, JSON or the delivery notes.")
        raise ValidationFailed(message, {"format": message})
    payload = {"selection": selection, "format": fmt, "folder": str(folder)}
    return queue.enqueue(session, EXPORT_JOB, payload, created_by_id)


def get_job(session: Session, job_id: int) -> Job:
    """A bulk job; NotFound for any other job."""
    job = session.get(Job, job_id)
    if job is None or job.kind not in KINDS:
        raise NotFound(f"no bulk job {job_id}")
    return job


def export_file(job: Job, now: dt.datetime | None = None) -> job_outputs.Kept | None:
    """The file a finished export wrote, while it is kept (a local file, or a presigned URL
    on S3); None once removed.

    NotFound when the job is not a finished export: it has no file to offer.
    """
    if job.kind != EXPORT_JOB or job.state != JobState.DONE or not job.result.get("file"):
        raise NotFound(f"job {job.id} is not a finished export")
    return job_outputs.configured().find(
        Path(job.payload["folder"]), job.result["file"], download_name(job), now
    )


def download_name(job: Job) -> str:
    """The file name offered to the browser, e.g. orders-20260302-1015.csv."""
    finished = job.finished_at or job.created_at
    return f"orders-{finished:%Y%m%d-%H%M}.{job.payload['format']}"


# --- Running a job (the worker) --------------------------------------------------------------


def _resolve(session: Session, selection: Mapping[str, Any]) -> list[int]:
    if "filters" in selection:
        filters, _errors = order_queries.parse_filters(selection["filters"])
        return order_queries.matching_ids(session, filters, upto=selection.get("upto"))
    return [int(order_id) for order_id in selection["ids"]]


def _actor(session: Session, job: Job) -> Actor:
    user = session.get(User, job.created_by_id) if job.created_by_id is not None else None
    if user is None:
        raise NotFound(f"job {job.id} has no user to act as")
    return Actor.for_user(user)


def _set_progress(session: Session, job_id: int, progress: int, total: int | None = None) -> None:
    values: dict[str, int] = {"progress": progress}
    if total is not None:
        values["total"] = total
    session.execute(update(Job).where(Job.id == job_id).values(**values))


def _report(
    sessions: sessionmaker[Session],
    job_id: int,
    progress: int,
    total: int | None = None,
    refusal: dict[str, Any] | None = None,
) -> None:
    with sessions.begin() as session:
        _set_progress(session, job_id, progress, total)
        if refusal is not None:
            _keep_refusal(session, job_id, refusal)


def _keep_refusal(session: Session, job_id: int, refusal: dict[str, Any]) -> None:
    """Count the refusal in the job's result, and list it while fewer than the cap are."""
    job = session.get_one(Job, job_id)
    refused = list(job.result.get("refused", []))
    if len(refused) < MAX_REFUSALS_SHOWN:
        refused.append(refusal)
    count = int(job.result.get("refused_count", 0)) + 1
    job.result = {**job.result, "refused": refused, "refused_count": count}


def _reason(exc: Exception) -> str:
    if isinstance(exc, InvalidTransition):
        return exc.reason
    if isinstance(exc, DomainError):
        return str(exc)
    return FAILED


def _each_order(
    session: Session, job: Job, sessions: sessionmaker[Session], work: OrderWork
) -> dict[str, Any]:
    """Run `work` on every order of the job, one transaction each; list the refused ones."""
    job_id = job.id
    actor = _actor(session, job)
    ids, resume_from = _orders_of(session, job, sessions)
    for position, order_id in enumerate(ids, start=1):
        if position <= resume_from:
            continue  # gone through by an earlier run, its progress saved with its outcome
        number = ""
        try:
            with sessions.begin() as unit:
                order = order_actions.lock_order(unit, order_id)
                if order is None:
                    raise NotFound(GONE)
                number = order.number
                work(unit, order, actor)
                _set_progress(unit, job_id, position)
        except Exception as exc:  # one order must never stop the others
            if not isinstance(exc, DomainError):
                log.exception("bulk job %s: order %s failed", job_id, order_id)
            refusal = {"id": order_id, "number": number, "reason": _reason(exc)}
            _report(sessions, job_id, position, refusal=refusal)
    # Read afresh: the refusals of every run, this one's included, are in the job's row.
    with sessions.begin() as unit:
        kept = unit.get_one(Job, job_id).result
    refused_count = int(kept.get("refused_count", 0))
    return {
        "total": len(ids),
        "done": len(ids) - refused_count,
        "resumed_from": resume_from,
        "refused_count": refused_count,
        "refused": kept.get("refused", []),
    }


def _orders_of(
    session: Session, job: Job, sessions: sessionmaker[Session]
) -> tuple[list[int], int]:
    """The job's orders and how many an earlier, interrupted run already went through.

    The first run resolves the selection and keeps the ids in the job, so a run started
    again after a crash or a restart walks the same list and resumes after the last order
    whose change committed (progress is written in that order's transaction).
    """
    if "resolved_ids" in job.payload:
        return [int(i) for i in job.payload["resolved_ids"]], job.progress
    ids = _resolve(session, job.payload["selection"])
    with sessions.begin() as unit:
        stored = unit.get_one(Job, job.id)
        stored.payload = {**stored.payload, "resolved_ids": ids}
        _set_progress(unit, job.id, 0, len(ids))
    return ids, 0


def action_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Validate, hold, release, prepare, cancel or close each selected order."""
    action = job.payload["action"]
    reason = job.payload.get("reason", "")
    notify = bool(job.payload.get("notify", True))

    def work(unit: Session, order: Order, actor: Actor) -> None:
        order_actions.perform(unit, order, action, actor, reason=reason, notify=notify)

    return _each_order(session, job, sessions, work)


def comment_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Write the same comment on each selected order."""
    text = job.payload["text"]
    visibility = job.payload["visibility"]
    notify = bool(job.payload.get("notify", False))

    def work(unit: Session, order: Order, actor: Actor) -> None:
        comments.add_comment(unit, order, actor, text, visibility, notify=notify)

    return _each_order(session, job, sessions, work)


def deliver_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Mark the shipped shipments of each selected order delivered."""

    def work(unit: Session, order: Order, actor: Actor) -> None:
        shipments.deliver_order(unit, order, actor)

    return _each_order(session, job, sessions, work)


def invoice_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Invoice what remains of each selected order; those with nothing left are refused."""
    job_id = job.id

    def work(unit: Session, order: Order, actor: Actor) -> None:
        key = f"{INVOICE_JOB}:{job_id}:{order.id}"  # a resumed job finds what it issued
        try:
            invoicing.issue_for(unit, order, actor, idempotency_key=key)
        except InvalidTransition as exc:
            raise InvalidTransition("issue an invoice", invoicing.refusal_reason(exc)) from exc

    return _each_order(session, job, sessions, work)


def export_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Write the selected orders to a CSV or JSON file, as `flask orders export` does."""
    job_id, fmt = job.id, job.payload["format"]
    folder = Path(job.payload["folder"])
    ids = _resolve(session, job.payload["selection"])
    _report(sessions, job_id, 0, len(ids))
    outputs = job_outputs.configured()
    outputs.remove_old(folder, FILE_PREFIX)
    name = f"{FILE_PREFIX}{job_id}.{fmt}"
    if fmt == "pdf":
        return _print_delivery_notes(session, sessions, job_id, ids, folder, name)
    writer = export.export_json if fmt == "json" else export.export_csv
    with outputs.writing(folder, name) as path:
        with open_private(path, "w", encoding="utf-8", newline="") as out:
            count = writer(
                session,
                out,
                order_ids=ids,
                progress=lambda written: _report(sessions, job_id, written),
            )
    _report(sessions, job_id, len(ids))
    return {"total": len(ids), "done": count, "file": name}


NO_DELIVERY_NOTE = N_("no delivery note issued yet")


def _print_delivery_notes(
    session: Session,
    sessions: sessionmaker[Session],
    job_id: int,
    ids: list[int],
    folder: Path,
    name: str,
) -> dict[str, Any]:
    """The orders' delivery notes as one PDF, as stored; the orders without one are listed."""
    document_ids: list[int] = []
    refused: list[dict[str, Any]] = []
    for position, order_id in enumerate(ids, start=1):
        notes = issued.delivery_note_ids(session, order_id)
        if not notes:
            order = session.get(Order, order_id)
            number = order.number if order is not None else ""
            refused.append({"id": order_id, "number": number, "reason": NO_DELIVERY_NOTE})
        document_ids += notes
        if position % 20 == 0:
            _report(sessions, job_id, position)
    with job_outputs.configured().writing(folder, name) as path:
        with open_private(path, "wb") as out:
            out.write(issued.combined_pdf(session, document_ids))
    _report(sessions, job_id, len(ids))
    return {
        "total": len(ids),
        "done": len(ids) - len(refused),
        "documents": len(document_ids),
        "file": name,
        "refused_count": len(refused),
        "refused": refused[:MAX_REFUSALS_SHOWN],
    }


def remove_old_exports(folder: Path, now: dt.datetime | None = None) -> int:
    """Delete the export files of a local folder older than EXPORT_TTL; return how many."""
    return job_outputs.LocalOutputs().remove_old(folder, FILE_PREFIX, now)
