"""The company settings page in real Chromium, on a desktop and on a 360 px phone: reached
from the navigation, a refused value explained inline without a reload and the summary
brought into view, then saved."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in

pytestmark = pytest.mark.browser


def check_page(page: Any) -> None:
    assert axe_violations(page) == []
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)


def test_an_admin_is_told_inline_what_to_fix_then_saves(page: Any) -> None:
    install_axe(page)
    log_in(page, "admin@example.com")
    page.goto("/")
    page.locator("header nav").get_by_role("link", name="Entreprise").click()
    page.wait_for_url("**/admin/company")
    assert page.get_by_role("heading", level=1).inner_text() == "Entreprise"
    check_page(page)
    siren = page.input_value("#field-siren")
    days = page.input_value("#field-payment_days")

    page.evaluate("window.__samePage = true")
    page.fill("#field-siren", "123456789")
    page.fill("#field-payment_days", "90")
    page.get_by_role("button", name="Enregistrer les réglages de l’entreprise").click()
    summary = page.locator("#company-form .inline-errors")
    summary.wait_for()
    assert page.evaluate("window.__samePage") is True  # swapped in place
    # htmx reports the swap once it settles: the summary takes the focus then.
    page.wait_for_function("() => document.activeElement.classList.contains('inline-errors')")
    assert summary.is_visible()
    assert page.locator("#err-siren").inner_text().startswith("Ce SIREN n’est pas valide")
    assert "de 0 à 60 (art. L441-10)" in page.locator("#err-payment_days").inner_text()
    assert page.locator("#field-payment_days").get_attribute("aria-invalid") == "true"
    check_page(page)

    # Put the values back (the other browser tests share this company) and save.
    page.fill("#field-siren", siren)
    page.fill("#field-payment_days", days)
    page.get_by_role("button", name="Enregistrer les réglages de l’entreprise").click()
    page.locator(".flash-success").wait_for()
    assert "Réglages de l’entreprise enregistrés." in page.locator(".flashes").inner_text()
    assert page.locator("#company-form .inline-errors").count() == 0
