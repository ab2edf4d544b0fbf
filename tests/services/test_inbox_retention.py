"""Inbox retention: the maintenance pass empties the payloads of deliveries applied longer ago
than APP_INBOX_RETENTION_DAYS, and only those; a shop re-sending one is still told it is a
duplicate, and the sync log says the body was purged instead of showing an empty one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_event, make_shop
from web.models import InboxEvent, Job, User, utcnow
from web.models.enums import InboxState, JobState, Role
from web.services import intake, sync_log
from web.services.errors import ValidationFailed


def _done(session: Session, event: InboxEvent, days_ago: int) -> InboxEvent:
    event.processed_at = utcnow() - dt.timedelta(days=days_ago)
    event.received_at = event.processed_at
    session.flush()
    return event


def test_only_payloads_applied_before_the_retention_are_purged(db_session: Session) -> None:
    shop = make_shop(db_session, "lyon")
    old = _done(db_session, make_event(db_session, shop, body=b'{"id": "old"}'), 91)
    recent = _done(db_session, make_event(db_session, shop, body=b'{"id": "new"}'), 89)
    old_ignored = make_event(db_session, shop, state=InboxState.IGNORED, body=b'{"id": "ign"}')
    old_ignored.received_at = utcnow() - dt.timedelta(days=200)
    old_parked = make_event(db_session, shop, state=InboxState.PARKED, body=b'{"id": "park"}')
    old_parked.received_at = utcnow() - dt.timedelta(days=200)
    db_session.flush()

    assert intake.purge_payloads(db_session, 90) == 2
    db_session.expire_all()
    assert (bytes(old.raw_body), old.headers) == (b"", {intake.PURGED_HEADER: "90"})
    assert bytes(old_ignored.raw_body) == b""
    assert bytes(recent.raw_body) == b'{"id": "new"}' and recent.headers
    assert bytes(old_parked.raw_body) == b'{"id": "park"}'  # still needs a person
    assert intake.purged_after_days(old) == 90 and intake.purged_after_days(recent) is None
    assert intake.purge_payloads(db_session, 90) == 0  # nothing left to purge

    # The shop sends the same delivery again: still a duplicate, nothing stored.
    again = intake.store_event(
        db_session, shop, old.topic, old.dedupe_key, None, b'{"id": "old"}', {}
    )
    assert again.duplicate and again.event_id == old.id

    try:
        sync_log.replay(db_session, old)
    except ValidationFailed as exc:
        assert "purged" in str(exc)
    else:
        raise AssertionError("a purged delivery was replayed")


def test_the_sync_log_says_the_payload_was_purged(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    token = csrf_token(client, "/orders/")
    client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/"})
    shop = make_shop(db_session, "lyon")
    event = _done(db_session, make_event(db_session, shop, body=b'{"secret": "address"}'), 120)
    intake.purge_payloads(db_session, 90)
    db_session.commit()

    html = client.get(f"/sync/events/{event.id}").get_data(as_text=True)
    assert "Payload purged after 90 days." in html
    assert "secret" not in html and intake.PURGED_HEADER not in html
    assert f"/sync/events/{event.id}/replay" not in html  # nothing left to apply


def test_flask_sync_maintenance_purges_but_leaves_running_jobs_in_the_local_mode(
    app: Flask, db_session: Session
) -> None:
    shop = make_shop(db_session, "lyon")
    old = _done(db_session, make_event(db_session, shop), 100)
    long_running = Job(
        kind="orders.bulk_comment",
        payload={},
        state=JobState.RUNNING,
        started_at=utcnow() - dt.timedelta(hours=1),
        attempts=1,
    )
    db_session.add(long_running)
    db_session.commit()

    result = app.test_cli_runner().invoke(args=["sync", "maintenance"])

    assert result.exit_code == 0, result.output
    assert "jobs requeued: 0" in result.output and "payloads purged: 1" in result.output
    assert "dead letters: 0" in result.output
    db_session.expire_all()
    # A local job running for an hour may be a long export: the worker that runs it is alive.
    assert bytes(old.raw_body) == b"" and long_running.state == JobState.RUNNING
