"""What the Lambda tests share: the AWS mode on the module's database, shops on emulators,
and counts read the way an operator would."""

from __future__ import annotations

import copy
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import runtime
from tests.aws.conftest import Stack
from tests.emulators.woocommerce import WooCommerceEmulator
from web.app import create_app
from web.models import InboxEvent, Order, OrderEvent, Shop, Transaction
from web.models.enums import InboxState
from web.services import shops

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def woo_order() -> dict[str, Any]:
    """A WooCommerce order (paid, partly refunded) under a fresh id."""
    data = json.loads((FIXTURES / "woocommerce" / "fr-order-relay-coupon-refund.json").read_text())
    data = copy.deepcopy(data)
    data.pop("id", None)
    data.pop("number", None)
    return data


@pytest.fixture()
def settings(
    aws_stack: Stack, parallel_database: str, encryption_key: str, tmp_path: Path
) -> dict[str, Any]:
    """The AWS mode on this module's database: the app's and the Lambdas' settings."""
    return {
        **aws_stack.settings_on(parallel_database, encryption_key),
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
    }


@pytest.fixture()
def lambdas(settings: dict[str, Any]) -> Iterator[sessionmaker[Session]]:
    """The Lambda runtime pointed at the stack and the module's database."""
    runtime.use(settings)
    yield runtime.sessions()
    runtime.use()


@pytest.fixture()
def web_client(settings: dict[str, Any], lambdas: sessionmaker[Session]) -> FlaskClient:
    app: Flask = create_app(settings)
    return app.test_client()


@pytest.fixture()
def woo_emulator() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as emulator:
        yield emulator  # type: ignore[misc]


def make_shop(sessions: sessionmaker[Session], platform: str, emulator: Any, **keys: Any) -> Shop:
    with sessions.begin() as session:
        shop = shops.create_shop(
            session,
            platform,
            f"Boutique {uuid.uuid4().hex[:8]}",
            emulator.base_url,
            webhook_secret=emulator.webhook_secret,
            **keys,
        )
        session.flush()
        session.expunge(shop)
    return shop


def switch_off(sessions: sessionmaker[Session], shop: Shop) -> None:
    """The module's database outlives the test: its shop must not be polled by the next."""
    with sessions.begin() as session:
        session.get_one(Shop, shop.id).is_active = False


@pytest.fixture()
def woo(lambdas: sessionmaker[Session], woo_emulator: WooCommerceEmulator) -> Iterator[Shop]:
    shop = make_shop(
        lambdas,
        "woocommerce",
        woo_emulator,
        api_key=woo_emulator.consumer_key,
        api_secret=woo_emulator.consumer_secret,
        import_from=dt.date(2000, 1, 1),  # a first poll reads the emulator's orders, of any date
    )
    yield shop
    switch_off(lambdas, shop)


def post_webhook(client: FlaskClient, shop: Shop, body: bytes, headers: dict[str, str]) -> str:
    response = client.post(f"/hooks/{shop.platform.value}/{shop.key}", data=body, headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["status"])


def count(sessions: sessionmaker[Session], model: Any, shop: Shop, *where: Any) -> int:
    with sessions() as session:
        query = select(func.count()).select_from(model).where(model.shop_id == shop.id, *where)
        return session.scalar(query) or 0


def events(sessions: sessionmaker[Session], shop: Shop) -> list[tuple[str, InboxState, int]]:
    with sessions() as session:
        query = (
            select(InboxEvent.topic, InboxEvent.state, InboxEvent.attempts)
            .where(InboxEvent.shop_id == shop.id)
            .order_by(InboxEvent.id)
        )
        return [tuple(row) for row in session.execute(query)]  # type: ignore[misc]


def order_history(sessions: sessionmaker[Session], shop: Shop) -> dict[str, list[str]]:
    """Each order's number → the kinds of its timeline events, in order."""
    with sessions() as session:
        query = (
            select(Order.number, OrderEvent.kind)
            .join(OrderEvent, OrderEvent.order_id == Order.id)
            .where(Order.shop_id == shop.id)
            .order_by(OrderEvent.id)
        )
        history: dict[str, list[str]] = {}
        for number, kind in session.execute(query):
            history.setdefault(number, []).append(kind)
        return history


def payments(sessions: sessionmaker[Session], shop: Shop) -> dict[str, list[tuple[str, Decimal]]]:
    with sessions() as session:
        query = (
            select(Order.number, Transaction.kind, Transaction.amount)
            .join(Transaction, Transaction.order_id == Order.id)
            .where(Order.shop_id == shop.id)
            .order_by(Transaction.kind, Transaction.amount)
        )
        found: dict[str, list[tuple[str, Decimal]]] = {}
        for number, kind, amount in session.execute(query):
            found.setdefault(number, []).append((kind.value, amount))
        return found
