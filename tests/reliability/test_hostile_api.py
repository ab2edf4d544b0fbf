"""Schemathesis drives every /api/v1 operation from the app's own OpenAPI document (the
`api.openapi` endpoint), with a valid API token, without one, and with a forged one.

Positive and negative cases alike: no answer is a 5xx; without a valid token every
operation but the document itself is 401 with its reason, and nothing is stored; with one,
a refused request (4xx) stores nothing either. tests/api/test_openapi_fuzz.py checks the
answers against the document; this drill counts what is stored.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import schemathesis
from flask import Flask
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.generation.modes import GenerationMode
from sqlalchemy.orm import Session

from tests.api.test_openapi_fuzz import cases
from tests.factories import make_customer, make_line, make_order, make_shop
from tests.reliability.hostile import added, fuzz_settings, row_counts
from web.models import Shipment, User
from web.models.enums import Role, ShipmentState
from web.services import users
from web.views import api_schema

# Every operation; negative cases only where it has parameters to get wrong.
OPERATIONS = [
    (method.upper(), path, mode)
    for path, operations in api_schema.PATHS.items()
    for method, operation in operations.items()
    for mode in GenerationMode
    if mode == GenerationMode.POSITIVE or operation.get("parameters")
]
# Who calls without a valid token: nobody, or a token that was never issued (NUL included).
ANONYMOUS = st.sampled_from([{}, {"Authorization": "Bearer cpt_forged\x00token"}])


@pytest.fixture()
def known_ids(db_session: Session) -> dict[str, list[int]]:
    """Two orders, one of them with a shipment: ids the requests name, so bodies get used."""
    shop = make_shop(db_session, "boutique")
    orders = [
        make_order(db_session, shop, [make_line("MUG", 2, "12.00")], customer=customer)
        for customer in (make_customer(db_session), make_customer(db_session))
    ]
    shipment = Shipment(order=orders[1], number="EXP-1", state=ShipmentState.DRAFT)
    db_session.add(shipment)
    db_session.commit()
    return {
        "order_id": [order.id for order in orders],
        "shipment_id": [shipment.id],
        "document_id": [1],
    }


@pytest.mark.parametrize("caller", ["token", "anonymous"])
def test_no_operation_answers_5xx_and_refused_requests_store_nothing(
    app: Flask,
    db_session: Session,
    known_ids: dict[str, list[int]],
    make_user: Callable[..., User],
    caller: str,
) -> None:
    token = users.create_api_token(db_session, make_user(Role.MANAGER), "fuzz")
    db_session.commit()
    callers = st.just({"Authorization": f"Bearer {token}"}) if caller == "token" else ANONYMOUS
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    calls = 0

    def drive(method: str, path: str, mode: GenerationMode) -> None:
        @fuzz_settings(reduced=2, full=50)
        @given(case=cases(schema[path][method], mode, known_ids), headers=callers)
        def call(case: schemathesis.Case, headers: dict[str, str]) -> None:
            nonlocal calls
            calls += 1
            before = row_counts(db_session)
            response = case.call(headers=headers)
            status = response.status_code
            assert status < 500, (method, path, status, response.text[:300])
            if caller != "token" and path != "/openapi.json":
                # 404 when the path matches no route at all (an id past any integer column)
                unknown_route = status == 404 and "no such API route" in response.text
                assert status == 401 or unknown_route, (method, path, status, response.text[:300])
            if status >= 400:
                assert response.json()["error"], response.text[:300]
                assert added(before, row_counts(db_session)) == {}, (method, path, status)

        call()

    for method, path, mode in OPERATIONS:
        drive(method, path, mode)
    print(f"{caller}: {calls} requests")  # the case count, for the report of a full run
