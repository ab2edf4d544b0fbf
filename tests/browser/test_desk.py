"""A person at the order desk, in real Chromium, on a desktop and on a 360 px phone."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import assert_no_horizontal_scroll, log_in

pytestmark = pytest.mark.browser


def test_log_in_and_land_on_the_dashboard(page: Any) -> None:
    page.goto("/")
    assert "/login" in page.url
    assert page.locator("html").get_attribute("lang") == "fr"
    log_in(page)
    assert page.url.endswith("/")
    assert page.get_by_role("heading", name="Tableau de bord").is_visible()
    assert_no_horizontal_scroll(page)


def test_wrong_password_says_so(page: Any) -> None:
    page.goto("/login")
    page.fill("#email", "manager@example.com")
    page.fill("#password", "not the password")
    page.click("button[type=submit]")
    assert page.get_by_role("alert").inner_text().strip() == (
        "Identifiant ou mot de passe incorrect."
    )


def _open_filters(page: Any) -> None:
    panel = page.locator("#filter-panel")
    if panel.get_attribute("open") is None:
        page.click("#filter-panel > summary")


def test_filter_the_order_list_without_a_reload(page: Any) -> None:
    log_in(page)
    page.goto("/orders/")
    total_before = page.locator(".results-count").inner_text()
    # A marker on window survives htmx swaps but not a full page load.
    page.evaluate("window.__sameDocument = true")
    _open_filters(page)
    page.select_option("#filter-payment", "paid")
    page.wait_for_url("**/orders/?*payment=paid*")
    page.wait_for_function(
        "(before) => document.querySelector('.results-count').innerText !== before",
        arg=total_before,
    )
    assert page.evaluate("window.__sameDocument") is True
    rows = page.locator(".orders-table tbody tr")
    assert rows.count() > 0
    for index in range(rows.count()):
        assert "Payée" in rows.nth(index).inner_text()
    assert_no_horizontal_scroll(page)

    # The pushed URL loads as a full page with the filter still applied.
    page.reload()
    assert page.locator("#filter-payment").input_value() == "paid"
    assert page.locator(".orders-table tbody tr").count() == rows.count()


def test_search_then_open_an_order(page: Any) -> None:
    log_in(page)
    page.goto("/orders/")
    first_number = page.locator(".orders-table tbody tr .cell-number a").first.inner_text()
    _open_filters(page)
    page.fill("#order-search", first_number)
    page.wait_for_function("() => document.querySelectorAll('.orders-table tbody tr').length === 1")
    page.click(f".orders-table tbody tr .cell-number a:text-is('{first_number}')")
    page.wait_for_url("**/orders/*")
    heading = page.get_by_role("heading", level=1).inner_text()
    assert first_number in heading
    assert page.get_by_role("heading", name="Historique").is_visible()
    assert_no_horizontal_scroll(page)


def test_typing_asks_nothing_for_one_or_two_characters_and_enter_still_searches(
    page: Any,
) -> None:
    # Each key 400 ms apart, past the 300 ms the box waits: every key would search.
    log_in(page)
    page.goto("/orders/")
    _open_filters(page)
    searched: list[str] = []

    def query(url: str) -> str | None:
        parts = urlsplit(url)
        return parse_qs(parts.query).get("q", [None])[0] if parts.path == "/orders/" else None

    def note(request: Any) -> None:
        searched.append(query(request.url) or "")

    page.on("request", note)
    with page.expect_request(lambda request: query(request.url) == "dup"):
        page.type("#order-search", "dup", delay=400)
    assert [q for q in searched if q] == ["dup"]  # not "d", not "du"
    page.fill("#order-search", "")
    page.type("#order-search", "du", delay=400)
    with page.expect_request(lambda request: query(request.url) == "du"):
        page.press("#order-search", "Enter")
    page.wait_for_load_state("networkidle")
    # Once: Enter both submits the form and fires the box's "search" event.
    assert [q for q in searched if q] == ["dup", "du"]
    assert page.locator("#order-search").input_value() == "du"


def test_switch_the_interface_to_english_and_back(page: Any) -> None:
    log_in(page, "lecture@example.com")
    page.goto("/orders/")
    assert page.get_by_role("heading", level=1).inner_text() == "Commandes"
    page.click(".usermenu summary")
    page.click("button[name=lang][value=en]")
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", level=1).inner_text() == "Orders"
    assert "/orders/" in page.url
    # The choice is remembered for this user; switching back restores French.
    page.click(".usermenu summary")
    page.click("button[name=lang][value=fr]")
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("heading", level=1).inner_text() == "Commandes"


def test_warehouse_staff_see_their_queue_on_a_phone(page: Any) -> None:
    log_in(page, "entrepot@example.com")
    assert page.url.endswith("/warehouse/")
    assert page.get_by_role("link", name="Commandes").count() == 0
    assert_no_horizontal_scroll(page)
