"""The sync loop: work the inbox, poll shops that are due, one transaction per unit of work.

Polling reads orders changed since the shop's cursor (minus an overlap for clock skew and
equal timestamps), stores each as an inbox event with a stable dedupe key, and only then
moves the cursor, never past what was stored. A crash mid-batch therefore loses nothing and
duplicates nothing: the next run reads the same orders again and the dedupe keys absorb them.

PrestaShop and Magento shops are asked first with the change probe (every 30 s by default):
one light request for the ids and times changed, and a `probe/order` event per change not yet
known, keyed as the modules' change notifications are (web/connectors/notifications.py), so a
change seen by both is read once; the worker reads each such order through the connector.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from web import queue, state_counts
from web.connectors import notifications
from web.connectors.base import ChangeBatch, Connector, ConnectorError
from web.connectors.codec import encode_order
from web.db import read_only
from web.models import InboxEvent, Job, Order, Shop, SyncCursor, utcnow
from web.models.enums import InboxState
from web.services import intake, outbox, pacing
from web.services.shops import connector_for

log = logging.getLogger(__name__)

ORDERS_FLOW = "orders"
OVERLAP = dt.timedelta(minutes=5)
FIRST_POLL_WINDOW = dt.timedelta(days=1)
MAX_PAGES = 200
# More new changes than this in one probe: the full poll reads them, page by page.
PROBE_LIMIT = 50
# The full poll still runs this often behind the probe (see poll_shop).
RECONCILE_EVERY = dt.timedelta(minutes=5)
# No shop is polled more often than this, whatever its settings say.
MIN_POLL_SECONDS = 30


@dataclass
class PollResult:
    shop_key: str
    pages: int = 0
    seen: int = 0
    stored: int = 0
    rejected: int = 0
    error: str = ""
    # Whether the change probe answered this run (False: the full poll read the orders).
    probed: bool = False


@dataclass
class SyncReport:
    processed: int = 0
    pushed: int = 0
    polls: list[PollResult] = field(default_factory=list)

    def summary(self) -> str:
        polled = ", ".join(
            f"{p.shop_key}: {p.stored} new of {p.seen}"
            + (f" (error: {p.error})" if p.error else "")
            for p in self.polls
        )
        return (
            f"inbox events processed: {self.processed}; outbox messages tried: {self.pushed}; "
            f"polled: {polled or 'none due'}"
        )


def cursor_for(session: Session, shop: Shop, flow: str = ORDERS_FLOW) -> SyncCursor:
    """The shop's cursor for a flow, created on first use."""
    cursor = session.scalar(
        select(SyncCursor).where(SyncCursor.shop_id == shop.id, SyncCursor.flow == flow)
    )
    if cursor is None:
        cursor = SyncCursor(shop=shop, flow=flow)
        session.add(cursor)
        session.flush()
    return cursor


def poll_dedupe_key(external_id: str, updated_at: dt.datetime, body: bytes = b"") -> str:
    """Stable key of one polled version of an order.

    Shops stamp changes to the second: two changes within one second share updated_at,
    so the content's digest is part of the key and the second change is not taken for
    a duplicate of the first.
    """
    digest = hashlib.sha256(body).hexdigest()[:16]
    return f"poll:{external_id}:{updated_at.astimezone(dt.UTC).isoformat()}:{digest}"


def poll_shop(
    sessions: sessionmaker[Session],
    shop_id: int,
    *,
    since: dt.datetime | None = None,
    backfill: bool = False,
    connector: Connector | None = None,
    now: dt.datetime | None = None,
    full: bool = False,
) -> PollResult:
    """Store every order changed since the cursor (or `since`) as inbox events.

    A connector with a change probe (list_changes) is asked first, once the shop has a
    cursor and unless `full` is asked: one light request for the ids and times changed, and
    an event per change not yet known, read by the worker. Many changes (more than
    PROBE_LIMIT, or more than one page) go to the full poll, whose batched look-ups cost
    less than one read per order.
    The full poll also runs every RECONCILE_EVERY: shops stamp changes to the second, so
    a second change within the second of a version already read keeps its time, which the
    probe takes for known; the full poll's content digest tells them apart.
    """
    now = now or utcnow()
    with sessions.begin() as session:
        shop = session.get_one(Shop, shop_id)
        cursor = cursor_for(session, shop)
        result = PollResult(shop.key)
        probing = (
            since is None
            and not full
            and not backfill
            and cursor.position_at is not None
            and cursor.reconciled_at is not None
            and now - cursor.reconciled_at < RECONCILE_EVERY
        )
        if since is None:
            since = _default_since(shop, cursor, now)
        cursor.last_run_at = now
        connector = connector or connector_for(shop)
        newest = cursor.position_at
    headers = {intake.BACKFILL_HEADER: "1"} if backfill else {}
    reconciled = False
    try:
        probe: Callable[[dt.datetime], ChangeBatch] | None = getattr(
            connector, "list_changes", None
        )
        found = _probe(sessions, shop_id, probe, since, result) if probe and probing else None
        if found is None:
            result.probed = False
            found = _poll(sessions, shop_id, connector, since, headers, result)
            reconciled = True
        if found is not None and (newest is None or found > newest):
            newest = found
    except ConnectorError as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        log.warning("poll of shop %s failed: %s", result.shop_key, result.error)
        with sessions.begin() as session:
            cursor = cursor_for(session, session.get_one(Shop, shop_id))
            cursor.last_error = result.error[:2000]
        return result
    with sessions.begin() as session:
        cursor = cursor_for(session, session.get_one(Shop, shop_id))
        if (
            not backfill
            and newest is not None
            and (cursor.position_at is None or newest > cursor.position_at)
        ):
            cursor.position_at = newest
            cursor.position = newest.isoformat()
        if reconciled and not backfill:
            cursor.reconciled_at = now
        cursor.last_success_at = now
        cursor.last_error = ""
    return result


def _probe(
    sessions: sessionmaker[Session],
    shop_id: int,
    probe: Callable[[dt.datetime], ChangeBatch],
    since: dt.datetime,
    result: PollResult,
) -> dt.datetime | None:
    """Store a `probe/order` event per change not yet known; return the newest change's
    time, or None when the full poll must run instead (nothing stored then)."""
    batch = probe(since)
    result.pages += 1
    result.probed = True
    if batch.next_page or not batch.readable:
        return None
    ids = {order_id for order_id, _ in batch.changes}
    with sessions.begin() as session:
        query = select(Order.external_id, Order.shop_updated_at).where(
            Order.shop_id == shop_id, Order.external_id.in_(ids)
        )
        applied = {external_id: at for external_id, at in session.execute(query)}
        unknown = [
            (order_id, when)
            for order_id, when in batch.changes
            if order_id not in applied or applied[order_id] < when
        ]
        if len(unknown) > PROBE_LIMIT:
            return None
        result.seen += len(unknown)
        shop = session.get_one(Shop, shop_id)
        for order_id, when in unknown:
            received = intake.store_event(
                session,
                shop,
                intake.PROBE_TOPIC,
                notifications.change_key(order_id, when),
                order_id,
                b"",
                {},
            )
            result.stored += 0 if received.duplicate else 1
    return max((when for _, when in batch.changes), default=None)


def _poll(
    sessions: sessionmaker[Session],
    shop_id: int,
    connector: Connector,
    since: dt.datetime,
    headers: dict[str, str],
    result: PollResult,
) -> dt.datetime | None:
    """The full poll: every page of orders changed since then, each stored as an event;
    return the newest change's time."""
    newest: dt.datetime | None = None
    page: str | None = None
    while result.pages < MAX_PAGES:
        batch = connector.list_orders(since, page)
        result.pages += 1
        result.seen += len(batch.orders)
        with sessions.begin() as session:
            shop = session.get_one(Shop, shop_id)
            for order in batch.orders:
                body = encode_order(order)
                received = intake.store_event(
                    session,
                    shop,
                    intake.POLL_TOPIC,
                    poll_dedupe_key(order.external_id, order.updated_at, body),
                    order.external_id,
                    body,
                    headers,
                )
                result.stored += 0 if received.duplicate else 1
                if newest is None or order.updated_at > newest:
                    newest = order.updated_at
            for rejected in batch.rejected:
                # One unreadable order is parked alone; the rest of the page flows.
                digest = hashlib.sha256(rejected.raw).hexdigest()[:32]
                received = intake.store_event(
                    session,
                    shop,
                    intake.POLL_TOPIC,
                    f"poll-rejected:{digest}",
                    rejected.external_id or None,
                    rejected.raw,
                    headers,
                    state=InboxState.PARKED,
                    error=rejected.error,
                    cause=("unreadable", {"detail": rejected.error}),
                )
                result.rejected += 0 if received.duplicate else 1
        page = batch.next_page
        if not page:
            break
    return newest


def _default_since(shop: Shop, cursor: SyncCursor, now: dt.datetime) -> dt.datetime:
    if cursor.position_at is not None:
        return cursor.position_at - OVERLAP
    if shop.import_from is not None:
        return dt.datetime.combine(shop.import_from, dt.time(), tzinfo=dt.UTC)
    return now - FIRST_POLL_WINDOW


def process_pending(
    sessions: sessionmaker[Session], shop_id: int | None = None, limit: int = 500
) -> int:
    """Process due inbox events, each in its own transaction; return how many were tried.

    Goes on until none is due (or `limit`), so the follow-ups that applying a delivery
    stores (its payments to read from the shop) are worked in the same run.
    """
    tried = 0
    while tried < limit:
        with sessions() as session:
            ids = intake.due_events(session, shop_id, min(100, limit - tried))
            # SQLite: a unit of work holds the write lock while it calls the shop; wait for
            # the shop's turn before taking it, not inside (see web.services.pacing).
            shops_of: dict[int, int] = {}
            if ids and session.get_bind().dialect.name == "sqlite":
                query = select(InboxEvent.id, InboxEvent.shop_id).where(InboxEvent.id.in_(ids))
                shops_of = {event_id: shop for event_id, shop in session.execute(query)}
        if not ids:
            break
        for event_id in ids:
            if event_id in shops_of:
                pacing.wait_for_room(sessions, shops_of[event_id])
            with sessions.begin() as session:
                event = _locked_event(session, event_id)
                if event is not None:
                    intake.process_event(session, event)
        tried += len(ids)
    return tried


def process_one(sessions: sessionmaker[Session], event_id: int) -> InboxState | None:
    """Process this inbox event if it is still due (an SQS consumer); return its new state, or
    None when there was nothing to do: unknown, held by another worker, or not due.

    Safe under at-least-once delivery: a second delivery finds the event processed, or (on
    PostgreSQL) locked by the consumer working on it, and does nothing.
    """
    with sessions() as session:
        query = select(InboxEvent.shop_id).where(InboxEvent.id == event_id)
        shop_id = session.scalar(query)
        dialect = session.get_bind().dialect.name
    if shop_id is None:
        return None
    if dialect == "sqlite":
        pacing.wait_for_room(sessions, shop_id)
    with sessions.begin() as session:
        event = _locked_event(session, event_id)
        if event is None or event.id not in intake.due_events_among(session, [event_id]):
            return None
        return intake.process_event(session, event)


def _locked_event(session: Session, event_id: int) -> InboxEvent | None:
    """The event read afresh; on PostgreSQL its row locked, None if another worker has it.

    Two workers going through the same due list must not apply one event twice; SQLite's
    write lock already serialises them.
    """
    query = select(InboxEvent).where(InboxEvent.id == event_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def due_shops(
    session: Session, now: dt.datetime, leeway: dt.timedelta = dt.timedelta(0)
) -> list[int]:
    """Active shops whose poll interval has elapsed since their last poll, or elapses within
    `leeway` (a caller that runs again only that much later: the poll function on AWS)."""
    due = []
    for shop in session.scalars(select(Shop).where(Shop.is_active.is_(True))):
        cursor = cursor_for(session, shop)
        interval = dt.timedelta(seconds=max(shop.poll_interval_seconds, MIN_POLL_SECONDS))
        if cursor.last_run_at is None or now - cursor.last_run_at >= interval - leeway:
            due.append(shop.id)
    return due


def half_tick_needed(session: Session, tick_seconds: int) -> bool:
    """Whether an active shop is to be polled more often than a schedule that runs every
    `tick_seconds` can: the poll function on AWS (once a minute, EventBridge's smallest rate)
    then asks for a second run in between."""
    query = select(Shop.id).where(
        Shop.is_active.is_(True), Shop.poll_interval_seconds < tick_seconds
    )
    return session.scalar(query.limit(1)) is not None


def work_due(sessions: sessionmaker[Session]) -> bool:
    """Whether a job, an inbox event or an outbox message waits now: a few indexed reads.

    A read-only transaction, so a worker asking several times a second never takes
    SQLite's write lock; shop polls are not asked about (the worker polls every second).
    """
    with sessions() as session, session.begin():
        read_only(session)
        return (
            queue.job_due(session)
            or bool(intake.due_events(session, limit=1))
            or bool(outbox.due_message_ids(session, limit=1))
        )


def run_sync(
    sessions: sessionmaker[Session],
    shop_key: str | None = None,
    *,
    poll_all: bool = False,
    full: bool = False,
) -> SyncReport:
    """Deliver due pushes, process the inbox, poll due shops (or all asked), then again, and
    fold the dashboard's state counts once they have many rows; `full`: the full poll, not the
    change probe."""
    report = SyncReport()
    now = utcnow()
    with sessions.begin() as session:
        if shop_key is not None:
            shop = session.scalar(select(Shop).where(Shop.key == shop_key))
            if shop is None:
                raise LookupError(f"no shop with key {shop_key!r}")
            shop_ids = [shop.id]
        elif poll_all:
            shop_ids = list(session.scalars(select(Shop.id).where(Shop.is_active.is_(True))))
        else:
            shop_ids = due_shops(session, now)
    only = shop_ids[0] if shop_key is not None else None
    # Pushes first: they are what a person is waiting for; a slow poll must not delay them.
    report.pushed += outbox.dispatch_due(sessions, only)
    report.processed += process_pending(sessions, only)
    for shop_id in shop_ids:
        report.polls.append(poll_shop(sessions, shop_id, now=now, full=full))
        report.pushed += outbox.dispatch_due(sessions, only)
    report.processed += process_pending(sessions, only)
    report.pushed += outbox.dispatch_due(sessions, only)
    state_counts.compact_if_needed(sessions)
    return report


def sync_shop_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """The "Sync now" button: poll one shop at once (the full poll: a person asks to be
    sure) and apply what came in."""
    shop = session.get_one(Shop, job.payload["shop_id"])
    report = run_sync(sessions, shop.key, full=True)
    return {"summary": report.summary()}


def backfill_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Import the shop's orders changed since a date, older than its import date included."""
    since = dt.datetime.fromisoformat(job.payload["since"])
    result = poll_shop(sessions, job.payload["shop_id"], since=since, backfill=True)
    processed = process_pending(sessions, job.payload["shop_id"], limit=100_000)
    return {
        "seen": result.seen,
        "stored": result.stored,
        "processed": processed,
        "error": result.error,
    }
