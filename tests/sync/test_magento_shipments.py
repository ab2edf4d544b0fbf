"""Magento shipments both ways, through the real outbox dispatcher and the real poll.

The order comes in from the loopback store through the poll; shipments are made with the
real services and reach the store through `outbox.dispatch_due`; the store's own shipments
come back through `run_sync`. Faults come from the emulator: a 503 before the write, and a
write applied whose answer was lost.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.base import RecordedRequest
from tests.emulators.magento import MagentoEmulator
from web.models import CarrierMapping, OutboxMessage, Shop, utcnow
from web.models.enums import FulfilmentState, OutboxState, ShipmentOrigin, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import outbox, shipments, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync
from web.services.timeline import Actor

FIXTURE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "fr-order-relay-coupon.json"
)
LABEL = "Mondial Relay - Livraison en Point Relais"
ORDER = 1042
LINE_A = 1201  # a book, 1 ordered
LINE_B = 1202  # a configurable tablecloth, 2 ordered (its simple child 1203 ships with it)
PERSON = Actor.system("test")
SHIP = "/rest/V1/order/1042/ship"


@pytest.fixture()
def emulator() -> Iterator[MagentoEmulator]:
    with MagentoEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: MagentoEmulator) -> Shop:
    shop = shops.create_shop(
        db_session, "magento", "Papeterie", emulator.base_url, api_key=emulator.token
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(shop_label=LABEL, shipping_mode=modes["mondial_relay"])
    )
    db_session.commit()
    return shop


@pytest.fixture()
def order(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    shop: Shop,
) -> Order:
    """The paid, invoiced order polled in from the store; nothing written to it yet."""
    stored = emulator.add_order(json.loads(FIXTURE.read_text()))
    emulator.update_order(stored["entity_id"])  # changed just now, so the poll reads it
    report = run_sync(session_factory, shop.key)
    assert report.polls[0].stored == 1, report.polls[0].error
    assert emulator.writes() == []
    emulator.requests.clear()
    return db_session.scalars(select(Order)).one()


def line_id(order: Order, external_id: int) -> int:
    return next(line.id for line in order.lines if line.external_id == str(external_id))


def ship_two(session: Session, order: Order) -> tuple[Shipment, Shipment]:
    """Shipment 1: line A in two parcels; shipment 2: line B in one."""
    first = shipments.create_shipment(
        session,
        order,
        PERSON,
        {line_id(order, LINE_A): 1},
        [shipments.ParcelInput("MR1A", "0.4"), shipments.ParcelInput("MR1B", "0.3")],
        ship=True,
    )
    second = shipments.create_shipment(
        session,
        order,
        PERSON,
        {line_id(order, LINE_B): 2},
        [shipments.ParcelInput("MR2A", "1.1")],
        ship=True,
    )
    session.commit()
    return first, second


def calls(requests: list[RecordedRequest]) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in requests]


def shipment_writes(emulator: MagentoEmulator) -> list[tuple[str, str, Any]]:
    """(method, path, body) of each shipment write the store served."""
    return [
        (r.method, r.path, r.json() if r.body else None)
        for r in emulator.writes()
        if "/ship" in r.path
    ]


def ship_body(reference: str, item: int, qty: int, *numbers: str) -> dict[str, Any]:
    return {
        "items": [{"order_item_id": item, "qty": qty}],
        "notify": True,
        "appendComment": False,
        "comment": {"comment": f"Comptoir shipment {reference}", "is_visible_on_front": 0},
        "tracks": [
            {"track_number": n, "title": "Mondial Relay", "carrier_code": "custom"} for n in numbers
        ],
    }


def at_store(emulator: MagentoEmulator) -> list[tuple[int, dict[int, Any], list[str]]]:
    """Each shipment the store holds: (id, {order_item_id: qty}, its track numbers)."""
    return [
        (
            s["entity_id"],
            {i["order_item_id"]: i["qty"] for i in s["items"]},
            [t["track_number"] for t in s["tracks"]],
        )
        for s in emulator.shipments
    ]


def shipment_messages(session: Session) -> list[OutboxMessage]:
    session.expire_all()
    query = select(OutboxMessage).where(OutboxMessage.kind == outbox.SHIPMENT)
    return list(session.scalars(query.order_by(OutboxMessage.id)))


def later(minutes: int = 30) -> dt.datetime:
    return utcnow() + dt.timedelta(minutes=minutes)


def assert_told(session: Session, emulator: MagentoEmulator, *shipped: Shipment) -> None:
    """Comptoir holds the store's ids of each shipment and of each of its parcels."""
    session.expire_all()
    tracks = {
        t["track_number"]: str(t["entity_id"]) for s in emulator.shipments for t in s["tracks"]
    }
    by_id = {str(s["entity_id"]): s for s in emulator.shipments}
    for shipment in shipped:
        session.refresh(shipment)
        assert shipment.external_id in by_id
        assert shipment.pushed_at is not None
        assert {p.tracking_number: p.external_id for p in shipment.parcels} == {
            p.tracking_number: tracks[p.tracking_number] for p in shipment.parcels
        }


# --- Out: two shipments, three parcels --------------------------------------------------------


def test_two_shipments_three_parcels_reach_the_store_once_each_in_order(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    first, second = ship_two(db_session, order)
    assert outbox.dispatch_due(session_factory) >= 2

    assert shipment_writes(emulator) == [
        ("POST", SHIP, ship_body(first.number, LINE_A, 1, "MR1A", "MR1B")),
        ("POST", SHIP, ship_body(second.number, LINE_B, 2, "MR2A")),
    ]
    assert calls(emulator.requests) == [
        ("GET", "/rest/V1/shipments"),
        ("POST", SHIP),
        ("GET", "/rest/V1/shipment/1"),
        ("GET", "/rest/V1/shipments"),
        ("POST", SHIP),
        ("GET", "/rest/V1/shipment/2"),
        # The "shipped" milestone: the store made the order complete with the shipment.
        ("GET", "/rest/V1/orders/1042"),
    ]
    search = emulator.requests_to("GET", "/rest/V1/shipments")[0]
    assert ("searchCriteria[filter_groups][0][filters][0][field]", "order_id") in search.query
    assert ("searchCriteria[filter_groups][0][filters][0][value]", str(ORDER)) in search.query
    assert at_store(emulator) == [
        (1, {LINE_A: 1}, ["MR1A", "MR1B"]),
        (2, {LINE_B: 2}, ["MR2A"]),
    ]
    items = {item["item_id"]: item["qty_shipped"] for item in emulator.orders[ORDER]["items"]}
    assert items == {LINE_A: 1, LINE_B: 2, 1203: 2}
    assert emulator.orders[ORDER]["state"] == "complete"  # invoiced and now all shipped
    assert [m.state for m in shipment_messages(db_session)] == [OutboxState.SENT] * 2
    assert_told(db_session, emulator, first, second)

    # Nothing left to tell: another pass writes nothing more.
    before = len(emulator.writes())
    outbox.dispatch_due(session_factory, now=later())
    assert len(emulator.writes()) == before


def test_after_a_503_the_shipment_is_written_once(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    emulator.fail_next(503, path_contains=SHIP, method="POST")
    first, second = ship_two(db_session, order)
    outbox.dispatch_due(session_factory)
    messages = shipment_messages(db_session)
    assert messages[0].state == OutboxState.FAILED
    assert "503" in messages[0].last_error

    outbox.dispatch_due(session_factory, now=later())

    assert len(emulator.requests_to("POST", SHIP)) == 3  # the refused one, then one each
    assert shipment_writes(emulator) == [
        ("POST", SHIP, ship_body(first.number, LINE_A, 1, "MR1A", "MR1B")),
        ("POST", SHIP, ship_body(second.number, LINE_B, 2, "MR2A")),
    ]
    assert at_store(emulator) == [
        (1, {LINE_A: 1}, ["MR1A", "MR1B"]),
        (2, {LINE_B: 2}, ["MR2A"]),
    ]
    assert [m.state for m in shipment_messages(db_session)] == [OutboxState.SENT] * 2
    assert_told(db_session, emulator, first, second)


def test_after_a_lost_answer_the_store_keeps_one_shipment(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    # The store ships, then its answer is lost: the retry must find that shipment.
    emulator.fail_next(503, path_contains=SHIP, method="POST", after=True)
    first, second = ship_two(db_session, order)
    outbox.dispatch_due(session_factory)
    assert shipment_messages(db_session)[0].state == OutboxState.FAILED
    assert len(emulator.shipments) == 1

    outbox.dispatch_due(session_factory, now=later())

    assert shipment_writes(emulator) == [
        ("POST", SHIP, ship_body(first.number, LINE_A, 1, "MR1A", "MR1B")),
        ("POST", SHIP, ship_body(second.number, LINE_B, 2, "MR2A")),
    ]
    assert at_store(emulator) == [
        (1, {LINE_A: 1}, ["MR1A", "MR1B"]),
        (2, {LINE_B: 2}, ["MR2A"]),
    ]
    [retry] = [m for m in shipment_messages(db_session) if m.attempts == 2]
    assert retry.state == OutboxState.SENT and retry.remote_ref == "1"
    assert_told(db_session, emulator, first, second)


def test_a_lost_answer_then_a_parcel_added_meanwhile_completes_that_shipment(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    emulator.fail_next(503, path_contains=SHIP, method="POST", after=True)
    first = shipments.create_shipment(
        db_session,
        order,
        PERSON,
        {line_id(order, LINE_A): 1},
        [shipments.ParcelInput("MR1A")],
        ship=True,
    )
    db_session.commit()
    outbox.dispatch_due(session_factory)
    # The message waits for its retry: the new parcel rides with it.
    shipments.add_parcel(db_session, first, PERSON, "MR1B")
    db_session.commit()
    assert len(shipment_messages(db_session)) == 1

    outbox.dispatch_due(session_factory, now=later())

    assert len(emulator.requests_to("POST", SHIP)) == 1
    [track] = [r.json() for r in emulator.writes() if r.path == "/rest/V1/shipment/track"]
    assert track["entity"]["track_number"] == "MR1B" and track["entity"]["parent_id"] == 1
    assert at_store(emulator) == [(1, {LINE_A: 1}, ["MR1A", "MR1B"])]
    assert_told(db_session, emulator, first)


# --- Out: tracking after the shipment ---------------------------------------------------------


def test_a_number_added_later_is_one_track(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    first, _second = ship_two(db_session, order)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()

    shipments.add_parcel(db_session, first, PERSON, "MR1C")
    db_session.commit()
    outbox.dispatch_due(session_factory)

    shipment_calls = [c for c in calls(emulator.requests) if "/ship" in c[1]]
    assert shipment_calls == [
        ("GET", "/rest/V1/shipment/1"),
        ("POST", "/rest/V1/shipment/track"),
    ]
    assert [r.json() for r in emulator.writes()] == [
        {
            "entity": {
                "order_id": ORDER,
                "parent_id": 1,
                "track_number": "MR1C",
                "title": "Mondial Relay",
                "carrier_code": "custom",
                "weight": 0,
                "qty": 0,
                "description": "",
            }
        }
    ]
    assert at_store(emulator)[0] == (1, {LINE_A: 1}, ["MR1A", "MR1B", "MR1C"])
    assert_told(db_session, emulator, first)


def test_a_corrected_number_replaces_its_track(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    first, _second = ship_two(db_session, order)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()
    db_session.expire_all()
    wrong = next(p for p in first.parcels if p.tracking_number == "MR1B")
    old_track = wrong.external_id
    assert old_track

    shipments.correct_tracking(db_session, wrong, PERSON, "MR1X")
    db_session.commit()
    outbox.dispatch_due(session_factory)

    shipment_calls = [c for c in calls(emulator.requests) if "/ship" in c[1]]
    assert shipment_calls == [
        ("GET", "/rest/V1/shipment/1"),
        ("POST", "/rest/V1/shipment/track"),  # the new number first: never no tracking
        ("DELETE", f"/rest/V1/shipment/track/{old_track}"),
    ]
    assert emulator.writes()[0].json()["entity"]["track_number"] == "MR1X"
    assert at_store(emulator)[0] == (1, {LINE_A: 1}, ["MR1A", "MR1X"])
    assert_told(db_session, emulator, first)


def test_a_cancelled_shipment_loses_its_tracks_and_says_magento_cannot_cancel(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    first, _second = ship_two(db_session, order)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()

    shipments.cancel(db_session, first, PERSON, reason="Colis perdu avant enlèvement")
    db_session.commit()
    outbox.dispatch_due(session_factory)

    assert sorted(calls(emulator.writes())) == [
        ("DELETE", "/rest/V1/shipment/track/1"),
        ("DELETE", "/rest/V1/shipment/track/2"),
    ]
    assert at_store(emulator)[0] == (1, {LINE_A: 1}, [])
    message = shipment_messages(db_session)[-1]
    assert message.state == OutboxState.IGNORED
    assert message.last_error.startswith("Magento cannot cancel a shipment")


def test_magento_refusing_to_ship_is_not_retried(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    order: Order,
) -> None:
    # The store shipped line A itself meanwhile, under another number, before the poll saw it.
    emulator.add_shop_shipment(ORDER, {LINE_A: 1}, [("6A0001", "Colissimo", "custom")])
    first = shipments.create_shipment(
        db_session,
        order,
        PERSON,
        {line_id(order, LINE_A): 1},
        [shipments.ParcelInput("MR1A")],
        ship=True,
    )
    db_session.commit()
    emulator.requests.clear()
    outbox.dispatch_due(session_factory)
    message = shipment_messages(db_session)[0]
    assert message.state == OutboxState.DEAD
    assert "does not allow a shipment" in message.last_error
    outbox.dispatch_due(session_factory, now=later())
    assert len(emulator.requests_to("POST", SHIP)) == 1  # refused, not tried again
    assert len(emulator.shipments) == 1  # the store's own
    assert first.external_id is None


# --- In: shipments made in the store ----------------------------------------------------------


def test_a_shipment_made_in_the_store_arrives_once_and_is_not_echoed(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    shop: Shop,
    order: Order,
) -> None:
    made = emulator.add_shop_shipment(
        ORDER, {LINE_B: 2}, [("6A0001", "Colissimo", "custom"), ("6A0002", "Colissimo", "custom")]
    )
    for _ in range(2):
        report = run_sync(session_factory, shop.key)
        assert not report.polls[0].error

    assert emulator.writes() == []
    searches = emulator.requests_to("GET", "/rest/V1/shipments")
    assert searches and all(
        ("searchCriteria[filter_groups][0][filters][0][condition_type]", "in") in r.query
        for r in searches
    )
    db_session.expire_all()
    [shipment] = db_session.scalars(select(Shipment)).all()
    assert shipment.origin == ShipmentOrigin.SHOP
    assert shipment.state == ShipmentState.SHIPPED
    assert shipment.external_id == str(made["entity_id"])
    assert [(i.order_line.external_id, i.quantity) for i in shipment.lines] == [(str(LINE_B), 2)]
    assert {p.tracking_number: p.external_id for p in shipment.parcels} == {
        t["track_number"]: str(t["entity_id"]) for t in made["tracks"]
    }
    assert shipment_messages(db_session) == []
    db_session.refresh(order)
    assert order.fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED


def test_a_store_shipment_after_ours_arrives_and_ours_is_not_taken_again(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: MagentoEmulator,
    shop: Shop,
    order: Order,
) -> None:
    # Ours holds tracks 1 and 2; the store's own shipment gets id 2 (its own table).
    first = shipments.create_shipment(
        db_session,
        order,
        PERSON,
        {line_id(order, LINE_A): 1},
        [shipments.ParcelInput("MR1A"), shipments.ParcelInput("MR1B")],
        ship=True,
    )
    db_session.commit()
    outbox.dispatch_due(session_factory)
    db_session.expire_all()
    made = emulator.add_shop_shipment(ORDER, {LINE_B: 2}, [("6A0009", "Colissimo", "custom")])
    assert str(made["entity_id"]) in {p.external_id for p in first.parcels}
    writes = len(emulator.writes())

    for _ in range(2):
        run_sync(session_factory, shop.key)

    assert len(emulator.writes()) == writes
    db_session.expire_all()
    found = db_session.scalars(select(Shipment).order_by(Shipment.id)).all()
    assert [(s.origin, s.external_id) for s in found] == [
        (ShipmentOrigin.COMPTOIR, "1"),
        (ShipmentOrigin.SHOP, str(made["entity_id"])),
    ]
    db_session.refresh(order)
    assert order.fulfilment_state == FulfilmentState.SHIPPED
