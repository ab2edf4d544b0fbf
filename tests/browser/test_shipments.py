"""Shipping from the order page in Chromium, at desktop size and on a 360 px phone."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.factories import make_line, make_order, make_shop
from web.models.enums import CommercialState, PaymentState
from web.services.shipping_modes import ensure_default_shipping_modes

pytestmark = pytest.mark.browser

KEYS = itertools.count(1)


@pytest.fixture()
def order_id(live_app: Flask) -> int:
    """A validated, paid order of three mugs and a tea, sent by Colissimo to 69001."""
    sessions = live_app.extensions["comptoir.sessions"]
    with sessions.begin() as session:
        colissimo = ensure_default_shipping_modes(session)["colissimo"]
        shop = make_shop(session, f"ship-{next(KEYS)}")
        order = make_order(
            session,
            shop,
            [make_line("MUG-BLEU", 3, "12.00"), make_line("THE-VERT", 1, "5.50")],
            commercial_state=CommercialState.VALIDATED,
            payment_state=PaymentState.PAID,
            shipping_label="Colissimo",
            shipping_mode=colissimo,
            shipping_address={"first_name": "Ana", "postcode": "69001", "city": "Lyon"},
            grand_total=Decimal("41.50"),
        )
        session.flush()
        return order.id


def test_ship_part_then_everything_that_remains(page: Any, order_id: int) -> None:
    install_axe(page)
    log_in(page)
    page.goto(f"/orders/{order_id}")
    page.click("#create-shipment")
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    mug, tea = page.locator(".create-shipment input[type=number]").all()
    mug.fill("2")
    tea.fill("0")
    page.fill("#tracking-1", "6A0001")
    page.fill("#weight-1", "0,9")
    page.locator(".create-shipment button[type=submit]").click()
    page.locator("#shipments a", has_text="6A0001").wait_for()
    assert page.locator(".order-states", has_text="Partiellement expédiée").count() == 1
    assert page.locator(".shipment-remaining", has_text="2 articles").count() == 1

    page.fill("#ship-all-tracking", "6A0002")
    page.click("#ship-everything")
    link = page.locator("#shipments a", has_text="6A0002")
    link.wait_for()
    assert link.get_attribute("href") == (
        "https://www.laposte.fr/outils/suivre-vos-envois?code=6A0002"
    )
    assert page.locator("#ship-everything").count() == 0
    assert page.locator(".shipment-remaining", has_text="Chaque article").count() == 1
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)


def test_a_refusal_keeps_what_was_typed(page: Any, order_id: int) -> None:
    log_in(page)
    page.goto(f"/orders/{order_id}")
    page.fill("#ship-all-weight", "lourd")
    page.click("#ship-everything")
    error = page.locator("#ship-all-weight-error")
    error.wait_for()
    assert page.input_value("#ship-all-weight") == "lourd"
    assert page.url.endswith(f"/orders/{order_id}")
    assert page.locator("#shipments .shipment").count() == 0
    assert_no_horizontal_scroll(page)
