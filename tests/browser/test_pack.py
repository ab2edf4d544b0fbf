"""The pack screen on a 360 px phone in Chromium: scan, refuse, confirm, next order, resend."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import PHONE, assert_no_horizontal_scroll, log_in, watch_csp_violations
from tests.factories import make_line, make_order, make_shop
from web.documents.delivery_notes import find_delivery_note
from web.models import ShippingMode
from web.models.enums import CommercialState, FulfilmentState, PaymentState, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment

pytestmark = pytest.mark.browser

KEYS = itertools.count(1)
LONG_AGO = dt.datetime(2020, 1, 6, 8, 0, tzinfo=dt.UTC)


@pytest.fixture()
def phone(browser: Any, live_server: str) -> Any:
    """A 360×740 touch phone; the test fails if the page reported a CSP violation."""
    context = browser.new_context(
        viewport=PHONE, base_url=live_server, locale="fr-FR", is_mobile=True, has_touch=True
    )
    context.set_default_timeout(15_000)
    violations = watch_csp_violations(context)
    page = context.new_page()
    yield page
    context.close()
    assert not violations, "the Content-Security-Policy refused:\n" + "\n".join(violations)


@pytest.fixture()
def orders(live_app: Flask) -> tuple[str, list[int]]:
    """Two ready orders alone on a shipping mode of their own, the oldest of the queue."""
    sessions = live_app.extensions["comptoir.sessions"]
    n = next(KEYS)
    with sessions.begin() as session:
        mode = ShippingMode(
            code=f"pack-{n}",
            name=f"Banc {n}",
            carrier="Colissimo",
            tracking_url_template="https://suivi.example/{tracking}",
        )
        shop = make_shop(session, f"pack-{n}")
        made = [
            make_order(
                session,
                shop,
                lines,
                commercial_state=CommercialState.VALIDATED,
                payment_state=PaymentState.PAID,
                shipping_label="Banc",
                shipping_mode=mode,
                shipping_address={"first_name": "Ana", "postcode": "69001", "city": "Lyon"},
                placed_at=LONG_AGO + dt.timedelta(hours=hour),
                grand_total=Decimal("40.00"),
            )
            for hour, lines in enumerate(
                [
                    [
                        make_line(f"MUG-{n}", 2, ean=f"37600000{n:05d}"),
                        make_line(f"TEA-{n}", 1),
                    ],
                    [make_line(f"BOWL-{n}", 2)],
                ]
            )
        ]
        session.flush()
        return mode.code, [order.id for order in made]


def shipments_of(live_app: Flask, order_id: int) -> list[tuple[ShipmentState, list[str], bool]]:
    with live_app.extensions["comptoir.sessions"]() as session:
        found = session.scalars(select(Shipment).where(Shipment.order_id == order_id)).all()
        return [
            (
                s.state,
                [p.tracking_number for p in s.parcels],
                find_delivery_note(session, s.id) is not None,
            )
            for s in found
        ]


def fulfilment(live_app: Flask, order_id: int) -> FulfilmentState:
    with live_app.extensions["comptoir.sessions"]() as session:
        order = session.get(Order, order_id)
        assert order is not None
        return order.fulfilment_state


def scan(page: Any, code: str) -> None:
    page.fill("#scan-code", code)
    page.press("#scan-code", "Enter")


def test_pack_two_orders_on_a_phone_with_a_lost_answer(
    phone: Any, live_app: Flask, orders: tuple[str, list[int]]
) -> None:
    page = phone
    mode, (first, second) = orders
    n = mode.split("-")[1]
    install_axe(page)
    log_in(page, "entrepot@example.com")
    page.goto("/warehouse/")
    page.locator(".mode-chip", has_text=f"Banc {n}").click()
    page.wait_for_url(f"**/warehouse/?mode={mode}")
    assert page.locator(".queue-card").count() == 2
    # Ticked orders make the pick list, counted on its button.
    page.locator(f'.queue-card[data-order-id="{second}"] .pick-check').click()
    assert page.locator("[data-ticked-count]").inner_text() == "1"
    page.click("#pick-selected")
    page.wait_for_url("**/warehouse/pick?**")
    assert page.locator(".pick-row").count() == 1
    assert f"BOWL-{n}" in page.locator(".pick-row").inner_text()
    assert axe_violations(page) == []
    page.go_back()
    page.wait_for_url(f"**/warehouse/?mode={mode}")
    page.locator(f'.queue-card[data-order-id="{first}"] a.pack-button').click()
    page.wait_for_url(f"**/warehouse/orders/{first}/pack?mode={mode}")
    assert page.evaluate("document.activeElement.id") == "scan-code"
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    # A wrong item is refused loudly; the right ones count per line.
    scan(page, "9999999999999")
    refusal = page.locator(".scan-message.bad")
    refusal.wait_for()
    assert "n’est pas dans cette commande" in refusal.inner_text()
    scan(page, f"MUG-{n}")
    scan(page, f"37600000{int(n):05d}")  # the mug again, by its EAN
    scan(page, f"mug-{n}")  # one too many
    assert "déjà scannés" in page.locator(".scan-message.bad").inner_text()
    mug = page.locator(".pack-line", has_text=f"MUG-{n}")
    assert mug.locator("[data-count]").inner_text() == "2"
    assert page.locator("[data-pack-confirm]").is_hidden()
    # A reload keeps the scans.
    page.reload()
    assert mug.locator("[data-count]").inner_text() == "2"
    scan(page, f"TEA-{n}")

    page.locator("#tracking-1").wait_for()
    page.fill("#tracking-1", f"6A-PACK-{n}-1")
    page.press("#tracking-1", "Enter")  # a scanner's Enter moves on, it does not confirm
    assert page.evaluate("document.activeElement.id") == "weight-1"
    page.fill("#weight-1", "0,8")
    page.click("[data-add-parcel]")
    page.fill("#tracking-2", f"6A-PACK-{n}-2")
    assert_no_horizontal_scroll(page)
    page.click("[data-confirm-button]")
    done = page.locator("[data-pack-done]")
    done.wait_for()
    assert "expédiée" in done.inner_text()
    assert page.locator("[data-done-note]").inner_text().startswith("BL-")
    assert shipments_of(live_app, first) == [
        (ShipmentState.SHIPPED, [f"6A-PACK-{n}-1", f"6A-PACK-{n}-2"], True)
    ]
    assert fulfilment(live_app, first) == FulfilmentState.SHIPPED
    assert page.evaluate(f"localStorage.getItem('comptoir.pack.{first}')") is None

    # On to the next order of the same mode.
    page.click("[data-next]")
    page.wait_for_url(f"**/warehouse/orders/{second}/pack?mode={mode}")
    scan(page, f"BOWL-{n}")
    scan(page, f"BOWL-{n}")
    page.fill("#tracking-1", f"6A-PACK-{n}-3")
    key = page.evaluate(f"JSON.parse(localStorage.getItem('comptoir.pack.{second}')).key")

    # The confirm reaches the server but its answer is lost on the way back.
    lost: list[int] = []

    def lose_the_answer(route: Any) -> None:
        response = route.fetch()
        lost.append(response.status)
        route.abort("connectionreset")

    page.route(f"**/warehouse/orders/{second}/pack*", lose_the_answer)
    page.click("[data-confirm-button]")
    page.locator("[data-retry]").wait_for()
    assert lost == [201]
    assert "Rien n’est perdu" in page.locator("[data-confirm-message]").inner_text()
    stored = page.evaluate(f"JSON.parse(localStorage.getItem('comptoir.pack.{second}'))")
    assert stored["pending"] is True and stored["key"] == key
    page.unroute(f"**/warehouse/orders/{second}/pack*")

    # Sent again, with the same key: the shipment the first one made, not a second.
    page.click("[data-retry]")
    page.locator("[data-pack-done]").wait_for()
    assert shipments_of(live_app, second) == [(ShipmentState.SHIPPED, [f"6A-PACK-{n}-3"], True)]
    assert fulfilment(live_app, second) == FulfilmentState.SHIPPED


def test_a_confirm_sent_while_offline_goes_when_the_connection_returns(
    phone: Any, live_app: Flask, orders: tuple[str, list[int]]
) -> None:
    page = phone
    mode, (first, _second) = orders
    n = mode.split("-")[1]
    log_in(page, "entrepot@example.com")
    page.goto(f"/warehouse/orders/{first}/pack?mode={mode}")
    for code in (f"MUG-{n}", f"MUG-{n}", f"TEA-{n}"):
        scan(page, code)
    page.fill("#tracking-1", f"6A-OFF-{n}")
    page.context.set_offline(True)
    page.click("[data-confirm-button]")
    page.locator("[data-retry]").wait_for()
    assert shipments_of(live_app, first) == []
    page.context.set_offline(False)  # the browser's "online" event sends it again
    page.locator("[data-pack-done]").wait_for()
    assert shipments_of(live_app, first) == [(ShipmentState.SHIPPED, [f"6A-OFF-{n}"], True)]


def test_a_missing_item_holds_the_order_and_opens_the_next(
    phone: Any, live_app: Flask, orders: tuple[str, list[int]]
) -> None:
    page = phone
    mode, (first, second) = orders
    n = mode.split("-")[1]
    log_in(page, "entrepot@example.com")
    page.goto(f"/warehouse/orders/{first}/pack?mode={mode}")
    scan(page, f"MUG-{n}")
    page.locator(".missing summary").click()
    page.select_option("#missing-line", label=f"TEA-{n} — Article TEA-{n}")
    page.fill("#missing-comment", "rupture")
    page.locator("[data-pack-missing] button[type=submit]").click()
    page.wait_for_url(f"**/warehouse/orders/{second}/pack?mode={mode}")
    assert "en attente" in page.locator(".flashes").inner_text()
    with live_app.extensions["comptoir.sessions"]() as session:
        order = session.get(Order, first)
        assert order is not None and order.on_hold
        assert f"TEA-{n}" in order.hold_reason and "rupture" in order.hold_reason


DRAW_EAN13_AND_DETECT = """
async (code) => {
  const root = document.querySelector("[data-pack]");
  const native = "BarcodeDetector" in window;
  if (!native) {
    await new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = root.dataset.polyfill;
      script.onload = resolve;
      script.onerror = reject;
      document.head.append(script);
    });
    window.BarcodeDetectionAPI.setZXingModuleOverrides({
      locateFile: (path, prefix) => (path.endsWith(".wasm") ? root.dataset.wasm : prefix + path),
    });
  }
  const L = ["0001101", "0011001", "0010011", "0111101", "0100011",
             "0110001", "0101111", "0111011", "0110111", "0001011"];
  const G = L.map((bits) => bits.split("").reverse().map((b) => (b === "0" ? "1" : "0")).join(""));
  const R = L.map((bits) => bits.split("").map((b) => (b === "0" ? "1" : "0")).join(""));
  const parity = ["LLLLLL", "LLGLGG", "LLGGLG", "LLGGGL", "LGLLGG",
                  "LGGLLG", "LGGGLL", "LGLGLG", "LGLGGL", "LGGLGL"][Number(code[0])];
  let bits = "101";
  for (let i = 1; i <= 6; i++) bits += (parity[i - 1] === "L" ? L : G)[Number(code[i])];
  bits += "01010";
  for (let i = 7; i <= 12; i++) bits += R[Number(code[i])];
  bits += "101";
  const canvas = document.createElement("canvas");
  canvas.width = bits.length * 3 + 80;
  canvas.height = 140;
  const context = canvas.getContext("2d");
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = "#000";
  [...bits].forEach((bit, i) => { if (bit === "1") context.fillRect(40 + i * 3, 20, 3, 100); });
  const detector = new BarcodeDetector({ formats: ["ean_13"] });
  const found = await detector.detect(canvas);
  return { native, codes: found.map((item) => item.rawValue) };
}
"""


def test_the_vendored_polyfill_reads_a_barcode_under_the_pack_policy(
    phone: Any, live_server: str, orders: tuple[str, list[int]]
) -> None:
    page = phone
    mode, (first, _second) = orders
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    log_in(page, "entrepot@example.com")
    page.goto(f"/warehouse/orders/{first}/pack?mode={mode}")
    result = page.evaluate(DRAW_EAN13_AND_DETECT, "4006381333931")
    assert result["codes"] == ["4006381333931"]
    if not result["native"]:  # Chromium on Linux has no BarcodeDetector: the polyfill read it
        assert any(url.endswith("zxing_reader-3.1.3.wasm") for url in requested)
    assert all(url.startswith(live_server) for url in requested), requested
