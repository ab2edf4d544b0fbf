"""The JSON API as an integrator meets it: tokens, filters, pages, order detail and changes."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.conftest import csrf_from, log_in
from tests.factories import BASE_TIME, make_customer, make_line, make_order, make_shop
from web.models import (
    ApiToken,
    Comment,
    OrderEvent,
    OutboxMessage,
    Parcel,
    Shipment,
    Transaction,
    User,
    utcnow,
)
from web.models.enums import (
    ActorType,
    CommercialState,
    FulfilmentState,
    PaymentState,
    Role,
    ShipmentState,
    TransactionKind,
)
from web.models.orders import Order
from web.services import order_queries, users
from web.views import api_schema

TokenFor = Callable[..., str]


@pytest.fixture()
def token_for(db_session: Session, make_user: Callable[..., User]) -> TokenFor:
    """Create a user of the role and return a fresh API token of theirs."""

    def make(role: Role | str = Role.MANAGER) -> str:
        token = users.create_api_token(db_session, make_user(role), "tests")
        db_session.commit()
        return token

    return make


class Api:
    """A client that speaks JSON with a bearer token, the way an integration does."""

    def __init__(self, client: FlaskClient, token: str | None) -> None:
        self.client = client
        self.token = token

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def get(self, path: str, **query: Any) -> TestResponse:
        return self.client.get(f"/api/v1{path}", query_string=query, headers=self.headers())

    def post(self, path: str, body: Any = None, **kwargs: Any) -> TestResponse:
        if body is not None:
            kwargs.setdefault("data", json.dumps(body))
            kwargs.setdefault("content_type", "application/json")
        return self.client.post(f"/api/v1{path}", headers=self.headers(), **kwargs)


@pytest.fixture()
def api(client: FlaskClient, token_for: TokenFor) -> Api:
    """The API as a manager's integration."""
    return Api(client, token_for(Role.MANAGER))


def error_of(response: TestResponse, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert isinstance(body["error"], str) and body["error"]
    return body


@pytest.fixture()
def order(db_session: Session) -> Order:
    """A new, unpaid 24.00 order of shop "boutique"."""
    shop = make_shop(db_session, "boutique")
    order = make_order(db_session, shop, [make_line("MUG", 2, "12.00")])
    db_session.commit()
    return order


# --- Authentication and roles --------------------------------------------------------------


def test_no_token_is_refused_with_a_bearer_challenge(client: FlaskClient, order: Order) -> None:
    response = client.get("/api/v1/orders")
    body = error_of(response, 401)
    assert "Bearer" in body["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    # Not the HTML login redirect.
    assert "Location" not in response.headers


def test_wrong_token_and_wrong_scheme_are_refused(
    client: FlaskClient, token_for: TokenFor, order: Order
) -> None:
    response = Api(client, "cpt_not-a-real-token").get("/orders")
    error_of(response, 401)
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    token = token_for(Role.MANAGER)
    response = client.get("/api/v1/orders", headers={"Authorization": f"Basic {token}"})
    error_of(response, 401)
    response = client.get("/api/v1/orders", headers={"Authorization": "Bearer " + "x" * 5000})
    error_of(response, 401)


def test_revoked_token_stops_working_at_once(
    client: FlaskClient, db_session: Session, token_for: TokenFor, order: Order
) -> None:
    token = token_for(Role.MANAGER)
    assert Api(client, token).get("/orders").status_code == 200
    api_token = db_session.scalars(select(ApiToken)).one()
    users.revoke_api_token(db_session, api_token.user, api_token.id)
    db_session.commit()
    error_of(Api(client, token).get("/orders"), 401)


def test_token_of_a_deactivated_user_is_refused(
    client: FlaskClient, db_session: Session, token_for: TokenFor, order: Order
) -> None:
    token = token_for(Role.ADMIN)
    db_session.scalars(select(User)).one().is_active = False
    db_session.commit()
    error_of(Api(client, token).get("/orders"), 401)


def test_viewer_reads_but_cannot_write(
    client: FlaskClient, token_for: TokenFor, order: Order
) -> None:
    viewer = Api(client, token_for(Role.VIEWER))
    assert viewer.get("/orders").status_code == 200
    assert viewer.get(f"/orders/{order.id}").status_code == 200
    body = error_of(viewer.post(f"/orders/{order.id}/comments", {"text": "Hello"}), 403)
    assert "viewer" in body["error"]
    error_of(viewer.post(f"/orders/{order.id}/actions/validate"), 403)
    error_of(
        viewer.post(
            f"/orders/{order.id}/transactions",
            {"kind": "payment", "source": "cash", "amount": "1.00"},
        ),
        403,
    )
    assert order.comments == [] and order.commercial_state == CommercialState.NEW


def test_warehouse_token_has_no_access_to_orders(
    client: FlaskClient, token_for: TokenFor, order: Order
) -> None:
    warehouse = Api(client, token_for(Role.WAREHOUSE))
    error_of(warehouse.get("/orders"), 403)
    error_of(warehouse.get(f"/orders/{order.id}"), 403)
    error_of(warehouse.post(f"/orders/{order.id}/actions/validate"), 403)


def test_admin_token_writes(client: FlaskClient, token_for: TokenFor, order: Order) -> None:
    admin = Api(client, token_for(Role.ADMIN))
    assert admin.post(f"/orders/{order.id}/actions/validate").status_code == 200


def test_last_use_is_recorded_at_most_once_a_minute(
    api: Api, db_session: Session, order: Order
) -> None:
    api_token = db_session.scalars(select(ApiToken)).one()
    assert api_token.last_used_at is None
    assert api.get("/orders").status_code == 200
    db_session.refresh(api_token)
    first = api_token.last_used_at
    assert first is not None and utcnow() - first < dt.timedelta(seconds=30)

    thirty_seconds_ago = utcnow() - dt.timedelta(seconds=30)
    api_token.last_used_at = thirty_seconds_ago
    db_session.commit()
    assert api.get("/orders").status_code == 200
    db_session.refresh(api_token)
    assert api_token.last_used_at == thirty_seconds_ago

    api_token.last_used_at = utcnow() - dt.timedelta(minutes=5)
    db_session.commit()
    # A refused change still counts as a use of the token.
    assert api.post(f"/orders/{order.id}/actions/release").status_code == 409
    db_session.refresh(api_token)
    assert utcnow() - api_token.last_used_at < dt.timedelta(seconds=30)


def test_cli_token_works_against_the_api(
    app: Flask, client: FlaskClient, make_user: Callable[..., User], order: Order
) -> None:
    user = make_user(Role.VIEWER)
    result = app.test_cli_runner().invoke(args=["users", "token", "--email", user.email])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    response = Api(client, token).get("/orders")
    assert response.status_code == 200
    assert [found["number"] for found in response.get_json()["orders"]] == [order.number]


# --- Listing orders ------------------------------------------------------------------------


@pytest.fixture()
def catalogue(db_session: Session) -> dict[str, Order]:
    """Five orders over two shops, one day apart, with different states."""
    boutique = make_shop(db_session, "boutique")
    atelier = make_shop(db_session, "atelier")
    dupont = make_customer(db_session, "jean@example.test")
    orders = {
        "b1": make_order(db_session, boutique, placed_at=BASE_TIME, customer=dupont),
        "b2": make_order(
            db_session,
            boutique,
            placed_at=BASE_TIME + dt.timedelta(days=1),
            payment_state=PaymentState.PAID,
            commercial_state=CommercialState.VALIDATED,
        ),
        "b3": make_order(
            db_session, boutique, placed_at=BASE_TIME + dt.timedelta(days=2), on_hold=True
        ),
        "a1": make_order(db_session, atelier, placed_at=BASE_TIME + dt.timedelta(days=3)),
        "a2": make_order(
            db_session,
            atelier,
            placed_at=BASE_TIME + dt.timedelta(days=4),
            lines=[make_line("LAMP-7", 1, "89.90")],
        ),
    }
    db_session.commit()
    return orders


def listed(response: TestResponse) -> list[int]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    return [found["id"] for found in response.get_json()["orders"]]


def ids(catalogue: dict[str, Order], *names: str) -> list[int]:
    return [catalogue[name].id for name in names]


def test_list_newest_first_with_summary_fields(api: Api, catalogue: dict[str, Order]) -> None:
    response = api.get("/orders")
    assert listed(response) == ids(catalogue, "a2", "a1", "b3", "b2", "b1")
    first = response.get_json()["orders"][0]
    assert first["shop"] == "atelier"
    assert first["grand_total"] == "89.90" and first["currency"] == "EUR"
    assert first["placed_at"] == (BASE_TIME + dt.timedelta(days=4)).isoformat()
    assert first["allowed_actions"] == ["validate", "hold", "cancel"]
    assert set(first) == set(api_schema.ORDER_SUMMARY["properties"])


def test_list_filters_by_shop_key_and_exact_number(api: Api, catalogue: dict[str, Order]) -> None:
    assert listed(api.get("/orders", shop="atelier")) == ids(catalogue, "a2", "a1")
    # "#1001" exists in both shops: the number alone finds both, with the shop only one.
    assert listed(api.get("/orders", number="#1001")) == ids(catalogue, "a1", "b1")
    assert listed(api.get("/orders", number="#1001", shop="boutique")) == ids(catalogue, "b1")
    # Exact, not a prefix or a search.
    assert listed(api.get("/orders", number="#100")) == []


def test_list_uses_the_desk_filters(api: Api, catalogue: dict[str, Order]) -> None:
    assert listed(api.get("/orders", payment="paid")) == ids(catalogue, "b2")
    assert listed(api.get("/orders", on_hold="true")) == ids(catalogue, "b3")
    assert listed(api.get("/orders", ready="yes")) == ids(catalogue, "b2")
    assert listed(api.get("/orders", q="lamp-7")) == ids(catalogue, "a2")
    assert listed(api.get("/orders", q="jean@example")) == ids(catalogue, "b1")
    assert listed(api.get("/orders", date_from="2026-03-03", date_to="2026-03-04")) == ids(
        catalogue, "b3", "b2"
    )
    assert listed(api.get("/orders", sort="total"))[-1] == catalogue["a2"].id


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ({"payment": "settled"}, "payment"),
        ({"on_hold": "maybe"}, "on_hold"),
        ({"date_from": "02/03/2026"}, "date_from"),
        ({"date_from": "0001-01-01"}, "date_from"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"date_from": "2026-03-05", "date_to": "2026-03-01"}, "date_to"),
        ({"sort": "price"}, "sort"),
        ({"page": "0"}, "page"),
        ({"page": "two"}, "page"),
        ({"per_page": "101"}, "per_page"),
        ({"shop": "nowhere"}, "shop"),
        ({"q": "mug\x00"}, "q"),
        ({"number": "\x00"}, "number"),
    ],
)
def test_invalid_filter_is_refused_naming_the_parameter(
    api: Api, catalogue: dict[str, Order], query: dict[str, str], parameter: str
) -> None:
    body = error_of(api.get("/orders", **query), 400)
    assert parameter in body["error"]
    assert list(body["fields"]) == [parameter]


def test_pagination(api: Api, catalogue: dict[str, Order]) -> None:
    first = api.get("/orders", per_page=2).get_json()
    assert [o["id"] for o in first["orders"]] == ids(catalogue, "a2", "a1")
    assert (first["page"], first["per_page"], first["total"], first["next_page"]) == (1, 2, 5, 2)
    last = api.get("/orders", per_page=2, page=3).get_json()
    assert [o["id"] for o in last["orders"]] == ids(catalogue, "b1")
    assert last["next_page"] is None
    # Past the end: nothing, rather than the desk's "last page again".
    beyond = api.get("/orders", per_page=2, page=4).get_json()
    assert (beyond["orders"], beyond["page"], beyond["total"], beyond["next_page"]) == (
        [],
        4,
        5,
        None,
    )
    collected: list[int] = []
    page: int | None = 1
    while page is not None:
        answer = api.get("/orders", per_page=2, page=page).get_json()
        collected += [o["id"] for o in answer["orders"]]
        page = answer["next_page"]
    assert sorted(collected) == sorted(o.id for o in catalogue.values())
    assert api.get("/orders", per_page=100).get_json()["per_page"] == 100
    assert first["total_capped"] is False


def test_pagination_by_cursor(api: Api, catalogue: dict[str, Order]) -> None:
    offset = [api.get("/orders", per_page=2, page=page).get_json() for page in (1, 2, 3)]
    assert offset[0]["prev_cursor"] is None
    second = api.get("/orders", per_page=2, after=offset[0]["next_cursor"]).get_json()
    third = api.get("/orders", per_page=2, after=second["next_cursor"]).get_json()
    assert [answer["orders"] for answer in (second, third)] == [
        answer["orders"] for answer in offset[1:]
    ]
    assert (second["page"], second["next_page"], third["page"], third["next_page"]) == (
        2,
        3,
        3,
        None,
    )
    assert third["next_cursor"] is None
    back = api.get("/orders", per_page=2, before=third["prev_cursor"]).get_json()
    assert (back["orders"], back["page"]) == (offset[1]["orders"], 2)
    # A cursor holds its sort: another sort's list refuses it.
    body = error_of(api.get("/orders", per_page=2, sort="total", after=second["next_cursor"]), 400)
    assert list(body["fields"]) == ["after"]


# Not base64; an empty list; too long; an empty time in a well-formed cursor.
TAMPERED = ["garbage", "W10", "x" * 5000, "WyItcGxhY2VkX2F0IiwyLFsiIiwxXV0"]


@pytest.mark.parametrize("cursor", TAMPERED)
def test_tampered_cursor_is_refused(api: Api, catalogue: dict[str, Order], cursor: str) -> None:
    for name in ("after", "before"):
        body = error_of(api.get("/orders", **{name: cursor}), 400)
        assert list(body["fields"]) == [name]


def test_pagination_past_the_counted_orders(
    api: Api, catalogue: dict[str, Order], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order_queries, "COUNT_CAP", 3)
    first = api.get("/orders", per_page=2).get_json()
    assert (first["total"], first["total_capped"], first["next_page"]) == (3, True, 2)
    last = api.get("/orders", per_page=2, page=3).get_json()
    assert [o["id"] for o in last["orders"]] == ids(catalogue, "b1")
    assert (last["total_capped"], last["next_page"]) == (True, None)
    beyond = api.get("/orders", per_page=2, page=4).get_json()
    assert (beyond["orders"], beyond["next_page"]) == ([], None)


# --- One order -----------------------------------------------------------------------------


@pytest.fixture()
def full_order(db_session: Session, make_user: Callable[..., User]) -> Order:
    shop = make_shop(db_session, "boutique")
    order = make_order(
        db_session,
        shop,
        [make_line("MUG", 2, "12.00"), make_line("TEA", 1, "5.50", tax_rate=Decimal("5.5"))],
        customer=make_customer(db_session, "marie@example.test", "Marie", "Curie"),
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        fulfilment_state=FulfilmentState.SHIPPED,
    )
    author = make_user(Role.MANAGER)
    db_session.add_all(
        [
            Transaction(
                order=order,
                external_id="ch_1",
                method="card",
                kind=TransactionKind.CAPTURE,
                amount=Decimal("29.50"),
                occurred_at=BASE_TIME + dt.timedelta(minutes=5),
            ),
            Shipment(
                order=order,
                number="EXP-0001",
                state=ShipmentState.SHIPPED,
                shipped_at=BASE_TIME + dt.timedelta(days=1),
                parcels=[Parcel(tracking_number="6A123", weight_kg=Decimal("1.250"))],
            ),
            Comment(order=order, author=author, text="Appeler avant 18 h."),
            OrderEvent(
                order=order,
                occurred_at=BASE_TIME,
                actor_type=ActorType.SHOP,
                kind="order.imported",
                details={"text": "Imported from the shop."},
            ),
            OrderEvent(
                order=order,
                occurred_at=BASE_TIME + dt.timedelta(hours=1),
                actor_type=ActorType.USER,
                actor_user=author,
                kind="order.validated",
            ),
        ]
    )
    db_session.commit()
    return order


def test_detail_has_lines_money_shipments_comments_and_timeline(
    api: Api, full_order: Order
) -> None:
    response = api.get(f"/orders/{full_order.id}")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    order = response.get_json()
    assert order["number"] == "#1001" and order["customer"] == "Marie Curie"
    assert order["grand_total"] == "29.50" and order["currency"] == "EUR"
    assert [(line["sku"], line["quantity"], line["unit_price"]) for line in order["lines"]] == [
        ("MUG", 2, "12.00"),
        ("TEA", 1, "5.50"),
    ]
    assert [line["tax_rate"] for line in order["lines"]] == ["20", "5.5"]
    assert all(isinstance(line["id"], int) for line in order["lines"])
    [transaction] = order["transactions"]
    assert (transaction["kind"], transaction["amount"], transaction["source"]) == (
        "capture",
        "29.50",
        "shop",
    )
    assert transaction["occurred_at"] == "2026-03-02T10:05:00+00:00"
    [shipment] = order["shipments"]
    assert shipment["number"] == "EXP-0001" and shipment["state"] == "shipped"
    assert shipment["shipped_at"] == "2026-03-03T10:00:00+00:00"
    assert [(p["tracking_number"], p["weight_kg"]) for p in shipment["parcels"]] == [
        ("6A123", "1.250")
    ]
    [comment] = order["comments"]
    assert comment["text"] == "Appeler avant 18 h." and comment["visibility"] == "internal"
    assert comment["author"] == "Manager"
    assert [(e["kind"], e["actor_type"], e["actor"]) for e in order["events"]] == [
        ("order.imported", "shop", None),
        ("order.validated", "user", "Manager"),
    ]
    # The manager has no language of their own: the app's default, French.
    assert [(e["params"], e["text"]) for e in order["events"]] == [
        ({"text": "Imported from the shop."}, "Imported from the shop."),
        ({}, "Commande validée à la main."),
    ]
    assert order["allowed_actions"] == ["close"]
    detail_schema = api_schema.ORDER_DETAIL["allOf"][1]
    assert set(order) == set(api_schema.ORDER_SUMMARY["properties"]) | set(
        detail_schema["properties"]
    )


def test_unknown_order_is_a_json_404(api: Api, order: Order) -> None:
    assert "does not exist" in error_of(api.get(f"/orders/{order.id + 1000}"), 404)["error"]
    error_of(api.get("/orders/abc"), 404)
    error_of(api.get("/orders/99999999999999999999"), 404)
    # The largest id a row can have is looked up; one more matches no route.
    assert "does not exist" in error_of(api.get("/orders/2147483647"), 404)["error"]
    assert "no such API route" in error_of(api.get("/orders/2147483648"), 404)["error"]
    error_of(api.post("/orders/2147483648/actions/validate", {}), 404)
    error_of(api.post("/orders/2147483648/transactions", {"kind": "payment"}), 404)
    error_of(api.post("/orders/0/comments", {"text": "x"}), 404)
    error_of(api.post(f"/orders/{order.id + 1000}/comments", {"text": "x"}), 404)


# --- Comments ------------------------------------------------------------------------------


def outbox(db_session: Session, order: Order) -> list[OutboxMessage]:
    return list(db_session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id)))


def test_internal_comment_stays_in_comptoir(api: Api, db_session: Session, order: Order) -> None:
    response = api.post(f"/orders/{order.id}/comments", {"text": "  Vérifier l'adresse  "})
    assert response.status_code == 201
    comment = response.get_json()
    assert comment["text"] == "Vérifier l'adresse" and comment["visibility"] == "internal"
    assert comment["notify"] is False and comment["pushed_at"] is None
    assert comment["author"] == "Manager"
    assert outbox(db_session, order) == []
    detail = api.get(f"/orders/{order.id}").get_json()
    assert [c["id"] for c in detail["comments"]] == [comment["id"]]
    assert "comment.internal" in [e["kind"] for e in detail["events"]]


def test_customer_comment_is_queued_for_the_shop(
    api: Api, db_session: Session, order: Order
) -> None:
    response = api.post(
        f"/orders/{order.id}/comments",
        {"text": "Votre colis part demain.", "visibility": "customer", "notify": True},
    )
    assert response.status_code == 201
    assert response.get_json()["notify"] is True
    [message] = outbox(db_session, order)
    assert message.kind == "comment"
    assert message.payload["text"] == "Votre colis part demain."
    assert message.payload["notify"] is True


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "   "}, "text"),
        ({"text": "x" * 4001}, "text"),
        ({}, "text"),
        ({"text": 12}, "text"),
        ({"text": "ok", "visibility": "public"}, "visibility"),
        ({"text": "ok", "notify": "yes"}, "notify"),
        ({"text": "ok\x00"}, "text"),
        ({"text": "ok", "colour": "red"}, "colour"),
    ],
)
def test_refused_comment_names_the_field(
    api: Api, db_session: Session, order: Order, body: dict[str, Any], field: str
) -> None:
    answer = error_of(api.post(f"/orders/{order.id}/comments", body), 422)
    assert list(answer["fields"]) == [field]
    assert db_session.scalars(select(Comment)).all() == []


# --- Actions -------------------------------------------------------------------------------


def act(api: Api, order: Order, action: str, body: Any = None) -> TestResponse:
    return api.post(f"/orders/{order.id}/actions/{action}", body)


def test_actions_walk_an_order_through_its_life(api: Api, order: Order) -> None:
    validated = act(api, order, "validate").get_json()
    assert validated["commercial_state"] == "validated"
    assert validated["allowed_actions"] == ["hold", "cancel"]
    held = act(api, order, "hold", {"reason": "Adresse à vérifier"}).get_json()
    assert held["on_hold"] is True and held["hold_reason"] == "Adresse à vérifier"
    assert held["allowed_actions"] == ["release", "cancel"]
    released = act(api, order, "release", {"notify": False}).get_json()
    assert released["on_hold"] is False
    cancelled = act(api, order, "cancel", {"reason": "Client a annulé", "notify": True})
    assert cancelled.status_code == 200
    assert cancelled.get_json()["commercial_state"] == "cancelled"
    assert cancelled.get_json()["cancel_reason"] == "Client a annulé"
    assert cancelled.get_json()["allowed_actions"] == []
    kinds = [e["kind"] for e in api.get(f"/orders/{order.id}").get_json()["events"]]
    assert ["order.validated", "order.held", "order.released", "order.cancelled"] == [
        kind for kind in kinds if kind.startswith("order.")
    ]


def test_prepare_and_close_a_paid_order(api: Api, db_session: Session, order: Order) -> None:
    order.commercial_state = CommercialState.VALIDATED
    order.payment_state = PaymentState.PAID
    db_session.commit()
    prepared = act(api, order, "prepare").get_json()
    assert prepared["fulfilment_state"] == "in_preparation"
    order.fulfilment_state = FulfilmentState.SHIPPED
    db_session.commit()
    assert act(api, order, "close").get_json()["commercial_state"] == "closed"


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("release", "the order is not on hold"),
        ("prepare", "the order is not validated yet"),
        ("close", "the order is not validated yet"),
    ],
)
def test_refused_action_says_why(api: Api, order: Order, action: str, reason: str) -> None:
    body = error_of(act(api, order, action), 409)
    assert body["reason"] == reason
    assert action in body["error"] and reason in body["error"]


def test_refused_action_changes_nothing(api: Api, db_session: Session, order: Order) -> None:
    assert act(api, order, "validate").status_code == 200
    body = error_of(act(api, order, "validate"), 409)
    assert body["reason"] == "the order is already validated"
    assert act(api, order, "cancel", {"reason": "x"}).status_code == 200
    assert error_of(act(api, order, "hold", {"reason": "x"}), 409)["reason"] == (
        "the order is cancelled"
    )
    db_session.refresh(order)
    assert order.commercial_state == CommercialState.CANCELLED and not order.on_hold


def test_hold_and_cancel_need_a_reason(api: Api, order: Order) -> None:
    assert list(error_of(act(api, order, "hold"), 422)["fields"]) == ["reason"]
    assert list(error_of(act(api, order, "cancel", {"reason": " "}), 422)["fields"]) == ["reason"]
    too_long = act(api, order, "cancel", {"reason": "x" * 501})
    assert list(error_of(too_long, 422)["fields"]) == ["reason"]


def test_unknown_action_is_a_json_404(api: Api, order: Order) -> None:
    error_of(act(api, order, "ship"), 404)


# --- Transactions --------------------------------------------------------------------------


def pay(api: Api, order: Order, **body: Any) -> TestResponse:
    return api.post(f"/orders/{order.id}/transactions", {"source": "bank_transfer", **body})


def test_payment_as_text_pays_and_validates_the_order(
    api: Api, order: Order, db_session: Session
) -> None:
    response = pay(api, order, kind="payment", amount="24.00", reference="VIR-77")
    assert response.status_code == 201
    answer = response.get_json()
    transaction = answer["transaction"]
    assert (transaction["kind"], transaction["amount"], transaction["currency"]) == (
        "sale",
        "24.00",
        "EUR",
    )
    assert transaction["source"] == "bank_transfer" and transaction["reference"] == "VIR-77"
    assert answer["order"]["payment_state"] == "paid"
    assert answer["order"]["commercial_state"] == "validated"
    assert "prepare" in answer["order"]["allowed_actions"]
    db_session.refresh(order)
    assert order.payment_state == PaymentState.PAID


def test_payment_as_json_number_is_exact(api: Api, order: Order) -> None:
    raw = '{"kind": "payment", "source": "cash", "amount": 4.1, "occurred_at": "2026-03-02"}'
    first = api.post(f"/orders/{order.id}/transactions", data=raw, content_type="application/json")
    assert first.status_code == 201
    assert first.get_json()["transaction"]["amount"] == "4.10"
    # A day is noon where the merchant works: 12:00 in Paris, 11:00 UTC in winter.
    assert first.get_json()["transaction"]["occurred_at"] == "2026-03-02T11:00:00+00:00"
    assert first.get_json()["order"]["payment_state"] == "partially_paid"
    # 19.90 as a float is 19.899999999999998578...; read as a decimal it is exact.
    raw = '{"kind": "payment", "source": "cheque", "amount": 19.90}'
    second = api.post(f"/orders/{order.id}/transactions", data=raw, content_type="application/json")
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["transaction"]["amount"] == "19.90"
    assert second.get_json()["order"]["payment_state"] == "paid"
    whole = pay(api, order, kind="payment", amount=3, occurred_at="2026-03-02T09:30:00+01:00")
    assert whole.get_json()["transaction"]["amount"] == "3.00"
    assert whole.get_json()["transaction"]["occurred_at"] == "2026-03-02T08:30:00+00:00"


def test_refund_above_what_was_received_is_refused(
    api: Api, db_session: Session, order: Order
) -> None:
    assert pay(api, order, kind="payment", amount="10.00").status_code == 201
    body = error_of(pay(api, order, kind="refund", amount="10.01"), 422)
    assert list(body["fields"]) == ["amount"]
    assert "cannot exceed the money received" in body["fields"]["amount"]
    refunded = pay(api, order, kind="refund", amount="10.00")
    assert refunded.status_code == 201
    assert refunded.get_json()["order"]["payment_state"] == "refunded"
    db_session.refresh(order)
    assert [t.amount for t in order.transactions] == [Decimal("10.00"), Decimal("10.00")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "gift", "amount": "1.00"}, "kind"),
        ({"kind": "payment", "source": "shop", "amount": "1.00"}, "source"),
        ({"kind": "payment", "amount": "0"}, "amount"),
        ({"kind": "payment", "amount": "-5"}, "amount"),
        ({"kind": "payment", "amount": "1.005"}, "amount"),
        ({"kind": "payment", "amount": "douze"}, "amount"),
        ({"kind": "payment", "amount": True}, "amount"),
        ({"kind": "payment", "amount": ["1"]}, "amount"),
        ({"kind": "payment"}, "amount"),
        ({"kind": "payment", "amount": "1", "occurred_at": "yesterday"}, "occurred_at"),
        ({"kind": "payment", "amount": "1", "occurred_at": "2999-01-01"}, "occurred_at"),
        (
            {"kind": "payment", "amount": "1", "occurred_at": "0001-01-01T00:00:00+05:00"},
            "occurred_at",
        ),
        ({"kind": "payment", "amount": "1", "reference": "r" * 201}, "reference"),
    ],
)
def test_refused_transaction_names_the_field(
    api: Api, db_session: Session, order: Order, body: dict[str, Any], field: str
) -> None:
    answer = error_of(pay(api, order, **body), 422)
    assert list(answer["fields"]) == [field]
    db_session.refresh(order)
    assert order.transactions == [] and order.payment_state == PaymentState.UNPAID


# --- Malformed requests --------------------------------------------------------------------


def test_malformed_json_is_a_400(api: Api, order: Order) -> None:
    path = f"/orders/{order.id}/comments"
    for raw in ('{"text": ', "[1, 2]", '"text"', "\xff\xfe{", '{"text": NaN}', "[" * 100_00):
        response = api.post(path, data=raw.encode("latin-1"), content_type="application/json")
        error_of(response, 400)
    error_of(api.post(path, data=b"", content_type="application/json"), 400)


def test_wrong_content_type_is_a_415(api: Api, order: Order) -> None:
    response = api.post(f"/orders/{order.id}/comments", data={"text": "hello"})  # a form post
    assert "application/json" in error_of(response, 415)["error"]
    response = api.post(
        f"/orders/{order.id}/actions/validate", data="{}", content_type="text/plain"
    )
    error_of(response, 415)


def test_action_accepts_no_body_at_all(api: Api, order: Order) -> None:
    assert api.post(f"/orders/{order.id}/actions/validate").status_code == 200


def test_body_over_64_kib_is_a_413(api: Api, db_session: Session, order: Order) -> None:
    body = {"text": "x" * (64 * 1024)}
    error_of(api.post(f"/orders/{order.id}/comments", body), 413)
    assert db_session.scalars(select(Comment)).all() == []


def test_unknown_route_and_method_answer_json(api: Api, client: FlaskClient, order: Order) -> None:
    assert "no such" in error_of(api.get("/invoices"), 404)["error"]
    error_of(client.get("/api/v1/nope/nope"), 404)
    error_of(api.get("/"), 404)
    response = client.delete(f"/api/v1/orders/{order.id}", headers=api.headers())
    error_of(response, 405)
    assert response.headers["Allow"] == "GET"
    response = api.get(f"/orders/{order.id}/comments")
    error_of(response, 405)
    assert response.headers["Allow"] == "POST"
    error_of(client.put("/api/v1/orders"), 405)


def test_openapi_document_is_public_and_describes_every_route(client: FlaskClient) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    routes = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert routes == {
        ("GET", "/openapi.json"),
        ("GET", "/shipping-modes"),
        ("GET", "/documents"),
        ("GET", "/documents/{document_id}"),
        ("GET", "/documents/{document_id}/pdf"),
        ("POST", "/documents/{document_id}/credit-notes"),
        ("POST", "/orders/{order_id}/invoices"),
        ("GET", "/orders"),
        ("GET", "/orders/{order_id}"),
        ("POST", "/orders/{order_id}/comments"),
        ("POST", "/orders/{order_id}/actions/{action}"),
        ("POST", "/orders/{order_id}/transactions"),
        ("POST", "/orders/{order_id}/shipments"),
        ("POST", "/shipments/{shipment_id}/parcels"),
        ("POST", "/shipments/{shipment_id}/actions/{action}"),
    }
    flask_routes = {
        (method, re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule.removeprefix("/api/v1")))
        for rule in client.application.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.unknown"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    assert flask_routes == routes


# --- Tokens in the admin screens -----------------------------------------------------------


PARTIAL = {"HX-Request": "true"}


def test_admin_creates_a_token_shown_once_that_works(
    client: FlaskClient, login_as: Callable[..., User], make_user: Callable[..., User], order: Order
) -> None:
    login_as(Role.ADMIN)
    integration = make_user(Role.MANAGER, "erp@example.com")
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Aucun jeton actif" in page  # French, the default language
    response = client.post(
        "/admin/tokens",
        data={"user_id": integration.id, "label": "ERP", "csrf_token": csrf_from(page)},
        headers=PARTIAL,
    )
    assert response.status_code == 201
    fragment = response.get_data(as_text=True)
    assert "<html" not in fragment and 'id="api-tokens"' in fragment
    token = re.search(r'<code class="token-once"[^>]*>(cpt_[^<]+)</code>', fragment).group(1)
    assert "ERP" in fragment and "erp@example.com" in fragment
    assert Api(client, token).get(f"/orders/{order.id}").status_code == 200
    # Listed afterwards, never shown again.
    again = client.get("/admin/users").get_data(as_text=True)
    assert "ERP" in again and token not in again and "Aucun jeton actif" not in again


def test_admin_revokes_a_token(
    client: FlaskClient,
    db_session: Session,
    login_as: Callable[..., User],
    token_for: TokenFor,
    order: Order,
) -> None:
    token = token_for(Role.MANAGER)
    api_token = db_session.scalars(select(ApiToken)).one()
    login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    revoke_url = f"/admin/users/{api_token.user_id}/tokens/{api_token.id}/revoke"
    assert f'action="{revoke_url}"' in page
    response = client.post(revoke_url, data={"csrf_token": csrf_from(page)}, headers=PARTIAL)
    assert response.status_code == 200
    assert "<html" not in response.get_data(as_text=True)
    assert revoke_url not in response.get_data(as_text=True)
    error_of(Api(client, token).get("/orders"), 401)


def test_token_form_without_htmx_shows_the_token_in_the_page_it_answers(
    client: FlaskClient, login_as: Callable[..., User], order: Order
) -> None:
    admin = login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    response = client.post(
        "/admin/tokens", data={"user_id": admin.id, "label": "", "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    html = response.get_data(as_text=True)
    assert "<html" in html
    token = re.search(r"(cpt_[A-Za-z0-9_-]+)", html).group(1)
    assert Api(client, token).get("/orders").status_code == 200
    assert token not in client.get("/admin/users").get_data(as_text=True)


def test_token_form_refuses_a_long_label(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    admin = login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    response = client.post(
        "/admin/tokens",
        data={"user_id": admin.id, "label": "x" * 121, "csrf_token": csrf_from(page)},
        headers=PARTIAL,
    )
    assert response.status_code == 422
    assert "120 caractères" in response.get_data(as_text=True)


def test_only_admins_manage_tokens(
    client: FlaskClient, db_session: Session, token_for: TokenFor
) -> None:
    token_for(Role.VIEWER)
    api_token = db_session.scalars(select(ApiToken)).one()
    manager = users.create_user(db_session, "boss@example.com", Role.MANAGER, "a long password")[0]
    db_session.commit()
    log_in(client, manager.email, "a long password")
    page = client.get("/orders/").get_data(as_text=True)
    response = client.post(
        f"/admin/users/{api_token.user_id}/tokens/{api_token.id}/revoke",
        data={"csrf_token": csrf_from(page)},
    )
    assert response.status_code == 403
    db_session.refresh(api_token)
    assert api_token.revoked_at is None


def test_token_forms_answer_ids_no_user_can_have_with_a_refusal(
    client: FlaskClient, db_session: Session, login_as: Callable[..., User], token_for: TokenFor
) -> None:
    token_for(Role.VIEWER)
    api_token = db_session.scalars(select(ApiToken)).one()
    login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    token = csrf_from(page)
    for user_id in ("²", "0", "-1", "2147483648", "9" * 5000, "abc", str(api_token.user_id + 99)):
        response = client.post(
            "/admin/tokens", data={"user_id": user_id, "csrf_token": token}, headers=PARTIAL
        )
        assert response.status_code == 422, user_id
        assert "Choisissez un utilisateur." in response.get_data(as_text=True)
    for user_id in ("2147483648", "99999999999999999999", "0", str(api_token.user_id + 99)):
        revoke = f"/admin/users/{user_id}/tokens/{api_token.id}/revoke"
        assert client.post(revoke, data={"csrf_token": token}).status_code == 404, revoke
        active = f"/admin/users/{user_id}/active"
        assert client.post(active, data={"csrf_token": token}).status_code == 404, active
    revoke = f"/admin/users/{api_token.user_id}/tokens/2147483648/revoke"
    assert client.post(revoke, data={"csrf_token": token}).status_code == 404
    db_session.refresh(api_token)
    assert api_token.revoked_at is None


def test_detail_has_discounts_components_and_lines_without_shipping(
    api: Api, db_session: Session
) -> None:
    shop = make_shop(db_session, key="nantes", name="Boutique Nantes")
    box = make_line("COFFRET", 1, "33.00")
    tea = make_line("THE-LAV", 2, "0.00")
    ebook = make_line("EBOOK", 1, "3.225", total_gross=Decimal("3.23"), needs_shipping=False)
    order = make_order(
        db_session,
        shop,
        [box, tea, ebook],
        discounts=[{"code": "BIENVENUE10", "label": "Bienvenue -10 %", "amount": "3.62"}],
        discount_total=Decimal("3.62"),
        grand_total=Decimal("32.61"),
        computed_total=Decimal("32.61") + Decimal("0.01"),
    )
    db_session.flush()
    tea.parent_line_id = box.id
    db_session.commit()
    data = api.get(f"/orders/{order.id}").get_json()
    assert data["discounts"] == [
        {"code": "BIENVENUE10", "label": "Bienvenue -10 %", "amount": "3.62"}
    ]
    assert data["computed_total"] == "32.62"
    lines = {line["sku"]: line for line in data["lines"]}
    assert lines["THE-LAV"]["parent_line_id"] == lines["COFFRET"]["id"]
    assert lines["COFFRET"]["parent_line_id"] is None
    assert (lines["EBOOK"]["unit_price"], lines["EBOOK"]["needs_shipping"]) == ("3.225", False)
    assert lines["COFFRET"]["needs_shipping"] is True
    line_schema = api_schema.LINE["properties"]
    assert set(lines["EBOOK"]) == set(line_schema)


# --- Events in the token user's language ----------------------------------------------------


@pytest.mark.parametrize(
    ("locale", "held", "cancelled", "issue"),
    [
        (
            "en",
            "Order put on hold: Adresse à vérifier",
            "Payment state changed from Unpaid to Paid.",
            "unknown shipping method “Drone”",
        ),
        (
            "fr",
            "Commande mise en attente : Adresse à vérifier",
            "État du paiement passé de Non payée à Payée.",
            "mode de livraison inconnu « Drone »",
        ),
        (
            None,
            "Commande mise en attente : Adresse à vérifier",
            "État du paiement passé de Non payée à Payée.",
            "mode de livraison inconnu « Drone »",
        ),
    ],
)
def test_event_text_follows_the_token_users_language(
    client: FlaskClient,
    db_session: Session,
    make_user: Callable[..., User],
    order: Order,
    locale: str | None,
    held: str,
    cancelled: str,
    issue: str,
) -> None:
    user = make_user(Role.MANAGER)
    user.locale = locale
    token = users.create_api_token(db_session, user, "tests")
    order.needs_mapping = True
    order.mapping_issues = [{"kind": "carrier", "value": "Drone", "label": ""}]
    db_session.add_all(
        [
            OrderEvent(
                order=order,
                actor_type=ActorType.USER,
                actor_user=user,
                kind="order.held",
                details={"reason": "Adresse à vérifier"},
            ),
            OrderEvent(
                order=order,
                actor_type=ActorType.SYSTEM,
                kind="payment.state_changed",
                details={"from": "unpaid", "to": "paid"},
            ),
        ]
    )
    db_session.commit()
    api = Api(client, token)

    body = api.get(f"/orders/{order.id}").get_json()

    assert [(e["kind"], e["params"], e["text"]) for e in body["events"]] == [
        ("order.held", {"reason": "Adresse à vérifier"}, held),
        ("payment.state_changed", {"from": "unpaid", "to": "paid"}, cancelled),
    ]
    assert body["mapping_issue"] == issue
    assert body["mapping_issues"] == [{"kind": "carrier", "value": "Drone", "label": ""}]
    [listed] = api.get("/orders").get_json()["orders"]
    assert listed["mapping_issue"] == issue


def test_a_path_with_a_control_character_is_a_json_404(client: FlaskClient) -> None:
    response = client.post("/api/v1/orders/2/actions/%0A", headers={"Authorization": "Bearer x"})
    assert response.status_code == 404
    assert "no such API route" in response.get_json()["error"]
