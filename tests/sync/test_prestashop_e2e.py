"""PrestaShop end to end: the webservice polled on date_upd, in shop-local time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from web.models import CarrierMapping, Order, Shop, SyncCursor
from web.models.enums import CommercialState, PaymentState
from web.services import shops
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import RECONCILE_EVERY, run_sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prestashop"
RELATED = (
    "fr-customers.xml",
    "fr-addresses.xml",
    "fr-order_details.xml",
    "fr-order_payments.xml",
    "fr-order_slip.xml",
    "fr-order_cart_rules.xml",
    "fr-cart_rules.xml",
    "fr-messages.xml",
    "fr-order_histories.xml",
)


@pytest.fixture()
def emulator() -> Iterator[PrestaShopEmulator]:
    with PrestaShopEmulator() as shop:
        for name in RELATED:
            shop.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        for name in ("fr-order-101.xml", "fr-order-102.xml", "fr-order-103.xml"):
            order_id = shop.add_order((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
            shop.update_order(order_id)  # type: ignore[attr-defined]  # changed just now
        yield shop  # type: ignore[misc]


@pytest.fixture()
def shop(db_session: Session, emulator: PrestaShopEmulator) -> Shop:
    shop = shops.create_shop(
        db_session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
    )
    modes = ensure_default_shipping_modes(db_session)
    for label, code in (
        ("Colissimo", "colissimo"),
        ("Mondial Relay", "mondial_relay"),
        ("Chronopost", "chronopost"),
    ):
        shop.carrier_mappings.append(CarrierMapping(shop_label=label, shipping_mode=modes[code]))
    db_session.commit()
    return shop


def test_polling_brings_every_order_in_its_state(
    shop: Shop, db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    report = run_sync(session_factory, shop.key)
    assert report.polls[0].stored == 3 and not report.polls[0].error
    orders = {o.number: o for o in db_session.scalars(select(Order))}
    awaiting, paid, cancelled = orders["XKBKNABJK"], orders["QWMRTZPLE"], orders["HZPWKQSNB"]
    assert awaiting.payment_state == PaymentState.UNPAID
    assert awaiting.commercial_state == CommercialState.NEW
    assert awaiting.grand_total == Decimal("114.90")
    assert paid.payment_state in (PaymentState.PAID, PaymentState.PARTIALLY_REFUNDED)
    assert paid.commercial_state == CommercialState.VALIDATED
    assert paid.shipping_mode is not None and paid.shipping_mode.code == "mondial_relay"
    assert cancelled.commercial_state == CommercialState.CANCELLED
    assert not any(o.needs_mapping for o in orders.values()), [
        o.mapping_issues for o in orders.values()
    ]


def test_a_state_change_in_the_shop_arrives_on_the_next_poll(
    emulator: PrestaShopEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    run_sync(session_factory, shop.key)
    later = emulator.clock() + dt.timedelta(seconds=1)  # not within the second just read
    emulator.clock = lambda: later
    emulator.update_order(101, current_state="6")
    again = run_sync(session_factory, shop.key)
    assert again.polls[0].probed and again.polls[0].stored == 1
    order = db_session.scalars(select(Order).where(Order.external_id == "101")).one()
    db_session.refresh(order)
    assert order.commercial_state == CommercialState.CANCELLED
    assert order.shop_status == "6"


def test_wrong_webservice_key_is_a_visible_error_not_a_crash(
    shop: Shop, db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    shop.api_key = "WRONGKEYWRONGKEYWRONGKEYWRONGKEY"
    db_session.commit()
    report = run_sync(session_factory, shop.key)
    assert "AuthFailed" in report.polls[0].error
    assert db_session.scalars(select(Order)).first() is None


def test_two_changes_within_the_same_second_are_both_seen(
    emulator: PrestaShopEmulator,
    shop: Shop,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    run_sync(session_factory, shop.key)
    stamp = emulator.get("orders", 101)["date_upd"]
    # PrestaShop stamps to the second: a change in the same second keeps date_upd, which
    # the change probe takes for the version already read...
    emulator.update_order(101, current_state="2", date_upd=stamp)
    probed = run_sync(session_factory, shop.key)
    assert probed.polls[0].probed and probed.polls[0].stored == 0
    # ...and the full poll behind it, every RECONCILE_EVERY, tells them apart by content.
    cursor = db_session.scalars(select(SyncCursor).where(SyncCursor.shop_id == shop.id)).one()
    assert cursor.reconciled_at is not None
    cursor.reconciled_at -= RECONCILE_EVERY
    db_session.commit()
    again = run_sync(session_factory, shop.key)
    assert not again.polls[0].probed and again.polls[0].stored == 1
    order = db_session.scalars(select(Order).where(Order.external_id == "101")).one()
    db_session.refresh(order)
    assert order.shop_status == "2"
