"""Dead letters on the sync issues page, in a browser: the section is axe-clean on a desktop
and on a phone, Replay sends a failed bulk job back (the worker then runs it: one comment on
the order), and Dismiss sets a stray message aside, each row re-rendered in place."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.conftest import wait_until
from tests.factories import make_order, make_shop
from web import aws, queue
from web.models import Comment, DeadLetter, Job, User
from web.models.enums import JobState
from web.services import bulk

pytestmark = pytest.mark.browser


def _sessions(live_app: Flask) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = live_app.extensions["comptoir.sessions"]
    return sessions


def test_replay_and_dismiss_dead_letters(page: Any, live_app: Flask) -> None:
    sessions = _sessions(live_app)
    text = f"Carton renforcé {uuid.uuid4().hex[:6]}"
    with sessions.begin() as session:
        manager = session.scalar(select(User).where(User.email == "manager@example.com"))
        assert manager is not None
        # Switched off: the worker does not poll its made-up address.
        shop = make_shop(session, f"dl-{uuid.uuid4().hex[:6]}", is_active=False)
        order_id = make_order(session, shop).id
        job = Job(
            kind=bulk.COMMENT_JOB,
            payload={"selection": {"ids": [order_id]}, "text": text, "visibility": "internal"},
            state=JobState.FAILED,
            attempts=3,
            error="OperationalError: the database was unreachable",
            created_by_id=manager.id,
        )
        session.add(job)
        session.flush()
        replayable = DeadLetter(
            queue=aws.JOBS,
            message_id=uuid.uuid4().hex,
            body=queue.Work(aws.JOBS, job.id).body(),
            receive_count=2,
        )
        stray = DeadLetter(
            queue=aws.INTAKE, message_id=uuid.uuid4().hex, body="not json", receive_count=2
        )
        session.add_all([replayable, stray])
        session.flush()
        job_id, replayable_id, stray_id = job.id, replayable.id, stray.id

    install_axe(page)
    log_in(page, "manager@example.com")
    page.goto("/sync/issues/")
    row = page.locator(f"#dead-letter-{replayable_id}")
    expect(row).to_contain_text(f"Tâche {job_id}")
    expect(page.locator(f"#dead-letter-{stray_id}")).to_contain_text("Pas un message de Comptoir")
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    row.locator(".dead-letter-replay").click()
    expect(row).to_contain_text("Renvoyé dans sa file.")
    expect(row.locator(".dead-letter-replay")).to_have_count(0)

    def done() -> bool:
        with sessions() as session:
            return session.get_one(Job, job_id).state == JobState.DONE

    wait_until(done, what="the replayed job done")
    with sessions() as session:
        found = session.scalars(select(Comment.text).where(Comment.order_id == order_id))
        assert list(found) == [text]

    stray_row = page.locator(f"#dead-letter-{stray_id}")
    expect(stray_row.locator(".dead-letter-replay")).to_have_count(0)
    stray_row.locator(".dead-letter-dismiss").click()
    expect(stray_row).to_contain_text("Mis de côté.")
    assert axe_violations(page) == []
    page.reload()
    expect(page.locator(f"#dead-letter-{stray_id}")).to_have_count(0)
    expect(page.locator(f"#dead-letter-{replayable_id}")).to_have_count(0)
