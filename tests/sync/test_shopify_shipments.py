"""Shipments and Shopify, both ways: fulfillments written through the real outbox dispatcher
to the loopback shop, whatever fails, and fulfillments made in the shop taken in once.

An order of two lines (A: 2 books, B: 1 apron) comes in through the real intake; shipment 1
holds A in two parcels, shipment 2 holds B in one. Shopify's REST fulfillment takes one
tracking number, so the two-parcel shipment goes through the GraphQL fulfillmentCreate
mutation (`trackingInfo.numbers`), the other through POST fulfillments.json.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.base import RecordedRequest
from tests.emulators.shopify import ShopifyEmulator
from web.connectors.base import ShopParcel, ShopShipment
from web.connectors.shopify import ShopifyConnector
from web.models import CarrierMapping, OrderEvent, OutboxMessage, Shop, utcnow
from web.models.enums import (
    CommercialState,
    Milestone,
    OutboxState,
    ShipmentOrigin,
    ShipmentState,
)
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import intake, order_actions, outbox, shipments, shops
from web.services.shipments import ParcelInput
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import process_pending, run_sync
from web.services.timeline import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
API = "/admin/api/2025-01/"
PERSON = Actor.system("test")
LINE_A, LINE_B = "14892357845057", "14892357877825"  # 2 × LIV-CUIS-01, 1 × TAB-LIN-BLE-M


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data.get("order", data)


def call(request: RecordedRequest) -> str:
    """A request as "METHOD path" below the API version; a GraphQL call names its mutation."""
    path = request.path.removeprefix(API)
    if path == "graphql.json":
        query = request.json()["query"]
        path += ":" + query.split("(", 1)[0].split()[-1]
    return f"{request.method} {path}"


def calls(emulator: ShopifyEmulator, *, served_only: bool = False) -> list[str]:
    return [call(r) for r in emulator.requests if r.handled or not served_only]


def writes(emulator: ShopifyEmulator) -> list[str]:
    return [call(r) for r in emulator.writes()]


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


@pytest.fixture()
def emulator() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: ShopifyEmulator) -> Shop:
    shop = shops.create_shop(
        db_session,
        "shopify",
        "Maison Lumière",
        emulator.base_url,
        api_key=emulator.access_token,
        webhook_secret=emulator.webhook_secret,
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais", shipping_mode=modes["mondial_relay"]
        )
    )
    for mapping in shop.milestone_mappings:  # "close" once shipped: the status after it
        if mapping.milestone == Milestone.COMPLETED:
            mapping.enabled = True
    db_session.commit()
    return shop


@pytest.fixture()
def order(db_session: Session, shop: Shop, emulator: ShopifyEmulator) -> Order:
    """The paid relay-point order #1042, imported and validated; the shop's log emptied."""
    stored = emulator.add_order(copy.deepcopy(fixture("order-fr-relay-point.json")))
    incoming = shops.connector_for(shop).fetch_order(str(stored["id"]))
    found = intake.upsert_order(db_session, shop, incoming, Actor.shop(shop.name)).order
    assert found is not None
    if found.commercial_state == CommercialState.NEW:
        order_actions.perform(db_session, found, "validate", PERSON)
    db_session.commit()
    emulator.requests.clear()
    return found


def line_id(order: Order, external_id: str) -> int:
    return next(line.id for line in order.lines if line.external_id == external_id)


def ship(session: Session, order: Order, external_id: str, quantity: int, *numbers: str):
    shipment = shipments.create_shipment(
        session,
        order,
        PERSON,
        {line_id(order, external_id): quantity},
        [ParcelInput(number, "0.8") for number in numbers],
        ship=True,
    )
    session.commit()
    return shipment


def ship_both(session: Session, order: Order) -> tuple[Shipment, Shipment]:
    first = ship(session, order, LINE_A, 2, "6A1111111111", "6A2222222222")
    second = ship(session, order, LINE_B, 1, "6A3333333333")
    return first, second


def messages(session: Session, order: Order) -> list[tuple[str, OutboxState]]:
    session.expire_all()
    found = session.scalars(
        select(OutboxMessage).where(OutboxMessage.order_id == order.id).order_by(OutboxMessage.id)
    )
    return [(m.kind, m.state) for m in found]


def shop_fulfillments(emulator: ShopifyEmulator, order: Order) -> list[dict[str, Any]]:
    return list(emulator.orders[order.external_id].get("fulfillments") or [])


def summary(fulfillment: dict[str, Any]) -> tuple[str, list[str], list[tuple[str, int]]]:
    lines = [(str(item["id"]), item["quantity"]) for item in fulfillment["line_items"]]
    return fulfillment["status"], fulfillment["tracking_numbers"], lines


def documented(order: Order) -> list[str]:
    """What Shopify receives for the two shipments then the order's status, in order."""
    own = f"orders/{order.external_id}"
    return [
        f"GET {own}/fulfillments.json",
        f"GET {own}/fulfillment_orders.json",
        "POST graphql.json:fulfillmentCreate",
        f"GET {own}/fulfillments.json",
        f"GET {own}/fulfillment_orders.json",
        "POST fulfillments.json",
        f"GET {own}.json",
        f"POST {own}/close.json",
    ]


def assert_both_at_shop(session: Session, emulator: ShopifyEmulator, order: Order) -> None:
    first, second = shop_fulfillments(emulator, order)
    assert summary(first) == ("success", ["6A1111111111", "6A2222222222"], [(LINE_A, 2)])
    assert summary(second) == ("success", ["6A3333333333"], [(LINE_B, 1)])
    assert first["tracking_company"] == second["tracking_company"] == "Mondial Relay"
    assert all(url.startswith("https://") for url in first["tracking_urls"])
    assert len(first["tracking_urls"]) == 2
    assert emulator.orders[order.external_id]["fulfillment_status"] == "fulfilled"
    assert emulator.orders[order.external_id]["closed_at"]
    session.expire_all()
    ours = session.scalars(
        select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
    ).all()
    assert [s.external_id for s in ours] == [str(first["id"]), str(second["id"])]
    assert all(s.pushed_at is not None for s in ours)
    assert messages(session, order) == [
        ("shipment", OutboxState.SENT),
        ("shipment", OutboxState.SENT),
        ("status", OutboxState.SENT),
    ]


# --- Out: Comptoir's shipments become fulfillments ------------------------------------------


def test_two_shipments_with_three_parcels_reach_shopify_once_then_the_status(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    ship_both(db_session, order)
    assert outbox.dispatch_due(session_factory) == 3
    assert calls(emulator) == documented(order)
    assert_both_at_shop(db_session, emulator, order)

    [create] = emulator.requests_to("POST", "/graphql.json")
    given = create.json()["variables"]["fulfillment"]
    assert given["trackingInfo"]["numbers"] == ["6A1111111111", "6A2222222222"]
    assert given["notifyCustomer"] is True  # the shop's "notify the buyer" setting
    [rest] = emulator.requests_to("POST", f"{API}fulfillments.json")
    body = rest.json()["fulfillment"]
    assert body["tracking_info"]["number"] == "6A3333333333"
    assert body["tracking_info"]["company"] == "Mondial Relay"
    assert body["line_items_by_fulfillment_order"][0]["fulfillment_order_line_items"] == [
        {"id": int(LINE_B) + 1, "quantity": 1}
    ]
    assert [e["template"] for e in emulator.emails] == ["shipping_confirmation"] * 2

    # Nothing left to send; the shop's own copy of the order, read twice, changes nothing.
    emulator.requests.clear()
    assert outbox.dispatch_due(session_factory, now=later(60)) == 0
    for _ in range(2):
        incoming = shops.connector_for(order.shop).fetch_order(order.external_id)
        intake.upsert_order(db_session, order.shop, incoming, Actor.shop("Shopify"))
        db_session.commit()
    assert writes(emulator) == []
    assert [(s.origin, s.state) for s in db_session.get_one(Order, order.id).shipments] == [
        (ShipmentOrigin.COMPTOIR, ShipmentState.SHIPPED)
    ] * 2
    # The order page names each shipment the shop was told of.
    told = db_session.scalars(
        select(OrderEvent.details)
        .where(OrderEvent.order_id == order.id, OrderEvent.kind == "outbox.sent")
        .order_by(OrderEvent.id)
    ).all()
    first, second = sorted(db_session.get_one(Order, order.id).shipments, key=lambda s: s.id)
    assert [event.get("shipment") for event in told[:2]] == [first.number, second.number]


@pytest.mark.parametrize(
    ("status", "method", "path"),
    [(503, "POST", "/graphql.json"), (429, "GET", "/fulfillment_orders.json")],
)
def test_a_503_or_429_is_retried_and_nothing_goes_out_of_order(
    status: int,
    method: str,
    path: str,
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    ship_both(db_session, order)
    emulator.fail_next(status, retry_after="2", path_contains=path, method=method)
    t0 = utcnow()
    outbox.dispatch_due(session_factory, now=t0)
    # The first message failed; the second shipment and the status wait behind it.
    assert messages(db_session, order) == [
        ("shipment", OutboxState.FAILED),
        ("shipment", OutboxState.PENDING),
        ("status", OutboxState.PENDING),
    ]
    assert writes(emulator) == []
    assert shop_fulfillments(emulator, order) == []

    emulator.requests.clear()
    assert outbox.dispatch_due(session_factory, now=t0 + dt.timedelta(minutes=5)) == 3
    assert calls(emulator) == documented(order)
    assert_both_at_shop(db_session, emulator, order)


@pytest.mark.parametrize("lost", ["graphql.json", "fulfillments.json"])
def test_a_write_whose_answer_was_lost_is_found_at_the_shop_not_written_again(
    lost: str,
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    ship_both(db_session, order)
    # The shop makes the fulfillment, then the answer is lost on the way back.
    emulator.fail_next(503, path_contains=f"{API}{lost}", method="POST", after=True)
    t0 = utcnow()
    outbox.dispatch_due(session_factory, now=t0)
    # The message whose answer was lost failed; what follows it waits.
    if lost == "graphql.json":
        waiting = [OutboxState.FAILED, OutboxState.PENDING, OutboxState.PENDING]
    else:
        waiting = [OutboxState.SENT, OutboxState.FAILED, OutboxState.PENDING]
    assert [state for _, state in messages(db_session, order)] == waiting
    assert len(shop_fulfillments(emulator, order)) == (1 if lost == "graphql.json" else 2)

    outbox.dispatch_due(session_factory, now=t0 + dt.timedelta(minutes=5))
    served = writes(emulator)
    assert served.count("POST graphql.json:fulfillmentCreate") == 1
    assert served.count("POST fulfillments.json") == 1
    assert_both_at_shop(db_session, emulator, order)
    sent = db_session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id, OutboxMessage.kind == "shipment"
        )
    ).all()
    assert sorted(m.attempts for m in sent) == [1, 2]


def test_a_tracking_number_corrected_after_shipping_is_one_update_tracking(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    shipment = ship(db_session, order, LINE_A, 2, "6A1111111111")
    outbox.dispatch_due(session_factory)
    [made] = shop_fulfillments(emulator, order)
    emulator.requests.clear()

    shipments.correct_tracking(db_session, shipment.parcels[0], PERSON, "6A9999999999")
    db_session.commit()
    outbox.dispatch_due(session_factory, now=later(1))
    own = f"orders/{order.external_id}"
    assert calls(emulator) == [
        f"GET {own}/fulfillments.json",
        f"POST fulfillments/{made['id']}/update_tracking.json",
    ]
    [update] = emulator.requests_to("POST", "/update_tracking.json")
    assert update.json()["fulfillment"]["tracking_info"]["number"] == "6A9999999999"
    [made] = shop_fulfillments(emulator, order)
    assert made["tracking_numbers"] == ["6A9999999999"]

    # A second parcel: several numbers go through the GraphQL mutation.
    emulator.requests.clear()
    shipments.add_parcel(db_session, shipment, PERSON, "6A8888888888")
    db_session.commit()
    outbox.dispatch_due(session_factory, now=later(2))
    assert calls(emulator) == [
        f"GET {own}/fulfillments.json",
        "POST graphql.json:fulfillmentTrackingInfoUpdate",
    ]
    [made] = shop_fulfillments(emulator, order)
    assert made["tracking_numbers"] == ["6A9999999999", "6A8888888888"]
    assert len(shop_fulfillments(emulator, order)) == 1

    # Sent again (a replay), it finds the shop up to date and writes nothing.
    emulator.requests.clear()
    connector = shops.connector_for(order.shop)
    db_session.refresh(shipment)
    outcome = connector.push_shipment(
        order.external_id, outbox.shipment_to_push(shipment), since=utcnow()
    )
    assert not outcome.written and writes(emulator) == []


def test_a_cancelled_shipment_cancels_its_fulfillment_once(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    shipment = ship(db_session, order, LINE_A, 2, "6A1111111111")
    outbox.dispatch_due(session_factory)
    [made] = shop_fulfillments(emulator, order)
    assert emulator.orders[order.external_id]["fulfillment_status"] == "partial"
    emulator.requests.clear()

    shipments.cancel(db_session, shipment, PERSON, reason="Colis perdu, renvoyé")
    db_session.commit()
    outbox.dispatch_due(session_factory, now=later(1))
    assert writes(emulator) == [f"POST fulfillments/{made['id']}/cancel.json"]
    [made] = shop_fulfillments(emulator, order)
    assert made["status"] == "cancelled"
    assert emulator.orders[order.external_id]["fulfillment_status"] is None

    # Told again, the shop already shows it cancelled.
    connector = shops.connector_for(order.shop)
    db_session.refresh(shipment)
    outcome = connector.push_shipment(
        order.external_id, outbox.shipment_to_push(shipment), since=None
    )
    assert not outcome.written
    assert writes(emulator) == [f"POST fulfillments/{made['id']}/cancel.json"]


def test_lines_at_two_locations_become_one_fulfillment_each(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    emulator.line_locations[LINE_B] = 79871656001  # the apron ships from another warehouse
    shipment = shipments.ship_everything(db_session, order, PERSON, "6A4444444444")
    db_session.commit()
    outbox.dispatch_due(session_factory)
    assert writes(emulator) == [
        "POST fulfillments.json",
        "POST fulfillments.json",
        (f"POST orders/{order.external_id}/close.json"),
    ]
    first, second = shop_fulfillments(emulator, order)
    assert summary(first) == ("success", ["6A4444444444"], [(LINE_A, 2)])
    assert summary(second) == ("success", ["6A4444444444"], [(LINE_B, 1)])
    assert first["location_id"] != second["location_id"]
    db_session.refresh(shipment)
    assert shipment.external_id == f"{first['id']},{second['id']}"

    # The shop's copy names both fulfillments: both are known, nothing new comes in.
    emulator.requests.clear()
    incoming = shops.connector_for(order.shop).fetch_order(order.external_id)
    intake.upsert_order(db_session, order.shop, incoming, Actor.shop("Shopify"))
    db_session.commit()
    assert len(db_session.get_one(Order, order.id).shipments) == 1
    assert writes(emulator) == []


def test_a_bundles_shipment_is_ignored_with_its_reason_and_no_fulfillment_is_written(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    shop: Shop,
) -> None:
    # Comptoir ships the bundle as one line; Shopify fulfils its components.
    stored = emulator.add_order(copy.deepcopy(fixture("order-fr-bundle-groups.json")))
    incoming = shops.connector_for(shop).fetch_order(str(stored["id"]))
    order = intake.upsert_order(db_session, shop, incoming, PERSON).order
    assert order is not None
    if order.commercial_state == CommercialState.NEW:
        order_actions.perform(db_session, order, "validate", PERSON)
    modes = ensure_default_shipping_modes(db_session)
    parcel = [ParcelInput("6A5555555555")]
    shipments.create_shipment(
        db_session, order, PERSON, None, parcel, modes["colissimo"], ship=True
    )
    db_session.commit()
    emulator.requests.clear()

    outbox.dispatch_due(session_factory)
    # No fulfillment is written; the whole order shipped, so its status still goes after.
    assert writes(emulator) == [f"POST orders/{order.external_id}/close.json"]
    db_session.expire_all()
    found = db_session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id, OutboxMessage.kind == "shipment"
        )
    ).one()
    assert found.state == OutboxState.IGNORED
    assert "bundle" in found.last_error and "bundle:287341121" in found.last_error


def test_lines_shopify_has_already_fulfilled_are_not_fulfilled_twice(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    # The merchant fulfilled the books in Shopify's admin; Comptoir ships them before the
    # shop's copy of the order came in.
    emulator.fulfil_in_shop(order.external_id, {LINE_A: 2}, tracking=("XS10000009FR",))
    emulator.requests.clear()
    ship(db_session, order, LINE_A, 2, "6A1111111111")
    outbox.dispatch_due(session_factory)
    assert writes(emulator) == []
    assert len(shop_fulfillments(emulator, order)) == 1
    db_session.expire_all()
    found = db_session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.order_id == order.id, OutboxMessage.kind == "shipment"
        )
    ).one()
    assert found.state == OutboxState.IGNORED
    assert found.last_error == f"Shopify has nothing left to fulfil for 2 × line {LINE_A}."


def test_an_earlier_fulfillment_without_tracking_is_not_taken_for_a_later_shipment(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    # One book leaves without a tracking number; moments later the other book and the apron.
    first = shipments.create_shipment(
        db_session, order, PERSON, {line_id(order, LINE_A): 1}, [], ship=True
    )
    db_session.commit()
    outbox.dispatch_due(session_factory)
    second = ship(db_session, order, LINE_A, 1, "6A7777777777")
    db_session.expire_all()
    second = db_session.get_one(Shipment, second.id)
    shipments.add_parcel(db_session, second, PERSON, "6A8888888888")
    db_session.commit()
    outbox.dispatch_due(session_factory, now=later(1))

    made = shop_fulfillments(emulator, order)
    assert [summary(f) for f in made] == [
        ("success", [], [(LINE_A, 1)]),
        ("success", ["6A7777777777", "6A8888888888"], [(LINE_A, 1)]),
    ]
    db_session.expire_all()
    assert [db_session.get_one(Shipment, s.id).external_id for s in (first, second)] == [
        str(made[0]["id"]),
        str(made[1]["id"]),
    ]


def test_two_shipments_without_tracking_moments_apart_are_two_fulfillments(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    # One book, then the other, both without a tracking number, in the same minute.
    made = [
        shipments.create_shipment(
            db_session, order, PERSON, {line_id(order, LINE_A): 1}, [], ship=True
        )
        for _ in range(2)
    ]
    db_session.commit()
    outbox.dispatch_due(session_factory)
    fulfilled = shop_fulfillments(emulator, order)
    assert [summary(f) for f in fulfilled] == [("success", [], [(LINE_A, 1)])] * 2
    db_session.expire_all()
    assert [db_session.get_one(Shipment, s.id).external_id for s in made] == [
        str(f["id"]) for f in fulfilled
    ]
    assert [state for _, state in messages(db_session, order)] == [OutboxState.SENT] * 2


# --- In: fulfillments made in Shopify's admin -----------------------------------------------


def test_a_fulfillment_made_in_shopify_arrives_once_and_is_never_sent_back(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    order: Order,
) -> None:
    made = emulator.fulfil_in_shop(
        order.external_id,
        {LINE_A: 2},
        tracking=("XS10000001FR", "XS10000002FR"),
        company="Colissimo",
    )
    body, headers = emulator.webhook("orders/updated", order.external_id)
    for webhook_id in ("first", "second"):  # Shopify's retry, then a copy from the poll
        response = client.post(
            f"/hooks/shopify/{order.shop.key}",
            data=body,
            headers={**headers, "X-Shopify-Webhook-Id": webhook_id},
        )
        assert response.status_code == 200
        process_pending(session_factory)
    run_sync(session_factory, order.shop.key)
    run_sync(session_factory, order.shop.key)

    db_session.expire_all()
    [shipment] = db_session.get_one(Order, order.id).shipments
    assert shipment.origin == ShipmentOrigin.SHOP
    assert shipment.state == ShipmentState.SHIPPED
    assert shipment.external_id == str(made["id"])
    assert sorted(p.tracking_number for p in shipment.parcels) == [
        "XS10000001FR",
        "XS10000002FR",
    ]
    assert [(item.order_line.external_id, item.quantity) for item in shipment.lines] == [
        (LINE_A, 2)
    ]
    outbox.dispatch_due(session_factory, now=later(60))
    assert writes(emulator) == []
    assert [kind for kind, _ in messages(db_session, order)] == []

    # Cancelled in Shopify later: the shipment follows, still nothing is written back.
    emulator.requests.clear()
    emulator.cancel_in_shop(made["id"])
    run_sync(session_factory, order.shop.key)
    db_session.expire_all()
    [shipment] = db_session.get_one(Order, order.id).shipments
    assert shipment.state == ShipmentState.CANCELLED
    outbox.dispatch_due(session_factory, now=later(120))
    assert writes(emulator) == []


# --- The payloads Shopify publishes -----------------------------------------------------------


def test_published_orders_still_parse_and_say_which_fulfillments_they_hold() -> None:
    connector = ShopifyConnector.__new__(ShopifyConnector)
    sample = connector.parse_order((FIXTURES / "shopify-order.json").read_bytes())
    # Shopify's sample order holds one fulfillment that failed: not a shipment that left.
    assert sample.shipments == (
        ShopShipment(
            external_id="255858046",
            parcels=(
                ShopParcel(
                    "1Z2345",
                    "",
                    "http://wwwapps.ups.com/etracking/tracking.cgi?InquiryNumber1=1Z2345"
                    "&TypeOfInquiryNumber=T&AcceptUPSLicenseAgreement=yes&submit=Track",
                ),
            ),
            lines=(("466157049", 1),),
            carrier="",
            shipped_at=dt.datetime(2014, 1, 22, 20, 58, 27, tzinfo=dt.UTC),
            cancelled=True,
        ),
    )
    for path in sorted(FIXTURES.glob("*.json")):
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or "line_items" not in data.get("order", data):
            continue  # fulfillment orders and fulfillments, not orders
        parsed = connector.parse_order(path.read_bytes())
        if path.name != "shopify-order.json":
            assert parsed.shipments == (), path.name
    trimmed = fixture("order-fr-relay-point.json")
    del trimmed["fulfillments"]  # a copy trimmed by `fields` does not say
    assert connector.parse_order(json.dumps(trimmed).encode()).shipments is None


def test_a_shipment_from_five_locations_keeps_its_five_fulfillment_ids_whole(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: ShopifyEmulator,
    shop: Shop,
) -> None:
    data = copy.deepcopy(fixture("order-fr-relay-point.json"))
    apron = data["line_items"][1]
    for n in range(1, 4):  # three more aprons, each its own line
        data["line_items"].append({**copy.deepcopy(apron), "id": int(LINE_B) + 100 * n})
    stored = emulator.add_order(data)
    incoming = shops.connector_for(shop).fetch_order(str(stored["id"]))
    order = intake.upsert_order(db_session, shop, incoming, Actor.shop(shop.name)).order
    assert order is not None
    for n, item in enumerate(data["line_items"]):
        emulator.line_locations[str(item["id"])] = 79871656001 + n  # five warehouses
    shipment = shipments.ship_everything(db_session, order, PERSON, "6A4444444444")
    db_session.commit()

    outbox.dispatch_due(session_factory)

    made = [str(f["id"]) for f in shop_fulfillments(emulator, order)]
    assert len(made) == 5 and all(len(i) == 13 for i in made)
    db_session.refresh(shipment)
    assert shipment.external_id == ",".join(made)
