"""The shipping modes page in real Chromium, on a desktop and on a 360 px phone: reached from
the shops, filtered without a reload, a refused tracking link explained inline, the example
link computed by the server as it is typed, a new mode added and deactivated."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in

pytestmark = pytest.mark.browser


def check_page(page: Any) -> None:
    assert axe_violations(page) == []
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)


def test_an_admin_adds_and_deactivates_a_mode(page: Any) -> None:
    code = f"navette_{page.viewport_name}"
    name = f"Navette {page.viewport_name}"
    install_axe(page)
    log_in(page, "admin@example.com")
    page.goto("/shops/")
    page.locator("main").get_by_role("link", name="Modes de livraison").click()
    page.wait_for_url("**/admin/shipping-modes/")
    assert page.get_by_role("heading", level=1).inner_text() == "Modes de livraison"
    assert page.locator("#modes-results tbody tr", has_text="Mondial Relay").count() >= 1
    check_page(page)

    # The filter swaps the list in place: the page (and this mark on it) stays.
    page.evaluate("window.__samePage = true")
    page.locator("#mode-filters label", has_text="Inactifs").click()
    page.wait_for_url(re.compile(r"status=inactive"))
    page.wait_for_load_state("networkidle")
    assert page.evaluate("window.__samePage") is True
    assert page.locator("#modes-results tbody tr", has_text="Mondial Relay").count() == 0

    page.get_by_role("link", name="Ajouter un mode de livraison").click()
    page.wait_for_url("**/admin/shipping-modes/new")
    page.fill("#field-code", code)
    page.fill("#field-name", name)
    page.fill("#field-carrier", "Navette")
    page.fill("#field-tracking_url_template", "javascript:alert(1)//{tracking}")
    preview = page.locator("#template-preview")
    preview.locator(".field-error").wait_for()
    assert "https://" in preview.inner_text()
    page.get_by_role("button", name="Ajouter le mode de livraison").click()
    error = page.locator("#err-tracking_url_template")
    error.wait_for()
    assert "https://" in error.inner_text()
    assert page.locator("#field-tracking_url_template").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("alert").count() == 1
    check_page(page)

    page.fill(
        "#field-tracking_url_template", "https://suivi.example.fr/colis?n={tracking}&cp={postcode}"
    )
    example = preview.get_by_role("link")
    example.wait_for()
    assert example.inner_text() == "https://suivi.example.fr/colis?n=6A12345678901&cp=75011"
    page.get_by_role("button", name="Ajouter le mode de livraison").click()
    page.wait_for_url("**/admin/shipping-modes/")
    page.wait_for_load_state("networkidle")
    assert f"Mode de livraison {name} ajouté." in page.locator(".flashes").inner_text()
    row = page.locator("#modes-results tbody tr", has_text=name)
    assert code in row.inner_text()
    check_page(page)

    row.get_by_role("button", name=re.compile("Désactiver")).click()
    row.get_by_text("Inactif", exact=True).wait_for()
    assert (
        page.locator("#modes-results .flash")
        .inner_text()
        .startswith(f"Mode de livraison {name} désactivé")
    )
    page.locator("#mode-filters label", has_text="Actifs").first.click()
    page.wait_for_url(re.compile(r"status=active"))
    page.wait_for_load_state("networkidle")
    assert page.locator("#modes-results tbody tr", has_text=name).count() == 0
    check_page(page)
