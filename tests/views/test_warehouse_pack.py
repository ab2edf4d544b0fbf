"""The warehouse on the phone: the queue by shipping mode, pick lists, bins, the pack confirm."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_from, log_in
from tests.factories import make_line, make_order, make_shop
from web.documents.delivery_notes import find_delivery_note
from web.models import OutboxMessage, ShippingMode, Shop, User, WarehouseBin
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    PaymentState,
    ShipmentState,
)
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import shipments
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

READY = {"commercial_state": CommercialState.VALIDATED, "payment_state": PaymentState.PAID}
PARTIAL = {"HX-Request": "true"}
JSON = {"Accept": "application/json"}
DAY = dt.timedelta(days=1)
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture()
def modes(db_session: Session) -> dict[str, ShippingMode]:
    return ensure_default_shipping_modes(db_session)


def ready_order(
    session: Session, modes: dict[str, ShippingMode], lines: list, days: int, **overrides
) -> Order:
    values = {
        "shipping_label": "Colissimo",
        "shipping_mode": modes["colissimo"],
        "shipping_address": {"first_name": "Ana", "postcode": "69001", "city": "Lyon"},
        "placed_at": START + days * DAY,
        **READY,
    }
    values.update(overrides)
    shop = session.scalars(select(Shop)).first() or make_shop(session)
    return make_order(session, shop, lines, **values)


def chips(html: str) -> dict[str, str]:
    """The queue's shipping mode filter: label → count."""
    found = re.findall(
        r'class="mode-chip"[^>]*>([^<]+?) <span class="mode-count">(\d+)</span>', html
    )
    return {label.strip(): count for label, count in found}


def numbers(html: str) -> list[str]:
    return re.findall(r'class="queue-number"[^>]*>([^<]+)<', html)


# --- The queue -------------------------------------------------------------------------------


def test_the_queue_filters_by_shipping_mode_with_counts(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    modes: dict[str, ShippingMode],
) -> None:
    relay = next(mode for code, mode in modes.items() if mode.is_relay_point)
    ready_order(db_session, modes, [make_line("A")], 1)  # #1001 colissimo
    ready_order(db_session, modes, [make_line("A")], 2, shipping_mode=relay)  # #1002
    ready_order(db_session, modes, [make_line("A")], 3)  # #1003 colissimo
    ready_order(db_session, modes, [make_line("A")], 4, shipping_mode=None, shipping_label="X")
    ready_order(db_session, modes, [make_line("A")], 0, on_hold=True)  # not ready
    db_session.commit()
    login_as("warehouse")

    html = client.get("/warehouse/").get_data(as_text=True)
    assert numbers(html) == ["#1001", "#1002", "#1003", "#1004"]
    assert chips(html) == {
        "Tous les modes": "4",
        modes["colissimo"].name: "2",
        relay.name: "1",
        "Sans mode d’expédition": "1",
    }

    # A filter is an htmx swap of the list and its counts, and its URL loads as a page.
    response = client.get("/warehouse/?mode=colissimo", headers=PARTIAL)
    fragment = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" not in fragment
    assert fragment.startswith('<div id="queue">')
    assert numbers(fragment) == ["#1001", "#1003"]
    assert "2 commandes" in fragment
    assert re.search(r'href="/warehouse/\?mode=colissimo"[^>]*aria-current="true"', fragment)
    assert "<html" in client.get("/warehouse/?mode=colissimo").get_data(as_text=True)
    assert numbers(client.get("/warehouse/?mode=none").get_data(as_text=True)) == ["#1004"]
    assert numbers(client.get("/warehouse/?mode=nope").get_data(as_text=True)) == []
    # Each card packs its order within the same filter, and can be ticked for the pick list.
    first = db_session.scalars(select(Order).where(Order.number == "#1001")).one()
    assert f'href="/warehouse/orders/{first.id}/pack?mode=colissimo"' in fragment
    assert f'name="ids" value="{first.id}"' in fragment


# --- Pick lists and bins ---------------------------------------------------------------------


def test_the_pick_list_groups_what_remains_by_sku_in_bin_order(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    modes: dict[str, ShippingMode],
) -> None:
    one = ready_order(
        db_session,
        modes,
        [make_line("MUG", 2, ean="3760000000017"), make_line("TEA", 3, name="Thé vert")],
        1,
    )
    two = ready_order(db_session, modes, [make_line("MUG", 1), make_line("BOWL", 1)], 2)
    other = ready_order(db_session, modes, [make_line("SPOON", 5)], 3)  # not ticked
    held = ready_order(db_session, modes, [make_line("FORK", 5)], 4, on_hold=True)
    db_session.add(WarehouseBin(sku="MUG", location="A-01"))
    db_session.add(WarehouseBin(sku="BOWL", location="B-07"))
    db_session.flush()
    # Two teas already left: one remains to pick.
    tea = next(line for line in one.lines if line.sku == "TEA")
    shipments.create_shipment(db_session, one, Actor.system(), {tea.id: 2}, ship=True)
    db_session.commit()
    login_as("warehouse")

    ticked = f"ids={one.id}&ids={two.id}&ids={held.id}&ids=junk&ids=99999999"
    response = client.get(f"/warehouse/pick?{ticked}")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    rows = re.findall(
        r'<div class="pick-bin">.*?</span> ([^<]+)</div>\s*<div class="pick-qty">.*?× (\d+)</div>'
        r'.*?<p class="pick-sku">([^<]+)</p>\s*<p class="pick-name">([^<]+)</p>'
        r'\s*<p class="muted small">EAN ([^<]+)</p>\s*<p class="pick-for small">(.*?)</p>',
        html,
        re.S,
    )
    table = [
        (bin_, int(qty), sku, name, ean, re.sub(r"<[^>]+>", "", refs))
        for bin_, qty, sku, name, ean, refs in rows
    ]
    assert table == [
        ("A-01", 3, "MUG", "Article MUG", "3760000000017", "#1001 × 2, #1002 × 1"),
        ("B-07", 1, "BOWL", "Article BOWL", "—", "#1002 × 1"),
        ("—", 1, "TEA", "Thé vert", "—", "#1001 × 1"),
    ]
    assert other.number not in html.split("<main")[1]
    assert "FORK" not in html  # held since it was ticked
    assert "data-print" in html and "no-print" in html


def test_an_empty_pick_list_says_what_to_do(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as("warehouse")
    html = client.get("/warehouse/pick").get_data(as_text=True)
    assert "Cochez une ou plusieurs commandes" in html


def test_the_bins_command_imports_a_spreadsheet_file_twice_the_same(
    app: Flask, db_session: Session, tmp_path: Path
) -> None:
    db_session.add(WarehouseBin(sku="OLD", location="Z-99"))
    db_session.add(WarehouseBin(sku="GONE", location="Z-98"))
    db_session.commit()
    source = tmp_path / "bins.csv"
    text = (
        "SKU;Location\r\nMUG;A-01\r\n\r\nTEA;'=B2\r\nOLD;C-03\r\nGONE;\r\n;D-04\r\nLONG;"
        + ("X" * 41)
        + "\r\nCAFÉ;É-1\r\n"
    )
    source.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    runner = app.test_cli_runner()

    first = runner.invoke(args=["warehouse", "bins", str(source)])
    assert first.exit_code == 0, first.output
    assert "bins: 3 created, 2 changed, 0 unchanged, 2 refused" in first.output
    assert "line 7: no SKU" in first.output and "line 8: location over 40" in first.output
    db_session.expire_all()
    bins = {b.sku: b.location for b in db_session.scalars(select(WarehouseBin))}
    assert bins == {"MUG": "A-01", "TEA": "=B2", "OLD": "C-03", "CAFÉ": "É-1"}

    again = runner.invoke(args=["warehouse", "bins", str(source)])
    assert "bins: 0 created, 0 changed, 5 unchanged, 2 refused" in again.output
    # Excel's Windows-1252 with commas reads too.
    source.write_bytes("sku,location\nCAFÉ,F-2\n".encode("cp1252"))
    assert "1 changed" in runner.invoke(args=["warehouse", "bins", str(source)]).output


# --- The pack screen and its confirm ---------------------------------------------------------


@pytest.fixture()
def two_orders(db_session: Session, modes: dict[str, ShippingMode]) -> tuple[Order, Order]:
    first = ready_order(
        db_session,
        modes,
        [make_line("MUG", 2, ean="3760000000017"), make_line("TEA", 1)],
        1,
        grand_total=Decimal("30.00"),
    )
    second = ready_order(db_session, modes, [make_line("BOWL", 1)], 2)
    db_session.commit()
    return first, second


def pack_page(client: FlaskClient, order: Order) -> str:
    response = client.get(f"/warehouse/orders/{order.id}/pack?mode=colissimo")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def confirm_data(html: str, order: Order, key: str = "pack-key-1", **quantities: int) -> dict:
    lines = {line.sku: line.id for line in order.lines}
    data = {"csrf_token": csrf_from(html), "key": key, "tracking-1": "6A0001", "weight-1": "1,2"}
    for sku, quantity in quantities.items():
        data[f"qty-{lines[sku]}"] = str(quantity)
    return data


def order_shipments(db_session: Session, order: Order) -> list[Shipment]:
    db_session.expire_all()
    query = select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
    return list(db_session.scalars(query))


def test_the_pack_screen_lists_what_remains_with_codes_and_bins(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    two_orders: tuple[Order, Order],
) -> None:
    first, _second = two_orders
    db_session.add(WarehouseBin(sku="MUG", location="A-01"))
    db_session.commit()
    login_as("warehouse")
    html = pack_page(client, first)
    mug = next(line for line in first.lines if line.sku == "MUG")
    assert f'data-line="{mug.id}" data-sku="MUG" data-ean="3760000000017" data-quantity="2"' in html
    assert "EAN 3760000000017 · Emplacement A-01" in html
    assert 'data-ready="true"' in html and 'id="scan-code"' in html
    assert "barcode-detector-3.2.2.polyfill.iife.js" in html


def test_confirm_ships_what_was_scanned_with_its_note_once_per_key(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    two_orders: tuple[Order, Order],
) -> None:
    first, second = two_orders
    login_as("warehouse")
    html = pack_page(client, first)
    data = confirm_data(html, first, MUG=2, TEA=1)
    url = f"/warehouse/orders/{first.id}/pack?mode=colissimo"

    response = client.post(url, data=data, headers=JSON)
    assert response.status_code == 201, response.get_data(as_text=True)
    answer = response.get_json()
    assert answer["shipment"]["state"] == "shipped"
    assert answer["repeated"] is False
    assert answer["next_url"] == f"/warehouse/orders/{second.id}/pack?mode=colissimo"
    assert answer["delivery_note"]["reference"].startswith("BL-")
    [shipment] = order_shipments(db_session, first)
    assert shipment.state == ShipmentState.SHIPPED
    assert shipment.idempotency_key == "pack-key-1"
    assert [(p.tracking_number, p.weight_kg) for p in shipment.parcels] == [
        ("6A0001", Decimal("1.200"))
    ]
    assert sorted(item.quantity for item in shipment.lines) == [1, 2]
    note = find_delivery_note(db_session, shipment.id)
    assert note is not None and note.reference == answer["delivery_note"]["reference"]
    assert db_session.get(Order, first.id).fulfilment_state == FulfilmentState.SHIPPED
    queued = db_session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == first.id))
    assert "shipment" in {message.kind for message in queued}

    # The answer was lost and the page sends the same key again: the same shipment, once.
    again = client.post(url, data=data, headers=JSON)
    assert again.status_code == 200
    assert again.get_json()["shipment"]["id"] == answer["shipment"]["id"]
    assert again.get_json()["delivery_note"]["id"] == answer["delivery_note"]["id"]
    assert again.get_json()["repeated"] is True
    assert len(order_shipments(db_session, first)) == 1

    # The shipped order's screen has nothing left to scan.
    assert 'data-ready="false"' in pack_page(client, first)


def test_confirm_refuses_more_than_remains_and_nonsense(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    two_orders: tuple[Order, Order],
) -> None:
    first, _second = two_orders
    login_as("manager")
    html = pack_page(client, first)
    url = f"/warehouse/orders/{first.id}/pack"

    over = client.post(url, data=confirm_data(html, first, MUG=3, TEA=1), headers=JSON)
    assert over.status_code == 409
    assert over.get_json()["error"] == (
        "Impossible : il est demandé plus que ce qui reste à expédier."
    )
    junk = client.post(url, data=confirm_data(html, first, MUG=-1), headers=JSON)
    assert junk.status_code == 400
    nothing = client.post(url, data=confirm_data(html, first, key="k0"), headers=JSON)
    assert nothing.status_code == 422
    no_key = client.post(url, data=confirm_data(html, first, key="", MUG=1), headers=JSON)
    assert no_key.status_code == 422
    weight = {**confirm_data(html, first, key="k1", MUG=1), "weight-1": "lourd"}
    assert client.post(url, data=weight, headers=JSON).status_code == 422
    # Without the page's script, the form's refusal is the page again.
    plain = client.post(url, data=confirm_data(html, first, key="k2", MUG=3))
    assert plain.status_code == 409 and "<html" in plain.get_data(as_text=True)
    assert order_shipments(db_session, first) == []

    # A part of the order ships (what was scanned); then a second pack asks only the rest.
    part = client.post(url, data=confirm_data(html, first, key="k3", MUG=1), headers=JSON)
    assert part.status_code == 201
    rest = client.post(url, data=confirm_data(html, first, key="k4", MUG=2, TEA=1), headers=JSON)
    assert rest.status_code == 409
    assert len(order_shipments(db_session, first)) == 1
    assert db_session.get(Order, first.id).fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED


def test_confirm_needs_the_form_token_and_a_warehouse_role(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    two_orders: tuple[Order, Order],
) -> None:
    first, _second = two_orders
    login_as("warehouse")
    html = pack_page(client, first)
    url = f"/warehouse/orders/{first.id}/pack"
    forged = {**confirm_data(html, first, MUG=2, TEA=1), "csrf_token": "forged"}
    assert client.post(url, data=forged, headers=JSON).status_code == 400
    assert order_shipments(db_session, first) == []

    viewer = FlaskClient(client.application, use_cookies=True)
    log_in(viewer, make_user("viewer").email)
    assert viewer.get(f"/warehouse/orders/{first.id}/pack").status_code == 403
    assert viewer.get("/warehouse/pick").status_code == 403
    token = csrf_from(viewer.get("/account").get_data(as_text=True))
    data = {**confirm_data(html, first, MUG=2, TEA=1), "csrf_token": token}
    assert viewer.post(url, data=data, headers=JSON).status_code == 403
    assert viewer.post(f"/warehouse/orders/{first.id}/missing", data=data).status_code == 403
    assert order_shipments(db_session, first) == []


def test_a_missing_item_holds_the_order_and_moves_to_the_next(
    db_session: Session,
    client: FlaskClient,
    login_as: Callable[..., User],
    two_orders: tuple[Order, Order],
) -> None:
    first, second = two_orders
    login_as("warehouse")
    html = pack_page(client, first)
    tea = next(line for line in first.lines if line.sku == "TEA")
    url = f"/warehouse/orders/{first.id}/missing?mode=colissimo"
    data = {"csrf_token": csrf_from(html), "line_id": str(tea.id), "comment": "  carton vide "}

    response = client.post(url, data=data)
    assert response.status_code == 303
    assert response.headers["Location"] == f"/warehouse/orders/{second.id}/pack?mode=colissimo"
    db_session.expire_all()
    held = db_session.get(Order, first.id)
    assert held.on_hold
    assert held.hold_reason == "Article manquant à l’emballage : TEA — Article TEA (carton vide)"
    # Held, it leaves the queue, and its pack screen says why.
    assert first.number not in numbers(client.get("/warehouse/").get_data(as_text=True))
    assert "la commande est en attente" in pack_page(client, first)
    # Holding twice is refused with the reason.
    again = client.post(url, data=data, headers=JSON)
    assert again.status_code == 409
    # A line of another order is not a missing item of this one.
    other = {**data, "line_id": str(second.lines[0].id)}
    assert client.post(f"/warehouse/orders/{second.id}/missing", data=other).status_code == 303
    stray = {**data, "line_id": str(tea.id)}
    refused = client.post(f"/warehouse/orders/{second.id}/missing", data=stray, headers=JSON)
    assert refused.status_code in (409, 422)


def test_the_pack_page_of_an_order_not_ready_says_why(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    order = make_order(db_session, make_shop(db_session))  # new, unpaid
    db_session.commit()
    login_as("warehouse")
    html = client.get(f"/warehouse/orders/{order.id}/pack").get_data(as_text=True)
    assert "la commande n’est pas encore validée" in html
    assert 'data-ready="false"' in html and 'id="scan-code"' not in html
    assert client.get("/warehouse/orders/99999999/pack").status_code == 404
