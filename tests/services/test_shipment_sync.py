"""Shipments and the shop: what is queued for it, what it is told, and what it made itself."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.factories import make_line, make_order, make_shop
from web.connectors.base import ShopParcel, ShopShipment
from web.models import OrderEvent, OutboxMessage
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    OutboxState,
    Platform,
    ShipmentOrigin,
    ShipmentState,
)
from web.models.orders import Order
from web.services import outbox, shipments
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

ACTOR = Actor.system("test")
SHOP = Actor.shop("test")


def _order(session: Session, quantities: tuple[int, ...] = (2, 1)) -> Order:
    modes = ensure_default_shipping_modes(session)
    modes["colissimo"].carrier_codes = {"magento": "colissimo"}
    shop = make_shop(session)
    lines = [make_line(f"SKU-{i}", q, external_id=f"L{i}") for i, q in enumerate(quantities)]
    return make_order(
        session,
        shop,
        lines,
        commercial_state=CommercialState.VALIDATED,
        shipping_mode=modes["colissimo"],
        shipping_label="Colissimo",
        shipping_address={"first_name": "Ana", "postcode": "75011", "city": "Paris"},
    )


@pytest.fixture()
def order(db_session: Session) -> Order:
    return _order(db_session)


def _messages(session: Session, kind: str = "shipment") -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
    return list(session.scalars(query))


def _kinds(session: Session, order: Order) -> list[str]:
    query = select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    return list(session.scalars(query))


# --- Queued for the shop ---------------------------------------------------------------------


def test_a_draft_is_not_queued_and_shipping_queues_one_message(
    db_session: Session, order: Order
) -> None:
    shipment = shipments.create_shipment(db_session, order, ACTOR)
    shipments.pack(db_session, shipment, ACTOR)
    assert _messages(db_session) == []
    shipments.ship_shipment(db_session, shipment, ACTOR)
    [message] = _messages(db_session)
    assert message.payload == {"shipment_id": shipment.id, "number": shipment.number}
    assert message.state == OutboxState.PENDING
    assert shipment.pushed_at is None


def test_changes_while_a_message_waits_ride_with_it(db_session: Session, order: Order) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    shipments.add_parcel(db_session, shipment, ACTOR, "6A2")
    shipments.correct_tracking(db_session, shipment.parcels[0], ACTOR, "6A0")
    assert len(_messages(db_session)) == 1


def test_a_change_after_the_message_left_queues_another(db_session: Session, order: Order) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    [first] = _messages(db_session)
    first.state = OutboxState.SENT
    shipment.pushed_at = first.sent_at = dt.datetime.now(dt.UTC)
    shipments.add_parcel(db_session, shipment, ACTOR, "6A2")
    second = _messages(db_session)[-1]
    assert second.id != first.id and second.idempotency_key != first.idempotency_key
    assert shipment.pushed_at is None
    # A message being sent right now may carry the state before the change: one more.
    second.claimed_until = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)
    shipments.correct_tracking(db_session, shipment.parcels[1], ACTOR, "6A3")
    assert len(_messages(db_session)) == 3


def test_the_milestone_follows_the_shipment(db_session: Session, order: Order) -> None:
    shipments.ship_everything(db_session, order, ACTOR, "6A1")
    kinds = [m.kind for m in db_session.scalars(select(OutboxMessage).order_by(OutboxMessage.id))]
    assert kinds[0] == "shipment"
    assert kinds[1:] in ([], ["status"])


def test_what_the_shop_is_told(db_session: Session) -> None:
    order = _order(db_session, (2, 1))
    first, second = (line.id for line in order.lines)
    part = shipments.create_shipment(
        db_session,
        order,
        ACTOR,
        {first: 2},
        [shipments.ParcelInput("6A1", "1.5"), shipments.ParcelInput("6A2")],
        ship=True,
    )
    told = outbox.shipment_to_push(part)
    assert told.reference == part.number and told.external_id == ""
    assert [(li.line_external_id, li.quantity, li.sku) for li in told.lines] == [("L0", 2, "SKU-0")]
    assert told.tracking_numbers == ("6A1", "6A2")
    assert told.parcels[0].tracking_url.startswith("https://")
    assert str(told.parcels[0].weight_kg) == "1.500"
    assert told.carrier_name == "Colissimo"
    assert told.carrier_code == ""  # no code for this shop's platform
    assert told.whole_order is False and told.cancelled is False and told.notify is True
    assert told.shipped_at is not None and told.shipped_at == part.shipped_at
    part.parcels[0].external_id = "fulfilment-line-9"  # the shop's id, learnt from a push
    assert [p.external_id for p in outbox.shipment_to_push(part).parcels] == [
        "fulfilment-line-9",
        "",
    ]
    rest = shipments.create_shipment(db_session, order, ACTOR, {second: 1}, ship=True)
    assert outbox.shipment_to_push(rest).whole_order is False
    order.shop.notify_shipments = False
    shipments.cancel(db_session, part, ACTOR, "Lost")
    told = outbox.shipment_to_push(part)
    assert told.cancelled is True and told.notify is False


def test_a_shipment_of_everything_is_the_whole_order(db_session: Session, order: Order) -> None:
    order.shop.platform = Platform.MAGENTO
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    told = outbox.shipment_to_push(shipment)
    assert told.whole_order is True
    assert told.carrier_code == "colissimo"


def test_lines_that_are_not_shipped_do_not_keep_a_shipment_from_being_the_whole_order(
    db_session: Session,
) -> None:
    order = _order(db_session, (1,))
    order.lines.append(make_line("EBOOK", 1, external_id="L9", needs_shipping=False))
    db_session.flush()
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    assert [item.order_line.sku for item in shipment.lines] == ["SKU-0"]
    assert outbox.shipment_to_push(shipment).whole_order is True


def test_switched_off_or_pointless_messages_are_not_sent(db_session: Session, order: Order) -> None:
    from web.db import make_session_factory

    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    order.shop.push_tracking = False
    db_session.commit()
    sessions = make_session_factory(db_session.get_bind())  # type: ignore[arg-type]
    [message] = _messages(db_session)
    assert outbox.deliver(sessions, message.id) == OutboxState.IGNORED
    db_session.expire_all()
    assert "switched off" in _messages(db_session)[0].last_error
    assert db_session.get(type(shipment), shipment.id).pushed_at is None  # type: ignore[union-attr]


# --- Made in the shop ------------------------------------------------------------------------


def _from_shop(
    external_id: str = "F1",
    lines: tuple[tuple[str, int], ...] | None = (("L0", 2),),
    numbers: tuple[str, ...] = ("LB1",),
    cancelled: bool = False,
) -> ShopShipment:
    return ShopShipment(
        external_id=external_id,
        parcels=tuple(ShopParcel(n, "Colissimo") for n in numbers),
        lines=lines,
        carrier="Colissimo",
        shipped_at=dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC),
        cancelled=cancelled,
    )


def test_a_shipment_made_in_the_shop_arrives_once_and_is_never_queued(
    db_session: Session, order: Order
) -> None:
    assert shipments.record_shop_shipments(db_session, order, [_from_shop()], SHOP) == 1
    [made] = order.shipments
    assert made.origin == ShipmentOrigin.SHOP and made.state == ShipmentState.SHIPPED
    assert made.external_id == "F1" and made.pushed_at is not None
    assert [(i.order_line.sku, i.quantity) for i in made.lines] == [("SKU-0", 2)]
    assert [p.tracking_number for p in made.parcels] == ["LB1"]
    assert made.parcels[0].tracking_url.endswith("LB1")
    assert made.shipped_at == dt.datetime(2026, 11, 30, 9, tzinfo=dt.UTC)
    assert order.fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED
    assert "shipment.received_from_shop" in _kinds(db_session, order)
    assert shipments.record_shop_shipments(db_session, order, [_from_shop()], SHOP) == 0
    assert len(order.shipments) == 1
    assert db_session.scalars(select(OutboxMessage)).all() == []
    # Corrected by hand in Comptoir, it still stays the shop's: nothing is sent back.
    shipments.add_parcel(db_session, made, ACTOR, "LB2")
    assert db_session.scalars(select(OutboxMessage)).all() == []


def test_the_shop_never_ships_more_than_remains(db_session: Session, order: Order) -> None:
    shipments.create_shipment(db_session, order, ACTOR, {order.lines[0].id: 1}, ship=True)
    incoming = _from_shop(lines=(("L0", 2), ("L1", 5), ("UNKNOWN", 1)))
    shipments.record_shop_shipments(db_session, order, [incoming], SHOP)
    made = order.shipments[-1]
    assert sorted((i.order_line.sku, i.quantity) for i in made.lines) == [
        ("SKU-0", 1),
        ("SKU-1", 1),
    ]
    assert order.fulfilment_state == FulfilmentState.SHIPPED
    # Nothing remains: another one is noted, not taken in.
    shipments.record_shop_shipments(db_session, order, [_from_shop("F2")], SHOP)
    assert len(order.shipments) == 2
    assert "shipment.shop_extra" in _kinds(db_session, order)


def test_a_platform_without_lines_ships_what_remains_and_adds_tracking(
    db_session: Session, order: Order
) -> None:
    first = _from_shop("T1", lines=None, numbers=("LB1",))
    shipments.record_shop_shipments(db_session, order, [first], SHOP)
    [made] = order.shipments
    assert sum(i.quantity for i in made.lines) == 3
    second = _from_shop("T2", lines=None, numbers=("LB2",))
    shipments.record_shop_shipments(db_session, order, [first, second], SHOP)
    assert len(order.shipments) == 1
    assert [(p.tracking_number, p.external_id) for p in made.parcels] == [
        ("LB1", "T1"),
        ("LB2", "T2"),
    ]
    assert shipments.record_shop_shipments(db_session, order, [first, second], SHOP) == 0


def test_the_shop_cancels_its_shipment(db_session: Session, order: Order) -> None:
    shipments.record_shop_shipments(db_session, order, [_from_shop()], SHOP)
    shipments.record_shop_shipments(db_session, order, [_from_shop(cancelled=True)], SHOP)
    [made] = order.shipments
    assert made.state == ShipmentState.CANCELLED
    assert order.fulfilment_state == FulfilmentState.IN_PREPARATION
    # A cancelled one Comptoir never had is not created.
    shipments.record_shop_shipments(db_session, order, [_from_shop("F9", cancelled=True)], SHOP)
    assert len(order.shipments) == 1


def test_our_shipment_whose_answer_was_lost_is_recognised_not_doubled(
    db_session: Session, order: Order
) -> None:
    ours = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    echoed = _from_shop("F7", lines=(("L0", 2), ("L1", 1)), numbers=("6A1",))
    assert shipments.record_shop_shipments(db_session, order, [echoed], SHOP) == 1
    assert order.shipments == [ours]
    assert ours.external_id == "F7" and ours.origin == ShipmentOrigin.COMPTOIR
    # Known by its id from now on, and Comptoir's copy leads.
    changed = _from_shop("F7", lines=(("L0", 2), ("L1", 1)), numbers=("6A1", "OTHER"))
    assert shipments.record_shop_shipments(db_session, order, [changed], SHOP) == 0
    assert [p.tracking_number for p in ours.parcels] == ["6A1"]


def test_our_shipment_without_tracking_is_recognised_by_its_lines(
    db_session: Session, order: Order
) -> None:
    ours = shipments.create_shipment(db_session, order, ACTOR, {order.lines[0].id: 2}, ship=True)
    echoed = _from_shop("F8", lines=(("L0", 2),), numbers=())
    shipments.record_shop_shipments(db_session, order, [echoed], SHOP)
    assert order.shipments == [ours] and ours.external_id == "F8"
