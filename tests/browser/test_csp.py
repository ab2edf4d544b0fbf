"""The Content-Security-Policy in real Chromium: it refuses injected code, and the pages work
under it (every browser test also fails on any violation: the `page` fixture)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_injected_markup_runs_nothing_and_the_violation_is_reported(page: Any) -> None:
    log_in(page)
    page.goto("/orders/")
    # What a stored XSS would put in the page: a handler, a style attribute, a script.
    page.evaluate(
        """() => document.querySelector("main").insertAdjacentHTML("beforeend",
            '<img id="xss" src="/static/no-such.png" onerror="window.__xss = 1">'
            + '<p id="styled" style="color: rgb(255, 0, 0)">x</p>')"""
    )
    page.evaluate(
        """() => { const s = document.createElement("script");
                   s.textContent = "window.__xss = 2"; document.body.append(s); }"""
    )
    page.wait_for_function("() => window.__cspViolations.length >= 3")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("#styled").evaluate("p => getComputedStyle(p).color") != "rgb(255, 0, 0)"
    reported = "\n".join(page.csp_violations)
    for directive in ("script-src-attr", "style-src-attr", "script-src-elem"):
        assert directive in reported, reported
    page.csp_violations.clear()  # expected here; any other test fails on one


def test_the_main_pages_work_under_the_policy(page: Any) -> None:
    phone = page.viewport_name == "phone"
    log_in(page, "admin@example.com")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tableau de bord")

    # The order list: filters, search and pages swap the results, in the same document.
    page.goto("/orders/")
    page.evaluate("() => { window.__sameDocument = true; }")
    panel = page.locator("#filter-panel")
    assert (panel.get_attribute("open") is None) == phone  # folded away on a phone only
    if phone:
        page.click("#filter-panel > summary")
    before = page.locator(".results-count").inner_text()
    page.select_option("#filter-payment", "paid")
    page.wait_for_url("**/orders/?*payment=paid*")
    assert "q=" not in page.url and "shop=" not in page.url  # empty fields are left out
    expect(page.locator(".results-count")).not_to_have_text(before)
    page.select_option("#filter-payment", "")
    page.wait_for_url(lambda url: "payment=" not in url)
    page.click(".pager a[rel=next]")
    page.wait_for_url("**/orders/?*page=2*")
    expect(page.locator(".pager-position")).to_contain_text("2")
    number = page.locator(".orders-table tbody tr .cell-number a").first.inner_text()
    page.fill("#order-search", number)
    expect(page.locator(".orders-table tbody tr")).to_have_count(1)
    # Leaving the search box fires "change": the search is not sent a second time, the
    # next change of a filter is the next request.
    sent: list[str] = []

    def record(request: Any) -> None:
        if "/orders/?" in request.url:
            sent.append(request.url)

    page.on("request", record)
    page.locator("#order-search").blur()
    page.select_option("#filter-payment", "paid")
    page.wait_for_url("**/orders/?*payment=paid*")
    page.remove_listener("request", record)
    assert len(sent) == 1 and "payment=paid" in sent[0], sent
    page.select_option("#filter-payment", "")
    page.wait_for_url(lambda url: "payment=" not in url)
    assert page.evaluate("() => window.__sameDocument") is True

    # The bulk bar: the count follows the ticks; a cancellation asks first.
    page.fill("#order-search", "")
    page.wait_for_url(lambda url: "q=" not in url)
    page.locator("#bulk-page").check()
    ticked = page.locator(".orders-table tbody tr").count()
    expect(page.locator("#bulk-count")).to_have_text(str(ticked))
    page.locator(".orders-table tbody tr input[name=ids]").first.uncheck()
    expect(page.locator("#bulk-count")).to_have_text(str(ticked - 1))
    expect(page.locator("#bulk-page")).to_have_js_property("indeterminate", True)
    questions: list[str] = []

    def dismiss(dialog: Any) -> None:
        questions.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    page.locator("#bulk-bar details.bulk-menu summary").first.click()
    page.click("#bulk-bar button[name=op][value=cancel]")
    assert len(questions) == 1 and questions[0].startswith("Annuler les commandes")
    expect(page.locator("#bulk-job")).to_be_empty()  # refused: nothing was sent
    # An export runs, its outcome can be put away.
    page.click("#bulk-bar button[name=op][value=export_csv]")
    expect(page.locator("#bulk-job .bulk-done")).to_be_visible()
    expect(page.locator("#bulk-reason")).to_have_value("")
    page.click("#bulk-job .bulk-dismiss")
    expect(page.locator("#bulk-job .bulk-job")).to_have_count(0)
    assert page.evaluate("() => window.__sameDocument") is True

    # An order, its timeline filter.
    page.click(".orders-table tbody tr .cell-number a >> nth=0")
    page.wait_for_url("**/orders/*")
    expect(page.get_by_role("heading", name="Historique")).to_be_visible()

    # The other pages of the main menu, each with what it swaps.
    page.goto("/sync/")
    page.select_option("#filter-shop", index=1)
    page.wait_for_url("**/sync/?shop=*")
    page.goto("/sync/issues/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Incidents de synchro")
    page.goto("/warehouse/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    # A shop's settings: the webhook URL's Copy button.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/shops/")
    page.get_by_role("link", name="Atelier Lumière (Shopify)").click()
    page.wait_for_url("**/shops/*")
    page.click("#webhook-url + button")
    copied = page.evaluate("() => navigator.clipboard.readText()")
    assert copied == page.locator("#webhook-url").input_value()
    page.goto("/admin/users")
    page.fill("#api-tokens input[name=label]", "CSP")
    page.click("#api-tokens button[type=submit]:has-text('Créer')")
    expect(page.locator("#api-tokens .token-once")).to_be_visible()
    assert (
        page.locator("#api-tokens .token-once").evaluate(
            "code => getComputedStyle(code).overflowWrap"
        )
        == "anywhere"
    )  # the style it had inline now comes from app.css
    assert not page.csp_violations
