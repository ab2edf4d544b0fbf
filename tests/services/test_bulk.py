"""Bulk jobs run by the worker against real orders: changes, refusals, progress and exports."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.factories import BASE_TIME, make_customer, make_line, make_order, make_shop
from web import queue
from web.db import make_engine
from web.models import (
    Comment,
    Document,
    Job,
    MilestoneMapping,
    OrderEvent,
    OutboxMessage,
    Shop,
    User,
)
from web.models.enums import (
    CommercialState,
    DocumentKind,
    DocumentState,
    FulfilmentState,
    JobState,
    Milestone,
    PaymentState,
    Role,
)
from web.models.orders import Order
from web.services import bulk, comments, export, payments, shipments
from web.services.errors import ValidationFailed
from web.services.paging import MAX_ID
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor
from web.services.users import create_user


@pytest.fixture()
def manager(make_user: Callable[..., User]) -> User:
    return make_user(Role.MANAGER)


FailSaving = Callable[[int, BaseException], Callable[[], None]]


@pytest.fixture()
def fail_saving() -> Iterator[FailSaving]:
    """Make saving a change to one order raise `error`, below Comptoir: in SQLAlchemy's flush.

    Returns a function that stops it; it stops anyway at the end of the test.
    """
    listeners: list[Callable[..., None]] = []

    def stop(listener: Callable[..., None]) -> None:
        if event.contains(Session, "before_flush", listener):
            event.remove(Session, "before_flush", listener)

    def fail(order_id: int, error: BaseException) -> Callable[[], None]:
        def before_flush(session: Session, _context: object, _instances: object) -> None:
            if any(isinstance(item, Order) and item.id == order_id for item in session.dirty):
                raise error

        event.listen(Session, "before_flush", before_flush)
        listeners.append(before_flush)
        return lambda: stop(before_flush)

    yield fail
    for listener in listeners:
        stop(listener)


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


def test_cancel_every_order_matching_the_filters_among_those_the_list_had(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = shop_with_milestones(db_session, "cancel-here")
    other = shop_with_milestones(db_session, "leave-alone")
    mine = [make_order(db_session, shop) for _ in range(2)]
    theirs = make_order(db_session, other)
    shown_upto = theirs.id  # the newest order when the list was shown
    # Arrived after the list was shown, before the person pressed the button.
    unseen = make_order(db_session, shop)
    args = {"shop": "cancel-here", "page": "3", "per_page": "1", "upto": str(shown_upto)}
    selection = bulk.select_orders(db_session, [], args)
    assert selection == {"filters": {"shop": "cancel-here"}, "upto": shown_upto}
    job = bulk.start_action(
        db_session, selection, "cancel", reason="Out of stock", created_by_id=manager.id
    )
    # Arrived after the job was queued: not seen either.
    late = make_order(db_session, shop)

    job = run(db_session, session_factory, job)

    assert (job.result["done"], job.result["refused_count"]) == (2, 0)
    assert (job.progress, job.total) == (2, 2)
    for order in mine:
        db_session.refresh(order)
        assert order.commercial_state == CommercialState.CANCELLED
        assert order.cancel_reason == "Out of stock"
        [message] = outbox(db_session, order)
        assert message.payload["milestone"] == "cancelled"
        assert message.payload["reason"] == "Out of stock"
    for order in (theirs, unseen, late):
        db_session.refresh(order)
        assert order.commercial_state == CommercialState.NEW
        assert outbox(db_session, order) == []


def test_all_matching_without_the_lists_newest_id_means_those_there_at_submit(
    db_session: Session, session_factory: sessionmaker[Session], manager: User
) -> None:
    shop = make_shop(db_session, "no-upto")
    there = [make_order(db_session, shop) for _ in range(2)]
    for upto in (None, "", "²", "-3", str(MAX_ID + 1)):
        args = {"shop": "no-upto"} if upto is None else {"shop": "no-upto", "upto": upto}
        assert bulk.select_orders(db_session, [], args)["upto"] == there[-1].id
    selection = bulk.select_orders(db_session, [], {"shop": "no-upto"})
    job = bulk.start_action(db_session, selection, "validate", created_by_id=manager.id)
    late = make_order(db_session, shop)
    job = run(db_session, session_factory, job)
    assert job.result["done"] == 2
    db_session.refresh(late)
    assert late.commercial_state == CommercialState.NEW


def test_all_matching_is_refused_above_the_cap_or_when_nothing_matches(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = make_shop(db_session, "capped")
    orders = [make_order(db_session, shop) for _ in range(3)]
    monkeypatch.setattr(bulk, "MAX_SELECTION", 2)
    with pytest.raises(ValidationFailed) as refused:
        bulk.select_orders(db_session, [], {"shop": "capped", "upto": str(orders[-1].id)})
    assert list(refused.value.errors) == ["scope"]
    # Up to the second order, two match: within the cap.
    upto = str(orders[1].id)
    assert bulk.select_orders(db_session, [], {"shop": "capped", "upto": upto})["upto"] == int(upto)
    with pytest.raises(ValidationFailed):
        bulk.select_orders(db_session, [], {"shop": "capped", "upto": "0"})
    assert db_session.scalars(select(Job)).all() == []


def test_a_failing_order_is_reported_and_the_others_still_change(
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    fail_saving: FailSaving,
) -> None:
    shop = make_shop(db_session)
    good, bad, also_good = (make_order(db_session, shop) for _ in range(3))
    db_session.commit()
    fail_saving(bad.id, OperationalError("UPDATE orders", {}, Exception("disk full")))
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


def test_the_selection_is_checked_before_anything_is_queued(db_session: Session) -> None:
    chosen = ["3", "x", "1", "3", "²", "0", "-2", str(MAX_ID + 1), "9" * 5000]
    assert bulk.select_orders(db_session, chosen) == {"ids": [3, 1]}
    with pytest.raises(ValidationFailed):
        bulk.select_orders(db_session, ["", "abc", "²"])
    with pytest.raises(ValidationFailed):
        bulk.select_orders(db_session, [str(n) for n in range(1, bulk.MAX_SELECTION + 2)])


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
        selection = bulk.select_orders(db_session, [], {"shop": export_shop.key})
    else:
        ids = db_session.scalars(
            select(Order.id).where(Order.shop_id == export_shop.id).order_by(Order.id.desc())
        )
        selection = bulk.select_orders(db_session, [str(order_id) for order_id in ids])
    job = bulk.start_export(db_session, selection, fmt, tmp_path / "exports", manager.id)
    job = run(db_session, session_factory, job)

    assert job.state == JobState.DONE, job.error
    assert (job.progress, job.total, job.result["done"]) == (3, 3, 3)
    kept = bulk.export_file(job)
    assert kept is not None and kept.path is not None and kept.url is None
    path = kept.path
    assert path.parent == tmp_path / "exports"
    assert path.read_bytes() == cli_export(app, fmt, export_shop.key)
    assert bulk.download_name(job).endswith(f".{fmt}")
    assert list(path.parent.glob("*.part")) == []


def test_the_json_record_names_every_field_of_the_order_and_what_hangs_on_it(
    db_session: Session,
) -> None:
    """The field names the API follows (api_schema): an integrator's parser reads these."""
    modes = ensure_default_shipping_modes(db_session)
    order = make_order(
        db_session,
        make_shop(db_session, "records"),
        [make_line("MUG", 2, "12.50"), make_line("TEA", 1, "3.00")],
        commercial_state=CommercialState.VALIDATED,
        shipping_mode=modes["colissimo"],
        discount_total=Decimal("2.50"),
        discount_codes=["BIENVENUE"],
        discounts=[{"code": "BIENVENUE", "amount": "2.50"}],
        billing_address={"last_name": "Lefèvre", "city": "Lyon"},
        shipping_address={"last_name": "Lefèvre", "city": "Paris"},
    )
    actor = Actor.system("test")
    payments.record_manual(
        db_session, order, actor, kind="payment", source="bank_transfer", amount="28.00",
        reference="VIR-7",
    )  # fmt: skip
    mug, tea = order.lines
    first = shipments.create_shipment(db_session, order, actor, {mug.id: 2}, ship=True)
    second = shipments.ship_everything(db_session, order, actor, "6A1")
    second.pushed_at = BASE_TIME
    db_session.add(
        Document(
            order=order,
            kind=DocumentKind.DELIVERY_NOTE,
            state=DocumentState.ISSUED,
            series="BL-2026",
            number=1,
            reference="BL-2026-T1",
            issue_date=BASE_TIME.date(),
            shipment_id=second.id,
        )
    )
    db_session.flush()
    db_session.refresh(order)

    record = export.order_record(order)
    assert {"billing_address", "shipping_address", "discount_codes", "documents"} <= set(record)
    assert record["discount_total"] == "2.50" and record["discount_codes"] == ["BIENVENUE"]
    assert record["discounts"] == [{"code": "BIENVENUE", "label": "", "amount": "2.50"}]
    assert (record["billing_address"]["city"], record["shipping_address"]["city"]) == (
        "Lyon",
        "Paris",
    )
    [tx] = order.transactions
    assert record["transactions"] == [
        {
            "id": tx.id,
            "external_id": tx.external_id,
            "kind": "sale",
            "status": "success",
            "source": "bank_transfer",
            "method": tx.method,
            "amount": "28.00",
            "currency": "EUR",
            "occurred_at": export.when(tx.occurred_at),
            "reference": "VIR-7",
        }
    ]
    by_id = {item["id"]: item for item in record["shipments"]}
    assert set(by_id[first.id]) == {
        "id", "order_id", "number", "state", "shipping_mode", "origin", "created_at",
        "shipped_at", "delivered_at", "cancelled_at", "cancel_reason", "pushed_at", "lines",
        "parcels", "delivery_note",
    }  # fmt: skip
    assert by_id[first.id]["number"] == first.number
    assert by_id[first.id]["shipped_at"] == export.when(first.shipped_at) is not None
    assert by_id[first.id]["lines"] == [{"line_id": mug.id, "order_line_id": mug.id, "quantity": 2}]
    assert by_id[first.id]["delivery_note"] is None  # the note is the other shipment's
    assert by_id[second.id]["pushed_at"] == export.when(BASE_TIME)
    [note] = [d for d in order.documents if d.kind == DocumentKind.DELIVERY_NOTE]
    assert by_id[second.id]["delivery_note"] == {"id": note.id, "reference": "BL-2026-T1"}
    assert record["documents"] == [
        {"id": note.id, "kind": "delivery_note", "reference": "BL-2026-T1"}
    ]


def test_an_order_without_lines_is_one_csv_row_and_progress_is_told_every_200(
    db_session: Session,
) -> None:
    shop = make_shop(db_session, "empty-orders")
    for _ in range(export.BATCH):
        make_order(db_session, shop, lines=[])
    out = io.StringIO()
    told: list[int] = []
    assert export.export_csv(db_session, out, shop.key, progress=told.append) == 200
    assert told == [200]
    rows = list(csv.DictReader(io.StringIO(out.getvalue())))
    assert len(rows) == 200
    line_columns = [name for name in export.CSV_COLUMNS if name.startswith("line_")]
    assert {rows[0][name] for name in line_columns} == {""}
    assert rows[0]["shipments"] == "" and rows[0]["shop"] == "empty-orders"


def test_the_json_export_keeps_accents_as_they_are(
    app: Flask, db_session: Session, export_shop: Shop
) -> None:
    db_session.commit()
    assert "Zoé Lefèvre".encode() in cli_export(app, "json", export_shop.key)


def test_exports_older_than_a_day_are_removed_by_the_next_export(
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    export_shop: Shop,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "exports"
    selection = bulk.select_orders(db_session, [], {"shop": export_shop.key})
    first = run(
        db_session,
        session_factory,
        bulk.start_export(db_session, selection, "csv", folder, manager.id),
    )
    kept = bulk.export_file(first)
    assert kept is not None and kept.path is not None
    old = kept.path
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


class Killed(BaseException):
    """The worker's process stopping mid-job: nothing in Comptoir catches it."""


@pytest.fixture()
def own_database(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database of their own, whose commits are real: a worker cut off in the
    middle of a job keeps what it committed, as in production (the test connection's
    savepoints would undo it with the worker's rolled-back session)."""
    url = separate_database_url(tmp_path, "bulk_resume")
    engine = make_engine(url)
    reset_schema(engine)
    migrate(url)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_a_resumed_job_keeps_the_first_runs_refusals_and_counts_right(
    own_database: sessionmaker[Session], fail_saving: FailSaving
) -> None:
    sessions = own_database
    with sessions.begin() as session:
        manager, _password = create_user(session, "chef@example.com", Role.MANAGER)
        shop = make_shop(session)
        shipped = make_order(session, shop, fulfilment_state=FulfilmentState.SHIPPED)
        first, cut, last = (make_order(session, shop) for _ in range(3))
        ids = [shipped.id, first.id, cut.id, last.id]
        job_id = bulk.start_action(
            session, {"ids": ids}, "hold", reason="Inventaire", created_by_id=manager.id
        ).id
    # The first run refuses the shipped order, holds the next one, and dies on the third.
    stop = fail_saving(cut.id, Killed())
    with pytest.raises(Killed):
        queue.run_pending(sessions)
    stop()
    with sessions() as session:
        cut_off = session.get_one(Job, job_id)
        assert (cut_off.state, cut_off.progress, cut_off.total) == (JobState.RUNNING, 2, 4)
        assert cut_off.result["refused_count"] == 1

    assert queue.requeue_interrupted(sessions) == 1
    assert queue.run_pending(sessions) == 1

    with sessions() as session:
        finished = session.get_one(Job, job_id)
        assert finished.state == JobState.DONE and finished.result["resumed_from"] == 2
        assert (finished.result["done"], finished.result["refused_count"]) == (3, 1)
        assert finished.result["refused"] == [
            {"id": shipped.id, "number": shipped.number, "reason": "the order is already shipped"}
        ]
        for order_id in ids[1:]:
            order = session.get_one(Order, order_id)
            assert order.on_hold and len(events(session, order, "order.held")) == 1


def test_refusals_say_what_to_choose_on_their_field(db_session: Session, tmp_path: Path) -> None:
    with pytest.raises(ValidationFailed) as refused:
        bulk.start_action(db_session, {"ids": [1]}, "teleport")
    message = "Choose what to do with the orders."
    assert (str(refused.value), refused.value.errors) == (message, {"action": message})
    with pytest.raises(ValidationFailed) as refused:
        bulk.start_export(db_session, {"ids": [1]}, "xlsx", tmp_path)
    message = "Choose CSV, JSON or the delivery notes."
    assert (str(refused.value), refused.value.errors) == (message, {"format": message})
    with pytest.raises(ValidationFailed) as refused:
        bulk.select_orders(db_session, ["none"])
    message = "Select at least one order."
    assert (str(refused.value), refused.value.errors) == (message, {"ids": message})
    assert db_session.scalars(select(Job)).all() == []


def test_a_job_whose_user_is_gone_fails_saying_so(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    order = make_order(db_session, shop_with_milestones(db_session))
    job = bulk.start_action(db_session, {"ids": [order.id]}, "hold", reason="stock")
    db_session.commit()
    queue.run_pending(session_factory)  # tried again, failing each time
    db_session.expire_all()
    job = db_session.get_one(Job, job.id)
    assert job.state == JobState.FAILED
    assert job.error == f"NotFound: job {job.id} has no user to act as"


def test_invoices_are_queued_in_the_name_of_who_asked(db_session: Session, manager: User) -> None:
    job = bulk.start_invoices(db_session, {"ids": [1, 2]}, manager.id)
    assert (job.kind, job.created_by_id) == (bulk.INVOICE_JOB, manager.id)
    assert job.payload == {"selection": {"ids": [1, 2]}, "action": "invoice"}


def test_the_delivery_notes_export_lists_the_orders_without_one(
    db_session: Session,
    session_factory: sessionmaker[Session],
    manager: User,
    export_shop: Shop,
    tmp_path: Path,
) -> None:
    orders = db_session.scalars(
        select(Order).where(Order.shop_id == export_shop.id).order_by(Order.id)
    ).all()
    selection = bulk.select_orders(db_session, [str(order.id) for order in orders])
    job = bulk.start_export(db_session, selection, "pdf", tmp_path / "exports", manager.id)
    job = run(db_session, session_factory, job)

    assert job.state == JobState.DONE, job.error
    assert (job.progress, job.total) == (3, 3)
    assert job.result == {
        "total": 3,
        "done": 0,
        "documents": 0,
        "file": f"orders-{job.id}.pdf",
        "refused_count": 3,
        "refused": [
            {"id": order.id, "number": order.number, "reason": bulk.NO_DELIVERY_NOTE}
            for order in orders
        ],
    }
    kept = bulk.export_file(job)
    assert kept is not None and kept.path == tmp_path / "exports" / f"orders-{job.id}.pdf"
    assert kept.path.read_bytes().startswith(b"%PDF")
