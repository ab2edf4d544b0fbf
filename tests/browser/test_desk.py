"""A person at the order desk, in real Chromium, on a desktop and on a 360 px phone."""

from __future__ import annotations

from typing import Any

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
