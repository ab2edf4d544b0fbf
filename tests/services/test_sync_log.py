"""The sync log rules: filters and pages, readable payloads, replay and ignore, late cursors."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests.factories import NOW, make_event, make_order, make_shop
from web.models import InboxEvent, OrderEvent, Shop, SyncCursor
from web.models.enums import ActorType, InboxState
from web.services import intake, sync_log
from web.services.errors import NotFound, ValidationFailed
from web.services.timeline import Actor


@pytest.fixture()
def lyon(db_session: Session) -> Shop:
    return make_shop(db_session, "lyon", name="Boutique Lyon")


# --- Listing ---------------------------------------------------------------------------------


def test_filters_are_read_from_the_query_and_bad_values_refused() -> None:
    filters, refused = sync_log.parse_filters(
        {"shop": "lyon", "state": "parked", "topic": "orders/paid", "page": "2"}
    )
    assert filters == sync_log.EventFilters("lyon", InboxState.PARKED, "orders/paid", 2)
    assert filters.args() == {"shop": "lyon", "state": "parked", "topic": "orders/paid"}
    filters, refused = sync_log.parse_filters({"state": "exploded", "page": "-1"})
    assert filters == sync_log.EventFilters()
    assert set(refused) == {"state", "page"}


@pytest.mark.parametrize("page", ["0", "²", "٣x", "1" * 5000, "2000000", "1.5"])
def test_a_page_that_is_no_page_number_is_refused(page: str) -> None:
    filters, refused = sync_log.parse_filters({"page": page})
    assert filters.page == 1 and set(refused) == {"page"}


def test_list_filters_by_shop_state_and_topic_newest_first(db_session: Session, lyon: Shop) -> None:
    paris = make_shop(db_session, "paris")
    old = make_event(db_session, lyon, state=InboxState.PARKED, minutes_ago=30)
    new = make_event(db_session, lyon, state=InboxState.PARKED, minutes_ago=1)
    make_event(db_session, lyon, topic="orders/paid")
    make_event(db_session, paris, state=InboxState.PARKED)

    def listed(**filters: object) -> list[InboxEvent]:
        return sync_log.list_events(db_session, sync_log.EventFilters(**filters)).items  # type: ignore[arg-type]

    assert listed(shop="lyon", state=InboxState.PARKED) == [new, old]
    assert [e.topic for e in listed(topic="orders/paid")] == ["orders/paid"]
    assert len(listed()) == 4
    assert listed(shop="nowhere") == []
    assert sync_log.topics(db_session) == ["orders/paid", "orders/updated"]


def test_pages_stop_at_the_last_one(db_session: Session, lyon: Shop) -> None:
    for minutes in range(5):
        make_event(db_session, lyon, minutes_ago=minutes)
    page = sync_log.list_events(db_session, sync_log.EventFilters(page=9), per_page=2)
    assert (page.total, page.pages, page.page, len(page.items)) == (5, 3, 3, 1)
    assert page.has_prev and not page.has_next


# --- One event -------------------------------------------------------------------------------


def test_json_payloads_are_pretty_printed(db_session: Session, lyon: Shop) -> None:
    event = make_event(db_session, lyon, body='{"note":"Merci, à bientôt","id":7}'.encode())
    payload = sync_log.payload_view(event)
    assert payload.kind == "json" and not payload.truncated
    assert payload.text == '{\n  "note": "Merci, à bientôt",\n  "id": 7\n}'


def test_xml_payloads_are_shown_as_text(db_session: Session, lyon: Shop) -> None:
    body = b'<?xml version="1.0"?><prestashop><order><id>5</id></order></prestashop>'
    payload = sync_log.payload_view(make_event(db_session, lyon, body=body))
    assert (payload.kind, payload.text) == ("xml", body.decode())


def test_big_payloads_are_cut_at_the_cap(db_session: Session, lyon: Shop) -> None:
    body = json.dumps({"items": ["é" * 100] * 3000}).encode()
    payload = sync_log.payload_view(make_event(db_session, lyon, body=body), cap=10_000)
    assert payload.truncated and payload.size == len(body)
    assert len(payload.text.encode()) <= 10_000
    binary = sync_log.payload_view(make_event(db_session, lyon, body=b"\xff\xfe\x00bin"))
    assert binary.kind == "binary" and not binary.truncated


def test_replay_puts_the_event_back_in_the_inbox_and_notes_it_on_the_order(
    db_session: Session, lyon: Shop
) -> None:
    order = make_order(db_session, lyon)
    event = make_event(
        db_session,
        lyon,
        state=InboxState.FAILED,
        external_order_id=order.external_id,
        error="PlatformUnavailable: timed out",
    )
    sync_log.replay(db_session, event, Actor.system("test"))
    assert (event.state, event.attempts, event.next_attempt_at) == (InboxState.PENDING, 0, None)
    note = db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "inbox.replayed")).one()
    assert note.order_id == order.id and note.actor_type == ActorType.SYSTEM


def test_ignore_sets_an_event_aside_but_never_an_applied_one(
    db_session: Session, lyon: Shop
) -> None:
    parked = make_event(db_session, lyon, state=InboxState.PARKED)
    assert sync_log.ignore(db_session, parked).state == InboxState.IGNORED
    assert sync_log.replay(db_session, parked).state == InboxState.PENDING
    processed = make_event(db_session, lyon, state=InboxState.PROCESSED)
    with pytest.raises(ValidationFailed):
        sync_log.ignore(db_session, processed)
    rejected = make_event(db_session, lyon, topic="rejected", state=InboxState.REJECTED)
    with pytest.raises(ValidationFailed):
        sync_log.replay(db_session, rejected)
    assert sync_log.ignore(db_session, rejected).state == InboxState.IGNORED


# --- Cursors ---------------------------------------------------------------------------------


def test_a_flow_is_late_after_three_poll_intervals_or_on_error(
    db_session: Session, lyon: Shop
) -> None:
    lyon.poll_interval_seconds = 300
    fresh = NOW - dt.timedelta(minutes=14)
    stale = NOW - dt.timedelta(minutes=16)
    assert not sync_log.is_late(lyon, fresh, "", NOW)
    assert sync_log.is_late(lyon, stale, "", NOW)
    assert sync_log.is_late(lyon, fresh, "AuthFailed: 401", NOW)
    lyon.is_active = False
    assert not sync_log.is_late(lyon, stale, "AuthFailed: 401", NOW)


def test_cursor_rows_cover_every_shop(db_session: Session, lyon: Shop) -> None:
    quiet = make_shop(db_session, "quiet", name="Atelier calme", created_at=NOW)
    db_session.add(
        SyncCursor(
            shop=lyon,
            flow="orders",
            position="2026-03-02T11:00:00+00:00",
            last_run_at=NOW,
            last_success_at=NOW - dt.timedelta(hours=2),
        )
    )
    db_session.flush()
    rows = {row.shop.key: row for row in sync_log.cursors(db_session, now=NOW)}
    assert rows["lyon"].is_late and rows["lyon"].position.startswith("2026-03-02T11")
    # Created a moment ago and never polled: not late yet.
    assert rows["quiet"].last_success_at is None and not rows["quiet"].is_late
    assert quiet.id == rows["quiet"].shop.id


def test_binary_payloads_are_shown_as_latin_1_cut_at_the_cap(
    db_session: Session, lyon: Shop
) -> None:
    binary = make_event(db_session, lyon, body=b"\xff\xfe\x00bin")
    assert sync_log.payload_view(binary) == sync_log.Payload("binary", "ÿþ\x00bin", 6, False)
    assert sync_log.payload_view(binary, cap=6) == sync_log.Payload("binary", "ÿþ\x00bin", 6, False)
    assert sync_log.payload_view(binary, cap=5) == sync_log.Payload("binary", "ÿþ\x00bi", 6, True)


def test_a_json_body_after_blank_lines_is_still_pretty_printed(
    db_session: Session, lyon: Shop
) -> None:
    spaced = make_event(db_session, lyon, body=b'\n  {"id":7}')
    payload = sync_log.payload_view(spaced)
    assert (payload.kind, payload.text) == ("json", '{\n  "id": 7\n}')


def test_the_order_of_a_delivery_applied_to_it_is_the_one_it_names(
    db_session: Session, lyon: Shop
) -> None:
    order = make_order(db_session, lyon)
    delivery = make_event(db_session, lyon, external_order_id="not-its-id")
    delivery.order_id = order.id
    db_session.flush()
    assert sync_log.order_of(db_session, delivery) == order
    assert sync_log.get_event(db_session, delivery.id) == delivery
    with pytest.raises(NotFound, match="no inbox event 999999"):
        sync_log.get_event(db_session, 999_999)


def test_refusals_say_why_on_the_event_field(db_session: Session, lyon: Shop) -> None:
    processed = make_event(db_session, lyon, state=InboxState.PROCESSED)
    with pytest.raises(ValidationFailed) as refused:
        sync_log.ignore(db_session, processed)
    applied = "This delivery was already applied; replay it or leave it."
    assert (str(refused.value), refused.value.errors) == (applied, {"event": applied})

    purged = make_event(db_session, lyon, state=InboxState.PROCESSED, body=b"")
    purged.headers = {intake.PURGED_HEADER: "90"}
    with pytest.raises(ValidationFailed) as refused:
        sync_log.replay(db_session, purged)
    gone = "This delivery's body was purged: there is nothing left to apply."
    assert (str(refused.value), refused.value.errors) == (gone, {"event": gone})
    assert purged.state == InboxState.PROCESSED


def test_a_page_of_events_reads_their_shops_in_the_same_query(
    db_session: Session, lyon: Shop
) -> None:
    paris = make_shop(db_session, "paris", name="Atelier Paris")
    for shop in (lyon, paris, lyon):
        make_event(db_session, shop, state=InboxState.FAILED)
    db_session.commit()
    db_session.expire_all()
    statements: list[str] = []

    def record(*args: object) -> None:
        statements.append(str(args[2]))

    engine = db_session.get_bind().engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        page = sync_log.list_events(db_session, sync_log.EventFilters())
        names = sorted(e.shop.name for e in page.items)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert names == ["Atelier Paris", "Boutique Lyon", "Boutique Lyon"]
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 2  # the count, then the page with its shops
