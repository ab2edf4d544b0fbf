"""The audit log: security-relevant facts that belong to no order.

Each entry is a kind and its parameters (web/views/events.py renders them in the reader's
language), who did it, whom it concerns and from which address. Services add entries in the
caller's transaction, so an entry exists exactly when the change it records does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import AuditEvent, User
from web.models.base import utcnow


def record_audit(
    session: Session,
    kind: str,
    *,
    actor: User | None = None,
    subject: User | None = None,
    address: str = "",
    params: Mapping[str, Any] | None = None,
) -> AuditEvent:
    """Append one entry to the audit log."""
    event = AuditEvent(
        occurred_at=utcnow(),
        kind=kind,
        actor_user_id=actor.id if actor is not None else None,
        subject_user_id=subject.id if subject is not None else None,
        address=address[:64],
        params=dict(params or {}),
    )
    session.add(event)
    return event


def recent(session: Session, limit: int = 50) -> list[AuditEvent]:
    """The latest entries, newest first."""
    return list(
        session.scalars(
            select(AuditEvent)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
        )
    )
