"""The audit log as services read and write it: what an entry keeps, the admin page's
filters, and one page of entries with the users they name."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.orm import Session

from web.models import AuditEvent, User
from web.models.enums import Role
from web.services import audit
from web.services.audit import AuditFilters
from web.services.users import create_user


def _user(session: Session, name: str) -> User:
    user, _ = create_user(
        session, f"{name}-{uuid.uuid4().hex[:6]}@example.com", Role.ADMIN, "x" * 16, name
    )
    return user


def test_an_entry_keeps_who_whom_where_and_its_own_copy_of_the_parameters(
    db_session: Session,
) -> None:
    admin, clerk = _user(db_session, "Admin"), _user(db_session, "Clerk")
    params = {"role": "manager"}
    entry = audit.record_audit(
        db_session,
        "user.role_changed",
        actor=admin,
        subject=clerk,
        address="2001:db8::1" + "0" * 80,
        params=params,
    )
    params["role"] = "admin"  # the caller's dict changes later: the entry does not
    db_session.flush()
    assert (entry.kind, entry.actor_user_id, entry.subject_user_id) == (
        "user.role_changed",
        admin.id,
        clerk.id,
    )
    assert entry.address == ("2001:db8::1" + "0" * 80)[:64] and entry.params == {"role": "manager"}
    bare = audit.record_audit(db_session, "login.throttled")
    db_session.flush()
    assert (bare.actor_user_id, bare.subject_user_id, bare.address, bare.params) == (
        None,
        None,
        "",
        {},
    )


def test_the_filters_are_read_from_the_query_and_a_kind_too_long_refused() -> None:
    assert audit.parse_filters({"kind": " login.failed ", "page": "2"}) == (
        AuditFilters(kind="login.failed", page=2),
        {},
    )
    assert AuditFilters(kind="login.failed", page=2).args() == {"kind": "login.failed"}
    assert AuditFilters().args() == {}
    assert audit.parse_filters({"kind": "k" * 60}) == (AuditFilters(kind="k" * 60), {})
    filters, refused = audit.parse_filters({"kind": "k" * 61, "page": "0"})
    assert filters == AuditFilters()
    assert refused == {
        "kind": f"no kind is 60 characters long, got {'k' * 20!r}…",
        "page": "expected a page number from 1 to 1000000, got '0'",
    }
    assert audit.parse_filters({"kind": "  "}) == (AuditFilters(), {})


def test_a_page_of_entries_newest_first_with_the_users_they_name(db_session: Session) -> None:
    admin, clerk = _user(db_session, "Admin"), _user(db_session, "Clerk")
    start = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
    # Written in this order, but the first one happened last (a clock set back, an import).
    written = [("login.failed", 9), ("user.created", 1), ("login.failed", 2), ("login.failed", 3)]
    entries = []
    for kind, minutes in written:
        entry = audit.record_audit(db_session, kind, actor=admin, subject=clerk)
        entry.occurred_at = start + dt.timedelta(minutes=minutes)
        entries.append(entry)
    db_session.flush()

    failed = audit.list_entries(db_session, AuditFilters(kind="login.failed"), per_page=2)
    assert (failed.total, failed.pages, failed.page) == (3, 2, 1)
    assert [e.event for e in failed.items] == [entries[0], entries[3]]
    assert all((e.actor, e.subject) == (admin, clerk) for e in failed.items)
    last = audit.list_entries(db_session, AuditFilters(kind="login.failed", page=9), per_page=2)
    assert last.page == 2 and [e.event for e in last.items] == [entries[2]]
    everything = audit.list_entries(db_session, AuditFilters())
    assert everything.total == db_session.query(AuditEvent).count()
    assert {"login.failed", "user.created"} <= set(audit.kinds(db_session))


def test_the_latest_entries_newest_first_the_last_written_first_at_the_same_time(
    db_session: Session,
) -> None:
    start = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)  # after anything else in the log
    entries = []
    for minutes in [5, 1, 1] + [0] * 60:
        entry = audit.record_audit(db_session, "login.failed")
        entry.occurred_at = start + dt.timedelta(minutes=minutes)
        entries.append(entry)
    db_session.flush()

    latest = audit.recent(db_session)

    assert len(latest) == 50
    assert latest[:3] == [entries[0], entries[2], entries[1]]
    assert audit.recent(db_session, limit=1) == [entries[0]]
