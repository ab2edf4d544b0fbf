"""Shop intake: store every delivery in the inbox first, then apply it to orders exactly once.

A webhook or a polled order becomes an InboxEvent (deduplicated per shop). Processing an
event is one unit of work: the order is upserted on (shop, external_id), an older copy
never overwrites a newer one, unknown statuses, carriers and payment methods park the order
("needs mapping") instead of failing, and a payload nobody can read parks the event.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, and_, case, false, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from web import aws, queue
from web.connectors import notifications
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    Connector,
    ConnectorError,
    InvalidSignature,
    PaymentSummary,
    PermanentError,
    RateLimited,
    RetryableError,
    ShopLine,
    ShopOrder,
    ShopRefund,
    ShopTransaction,
    WebhookDelivery,
)
from web.connectors.codec import decode_order
from web.i18n import N_
from web.models import (
    Customer,
    CustomerShopLink,
    InboxEvent,
    Order,
    OrderLine,
    Shop,
    Transaction,
    utcnow,
)
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    InboxState,
    ShopStatusMeaning,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.services import causes, invoicing, order_state, outbox, reconcile, shipments
from web.services.errors import InvalidTransition
from web.services.order_queries import DESK_TZ
from web.services.payments import payment_counter, payment_mapping
from web.services.shops import connector_for, webhook_connector
from web.services.timeline import Actor, record_event

log = logging.getLogger(__name__)

POLL_TOPIC = "poll/order"
# Follow-ups: what a delivery lacks is read from the shop by an inbox event of its own,
# with its own retries, after the delivery itself has been applied.
FETCH_TRANSACTIONS = "fetch/transactions"
FETCH_ORDER = "fetch/order"
FOLLOW_UP_TOPICS = (FETCH_TRANSACTIONS, FETCH_ORDER)
# A change of an order, notified by the shop's module or found by the change probe: the
# event holds no order, the worker reads it from the shop.
PROBE_TOPIC = "probe/order"
CHANGE_TOPIC_PREFIXES = (notifications.TOPIC_PREFIX, PROBE_TOPIC)
# Payments shown from an order body's totals until the shop's transactions are read.
PROVISIONAL_PREFIX = "body:"
MAX_ATTEMPTS = 8
EXTERNAL_ID_LENGTH = 64  # InboxEvent.external_order_id
KEPT_HEADER_PREFIXES = (
    "x-shopify-",
    "shopify-",
    "x-wc-",
    "x-comptoir-",
    "content-type",
    "user-agent",
)
# The HMAC of the body: kept out of the inbox, so nobody who can read the sync log can
# re-post a signed body (WooCommerce, Shopify, and Adobe Commerce's names all contain one
# of these words).
SIGNATURE_HEADER_WORDS = ("hmac", "signature")
BACKFILL_HEADER = "x-comptoir-backfill"
NOTIFICATION_HEADERS = ("x-comptoir-event", notifications.SIGNATURE_HEADER.lower())
CLOSED_MEANINGS = (
    ShopStatusMeaning.COMPLETED,
    ShopStatusMeaning.CANCELLED,
    ShopStatusMeaning.REFUNDED,
)


# --- Receiving -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    """What happened to one delivery."""

    event_id: int | None
    duplicate: bool = False
    ping: bool = False
    session: Session | None = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def event(self) -> InboxEvent | None:
        """The stored (or already present) inbox event, loaded when asked for."""
        if self.event_id is None or self.session is None:
            return None
        return self.session.get(InboxEvent, self.event_id)


def is_signature_header(name: str) -> bool:
    """Whether the header carries a signature, which is never stored nor shown."""
    return any(word in name.lower() for word in SIGNATURE_HEADER_WORDS)


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        shown(name.lower()): shown(value)
        for name, value in headers.items()
        if name.lower().startswith(KEPT_HEADER_PREFIXES) and not is_signature_header(name)
    }


def shown(text: str) -> str:
    """Text kept for people to read (headers, causes), as every database holds it: a NUL
    character, which PostgreSQL refuses in text, becomes U+FFFD."""
    return text.replace("\x00", "\ufffd")


def check_storable(delivery: WebhookDelivery) -> None:
    """Refuse a delivery whose identity no column can hold: BadPayload, so it is kept as a
    rejected event with its cause instead of failing the insert (a 5xx the shop retries).

    Its keys find duplicates, so they are never altered to fit: a NUL character or an order
    id longer than the column is the sender's error.
    """
    keys = {
        "topic": delivery.topic,
        "delivery id": delivery.dedupe_key,
        "content key": delivery.content_key or "",
        "order id": delivery.external_order_id or "",
    }
    for name, value in keys.items():
        if "\x00" in value:
            raise BadPayload(f"the {name} holds a NUL character")
    order_id = delivery.external_order_id or ""
    if len(order_id) > EXTERNAL_ID_LENGTH:
        raise BadPayload(f"the order id is longer than {EXTERNAL_ID_LENGTH} characters")


def _is_ping(connector: Connector, body: bytes, headers: Mapping[str, str]) -> bool:
    probe: Callable[[bytes, Mapping[str, str]], bool] | None = getattr(connector, "is_ping", None)
    return bool(probe and probe(body, headers))


def receive_webhook(
    session: Session, shop: Shop, body: bytes, headers: Mapping[str, str]
) -> Received:
    """Check the signature on the raw body, then store the delivery once.

    Raises InvalidSignature (nothing stored) or BadPayload (a rejected-event record is
    stored with its cause, so a person can see what the shop sent), TopicMismatch among
    them: a signed body under a topic that names another kind of body is never applied.
    """
    # Our own markers are set by the poller only, never by whoever calls the webhook URL;
    # the headers of our modules' notifications (docs/NOTIFICATIONS.md) are theirs to send.
    headers = {
        k: v
        for k, v in headers.items()
        if not k.lower().startswith("x-comptoir-") or k.lower() in NOTIFICATION_HEADERS
    }
    connector = webhook_connector(shop)
    if _is_ping(connector, body, headers):
        return Received(None, ping=True)
    if not connector.has_webhooks:
        raise BadPayload(f"{shop.platform.value} shops do not send webhooks")
    if not shop.webhook_secret:
        raise InvalidSignature("this shop has no webhook secret configured")
    connector.verify_webhook(body, headers)
    try:
        delivery = connector.describe_webhook(body, headers)
        if delivery.is_ping:
            _note_notification(session, shop, delivery)
            return Received(None, ping=True)
        check_storable(delivery)
    except BadPayload as exc:
        digest = hashlib.sha256(body).hexdigest()
        store_event(
            session,
            shop,
            "rejected",
            f"rejected:{digest}",
            None,
            body,
            headers,
            state=InboxState.REJECTED,
            error=shown(str(exc)),
            cause=_shown_cause(causes.cause_of(exc)),
        )
        raise
    _note_notification(session, shop, delivery)
    return store_event(
        session,
        shop,
        delivery.topic,
        delivery.dedupe_key,
        delivery.external_order_id,
        body,
        headers,
        content_key=delivery.content_key,
    )


def _note_notification(session: Session, shop: Shop, delivery: WebhookDelivery) -> None:
    """Count a verified change notification on its shop (one small update), for the
    settings page: when the last one came, its event, how many came today (Paris days)."""
    if not delivery.topic.startswith(notifications.TOPIC_PREFIX):
        return
    now = utcnow()
    today = now.astimezone(DESK_TZ).date()
    session.execute(
        update(Shop)
        .where(Shop.id == shop.id)
        .values(
            notified_at=now,
            notified_event=delivery.topic.removeprefix(notifications.TOPIC_PREFIX)[:40],
            notified_count=case((Shop.notified_day == today, Shop.notified_count + 1), else_=1),
            notified_day=today,
        )
        .execution_options(synchronize_session=False)
    )


def store_event(
    session: Session,
    shop: Shop,
    topic: str,
    dedupe_key: str,
    external_order_id: str | None,
    body: bytes,
    headers: Mapping[str, str],
    *,
    content_key: str | None = None,
    state: InboxState = InboxState.PENDING,
    error: str = "",
    cause: tuple[str, dict[str, Any]] | None = None,
) -> Received:
    """Insert an inbox event unless the shop has one with its dedupe or content key.

    One statement: the insert does nothing on either key already stored (by an earlier
    delivery, by the same body under another delivery id or topic, or by a concurrent one
    that committed first), and only then is the existing event looked up.
    """
    dedupe_key = dedupe_key[:200]
    content_key = content_key[:200] if content_key else None
    new_id = session.execute(
        _insert_event_statement(session.get_bind().dialect.name),
        {
            "shop_id": shop.id,
            "topic": topic[:80],
            "dedupe_key": dedupe_key,
            "content_key": content_key,
            "external_order_id": external_order_id,
            "raw_body": body,
            "headers": _kept_headers(headers),
            "received_at": utcnow(),
            "state": state,
            "error": error,
            "cause_kind": cause[0] if cause else "",
            "cause_params": cause[1] if cause else {},
        },
    ).scalar()
    if new_id is not None:
        if state == InboxState.PENDING:
            announce_event(session, new_id, shop.id, external_order_id)
        return Received(new_id, session=session)
    same_delivery = InboxEvent.dedupe_key == dedupe_key
    same_body = InboxEvent.content_key == content_key if content_key else false()
    existing = session.scalar(
        select(InboxEvent.id)
        .where(InboxEvent.shop_id == shop.id, or_(same_delivery, same_body))
        .order_by(case((same_delivery, 0), else_=1))
        .limit(1)
    )
    assert existing is not None
    return Received(existing, duplicate=True, session=session)


def _shown_cause(cause: tuple[str, dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    kind, params = cause
    return kind, {
        name: shown(value) if isinstance(value, str) else value for name, value in params.items()
    }


@functools.cache
def _insert_event_statement(dialect: str) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once.

    No conflict target: on PostgreSQL and SQLite alike the insert then gives way to every
    unique key, (shop_id, dedupe_key) and (shop_id, content_key). On the table, not the
    mapped class: a webhook pays for one compiled-cache hit, not for the ORM's bulk-insert
    bookkeeping.
    """
    insert = sqlite_insert if dialect == "sqlite" else postgresql_insert
    table = cast(Table, InboxEvent.__table__)
    return insert(table).on_conflict_do_nothing().returning(table.c.id)


def announce_event(
    session: Session, event_id: int, shop_id: int, external_order_id: str | None
) -> None:
    """Hand the event to a worker once it commits: on AWS, its id to the intake queue, in
    order with the other events of its order."""
    group = f"{shop_id}:{external_order_id}" if external_order_id else f"{shop_id}:event-{event_id}"
    queue.announce(session, queue.Work(aws.INTAKE, event_id, group[:128]))


def unannounced_due_events(
    session: Session, waiting_since: dt.datetime, limit: int = 500
) -> list[tuple[int, int, str | None]]:
    """(id, shop id, external order id) of due events a worker may never have been told of:
    new ones received before `waiting_since`, failed ones whose retry time came (on AWS
    nothing else announces a retry). The maintenance schedule announces them again."""
    query = (
        select(InboxEvent.id, InboxEvent.shop_id, InboxEvent.external_order_id)
        .join(Shop, Shop.id == InboxEvent.shop_id)
        .where(
            *_due_now(),
            or_(InboxEvent.state == InboxState.FAILED, InboxEvent.received_at < waiting_since),
        )
        .order_by(InboxEvent.received_at, InboxEvent.id)
        .limit(limit)
    )
    return [(row[0], row[1], row[2]) for row in session.execute(query)]


# --- Retention -----------------------------------------------------------------------------

# Set on a delivery whose body and headers were emptied: the days it was kept. Our own marker
# (x-comptoir-*), which webhooks never store from outside.
PURGED_HEADER = "x-comptoir-purged-after-days"
PURGEABLE_STATES = (InboxState.PROCESSED, InboxState.IGNORED)


def purge_payloads(session: Session, days: int, now: dt.datetime | None = None) -> int:
    """Empty the body and headers of deliveries applied (or set aside) more than `days` ago;
    return how many. Their dedupe and content keys stay, so a shop re-sending one is still
    told it is a duplicate. The caller commits."""
    if days <= 0:
        return 0
    cutoff = (now or utcnow()) - dt.timedelta(days=days)
    done_at = func.coalesce(InboxEvent.processed_at, InboxEvent.received_at)
    result = session.execute(
        update(InboxEvent)
        .where(
            and_(
                InboxEvent.state.in_(PURGEABLE_STATES),
                done_at < cutoff,
                func.length(InboxEvent.raw_body) > 0,
            )
        )
        .values(raw_body=b"", headers={PURGED_HEADER: str(days)})
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def purged_after_days(event: InboxEvent) -> int | None:
    """The days a delivery was kept before its body was purged, None if it was not."""
    value = (event.headers or {}).get(PURGED_HEADER)
    if value is None or bytes(event.raw_body or b""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# --- Processing ----------------------------------------------------------------------------


def due_events(session: Session, shop_id: int | None = None, limit: int = 100) -> list[int]:
    """Ids of inbox events waiting to be processed, oldest first.

    A switched-off shop's events wait, as its polls and pushes do, until it is switched on.
    """
    query = (
        select(InboxEvent.id)
        .join(Shop, Shop.id == InboxEvent.shop_id)
        .where(*_due_now())
        .order_by(InboxEvent.received_at, InboxEvent.id)
        .limit(limit)
    )
    if shop_id is not None:
        query = query.where(InboxEvent.shop_id == shop_id)
    return list(session.scalars(query))


def due_events_among(session: Session, ids: list[int]) -> set[int]:
    """Which of these events are due now (the same rules as `due_events`)."""
    query = (
        select(InboxEvent.id)
        .join(Shop, Shop.id == InboxEvent.shop_id)
        .where(InboxEvent.id.in_(ids), *_due_now())
    )
    return set(session.scalars(query))


def _due_now() -> tuple[Any, ...]:
    """An event is due: its shop is switched on, it waits, and its retry time has come."""
    now = utcnow()
    return (
        Shop.is_active.is_(True),
        InboxEvent.state.in_((InboxState.PENDING, InboxState.FAILED)),
        (InboxEvent.next_attempt_at.is_(None)) | (InboxEvent.next_attempt_at <= now),
    )


def process_event(
    session: Session, event: InboxEvent, connector: Connector | None = None
) -> InboxState:
    """Apply one inbox event; its order changes and its new state commit together."""
    if event.state not in (InboxState.PENDING, InboxState.FAILED):
        return event.state
    shop = event.shop
    event.attempts += 1
    actor = Actor.shop(event.topic)
    try:
        with session.begin_nested():
            outcome = _apply(session, shop, event, _Lazy(shop, connector), actor)
    except (BadPayload, PermanentError) as exc:
        if isinstance(exc, AuthFailed):
            _retry_later(event, exc)
        else:
            event.state = InboxState.PARKED
            event.error = str(exc)
            causes.set_cause(event, *causes.cause_of(exc))
        _note_on_order(session, shop, event, actor)
        return event.state
    except RetryableError as exc:
        _retry_later(event, exc)
        return event.state
    except ConnectorError as exc:
        _retry_later(event, exc)
        return event.state
    except (OperationalError, InterfaceError):
        raise  # the database itself is out of reach: nothing can be written, the event waits
    except Exception as exc:
        # A defect or a body nobody foresaw: its changes are rolled back with the savepoint and
        # this event waits for its retry (parked after MAX_ATTEMPTS), instead of being tried
        # first on every pass and holding back every event behind it.
        log.exception("inbox event %s could not be applied", event.id)
        _retry_later(event, exc)
        return event.state
    event.state = InboxState.PROCESSED
    event.error = ""
    causes.clear_failure(event)
    event.processed_at = utcnow()
    event.next_attempt_at = None
    event.order_id = outcome.order.id if outcome.order is not None else None
    # A processed event may still carry a notice (totals that do not add up).
    event.cause_kind = outcome.notice.kind if outcome.notice else ""
    event.cause_params = dict(outcome.notice.params) if outcome.notice else {}
    return event.state


class _Lazy:
    """The shop's connector, built only when the event needs to talk to the shop."""

    def __init__(self, shop: Shop, connector: Connector | None) -> None:
        self.shop = shop
        self.connector = connector

    def get(self) -> Connector:
        if self.connector is None:
            self.connector = connector_for(self.shop)
        return self.connector


def _retry_later(event: InboxEvent, exc: Exception) -> None:
    event.error = f"{type(exc).__name__}: {exc}"
    causes.set_cause(event, *causes.cause_of(exc))
    if event.attempts >= MAX_ATTEMPTS:
        event.state = InboxState.PARKED
        causes.gave_up(event, *causes.cause_of(exc))
        return
    event.state = InboxState.FAILED
    delay = min(3600.0, 5.0 * 2 ** (event.attempts - 1))
    if isinstance(exc, RateLimited) and exc.retry_after:
        delay = max(delay, exc.retry_after)
    event.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)


def _note_on_order(session: Session, shop: Shop, event: InboxEvent, actor: Actor) -> None:
    if not event.external_order_id or event.state != InboxState.PARKED:
        return
    order = _find_order(session, shop, event.external_order_id)
    if order is not None:
        record_event(
            session,
            order,
            actor,
            "inbox.parked",
            {
                "inbox_event_id": event.id,
                "topic": event.topic,
                "cause": event.cause_kind,
                "cause_params": event.cause_params,
            },
        )


def _apply(
    session: Session, shop: Shop, event: InboxEvent, connector: _Lazy, actor: Actor
) -> Outcome:
    if event.topic.endswith(("deleted", "delete")):
        return Outcome("deleted", _deleted_at_shop(session, shop, event, actor))
    if event.topic == FETCH_TRANSACTIONS:
        return Outcome("updated", _read_transactions(session, shop, event, connector, actor))
    if event.topic == FETCH_ORDER:
        return _read_order(session, shop, event, connector, actor)
    if event.topic.startswith(CHANGE_TOPIC_PREFIXES):
        return _read_changed_order(session, shop, event, connector, actor)
    if event.topic == POLL_TOPIC:
        shop_order = decode_order(event.raw_body)
    else:
        refund = _refund_from(event, connector)
        if refund is not None:
            return Outcome("updated", _apply_refund(session, shop, event, refund, actor))
        shop_order = connector.get().parse_order(event.raw_body)
    backfill = event.headers.get(BACKFILL_HEADER) == "1"
    outcome = upsert_order(session, shop, shop_order, actor, backfill=backfill)
    if outcome.kind in ("created", "updated"):
        _allow_a_new_deletion(session, shop, shop_order.external_id)
    order = outcome.order
    if order is not None and order.payment_details_pending and shop_order.transactions is None:
        _follow_up(session, shop, FETCH_TRANSACTIONS, order.external_id, event)
    return outcome


def _allow_a_new_deletion(session: Session, shop: Shop, external_id: str) -> None:
    """The order is at the shop again (restored from the trash): a later deletion is new.

    A deletion body is only `{"id": N}`, the same every time: its content key makes a
    re-post of it a duplicate until a newer copy of the order has been applied.
    """
    session.execute(
        update(InboxEvent)
        .where(InboxEvent.shop_id == shop.id, InboxEvent.content_key == f"deleted:{external_id}")
        .values(content_key=None)
        .execution_options(synchronize_session=False)
    )


def _follow_up(
    session: Session, shop: Shop, topic: str, external_order_id: str, cause: InboxEvent
) -> None:
    """Store the follow-up that reads from the shop what this delivery lacked (once)."""
    store_event(
        session,
        shop,
        topic,
        f"{topic}:{external_order_id}:after:{cause.id}",
        external_order_id,
        b"",
        {},
    )


def _refund_from(event: InboxEvent, connector: _Lazy) -> ShopRefund | None:
    parse: Callable[[bytes], ShopRefund] | None = getattr(connector.get(), "parse_refund", None)
    if parse is None or not event.topic.startswith("refunds/"):
        return None
    return parse(event.raw_body)


def _apply_refund(
    session: Session, shop: Shop, event: InboxEvent, refund: ShopRefund, actor: Actor
) -> Order | None:
    """Record a refund from its own delivery; an order not yet known is read from the shop."""
    order = _find_order(session, shop, refund.order_external_id)
    if order is None:
        _follow_up(session, shop, FETCH_ORDER, refund.order_external_id, event)
        return None
    _record_transactions(session, order, refund.transactions, actor)
    if _drop_provisional(order) or not refund.transactions:
        # Figures shown from a body may now count this refund twice, or the delivery did
        # not say how much: the shop's transactions settle it.
        _await_details(session, order, actor, PaymentSummary(exact=False))
        _follow_up(session, shop, FETCH_TRANSACTIONS, order.external_id, event)
    _refresh_money(session, shop, order, actor)
    return order


def _read_transactions(
    session: Session, shop: Shop, event: InboxEvent, connector: _Lazy, actor: Actor
) -> Order | None:
    """The follow-up of a body without payments: read them, replace the figures shown."""
    order = _find_order(session, shop, event.external_order_id or "")
    if order is None or not order.payment_details_pending:
        return order  # a later follow-up already read them
    transactions = connector.get().fetch_transactions(order.external_id)
    _drop_provisional(order)
    _record_transactions(session, order, transactions, actor)
    order.payment_details_pending = False
    record_event(
        session,
        order,
        actor,
        "payment.details_received",
        {"count": len(transactions)},
    )
    _refresh_money(session, shop, order, actor)
    return order


def _read_order(
    session: Session, shop: Shop, event: InboxEvent, connector: _Lazy, actor: Actor
) -> Outcome:
    """The follow-up of a delivery about an order Comptoir does not have: read it whole."""
    shop_order = connector.get().fetch_order(event.external_order_id or "")
    if shop_order.transactions is None:
        transactions = connector.get().fetch_transactions(shop_order.external_id)
        shop_order = dataclasses.replace(shop_order, transactions=transactions)
    return upsert_order(session, shop, shop_order, actor)


def _read_changed_order(
    session: Session, shop: Shop, event: InboxEvent, connector: _Lazy, actor: Actor
) -> Outcome:
    """A change notified by the shop's module or found by the change probe: read the order.

    Its key names the change; an order already applied at that modification time or later
    is not read again, unless the change does not move the time (a change id: a message, a
    tracking number, a credit slip).
    """
    change = notifications.parse_change_key(event.dedupe_key)
    if change is not None and not change.change_id:
        order = _find_order(session, shop, event.external_order_id or "")
        if order is not None and order.shop_updated_at >= change.updated_at:
            return Outcome("skipped", order)
    return _read_order(session, shop, event, connector, actor)


def _refresh_money(session: Session, shop: Shop, order: Order, actor: Actor) -> None:
    changed = order_state.refresh_payment_state(
        session, order, actor, counts_as_payment=payment_counter(shop, order)
    )
    outbox.queue_milestone(session, order, actor)
    if changed:
        invoicing.queue_when_paid(session, order)


def _deleted_at_shop(session: Session, shop: Shop, event: InboxEvent, actor: Actor) -> Order | None:
    order = _find_order(session, shop, event.external_order_id or "")
    if order is None:
        return None
    order.needs_review = True
    record_event(
        session,
        order,
        actor,
        "order.deleted_at_shop",
    )
    return order


def _find_order(session: Session, shop: Shop, external_id: str) -> Order | None:
    query = select(Order).where(Order.shop_id == shop.id, Order.external_id == external_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)


# --- Upsert ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """Something to tell about an event that was applied (its cause kind and parameters)."""

    kind: str
    params: Mapping[str, str]


@dataclass(frozen=True)
class Outcome:
    """What an upsert did: created, updated, stale, skipped (before import date or ignored),
    and the notice the inbox event carries (totals that do not add up), if any."""

    kind: str
    order: Order | None
    notice: Notice | None = None


def upsert_order(
    session: Session, shop: Shop, incoming: ShopOrder, actor: Actor, *, backfill: bool = False
) -> Outcome:
    """Create or update the order from the shop's copy, never going back in time."""
    order = _find_order(session, shop, incoming.external_id)
    status_meaning = _status_meaning(shop, incoming.status)
    if order is None:
        if shop.import_from and not backfill and incoming.placed_at.date() < shop.import_from:
            return Outcome("skipped", None)
        if status_meaning == ShopStatusMeaning.IGNORE:
            return Outcome("skipped", None)
        if backfill and (incoming.cancelled_at is not None or status_meaning in CLOSED_MEANINGS):
            # A backfill imports the orders still open in the shop, not its history.
            return Outcome("skipped", None)
        order = Order(shop=shop, external_id=incoming.external_id)
        session.add(order)
        _apply_snapshot(order, incoming)
        created = True
        before: tuple[Decimal | None, Decimal | None] = (None, None)
    else:
        if incoming.updated_at < order.shop_updated_at:
            record_event(
                session,
                order,
                actor,
                "inbox.stale",
                {"copy_updated_at": incoming.updated_at.isoformat()},
            )
            return Outcome("stale", order)
        created = False
        before = (order.computed_total, order.grand_total)
        _apply_update(session, order, incoming, actor)
    order.shop_status = incoming.status[:120]
    order.shop_updated_at = incoming.updated_at
    order.customer = _match_customer(session, shop, incoming, order.customer)
    session.flush()
    if created:
        record_event(
            session,
            order,
            actor,
            "order.received",
            {"number": incoming.number, "shop": shop.name, "shop_status": incoming.status},
        )
    _resolve_mappings(session, shop, order, incoming, actor)
    mismatch = reconcile.reconcile(session, order, actor, before)
    if incoming.transactions is None:
        new_money = _show_payment_summary(session, order, incoming.payment_summary, actor)
    else:
        new_money = _record_transactions(session, order, incoming.transactions, actor)
    _apply_status_meaning(session, order, incoming, status_meaning, actor)
    if incoming.shipments is not None:
        shipments.record_shop_shipments(session, order, incoming.shipments, actor)
    _refresh_money(session, shop, order, actor)
    if not created and not new_money:
        record_event(
            session,
            order,
            actor,
            "order.updated_by_shop",
            {"status": incoming.status},
        )
    notice = Notice(reconcile.MISMATCH_KIND, mismatch.params()) if mismatch else None
    return Outcome("created" if created else "updated", order, notice)


def _status_meaning(shop: Shop, status: str) -> ShopStatusMeaning | None:
    for mapping in shop.status_mappings:
        if mapping.shop_status == status:
            return mapping.meaning
    return None


def _apply_snapshot(order: Order, incoming: ShopOrder) -> None:
    order.number = incoming.number[:64]
    order.placed_at = incoming.placed_at
    order.shop_updated_at = incoming.updated_at
    order.currency = incoming.currency[:3].upper()
    order.prices_include_tax = incoming.prices_include_tax
    order.email = (incoming.email or incoming.customer.email).strip().lower()[:254]
    order.billing_address = incoming.billing.as_dict()
    order.shipping_address = (incoming.shipping or incoming.billing).as_dict()
    order.shipping_label = incoming.shipping_label[:200]
    order.payment_method = incoming.payment_method[:120]
    order.discount_codes = _codes(incoming)
    order.discounts = [
        {"code": d.code[:120], "label": d.label[:200], "amount": str(d.amount)}
        for d in incoming.discounts
    ]
    order.subtotal = incoming.subtotal
    order.discount_total = incoming.discount_total
    order.shipping_total = incoming.shipping_total
    order.shipping_tax = incoming.shipping_tax
    order.tax_total = incoming.tax_total
    order.grand_total = incoming.grand_total
    order.buyer_note = incoming.buyer_note
    order.marketplace_ref = incoming.marketplace_ref[:120]
    _replace_lines(order, incoming.lines)


def _codes(incoming: ShopOrder) -> list[str]:
    """The codes the buyer typed, searchable: the order's, then any only its discounts name."""
    codes = list(incoming.discount_codes)
    for discount in incoming.discounts:
        if discount.code and discount.code not in codes:
            codes.append(discount.code)
    return codes


def _line_signature(lines: list[OrderLine] | tuple[ShopLine, ...]) -> list[tuple[object, ...]]:
    """What makes two sets of lines the same order content (a re-delivery keeps the rows)."""
    return sorted(
        (
            line.external_id,
            line.sku,
            line.name,
            line.options,
            line.quantity,
            line.unit_price,
            line.tax_rate,
            line.discount_amount,
            line.total_gross,
            line.needs_shipping,
            _parent_key(line),
        )
        for line in lines
    )


def _parent_key(line: OrderLine | ShopLine) -> str:
    if isinstance(line, ShopLine):
        return line.parent_external_id or ""
    return line.parent.external_id if line.parent is not None else ""


def _replace_lines(order: Order, lines: tuple[ShopLine, ...]) -> None:
    if order.lines and _line_signature(order.lines) == _line_signature(lines):
        return
    order.lines.clear()
    by_external: dict[str, OrderLine] = {}
    for position, line in enumerate(lines):
        row = OrderLine(
            position=position,
            external_id=line.external_id[:64],
            kind=line.kind,
            sku=line.sku[:120],
            ean=line.ean[:20],
            name=line.name[:500] or "—",
            options=line.options[:500],
            quantity=line.quantity,
            unit_price=line.unit_price,
            tax_rate=line.tax_rate,
            discount_amount=line.discount_amount,
            total_net=line.total_net,
            tax_amount=line.tax_amount,
            total_gross=line.total_gross,
            needs_shipping=line.needs_shipping,
        )
        by_external[line.external_id] = row
        order.lines.append(row)
    for line in lines:
        if line.parent_external_id and line.parent_external_id in by_external:
            by_external[line.external_id].parent = by_external[line.parent_external_id]


def _editable(order: Order) -> bool:
    return order.fulfilment_state == FulfilmentState.UNFULFILLED and order.commercial_state in (
        CommercialState.NEW,
        CommercialState.VALIDATED,
    )


def _differences(order: Order, incoming: ShopOrder) -> dict[str, Any]:
    """What the shop's copy changes, as parameters of the event that tells it."""
    changes = []
    if _line_signature(order.lines) != _line_signature(incoming.lines):
        changes.append("lines")
    if order.shipping_address != (incoming.shipping or incoming.billing).as_dict():
        changes.append("delivery_address")
    if order.billing_address != incoming.billing.as_dict():
        changes.append("billing_address")
    figures: dict[str, Any] = {}
    if order.grand_total != incoming.grand_total:
        changes.append("total")
        figures = {
            "total_was": str(order.grand_total),
            "total_now": str(incoming.grand_total),
            "currency": order.currency,
        }
    if order.shipping_label != incoming.shipping_label[:200]:
        changes.append("shipping_method")
    return {"changes": changes, **figures} if changes else {}


def _apply_update(session: Session, order: Order, incoming: ShopOrder, actor: Actor) -> None:
    if _editable(order):
        changes = _differences(order, incoming)
        _apply_snapshot(order, incoming)
        if changes:
            record_event(
                session,
                order,
                actor,
                "order.edited_at_shop",
                changes,
            )
        return
    # In preparation or beyond: the warehouse may be working on the old version.
    changes = _differences(order, incoming)
    order.buyer_note = incoming.buyer_note
    if changes:
        order.needs_review = True
        record_event(
            session,
            order,
            actor,
            "order.edit_needs_review",
            changes,
        )


def _match_customer(
    session: Session, shop: Shop, incoming: ShopOrder, current: Customer | None
) -> Customer:
    data = incoming.customer
    email = (data.email or incoming.email).strip().lower() or None
    _serialise_customer(session, shop, data.external_id, email)
    link = None
    if data.external_id:
        link = session.scalar(
            select(CustomerShopLink).where(
                CustomerShopLink.shop_id == shop.id,
                CustomerShopLink.external_id == data.external_id,
            )
        )
    customer = None
    if email:
        customer = session.scalar(select(Customer).where(Customer.email == email))
    if customer is None and link is not None:
        customer = link.customer
    if customer is None and current is not None:
        customer = current
    if customer is None:
        customer = Customer(
            email=email,
            first_name=(data.first_name or incoming.billing.first_name)[:120],
            last_name=(data.last_name or incoming.billing.last_name)[:120],
            company=(data.company or incoming.billing.company)[:200],
            phone=(data.phone or incoming.billing.phone)[:40],
        )
        session.add(customer)
    if data.external_id and link is None:
        customer.shop_links.append(CustomerShopLink(shop_id=shop.id, external_id=data.external_id))
    return customer


def _serialise_customer(
    session: Session, shop: Shop, external_id: str | None, email: str | None
) -> None:
    """On PostgreSQL, wait for any other transaction matching this buyer to commit first.

    Orders of one new buyer applied at once by concurrent consumers (SQS, several workers)
    would each create the customer or its shop link, and all but one fail on the unique keys.
    A transaction-scoped advisory lock per key makes the second wait, then find what the first
    created. SQLite's write lock already serialises them.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = []
    if external_id:
        keys.append(f"customer-link:{shop.id}:{external_id}")
    if email:
        keys.append(f"customer:{email}")
    for key in sorted(keys):  # always in one order: two buyers' locks never cross
        session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


def _resolve_mappings(
    session: Session, shop: Shop, order: Order, incoming: ShopOrder, actor: Actor
) -> None:
    issues: list[dict[str, str]] = []
    if incoming.status and _status_meaning(shop, incoming.status) is None:
        issues.append({"kind": "status", "value": incoming.status, "label": incoming.status_label})
    if incoming.shipping_label:
        mapping = next(
            (m for m in shop.carrier_mappings if m.shop_label == incoming.shipping_label), None
        )
        if mapping is None:
            issues.append({"kind": "carrier", "value": incoming.shipping_label, "label": ""})
            order.shipping_mode = None
        else:
            order.shipping_mode_id = mapping.shipping_mode_id
    if incoming.payment_method and payment_mapping(shop, incoming.payment_method) is None:
        issues.append({"kind": "payment_method", "value": incoming.payment_method, "label": ""})
    was_parked = order.needs_mapping
    order.needs_mapping = bool(issues)
    order.mapping_issues = issues
    if issues and not was_parked:
        record_event(session, order, actor, "order.needs_mapping", {"issues": issues})


def _record_transactions(
    session: Session, order: Order, incoming: tuple[ShopTransaction, ...], actor: Actor
) -> bool:
    known = {tx.external_id: tx for tx in order.transactions if tx.external_id}
    changed = False
    for shop_tx in incoming:
        existing = known.get(shop_tx.external_id)
        if existing is not None:
            # Some platforms only give running totals (Magento total_paid, WooCommerce's
            # paid total): the same payment grows or changes status under one id.
            amount = abs(shop_tx.amount)
            if existing.status != shop_tx.status or existing.amount != amount:
                record_event(
                    session,
                    order,
                    actor,
                    "payment.changed",
                    {
                        "external_id": shop_tx.external_id,
                        "was": str(existing.amount),
                        "amount": str(amount),
                        "currency": existing.currency,
                        "status": shop_tx.status.value,
                    },
                )
                existing.status = shop_tx.status
                existing.amount = amount
                changed = True
            continue
        order.transactions.append(
            Transaction(
                external_id=shop_tx.external_id[:120],
                method=(shop_tx.method or order.payment_method)[:120],
                kind=shop_tx.kind,
                status=shop_tx.status,
                source=TransactionSource.SHOP,
                amount=abs(shop_tx.amount),
                currency=(shop_tx.currency or order.currency)[:3].upper(),
                reference=shop_tx.reference[:200],
                occurred_at=shop_tx.occurred_at,
            )
        )
        changed = True
        record_event(
            session,
            order,
            actor,
            f"payment.{shop_tx.kind.value}",
            {
                "external_id": shop_tx.external_id,
                "amount": str(abs(shop_tx.amount)),
                "currency": (shop_tx.currency or order.currency)[:3].upper(),
                "status": shop_tx.status.value,
            },
        )
    if changed:
        session.flush()
    return changed


def _apply_status_meaning(
    session: Session,
    order: Order,
    incoming: ShopOrder,
    meaning: ShopStatusMeaning | None,
    actor: Actor,
) -> None:
    cancelled = incoming.cancelled_at is not None or meaning == ShopStatusMeaning.CANCELLED
    if cancelled and order.commercial_state != CommercialState.CANCELLED:
        # A msgid when the shop gives no reason: shown in the reader's language.
        reason = incoming.cancel_reason or N_("Cancelled in the shop")
        try:
            order_state.cancel(session, order, actor, reason)
        except InvalidTransition as exc:
            order.needs_review = True
            record_event(
                session,
                order,
                actor,
                "order.cancel_needs_review",
                {"reason": exc.reason},
            )
    elif meaning == ShopStatusMeaning.ON_HOLD and not order.on_hold:
        try:
            order_state.hold(
                session,
                order,
                actor,
                N_("On hold in the shop"),
            )
        except InvalidTransition:
            pass


# --- Payments shown from a body, until the shop's transactions are read ------------------

_PAID_KINDS = (TransactionKind.SALE, TransactionKind.CAPTURE)


def _is_provisional(transaction: Transaction) -> bool:
    return (transaction.external_id or "").startswith(PROVISIONAL_PREFIX)


def _drop_provisional(order: Order) -> bool:
    provisional = [tx for tx in order.transactions if _is_provisional(tx)]
    for transaction in provisional:
        order.transactions.remove(transaction)
    return bool(provisional)


def _show_payment_summary(
    session: Session, order: Order, summary: PaymentSummary | None, actor: Actor
) -> bool:
    """Show what the body says of the money beyond the transactions already read, marked
    as awaiting details; return whether the money shown changed."""
    known = [
        tx
        for tx in order.transactions
        if tx.source == TransactionSource.SHOP
        and tx.status == TransactionStatus.SUCCESS
        and not _is_provisional(tx)
    ]

    def read(*kinds: TransactionKind) -> Decimal:
        return sum((tx.amount for tx in known if tx.kind in kinds), Decimal("0.00"))

    wanted: dict[TransactionKind, Decimal] = {}
    if summary is not None:
        wanted = {
            TransactionKind.SALE: summary.paid - read(*_PAID_KINDS),
            TransactionKind.REFUND: summary.refunded - read(TransactionKind.REFUND),
            TransactionKind.AUTHORIZATION: (
                summary.authorized - read(TransactionKind.AUTHORIZATION, *_PAID_KINDS)
            ),
        }
    missing = {kind: amount for kind, amount in wanted.items() if amount > 0}
    shown = {tx.kind: tx.amount for tx in order.transactions if _is_provisional(tx)}
    changed = shown != missing
    if changed:
        if _drop_provisional(order):
            # The rows replaced keep their external ids (unique per order): delete them
            # first, as the flush would insert the new ones before deleting the old.
            session.flush()
        for kind, amount in missing.items():
            order.transactions.append(
                Transaction(
                    external_id=f"{PROVISIONAL_PREFIX}{kind.value}",
                    method=order.payment_method,
                    kind=kind,
                    status=TransactionStatus.SUCCESS,
                    source=TransactionSource.SHOP,
                    amount=amount,
                    currency=order.currency,
                    reference="",
                    occurred_at=order.shop_updated_at,
                )
            )
        session.flush()
    # An inexact summary names a refund without its amount: known refunds answer it.
    unknown = summary is None or (not summary.exact and not read(TransactionKind.REFUND))
    if missing or unknown:
        _await_details(session, order, actor, summary)
    else:
        order.payment_details_pending = False
    return changed


def _await_details(
    session: Session, order: Order, actor: Actor, summary: PaymentSummary | None
) -> None:
    if order.payment_details_pending:
        return
    order.payment_details_pending = True
    record_event(
        session,
        order,
        actor,
        "payment.awaiting_details",
        {
            "paid": str(summary.paid) if summary else None,
            "refunded": str(summary.refunded) if summary else None,
            "currency": order.currency,
        },
    )
