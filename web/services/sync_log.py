"""The sync log: what the shops sent and what became of it, and how fresh each flow is.

A person can read any delivery as it arrived, replay it (it goes back to the inbox as if
new) or ignore it, and see at a glance which shop has stopped syncing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, defer, joinedload

from web.i18n import N_
from web.models import InboxEvent, Order, Shop, SyncCursor, utcnow
from web.models.enums import InboxState
from web.services import intake, paging
from web.services.errors import NotFound, ValidationFailed
from web.services.intake import is_signature_header
from web.services.paging import Page
from web.services.sync import ORDERS_FLOW
from web.services.timeline import Actor, record_event

PER_PAGE = 50
PAYLOAD_CAP = 200 * 1024
LATE_FACTOR = 3
REPLAYABLE = (InboxState.PROCESSED, InboxState.IGNORED, InboxState.PARKED, InboxState.FAILED)
IGNORABLE = (InboxState.PENDING, InboxState.PARKED, InboxState.FAILED, InboxState.REJECTED)


# --- Listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilters:
    shop: str | None = None
    state: InboxState | None = None
    topic: str | None = None
    page: int = 1

    def args(self) -> dict[str, str]:
        """The filters as query arguments (page left out)."""
        values = {"shop": self.shop, "state": self.state, "topic": self.topic}
        return {name: str(value) for name, value in values.items() if value}


def parse_filters(args: Mapping[str, str]) -> tuple[EventFilters, dict[str, str]]:
    """Read the filters from query arguments; return them and why refused ones were."""
    refused: dict[str, str] = {}
    state = None
    if args.get("state"):
        try:
            state = InboxState(args["state"])
        except ValueError:
            refused["state"] = f"unknown state {args['state'][:40]!r}"
    page = paging.parse_page(args, refused)
    return (
        EventFilters(
            shop=(args.get("shop") or "").strip()[:32] or None,
            state=state,
            topic=(args.get("topic") or "").strip()[:80] or None,
            page=page,
        ),
        refused,
    )


def _filtered(query: Select[Any], filters: EventFilters) -> Select[Any]:
    if filters.shop:
        query = query.join(Shop, InboxEvent.shop_id == Shop.id).where(Shop.key == filters.shop)
    if filters.state:
        query = query.where(InboxEvent.state == filters.state)
    if filters.topic:
        query = query.where(InboxEvent.topic == filters.topic)
    return query


def list_events(
    session: Session, filters: EventFilters, per_page: int = PER_PAGE
) -> Page[InboxEvent]:
    """Inbox events matching the filters, newest first, one page of them."""
    total: int = session.scalar(_filtered(select(func.count(InboxEvent.id)), filters)) or 0
    page = min(filters.page, paging.page_count(total, per_page))
    query = (
        _filtered(select(InboxEvent), filters)
        .options(defer(InboxEvent.raw_body), joinedload(InboxEvent.shop))
        .order_by(InboxEvent.received_at.desc(), InboxEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return Page(list(session.scalars(query)), total, page, per_page)


def topics(session: Session) -> list[str]:
    """Every topic seen in the inbox, for the filter list."""
    return list(session.scalars(select(InboxEvent.topic).distinct().order_by(InboxEvent.topic)))


# --- One event -------------------------------------------------------------------------------


def get_event(session: Session, event_id: int) -> InboxEvent:
    """One inbox event; NotFound otherwise."""
    event = session.get(InboxEvent, event_id)
    if event is None:
        raise NotFound(f"no inbox event {event_id}")
    return event


@dataclass(frozen=True)
class Payload:
    """A delivery's body made readable: kind is json, xml, text or binary."""

    kind: str
    text: str
    size: int
    truncated: bool


def payload_view(event: InboxEvent, cap: int = PAYLOAD_CAP) -> Payload:
    """The raw body as pretty JSON, XML text or plain text, at most `cap` bytes of it."""
    body = bytes(event.raw_body or b"")
    size = len(body)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body[:cap].decode("latin-1")
        return Payload("binary", text, size, size > cap)
    kind = "text"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) and size <= cap:
        try:
            text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
            kind = "json"
        except ValueError:
            pass
    elif stripped.startswith("<"):
        kind = "xml"
    encoded = text.encode("utf-8")
    if len(encoded) > cap:
        text = encoded[:cap].decode("utf-8", "ignore")
        return Payload(kind, text, size, True)
    return Payload(kind, text, size, False)


def shown_headers(event: InboxEvent) -> dict[str, str]:
    """The delivery's headers, without its signature (rows stored before it was dropped)."""
    return {
        str(name): str(value)
        for name, value in (event.headers or {}).items()
        if not is_signature_header(str(name)) and str(name) != intake.PURGED_HEADER
    }


def _order_of(session: Session, event: InboxEvent) -> Order | None:
    if event.order_id is not None:
        return session.get(Order, event.order_id)
    if not event.external_order_id:
        return None
    return session.scalar(
        select(Order).where(
            Order.shop_id == event.shop_id, Order.external_id == event.external_order_id
        )
    )


def order_of(session: Session, event: InboxEvent) -> Order | None:
    """The order the delivery is about, when Comptoir has it."""
    return _order_of(session, event)


def replay(session: Session, event: InboxEvent, actor: Actor | None = None) -> InboxEvent:
    """Put the delivery back in the inbox to be applied again from scratch."""
    if event.state == InboxState.PENDING:
        return event
    if event.state not in REPLAYABLE:
        message = N_("A delivery the shop's signature or format check refused cannot be replayed.")
        raise ValidationFailed(message, {"event": message})
    if intake.purged_after_days(event) is not None:
        message = N_("This delivery's body was purged: there is nothing left to apply.")
        raise ValidationFailed(message, {"event": message})
    event.state = InboxState.PENDING
    event.attempts = 0
    event.next_attempt_at = None
    _note(session, event, actor, "inbox.replayed")
    session.flush()
    intake.announce_event(session, event.id, event.shop_id, event.external_order_id)
    return event


def ignore(session: Session, event: InboxEvent, actor: Actor | None = None) -> InboxEvent:
    """Set the delivery aside for good: it will not be applied."""
    if event.state == InboxState.IGNORED:
        return event
    if event.state not in IGNORABLE:
        message = N_("This delivery was already applied; replay it or leave it.")
        raise ValidationFailed(message, {"event": message})
    event.state = InboxState.IGNORED
    event.next_attempt_at = None
    _note(session, event, actor, "inbox.ignored")
    session.flush()
    return event


def _note(session: Session, event: InboxEvent, actor: Actor | None, kind: str) -> None:
    order = _order_of(session, event)
    if order is not None and actor is not None:
        record_event(
            session,
            order,
            actor,
            kind,
            {"inbox_event_id": event.id, "topic": event.topic},
        )


# --- Cursors ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CursorStatus:
    """How fresh one flow of one shop is."""

    shop: Shop
    flow: str
    position: str
    last_run_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str
    is_late: bool


def is_late(
    shop: Shop,
    last_success_at: dt.datetime | None,
    last_error: str,
    now: dt.datetime,
) -> bool:
    """Late: the last run failed, or no success for three poll intervals (active shops)."""
    if not shop.is_active:
        return False
    if last_error:
        return True
    allowed = dt.timedelta(seconds=LATE_FACTOR * max(shop.poll_interval_seconds, 1))
    since = last_success_at or shop.created_at
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    return since is None or now - since > allowed


def cursors(session: Session, now: dt.datetime | None = None) -> list[CursorStatus]:
    """Every shop's flows with their last success; a shop never polled shows one empty row."""
    now = now or utcnow()
    rows: list[CursorStatus] = []
    by_shop: dict[int, list[SyncCursor]] = {}
    for cursor in session.scalars(select(SyncCursor).order_by(SyncCursor.flow)):
        by_shop.setdefault(cursor.shop_id, []).append(cursor)
    for shop in session.scalars(select(Shop).order_by(Shop.name)):
        shop_cursors = by_shop.get(shop.id)
        if not shop_cursors:
            rows.append(
                CursorStatus(shop, ORDERS_FLOW, "", None, None, "", is_late(shop, None, "", now))
            )
            continue
        for cursor in shop_cursors:
            rows.append(
                CursorStatus(
                    shop,
                    cursor.flow,
                    cursor.position,
                    cursor.last_run_at,
                    cursor.last_success_at,
                    cursor.last_error,
                    is_late(shop, cursor.last_success_at, cursor.last_error, now),
                )
            )
    return rows
