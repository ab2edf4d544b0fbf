"""Bulk jobs run by the worker against real orders: changes, refusals, progress and exports."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import BASE_TIME, make_customer, make_line, make_order, make_shop
from web import queue
from web.models import Comment, Job, MilestoneMapping, OrderEvent, OutboxMessage, Shop, User
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    JobState,
    Milestone,
    PaymentState,
    Role,
)
from web.models.orders import Order
from web.services import bulk, comments, order_actions
from web.services.errors import ValidationFailed
from web.services.timeline import Actor


@pytest.fixture()
def manager(make_user: Callable[..., User]) -> User:
    return make_user(Role.MANAGER)


def shop_with_milestones(session: Session, key: str | None = None) -> Shop:
    """A shop told of validations and cancellations, as a configured shop is."""
    shop = make_shop(session, key)
    shop.milestone_mappings.extend(
        [
            MilestoneMapping(milestone=Milestone.VALIDATED, shop_status="processing"),
            MilestoneMapping(milestone=Milestone.CANCELLED, shop_status="cancelled"),
        ]
    )
    session.flush()
    return shop


def run(session: Session, sessions: sessionmaker[Session], job: Job) -> Job:
    """Commit the queued job, let the worker run it, and read it back."""
    session.commit()
    assert queue.run_pending(sessions) == 1
    session.expire_all()
    return session.get_one(Job, job.id)


def events(session: Session, order: Order, kind: str) -> list[OrderEvent]:
    return list(
        session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id, OrderEvent.kind == kind)
        )
    )


def outbox(session: Session, order: Order) -> list[OutboxMessage]:
    return list(session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id)))


def test_hold_changes_the_orders_it_may_and_lists_the_others_with_their_reason(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = make_shop(db_session)
    first, second = make_order(db_session, shop), make_order(db_session, shop)
    shipped = make_order(db_session, shop, fulfilment_state=FulfilmentState.SHIPPED)
    held = make_order(db_session, shop, on_hold=True, hold_reason="Address check")
    missing_id = held.id + 1000
    ids = [first.id, shipped.id, second.id, held.id, missing_id]

    job = bulk.start_action(
        db_session, {"ids": ids}, "hold", reason="  Stock count  ", created_by_id=manager.id
    )
    job = run(db_session, session_factory, job)

    assert job.state == JobState.DONE
    assert (job.progress, job.total) == (5, 5)
    assert job.result["done"] == 2
    assert job.result["refused_count"] == 3
    assert job.result["refused"] == [
        {"id": shipped.id, "number": shipped.number, "reason": "the order is already shipped"},
        {"id": held.id, "number": held.number, "reason": "the order is already on hold"},
        {"id": missing_id, "number": "", "reason": "the order no longer exists"},
    ]
    for order in (first, second):
        db_session.refresh(order)
        assert order.on_hold and order.hold_reason == "Stock count"
        [event] = events(db_session, order, "order.held")
        assert event.actor_user_id == manager.id
    db_session.refresh(shipped)
    db_session.refresh(held)
    assert not shipped.on_hold
    assert held.hold_reason == "Address check"
    assert events(db_session, shipped, "order.held") == []


def test_validate_queues_the_milestone_for_the_shop_with_the_notify_choice(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = shop_with_milestones(db_session)
    orders = [make_order(db_session, shop) for _ in range(3)]
    cancelled = make_order(db_session, shop, commercial_state=CommercialState.CANCELLED)
    selection = {"ids": [order.id for order in [*orders, cancelled]]}

    job = bulk.start_action(
        db_session, selection, "validate", notify=False, created_by_id=manager.id
    )
    job = run(db_session, session_factory, job)

    assert job.result["done"] == 3
    assert [r["reason"] for r in job.result["refused"]] == ["the order is cancelled"]
    for order in orders:
        db_session.refresh(order)
        assert order.commercial_state == CommercialState.VALIDATED
        [message] = outbox(db_session, order)
        assert message.shop_id == shop.id
        assert message.payload["milestone"] == "validated"
        assert message.payload["status"] == "processing"
        assert message.payload["notify"] is False
        assert events(db_session, order, "order.validated")[0].actor_user_id == manager.id
    assert outbox(db_session, cancelled) == []


def test_cancel_every_order_matching_the_filters_resolved_when_the_job_runs(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = shop_with_milestones(db_session, "cancel-here")
    other = shop_with_milestones(db_session, "leave-alone")
    mine = [make_order(db_session, shop) for _ in range(2)]
    theirs = make_order(db_session, other)
    selection = bulk.select_orders([], {"shop": "cancel-here", "page": "3", "per_page": "1"})
    assert selection == {"filters": {"shop": "cancel-here"}}
    job = bulk.start_action(
        db_session, selection, "cancel", reason="Out of stock", created_by_id=manager.id
    )
    # Queued before it runs, so it is included: the filters are read by the worker.
    late = make_order(db_session, shop)

    job = run(db_session, session_factory, job)

    assert (job.result["done"], job.result["refused_count"]) == (3, 0)
    assert (job.progress, job.total) == (3, 3)
    for order in [*mine, late]:
        db_session.refresh(order)
        assert order.commercial_state == CommercialState.CANCELLED
        assert order.cancel_reason == "Out of stock"
        [message] = outbox(db_session, order)
        assert message.payload["milestone"] == "cancelled"
        assert message.payload["reason"] == "Out of stock"
    db_session.refresh(theirs)
    assert theirs.commercial_state == CommercialState.NEW


def test_a_failing_order_is_reported_and_the_others_still_change(
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shop = make_shop(db_session)
    good, bad, also_good = (make_order(db_session, shop) for _ in range(3))
    real_perform = order_actions.perform

    def flaky(session: Session, order: Order, action: str, *args: Any, **kwargs: Any) -> None:
        real_perform(session, order, action, *args, **kwargs)
        if order.id == bad.id:
            raise RuntimeError("disk full")

    monkeypatch.setattr(order_actions, "perform", flaky)
    selection = {"ids": [good.id, bad.id, also_good.id]}
    job = bulk.start_action(db_session, selection, "validate", created_by_id=manager.id)
    job = run(db_session, session_factory, job)

    assert job.state == JobState.DONE and job.attempts == 1
    assert job.result["done"] == 2
    assert job.result["refused"] == [
        {"id": bad.id, "number": bad.number, "reason": bulk.FAILED},
    ]
    states = {}
    for order in (good, bad, also_good):
        db_session.refresh(order)
        states[order.id] = order.commercial_state
    # The failed order's transaction was rolled back whole.
    assert states == {
        good.id: CommercialState.VALIDATED,
        bad.id: CommercialState.NEW,
        also_good.id: CommercialState.VALIDATED,
    }
    assert (job.progress, job.total) == (3, 3)


def test_a_comment_for_the_buyer_lands_on_every_order_and_goes_to_the_shop(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = make_shop(db_session)
    orders = [make_order(db_session, shop) for _ in range(2)]
    job = bulk.start_comment(
        db_session,
        {"ids": [order.id for order in orders]},
        " Your parcel leaves on Monday. ",
        "customer",
        notify=True,
        created_by_id=manager.id,
    )
    job = run(db_session, session_factory, job)

    assert (job.result["done"], job.progress, job.total) == (2, 2, 2)
    for order in orders:
        [comment] = db_session.scalars(select(Comment).where(Comment.order_id == order.id))
        assert comment.text == "Your parcel leaves on Monday."
        assert comment.author_id == manager.id and comment.notify_customer
        [message] = outbox(db_session, order)
        assert message.kind == "comment"
        assert events(db_session, order, "comment.customer")[0].actor_user_id == manager.id


def test_an_internal_comment_never_notifies_and_never_leaves(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    order = make_order(db_session, make_shop(db_session))
    job = bulk.start_comment(
        db_session,
        {"ids": [order.id]},
        "Fragile",
        "internal",
        notify=True,
        created_by_id=manager.id,
    )
    assert job.payload["notify"] is False
    run(db_session, session_factory, job)
    [comment] = db_session.scalars(select(Comment).where(Comment.order_id == order.id))
    assert not comment.notify_customer
    assert outbox(db_session, order) == []


@pytest.mark.parametrize(
    ("action", "reason", "field"),
    [("hold", "", "reason"), ("cancel", "   ", "reason"), ("hold", "x" * 501, "reason"),
     ("explode", "", "action")],
)  # fmt: skip
def test_an_action_without_its_reason_is_refused_before_anything_is_queued(
    db_session: Session, action: str, reason: str, field: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bulk.start_action(db_session, {"ids": [1]}, action, reason=reason)
    assert field in refused.value.errors
    assert db_session.scalars(select(Job)).all() == []


def test_the_selection_is_checked_before_anything_is_queued() -> None:
    assert bulk.select_orders(["3", "x", "1", "3"]) == {"ids": [3, 1]}
    with pytest.raises(ValidationFailed):
        bulk.select_orders(["", "abc"])
    with pytest.raises(ValidationFailed):
        bulk.select_orders([str(n) for n in range(1, bulk.MAX_SELECTION + 2)])


# --- Export -------------------------------------------------------------------------------


@pytest.fixture()
def export_shop(db_session: Session) -> Shop:
    """A shop with a few orders placed out of id order, lines and customers with accents."""
    shop = make_shop(db_session, "export-me")
    customer = make_customer(db_session, first_name="Zoé", last_name="Lefèvre")
    for hours in (5, 1, 3):
        make_order(
            db_session,
            shop,
            customer=customer,
            lines=[make_line("SKU-A", 2, "12.50"), make_line("SKU-B", 1, "3.00")],
            placed_at=BASE_TIME + dt.timedelta(hours=hours),
            payment_state=PaymentState.PAID,
        )
    make_order(db_session, make_shop(db_session, "not-exported"))
    return shop


def cli_export(app: Flask, fmt: str, shop_key: str) -> bytes:
    result = app.test_cli_runner().invoke(
        args=["orders", "export", "--format", fmt, "--shop", shop_key]
    )
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("by", ["filters", "ids"])
def test_the_export_file_holds_what_the_cli_prints_for_the_same_orders(
    app: Flask,
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    export_shop: Shop,
    tmp_path: Path,
    fmt: str,
    by: str,
) -> None:
    if by == "filters":
        selection = bulk.select_orders([], {"shop": export_shop.key})
    else:
        ids = db_session.scalars(
            select(Order.id).where(Order.shop_id == export_shop.id).order_by(Order.id.desc())
        )
        selection = bulk.select_orders([str(order_id) for order_id in ids])
    job = bulk.start_export(db_session, selection, fmt, tmp_path / "exports", manager.id)
    job = run(db_session, session_factory, job)

    assert job.state == JobState.DONE, job.error
    assert (job.progress, job.total, job.result["done"]) == (3, 3, 3)
    path = bulk.export_file(job)
    assert path is not None and path.parent == tmp_path / "exports"
    assert path.read_bytes() == cli_export(app, fmt, export_shop.key)
    assert bulk.download_name(job).endswith(f".{fmt}")
    assert list(path.parent.glob("*.part")) == []


def test_exports_older_than_a_day_are_removed_by_the_next_export(
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    export_shop: Shop,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "exports"
    selection = bulk.select_orders([], {"shop": export_shop.key})
    first = run(
        db_session,
        session_factory,
        bulk.start_export(db_session, selection, "csv", folder, manager.id),
    )
    old = bulk.export_file(first)
    assert old is not None
    day_and_a_bit = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=25)).timestamp()
    os.utime(old, (day_and_a_bit, day_and_a_bit))
    assert bulk.export_file(first) is None  # no longer offered

    second = run(
        db_session,
        session_factory,
        bulk.start_export(db_session, selection, "json", folder, manager.id),
    )
    assert not old.exists()
    assert bulk.export_file(second) is not None


def test_a_job_cut_off_by_a_restart_resumes_after_the_last_order_it_committed(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = make_shop(db_session)
    orders = [make_order(db_session, shop) for _ in range(5)]
    job = bulk.start_comment(
        db_session,
        {"ids": [o.id for o in orders]},
        "Colis en route",
        "internal",
        created_by_id=manager.id,
    )
    # What a run killed after its second order leaves behind: the list it resolved, the
    # first two comments and, committed with them, progress 2; the job still "running".
    for order in orders[:2]:
        comments.add_comment(db_session, order, Actor.for_user(manager), "Colis en route")
    job.payload = {**job.payload, "resolved_ids": [o.id for o in orders]}
    job.state = JobState.RUNNING
    job.progress, job.total, job.attempts = 2, 5, 1
    db_session.commit()

    assert queue.requeue_interrupted(session_factory) == 1
    assert queue.run_pending(session_factory) == 1

    db_session.expire_all()
    finished = db_session.get_one(Job, job.id)
    assert finished.state == JobState.DONE
    assert finished.result["done"] == 5 and finished.result["resumed_from"] == 2
    for order in orders:
        written = db_session.scalars(select(Comment).where(Comment.order_id == order.id)).all()
        assert [c.text for c in written] == ["Colis en route"]
