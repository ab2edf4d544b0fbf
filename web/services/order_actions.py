"""What a person does to an order, with everything that must follow in the same transaction.

The views, the JSON API and the bulk jobs all come here: the state service changes the
order and writes its timeline event, then the outbox queues what the shop must learn.
The caller commits.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models.orders import Order
from web.services import order_state, outbox
from web.services.errors import ValidationFailed
from web.services.timeline import Actor

ACTIONS = tuple(order_state.ACTIONS)
REASON_ACTIONS = frozenset({"hold", "cancel"})


def perform(
    session: Session,
    order: Order,
    action: str,
    actor: Actor,
    *,
    reason: str = "",
    notify: bool = True,
) -> None:
    """Run one manual action on the order and queue the shop's update.

    Raises ValidationFailed for an unknown action or a missing reason, InvalidTransition
    when the order's state does not allow the action. `notify` asks the shop to tell the
    buyer about the resulting status where the platform lets us choose.
    """
    if action not in order_state.ACTIONS:
        message = f"Unknown action “{action[:40]}”; expected one of {', '.join(ACTIONS)}."
        raise ValidationFailed(message, {"action": message})
    run = order_state.ACTIONS[action]
    if action in REASON_ACTIONS:
        run(session, order, actor, reason)
    else:
        run(session, order, actor)
    reason = order.cancel_reason if action == "cancel" else ""
    outbox.queue_milestone(session, order, actor, notify=notify, reason=reason)


def lock_order(session: Session, order_id: int) -> Order | None:
    """Load the order for a change, its row locked until the commit (PostgreSQL).

    Every writer (the order page, the API, bulk jobs) goes through here, so two people
    acting on the same order take turns instead of both passing the same checks. SQLite
    needs no lock: its write transactions begin IMMEDIATE and never interleave.
    """
    query = (
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return session.scalar(query)
