"""The outbox: what the shop must learn, written with the change, delivered by a dispatcher.

A change that the shop must follow (a milestone, a cancellation, a comment for the buyer,
a shipment, the link to an invoice or credit note) writes an OutboxMessage in the same
transaction, with an idempotency key, so the message exists if and only if the change
committed. The dispatcher delivers each message in three
steps: claim it (one transaction: attempts + 1, and a lease that makes it due again if the
process dies), call the shop's connector (which reads the shop's state first and writes only
what is missing), then record the outcome (a second transaction). A process killed between
the call and the outcome leaves the message due again once the lease ends; the connector
then finds the fact at the shop and writes nothing.

Messages of one order go out in the order they were written: a message waits while an
older message of the same order is pending or failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from web import aws, queue
from web.connectors.base import (
    ConnectorError,
    ParcelToPush,
    PushOutcome,
    RateLimited,
    RetryableError,
    ShipmentLineToPush,
    ShipmentToPush,
)
from web.connectors.registry import make_connector
from web.documents import links
from web.i18n import N_
from web.models import Comment, Document, OutboxMessage, Shop, utcnow
from web.models.enums import (
    ActorType,
    CommentVisibility,
    DocumentKind,
    LineKind,
    Milestone,
    OutboxState,
    ShipmentOrigin,
    ShipmentState,
)
from web.models.orders import Order
from web.models.shipping import EXTERNAL_IDS_WIDTH, Shipment
from web.services import order_state
from web.services.errors import InvalidTransition
from web.services.shops import settings_for
from web.services.timeline import Actor, excerpt, record_event

log = logging.getLogger(__name__)

# 5 s doubling with jitter, capped at an hour, 12 attempts: a shop that stays down for one to
# two and a half hours is given up on (tests/services/test_outbox_policy.py).
MAX_ATTEMPTS = 12
BASE_DELAY = dt.timedelta(seconds=5)
MAX_DELAY = dt.timedelta(hours=1)
# How long a claimed message stays out of the dispatcher's sight; a dispatcher killed
# mid-delivery leaves it due again after this. APP_OUTBOX_LEASE_SECONDS changes it
# (`configure`): the reliability drills shorten it to reclaim a killed worker's messages fast.
LEASE = dt.timedelta(minutes=2)
_lease = LEASE
ERROR_MAX_LENGTH = 1000
# Seconds a push may wait for the shop; a slow shop counts as a transient failure.
PUSH_TIMEOUT = 10.0

STATUS = "status"
COMMENT = "comment"
SHIPMENT = "shipment"
DOCUMENT = "document"
# The documents whose link goes to the shop when they are issued.
SENT_DOCUMENTS = (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE)

OPEN_STATES = (OutboxState.PENDING, OutboxState.FAILED)
PROBLEM_STATES = (OutboxState.FAILED, OutboxState.DEAD)


def configure(lease: dt.timedelta) -> None:
    """Set the dispatcher's lease (web/runtime.py, from APP_OUTBOX_LEASE_SECONDS).

    Keep it above PUSH_TIMEOUT in production: a lease that ends while the shop is still
    being called lets a second dispatcher send the message again.
    """
    global _lease
    if lease <= dt.timedelta(0):
        raise ValueError("the outbox lease must be positive")
    _lease = lease


def lease() -> dt.timedelta:
    """The dispatcher's lease in force."""
    return _lease


# --- Writing messages ------------------------------------------------------------------------


def _queue(
    session: Session, order: Order, kind: str, key: str, payload: dict[str, Any]
) -> OutboxMessage | None:
    existing = session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))
    if existing is not None:
        return None
    message = OutboxMessage(
        shop_id=order.shop_id,
        order_id=order.id,
        kind=kind,
        payload=payload,
        idempotency_key=key,
        state=OutboxState.PENDING,
        next_attempt_at=utcnow(),
    )
    session.add(message)
    session.flush()
    record_event(
        session,
        order,
        Actor.system(),
        "outbox.queued",
        _details(message),
    )
    announce_message(session, message)
    return message


def announce_message(session: Session, message: OutboxMessage) -> None:
    """Hand the message to a worker once it commits: on AWS, its id to the push queue, in
    order with the other messages of its order."""
    queue.announce(session, queue.Work(aws.PUSH, message.id, f"order-{message.order_id}"))


def _announce_next(session: Session, message: OutboxMessage, now: dt.datetime) -> None:
    """The message is closed (sent, ignored, dead): announce the next open message of its
    order, which it held back, so that one goes out now rather than at the next sweep."""
    if message.order_id is None:
        return
    following = session.scalar(
        select(OutboxMessage)
        .where(
            OutboxMessage.order_id == message.order_id,
            OutboxMessage.id > message.id,
            OutboxMessage.state.in_(OPEN_STATES),
        )
        .order_by(OutboxMessage.id)
        .limit(1)
    )
    if following is not None and following.next_attempt_at <= now:
        announce_message(session, following)


def _mapped_status(shop: Shop, milestone: Milestone) -> str | None:
    for mapping in shop.milestone_mappings:
        if mapping.milestone == milestone:
            return mapping.shop_status if mapping.enabled and mapping.shop_status else None
    return None


def queue_milestone(
    session: Session, order: Order, actor: Actor, *, notify: bool = True, reason: str = ""
) -> OutboxMessage | None:
    """Queue the order's new milestone for its shop, if there is one to tell.

    The milestone counts as told even when nothing is queued (switch off, row disabled, or
    the shop already shows that status): "never twice, never backwards" is about what the
    shop was asked to show, and an older milestone must not be sent later.
    """
    target = order_state.milestone_to_push(order)
    if target is None:
        return None
    order_state.mark_milestone_pushed(order, target)
    shop = order.shop
    status = _mapped_status(shop, target)
    if status is None or not shop.push_statuses:
        return None
    if order.shop_status == status:
        return None
    if target == Milestone.CANCELLED and actor.type == ActorType.SHOP:
        # The shop cancelled the order itself.
        return None
    payload: dict[str, Any] = {"milestone": target.value, "status": status, "notify": notify}
    if target == Milestone.CANCELLED and reason:
        payload["reason"] = reason
    return _queue(
        session,
        order,
        STATUS,
        f"status:{order.id}:{target.value}",
        payload,
    )


def comment_goes_to_shop(comment: Comment) -> bool:
    """Tell whether the shop takes this comment: for the buyer, or internal as a private note."""
    shop = comment.order.shop
    if comment.visibility == CommentVisibility.CUSTOMER:
        return shop.push_comments
    return shop.push_internal_comments


def _comment_key(comment_id: int) -> str:
    return f"comment:{comment_id}"


def comment_message(session: Session, comment: Comment) -> OutboxMessage | None:
    """The message that carries (or carried) this comment to the shop, if any."""
    if comment.id is None:
        return None
    key = _comment_key(comment.id)
    return session.scalar(select(OutboxMessage).where(OutboxMessage.idempotency_key == key))


def comment_messages(session: Session, order: Order) -> dict[int, OutboxMessage]:
    """The messages of the order's comments, by comment id, in one query."""
    messages = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id, OutboxMessage.kind == COMMENT
        )
    )
    return {
        int(m.payload["comment_id"]): m
        for m in messages
        if m.idempotency_key == _comment_key(m.payload.get("comment_id") or 0)
    }


def order_messages(session: Session, order: Order, limit: int = 20) -> list[OutboxMessage]:
    """The order's latest messages to its shop, newest first."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.order_id == order.id)
        .order_by(OutboxMessage.id.desc())
        .limit(limit)
    )
    return list(session.scalars(query))


def queue_comment(session: Session, comment: Comment) -> OutboxMessage | None:
    """Queue the comment for the order's shop when the shop takes comments of its kind."""
    order = comment.order
    if not comment_goes_to_shop(comment):
        return None
    customer_visible = comment.visibility == CommentVisibility.CUSTOMER
    return _queue(
        session,
        order,
        COMMENT,
        _comment_key(comment.id),
        {
            "comment_id": comment.id,
            "text": comment.text,
            "customer_visible": customer_visible,
            "notify": comment.notify_customer,
        },
    )


def _shipment_messages(session: Session, shipment: Shipment) -> list[OutboxMessage]:
    messages = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == shipment.order_id, OutboxMessage.kind == SHIPMENT
        )
    )
    return [m for m in messages if m.payload.get("shipment_id") == shipment.id]


def queue_shipment(session: Session, shipment: Shipment) -> OutboxMessage | None:
    """Queue "make the shop show this shipment as it is now", unless a waiting message will.

    The message carries the shipment's id only: what the shop receives is read when it is
    sent, so a message still waiting (pending, or failed and due again) already carries
    any later change and no second one is queued. One being sent right now may carry the
    state before this change: a new message follows it. Shipments that came from the
    shop are never sent back to it.
    """
    if shipment.origin == ShipmentOrigin.SHOP:
        return None
    if shipment.id is None:
        session.flush()
    earlier = _shipment_messages(session, shipment)
    now = utcnow()
    for message in earlier:
        if message.state in OPEN_STATES and not _is_claimed(message, now):
            return message
    return _queue(
        session,
        shipment.order,
        SHIPMENT,
        f"shipment:{shipment.id}:{len(earlier) + 1}",
        {"shipment_id": shipment.id, "number": shipment.number},
    )


def queue_document(session: Session, document: Document) -> OutboxMessage | None:
    """Queue the link to an invoice or credit note for the buyer's account at the shop.

    Only when the shop shows documents in the buyer's account. The message carries the
    document's id (and its reference, to name the message): the text and the link are
    made when it is sent, the link stamped with the time the message was queued so that
    every attempt sends the same words and the shop can tell it already has them.
    """
    order = document.order
    if document.kind not in SENT_DOCUMENTS or not order.shop.show_documents_in_account:
        return None
    if document.id is None:
        session.flush()
    return _queue(
        session,
        order,
        DOCUMENT,
        f"document:{document.id}",
        {"document_id": document.id, "reference": document.reference},
    )


def _document_of(session: Session, message: OutboxMessage) -> Document | None:
    document_id = message.payload.get("document_id")
    return session.get(Document, document_id) if document_id else None


# --- Delivering them -------------------------------------------------------------------------


def backoff(attempts: int, retry_after: float | None = None) -> dt.timedelta:
    """Delay before the next attempt: exponential with jitter, never before Retry-After."""
    ceiling = min(MAX_DELAY, BASE_DELAY * (2 ** max(attempts - 1, 0)))
    delay = ceiling * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, dt.timedelta(seconds=retry_after))
    return min(delay, MAX_DELAY)


def _earlier_open_message() -> Any:
    older = aliased(OutboxMessage)
    return exists().where(
        and_(
            older.order_id == OutboxMessage.order_id,
            older.id < OutboxMessage.id,
            older.state.in_(OPEN_STATES),
        )
    )


def due_message_ids(
    session: Session, now: dt.datetime | None = None, shop_id: int | None = None, limit: int = 100
) -> list[int]:
    """Messages whose time has come and that no older message of their order holds back."""
    now = now or utcnow()
    query = (
        select(OutboxMessage.id)
        .join(Shop, Shop.id == OutboxMessage.shop_id)
        .where(
            OutboxMessage.state.in_(OPEN_STATES),
            OutboxMessage.next_attempt_at <= now,
            (OutboxMessage.claimed_until.is_(None)) | (OutboxMessage.claimed_until <= now),
            Shop.is_active.is_(True),
            ~_earlier_open_message(),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if shop_id is not None:
        query = query.where(OutboxMessage.shop_id == shop_id)
    return list(session.scalars(query))


@dataclass(frozen=True)
class _Claim:
    """What the call to the shop needs, read under the claim; `attempts` is its token."""

    attempts: int
    platform: str
    settings: Any
    external_id: str
    kind: str
    payload: dict[str, Any]
    queued_at: dt.datetime
    shipment: ShipmentToPush | None = None
    text: str = ""


def _locked(session: Session, message_id: int) -> OutboxMessage | None:
    """Read the message afresh, its row locked (PostgreSQL) until the transaction ends."""
    query = (
        select(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .execution_options(populate_existing=True)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    return session.scalar(query)


def _is_claimed(message: OutboxMessage, now: dt.datetime) -> bool:
    return message.claimed_until is not None and message.claimed_until > now


def _due(message: OutboxMessage | None, now: dt.datetime) -> bool:
    return (
        message is not None
        and message.state in OPEN_STATES
        and message.next_attempt_at <= now
        and not _is_claimed(message, now)
    )


def _held_back(session: Session, message: OutboxMessage) -> bool:
    """An older message of its order is still open: this one goes after it (a queue consumer
    asked for it by id; the due list already leaves such messages out)."""
    if message.order_id is None:
        return False
    older = select(OutboxMessage.id).where(
        OutboxMessage.order_id == message.order_id,
        OutboxMessage.id < message.id,
        OutboxMessage.state.in_(OPEN_STATES),
    )
    return session.scalar(older.limit(1)) is not None


def shipment_to_push(shipment: Shipment) -> ShipmentToPush:
    """The shipment as its shop must show it now, in the shop's own ids and codes."""
    order = shipment.order
    shop = order.shop
    mode = shipment.shipping_mode
    platform = shop.platform.value
    code = str((mode.carrier_codes or {}).get(platform) or "") if mode else ""
    lines = tuple(
        ShipmentLineToPush(
            line_external_id=item.order_line.external_id,
            quantity=item.quantity,
            sku=item.order_line.sku,
            name=item.order_line.name,
        )
        for item in shipment.lines
    )
    others = [
        s
        for s in order.shipments
        if s.id != shipment.id and s.state != ShipmentState.CANCELLED and s.lines
    ]
    shipped = {item.order_line_id: item.quantity for item in shipment.lines}
    ships = [
        line
        for line in order.lines
        if line.needs_shipping and line.parent_line_id is None and line.kind == LineKind.PRODUCT
    ]
    whole = not others and all(shipped.get(line.id, 0) >= line.quantity for line in ships)
    return ShipmentToPush(
        reference=shipment.number,
        external_id=shipment.external_id or "",
        lines=lines,
        parcels=tuple(
            ParcelToPush(p.tracking_number, p.tracking_url, p.weight_kg, p.external_id or "")
            for p in shipment.parcels
            if p.tracking_number
        ),
        carrier_code=code,
        carrier_name=mode.carrier if mode else "",
        cancelled=shipment.state == ShipmentState.CANCELLED,
        whole_order=whole,
        notify=shop.notify_shipments,
        shipped_at=shipment.shipped_at,
        others_external_ids=tuple(
            part
            for s in order.shipments
            if s.id != shipment.id and s.external_id
            for part in s.external_id.split(",")
        ),
    )


def _shipment_of(session: Session, message: OutboxMessage) -> Shipment | None:
    shipment_id = message.payload.get("shipment_id")
    return session.get(Shipment, shipment_id) if shipment_id else None


def _claim(session: Session, message: OutboxMessage, now: dt.datetime) -> _Claim:
    message.attempts += 1
    message.claimed_until = now + _lease
    shipment = None
    text = ""
    if message.kind == SHIPMENT:
        found = _shipment_of(session, message)
        shipment = shipment_to_push(found) if found is not None else None
    if message.kind == DOCUMENT:
        document = _document_of(session, message)
        if document is not None:
            try:
                text = links.link_text(document, now=message.created_at)
            except links.LinksNotConfigured:
                log.error("outbox message %s: no key to sign document links", message.id)
    return _Claim(
        attempts=message.attempts,
        platform=message.shop.platform.value,
        settings=dataclasses.replace(settings_for(message.shop), timeout=PUSH_TIMEOUT),
        external_id=message.order.external_id if message.order is not None else "",
        kind=message.kind,
        payload=dict(message.payload),
        queued_at=message.created_at,
        shipment=shipment,
        text=text,
    )


def _switched_off(message: OutboxMessage) -> str | None:
    shop = message.shop
    if message.kind == STATUS and not shop.push_statuses:
        return N_("Status pushes are switched off for this shop.")
    if message.kind == COMMENT:
        customer_visible = bool(message.payload.get("customer_visible", True))
        if not (shop.push_comments if customer_visible else shop.push_internal_comments):
            return N_("Comment pushes are switched off for this shop.")
    if message.kind == SHIPMENT and not shop.push_tracking:
        return N_("Shipment pushes are switched off for this shop.")
    if message.kind == DOCUMENT and not shop.show_documents_in_account:
        return N_("Documents are not shown in the buyer's account for this shop.")
    return None


def _pointless(session: Session, message: OutboxMessage) -> str | None:
    """Why a shipment or document message has nothing left to tell, if so."""
    if message.kind == DOCUMENT:
        document = _document_of(session, message)
        if document is None or not links.has_link(document):
            return N_("Its document no longer exists.")
        return None
    if message.kind != SHIPMENT:
        return None
    shipment = _shipment_of(session, message)
    if shipment is None:
        return N_("Its shipment no longer exists.")
    never_left = shipment.shipped_at is None and not shipment.external_id
    if shipment.state in (ShipmentState.DRAFT, ShipmentState.PACKED) or (
        shipment.state == ShipmentState.CANCELLED and never_left
    ):
        return N_("The shipment has not left the warehouse: nothing to tell the shop.")
    return None


def _call(claim: _Claim) -> PushOutcome:
    connector = make_connector(claim.platform, claim.settings)
    payload = claim.payload
    try:
        if claim.kind == STATUS:
            return connector.push_status(
                claim.external_id,
                str(payload["status"]),
                notify=bool(payload.get("notify", True)),
                reason=str(payload.get("reason", "")),
            )
        if claim.kind == SHIPMENT:
            if claim.shipment is None:
                raise ValueError("the shipment of this message no longer exists")
            return connector.push_shipment(claim.external_id, claim.shipment, since=claim.queued_at)
        if claim.kind == COMMENT:
            return connector.push_comment(
                claim.external_id,
                str(payload["text"]),
                customer_visible=bool(payload.get("customer_visible", True)),
                notify=bool(payload.get("notify", False)),
                since=claim.queued_at,
                ref=f"c{payload['comment_id']}" if payload.get("comment_id") else "",
            )
        if claim.kind == DOCUMENT:
            if not claim.text:
                raise ValueError("no link could be made to the document of this message")
            # A customer note the buyer finds in their account; the e-mail is the shop's call.
            return connector.push_comment(
                claim.external_id,
                claim.text,
                customer_visible=True,
                notify=False,
                since=claim.queued_at,
                ref=f"d{payload['document_id']}",
            )
        raise ValueError(f"unknown outbox message kind {claim.kind!r}")
    finally:
        connector.close()


def subject(message: OutboxMessage) -> dict[str, Any]:
    """What the message carries, as the parameters of the events that tell of it."""
    payload = message.payload or {}
    if message.kind == STATUS:
        return {"status": payload.get("status", ""), "milestone": payload.get("milestone", "")}
    if message.kind == COMMENT:
        return {
            "excerpt": excerpt(str(payload.get("text", "")), 60),
            "customer_visible": bool(payload.get("customer_visible", True)),
        }
    if message.kind == SHIPMENT:
        return {"shipment": payload.get("number", "")}
    if message.kind == DOCUMENT:
        return {"document": payload.get("reference", "")}
    return {}


def deliver(
    sessions: sessionmaker[Session], message_id: int, now: dt.datetime | None = None
) -> OutboxState | None:
    """Try to deliver one message; return its new state, or None when it was not due."""
    now = now or utcnow()
    with sessions.begin() as session:
        message = _locked(session, message_id)
        if message is None or not _due(message, now) or _held_back(session, message):
            return None
        off = _switched_off(message) or _pointless(session, message)
        if off is not None:
            _finish(session, message, OutboxState.IGNORED, now, error=off)
            return OutboxState.IGNORED
        claim = _claim(session, message, now)
    outcome: PushOutcome | None = None
    error: Exception | None = None
    try:
        outcome = _call(claim)
    except Exception as exc:  # recorded on the message; one bad message must not stop others
        error = exc
        if not isinstance(exc, ConnectorError):
            log.exception("outbox message %s failed unexpectedly", message_id)
    with sessions.begin() as session:
        message = _locked(session, message_id)
        if (
            message is None
            or message.attempts != claim.attempts
            or message.state not in OPEN_STATES
        ):
            # Our lease ran out and another dispatcher took the message over: its outcome wins.
            log.warning(
                "outbox message %s: attempt %s came back too late", message_id, claim.attempts
            )
            return None
        if outcome is not None:
            if outcome.skipped:
                _finish(session, message, OutboxState.IGNORED, now, error=outcome.skipped)
            else:
                _finish(session, message, OutboxState.SENT, now, outcome=outcome)
        else:
            assert error is not None
            _record_failure(session, message, error, now)
        return message.state


def _finish(
    session: Session,
    message: OutboxMessage,
    state: OutboxState,
    now: dt.datetime,
    *,
    outcome: PushOutcome | None = None,
    error: str = "",
) -> None:
    message.state = state
    message.claimed_until = None
    message.last_error = error[:ERROR_MAX_LENGTH]
    _announce_next(session, message, now)
    order = message.order
    if state == OutboxState.SENT:
        assert outcome is not None
        message.sent_at = now
        message.remote_ref = outcome.remote_ref[:200]
        if message.kind == COMMENT:
            comment = session.get(Comment, message.payload.get("comment_id"))
            if comment is not None:
                comment.pushed_at = now
        if message.kind == SHIPMENT:
            _shipment_told(session, message, outcome, now)
        if order is not None:
            record_event(
                session,
                order,
                Actor.system(),
                "outbox.sent",
                _details(message, written=outcome.written),
            )
    elif order is not None:
        record_event(
            session,
            order,
            Actor.system(),
            "outbox.ignored",
            _details(message, reason=error),
        )


def _shipment_told(
    session: Session, message: OutboxMessage, outcome: PushOutcome, now: dt.datetime
) -> None:
    shipment = _shipment_of(session, message)
    if shipment is None:
        return
    shipment.pushed_at = now
    if outcome.remote_ref and not shipment.external_id:
        shipment.external_id = _whole_ids(outcome.remote_ref, EXTERNAL_IDS_WIDTH)
    refs = dict(outcome.parcel_refs)
    for parcel in shipment.parcels:
        ref = refs.get(parcel.tracking_number)
        if ref:
            parcel.external_id = ref[:64]


def _whole_ids(ids: str, width: int) -> str:
    """The comma-separated `ids`, cut after the last whole id that fits in `width`."""
    if len(ids) <= width:
        return ids
    return ids[: width + 1].rsplit(",", 1)[0][:width]


def _details(message: OutboxMessage, **extra: Any) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "kind": message.kind,
        "attempts": message.attempts,
        "shop": message.shop.name if message.shop else "",
        **subject(message),
        **extra,
    }


def _record_failure(
    session: Session, message: OutboxMessage, error: Exception, now: dt.datetime
) -> None:
    text = f"{type(error).__name__}: {error}"[:ERROR_MAX_LENGTH]
    message.last_error = text
    message.claimed_until = None
    # A refusal (4xx, bad credentials, unknown order) will not pass by waiting.
    refused = isinstance(error, ConnectorError) and not isinstance(error, RetryableError)
    order = message.order
    if refused or message.attempts >= MAX_ATTEMPTS:
        message.state = OutboxState.DEAD
        _announce_next(session, message, now)
        if order is not None:
            record_event(
                session,
                order,
                Actor.system(),
                "outbox.dead",
                _details(message, refused=refused, error=text),
            )
        return
    retry_after = error.retry_after if isinstance(error, RateLimited) else None
    message.state = OutboxState.FAILED
    message.next_attempt_at = now + backoff(message.attempts, retry_after)
    if order is not None:
        record_event(
            session,
            order,
            Actor.system(),
            "outbox.failed",
            _details(message, next_attempt_at=message.next_attempt_at.isoformat(), error=text),
        )


def dispatch_due(
    sessions: sessionmaker[Session],
    shop_id: int | None = None,
    limit: int = 100,
    now: dt.datetime | None = None,
    out_of_time: Callable[[], bool] | None = None,
) -> int:
    """Deliver due messages one by one; return how many were tried.

    A delivered message may free the next message of its order, so the due list is read
    again until a pass finds nothing new (or `limit` messages were tried). `out_of_time`
    (a Lambda's clock) is asked before each delivery: what is left waits for the next run.
    """
    tried = 0
    seen: set[int] = set()
    while tried < limit:
        if out_of_time is not None and out_of_time():
            break
        with sessions() as session:
            ids = [
                message_id
                for message_id in due_message_ids(session, now, shop_id, limit - tried)
                if message_id not in seen
            ]
        if not ids:
            break
        for message_id in ids:
            if out_of_time is not None and out_of_time():
                return tried
            seen.add(message_id)
            if deliver(sessions, message_id, now) is not None:
                tried += 1
    return tried


# --- People acting on messages (the sync issues page) ----------------------------------------


def _ensure_idle(message: OutboxMessage, action: str) -> None:
    if _is_claimed(message, utcnow()):
        reason = N_("it is being sent right now; try again in a moment")
        raise InvalidTransition(action, reason)


def _retry_refusal(session: Session, message: OutboxMessage) -> str | None:
    if message.kind == COMMENT:
        if session.get(Comment, message.payload.get("comment_id")) is None:
            return N_("its comment was deleted")
    if message.kind == SHIPMENT and _shipment_of(session, message) is None:
        return N_("its shipment no longer exists")
    if message.kind == DOCUMENT and _document_of(session, message) is None:
        return N_("its document no longer exists")
    if message.kind == STATUS and message.order_id is not None:
        newer = session.scalar(
            select(OutboxMessage.id).where(
                OutboxMessage.order_id == message.order_id,
                OutboxMessage.kind == STATUS,
                OutboxMessage.id > message.id,
                OutboxMessage.state == OutboxState.SENT,
            )
        )
        if newer is not None:
            # Sending it now would move the shop backwards.
            return N_("a newer status was already sent to the shop")
    return None


def retry(session: Session, message: OutboxMessage, actor: Actor) -> None:
    """Send a failed, dead or ignored message again now, with a fresh count of attempts.

    Refused (InvalidTransition) while it is being sent, when a newer status of its order
    already reached the shop, or when its comment was deleted.
    """
    if message.state in (OutboxState.SENT, OutboxState.PENDING):
        return
    _ensure_idle(message, "retry")
    reason = _retry_refusal(session, message)
    if reason is not None:
        raise InvalidTransition("retry", reason)
    message.state = OutboxState.PENDING
    message.attempts = 0
    message.next_attempt_at = utcnow()
    if message.order is not None:
        record_event(
            session,
            message.order,
            actor,
            "outbox.retried",
            _details(message),
        )
    announce_message(session, message)


def ignore(session: Session, message: OutboxMessage, actor: Actor) -> None:
    """Give up on a message a person judged not worth sending (refused while being sent)."""
    if message.state in (OutboxState.SENT, OutboxState.IGNORED):
        return
    _ensure_idle(message, "ignore")
    message.state = OutboxState.IGNORED
    _announce_next(session, message, utcnow())
    if message.order is not None:
        record_event(
            session,
            message.order,
            actor,
            "outbox.ignored",
            _details(message, by_hand=True),
        )
