"""The order timeline: who did what, written next to every change.

An event stores what happened as a kind ("order.cancelled") and its parameters (amounts as
strings with their currency, states, labels, who, and the words people typed, as typed);
the views turn them into a sentence in the reader's language (web/views/events.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from web.models import OrderEvent, User, utcnow
from web.models.enums import ActorType
from web.models.orders import Order


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a person, a shop, or Comptoir itself."""

    type: ActorType
    user_id: int | None = None
    label: str = ""

    @classmethod
    def for_user(cls, user: User) -> Actor:
        return cls(ActorType.USER, user.id, user.name)

    @classmethod
    def shop(cls, label: str = "") -> Actor:
        return cls(ActorType.SHOP, None, label)

    @classmethod
    def system(cls, label: str = "") -> Actor:
        return cls(ActorType.SYSTEM, None, label)


EXCERPT_MAX_LENGTH = 500


def excerpt(text: str, limit: int = EXCERPT_MAX_LENGTH) -> str:
    """The text cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def record_event(
    session: Session,
    order: Order,
    actor: Actor,
    kind: str,
    params: Mapping[str, Any] | None = None,
) -> OrderEvent:
    """Append one event, a kind and its parameters, to the order's timeline.

    A shop's or Comptoir's label (the webhook topic, "poll", the job) is kept in the
    parameters as "via", so the timeline says how the change came.
    """
    details = dict(params or {})
    if actor.label and actor.type != ActorType.USER:
        details.setdefault("via", actor.label)
    event = OrderEvent(
        order=order,
        occurred_at=utcnow(),
        actor_type=actor.type,
        actor_user_id=actor.user_id,
        kind=kind,
        details=details,
    )
    session.add(event)
    return event
