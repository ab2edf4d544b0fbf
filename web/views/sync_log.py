"""The sync log (admins and managers): inbox deliveries, replay and ignore, cursor freshness."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select

from web import htmx
from web.models import InboxEvent, Shop
from web.models.enums import InboxState, Role
from web.services import intake, sync_log
from web.services.errors import NotFound, ValidationFailed
from web.views.base import current_actor, db, restrict
from web.views.events import translated

bp = Blueprint("sync_log", __name__, url_prefix="/sync")
restrict(bp, Role.ADMIN, Role.MANAGER)

STATE_TONES = {
    "pending": "warn",
    "processed": "ok",
    "ignored": "muted",
    "parked": "bad",
    "failed": "bad",
    "rejected": "bad",
}


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {
        "state_tones": STATE_TONES,
        "replayable": sync_log.REPLAYABLE,
        "ignorable": sync_log.IGNORABLE,
    }


@bp.get("/")
def index() -> ResponseReturnValue:
    """List deliveries matching the filters; htmx swaps get the results region only."""
    filters, refused = sync_log.parse_filters(request.args)
    return htmx.render(
        "sync_log/index.html",
        "sync_log/_results.html",
        filters=filters,
        refused=refused,
        results=sync_log.list_events(db(), filters),
        args=filters.args(),
        states=list(InboxState),
        topics=sync_log.topics(db()),
        shops=db().scalars(select(Shop).order_by(Shop.name)).all(),
        cursors=sync_log.cursors(db()),
    )


def _event(event_id: int) -> InboxEvent:
    try:
        return sync_log.get_event(db(), event_id)
    except NotFound:
        abort(404)


@bp.get("/events/<id:event_id>")
def detail(event_id: int) -> ResponseReturnValue:
    """One delivery: its state, error, headers and body as the shop sent it."""
    event = _event(event_id)
    return htmx.render(
        "sync_log/detail.html",
        event=event,
        headers=sync_log.shown_headers(event),
        payload=sync_log.payload_view(event),
        purged_after=intake.purged_after_days(event),
        order=sync_log.order_of(db(), event),
    )


def _act(event_id: int, action: Callable[..., InboxEvent], done: str) -> ResponseReturnValue:
    event = _event(event_id)
    try:
        action(db(), event, current_actor())
    except ValidationFailed as exc:
        db().rollback()
        flash(translated(next(iter(exc.errors.values()), str(exc))), "error")
        return htmx.redirect_after_post(url_for("sync_log.detail", event_id=event_id))
    db().commit()
    if htmx.is_htmx_request():
        return htmx.render("sync_log/_row.html", "sync_log/_row.html", event=event, notice=done)
    flash(done, "success")
    return htmx.redirect_after_post(url_for("sync_log.detail", event_id=event_id))


@bp.post("/events/<id:event_id>/replay")
def replay(event_id: int) -> ResponseReturnValue:
    """Put a delivery back in the inbox; the sync loop applies it again."""
    return _act(event_id, sync_log.replay, _("Queued again; it will be applied in a moment."))


@bp.post("/events/<id:event_id>/ignore")
def ignore(event_id: int) -> ResponseReturnValue:
    """Set a delivery aside for good."""
    return _act(event_id, sync_log.ignore, _("Set aside; it will not be applied."))
