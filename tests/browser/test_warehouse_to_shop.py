"""Issue 10's "done when": a warehouse worker on a phone goes from the queue to a shipped order,
and the emulated shop shows the shipment with its tracking numbers.

Everything is real: the Magento store is the loopback emulator, the order comes in through the
poll, the worker packs it in Chromium at 360×740, and the embedded worker (as `make run` serves
it) sends the shipment to the store through the outbox.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.browser.conftest import PHONE, log_in, watch_csp_violations
from tests.emulators.magento import MagentoEmulator
from web.models import CarrierMapping, Shop
from web.models.enums import CommercialState, PaymentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import shipments
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.sync import run_sync

pytestmark = pytest.mark.browser

FIXTURE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "fr-order-relay-coupon.json"
)
LABEL = "Mondial Relay - Livraison en Point Relais"
ENTITY_ID = 7400
NUMBER = "000007400"


@pytest.fixture()
def magento() -> Iterator[MagentoEmulator]:
    with MagentoEmulator() as store:
        order = json.loads(FIXTURE.read_text())
        # The oldest order of the queue, so it is the first card.
        stored = store.add_order(
            {
                **order,
                "entity_id": ENTITY_ID,
                "increment_id": NUMBER,
                "created_at": "2019-01-02 08:00:00",
            }
        )
        store.update_order(stored["entity_id"])  # type: ignore[attr-defined]
        yield store  # type: ignore[misc]


@pytest.fixture()
def order_id(live_app: Flask, magento: MagentoEmulator) -> int:
    """The store's order, polled in through the real connector, ready for the warehouse."""
    sessions = live_app.extensions["comptoir.sessions"]
    result = live_app.test_cli_runner().invoke(
        args=[
            "shops",
            "add",
            "--platform",
            "magento",
            "--name",
            "Papeterie du quai",
            "--url",
            magento.base_url,
            "--api-key",
            magento.token,  # type: ignore[attr-defined]
        ]
    )
    assert result.exit_code == 0, result.output
    key = str(json.loads(result.output)["key"])
    with sessions.begin() as session:
        shop = session.scalars(select(Shop).where(Shop.key == key)).one()
        modes = ensure_default_shipping_modes(session)
        shop.carrier_mappings.append(
            CarrierMapping(shop_label=LABEL, shipping_mode=modes["mondial_relay"])
        )
    # The live server's worker polls a new shop at once too: whichever of the two stores the
    # order first, it is there once.
    report = run_sync(sessions, key)
    assert report.polls[0].error == "", report.polls[0]
    with sessions() as session:
        order = session.scalars(select(Order).where(Order.number == NUMBER)).one()
        assert order.commercial_state == CommercialState.VALIDATED
        assert order.payment_state == PaymentState.PAID
        assert shipments.remaining_quantities(order)
        return order.id


@pytest.fixture()
def phone(browser: Any, live_server: str) -> Iterator[Any]:
    context = browser.new_context(
        viewport=PHONE, base_url=live_server, locale="fr-FR", is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    violations = watch_csp_violations(context)
    yield context.new_page()
    context.close()
    assert not violations, "the Content-Security-Policy refused:\n" + "\n".join(violations)


def _items_to_scan(live_app: Flask, order_id: int) -> list[str]:
    with live_app.extensions["comptoir.sessions"]() as session:
        order = session.get(Order, order_id)
        assert order is not None
        remaining = shipments.remaining_quantities(order)
        return [
            line.sku for line in shipments.shippable_lines(order) for _ in range(remaining[line.id])
        ]


def _store_shipments(magento: MagentoEmulator, timeout: float = 30.0) -> list[dict[str, Any]]:
    """The store's shipments of the order, once the embedded worker delivered one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [s for s in magento.shipments if s.get("order_id") == ENTITY_ID]
        if found:
            return found
        time.sleep(0.2)
    return []


def test_from_the_queue_to_the_store_on_a_phone(
    phone: Any, live_app: Flask, magento: MagentoEmulator, order_id: int
) -> None:
    page = phone
    log_in(page, "entrepot@example.com")
    page.goto("/warehouse/?mode=mondial_relay")
    card = page.locator(f'.queue-card[data-order-id="{order_id}"]')
    card.wait_for()
    card.locator("a.pack-button").click()
    page.wait_for_url(f"**/warehouse/orders/{order_id}/pack**")

    scan_field = page.locator("#scan-code")
    scan_field.fill("NOT-IN-THIS-ORDER")
    scan_field.press("Enter")
    page.locator(".scan-message.bad").wait_for()
    for sku in _items_to_scan(live_app, order_id):
        scan_field.fill(sku)
        scan_field.press("Enter")
    page.locator("#tracking-1").wait_for()
    page.fill("#tracking-1", "MR-PHONE-1")
    page.click("[data-add-parcel]")
    page.fill("#tracking-2", "MR-PHONE-2")
    page.click("[data-confirm-button]")
    page.locator("[data-pack-done]").wait_for()

    # The store shows the shipment with both tracking numbers, written once.
    [shipped] = _store_shipments(magento)
    assert sorted(t["track_number"] for t in shipped["tracks"]) == ["MR-PHONE-1", "MR-PHONE-2"]
    ships = [r for r in magento.writes() if r.path.endswith(f"/order/{ENTITY_ID}/ship")]
    assert len(ships) == 1
    with live_app.extensions["comptoir.sessions"]() as session:
        [shipment] = session.scalars(select(Shipment).where(Shipment.order_id == order_id)).all()
        deadline = time.monotonic() + 10
        while shipment.external_id is None and time.monotonic() < deadline:
            time.sleep(0.2)
            session.rollback()  # a new read: on SQLite, one transaction keeps its first snapshot
        assert shipment.external_id == str(shipped["entity_id"])
        assert shipment.pushed_at is not None
