"""WooCommerce shipments both ways, through the real outbox and intake, against the emulator.

Out: the Shipment Tracking extension's items (one per parcel, read first so nothing is
written twice), or a customer note with the links on a shop without it, then the
`completed` status. In: tracking items the merchant adds in the shop become a shipment
made in the shop, once, and nothing is written back.
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
from tests.emulators.woocommerce import WooCommerceEmulator
from web.models import CarrierMapping, OutboxMessage, Shop, utcnow
from web.models.enums import OutboxState, ShipmentOrigin, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment, ShippingMode
from web.services import intake, outbox, shipments, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync
from web.services.timeline import Actor

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
PERSON = Actor.system("test")
TRACKING = "/wp-json/wc-shipment-tracking/v3"
API = "/wp-json/wc/v3"
MONDIAL = "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition={}&codePostal=69003"
LAPOSTE = "https://www.laposte.fr/outils/suivre-vos-envois?code={}"


@pytest.fixture()
def emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def modes(db_session: Session) -> dict[str, ShippingMode]:
    return ensure_default_shipping_modes(db_session)


@pytest.fixture()
def shop(
    db_session: Session, emulator: WooCommerceEmulator, modes: dict[str, ShippingMode]
) -> Shop:
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Thés & Fonte",
        emulator.base_url,
        api_key=emulator.consumer_key,
        api_secret=emulator.consumer_secret,
        webhook_secret=emulator.webhook_secret,
    )
    shop.carrier_mappings.append(
        CarrierMapping(
            shop_label="Mondial Relay - Point Relais®", shipping_mode=modes["mondial_relay"]
        )
    )
    db_session.commit()
    return shop


@pytest.fixture()
def order(db_session: Session, shop: Shop, emulator: WooCommerceEmulator) -> Order:
    """Three teas and a teapot, paid ("processing"), imported through the real intake."""
    payload = copy.deepcopy(json.loads((FIXTURE / "fr-order-relay-coupon-refund.json").read_text()))
    payload["refunds"] = []  # paid in full: shipping it all completes it
    external_id = emulator.add_order(payload)
    incoming = shops.connector_for(shop).fetch_order(external_id)
    made = intake.upsert_order(db_session, shop, incoming, Actor.shop(shop.name)).order
    assert made is not None
    db_session.commit()
    emulator.requests.clear()
    return made


def ship_in_two(
    session: Session, order: Order, modes: dict[str, ShippingMode]
) -> tuple[Shipment, Shipment]:
    """The teas by Mondial Relay in two parcels, then the teapot by Colissimo."""
    teas, teapot = order.lines
    first = shipments.create_shipment(
        session,
        order,
        PERSON,
        {teas.id: 3},
        [shipments.ParcelInput("MR001", "1.2"), shipments.ParcelInput("MR002", "0.8")],
        modes["mondial_relay"],
        ship=True,
    )
    second = shipments.create_shipment(
        session,
        order,
        PERSON,
        {teapot.id: 1},
        [shipments.ParcelInput("6A003", "2.1")],
        modes["colissimo"],
        ship=True,
    )
    session.commit()
    return first, second


def seen(requests: list[RecordedRequest]) -> list[tuple[str, str, Any]]:
    return [(r.method, r.path, r.json() if r.body else None) for r in requests]


def items_at(emulator: WooCommerceEmulator, external_id: str) -> list[tuple[str, str, str, str]]:
    return [
        (
            i["tracking_number"],
            i["tracking_provider"],
            i["custom_tracking_provider"],
            i["custom_tracking_link"],
        )
        for i in emulator.tracking_items(external_id)
    ]


def expected_writes(external_id: str) -> list[tuple[str, str, Any]]:
    today = dt.datetime.now(dt.UTC).date().isoformat()
    trackings = f"{TRACKING}/orders/{external_id}/shipment-trackings"
    return [
        (
            "POST",
            trackings,
            {
                "tracking_number": number,
                "date_shipped": today,
                "custom_tracking_provider": "Mondial Relay",
                "custom_tracking_link": MONDIAL.format(number),
            },
        )
        for number in ("MR001", "MR002")
    ] + [
        (
            "POST",
            trackings,
            {"tracking_number": "6A003", "date_shipped": today, "tracking_provider": "colissimo"},
        ),
        ("PUT", f"{API}/orders/{external_id}", {"status": "completed"}),
    ]


SHIPPED_ITEMS = [
    ("MR001", "", "Mondial Relay", MONDIAL.format("MR001")),
    ("MR002", "", "Mondial Relay", MONDIAL.format("MR002")),
    ("6A003", "colissimo", "", ""),
]


def assert_told_once(session: Session, emulator: WooCommerceEmulator, order: Order) -> None:
    """The shop holds the three items, written once each, then `completed`; Comptoir keeps
    the shop's ids and sends nothing more."""
    external_id = order.external_id
    assert seen(emulator.writes()) == expected_writes(external_id)
    assert items_at(emulator, external_id) == SHIPPED_ITEMS
    assert emulator.orders[external_id]["status"] == "completed"
    ids = {i["tracking_number"]: i["tracking_id"] for i in emulator.tracking_items(external_id)}
    session.expire_all()
    parcels = [p for s in order.shipments for p in s.parcels]
    assert {p.tracking_number: p.external_id for p in parcels} == ids
    assert [s.external_id for s in order.shipments] == [ids["MR001"], ids["6A003"]]
    assert all(s.pushed_at is not None for s in order.shipments)
    states = session.scalars(select(OutboxMessage.state).where(OutboxMessage.order_id == order.id))
    assert set(states) == {OutboxState.SENT}
    emulator.requests.clear()
    assert outbox.dispatch_due(session_factory_of(session), now=utcnow() + outbox.LEASE) == 0
    assert emulator.requests == []


def session_factory_of(session: Session) -> sessionmaker[Session]:
    return sessionmaker(session.get_bind(), expire_on_commit=False)


# --- Out: with the Shipment Tracking extension --------------------------------------------


def test_two_shipments_three_parcels_reach_the_shop_once_tracking_before_completed(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    ship_in_two(db_session, order, modes)

    assert outbox.dispatch_due(session_factory) == 3  # two shipments, then the milestone

    external_id = order.external_id
    trackings = f"{TRACKING}/orders/{external_id}/shipment-trackings"
    providers = f"{TRACKING}/shipment-trackings/providers"
    writes = iter(expected_writes(external_id))
    assert seen(emulator.requests) == [
        ("GET", trackings, None),
        ("GET", providers, None),
        next(writes),
        next(writes),
        ("GET", trackings, None),
        ("GET", providers, None),
        next(writes),
        ("GET", f"{API}/orders/{external_id}", None),
        next(writes),
    ]
    assert_told_once(db_session, emulator, order)
    # The buyer's "Completed order" e-mail comes after every tracking item was there.
    assert [e["template"] for e in emulator.emails] == ["customer_completed_order"]


def test_after_a_503_the_retry_writes_each_item_once(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    ship_in_two(db_session, order, modes)
    emulator.fail_next(503, path_contains="/shipment-trackings", method="POST")

    outbox.dispatch_due(session_factory)
    first = db_session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)).first()
    assert first is not None and first.state == OutboxState.FAILED
    assert "PlatformUnavailable" in first.last_error
    assert emulator.writes() == []  # the 503 answered in the shop's place; nothing after it
    assert emulator.orders[order.external_id]["status"] == "processing"

    outbox.dispatch_due(session_factory, now=utcnow() + dt.timedelta(minutes=10))
    assert_told_once(db_session, emulator, order)


def test_a_write_whose_answer_was_lost_is_not_written_again(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    ship_in_two(db_session, order, modes)
    # The shop stores MR001's item but its answer never comes back.
    emulator.fail_next(503, path_contains="/shipment-trackings", method="POST", after=True)

    outbox.dispatch_due(session_factory)
    assert [i["tracking_number"] for i in emulator.tracking_items(order.external_id)] == ["MR001"]

    outbox.dispatch_due(session_factory, now=utcnow() + dt.timedelta(minutes=10))
    assert_told_once(db_session, emulator, order)


def test_a_lost_answer_then_the_shops_webhook_then_the_retry(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    shop: Shop,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    ship_in_two(db_session, order, modes)
    emulator.fail_next(0, path_contains="/shipment-trackings", method="POST")
    emulator.fail_next(503, path_contains="/shipment-trackings", method="POST", after=True)

    outbox.dispatch_due(session_factory)
    stored = [i["tracking_number"] for i in emulator.tracking_items(order.external_id)]
    assert stored == ["MR001", "MR002"]  # both written, the second answer lost

    body, headers = emulator.webhook("order.updated", order.external_id)
    response = client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers)
    assert response.status_code == 200
    run_sync(session_factory, shop.key)
    db_session.expire_all()
    made = db_session.scalars(select(Shipment).where(Shipment.order_id == order.id)).all()
    assert [s.origin for s in made] == [ShipmentOrigin.COMPTOIR] * 2  # nothing from the shop

    outbox.dispatch_due(session_factory, now=utcnow() + dt.timedelta(minutes=10))
    assert_told_once(db_session, emulator, order)


def test_a_corrected_number_replaces_its_item(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    first, _ = ship_in_two(db_session, order, modes)
    outbox.dispatch_due(session_factory)
    db_session.expire_all()
    old_id = first.parcels[1].external_id
    assert old_id
    emulator.requests.clear()

    db_session.expire_all()
    shipments.correct_tracking(db_session, first.parcels[1], PERSON, "MR002B")
    db_session.commit()
    assert outbox.dispatch_due(session_factory) == 1  # the order is already completed

    trackings = f"{TRACKING}/orders/{order.external_id}/shipment-trackings"
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert seen(emulator.writes()) == [
        (
            "POST",
            trackings,
            {
                "tracking_number": "MR002B",
                "date_shipped": today,
                "custom_tracking_provider": "Mondial Relay",
                "custom_tracking_link": MONDIAL.format("MR002B"),
            },
        ),
        ("DELETE", f"{trackings}/{old_id}", None),
    ]
    assert [n for n, *_ in items_at(emulator, order.external_id)] == ["MR001", "6A003", "MR002B"]
    db_session.expire_all()
    new_id = emulator.tracking_items(order.external_id)[-1]["tracking_id"]
    assert first.parcels[1].external_id == new_id != old_id

    emulator.requests.clear()
    outbox.dispatch_due(session_factory, now=utcnow() + outbox.LEASE)
    assert emulator.writes() == []


def test_a_cancelled_shipment_takes_its_items_away(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    first, _ = ship_in_two(db_session, order, modes)
    outbox.dispatch_due(session_factory)
    db_session.expire_all()
    ids = [p.external_id for p in first.parcels]
    assert all(ids)
    emulator.requests.clear()

    db_session.expire_all()
    shipments.cancel(db_session, first, PERSON, "Colis perdu, renvoi")
    db_session.commit()
    outbox.dispatch_due(session_factory)

    trackings = f"{TRACKING}/orders/{order.external_id}/shipment-trackings"
    deletes = [(r.method, r.path) for r in emulator.writes() if "shipment-trackings" in r.path]
    assert deletes == [("DELETE", f"{trackings}/{tracking_id}") for tracking_id in ids]
    assert [n for n, *_ in items_at(emulator, order.external_id)] == ["6A003"]


# --- Out: a shop without the extension ----------------------------------------------------


def test_without_the_extension_customer_notes_then_the_status(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    emulator.shipment_tracking = False
    first, second = ship_in_two(db_session, order, modes)

    assert outbox.dispatch_due(session_factory) == 3

    external_id = order.external_id
    trackings = f"{TRACKING}/orders/{external_id}/shipment-trackings"
    notes = f"{API}/orders/{external_id}/notes"
    first_note = (
        f"Shipment {first.number} (Mondial Relay), tracking:\n"
        f"MR001 {MONDIAL.format('MR001')}\nMR002 {MONDIAL.format('MR002')}"
    )
    second_note = (
        f"Shipment {second.number} (Colissimo), tracking:\n6A003 {LAPOSTE.format('6A003')}"
    )
    note = {"customer_note": True, "added_by_user": False}
    assert [(m, p, b) for m, p, b in seen(emulator.requests)] == [
        ("GET", trackings, None),
        ("GET", notes, None),
        ("POST", notes, {"note": first_note, **note}),
        ("GET", trackings, None),
        ("GET", notes, None),
        ("POST", notes, {"note": second_note, **note}),
        ("GET", f"{API}/orders/{external_id}", None),
        ("PUT", f"{API}/orders/{external_id}", {"status": "completed"}),
    ]
    assert [e["template"] for e in emulator.emails] == [
        "customer_note",
        "customer_note",
        "customer_completed_order",
    ]
    db_session.expire_all()
    assert [s.external_id for s in order.shipments] == [first.number, second.number]

    # A retry after a lost answer finds the note and writes nothing.
    emulator.requests.clear()
    db_session.expire_all()
    shipments.correct_tracking(db_session, second.parcels[0], PERSON, "6A004")
    db_session.commit()
    emulator.fail_next(503, path_contains="/notes", method="POST", after=True)
    outbox.dispatch_due(session_factory)
    outbox.dispatch_due(session_factory, now=utcnow() + dt.timedelta(minutes=10))
    posted = [r.json()["note"] for r in emulator.writes()]
    assert posted == [
        f"Shipment {second.number} (Colissimo), tracking:\n6A004 " + LAPOSTE.format("6A004")
    ]


def test_without_the_extension_a_cancellation_is_a_private_note(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    order: Order,
    modes: dict[str, ShippingMode],
) -> None:
    emulator.shipment_tracking = False
    first, _ = ship_in_two(db_session, order, modes)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()

    db_session.expire_all()
    shipments.cancel(db_session, first, PERSON, "Colis perdu")
    db_session.commit()
    outbox.dispatch_due(session_factory)

    notes = [r.json() for r in emulator.writes() if r.path.endswith("/notes")]
    assert notes == [
        {
            "note": f"Shipment {first.number} was cancelled in Comptoir; "
            "its tracking numbers no longer apply: MR001, MR002.",
            "customer_note": False,
            "added_by_user": False,
        }
    ]


# --- In: tracking added in the shop -------------------------------------------------------


def shop_made(session: Session, order: Order) -> list[Shipment]:
    session.expire_all()
    return list(
        session.scalars(
            select(Shipment).where(
                Shipment.order_id == order.id, Shipment.origin == ShipmentOrigin.SHOP
            )
        )
    )


def assert_one_shop_shipment(
    session: Session, emulator: WooCommerceEmulator, order: Order, tracking_id: str
) -> None:
    [made] = shop_made(session, order)
    assert made.state == ShipmentState.SHIPPED and made.external_id == tracking_id
    assert [(p.tracking_number, p.external_id) for p in made.parcels] == [("6A999", tracking_id)]
    assert sorted(line.quantity for line in made.lines) == [1, 3]  # all that remained
    assert made.shipped_at is not None
    assert emulator.writes() == []
    queued = session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    assert list(queued) == []


def test_a_tracking_item_added_in_the_shop_arrives_once_by_webhook(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    shop: Shop,
    order: Order,
) -> None:
    tracking_id = emulator.add_tracking(order.external_id, "6A999", provider="Colissimo")
    for _ in range(2):
        body, headers = emulator.webhook("order.updated", order.external_id)
        response = client.post(f"/hooks/woocommerce/{shop.key}", data=body, headers=headers)
        assert response.status_code == 200
        run_sync(session_factory, shop.key)
    assert_one_shop_shipment(db_session, emulator, order, tracking_id)


def test_a_tracking_item_added_in_the_shop_arrives_once_by_polling(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: WooCommerceEmulator,
    shop: Shop,
    order: Order,
) -> None:
    tracking_id = emulator.add_tracking(order.external_id, "6A999", provider="colissimo")
    first = run_sync(session_factory, shop.key, poll_all=True)
    assert first.polls[0].stored == 1 and not first.polls[0].error
    run_sync(session_factory, shop.key, poll_all=True)
    assert_one_shop_shipment(db_session, emulator, order, tracking_id)
