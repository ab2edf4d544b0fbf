"""Every page passes an axe-core audit (WCAG 2.x A and AA) with no violation, on a desktop and
on a 360 px phone, in French and in English, and does not scroll sideways on the phone.

PAGES names every full page the app serves; FRAGMENTS every other GET endpoint, with the
reason it is not a page. A new page that is in neither fails
`test_every_page_is_audited`, so it cannot be added without its audit.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import PASSWORD, assert_no_horizontal_scroll, log_in
from web.services.demo import PRESTA_KEY as DEMO_PRESTA_KEY

pytestmark = pytest.mark.browser

# endpoint → how to reach it (a path, or the page that links to it and the link's selector)
PAGES: dict[str, tuple[str, str | None]] = {
    "auth.login": ("/login", None),
    "dashboard.index": ("/", None),
    "account.index": ("/account", None),
    "admin.user_list": ("/admin/users", None),
    "audit.index": ("/admin/audit/", None),
    "company.edit": ("/admin/company", None),
    "orders.index": ("/orders/", None),
    "orders.detail": ("/orders/", ".orders-table tbody tr a[href*='/orders/']"),
    "documents.index": ("/documents/", None),
    "shops.index": ("/shops/", None),
    "shops.new": ("/shops/new", None),
    "shops.edit": ("/shops/", "main a[href^='/shops/']:not([href$='/new'])"),
    "shops.mappings": ("/shops/", "main a[href^='/shops/']:not([href$='/new'])"),
    "shipping_modes.index": ("/admin/shipping-modes/", None),
    "shipping_modes.new": ("/admin/shipping-modes/new", None),
    "shipping_modes.edit": (
        "/admin/shipping-modes/",
        "#modes-results a[href^='/admin/shipping-modes/']",
    ),
    "sync_log.index": ("/sync/", None),
    "sync_log.detail": ("/sync/", "main a[href^='/sync/events/']"),
    "sync_issues.index": ("/sync/issues/", None),
    "warehouse.queue": ("/warehouse/", None),
    "tracking.index": ("/shipping/", None),
    # Reached by uploading a file through the import form (see _open).
    "tracking.job_status": ("/shipping/", "#tracking-import form"),
    "warehouse.pick": ("/warehouse/", "#pick-page"),
    "warehouse.pack": ("/warehouse/", "main a.pack-button"),
    "document_exports.index": ("/documents/exports", None),
    # A valid link is a PDF; every other one is this page, the buyer's only HTML.
    "public_documents.show": ("/d/not-a-link", None),
}
FRAGMENTS = {
    "static": "files",
    "health.healthz": "JSON for monitors",
    "metrics.index": "Prometheus text for scrapers, behind a token",
    "api.openapi": "JSON",
    "api.order_list": "JSON",
    "api.order_detail": "JSON",
    "api.document_list": "JSON",
    "api.document_detail": "JSON",
    "api.unknown": "JSON 404",
    "orders.timeline": "fragment of the order page",
    "bulk.arrivals": "fragment polled by the order list",
    "bulk.job_status": "fragment polled by the bulk bar",
    "bulk.download": "file",
    "documents.pdf": "file (a stored PDF)",
    "documents.download_status": "fragment polled by the documents list's download bar",
    "documents.download_file": "file (the PDF or ZIP of a download job)",
    "credit_notes.new": "the order page's credit-note form, prefilled (audited with the order "
    "page in tests/browser/test_credit_notes.py)",
    "api.document_pdf": "file (a stored PDF)",
    "shops.job_status": "fragment polled by the shop page",
    "shops.shop_lists": "fragment of the mappings page",
    "shipping_modes.preview": "fragment of the shipping mode form",
    "api.shipping_mode_list": "JSON",
    "sync_issues.count": "fragment polled by the header",
    "sync_issues.inbox_row": "fragment of the sync issues page",
    "sync_issues.outbox_row": "fragment of the sync issues page",
    "tracking.refused_csv": "file",
    "tracking.ready_csv": "file",
    "document_exports.download": "file (or the exports page again, naming what is wrong)",
}


def test_every_page_is_audited(live_app: Flask) -> None:
    endpoints = {
        rule.endpoint for rule in live_app.url_map.iter_rules() if "GET" in (rule.methods or ())
    }
    assert endpoints - PAGES.keys() - FRAGMENTS.keys() == set()
    assert (PAGES.keys() | FRAGMENTS.keys()) - endpoints == set()


# Cookies of a logged-in session per user: the audit is of the pages, and logging in through
# the form before each of them (two page loads) took a third of this file's time.
_sessions: dict[str, list[Any]] = {}


def _log_in_once(page: Any, email: str) -> None:
    cookies = _sessions.get(email)
    if cookies is not None:
        page.context.add_cookies(cookies)
        return
    log_in(page, email)
    assert "/login" not in page.url, f"{email} could not log in"
    _sessions[email] = page.context.cookies()


def _open(page: Any, endpoint: str) -> None:
    path, link = PAGES[endpoint]
    page.goto(path)
    if endpoint == "tracking.job_status":
        upload = {"name": "suivi.csv", "mimeType": "text/csv", "buffer": b"1001;6A1\r\n"}
        page.set_input_files("#tracking-file", files=[upload])
        page.click("#tracking-import button[type=submit]")
        page.wait_for_load_state("networkidle")
        return
    if link is not None:
        href = page.locator(link).first.get_attribute("href")
        assert href, f"no link to {endpoint} on {path}"
        if endpoint == "shops.mappings":
            href = href.rstrip("/") + "/mappings"
        page.goto(href)
    page.wait_for_load_state("networkidle")


@pytest.mark.parametrize("endpoint", sorted(PAGES))
def test_page_has_no_accessibility_violation(page: Any, endpoint: str) -> None:
    install_axe(page)
    if endpoint != "auth.login":
        _log_in_once(page, "admin@example.com")
    _open(page, endpoint)
    assert (
        page.url.split("?")[0].rstrip("/").endswith(PAGES[endpoint][0].rstrip("/"))
        or PAGES[endpoint][1] is not None
    ), f"{endpoint} redirected to {page.url}"
    assert axe_violations(page) == []
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)


def test_prestashop_shop_settings_have_no_accessibility_violation(page: Any) -> None:
    # shops.edit above opens the first shop (Shopify); PrestaShop's page adds the real-time
    # notifications section (the module's URL, secret, last notification, installation).
    install_axe(page)
    _log_in_once(page, "admin@example.com")
    page.goto(f"/shops/{DEMO_PRESTA_KEY}")
    page.wait_for_load_state("networkidle")
    assert page.locator("#last-notification").count() == 1
    assert axe_violations(page) == []
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)


@pytest.mark.parametrize(
    "endpoint", ["dashboard.index", "orders.index", "orders.detail", "documents.index"]
)
def test_english_pages_have_no_accessibility_violation(
    page: Any, live_app: Flask, endpoint: str
) -> None:
    # A user of its own: the language chosen is stored on the user, and the other browser
    # tests expect the demo users in French.
    email = f"axe-{page.viewport_name}-{endpoint}@example.com"
    result = live_app.test_cli_runner().invoke(
        args=["users", "create", "--email", email, "--role", "admin", "--password", PASSWORD]
    )
    assert result.exit_code == 0, result.output
    install_axe(page)
    log_in(page, email)
    page.goto("/account")
    page.locator("main button[name=lang][value=en]").click()
    page.wait_for_load_state("networkidle")
    _open(page, endpoint)
    assert page.locator("html").get_attribute("lang") == "en"
    assert axe_violations(page) == []


def test_the_audit_reports_a_violation(page: Any) -> None:
    """The audit itself works: a form field stripped of its label is reported."""
    install_axe(page)
    page.goto("/login")
    assert axe_violations(page) == []
    page.evaluate("document.querySelector('label[for=email]').remove()")
    assert any(line.startswith("label:") for line in axe_violations(page)), "axe saw nothing"
