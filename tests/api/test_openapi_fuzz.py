"""Schemathesis drives /api/v1 from its own OpenAPI document, through the WSGI app.

Positive and negative cases for every operation, as a manager's token: no answer may be a
5xx, and every answer must match the document (status codes, content type, body schema,
headers). The examples are bounded so each database runs this in seconds.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company
from tests.factories import BASE_TIME, make_customer, make_line, make_order, make_shop
from web.documents import invoices
from web.models import Comment, Document, Order, OrderEvent, Parcel, Shipment, Transaction, User
from web.models.enums import (
    ActorType,
    CommercialState,
    FulfilmentState,
    PaymentState,
    Role,
    ShipmentState,
    TransactionKind,
)
from web.services import users
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor
from web.views import api_schema

MAX_EXAMPLES = 30
"""Per operation and test; a dozen operations, so several hundred requests per database."""

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture()
def order_ids(app: Flask, db_session: Session, make_user: Callable[..., User]) -> list[int]:
    """Six orders with everything an answer can hold; half of them shipped, paid and
    invoiced (the company can invoice, so fuzzed requests may issue more)."""
    complete_company(db_session)
    shop = make_shop(db_session, "boutique")
    author = make_user(Role.MANAGER)
    colissimo = ensure_default_shipping_modes(db_session)["colissimo"]
    for number in range(6):
        order = make_order(
            db_session,
            shop,
            [make_line("MUG", 2, "12.00"), make_line("TEA", 1, "5.50", tax_rate=Decimal("5.5"))],
            customer=make_customer(db_session),
            placed_at=BASE_TIME + dt.timedelta(days=number),
        )
        if number % 2:
            order.commercial_state = CommercialState.VALIDATED
            order.payment_state = PaymentState.PAID
            order.fulfilment_state = FulfilmentState.SHIPPED
            order.shipping_mode = colissimo
            db_session.add_all(
                [
                    Transaction(
                        order=order,
                        external_id=f"ch_{number}",
                        kind=TransactionKind.CAPTURE,
                        amount=order.grand_total,
                        occurred_at=BASE_TIME,
                    ),
                    Shipment(
                        order=order,
                        number=f"EXP-{number}",
                        state=ShipmentState.SHIPPED,
                        shipped_at=BASE_TIME,
                        parcels=[Parcel(tracking_number=f"6A{number}", weight_kg=Decimal("1.2"))],
                    ),
                    Comment(order=order, author=author, text="Appeler avant 18 h."),
                    OrderEvent(
                        order=order,
                        occurred_at=BASE_TIME,
                        actor_type=ActorType.USER,
                        actor_user=author,
                        kind="order.validated",
                        details={"automatic": False},
                    ),
                ]
            )
    db_session.flush()
    for order in db_session.scalars(select(Order).where(Order.payment_state == PaymentState.PAID)):
        invoices.issue_invoice(db_session, order, Actor.system("fuzz"))
    db_session.commit()
    return list(db_session.scalars(select(Order.id).order_by(Order.id)))


@pytest.fixture()
def manager_token(db_session: Session, make_user: Callable[..., User]) -> str:
    token = users.create_api_token(db_session, make_user(Role.MANAGER), "fuzz")
    db_session.commit()
    return token


def cases(
    operation: APIOperation, mode: GenerationMode, known_ids: dict[str, list[int]]
) -> st.SearchStrategy[schemathesis.Case]:
    """The operation's cases; an order, shipment or document id is mostly one that exists, so
    bodies get used."""
    has_body = operation.body is not None and len(operation.body) > 0
    name = next((n for n in known_ids if f"{{{n}}}" in operation.path), None)
    if name is None or (mode == GenerationMode.NEGATIVE and not has_body):
        return operation.as_strategy(generation_mode=mode)
    ids = known_ids[name]
    known = st.sampled_from([*ids, ids[-1] + 1000])
    return known.flatmap(
        lambda value: operation.as_strategy(generation_mode=mode, path_parameters={name: value})
    )


CASES = [
    pytest.param(method.upper(), path, mode, id=f"{method.upper()} {path} {mode}")
    for path, operations in api_schema.PATHS.items()
    for method, operation in operations.items()
    for mode in GenerationMode
    # Nothing to get wrong in a request without parameters or body.
    if mode == GenerationMode.POSITIVE or operation.get("parameters")
]


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_every_answer_conforms_and_none_is_a_server_error(
    app: Flask,
    db_session: Session,
    order_ids: list[int],
    manager_token: str,
    method: str,
    path: str,
    mode: GenerationMode,
) -> None:
    # schemathesis' own pytest plugin (schema.parametrize) reaches into pytest internals
    # that pytest 9.2 removed, so the strategy is driven by a plain Hypothesis test.
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operation = schema[path][method]
    headers = {"Authorization": f"Bearer {manager_token}"}

    known_ids = {
        "order_id": order_ids,
        "shipment_id": list(db_session.scalars(select(Shipment.id).order_by(Shipment.id))),
        "document_id": list(db_session.scalars(select(Document.id).order_by(Document.id))),
    }

    @given(case=cases(operation, mode, known_ids))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()
