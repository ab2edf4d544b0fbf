"""The audit log: security-relevant facts that belong to no order.

Each entry is a kind and its parameters (web/views/events.py renders them in the reader's
language), who did it, whom it concerns and from which address. Services add entries in the
caller's transaction, so an entry exists exactly when the change it records does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, aliased

from web.models import AuditEvent, User
from web.models.base import utcnow
from web.services import paging
from web.services.paging import Page

PER_PAGE = 50
KIND_LENGTH = 60  # AuditEvent.kind


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


# --- Reading the log (the admin's page) -------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    kind: str | None = None
    page: int = 1

    def args(self) -> dict[str, str]:
        """The filters as query arguments (page left out)."""
        return {"kind": self.kind} if self.kind else {}


@dataclass(frozen=True)
class AuditEntry:
    """One entry with the users it names (None when gone or never one)."""

    event: AuditEvent
    actor: User | None
    subject: User | None


def parse_filters(args: Mapping[str, str]) -> tuple[AuditFilters, dict[str, str]]:
    """Read the filters from query arguments; return them and why refused ones were."""
    refused: dict[str, str] = {}
    kind = (args.get("kind") or "").strip()
    if len(kind) > KIND_LENGTH:
        refused["kind"] = f"no kind is {KIND_LENGTH} characters long, got {kind[:20]!r}…"
        kind = ""
    page = paging.parse_page(args, refused)
    return AuditFilters(kind=kind or None, page=page), refused


def _conditions(filters: AuditFilters) -> list[ColumnElement[bool]]:
    return [AuditEvent.kind == filters.kind] if filters.kind else []


def list_entries(
    session: Session, filters: AuditFilters, per_page: int = PER_PAGE
) -> Page[AuditEntry]:
    """Entries matching the filters, newest first, one page of them, with their users."""
    conditions = _conditions(filters)
    total: int = session.scalar(select(func.count(AuditEvent.id)).where(*conditions)) or 0
    page = min(filters.page, paging.page_count(total, per_page))
    actor, subject = aliased(User), aliased(User)
    query = (
        select(AuditEvent, actor, subject)
        .where(*conditions)
        .outerjoin(actor, actor.id == AuditEvent.actor_user_id)
        .outerjoin(subject, subject.id == AuditEvent.subject_user_id)
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    entries = [AuditEntry(*row) for row in session.execute(query)]
    return Page(entries, total, page, per_page)


def kinds(session: Session) -> list[str]:
    """Every kind the log holds, for the filter list."""
    return list(session.scalars(select(AuditEvent.kind).distinct().order_by(AuditEvent.kind)))
