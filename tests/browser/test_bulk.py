"""A manager works several orders at once from the list, and sees new orders arrive."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.factories import make_order, make_shop
from web.models import Shop

pytestmark = pytest.mark.browser


def add_shop(live_app: Flask, key: str, orders: int, **held: Any) -> list[str]:
    """A shop of its own, so the other browser tests never see these orders change."""
    with live_app.extensions["comptoir.sessions"].begin() as session:
        shop = make_shop(session, key, name=f"Boutique {key}")
        numbers = [make_order(session, shop).number for _ in range(orders)]
        if held:
            numbers.append(make_order(session, shop, on_hold=True, **held).number)
        return numbers


def add_order(live_app: Flask, key: str) -> str:
    """An order arriving behind the page's back, as the worker would store it."""
    with live_app.extensions["comptoir.sessions"].begin() as session:
        shop = session.scalars(select(Shop).where(Shop.key == key)).one()
        return make_order(session, shop).number


def row(page: Any, number: str) -> Any:
    return page.locator(".orders-table tbody tr", has=page.locator(f"a:text-is('{number}')"))


def test_put_the_orders_of_a_page_on_hold_and_follow_the_job(page: Any, live_app: Flask) -> None:
    key = f"bulk-hold-{page.viewport_name}"
    *fresh, held = add_shop(live_app, key, 2, hold_reason="Adresse à vérifier")
    log_in(page)
    page.goto(f"/orders/?shop={key}")
    expect(page.locator(".orders-table tbody tr")).to_have_count(3)
    # Nothing ticked: the bar only says what to do.
    expect(page.locator("#bulk-bar .bulk-actions")).to_be_hidden()

    page.locator("#bulk-page").check()
    expect(page.locator("#bulk-count")).to_have_text("3")
    row(page, held).locator("input[name=ids]").uncheck()
    expect(page.locator("#bulk-count")).to_have_text("2")
    row(page, held).locator("input[name=ids]").check()
    expect(page.locator("#bulk-page")).to_be_checked()
    assert_no_horizontal_scroll(page)

    page.locator("#bulk-bar details.bulk-menu summary").first.click()
    page.fill("#bulk-reason", "Inventaire du lundi")
    page.click("#bulk-bar button[name=op][value=hold]")

    job = page.locator("#bulk-job .bulk-job")
    expect(job.locator("progress")).to_be_visible()
    expect(job).to_have_attribute("data-state", "done")
    expect(job.locator(".bulk-done")).to_have_attribute("data-done", "2")
    refused = job.locator(".bulk-refused li")
    expect(refused).to_have_count(1)
    expect(refused.locator("a")).to_have_text(held)
    # The list shows the new states by itself, the selection cleared.
    for number in fresh:
        expect(row(page, number).locator(".flag.warn")).to_have_attribute(
            "title", "Inventaire du lundi"
        )
    expect(page.locator("input[name=ids]:checked")).to_have_count(0)
    assert_no_horizontal_scroll(page)

    refused.locator("a").click()
    page.wait_for_url("**/orders/*")
    assert held in page.get_by_role("heading", level=1).inner_text()


@pytest.fixture()
def quick_arrivals(live_app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ask for new orders every second instead of every ten (as before after the test)."""
    monkeypatch.setitem(live_app.config, "ORDERS_ARRIVALS_POLL_SECONDS", 1)


def test_a_new_order_is_announced_and_shown_on_request(
    page: Any, live_app: Flask, quick_arrivals: None
) -> None:
    key = f"bulk-new-{page.viewport_name}"
    add_shop(live_app, key, 1)
    log_in(page)
    page.goto(f"/orders/?shop={key}")
    expect(page.locator(".orders-table tbody tr")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")

    number = add_order(live_app, key)
    banner = page.locator("#arrivals .bulk-arrivals")
    expect(banner).to_have_attribute("data-count", "1", timeout=15_000)
    assert_no_horizontal_scroll(page)

    banner.locator("a").click()
    expect(row(page, number)).to_have_count(1)
    expect(page.locator(".orders-table tbody tr")).to_have_count(2)
    expect(banner).to_have_count(0)
    assert page.evaluate("window.__sameDocument") is True
    assert f"shop={key}" in page.url
