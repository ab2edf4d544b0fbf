"""The change probe: one light request for the ids and times changed since the cursor, and a
read of only the orders that changed (PrestaShop `display=[id,date_upd]`, Magento `fields=`),
against the loopback emulators, which record every request."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.services.test_shop_settings import order_copy
from tests.sync.test_magento_e2e import fixture as magento_fixture
from tests.sync.test_notifications_e2e import magento_shop
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED
from web.connectors import prestashop
from web.connectors.codec import encode_order
from web.models import InboxEvent, Order, Shop, SyncCursor
from web.models.enums import InboxState
from web.services import comments, intake, shop_settings, shops, sync
from web.services.sync import poll_shop, process_pending, run_sync
from web.services.timeline import Actor

ORDERS = ("101", "102", "103")


@pytest.fixture()
def presta(db_session: Session) -> Iterator[tuple[PrestaShopEmulator, Shop]]:
    with PrestaShopEmulator() as emulator:
        for name in RELATED:
            emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        for order_id in ORDERS:
            emulator.add_order((FIXTURES / f"fr-order-{order_id}.xml").read_bytes())  # type: ignore[attr-defined]
            emulator.update_order(order_id)  # type: ignore[attr-defined]
        shop = shops.create_shop(
            db_session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
        )
        db_session.commit()
        yield emulator, shop  # type: ignore[misc]


def tick(emulator: PrestaShopEmulator) -> None:
    """The shop's clock a second on: a change after the versions already read."""
    later = emulator.clock() + dt.timedelta(seconds=1)
    emulator.clock = lambda: later


def events(db_session: Session) -> int:
    return int(db_session.scalar(select(func.count()).select_from(InboxEvent)) or 0)


def order_reads(emulator: Any, prefix: str) -> list[str]:
    return sorted(r.path for r in emulator.requests if r.path.startswith(prefix))


def test_prestashop_probe_reads_only_the_order_that_changed(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    emulator, shop = presta
    first = run_sync(session_factory, shop.key).polls[0]
    assert not first.probed and first.stored == 3  # the first poll is a full one
    tick(emulator)
    emulator.update_order(102, current_state="6")
    emulator.requests.clear()
    result = poll_shop(session_factory, shop.id)
    assert result.probed and result.stored == 1 and not result.error
    [probe] = emulator.requests
    assert (probe.path, probe.arg("display"), probe.arg("date")) == (
        "/api/orders",
        "[id,date_upd]",
        "1",
    )
    assert probe.arg("sort") == "[date_upd_ASC,id_ASC]"
    assert (probe.arg("filter[date_upd]") or "").startswith(">[")
    event = db_session.scalars(select(InboxEvent).where(InboxEvent.topic == "probe/order")).one()
    assert event.external_order_id == "102" and event.dedupe_key.startswith("change:102:")
    emulator.requests.clear()
    process_pending(session_factory, shop.id)
    assert order_reads(emulator, "/api/orders/") == ["/api/orders/102"]
    db_session.expire_all()
    order = db_session.scalars(select(Order).where(Order.external_id == "102")).one()
    assert order.shop_status == "6"

    # Nothing changed since: one light request, nothing stored.
    emulator.requests.clear()
    before = events(db_session)
    quiet = poll_shop(session_factory, shop.id)
    assert quiet.probed and quiet.stored == 0
    assert [r.arg("display") for r in emulator.requests] == ["[id,date_upd]"]
    assert events(db_session) == before


def test_many_changes_go_to_the_full_poll(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, shop = presta
    run_sync(session_factory, shop.key)
    monkeypatch.setattr(sync, "PROBE_LIMIT", 1)  # 50 in production: two changes are many here
    tick(emulator)
    emulator.update_order(101, current_state="6")
    emulator.update_order(103, current_state="2")
    emulator.requests.clear()
    result = poll_shop(session_factory, shop.id)
    assert not result.probed and result.stored == 2
    displays = [r.arg("display") for r in emulator.requests if r.path == "/api/orders"]
    assert displays[:2] == ["[id,date_upd]", "full"]
    probed = db_session.scalars(select(InboxEvent).where(InboxEvent.topic == "probe/order"))
    assert list(probed) == []  # the probe stored nothing of its own


def test_the_full_poll_still_runs_every_reconcile_interval(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    run_sync(session_factory, shop.key)
    assert poll_shop(session_factory, shop.id).probed
    cursor = db_session.scalars(select(SyncCursor).where(SyncCursor.shop_id == shop.id)).one()
    assert cursor.reconciled_at is not None
    cursor.reconciled_at -= sync.RECONCILE_EVERY
    db_session.commit()
    assert not poll_shop(session_factory, shop.id).probed
    assert poll_shop(session_factory, shop.id).probed
    # "Sync now": a person asks to be sure.
    assert not run_sync(session_factory, shop.key, full=True).polls[0].probed


def test_a_prestashop_shop_is_due_every_30_seconds(
    presta: tuple[PrestaShopEmulator, Shop], db_session: Session
) -> None:
    _, shop = presta
    assert shop.poll_interval_seconds == 30
    now = dt.datetime.now(dt.UTC)
    cursor = sync.cursor_for(db_session, shop)
    cursor.last_run_at = now - dt.timedelta(seconds=29)
    assert shop.id not in sync.due_shops(db_session, now)
    cursor.last_run_at = now - dt.timedelta(seconds=30)
    assert shop.id in sync.due_shops(db_session, now)


def test_a_caller_that_runs_again_only_later_polls_a_shop_whose_interval_ends_before(
    presta: tuple[PrestaShopEmulator, Shop], db_session: Session
) -> None:
    """The poll function on AWS runs every 30 s at best, a little early or late: a shop due
    within its leeway is polled now rather than half a minute late."""
    _, shop = presta
    now = dt.datetime.now(dt.UTC)
    cursor = sync.cursor_for(db_session, shop)
    leeway = dt.timedelta(seconds=15)
    cursor.last_run_at = now - dt.timedelta(seconds=14)
    assert shop.id not in sync.due_shops(db_session, now, leeway)
    cursor.last_run_at = now - dt.timedelta(seconds=15)
    assert shop.id in sync.due_shops(db_session, now, leeway)
    assert shop.id not in sync.due_shops(db_session, now)


def test_a_half_tick_is_needed_while_an_active_shop_polls_more_often_than_the_schedule(
    presta: tuple[PrestaShopEmulator, Shop], db_session: Session
) -> None:
    _, shop = presta
    woo = shops.create_shop(db_session, "woocommerce", "Thés", "https://thes.example")
    woo.poll_interval_seconds = 60
    db_session.flush()
    assert sync.half_tick_needed(db_session, 60)  # the PrestaShop shop, every 30 s
    shop.is_active = False
    db_session.flush()
    assert not sync.half_tick_needed(db_session, 60)  # a minute is the schedule's own pace
    woo.poll_interval_seconds = 59
    db_session.flush()
    assert sync.half_tick_needed(db_session, 60)
    assert not sync.half_tick_needed(db_session, 59)


def test_magento_probe_asks_for_ids_and_times_only_and_reads_the_changed_order(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    with MagentoEmulator() as emulator:
        payload = magento_fixture("fr-order-relay-coupon.json")
        for entity_id in (1, 2, 3):
            emulator.add_order(  # type: ignore[attr-defined]
                {**payload, "entity_id": entity_id, "increment_id": f"00000100{entity_id}"}
            )
            emulator.update_order(entity_id)  # type: ignore[attr-defined]  # changed just now
        shop = magento_shop(db_session, emulator)  # type: ignore[arg-type]
        assert run_sync(session_factory, shop.key).polls[0].stored == 3
        emulator.update_order(2, status="complete")  # type: ignore[attr-defined]
        emulator.requests.clear()
        result = poll_shop(session_factory, shop.id)
        [probe] = emulator.requests
        emulator.requests.clear()
        process_pending(session_factory, shop.id)
        reads = order_reads(emulator, "/rest/V1/orders/")
    assert result.probed and result.stored == 1
    assert probe.path == "/rest/V1/orders"
    assert probe.arg("fields") == "items[entity_id,updated_at],total_count"
    assert set(reads) == {"/rest/V1/orders/2"}
    db_session.expire_all()
    order = db_session.scalars(select(Order).where(Order.external_id == "2")).one()
    assert order.shop_status == "complete"


# --- The full poll, the cursor and the sync loop ---------------------------------------------


def test_a_shop_with_an_import_date_is_first_read_from_the_start_of_that_day(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    emulator, shop = presta
    shop.import_from = dt.date(2026, 1, 10)
    db_session.commit()

    result = poll_shop(session_factory, shop.id)

    assert (result.error, result.stored) == ("", 3)
    [first, *_] = [r for r in emulator.requests if r.path == "/api/orders"]
    # Midnight UTC that day in the shop's own time (Paris, an hour ahead in January), asked
    # as "after the second before".
    assert first.arg("filter[date_upd]") == ">[2026-01-10 00:59:59]"


def test_the_full_poll_reads_every_page_and_says_how_many(
    presta: tuple[PrestaShopEmulator, Shop],
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, shop = presta
    monkeypatch.setattr(prestashop, "PAGE_SIZE", 2)  # 100 in production: three orders, two pages

    result = poll_shop(session_factory, shop.id)

    assert (result.pages, result.seen, result.stored, result.probed) == (2, 3, 3, False)


def test_a_probe_with_more_than_a_page_of_changes_goes_to_the_full_poll(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    emulator, shop = presta
    run_sync(session_factory, shop.key)
    monkeypatch.setattr(prestashop, "PAGE_SIZE", 2)
    tick(emulator)
    emulator.update_order(101, current_state="6")
    emulator.update_order(103, current_state="2")

    result = poll_shop(session_factory, shop.id)

    assert not result.probed and result.stored == 2
    probed = db_session.scalars(select(InboxEvent).where(InboxEvent.topic == "probe/order"))
    assert list(probed) == []


def test_probes_between_full_polls_do_not_put_off_the_next_full_poll(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    run_sync(session_factory, shop.key)
    cursor = db_session.scalars(select(SyncCursor).where(SyncCursor.shop_id == shop.id)).one()
    full_at = cursor.reconciled_at
    assert full_at is not None

    probe_at = full_at + dt.timedelta(minutes=4)
    assert poll_shop(session_factory, shop.id, now=probe_at).probed
    db_session.expire_all()
    assert cursor.reconciled_at == full_at

    later = full_at + sync.RECONCILE_EVERY + dt.timedelta(seconds=1)
    assert not poll_shop(session_factory, shop.id, now=later).probed


def test_a_backfill_does_not_count_as_the_full_poll(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    run_sync(session_factory, shop.key)
    cursor = db_session.scalars(select(SyncCursor).where(SyncCursor.shop_id == shop.id)).one()
    full_at = cursor.reconciled_at
    assert full_at is not None

    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    poll_shop(session_factory, shop.id, since=since, backfill=True, now=full_at + sync.OVERLAP)
    db_session.expire_all()

    assert cursor.reconciled_at == full_at


def test_a_failed_poll_is_logged_and_shown_until_a_poll_succeeds(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulator, shop = presta
    emulator.fail_next(503)

    with caplog.at_level(logging.WARNING, logger="web.services.sync"):
        failed = poll_shop(session_factory, shop.id)

    assert failed.error.startswith("PlatformUnavailable: ") and failed.stored == 0
    [record] = [r for r in caplog.records if r.name == "web.services.sync"]
    assert record.getMessage() == f"poll of shop {shop.key} failed: {failed.error}"
    cursor = db_session.scalars(select(SyncCursor).where(SyncCursor.shop_id == shop.id)).one()
    assert cursor.last_error == failed.error

    assert poll_shop(session_factory, shop.id).stored == 3
    db_session.expire_all()
    assert cursor.last_error == ""


def test_the_inbox_is_worked_up_to_the_limit_asked_and_says_how_many_it_tried(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    poll_shop(session_factory, shop.id)

    assert process_pending(session_factory, shop.id, limit=2) == 2
    assert [o.external_id for o in db_session.scalars(select(Order))] == ["101", "102"]
    # The third order, then the three orders' payments read from the shop (follow-ups).
    assert process_pending(session_factory, shop.id) == 4
    db_session.expire_all()
    states = db_session.scalars(select(InboxEvent.state)).all()
    assert states == [InboxState.PROCESSED] * 6


def test_syncing_every_shop_polls_each_active_one_even_before_it_is_due(
    presta: tuple[PrestaShopEmulator, Shop],
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    run_sync(session_factory, shop.key)
    assert run_sync(session_factory).polls == []  # polled just now: not due

    report = run_sync(session_factory, poll_all=True)

    assert [poll.shop_key for poll in report.polls] == [shop.key]


def other_shops_delivery(session: Session) -> InboxEvent:
    """An order of another shop waiting in the inbox."""
    other = shops.create_shop(session, "woocommerce", "Thés", "https://thes.example")
    copy = order_copy("9001")
    body = encode_order(copy)
    key = sync.poll_dedupe_key(copy.external_id, copy.updated_at, body)
    received = intake.store_event(session, other, intake.POLL_TOPIC, key, "9001", body, {})
    session.commit()
    assert received.event is not None
    return received.event


def test_syncing_one_shop_leaves_the_other_shops_deliveries_waiting(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    waiting = other_shops_delivery(db_session)

    report = run_sync(session_factory, shop.key)

    assert report.processed == 6  # three orders, then their payments read from the shop
    db_session.expire_all()
    assert waiting.state == InboxState.PENDING and waiting.attempts == 0


def test_a_backfill_imports_the_shops_orders_and_reports_them_leaving_other_shops_alone(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    waiting = other_shops_delivery(db_session)
    job = shop_settings.start_backfill(db_session, shop, "2026-01-05", today=dt.date(2026, 3, 2))
    db_session.commit()

    outcome = sync.backfill_job(db_session, job, session_factory)

    # Processed: the three orders, then the payments of the two still open read from the
    # shop; 103 is closed there, and a backfill imports open orders, not the shop's history.
    assert outcome == {"seen": 3, "stored": 3, "processed": 5, "error": ""}
    imported = db_session.scalars(select(Order.external_id).where(Order.shop_id == shop.id))
    assert sorted(imported) == ["101", "102"]
    db_session.expire_all()
    assert waiting.state == InboxState.PENDING and waiting.attempts == 0


def test_work_is_due_while_a_message_for_a_shop_waits(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    run_sync(session_factory, shop.key)
    assert not sync.work_due(session_factory)
    order = db_session.scalars(select(Order).where(Order.external_id == "101")).one()
    comments.add_comment(db_session, order, Actor.system("test"), "Colis parti.", "customer")
    db_session.commit()

    assert sync.work_due(session_factory)


def test_an_unreadable_order_of_a_page_is_parked_alone_and_the_page_flows(
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    emulator, shop = presta
    # Its date_upd kept: the page lists orders by it, so the order stays second of the three.
    unchanged = emulator.data["orders"][102]["date_upd"]  # type: ignore[attr-defined]
    emulator.update_order(102, date_add="2026-13-45 10:00:00", date_upd=unchanged)

    result = poll_shop(session_factory, shop.id)

    assert (result.seen, result.stored, result.rejected) == (2, 2, 1)
    parked = db_session.scalars(select(InboxEvent).where(InboxEvent.state == InboxState.PARKED))
    [event] = parked.all()
    assert (event.shop_id, event.external_order_id) == (shop.id, "102")
    assert event.error.startswith("orders[1].date_add: ")
    assert (event.cause_kind, event.cause_params) == ("unreadable", {"detail": event.error})
    assert b"<reference>" in event.raw_body  # the order as the shop sent it, to look into
