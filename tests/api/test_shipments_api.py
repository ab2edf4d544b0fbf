"""Shipments over the JSON API, as an integration (or the warehouse's tool) sends them."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.api.test_api import Api, TokenFor, error_of, token_for  # noqa: F401
from tests.factories import make_line, make_order, make_shop
from web.models import Document, OrderEvent, OutboxMessage, Shipment
from web.models.enums import (
    CommercialState,
    DocumentKind,
    DocumentState,
    FulfilmentState,
    LineKind,
    Role,
)
from web.models.orders import Order
from web.services.shipping_modes import ensure_default_shipping_modes

pytestmark = pytest.mark.usefixtures("token_for")


@pytest.fixture()
def api(client: FlaskClient, token_for: TokenFor) -> Api:  # noqa: F811
    return Api(client, token_for(Role.MANAGER))


@pytest.fixture()
def order(db_session: Session) -> Order:
    """A validated order of two mugs and a tea, to ship with Mondial Relay to 75011."""
    modes = ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "boutique")
    order = make_order(
        db_session,
        shop,
        [
            make_line("MUG", 2, "12.00"),
            make_line("TEA", 1, "5.50"),
            make_line("WRAP", 1, "2.00", kind=LineKind.GIFT_WRAP),
        ],
        commercial_state=CommercialState.VALIDATED,
        shipping_label="Mondial Relay",
        shipping_mode=modes["mondial_relay"],
        shipping_address={"first_name": "Ana", "postcode": "75011"},
    )
    db_session.commit()
    return order


def lines(order: Order) -> tuple[int, int, int]:
    mug, tea, wrap = (line.id for line in order.lines)
    return mug, tea, wrap


def test_ship_part_of_an_order_with_two_parcels(api: Api, order: Order) -> None:
    mug, _, _ = lines(order)
    response = api.post(
        f"/orders/{order.id}/shipments",
        {
            "lines": [{"line_id": mug, "quantity": 2}],
            "parcels": [
                {"tracking_number": "MR001", "weight_kg": "1.2"},
                {"tracking_number": "MR002", "weight_kg": 0.8},
            ],
            "ship": True,
        },
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    shipment = response.get_json()
    assert shipment["state"] == "shipped" and shipment["shipping_mode"] == "mondial_relay"
    assert shipment["lines"] == [{"line_id": mug, "order_line_id": mug, "quantity": 2}]
    assert [(p["tracking_number"], p["weight_kg"]) for p in shipment["parcels"]] == [
        ("MR001", "1.200"),
        ("MR002", "0.800"),
    ]
    url = shipment["parcels"][0]["tracking_url"]
    assert url.startswith("https://") and "MR001" in url and "75011" in url
    assert shipment["delivery_note"] is None
    assert shipment["allowed_actions"] == ["deliver", "cancel"]
    assert shipment["order"]["fulfilment_state"] == "partially_shipped"

    detail = api.get(f"/orders/{order.id}").get_json()
    assert detail["fulfilment_state"] == "partially_shipped"
    [listed] = detail["shipments"]
    assert listed["id"] == shipment["id"] and listed["parcels"][1]["tracking_url"]
    assert detail["documents"] == []


def test_no_body_ships_everything_that_remains_with_the_mapped_mode(api: Api, order: Order) -> None:
    mug, tea, _ = lines(order)
    created = api.post(f"/orders/{order.id}/shipments")
    assert created.status_code == 201
    shipment = created.get_json()
    assert shipment["state"] == "draft"
    # The gift wrapping is no item to ship.
    assert {(item["line_id"], item["quantity"]) for item in shipment["lines"]} == {
        (mug, 2),
        (tea, 1),
    }
    shipped = api.post(f"/shipments/{shipment['id']}/actions/ship")
    assert shipped.status_code == 200 and shipped.get_json()["state"] == "shipped"
    assert shipped.get_json()["order"]["fulfilment_state"] == "shipped"
    delivered = api.post(f"/shipments/{shipment['id']}/actions/deliver")
    assert delivered.get_json()["order"]["fulfilment_state"] == "delivered"


def test_over_shipping_is_a_409_with_the_reason(
    api: Api, db_session: Session, order: Order
) -> None:
    mug, _, _ = lines(order)
    body = {"lines": [{"line_id": mug, "quantity": 3}], "ship": True}
    refused = error_of(api.post(f"/orders/{order.id}/shipments", body), 409)
    assert refused["reason"] == "more is asked than remains to ship"
    assert refused["error"] == "cannot ship the order: more is asked than remains to ship"
    assert api.post(f"/orders/{order.id}/shipments", {"ship": True}).status_code == 201
    again = error_of(api.post(f"/orders/{order.id}/shipments"), 409)
    assert again["reason"] == "nothing remains to ship"
    db_session.expire_all()
    assert len(db_session.scalars(select(Shipment).where(Shipment.order_id == order.id)).all()) == 1


def test_a_cancelled_order_is_a_409(api: Api, db_session: Session, order: Order) -> None:
    order.commercial_state = CommercialState.CANCELLED
    db_session.commit()
    refused = error_of(api.post(f"/orders/{order.id}/shipments", {"ship": True}), 409)
    assert refused["reason"] == "the order is cancelled"


def test_an_unmapped_label_is_a_409_but_an_explicit_mode_ships(
    api: Api, db_session: Session, order: Order
) -> None:
    order.shipping_mode = None
    order.shipping_label = "Drone express"
    db_session.commit()
    refused = error_of(api.post(f"/orders/{order.id}/shipments"), 409)
    assert "not mapped" in refused["reason"]
    created = api.post(f"/orders/{order.id}/shipments", {"shipping_mode": "ups"})
    assert created.status_code == 201 and created.get_json()["shipping_mode"] == "ups"
    unknown = error_of(api.post(f"/orders/{order.id}/shipments", {"shipping_mode": "owl"}), 422)
    assert "shipping_mode" in unknown["fields"]


def test_the_same_idempotency_key_returns_the_same_shipment(
    api: Api, client: FlaskClient, db_session: Session, order: Order
) -> None:
    body = json.dumps({"parcels": [{"tracking_number": "MR9"}], "ship": True})
    headers = {**api.headers(), "Idempotency-Key": "pack-screen-7f3a"}
    url = f"/api/v1/orders/{order.id}/shipments"

    def send() -> TestResponse:
        return client.post(url, data=body, content_type="application/json", headers=headers)

    first, second = send(), send()
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.get_json()["id"] == second.get_json()["id"]
    db_session.expire_all()
    assert len(db_session.scalars(select(Shipment).where(Shipment.order_id == order.id)).all()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": [{"line_id": 1}]}, "lines"),
        ({"lines": [{"line_id": "1", "quantity": 1}]}, "lines"),
        ({"lines": [{"line_id": 1, "quantity": 0}]}, "lines"),
        ({"lines": {"1": 1}}, "lines"),
        ({"parcels": [{"tracking_number": 12}]}, "parcels"),
        ({"parcels": [{"weight_kg": True}]}, "parcels"),
        ({"parcels": [{"weight_kg": "-1"}]}, "weight_kg"),
        ({"ship": "yes"}, "ship"),
        ({"carrier": "ups"}, "carrier"),
    ],
)
def test_malformed_shipments_are_422_naming_the_field(
    api: Api, order: Order, body: dict[str, object], field: str
) -> None:
    refused = error_of(api.post(f"/orders/{order.id}/shipments", body), 422)
    assert field in refused["fields"]


def test_a_line_of_another_order_is_refused(api: Api, db_session: Session, order: Order) -> None:
    other = make_order(db_session, order.shop, [make_line("CUP", 1)])
    db_session.commit()
    body = {"lines": [{"line_id": other.lines[0].id, "quantity": 1}]}
    assert "lines" in error_of(api.post(f"/orders/{order.id}/shipments", body), 422)["fields"]


def test_tracking_added_after_shipping(api: Api, order: Order) -> None:
    shipment = api.post(f"/orders/{order.id}/shipments", {"ship": True}).get_json()
    added = api.post(f"/shipments/{shipment['id']}/parcels", {"tracking_number": "MR77"})
    assert added.status_code == 201
    [parcel] = added.get_json()["parcels"]
    assert parcel["tracking_number"] == "MR77" and "MR77" in parcel["tracking_url"]
    assert (
        "tracking_number"
        in error_of(api.post(f"/shipments/{shipment['id']}/parcels", {}), 422)["fields"]
    )


def test_cancelling_a_pushed_shipment_needs_a_reason(
    api: Api, db_session: Session, order: Order
) -> None:
    shipment = api.post(f"/orders/{order.id}/shipments", {"ship": True}).get_json()
    row = db_session.get(Shipment, shipment["id"])
    assert row is not None
    row.pushed_at = row.shipped_at
    db_session.commit()
    refused = error_of(api.post(f"/shipments/{shipment['id']}/actions/cancel"), 422)
    assert "reason" in refused["fields"]
    done = api.post(f"/shipments/{shipment['id']}/actions/cancel", {"reason": "Colis perdu"})
    assert done.status_code == 200
    assert done.get_json()["cancel_reason"] == "Colis perdu"
    assert done.get_json()["order"]["fulfilment_state"] == "in_preparation"
    again = error_of(api.post(f"/shipments/{shipment['id']}/actions/ship"), 409)
    assert again["error"] == "cannot ship the shipment: the shipment is cancelled"


def test_unknown_shipment_and_action(api: Api, order: Order) -> None:
    error_of(api.post("/shipments/999999/actions/ship"), 404)
    error_of(api.post("/shipments/999999/parcels", {"tracking_number": "X"}), 404)
    shipment = api.post(f"/orders/{order.id}/shipments").get_json()
    error_of(api.post(f"/shipments/{shipment['id']}/actions/explode"), 404)


def test_the_warehouse_ships_and_the_viewer_does_not(
    client: FlaskClient,
    token_for: TokenFor,  # noqa: F811
    db_session: Session,
    order: Order,
) -> None:
    viewer = Api(client, token_for(Role.VIEWER))
    error_of(viewer.post(f"/orders/{order.id}/shipments", {"ship": True}), 403)
    warehouse = Api(client, token_for(Role.WAREHOUSE))
    created = warehouse.post(f"/orders/{order.id}/shipments", {"ship": True})
    assert created.status_code == 201
    error_of(viewer.post(f"/shipments/{created.get_json()['id']}/actions/deliver"), 403)
    assert (
        warehouse.post(f"/shipments/{created.get_json()['id']}/actions/deliver").status_code == 200
    )
    # The warehouse still reads no order.
    error_of(warehouse.get(f"/orders/{order.id}"), 403)
    db_session.expire_all()
    assert db_session.get(Order, order.id).fulfilment_state == FulfilmentState.DELIVERED  # type: ignore[union-attr]


def test_each_change_is_in_the_timeline_and_one_message_waits_for_the_shop(
    api: Api, db_session: Session, order: Order
) -> None:
    shipment = api.post(f"/orders/{order.id}/shipments", {"ship": True}).get_json()
    api.post(f"/shipments/{shipment['id']}/parcels", {"tracking_number": "MR5"})
    kinds = db_session.scalars(
        select(OrderEvent.kind)
        .where(OrderEvent.order_id == order.id, ~OrderEvent.kind.startswith("outbox."))
        .order_by(OrderEvent.id)
    ).all()
    assert kinds == [
        "order.preparation_started",
        "shipment.created",
        "shipment.shipped",
        "order.shipped",
        "shipment.parcel_added",
    ]
    # The parcel added while the first message still waits rides with it: one message,
    # read when it is sent.
    messages = db_session.scalars(
        select(OutboxMessage).where(OutboxMessage.kind == "shipment")
    ).all()
    assert [m.payload["shipment_id"] for m in messages] == [shipment["id"]]


def test_the_delivery_note_and_documents_show_in_the_order(
    api: Api, db_session: Session, order: Order
) -> None:
    shipment = api.post(f"/orders/{order.id}/shipments", {"ship": True}).get_json()
    note = Document(
        order_id=order.id,
        kind=DocumentKind.DELIVERY_NOTE,
        state=DocumentState.ISSUED,
        series="BL-2026",
        number=1,
        reference="BL-2026-000001",
        shipment_id=shipment["id"],
        total_gross=Decimal("0"),
    )
    db_session.add(note)
    db_session.commit()
    detail = api.get(f"/orders/{order.id}").get_json()
    assert detail["shipments"][0]["delivery_note"] == {
        "id": note.id,
        "reference": "BL-2026-000001",
    }
    assert detail["documents"] == [
        {
            "id": note.id,
            "kind": "delivery_note",
            "reference": "BL-2026-000001",
            "issue_date": None,
            "currency": "EUR",
            "total_net": None,
            "total_tax": None,
            "total_gross": "0.00",
            "corrects_id": None,
            "pdf_url": None,  # this row has no stored file
        }
    ]
