"""PrestaShop shipments both ways, through the real outbox dispatcher and the real poll.

The order is imported from the loopback webservice through intake, shipped with the
shipments service, and the outbox delivers what the shop must learn: the tracking numbers go
into the order carrier's one tracking_number (GET, then PUT of the whole object), the shipped
state follows as an order history. Numbers typed in the shop's back office come back through
the poll as shipments made in the shop, once, and nothing is written back.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.base import RecordedRequest
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, order_record
from web.models import CarrierMapping, OrderEvent, OutboxMessage, Shop, utcnow
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    OutboxState,
    PaymentState,
    ShipmentOrigin,
    ShipmentState,
)
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import outbox, shipments, shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync
from web.services.timeline import Actor

PERSON = Actor.system("test")
ORDER = "7"
COLISSIMO = "4"  # the emulator's Colissimo carrier, url "…?code=@"
A, B, C = "6A11111111111", "6A22222222222", "6A33333333333"


def later(seconds: float) -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=seconds)


@pytest.fixture()
def emulator() -> Iterator[PrestaShopEmulator]:
    with PrestaShopEmulator() as shop:
        # Each change a second after the one before, as when people work the shop: the
        # change probe takes a change made within the second of the version Comptoir read
        # for that version, until the full poll behind it (tests/sync/test_change_probe.py).
        start, seconds = shop.clock(), itertools.count()  # type: ignore[attr-defined]
        shop.clock = lambda: start + dt.timedelta(seconds=next(seconds))  # type: ignore[attr-defined]
        placed = shop.now()  # type: ignore[attr-defined]
        shop.add_order(order_record(int(ORDER), placed, id_carrier=COLISSIMO, current_state="3"))  # type: ignore[attr-defined]
        shop.add(  # type: ignore[attr-defined]
            "order_payments",
            {
                "order_reference": f"REF{int(ORDER):06d}",
                "id_currency": "1",
                "amount": "24.000000",
                "payment_method": "Carte bancaire",
                "transaction_id": "pi_7",
                "date_add": placed,
            },
        )
        yield shop  # type: ignore[misc]


@pytest.fixture()
def carrier_row(emulator: PrestaShopEmulator) -> str:
    return emulator.add_order_carrier(ORDER, COLISSIMO)


@pytest.fixture()
def shop(db_session: Session, emulator: PrestaShopEmulator) -> Shop:
    shop = shops.create_shop(
        db_session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(shop_label="Colissimo", shipping_mode=modes["colissimo"])
    )
    db_session.commit()
    return shop


@pytest.fixture()
def order(
    db_session: Session,
    session_factory: sessionmaker[Session],
    shop: Shop,
    emulator: PrestaShopEmulator,
    carrier_row: str,
) -> Order:
    assert run_sync(session_factory, shop.key).polls[0].stored == 1  # the real intake
    order = db_session.scalars(select(Order).where(Order.external_id == ORDER)).one()
    assert order.shipments == []  # the order carrier holds no number yet
    assert order.payment_state == PaymentState.PAID
    assert order.commercial_state == CommercialState.VALIDATED  # paid and processing
    emulator.requests.clear()
    return order


def ship_in_two(session: Session, order: Order) -> tuple[Shipment, Shipment]:
    """The two candles leave in two shipments: A and B in the first, C in the second."""
    [line] = order.lines
    first = shipments.create_shipment(
        session,
        order,
        PERSON,
        {line.id: 1},
        [shipments.ParcelInput(A, "0.4"), shipments.ParcelInput(B, "0.4")],
        ship=True,
    )
    second = shipments.create_shipment(
        session, order, PERSON, {line.id: 1}, [shipments.ParcelInput(C, "0.4")], ship=True
    )
    session.commit()
    return first, second


def calls(emulator: PrestaShopEmulator) -> list[tuple[str, str, str]]:
    """What reached the shop: method, path and the query that matters (filter, sendemail)."""

    def query(request: RecordedRequest) -> str:
        kept = [f"{k}={v}" for k, v in request.query if k in ("filter[id_order]", "sendemail")]
        return "&".join(kept)

    return [(r.method, r.path, query(r)) for r in emulator.requests]


def tracking(emulator: PrestaShopEmulator, row: str) -> str:
    return str(emulator.get("order_carriers", row)["tracking_number"])


def documented(row: str) -> list[tuple[str, str, str]]:
    """Both shipments in the order carrier, then the shipped state (milestone "completed")."""
    return [
        ("GET", "/api/order_carriers", f"filter[id_order]=[{ORDER}]"),
        ("GET", f"/api/order_carriers/{row}", ""),
        ("PUT", f"/api/order_carriers/{row}", "sendemail=1"),
        ("GET", "/api/order_carriers", f"filter[id_order]=[{ORDER}]"),
        ("GET", f"/api/order_carriers/{row}", ""),
        ("PUT", f"/api/order_carriers/{row}", "sendemail=1"),
        ("GET", f"/api/orders/{ORDER}", ""),
        ("POST", "/api/order_histories", "sendemail=1"),
    ]


def test_two_shipments_and_three_parcels_reach_the_order_carrier_then_the_state(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    first, second = ship_in_two(db_session, order)
    assert outbox.dispatch_due(session_factory) == 3  # two shipments, one milestone

    assert calls(emulator) == documented(carrier_row)
    assert tracking(emulator, carrier_row) == f"{A}, {B}, {C}"
    put = emulator.requests_to("PUT", "/api/order_carriers")[-1].body.decode()
    for name in ("id_order", "id_carrier", "id_order_invoice", "weight", "date_add"):
        assert f"<{name}>" in put  # the whole object went back, not just the number
    assert emulator.get("orders", ORDER)["current_state"] == "4"  # Shipped

    db_session.expire_all()
    assert first.external_id == f"oc-{carrier_row}/{first.number}"
    assert second.external_id == f"oc-{carrier_row}/{second.number}"
    refs = {p.tracking_number: p.external_id for s in (first, second) for p in s.parcels}
    assert refs == {n: f"oc-{carrier_row}:{n}" for n in (A, B, C)}
    assert first.pushed_at is not None and second.pushed_at is not None

    # Nothing left to send, and the next poll recognises every number as ours.
    emulator.requests.clear()
    assert outbox.dispatch_due(session_factory, now=later(10**5)) == 0
    emulator.update_order(ORDER)  # the order changed: the poll reads it again
    assert run_sync(session_factory, shop_key(db_session)).polls[0].stored == 1
    assert emulator.writes() == []
    db_session.expire_all()
    assert len(order.shipments) == 2
    assert all(s.origin == ShipmentOrigin.COMPTOIR for s in order.shipments)


def shop_key(session: Session) -> str:
    return session.scalars(select(Shop.key)).one()


def test_after_a_503_the_same_requests_land_once(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    ship_in_two(db_session, order)
    emulator.fail_next(503, path_contains="/api/order_carriers/", method="PUT")
    outbox.dispatch_due(session_factory)
    refused = calls(emulator)
    assert refused == documented(carrier_row)[:3]  # the others wait behind the first
    assert tracking(emulator, carrier_row) == ""
    emulator.requests.clear()

    assert outbox.dispatch_due(session_factory, now=later(3600)) == 3
    assert calls(emulator) == documented(carrier_row)
    assert tracking(emulator, carrier_row) == f"{A}, {B}, {C}"
    assert len(emulator.writes()) == 3


def test_after_a_lost_answer_the_numbers_are_not_written_again(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    first, _second = ship_in_two(db_session, order)
    emulator.fail_next(503, path_contains="/api/order_carriers/", method="PUT", after=True)
    outbox.dispatch_due(session_factory)
    assert tracking(emulator, carrier_row) == f"{A}, {B}"  # written, answer lost
    db_session.expire_all()
    assert first.pushed_at is None and first.external_id is None
    emulator.requests.clear()

    assert outbox.dispatch_due(session_factory, now=later(3600)) == 3
    expected = documented(carrier_row)
    del expected[2]  # the first shipment is read and found there: no second PUT
    assert calls(emulator) == expected
    assert tracking(emulator, carrier_row) == f"{A}, {B}, {C}"
    assert len(emulator.requests_to("PUT", "/api/order_carriers")) == 1
    db_session.expire_all()
    assert first.external_id == f"oc-{carrier_row}/{first.number}"
    assert {p.external_id for p in first.parcels} == {f"oc-{carrier_row}:{n}" for n in (A, B)}
    sent = db_session.scalars(
        select(OrderEvent.details).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "outbox.sent"
        )
    ).all()
    assert sent[0]["written"] is False  # "already at the shop"


def test_a_corrected_number_replaces_the_old_one_and_nothing_else(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    first, _second = ship_in_two(db_session, order)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()

    wrong = next(p for p in first.parcels if p.tracking_number == B)
    shipments.correct_tracking(db_session, wrong, PERSON, "6A44444444444")
    db_session.commit()
    assert outbox.dispatch_due(session_factory) == 1
    # The order carrier is known now: read it, then write it back once.
    assert calls(emulator) == [
        ("GET", f"/api/order_carriers/{carrier_row}", ""),
        ("PUT", f"/api/order_carriers/{carrier_row}", "sendemail=1"),
    ]
    assert tracking(emulator, carrier_row) == f"{A}, {C}, 6A44444444444"
    db_session.expire_all()
    assert wrong.external_id == f"oc-{carrier_row}:6A44444444444"


def test_a_cancelled_shipment_takes_its_numbers_out(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    _first, second = ship_in_two(db_session, order)
    outbox.dispatch_due(session_factory)
    emulator.requests.clear()

    shipments.cancel(db_session, second, PERSON, "Colis revenu")
    db_session.commit()
    outbox.dispatch_due(session_factory)
    [put] = emulator.requests_to("PUT", "/api/order_carriers")
    assert ("sendemail", "1") not in put.query  # no "in transit" e-mail for a removal
    assert tracking(emulator, carrier_row) == f"{A}, {B}"


def test_a_number_typed_in_the_shop_arrives_once_and_is_not_echoed(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    emulator.type_tracking(carrier_row, "6A55555555555")
    for _ in range(2):
        run_sync(session_factory, shop_key(db_session))
        outbox.dispatch_due(session_factory, now=later(10**5))
    assert emulator.writes() == []

    db_session.expire_all()
    [made] = order.shipments
    assert made.origin == ShipmentOrigin.SHOP and made.state == ShipmentState.SHIPPED
    assert made.external_id == f"oc-{carrier_row}:6A55555555555"
    [parcel] = made.parcels
    assert parcel.tracking_number == "6A55555555555"
    assert (
        parcel.tracking_url == "https://www.laposte.fr/outils/suivre-vos-envois?code=6A55555555555"
    )
    assert [(item.quantity) for item in made.lines] == [2]  # PrestaShop names no lines
    assert order.fulfilment_state == FulfilmentState.SHIPPED
    messages = db_session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    assert all(m.state != OutboxState.PENDING for m in messages)


def test_a_poll_between_a_lost_answer_and_its_retry_makes_no_shipment_of_the_shop(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    first, _second = ship_in_two(db_session, order)
    emulator.fail_next(503, path_contains="/api/order_carriers/", method="PUT", after=True)
    outbox.dispatch_due(session_factory)
    emulator.update_order(ORDER)
    run_sync(session_factory, shop_key(db_session))  # sees A and B, under ids not yet known
    db_session.expire_all()
    assert len(order.shipments) == 2
    assert all(s.origin == ShipmentOrigin.COMPTOIR for s in order.shipments)
    assert first.external_id == f"oc-{carrier_row}:{A}"  # recognised by its numbers

    assert outbox.dispatch_due(session_factory, now=later(3600)) == 3
    assert tracking(emulator, carrier_row) == f"{A}, {B}, {C}"
    assert len(emulator.requests_to("PUT", "/api/order_carriers")) == 2
    db_session.expire_all()
    assert len(order.shipments) == 2


def test_a_number_added_in_the_shop_after_ours_ships_what_remains(
    db_session: Session,
    session_factory: sessionmaker[Session],
    emulator: PrestaShopEmulator,
    order: Order,
    carrier_row: str,
) -> None:
    [line] = order.lines
    ours = shipments.create_shipment(
        db_session, order, PERSON, {line.id: 1}, [shipments.ParcelInput(A)], ship=True
    )
    db_session.commit()
    outbox.dispatch_due(session_factory)
    emulator.type_tracking(carrier_row, f"{A}, 6A55555555555")
    emulator.requests.clear()
    for _ in range(2):
        run_sync(session_factory, shop_key(db_session))
        outbox.dispatch_due(session_factory, now=later(10**5))
    assert emulator.writes() == []

    db_session.expire_all()
    made = next(s for s in order.shipments if s.id != ours.id)
    assert made.origin == ShipmentOrigin.SHOP
    assert [p.tracking_number for p in made.parcels] == ["6A55555555555"]
    assert [item.quantity for item in made.lines] == [1]  # what remained, not more
    assert [p.tracking_number for p in ours.parcels] == [A]
    assert order.fulfilment_state == FulfilmentState.SHIPPED
