"""The shipments section of the order page: ship, parcels, actions, refusals, roles."""

from __future__ import annotations

import re
from collections.abc import Callable
from html import unescape

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_from
from tests.factories import make_line, make_order, make_shop
from web import queue
from web.models import User
from web.models.enums import CommercialState, FulfilmentState, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import shipments
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

PARTIAL = {"HX-Request": "true"}


@pytest.fixture()
def order(db_session: Session) -> Order:
    modes = ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "boutique")
    order = make_order(
        db_session,
        shop,
        [make_line("MUG", 2, "12.00"), make_line("TEA", 1, "5.50")],
        commercial_state=CommercialState.VALIDATED,
        shipping_label="Colissimo",
        shipping_mode=modes["colissimo"],
        shipping_address={"first_name": "Ana", "postcode": "69001"},
    )
    db_session.commit()
    return order


def page_of(client: FlaskClient, order: Order) -> str:
    response = client.get(f"/orders/{order.id}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def form_key(html: str, suffix: str = "") -> str:
    keys = re.findall(r'name="form_key" value="([^"]+)"', html)
    return next(key for key in keys if key.endswith(suffix))


def rows(db_session: Session, order: Order) -> list[Shipment]:
    db_session.expire_all()
    query = select(Shipment).where(Shipment.order_id == order.id).order_by(Shipment.id)
    return list(db_session.scalars(query))


def test_ship_everything_in_one_click_without_htmx(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    html = page_of(client, order)
    assert "Expédier tout ce qui reste" in html and "3 articles restent à expédier." in html
    data = {
        "csrf_token": csrf_from(html),
        "form_key": form_key(html, "-all"),
        "tracking_number": "6A123",
        "weight_kg": "1,5",
    }
    response = client.post(f"/orders/{order.id}/shipments/everything", data=data)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/orders/{order.id}#shipments")
    # The same form sent twice (a double click, a retry) makes one shipment.
    assert client.post(f"/orders/{order.id}/shipments/everything", data=data).status_code == 303
    [shipment] = rows(db_session, order)
    assert shipment.state == ShipmentState.SHIPPED
    assert shipment.parcels[0].tracking_url.endswith("code=6A123")
    assert db_session.get(Order, order.id).fulfilment_state == FulfilmentState.SHIPPED  # type: ignore[union-attr]
    html = page_of(client, order)
    assert 'href="https://www.laposte.fr/outils/suivre-vos-envois?code=6A123"' in html
    assert "Expédier tout ce qui reste" not in html
    assert "Marquer livré" in html


def test_ship_part_with_two_parcels_through_htmx(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    html = page_of(client, order)
    mug, tea = (line.id for line in order.lines)
    response = client.post(
        f"/orders/{order.id}/shipments",
        data={
            "csrf_token": csrf_from(html),
            "form_key": form_key(html),
            f"qty-{mug}": "1",
            f"qty-{tea}": "0",
            "shipping_mode_id": str(order.shipping_mode_id),
            "tracking-1": "6A1",
            "weight-1": "0.4",
            "tracking-2": "6A2",
            "ship": "on",
        },
        headers=PARTIAL,
    )
    assert response.status_code == 204
    assert response.headers["HX-Location"].endswith(f"/orders/{order.id}#shipments")
    [shipment] = rows(db_session, order)
    assert [(line.order_line_id, line.quantity) for line in shipment.lines] == [(mug, 1)]
    assert [parcel.tracking_number for parcel in shipment.parcels] == ["6A1", "6A2"]
    assert db_session.get(Order, order.id).fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED  # type: ignore[union-attr]
    html = page_of(client, order)
    assert "2 articles restent à expédier." in html
    assert 'max="1"' in html  # the mug: one left


def test_over_shipping_answers_the_section_with_the_reason(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    html = page_of(client, order)
    mug, tea = (line.id for line in order.lines)
    data = {
        "csrf_token": csrf_from(html),
        "form_key": form_key(html),
        f"qty-{mug}": "5",
        f"qty-{tea}": "0",
    }
    response = client.post(f"/orders/{order.id}/shipments", data=data, headers=PARTIAL)
    assert response.status_code == 409
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and 'id="shipments"' in fragment
    assert "plus que ce qui reste à expédier" in fragment
    assert 'value="5"' in fragment  # what was typed stays
    assert rows(db_session, order) == []
    # Without htmx: the whole page, same refusal.
    whole = client.post(f"/orders/{order.id}/shipments", data=data)
    assert whole.status_code == 409 and "<html" in whole.get_data(as_text=True)


def test_a_bad_weight_is_a_422_on_its_field(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    html = page_of(client, order)
    data = {"csrf_token": csrf_from(html), "form_key": "k", "weight_kg": "lourd"}
    response = client.post(f"/orders/{order.id}/shipments/everything", data=data, headers=PARTIAL)
    assert response.status_code == 422
    assert 'id="ship-all-weight-error"' in response.get_data(as_text=True)
    assert rows(db_session, order) == []


def test_actions_pack_ship_deliver_and_cancel_with_a_reason(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    user = login_as("warehouse")
    shipment = shipments.create_shipment(db_session, order, Actor.for_user(user))
    db_session.commit()
    token = csrf_from(client.get("/warehouse/").get_data(as_text=True))
    for action in ("pack", "ship"):
        response = client.post(
            f"/shipments/{shipment.id}/actions/{action}", data={"csrf_token": token}
        )
        assert response.status_code == 303
        assert response.headers["Location"].endswith("/warehouse/")  # the warehouse's own page
    [row] = rows(db_session, order)
    assert row.state == ShipmentState.SHIPPED
    row.pushed_at = row.shipped_at
    db_session.commit()
    refused = client.post(
        f"/shipments/{shipment.id}/actions/cancel", data={"csrf_token": token}, headers=PARTIAL
    )
    assert refused.status_code == 422
    done = client.post(
        f"/shipments/{shipment.id}/actions/cancel",
        data={"csrf_token": token, "reason": "Colis écrasé"},
    )
    assert done.status_code == 303
    [row] = rows(db_session, order)
    assert row.state == ShipmentState.CANCELLED and row.cancel_reason == "Colis écrasé"


def test_tracking_added_then_corrected(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    shipment = shipments.ship_everything(db_session, order, Actor.system())
    db_session.commit()
    token = csrf_from(page_of(client, order))
    added = client.post(
        f"/shipments/{shipment.id}/parcels", data={"csrf_token": token, "tracking_number": "6A9"}
    )
    assert added.status_code == 303
    [parcel] = rows(db_session, order)[0].parcels
    fixed = client.post(
        f"/parcels/{parcel.id}/tracking", data={"csrf_token": token, "tracking_number": "6A10"}
    )
    assert fixed.status_code == 303
    html = page_of(client, order)
    assert "code=6A10" in html and "code=6A9" not in html
    timeline = html[html.index('id="timeline"') :]
    assert "6A9" in timeline and "6A10" in timeline


def test_viewers_see_shipments_but_no_forms_and_cannot_post(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    shipment = shipments.ship_everything(db_session, order, Actor.system(), "6A5")
    db_session.commit()
    login_as("viewer")
    html = page_of(client, order)
    assert "code=6A5" in html
    assert "Marquer livré" not in html and "/shipments/" not in html
    token = csrf_from(html)
    response = client.post(f"/shipments/{shipment.id}/actions/deliver", data={"csrf_token": token})
    assert response.status_code == 403
    assert rows(db_session, order)[0].state == ShipmentState.SHIPPED


def test_a_post_without_csrf_is_refused(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as("manager")
    response = client.post(f"/orders/{order.id}/shipments/everything", data={})
    assert response.status_code == 400
    assert rows(db_session, order) == []


def test_a_held_order_says_why_it_cannot_ship(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    order.on_hold = True
    order.hold_reason = "Adresse"
    db_session.commit()
    login_as("manager")
    html = page_of(client, order)
    assert "Expédier tout ce qui reste" not in html
    assert "la commande est en attente" in html
    other = make_order(db_session, order.shop, [make_line("X", 1)])
    db_session.commit()
    token = csrf_from(html)
    refused = client.post(
        f"/orders/{other.id}/shipments/everything", data={"csrf_token": token}, headers=PARTIAL
    )
    assert refused.status_code == 409


def test_bulk_mark_delivered_from_the_order_list(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    order: Order,
) -> None:
    shipments.ship_everything(db_session, order, Actor.system(), "6A7")
    db_session.commit()
    login_as("viewer")
    token = csrf_from(client.get("/orders/").get_data(as_text=True))
    data = {"op": "deliver", "ids": str(order.id), "csrf_token": token}
    assert client.post("/orders/bulk", data=data).status_code == 403
    client.post("/logout", data={"csrf_token": token})
    login_as("manager")
    html = client.get("/orders/").get_data(as_text=True)
    assert 'name="op" value="deliver"' in html
    data["csrf_token"] = csrf_from(html)
    response = client.post("/orders/bulk", data=data)
    assert response.status_code == 303
    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).fulfilment_state == FulfilmentState.DELIVERED
    job_page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Marquer les commandes livrées" in job_page


def test_each_shipment_says_whether_the_shop_has_it(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    from web.connectors.base import ShopParcel, ShopShipment

    login_as("manager")
    mug = order.lines[0]
    ours = shipments.create_shipment(
        db_session, order, Actor.system(), {mug.id: 2}, [shipments.ParcelInput("6A1")], ship=True
    )
    db_session.commit()
    assert "En route vers la boutique…" in page_of(client, order)
    ours.pushed_at = ours.shipped_at
    made = ShopShipment("F1", (ShopParcel("LB1"),), lines=None)
    shipments.record_shop_shipments(db_session, order, [made], Actor.shop())
    db_session.commit()
    html = unescape(page_of(client, order))
    assert "La boutique l'a reçue" in html
    assert "Faite dans la boutique" in html
    assert "En route vers la boutique" not in html


def test_why_a_shipment_was_not_sent_reads_in_the_readers_language(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    from web.db import make_session_factory
    from web.models import OutboxMessage

    login_as("manager")
    shipments.ship_everything(db_session, order, Actor.system(), "6A1")
    order.shop.push_tracking = False
    db_session.commit()
    message = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "shipment")
    ).one()
    from web.services import outbox

    outbox.deliver(make_session_factory(db_session.get_bind()), message.id)  # type: ignore[arg-type]
    html = unescape(page_of(client, order))
    assert "L'envoi des expéditions est désactivé pour cette boutique." in html
    assert f"Expédition {order.shipments[0].number}" in html
