"""Sync issues (admins and managers): what did not reach a shop, what a shop sent in vain.

The page polls itself and the navigation badge polls a tiny fragment, so a problem shows
within a minute without anyone reloading. Acting on a row re-renders that row and raises
`sync-issues-changed`, which refreshes the badge at once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import format_timedelta
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from web import htmx
from web.models import Shop, utcnow
from web.services import dead_letters, outbox, paging, sync_issues, sync_log
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.services.sync_issues import DeadLetterIssue, Issue, IssueCounts
from web.views.base import EDITOR_ROLES, current_actor, db, has_role, restrict
from web.views.events import translated

log = logging.getLogger(__name__)

bp = Blueprint("sync_issues", __name__, url_prefix="/sync/issues")
restrict(bp, *EDITOR_ROLES)

CHANGED = "sync-issues-changed"
# The navigation shows the inbox's lag once its oldest delivery has waited this long.
LAG_SHOWN_AFTER = dt.timedelta(minutes=1)
PAGE_POLL = "20s"
# A retried or replayed row asks for its state every second, for at most this many times;
# the page's own poll takes over after that.
ROW_CHECKS = 30
STATE_TONES = {
    "pending": "warn",
    "sent": "ok",
    "processed": "ok",
    "ignored": "muted",
    "failed": "bad",
    "dead": "bad",
    "parked": "bad",
    "rejected": "bad",
}


def _counts() -> IssueCounts:
    """Every shop's counts, counted once per request (the page may have counted them)."""
    if "sync_issue_counts" not in g:
        g.sync_issue_counts = sync_issues.counts(db())
    counts: IssueCounts = g.sync_issue_counts
    return counts


@bp.app_context_processor
def _nav_counts() -> dict[str, Callable[[], Any]]:
    def nav_counts() -> IssueCounts | None:
        if not has_role(*EDITOR_ROLES):
            return None
        try:
            return _counts()
        except SQLAlchemyError:  # the nav must never break a page, an error page least of all
            log.warning("could not count sync issues", exc_info=True)
            return None

    def inbox_lag() -> str | None:
        """How long the oldest shop delivery has waited, when it is more than a minute."""
        if not has_role(*EDITOR_ROLES):
            return None
        # Read by the same query as the counts (every shop's), once per request.
        try:
            oldest = _counts().oldest_waiting
        except SQLAlchemyError:
            log.warning("could not read the inbox's lag", exc_info=True)
            return None
        if oldest is None or utcnow() - oldest <= LAG_SHOWN_AFTER:
            return None
        return str(format_timedelta(utcnow() - oldest, threshold=1.0))

    return {"sync_issue_counts": nav_counts, "inbox_lag": inbox_lag}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "state_tones": STATE_TONES,
        "max_attempts": outbox.MAX_ATTEMPTS,
        "row_checks": ROW_CHECKS,
        "page_poll": PAGE_POLL,
    }


@bp.get("/")
def index() -> ResponseReturnValue:
    """List the issues matching the filters; htmx swaps and polls get the results only."""
    filters, refused = sync_issues.parse_filters(request.args)
    results = sync_issues.list_issues(db(), filters)
    if filters.shop is None:
        g.sync_issue_counts = results.counts  # the nav's counts too: no need to count again
    latest = results.latest_at
    return htmx.render(
        "sync_issues/index.html",
        "sync_issues/_results.html",
        filters=filters,
        refused=refused,
        results=results,
        dead_letters=sync_issues.dead_letter_issues(db()) if results.counts.dead_letters else [],
        args=filters.args(),
        latest_ago=format_timedelta(latest - utcnow(), add_direction=True) if latest else "",
        shops=db().scalars(select(Shop).order_by(Shop.name)).all(),
        nav_oob=htmx.is_partial_request(),
    )


@bp.get("/count")
def count() -> ResponseReturnValue:
    """The navigation badge alone, polled by every page."""
    return htmx.render("sync_issues/_nav_count.html", counts=_counts())


def _issue(find: Callable[[Any, int], Issue], item_id: int) -> Issue:
    try:
        return find(db(), item_id)
    except NotFound:
        abort(404)


def _row(issue: Issue, status: int = 200, **context: Any) -> Response:
    # The count the row sends itself (the template stops at ROW_CHECKS); no count starts one.
    checks = paging.whole_number(request.args.get("checks"), 0, paging.MAX_ID) or 0
    return htmx.render(
        "sync_issues/_row.html",
        "sync_issues/_row.html",
        status=status,
        issue=issue,
        checks=checks,
        **context,
    )


@bp.get("/outbox/<id:message_id>")
def outbox_row(message_id: int) -> ResponseReturnValue:
    """One message's row, as a retried row polls it until the worker is done."""
    if not htmx.is_partial_request():
        return redirect(url_for("sync_issues.index"))
    return _row(_issue(sync_issues.outbox_issue, message_id))


@bp.get("/inbox/<id:event_id>")
def inbox_row(event_id: int) -> ResponseReturnValue:
    """One delivery's row, as a replayed row polls it until the worker is done."""
    if not htmx.is_partial_request():
        return redirect(url_for("sync_issues.index"))
    return _row(_issue(sync_issues.inbox_issue, event_id))


def _acted(issue: Issue, notice: str) -> ResponseReturnValue:
    db().commit()
    if htmx.is_htmx_request():
        return htmx.trigger(_row(issue, notice=notice), CHANGED)
    flash(notice, "success")
    return htmx.redirect_after_post(url_for("sync_issues.index"))


def _refused(issue: Issue, exc: ValidationFailed | InvalidTransition) -> ResponseReturnValue:
    db().rollback()
    if isinstance(exc, InvalidTransition):
        status, error = 409, translated(exc.reason)
    else:
        status, error = 422, translated(next(iter(exc.errors.values()), str(exc)))
    if htmx.is_htmx_request():
        return _row(issue, status, error=error)
    flash(error, "error")
    return htmx.redirect_after_post(url_for("sync_issues.index"))


@bp.post("/outbox/<id:message_id>/retry")
def retry(message_id: int) -> ResponseReturnValue:
    """Send a failed or given-up message again now, with a fresh count of attempts."""
    issue = _issue(sync_issues.outbox_issue, message_id)
    assert issue.message is not None
    try:
        outbox.retry(db(), issue.message, current_actor())
    except InvalidTransition as exc:
        return _refused(issue, exc)
    return _acted(issue, _("Sending again now."))


@bp.post("/outbox/<id:message_id>/ignore")
def ignore_message(message_id: int) -> ResponseReturnValue:
    """Give up on a message: the shop will not learn this change from Comptoir."""
    issue = _issue(sync_issues.outbox_issue, message_id)
    assert issue.message is not None
    try:
        outbox.ignore(db(), issue.message, current_actor())
    except InvalidTransition as exc:
        return _refused(issue, exc)
    return _acted(issue, _("Ignored; it will not be sent."))


@bp.post("/inbox/<id:event_id>/replay")
def replay(event_id: int) -> ResponseReturnValue:
    """Put a delivery back in the inbox; the worker applies it again."""
    issue = _issue(sync_issues.inbox_issue, event_id)
    assert issue.event is not None
    try:
        sync_log.replay(db(), issue.event, current_actor())
    except ValidationFailed as exc:
        return _refused(issue, exc)
    return _acted(issue, _("Queued again; it will be applied in a moment."))


@bp.post("/inbox/<id:event_id>/ignore")
def ignore_event(event_id: int) -> ResponseReturnValue:
    """Set a delivery aside for good."""
    issue = _issue(sync_issues.inbox_issue, event_id)
    assert issue.event is not None
    try:
        sync_log.ignore(db(), issue.event, current_actor())
    except ValidationFailed as exc:
        return _refused(issue, exc)
    return _acted(issue, _("Set aside; it will not be applied."))


# --- Dead letters (AWS: queue messages that kept failing) ----------------------------------------


def _dead_letter(dead_letter_id: int) -> DeadLetterIssue:
    try:
        return sync_issues.dead_letter_issue(db(), dead_letter_id)
    except NotFound:
        abort(404)


def _dead_letter_done(dead_letter_id: int, notice: str) -> ResponseReturnValue:
    db().commit()
    if htmx.is_htmx_request():
        issue = sync_issues.dead_letter_issue(db(), dead_letter_id)
        row = htmx.render(
            "sync_issues/_dead_letter.html",
            "sync_issues/_dead_letter.html",
            dead=issue,
            notice=notice,
        )
        return htmx.trigger(row, CHANGED)
    flash(notice, "success")
    return htmx.redirect_after_post(url_for("sync_issues.index"))


def _dead_letter_refused(dead_letter_id: int, exc: InvalidTransition) -> ResponseReturnValue:
    db().rollback()
    error = translated(exc.reason)
    if htmx.is_htmx_request():
        issue = sync_issues.dead_letter_issue(db(), dead_letter_id)
        return htmx.render(
            "sync_issues/_dead_letter.html",
            "sync_issues/_dead_letter.html",
            status=409,
            dead=issue,
            error=error,
        )
    flash(error, "error")
    return htmx.redirect_after_post(url_for("sync_issues.index"))


@bp.post("/dead-letters/<id:dead_letter_id>/replay")
def replay_dead_letter(dead_letter_id: int) -> ResponseReturnValue:
    """Send a dead letter's work back to its queue, its row due again."""
    issue = _dead_letter(dead_letter_id)
    try:
        dead_letters.replay(db(), issue.letter, current_user._get_current_object())
    except InvalidTransition as exc:
        return _dead_letter_refused(dead_letter_id, exc)
    return _dead_letter_done(dead_letter_id, _("Sent back to its queue."))


@bp.post("/dead-letters/<id:dead_letter_id>/dismiss")
def dismiss_dead_letter(dead_letter_id: int) -> ResponseReturnValue:
    """Set a dead letter aside: it leaves this page."""
    issue = _dead_letter(dead_letter_id)
    try:
        dead_letters.dismiss(db(), issue.letter, current_user._get_current_object())
    except InvalidTransition as exc:
        return _dead_letter_refused(dead_letter_id, exc)
    return _dead_letter_done(dead_letter_id, _("Set aside."))
