"""Durable inbox and outbox with the shops, sync cursors, and the local job queue."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, enum_column, utcnow
from web.models.enums import InboxState, JobState, OutboxState
from web.models.shops import Shop
from web.observability import current_request_id

if TYPE_CHECKING:
    from web.models.orders import Order


class InboxEvent(Base):
    """A delivery from a shop, stored raw before any processing."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("shop_id", "dedupe_key"),
        UniqueConstraint("shop_id", "content_key"),
        Index("ix_inbox_events_state", "state", "received_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    topic: Mapped[str] = mapped_column(String(80))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # What the body says it is (topic family, order id, modification time), so a body
    # already stored is a duplicate whatever delivery id or header it is re-posted with;
    # None where the body carries no such identity.
    content_key: Mapped[str | None] = mapped_column(String(200))
    external_order_id: Mapped[str | None] = mapped_column(String(64))
    raw_body: Mapped[bytes] = mapped_column(LargeBinary)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    state: Mapped[InboxState] = enum_column(
        InboxState, name="inbox_state", default=InboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime | None]
    error: Mapped[str] = mapped_column(Text, default="")
    # The cause (or, on a processed event, a notice such as totals that do not add up) as
    # a kind and its parameters, rendered in the reader's language; `error` keeps the
    # technical text.
    cause_kind: Mapped[str] = mapped_column(String(60), default="", server_default="")
    cause_params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
    processed_at: Mapped[dt.datetime | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))

    shop: Mapped[Shop] = relationship()


class OutboxMessage(Base):
    """A fact the shop must learn, written in the same transaction as the change."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_messages_due", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_id: Mapped[int | None] = mapped_column(
        ForeignKey("orders.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    state: Mapped[OutboxState] = enum_column(
        OutboxState, name="outbox_state", default=OutboxState.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Set while a dispatcher is calling the shop with it; a dispatcher that dies leaves it
    # to run out, and the message is due again.
    claimed_until: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    remote_ref: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]

    shop: Mapped[Shop] = relationship()
    order: Mapped[Order | None] = relationship()


class SyncCursor(Base):
    """How far a flow of one shop has been read, and when it last succeeded."""

    __tablename__ = "sync_cursors"
    __table_args__ = (UniqueConstraint("shop_id", "flow"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    flow: Mapped[str] = mapped_column(String(40))
    position: Mapped[str] = mapped_column(String(200), default="")
    position_at: Mapped[dt.datetime | None]
    last_run_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    # When the full poll last read the orders (the change probe runs between): None before.
    reconciled_at: Mapped[dt.datetime | None]

    shop: Mapped[Shop] = relationship()


class ShopPacing(Base):
    """How full one shop's API allowance is, shared by every process that calls the shop.

    `level` is the estimated number of requests in the shop's leaky bucket at
    `observed_at`, our reservations included (a level above `capacity` means callers are
    scheduled to wait); it leaks `leak_rate` requests per second. `blocked_until` is the
    end of the shop's last Retry-After. capacity 0: the platform announces no bucket.
    """

    __tablename__ = "shop_pacing"

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), unique=True)
    level: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    capacity: Mapped[int] = mapped_column(default=0, server_default="0")
    leak_rate: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    observed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[dt.datetime | None]
    refusals: Mapped[int] = mapped_column(default=0, server_default="0")
    last_refusal_at: Mapped[dt.datetime | None]


class Job(Base):
    """A unit of background work for the embedded worker, with visible progress."""

    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "state", "run_after"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(60))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[JobState] = enum_column(JobState, name="job_state", default=JobState.QUEUED)
    progress: Mapped[int] = mapped_column(default=0, server_default="0")
    total: Mapped[int] = mapped_column(default=0, server_default="0")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    run_after: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # The id of the request that queued the job: the worker logs under it (web/observability).
    request_id: Mapped[str | None] = mapped_column(String(100), default=current_request_id)


class DeadLetter(Base):
    """A queue message that kept failing on AWS, moved out of its dead-letter queue.

    The maintenance schedule drains the dead-letter queues into this table, so the sync issues
    page can show each one with what it was about, and a person can send it back ("Replay").
    """

    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Comptoir's name of the queue it failed on: intake, push, jobs, render (web/aws.py).
    queue: Mapped[str] = mapped_column(String(20))
    # SQS's id of the message: draining the same message twice stores it once.
    message_id: Mapped[str] = mapped_column(String(100), unique=True)
    body: Mapped[str] = mapped_column(Text)
    receive_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # When the message was first sent, as SQS reports it.
    sent_at: Mapped[dt.datetime | None]
    moved_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    replayed_at: Mapped[dt.datetime | None]
    replayed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # Set aside by a person: not worth replaying (a message that is not ours, work now moot).
    dismissed_at: Mapped[dt.datetime | None]
    dismissed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    error: Mapped[str] = mapped_column(Text, default="", server_default="")
