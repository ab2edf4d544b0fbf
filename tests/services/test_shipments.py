"""Shipments: quantities never shipped twice, states, refusals, and the order following."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_line, make_order, make_shop
from web import queue
from web.models import Job, OrderEvent, User
from web.models.enums import CommercialState, FulfilmentState, LineKind, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import bulk, order_actions, shipments
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.shipments import ParcelInput
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

F = FulfilmentState
S = ShipmentState
ACTOR = Actor.system("test")


def _order(session: Session, quantities: tuple[int, ...] = (2, 1), **overrides: object) -> Order:
    modes = ensure_default_shipping_modes(session)
    shop = make_shop(session)
    lines = [make_line(f"SKU-{i}", quantity) for i, quantity in enumerate(quantities)]
    values: dict[str, object] = {
        "commercial_state": CommercialState.VALIDATED,
        "shipping_mode": modes["mondial_relay"],
        "shipping_label": "Mondial Relay",
        "shipping_address": {"first_name": "Ana", "postcode": "75011", "city": "Paris"},
    }
    values.update(overrides)
    return make_order(session, shop, lines, **values)


@pytest.fixture()
def order(db_session: Session) -> Order:
    return _order(db_session)


def _ids(order: Order) -> list[int]:
    return [line.id for line in order.lines]


def _kinds(session: Session, order: Order) -> list[str]:
    query = select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
    return list(session.scalars(query))


# --- Quantities ------------------------------------------------------------------------------


def test_everything_remains_before_any_shipment(order: Order) -> None:
    first, second = _ids(order)
    assert shipments.remaining_quantities(order) == {first: 2, second: 1}


def test_components_fees_and_virtual_lines_are_not_shipped_on_their_own(
    db_session: Session,
) -> None:
    order = _order(db_session, (1,))
    bundle = order.lines[0]
    component = make_line("PART", 2, "0.00")
    component.parent = bundle
    order.lines.append(component)
    order.lines.append(make_line("EBOOK", 1, needs_shipping=False))
    order.lines.append(make_line("WRAP", 1, kind=LineKind.GIFT_WRAP))
    db_session.flush()
    assert shipments.remaining_quantities(order) == {bundle.id: 1}
    with pytest.raises(ValidationFailed):
        shipments.create_shipment(db_session, order, ACTOR, {component.id: 1})
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    assert [(item.order_line_id, item.quantity) for item in shipment.lines] == [(bundle.id, 1)]
    assert order.fulfilment_state == F.SHIPPED


def test_a_partial_shipment_then_the_rest(db_session: Session, order: Order) -> None:
    first, second = _ids(order)
    one = shipments.create_shipment(db_session, order, ACTOR, {first: 1}, ship=True)
    assert one.state == S.SHIPPED and one.shipped_at is not None
    assert order.fulfilment_state == F.PARTIALLY_SHIPPED
    assert shipments.remaining_quantities(order) == {first: 1, second: 1}
    rest = shipments.create_shipment(db_session, order, ACTOR)
    assert {item.order_line_id: item.quantity for item in rest.lines} == {first: 1, second: 1}
    assert rest.state == S.DRAFT
    assert order.fulfilment_state == F.PARTIALLY_SHIPPED  # a draft has not left
    shipments.pack(db_session, rest, ACTOR)
    shipments.ship_shipment(db_session, rest, ACTOR)
    assert order.fulfilment_state == F.SHIPPED
    assert rest.number != one.number
    kinds = _kinds(db_session, order)
    assert kinds.count("shipment.created") == 2 and "shipment.packed" in kinds
    assert "order.partially_shipped" in kinds and "order.shipped" in kinds


def test_a_draft_puts_the_order_in_preparation_so_shop_edits_leave_its_lines(
    db_session: Session, order: Order
) -> None:
    shipments.create_shipment(db_session, order, ACTOR)
    assert order.fulfilment_state == F.IN_PREPARATION
    assert _kinds(db_session, order)[:2] == ["order.preparation_started", "shipment.created"]


def test_over_shipping_is_refused(db_session: Session, order: Order) -> None:
    first, _ = _ids(order)
    with pytest.raises(InvalidTransition) as refused:
        shipments.create_shipment(db_session, order, ACTOR, {first: 3})
    assert refused.value.reason == "more is asked than remains to ship"
    shipments.create_shipment(db_session, order, ACTOR, {first: 2})
    with pytest.raises(InvalidTransition):
        shipments.create_shipment(db_session, order, ACTOR, {first: 1})


def test_nothing_left_to_ship_is_refused(db_session: Session, order: Order) -> None:
    shipments.ship_everything(db_session, order, ACTOR)
    with pytest.raises(InvalidTransition) as refused:
        shipments.ship_everything(db_session, order, ACTOR)
    assert refused.value.reason == "nothing remains to ship"


@pytest.mark.parametrize(
    ("lines", "field"),
    [
        ({999_999: 1}, "lines"),
        ("negative", "lines"),
        ("zero", "lines"),
    ],
)
def test_nonsense_quantities_are_refused(
    db_session: Session, order: Order, lines: object, field: str
) -> None:
    first, _ = _ids(order)
    chosen = {first: -1} if lines == "negative" else {first: 0} if lines == "zero" else lines
    with pytest.raises(ValidationFailed) as refused:
        shipments.create_shipment(db_session, order, ACTOR, chosen)  # type: ignore[arg-type]
    assert field in refused.value.errors


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"commercial_state": CommercialState.CANCELLED}, "the order is cancelled"),
        ({"commercial_state": CommercialState.NEW}, "the order is not validated yet"),
        ({"on_hold": True, "hold_reason": "Adresse"}, "the order is on hold"),
    ],
)
def test_orders_that_cannot_ship(
    db_session: Session, overrides: dict[str, object], reason: str
) -> None:
    order = _order(db_session, **overrides)
    with pytest.raises(InvalidTransition) as refused:
        shipments.ship_everything(db_session, order, ACTOR)
    assert refused.value.reason == reason
    assert order.shipments == []


def test_an_unmapped_shipping_label_needs_an_explicit_mode(db_session: Session) -> None:
    order = _order(db_session, shipping_mode=None, shipping_label="Drone express")
    with pytest.raises(InvalidTransition) as refused:
        shipments.ship_everything(db_session, order, ACTOR)
    assert "not mapped" in refused.value.reason
    ups = ensure_default_shipping_modes(db_session)["ups"]
    shipment = shipments.create_shipment(db_session, order, ACTOR, shipping_mode=ups)
    assert shipment.shipping_mode is ups


def test_a_switched_off_mode_cannot_be_chosen(db_session: Session, order: Order) -> None:
    gls = ensure_default_shipping_modes(db_session)["gls"]
    gls.is_active = False
    with pytest.raises(ValidationFailed) as refused:
        shipments.create_shipment(db_session, order, ACTOR, shipping_mode=gls)
    assert "shipping_mode" in refused.value.errors


def test_parcels_carry_the_tracking_link_with_the_postcode(
    db_session: Session, order: Order
) -> None:
    shipment = shipments.create_shipment(
        db_session,
        order,
        ACTOR,
        parcels=[ParcelInput("MR 123", "1,25"), ParcelInput("MR124", Decimal("0.5"))],
        ship=True,
    )
    first, second = shipment.parcels
    assert first.tracking_number == "MR 123" and first.weight_kg == Decimal("1.250")
    mode = order.shipping_mode
    assert mode is not None
    assert first.tracking_url == mode.tracking_url("MR 123", "75011")
    assert second.tracking_url == mode.tracking_url("MR124", "75011")
    assert second.tracking_url != first.tracking_url


@pytest.mark.parametrize("weight", ["0", "-1", "abc", "1001", "1.2345", "NaN"])
def test_bad_weights_are_refused(db_session: Session, order: Order, weight: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        shipments.ship_everything(db_session, order, ACTOR, "6A1", weight)
    assert "weight_kg" in refused.value.errors


def test_a_too_long_tracking_number_is_refused(db_session: Session, order: Order) -> None:
    with pytest.raises(ValidationFailed):
        shipments.ship_everything(db_session, order, ACTOR, "X" * 81)


def test_the_same_idempotency_key_returns_the_same_shipment(
    db_session: Session, order: Order
) -> None:
    one = shipments.ship_everything(db_session, order, ACTOR, "6A1", idempotency_key="pack-42")
    again = shipments.ship_everything(db_session, order, ACTOR, "6A1", idempotency_key="pack-42")
    assert again is one
    assert len(order.shipments) == 1
    other = _order(db_session)
    with pytest.raises(ValidationFailed):
        shipments.ship_everything(db_session, other, ACTOR, idempotency_key="pack-42")


# --- States ----------------------------------------------------------------------------------


def test_the_life_of_a_shipment(db_session: Session, order: Order) -> None:
    shipment = shipments.create_shipment(db_session, order, ACTOR)
    assert shipments.allowed_actions(shipment) == {"pack", "ship", "cancel"}
    shipments.pack(db_session, shipment, ACTOR)
    assert shipments.allowed_actions(shipment) == {"ship", "cancel"}
    with pytest.raises(InvalidTransition):
        shipments.pack(db_session, shipment, ACTOR)
    with pytest.raises(InvalidTransition):
        shipments.deliver(db_session, shipment, ACTOR)
    shipments.ship_shipment(db_session, shipment, ACTOR)
    assert shipments.allowed_actions(shipment) == {"deliver", "cancel"}
    shipments.deliver(db_session, shipment, ACTOR)
    assert shipment.state == S.DELIVERED and shipment.delivered_at is not None
    assert order.fulfilment_state == F.DELIVERED
    assert shipments.allowed_actions(shipment) == set()
    with pytest.raises(InvalidTransition):
        shipments.cancel(db_session, shipment, ACTOR, "Perdu")
    kinds = [k for k in _kinds(db_session, order) if not k.startswith("outbox.")]
    assert kinds[-3:] == ["order.shipped", "shipment.delivered", "order.delivered"]


def test_an_order_is_delivered_only_when_every_shipment_is(
    db_session: Session, order: Order
) -> None:
    first, second = _ids(order)
    one = shipments.create_shipment(db_session, order, ACTOR, {first: 2}, ship=True)
    two = shipments.create_shipment(db_session, order, ACTOR, {second: 1}, ship=True)
    shipments.deliver(db_session, one, ACTOR)
    assert order.fulfilment_state == F.SHIPPED
    shipments.deliver(db_session, two, ACTOR)
    assert order.fulfilment_state == F.DELIVERED


def test_cancelling_a_draft_frees_its_quantities(db_session: Session, order: Order) -> None:
    draft = shipments.create_shipment(db_session, order, ACTOR)
    assert not any(shipments.remaining_quantities(order).values())
    shipments.cancel(db_session, draft, ACTOR)
    assert draft.state == S.CANCELLED and draft.cancelled_at is not None
    assert shipments.remaining_quantities(order) == dict(zip(_ids(order), (2, 1), strict=True))
    again = shipments.create_shipment(db_session, order, ACTOR)
    assert again.number != draft.number
    with pytest.raises(InvalidTransition):
        shipments.ship_shipment(db_session, draft, ACTOR)


def test_cancelling_a_shipped_shipment_moves_the_order_back(
    db_session: Session, order: Order
) -> None:
    first, _ = _ids(order)
    partial = shipments.create_shipment(db_session, order, ACTOR, {first: 1}, ship=True)
    rest = shipments.create_shipment(db_session, order, ACTOR, ship=True)
    assert order.fulfilment_state == F.SHIPPED
    shipments.cancel(db_session, rest, ACTOR)
    assert order.fulfilment_state == F.PARTIALLY_SHIPPED
    shipments.cancel(db_session, partial, ACTOR)
    assert order.fulfilment_state == F.IN_PREPARATION
    withdrawn = db_session.scalars(
        select(OrderEvent)
        .where(OrderEvent.order_id == order.id, OrderEvent.kind == "order.fulfilment_withdrawn")
        .order_by(OrderEvent.id)
    ).all()
    assert [(e.details["from"], e.details["to"]) for e in withdrawn] == [
        (F.SHIPPED.value, F.PARTIALLY_SHIPPED.value),
        (F.PARTIALLY_SHIPPED.value, F.IN_PREPARATION.value),
    ]
    assert {e.actor_type for e in withdrawn} == {ACTOR.type}


def test_a_shipment_the_shop_knows_needs_a_reason_to_be_cancelled(
    db_session: Session, order: Order
) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR, "6A1")
    assert shipment.pushed_at is None
    shipment.pushed_at = shipment.shipped_at
    with pytest.raises(ValidationFailed) as refused:
        shipments.cancel(db_session, shipment, ACTOR, "  ")
    assert "reason" in refused.value.errors
    shipments.cancel(db_session, shipment, ACTOR, "Colis refusé par le transporteur")
    assert shipment.cancel_reason == "Colis refusé par le transporteur"
    assert order.fulfilment_state == F.IN_PREPARATION


def test_a_held_order_keeps_its_drafts_from_shipping(db_session: Session, order: Order) -> None:
    shipment = shipments.create_shipment(db_session, order, ACTOR)
    order.on_hold = True
    with pytest.raises(InvalidTransition) as refused:
        shipments.ship_shipment(db_session, shipment, ACTOR)
    assert refused.value.reason == "the order is on hold"
    assert shipments.allowed_actions(shipment) == {"cancel"}


def test_tracking_added_and_corrected_after_shipping(db_session: Session, order: Order) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR)
    (parcel,) = shipment.parcels if shipment.parcels else (None,)
    assert parcel is None  # no tracking, no weight: no parcel
    shipment.pushed_at = shipment.shipped_at
    added = shipments.add_parcel(db_session, shipment, ACTOR, "MR1", "2")
    assert added.tracking_url and shipment.pushed_at is None  # to be pushed again
    shipments.correct_tracking(db_session, added, ACTOR, "MR2")
    mode = order.shipping_mode
    assert mode is not None
    assert added.tracking_url == mode.tracking_url("MR2", "75011")
    with pytest.raises(ValidationFailed):
        shipments.correct_tracking(db_session, added, ACTOR, " ")
    kinds = _kinds(db_session, order)
    assert kinds[-2:] == ["shipment.parcel_added", "shipment.tracking_changed"]


def test_no_parcel_on_a_cancelled_shipment(db_session: Session, order: Order) -> None:
    shipment = shipments.create_shipment(db_session, order, ACTOR)
    shipments.cancel(db_session, shipment, ACTOR)
    with pytest.raises(InvalidTransition):
        shipments.add_parcel(db_session, shipment, ACTOR, "6A1")


# --- Properties ------------------------------------------------------------------------------

STEP = st.one_of(
    st.tuples(st.just("create"), st.lists(st.integers(0, 2), min_size=3, max_size=3)),
    st.tuples(st.just("everything"), st.booleans()),
    st.tuples(st.sampled_from(["pack", "ship", "deliver", "cancel"]), st.integers(0, 5)),
)


def _expected_fulfilment(order: Order) -> set[FulfilmentState]:
    lines = shipments.shippable_lines(order)
    shipped = dict.fromkeys((line.id for line in lines), 0)
    sent = [s for s in order.shipments if s.state in (S.SHIPPED, S.DELIVERED)]
    for shipment in sent:
        for item in shipment.lines:
            shipped[item.order_line_id] += item.quantity
    if not any(shipped.values()):
        return {F.UNFULFILLED, F.IN_PREPARATION}
    if any(shipped[line.id] < line.quantity for line in lines):
        return {F.PARTIALLY_SHIPPED}
    if all(s.state == S.DELIVERED for s in sent):
        return {F.DELIVERED}
    return {F.SHIPPED}


def _run(session: Session, order: Order, step: tuple[str, object]) -> None:
    action, argument = step
    try:
        if action == "create":
            quantities = argument
            assert isinstance(quantities, list)
            chosen = dict(zip(_ids(order), quantities, strict=True))
            shipments.create_shipment(session, order, ACTOR, chosen, ship=True)
        elif action == "everything":
            shipments.create_shipment(session, order, ACTOR, ship=bool(argument))
        elif order.shipments:
            assert isinstance(argument, int)
            shipment = order.shipments[argument % len(order.shipments)]
            shipments.perform(session, shipment, action, ACTOR, reason="test")
    except (InvalidTransition, ValidationFailed):
        pass


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=st.lists(STEP, min_size=1, max_size=12))
@example(steps=[("create", [1, 0, 0]), ("everything", True), ("deliver", 0), ("cancel", 1)])
def test_no_sequence_ships_more_than_ordered_and_the_state_follows(
    session_factory: sessionmaker[Session], steps: list[tuple[str, object]]
) -> None:
    session = session_factory()
    session.begin_nested()
    try:
        order = _order(session, (2, 1, 1))
        for step in steps:
            _run(session, order, step)
            held: dict[int, int] = {}
            for shipment in order.shipments:
                if shipment.state != S.CANCELLED:
                    for item in shipment.lines:
                        held[item.order_line_id] = held.get(item.order_line_id, 0) + item.quantity
            for line in order.lines:
                assert held.get(line.id, 0) <= line.quantity
                assert shipments.remaining_quantities(order)[line.id] == line.quantity - held.get(
                    line.id, 0
                )
            assert order.fulfilment_state in _expected_fulfilment(order)
    finally:
        session.rollback()
        session.close()


# --- Bulk "mark delivered" -------------------------------------------------------------------


def test_bulk_mark_delivered_delivers_what_is_on_its_way_and_lists_the_rest(
    db_session: Session, session_factory: sessionmaker[Session], make_user: Callable[..., User]
) -> None:
    manager = make_user("manager")
    shipped = _order(db_session)
    on_its_way = shipments.ship_everything(db_session, shipped, ACTOR, "6A1")
    draft_only = _order(db_session)
    shipments.create_shipment(db_session, draft_only, ACTOR)
    selection = bulk.select_orders(db_session, [str(shipped.id), str(draft_only.id)])
    job = bulk.start_deliver(db_session, selection, manager.id)
    db_session.commit()
    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    done = db_session.get_one(Job, job.id)
    assert done.result["done"] == 1
    assert done.result["refused"] == [
        {
            "id": draft_only.id,
            "number": draft_only.number,
            "reason": "no shipment of the order is on its way",
        }
    ]
    assert db_session.get_one(Shipment, on_its_way.id).state == S.DELIVERED
    assert db_session.get_one(Order, shipped.id).fulfilment_state == F.DELIVERED


def test_a_shop_edit_after_a_draft_keeps_the_shipped_lines(db_session: Session) -> None:
    from tests.services.test_intake import T0, deliver, shop_order, the_order

    modes = ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "edits")
    order_id = deliver(db_session, shop, shop_order()).order_id
    order = the_order(db_session, shop)
    assert order.id == order_id
    order.commercial_state = CommercialState.VALIDATED
    draft = shipments.create_shipment(db_session, order, ACTOR, shipping_mode=modes["dpd"])
    edited = shop_order(lines=shop_order().lines[:1], updated_at=T0 + dt.timedelta(minutes=1))
    deliver(db_session, shop, edited)
    db_session.flush()
    assert [line.sku for line in order.lines] == ["BOUG-FIG", "THE-VERT"]
    assert order.needs_review
    assert sum(item.quantity for item in draft.lines) == 3


# --- Two people at once (PostgreSQL: row locks) ----------------------------------------------


def _race(
    factories: list[sessionmaker[Session]], order_id: int, keys: tuple[str, str]
) -> list[object]:
    """Ship everything of the order from two connections at once; each outcome, in order."""
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            with factories[index].begin() as session:
                order = order_actions.lock_order(session, order_id)
                assert order is not None
                shipment = shipments.ship_everything(
                    session, order, ACTOR, idempotency_key=keys[index]
                )
                outcomes[index] = shipment.id
        except Exception as exc:  # the outcome is what the test looks at
            outcomes[index] = exc

    threads = [threading.Thread(target=attempt, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def _fresh_order(factory: sessionmaker[Session]) -> int:
    with factory.begin() as session:
        return _order(session).id


def test_the_same_key_sent_twice_at_once_makes_one_shipment(
    two_processes: list[sessionmaker[Session]],
) -> None:
    order_id = _fresh_order(two_processes[0])
    outcomes = _race(two_processes, order_id, ("confirm-1", "confirm-1"))
    assert isinstance(outcomes[0], int) and outcomes[0] == outcomes[1], outcomes
    with two_processes[0]() as session:
        count = session.scalar(
            select(func.count()).select_from(Shipment).where(Shipment.order_id == order_id)
        )
    assert count == 1


def test_two_people_shipping_everything_at_once_ship_it_once(
    two_processes: list[sessionmaker[Session]],
) -> None:
    order_id = _fresh_order(two_processes[0])
    outcomes = _race(two_processes, order_id, ("desk-a", "desk-b"))
    shipped = [outcome for outcome in outcomes if isinstance(outcome, int)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, InvalidTransition)]
    assert len(shipped) == 1 and len(refused) == 1, outcomes
    assert refused[0].reason == "nothing remains to ship"


# --- What a refusal and the timeline say -----------------------------------------------------


def _details(session: Session, order: Order, kind: str) -> list[dict[str, object]]:
    query = (
        select(OrderEvent.details)
        .where(OrderEvent.order_id == order.id, OrderEvent.kind == kind)
        .order_by(OrderEvent.id)
    )
    return list(session.scalars(query))


def test_over_shipping_is_refused_as_a_ship_action(db_session: Session, order: Order) -> None:
    first, _ = _ids(order)
    with pytest.raises(InvalidTransition) as refused:
        shipments.create_shipment(db_session, order, ACTOR, {first: 3})
    assert (refused.value.action, refused.value.reason) == (
        "ship",
        "more is asked than remains to ship",
    )


def test_a_too_long_idempotency_key_is_refused_with_its_message(
    db_session: Session, order: Order
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        shipments.ship_everything(db_session, order, ACTOR, idempotency_key="k" * 121)
    assert refused.value.errors == {
        "idempotency_key": "Keep the idempotency key under 120 characters."
    }
    assert order.shipments == []


def test_a_draft_cannot_be_delivered_nor_a_cancelled_shipment_cancelled_again(
    db_session: Session, order: Order
) -> None:
    draft = shipments.create_shipment(db_session, order, ACTOR)
    with pytest.raises(InvalidTransition) as refused:
        shipments.deliver(db_session, draft, ACTOR)
    assert (refused.value.action, refused.value.reason) == (
        "deliver",
        "the shipment is not shipped yet",
    )
    shipments.cancel(db_session, draft, ACTOR)
    with pytest.raises(InvalidTransition) as refused:
        shipments.cancel(db_session, draft, ACTOR, "Doublon")
    assert (refused.value.action, refused.value.reason) == ("cancel", "the shipment is cancelled")


def test_the_timeline_says_what_was_shipped_and_why_it_was_cancelled(
    db_session: Session, order: Order
) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR, "MR 123")
    [shipped] = _details(db_session, order, "shipment.shipped")
    assert shipped == {
        "shipment": shipment.number,
        "shipment_id": shipment.id,
        "carrier": "Mondial Relay Point Relais",
        "tracking": ["MR 123"],
        "via": "test",
    }
    shipments.cancel(db_session, shipment, ACTOR, "Colis perdu")
    [cancelled] = _details(db_session, order, "shipment.cancelled")
    assert cancelled == {
        "shipment": shipment.number,
        "shipment_id": shipment.id,
        "reason": "Colis perdu",
        "was": "shipped",
        "via": "test",
    }


def test_a_shipment_holds_at_most_50_parcels(db_session: Session, order: Order) -> None:
    shipment = shipments.ship_everything(db_session, order, ACTOR)
    for number in range(50):
        shipments.add_parcel(db_session, shipment, ACTOR, f"MR{number}")
    with pytest.raises(ValidationFailed) as refused:
        shipments.add_parcel(db_session, shipment, ACTOR, "MR50")
    assert refused.value.errors == {"parcels": "A shipment holds at most 50 parcels."}
    assert len(shipment.parcels) == 50


def test_without_a_shipping_address_the_tracking_link_takes_the_billing_postcode(
    db_session: Session,
) -> None:
    order = _order(
        db_session,
        shipping_address={},
        billing_address={"first_name": "Ana", "postcode": "69007", "city": "Lyon"},
    )
    shipment = shipments.ship_everything(db_session, order, ACTOR, "MR 123")
    mode = order.shipping_mode
    assert mode is not None
    [parcel] = shipment.parcels
    assert parcel.tracking_url == mode.tracking_url("MR 123", "69007")
    assert parcel.tracking_url != mode.tracking_url("MR 123", "")
