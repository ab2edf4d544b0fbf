"""A manager works an order of a WooCommerce shop from its page; the shop follows.

The live server runs the embedded worker, as `make run` does: the cancellation and the
comment for the buyer reach the loopback WooCommerce shop without anyone pressing "sync".
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.conftest import wait_until
from tests.emulators.woocommerce import WooCommerceEmulator
from web.models import Shop
from web.services import intake, shops
from web.services.timeline import Actor

pytestmark = pytest.mark.browser

ORDER_IDS = itertools.count(88_001)

FIXTURE = (
    Path(__file__).resolve().parents[1]
    / "fixtures"
    / "woocommerce"
    / "fr-order-company-bundle.json"
)


@pytest.fixture(scope="module")
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as shop:
        yield shop  # type: ignore[misc]


@pytest.fixture(scope="module")
def woo_shop_id(live_app: Flask, woo: WooCommerceEmulator) -> int:
    sessions = live_app.extensions["comptoir.sessions"]
    with sessions.begin() as session:
        shop = shops.create_shop(
            session,
            "woocommerce",
            "Thés Woo",
            woo.base_url,
            api_key=woo.consumer_key,  # type: ignore[attr-defined]
            api_secret=woo.consumer_secret,  # type: ignore[attr-defined]
        )
        # Polling would only import the same order again; the test brings it in itself.
        shop.poll_interval_seconds = 86_400
        session.flush()
        return shop.id


@pytest.fixture()
def order_id(live_app: Flask, woo: WooCommerceEmulator, woo_shop_id: int) -> tuple[int, str]:
    """A paid order, "processing" at the shop, brought in through the real intake."""
    payload = copy.deepcopy(json.loads(FIXTURE.read_text()))
    payload["status"] = "processing"
    payload["id"] = next(ORDER_IDS)
    payload["number"] = str(payload["id"])
    external_id = woo.add_order(payload)  # type: ignore[attr-defined]
    sessions = live_app.extensions["comptoir.sessions"]
    with sessions.begin() as session:
        shop = session.get_one(Shop, woo_shop_id)
        incoming = shops.connector_for(shop).fetch_order(external_id)
        order = intake.upsert_order(session, shop, incoming, Actor.shop()).order
        assert order is not None
        session.flush()
        return order.id, external_id


def test_a_cancellation_and_a_comment_reach_the_shop_on_their_own(
    page: Any, woo: WooCommerceEmulator, order_id: tuple[int, str]
) -> None:
    order, external_id = order_id
    log_in(page)
    page.goto(f"/orders/{order}")
    assert_no_horizontal_scroll(page)

    page.fill("#comment-text", "Votre colis est retardé d'un jour.")
    page.check("input[name=visibility][value=customer]")
    page.locator(".comment-form button[type=submit]").click()
    page.locator(".comments .comment-text", has_text="retardé").wait_for()
    wait_until(lambda: woo.requests_to("POST", f"/orders/{external_id}/notes"))

    page.click("#action-cancel")
    page.fill("#cancel-reason", "Rupture de stock")
    page.locator("#cancel-reason ~ button[type=submit]").click()
    page.locator(".banner.bad", has_text="Rupture de stock").wait_for()
    wait_until(lambda: woo.orders[external_id]["status"] == "cancelled")  # type: ignore[attr-defined]

    assert len(woo.requests_to("PUT", f"/orders/{external_id}")) == 1
    notes = [n["note"] for n in woo.notes[external_id]]  # type: ignore[attr-defined]
    assert notes.count("Votre colis est retardé d'un jour.") == 1

    # The shop has the writes; the worker records them as sent right after.
    def both_recorded() -> bool:
        page.reload()
        return bool(page.locator(".pushes .push-sent").count() == 2)

    wait_until(both_recorded, 10, "the worker to record both pushes")
    assert page.locator("#action-cancel").count() == 0
    assert_no_horizontal_scroll(page)


def test_a_refused_payment_keeps_the_form_open_with_its_error(
    page: Any, order_id: tuple[int, str]
) -> None:
    order, _ = order_id
    log_in(page)
    page.goto(f"/orders/{order}")
    page.click("#record-payment")
    page.check("input[name=kind][value=refund]")
    page.fill("#payment-amount", "99999")
    page.locator("#record-payment + form button[type=submit]").click()
    error = page.locator("#payment-amount-error")
    error.wait_for()
    assert page.input_value("#payment-amount") == "99999"
    assert page.url.endswith(f"/orders/{order}")
    assert_no_horizontal_scroll(page)
