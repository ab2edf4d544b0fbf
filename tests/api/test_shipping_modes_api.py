"""GET /api/v1/shipping-modes: the codes an integration may ship with, and who may read them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.api.test_api import Api, TokenFor, error_of
from web.models import User
from web.models.enums import Role
from web.services import shipping_modes, users
from web.views import api_schema


@pytest.fixture()
def token_for(db_session: Session, make_user: Callable[..., User]) -> TokenFor:
    def make(role: Role) -> str:
        token = users.create_api_token(db_session, make_user(role), "tests")
        db_session.commit()
        return token

    return make


def test_the_active_modes_are_listed_by_name(
    client: FlaskClient,
    token_for: TokenFor,
    db_session: Session,
) -> None:
    seeded = shipping_modes.ensure_default_shipping_modes(db_session)
    seeded["gls"].is_active = False
    db_session.commit()
    response = Api(client, token_for(Role.VIEWER)).get("/shipping-modes")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    listed = response.get_json()["shipping_modes"]
    assert [mode["name"] for mode in listed] == sorted(mode["name"] for mode in listed)
    by_code = {mode["code"]: mode for mode in listed}
    assert "gls" not in by_code and len(listed) == len(seeded) - 1
    assert by_code["mondial_relay"] == {
        "code": "mondial_relay",
        "name": "Mondial Relay Point Relais",
        "carrier": "Mondial Relay",
        "relay": True,
    }
    assert by_code["colissimo"]["relay"] is False


def test_a_token_is_needed_and_the_warehouse_reads_the_modes_but_no_order(
    client: FlaskClient,
    token_for: TokenFor,
) -> None:
    error_of(Api(client, None).get("/shipping-modes"), 401)
    # The warehouse ships with these codes: it reads them (and still no order).
    warehouse = Api(client, token_for(Role.WAREHOUSE))
    assert warehouse.get("/shipping-modes").status_code == 200
    error_of(warehouse.get("/orders"), 403)
    error_of(Api(client, token_for(Role.MANAGER)).post("/shipping-modes", {}), 405)


def test_the_endpoint_is_in_the_openapi_document(client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    operation = document["paths"]["/shipping-modes"]["get"]
    assert operation["operationId"] == "listShippingModes"
    schema = document["components"]["schemas"]["ShippingModeList"]
    item = schema["properties"]["shipping_modes"]["items"]
    assert item["required"] == ["code", "name", "carrier", "relay"]
    assert "/shipping-modes" in api_schema.PATHS
