"""The warehouse imports a carrier's tracking file from the phone and follows the job."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.factories import make_order, make_shop
from web.models.enums import CommercialState, PaymentState
from web.models.orders import Order
from web.services.shipping_modes import ensure_default_shipping_modes

pytestmark = pytest.mark.browser


def add_ready_orders(live_app: Flask, key: str) -> list[str]:
    """Two orders ready to ship, numbered so no demo order shares their numbers."""
    with live_app.extensions["comptoir.sessions"].begin() as session:
        modes = ensure_default_shipping_modes(session)
        shop = make_shop(session, key, name=f"Boutique {key}")
        return [
            make_order(
                session,
                shop,
                number=f"{key}-{n}",
                external_id=f"{key}-ext-{n}",
                commercial_state=CommercialState.VALIDATED,
                payment_state=PaymentState.PAID,
                shipping_mode=modes["colissimo"],
            ).number
            for n in (1, 2)
        ]


def test_import_a_tracking_file_and_follow_the_job(page: Any, live_app: Flask) -> None:
    key = f"trk-{page.viewport_name}"
    first, second = add_ready_orders(live_app, key)
    log_in(page, "entrepot@example.com")
    page.goto("/warehouse/")
    page.click("main a[href='/shipping/']")
    expect(page.locator("h1")).to_have_text("Fichiers d’expédition")
    assert_no_horizontal_scroll(page)

    text = f"\ufeffCommande;Suivi\r\n{first};6A{key}1\r\n\r\n{second};6A{key}2\r\nINCONNUE;6A9\r\n"
    upload = {"name": "suivi.csv", "mimeType": "text/csv", "buffer": text.encode("utf-8")}
    page.set_input_files("#tracking-file", files=[upload])
    page.click("#tracking-import button[type=submit]")
    # The embedded worker runs the job; the page polls until it is done.
    expect(page.locator(".tracking-job")).to_have_attribute("data-state", "done")
    expect(page.locator("[data-count=created]")).to_have_text("2")
    expect(page.locator("[data-count=refused]")).to_have_text("1")
    expect(page.locator("tr[data-line='5']")).to_contain_text("commande inconnue")
    assert_no_horizontal_scroll(page)

    with live_app.extensions["comptoir.sessions"]() as session:
        orders = session.scalars(select(Order).where(Order.number.in_([first, second])))
        tracking = sorted(p.tracking_number for o in orders for s in o.shipments for p in s.parcels)
    assert tracking == [f"6A{key}1", f"6A{key}2"]
