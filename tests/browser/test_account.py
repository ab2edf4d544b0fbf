"""My account, in real Chromium on a desktop and on a 360 px phone: reached from the header
by warehouse staff, accessible (axe), and "log out everywhere" ends the other browser too."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from tests.browser.axe import AXE, axe_violations
from tests.browser.conftest import assert_no_horizontal_scroll

pytestmark = pytest.mark.browser

FIRST_PASSWORD = "first password here"
SECOND_PASSWORD = "second password here"


def sign_in(page: Any, email: str, password: str) -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def test_warehouse_staff_change_their_password_and_log_out_everywhere(
    page: Any, browser: Any, live_server: str, live_app: Flask
) -> None:
    email = f"account-{page.viewport_name}@example.com"
    result = live_app.test_cli_runner().invoke(
        args=["users", "create", "--email", email, "--role", "warehouse"]
        + ["--password", FIRST_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    page.context.add_init_script(path=str(AXE))
    # The same person on a second device, which "log out everywhere" must end too.
    other = browser.new_context(base_url=live_server, locale="fr-FR")
    other_page = other.new_page()
    sign_in(other_page, email, FIRST_PASSWORD)
    assert other_page.url.endswith("/warehouse/")

    sign_in(page, email, FIRST_PASSWORD)
    page.click(".usermenu summary")
    page.get_by_role("link", name="Mon compte").click()
    page.wait_for_url("**/account")
    assert page.get_by_role("heading", level=1).inner_text() == "Mon compte"
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    page.fill("#current-password", "not my password")
    page.fill("#new-password", SECOND_PASSWORD)
    page.fill("#repeat-password", SECOND_PASSWORD)
    page.get_by_role("button", name="Changer mon mot de passe").click()
    page.wait_for_load_state("networkidle")
    assert page.get_by_role("alert").inner_text() == "Ce n’est pas votre mot de passe actuel."
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    page.fill("#current-password", FIRST_PASSWORD)
    page.fill("#new-password", SECOND_PASSWORD)
    page.fill("#repeat-password", SECOND_PASSWORD)
    page.get_by_role("button", name="Changer mon mot de passe").click()
    page.wait_for_load_state("networkidle")
    assert "Votre mot de passe est changé" in page.locator(".flashes").inner_text()
    # The other device was logged out by the change; this one goes on.
    other_page.goto("/warehouse/")
    assert "/login" in other_page.url
    sign_in(other_page, email, SECOND_PASSWORD)
    assert other_page.url.endswith("/warehouse/")

    page.get_by_role("button", name="Se déconnecter partout").click()
    page.wait_for_load_state("networkidle")
    assert "/login" in page.url
    assert "Vous êtes déconnecté partout." in page.locator(".flashes").inner_text()
    other_page.goto("/warehouse/")
    assert "/login" in other_page.url
    other.close()


def test_an_admin_resets_a_password_and_sees_it_once(page: Any, live_app: Flask) -> None:
    email = f"reset-{page.viewport_name}@example.com"
    result = live_app.test_cli_runner().invoke(
        args=["users", "create", "--email", email, "--role", "viewer"]
        + ["--password", FIRST_PASSWORD]
    )
    assert result.exit_code == 0, result.output
    page.context.add_init_script(path=str(AXE))
    sign_in(page, "admin@example.com", "comptoir-demo")
    page.goto("/admin/users")
    row = page.locator("tr", has_text=email)
    row.locator("summary", has_text="Réinitialiser le mot de passe").click()
    row.get_by_role("button", name="Générer un nouveau mot de passe").click()
    page.wait_for_load_state("networkidle")
    notice = page.get_by_role("status").filter(has_text=email)
    assert "il ne sera plus affiché" in notice.inner_text()
    password = notice.locator("code").inner_text()
    assert len(password) >= 16
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)
    page.goto("/admin/users")
    assert password not in page.content()
