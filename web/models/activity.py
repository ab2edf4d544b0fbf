"""What people and machines said and did about an order: comments and the timeline."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, enum_column, utcnow
from web.models.enums import ActorType, CommentVisibility
from web.models.users import User

if TYPE_CHECKING:
    from web.models.orders import Order


class Comment(Base):
    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    visibility: Mapped[CommentVisibility] = enum_column(
        CommentVisibility, name="comment_visibility", default=CommentVisibility.INTERNAL
    )
    notify_customer: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime | None]
    pushed_at: Mapped[dt.datetime | None]

    order: Mapped[Order] = relationship(back_populates="comments")
    author: Mapped[User | None] = relationship()


class OrderEvent(Base):
    """One line of an order's timeline, which is also its audit log."""

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_time", "order_id", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"))
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    actor_type: Mapped[ActorType] = enum_column(ActorType, name="event_actor_type")
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(60))
    # The event's parameters (amounts with their currency, states, labels, reasons as typed):
    # the views render kind + parameters in the reader's language.
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    order: Mapped[Order] = relationship(back_populates="events")
    actor_user: Mapped[User | None] = relationship()
