"""Magento 2 end to end: no webhooks, so polling is the whole intake."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.magento import MagentoEmulator
from web.models import CarrierMapping, InboxEvent, Order, Shop
from web.models.enums import CommercialState, PaymentState
from web.services import shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "magento"
LABEL = "Mondial Relay - Livraison en Point Relais"


def fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture()
def emulator() -> Iterator[MagentoEmulator]:
    with MagentoEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: MagentoEmulator) -> Shop:
    shop = shops.create_shop(
        db_session, "magento", "Papeterie", emulator.base_url, api_key=emulator.token
    )
    modes = ensure_default_shipping_modes(db_session)
    shop.carrier_mappings.append(
        CarrierMapping(shop_label=LABEL, shipping_mode=modes["mondial_relay"])
    )
    db_session.commit()
    return shop


def recent(emulator: MagentoEmulator, payload: dict[str, Any], **changes: Any) -> dict[str, Any]:
    stored = emulator.add_order({**payload, **changes})
    return emulator.update_order(stored["entity_id"])  # changed just now


def test_an_unsigned_delivery_is_refused_for_magento(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    # Only the module's signed notifications come in (tests/sync/test_notifications_e2e.py).
    response = client.post(f"/hooks/magento/{shop.key}", data=b"{}")
    assert response.status_code == 401
    assert db_session.scalars(select(InboxEvent)).first() is None


def test_a_polled_order_arrives_with_its_payment_and_relay_point(
    emulator: MagentoEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    recent(emulator, fixture("fr-order-relay-coupon.json"))
    report = run_sync(session_factory, shop.key)
    assert report.polls[0].stored == 1 and not report.polls[0].error
    order = db_session.scalars(select(Order)).one()
    assert order.number == "000001042"
    assert order.grand_total == Decimal("84.81")
    assert order.shipping_mode is not None and order.shipping_mode.code == "mondial_relay"
    assert order.payment_state == PaymentState.PAID
    assert order.commercial_state == CommercialState.VALIDATED
    assert not order.needs_mapping, order.mapping_issues


def test_many_pages_then_an_update_then_nothing_new(
    emulator: MagentoEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from web.connectors.magento import MagentoConnector

    monkeypatch.setattr(MagentoConnector, "page_size", 2, raising=False)
    base = fixture("fr-order-relay-coupon.json")
    for index in range(5):
        recent(emulator, base, entity_id=2000 + index, increment_id=f"0000020{index:02d}")
    first = run_sync(session_factory, shop.key)
    assert first.polls[0].stored == 5
    emulator.update_order(2003, status="complete", state="complete")
    second = run_sync(session_factory, shop.key)
    assert second.polls[0].stored == 1
    assert db_session.scalar(select(func.count()).select_from(Order)) == 5
    updated = db_session.scalars(select(Order).where(Order.external_id == "2003")).one()
    db_session.refresh(updated)
    assert updated.shop_status == "complete"
    assert db_session.scalar(select(func.count()).select_from(InboxEvent)) == 6


def test_flask_sync_run_polls_the_shop_and_says_what_it_did(
    app, emulator: MagentoEmulator, shop: Shop, db_session: Session
) -> None:
    recent(emulator, fixture("fr-order-relay-coupon.json"))
    result = app.test_cli_runner().invoke(args=["sync", "run", "--shop", shop.key])
    assert result.exit_code == 0, result.output
    assert f"{shop.key}: 1 new of 1" in result.output
    assert db_session.scalar(select(func.count()).select_from(Order)) == 1
    unknown = app.test_cli_runner().invoke(args=["sync", "run", "--shop", "nope"])
    assert unknown.exit_code != 0 and "no shop" in unknown.output
