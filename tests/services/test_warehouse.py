"""The warehouse service: what to pick (bundles too), the queue's next order, bins, a race."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_line, make_order, make_shop
from web.models import Document
from web.models.enums import CommercialState, LineKind, PaymentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import order_actions, shipments, warehouse
from web.services.errors import ValidationFailed
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

ACTOR = Actor.system("test")
READY = {"commercial_state": CommercialState.VALIDATED, "payment_state": PaymentState.PAID}
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def _order(session: Session, lines: list, hours: int = 0, **overrides: object) -> Order:
    modes = ensure_default_shipping_modes(session)
    shop = make_shop(session, f"shop-{hours}-{len(lines)}")
    values: dict[str, object] = {
        "shipping_mode": modes["colissimo"],
        "shipping_label": "Colissimo",
        "placed_at": START + dt.timedelta(hours=hours),
        **READY,
    }
    values.update(overrides)
    return make_order(session, shop, lines, **values)


def test_a_bundle_is_picked_as_what_remains_of_its_components(db_session: Session) -> None:
    box = make_line("BOX", 2)
    order = _order(db_session, [box, make_line("CARD", 1)])
    db_session.flush()
    for sku, quantity in (("CUP", 2), ("SAUCER", 4)):
        db_session.add(
            make_line(
                sku, quantity, order_id=order.id, parent_line_id=box.id, kind=LineKind.PRODUCT
            )
        )
    db_session.flush()
    db_session.refresh(order)
    shipments.create_shipment(db_session, order, ACTOR, {box.id: 1}, ship=True)

    rows = warehouse.pick_list(db_session, [order])
    assert [(row.sku, row.quantity) for row in rows] == [("CARD", 1), ("CUP", 1), ("SAUCER", 2)]
    # The pack screen counts the bundle itself, as it ships.
    assert [(line.sku, line.quantity) for line in warehouse.pack_lines(db_session, order)] == [
        ("BOX", 1),
        ("CARD", 1),
    ]


def test_the_next_order_is_the_oldest_ready_one_of_the_mode(db_session: Session) -> None:
    modes = ensure_default_shipping_modes(db_session)
    first = _order(db_session, [make_line()], 1)
    _order(db_session, [make_line()], 0, shipping_mode=modes["chronopost"])
    third = _order(db_session, [make_line()], 2)
    db_session.flush()
    assert warehouse.next_order(db_session, "colissimo", after=first.id) == third
    assert warehouse.next_order(db_session, "colissimo", after=None) == first
    assert warehouse.next_order(db_session, None, after=first.id) != first
    assert warehouse.next_order(db_session, "none", after=None) is None


def test_bins_read_tabs_and_a_bin_header() -> None:
    rows = warehouse.read_bins(b"sku\tbin\nMUG\tA-01\n\n  TEA \t B-2 \n")
    assert rows == [(2, "MUG", "A-01"), (4, "TEA", "B-2")]


def test_a_file_of_too_many_bins_is_refused() -> None:
    data = b"MUG;A-01\n" * (warehouse.MAX_BIN_ROWS + 1)
    with pytest.raises(ValidationFailed) as refused:
        warehouse.read_bins(data)
    assert str(refused.value) == "The file holds too many rows."


def test_a_bins_row_with_too_long_a_sku_is_refused_naming_its_line(db_session: Session) -> None:
    rows = [(1, "MUG", "A-01"), (2, "X" * (warehouse.SKU_MAX_LENGTH + 1), "A-02")]
    result = warehouse.import_bins(db_session, rows)
    assert (result.created, result.refused) == (1, [(2, "SKU over 120 characters")])


def test_the_pick_list_takes_the_oldest_order_first(db_session: Session) -> None:
    later = _order(db_session, [make_line("MUG", 1)], 5)
    older = _order(db_session, [make_line("TEA", 1)], 1)  # imported after, placed before
    db_session.flush()
    assert warehouse.orders_to_pick(db_session, [later.id, older.id]) == [older, later]


def test_a_missing_item_without_a_sku_is_named_by_its_name() -> None:
    assert warehouse.missing_item(make_line("", 1, name="Mug bleu"), "  cassé  ") == (
        "Mug bleu (cassé)"
    )
    assert warehouse.missing_item(make_line("MUG", 1, name="Mug bleu"), "") == "MUG — Mug bleu"


def test_a_pack_sent_without_its_key_is_refused(db_session: Session) -> None:
    order = _order(db_session, [make_line("MUG", 1)])
    with pytest.raises(ValidationFailed) as refused:
        warehouse.confirm_pack(db_session, order, ACTOR, {order.lines[0].id: 1}, [], None, " ")
    assert str(refused.value) == "The page sent no idempotency key."
    assert refused.value.errors == {"key": "The page sent no key."}
    assert order.shipments == []


# --- The same confirm twice at once (PostgreSQL: row locks) ----------------------------------


def test_the_same_pack_confirmed_twice_at_once_ships_once_with_one_note(
    app: Flask, two_processes: list[sessionmaker[Session]]
) -> None:
    # `app` configures the document storage the delivery note is written to.
    with two_processes[0].begin() as session:
        order = _order(session, [make_line("MUG", 2), make_line("TEA", 1)], 99)
        session.flush()
        order_id = order.id
        quantities = {line.id: line.quantity for line in order.lines}
    barrier = threading.Barrier(2)
    outcomes: list[object] = [None, None]

    def attempt(index: int) -> None:
        barrier.wait()
        try:
            with two_processes[index].begin() as session:
                locked = order_actions.lock_order(session, order_id)
                assert locked is not None
                packed = warehouse.confirm_pack(
                    session, locked, ACTOR, quantities, [], None, "pack-race-1"
                )
                outcomes[index] = (packed.shipment.id, packed.delivery_note.id)
        except Exception as exc:  # the outcome is what the test looks at
            outcomes[index] = exc

    threads = [threading.Thread(target=attempt, args=(index,)) for index in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert isinstance(outcomes[0], tuple) and outcomes[0] == outcomes[1], outcomes
    with two_processes[0]() as session:
        count = session.scalar(
            select(func.count()).select_from(Shipment).where(Shipment.order_id == order_id)
        )
        notes = session.scalar(
            select(func.count()).select_from(Document).where(Document.order_id == order_id)
        )
    assert (count, notes) == (1, 1)
