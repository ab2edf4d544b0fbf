"""Sync issues: changes that did not reach their shop, and deliveries that were not applied.

One list across the shops, newest first: outbox messages that failed (the dispatcher still
retries them) or died (it gave up), and inbox events parked, failing or rejected. A person
sends a message again or ignores it (web.services.outbox), replays or ignores a delivery
(web.services.sync_log). On AWS, queue messages that kept failing (dead letters,
web.services.dead_letters) are listed above, to replay or dismiss. The navigation shows how
many there are, from three COUNT queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    func,
    literal,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, defer, joinedload

from web.models import DeadLetter, InboxEvent, Order, OutboxMessage, Shop
from web.models.enums import InboxState, OutboxState
from web.services import dead_letters, outbox, paging
from web.services.errors import NotFound
from web.services.paging import Page

PER_PAGE = 25
OUTBOX = "outbox"
INBOX = "inbox"
KINDS = (OUTBOX, INBOX)
OUTBOX_STATES: tuple[OutboxState, ...] = outbox.PROBLEM_STATES
INBOX_STATES = (InboxState.PARKED, InboxState.FAILED, InboxState.REJECTED)


# --- Filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueFilters:
    shop: str | None = None
    kind: str | None = None
    page: int = 1

    def args(self) -> dict[str, str]:
        """The filters as query arguments (page left out)."""
        values = {"shop": self.shop, "kind": self.kind}
        return {name: value for name, value in values.items() if value}

    def wants(self, kind: str) -> bool:
        return self.kind is None or self.kind == kind


def parse_filters(args: Mapping[str, str]) -> tuple[IssueFilters, dict[str, str]]:
    """Read the filters from query arguments; return them and why refused ones were."""
    refused: dict[str, str] = {}
    kind = args.get("kind") or None
    if kind is not None and kind not in KINDS:
        refused["kind"] = f"expected one of {', '.join(KINDS)}, got {kind[:40]!r}"
        kind = None
    page = paging.parse_page(args, refused)
    shop = (args.get("shop") or "").strip()[:32] or None
    return IssueFilters(shop=shop, kind=kind, page=page), refused


# --- Counting --------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssueCounts:
    outbox: int = 0
    inbox: int = 0
    # Dead letters nobody replayed nor dismissed (every shop's: a message names no shop).
    dead_letters: int = 0
    # When the oldest delivery not yet applied arrived (every shop's counts only): the
    # navigation shows how far behind the inbox is from the same query.
    oldest_waiting: dt.datetime | None = field(default=None, compare=False)

    @property
    def total(self) -> int:
        return self.outbox + self.inbox + self.dead_letters


def _shop_id(shop: str) -> Any:
    return select(Shop.id).where(Shop.key == shop).scalar_subquery()


def _outbox_problems(shop: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [OutboxMessage.state.in_(OUTBOX_STATES)]
    if shop:
        where.append(OutboxMessage.shop_id == _shop_id(shop))
    return where


def _inbox_problems(shop: str | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [InboxEvent.state.in_(INBOX_STATES)]
    if shop:
        where.append(InboxEvent.shop_id == _shop_id(shop))
    return where


def counts(session: Session, shop: str | None = None) -> IssueCounts:
    """How many outbox messages, inbox deliveries and dead letters need a person: three
    COUNTs in one query, as every page's navigation asks (dead letters left out of a shop's
    counts)."""
    sent = select(func.count(OutboxMessage.id)).where(*_outbox_problems(shop))
    received = select(func.count(InboxEvent.id)).where(*_inbox_problems(shop))
    letters = select(func.count(DeadLetter.id)).where(*dead_letters.open_filter())
    row = session.execute(
        select(
            sent.scalar_subquery(),
            received.scalar_subquery(),
            literal(0) if shop else letters.scalar_subquery(),
            literal(None) if shop else oldest_waiting_query().scalar_subquery(),
        )
    ).one()
    return IssueCounts(
        outbox=row[0] or 0, inbox=row[1] or 0, dead_letters=row[2] or 0, oldest_waiting=row[3]
    )


WAITING_EVENTS = (InboxState.PENDING, InboxState.FAILED)
"""Deliveries not applied yet: pending, or failed and to be tried again."""


def oldest_waiting_query() -> Select[dt.datetime]:
    """When the oldest delivery not yet applied arrived."""
    return select(func.min(InboxEvent.received_at)).where(InboxEvent.state.in_(WAITING_EVENTS))


# --- Listing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One listed problem: an outbox message or an inbox event, with its shop and order."""

    kind: str
    at: dt.datetime
    shop: Shop
    order: Order | None
    message: OutboxMessage | None = None
    event: InboxEvent | None = None

    @property
    def id(self) -> int:
        item = self.message or self.event
        assert item is not None
        return item.id

    @property
    def state(self) -> OutboxState | InboxState:
        if self.message is not None:
            return self.message.state
        assert self.event is not None
        return self.event.state

    @property
    def busy(self) -> bool:
        """Waiting for the worker: a retried message or a replayed delivery."""
        return self.state in (OutboxState.PENDING, InboxState.PENDING)


@dataclass
class IssuePage(Page[Issue]):
    """One page of issues, the counts it was drawn from, and when the newest one happened."""

    counts: IssueCounts = IssueCounts()
    latest_at: dt.datetime | None = None


def _problems(filters: IssueFilters) -> Any:
    """(kind, id, at) of every problem the filters keep, as one subquery."""
    parts: list[Select[str, int, dt.datetime]] = []
    if filters.wants(OUTBOX):
        sent = select(
            literal_column(f"'{OUTBOX}'", String).label("kind"),
            OutboxMessage.id.label("id"),
            OutboxMessage.created_at.label("at"),
        )
        parts.append(sent.where(*_outbox_problems(filters.shop)))
    if filters.wants(INBOX):
        received = select(
            literal_column(f"'{INBOX}'", String).label("kind"),
            InboxEvent.id.label("id"),
            InboxEvent.received_at.label("at"),
        )
        parts.append(received.where(*_inbox_problems(filters.shop)))
    if len(parts) == 1:
        return parts[0].subquery()
    return union_all(*parts).subquery()


def list_issues(session: Session, filters: IssueFilters, per_page: int = PER_PAGE) -> IssuePage:
    """Problems matching the filters, newest first (when written or received), one page."""
    found = counts(session, filters.shop)
    total = (found.outbox if filters.wants(OUTBOX) else 0) + (
        found.inbox if filters.wants(INBOX) else 0
    )
    page = min(filters.page, paging.page_count(total, per_page))
    problems = _problems(filters)
    newest_first = select(problems.c.kind, problems.c.id).order_by(
        problems.c.at.desc(), problems.c.kind, problems.c.id.desc()
    )
    rows = session.execute(newest_first.offset((page - 1) * per_page).limit(per_page)).all()
    items = _load(session, [(str(kind), int(item_id)) for kind, item_id in rows])
    # Page 1 starts with the newest issue; a later page asks for its time.
    if page == 1:
        latest = items[0].at if items else None
    else:
        latest = session.scalar(select(problems.c.at).order_by(problems.c.at.desc()).limit(1))
    return IssuePage(items, total, page, per_page, found, latest)


def _load(session: Session, keys: list[tuple[str, int]]) -> list[Issue]:
    message_ids = [item_id for kind, item_id in keys if kind == OUTBOX]
    event_ids = [item_id for kind, item_id in keys if kind == INBOX]
    messages = {
        message.id: message
        for message in session.scalars(
            select(OutboxMessage)
            .options(joinedload(OutboxMessage.shop))
            .where(OutboxMessage.id.in_(message_ids))
        )
    }
    events = {
        event.id: event
        for event in session.scalars(
            select(InboxEvent)
            .options(defer(InboxEvent.raw_body), joinedload(InboxEvent.shop))
            .where(InboxEvent.id.in_(event_ids))
        )
    }
    orders = _orders(session, messages.values(), events.values())
    issues: list[Issue] = []
    for kind, item_id in keys:
        if kind == OUTBOX and item_id in messages:
            issues.append(_message_issue(messages[item_id], orders))
        elif kind == INBOX and item_id in events:
            issues.append(_event_issue(events[item_id], orders))
    return issues


_OrderIndex = dict[Any, Order]


def _orders(
    session: Session, messages: Iterable[OutboxMessage], events: Iterable[InboxEvent]
) -> _OrderIndex:
    """The orders of the listed items in one query, by id and by (shop id, external id)."""
    events = list(events)
    ids = {m.order_id for m in messages if m.order_id} | {e.order_id for e in events if e.order_id}
    external = {
        (e.shop_id, e.external_order_id)
        for e in events
        if e.order_id is None and e.external_order_id
    }
    conditions: list[ColumnElement[bool]] = [Order.id.in_(ids)] if ids else []
    conditions += [
        and_(Order.shop_id == shop_id, Order.external_id == external_id)
        for shop_id, external_id in external
    ]
    index: _OrderIndex = {}
    if not conditions:
        return index
    for order in session.scalars(select(Order).where(or_(*conditions))):
        index[order.id] = order
        index[(order.shop_id, order.external_id)] = order
    return index


def _message_issue(message: OutboxMessage, orders: _OrderIndex) -> Issue:
    order = orders.get(message.order_id) if message.order_id else None
    return Issue(OUTBOX, message.created_at, message.shop, order, message=message)


def _event_issue(event: InboxEvent, orders: _OrderIndex) -> Issue:
    if event.order_id is not None:
        order = orders.get(event.order_id)
    else:
        order = orders.get((event.shop_id, event.external_order_id))
    return Issue(INBOX, event.received_at, event.shop, order, event=event)


# --- One issue -------------------------------------------------------------------------------


def outbox_issue(session: Session, message_id: int) -> Issue:
    """One outbox message with its order, whatever its state; NotFound otherwise."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFound(f"no outbox message {message_id}")
    return _message_issue(message, _orders(session, [message], []))


def inbox_issue(session: Session, event_id: int) -> Issue:
    """One inbox event with its order, whatever its state; NotFound otherwise."""
    event = session.get(InboxEvent, event_id)
    if event is None:
        raise NotFound(f"no inbox event {event_id}")
    return _event_issue(event, _orders(session, [], [event]))


# --- Dead letters ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterIssue:
    """A dead letter and what its message was about."""

    letter: DeadLetter
    subject: dead_letters.Subject


def dead_letter_issues(session: Session, limit: int = 50) -> list[DeadLetterIssue]:
    """The open dead letters, newest first, each described."""
    return [
        DeadLetterIssue(letter, dead_letters.describe(session, letter))
        for letter in dead_letters.open_letters(session, limit)
    ]


def dead_letter_issue(session: Session, dead_letter_id: int) -> DeadLetterIssue:
    """One dead letter, open or not, described; NotFound otherwise."""
    letter = dead_letters.get(session, dead_letter_id)
    return DeadLetterIssue(letter, dead_letters.describe(session, letter))
