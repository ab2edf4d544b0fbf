"""The admin reads the audit log in a real browser: filters and pages swap the results in
place and push their URL, which loads in full; the page is axe-clean at desktop size and on
a 360 px phone, without sideways scrolling."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from web.models import utcnow
from web.services import users
from web.services.audit import record_audit

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def entries(live_app: Flask) -> None:
    """55 revoked tokens and one throttled login, newer than anything else in the log."""
    sessions: sessionmaker[Session] = live_app.extensions["comptoir.sessions"]
    start = utcnow() + dt.timedelta(days=1)
    with sessions.begin() as session:
        admin = users.find_by_email(session, "admin@example.com")
        for n in range(55):
            event = record_audit(
                session,
                "api_token.revoked",
                actor=admin,
                subject=admin,
                address="2001:db8:85a3:8d3:1319:8a2e:370:7348",
                params={"label": f"browser-{n:02d}", "email": "admin@example.com"},
            )
            event.occurred_at = start + dt.timedelta(minutes=n)
        event = record_audit(
            session,
            "login.throttled",
            address="198.51.100.23",
            params={
                "email": "a-very-long-mailbox-name-to-wrap@example.com",
                "failures": 9,
                "wait_seconds": 16,
                "scope": "account",
            },
        )
        event.occurred_at = start + dt.timedelta(hours=2)


def assert_axe_clean(page: Any) -> None:
    assert axe_violations(page) == []


def test_the_audit_log_filters_and_pages_in_place(page: Any, entries: None) -> None:
    install_axe(page)
    log_in(page, "admin@example.com")
    page.goto("/admin/users")
    page.get_by_role("link", name="Journal d’audit").click()
    page.wait_for_url("**/admin/audit/")
    first = page.locator("#audit-results tbody tr").first
    expect(first).to_contain_text("Connexions à a-very-long-mailbox-name-to-wrap@example.com")
    expect(first).to_contain_text("198.51.100.23")
    assert_no_horizontal_scroll(page)
    assert_axe_clean(page)

    # A marker on the window survives swaps and disappears on a full load.
    page.evaluate("window.stillTheSamePage = true")
    page.select_option("#filter-kind", "api_token.revoked")
    page.wait_for_url("**/admin/audit/?kind=api_token.revoked")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text("browser-54")
    expect(page.locator("#audit-results tbody tr")).to_have_count(50)
    page.locator(".pager a[rel=next]").click()
    page.wait_for_url("**/admin/audit/?kind=api_token.revoked&page=2")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text("browser-04")
    assert page.evaluate("window.stillTheSamePage") is True
    assert_no_horizontal_scroll(page)
    assert_axe_clean(page)

    # The pushed URL loads in full, with the filter chosen.
    page.reload()
    assert page.evaluate("window.stillTheSamePage") is None
    expect(page.locator("#filter-kind")).to_have_value("api_token.revoked")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text("browser-04")
    page.go_back()
    page.wait_for_url("**/admin/audit/?kind=api_token.revoked")
    expect(page.locator("#audit-results tbody tr").first).to_contain_text("browser-54")
