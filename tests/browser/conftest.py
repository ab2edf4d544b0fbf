"""A live Comptoir on a loopback port with demo data, and headless Chromium to drive it.

The live server runs in a thread with real commits, so it gets its own database (a
SQLite file, or a second PostgreSQL database next to TEST_DATABASE_URL), never the
rolled-back connection of the other tests.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import separate_app
from tests.live import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "comptoir-demo"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 740}


@pytest.fixture(scope="session")
def live_app(live_server: str) -> Flask:
    """The app behind the live server (its CLI, its sessions)."""
    return _apps[live_server]


_apps: dict[str, Flask] = {}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, encryption_key: str) -> Iterator[str]:
    """Serve a seeded Comptoir on a free loopback port; yield its base URL."""
    app = separate_app(tmp_path_factory.mktemp("live"), "browser", encryption_key)
    result = app.test_cli_runner().invoke(args=["demo", "seed", "--orders", "120"])
    assert result.exit_code == 0, result.output
    with serving(app) as base_url:
        _apps[base_url] = app
        yield base_url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


# Runs in every document before its own scripts: each Content-Security-Policy violation the
# page reports goes to Python through the binding, so one on a page left since still counts.
REPORT_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const text = `${event.effectiveDirective} refused ${event.blockedURI || "inline code"}`
    + ` at ${event.sourceFile || event.documentURI}:${event.lineNumber}`
    + (event.sample ? ` (${event.sample})` : "");
  window.__reportCspViolation(text);
  window.__cspViolations.push(text);
});
"""


def watch_csp_violations(context: Any) -> list[str]:
    """Collect what the policy refused in any page of the context (reports and console)."""
    violations: list[str] = []
    context.expose_binding(
        "__reportCspViolation",
        lambda source, text: violations.append(f"{source['page'].url}: {text}"),
    )
    context.add_init_script(REPORT_CSP_VIOLATIONS)

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(f"console: {message.text}")

    context.on("console", on_console)
    return violations


@pytest.fixture(params=["desktop", "phone"])
def page(request: pytest.FixtureRequest, browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh browser context at a desktop size, then at a 360 px phone size.

    Whatever the test does, the test fails if a page reported a CSP violation.
    """
    viewport = DESKTOP if request.param == "desktop" else PHONE
    context = browser.new_context(
        viewport=viewport,
        base_url=live_server,
        locale="fr-FR",
        is_mobile=request.param == "phone",
        has_touch=request.param == "phone",
    )
    context.set_default_timeout(10_000)
    violations = watch_csp_violations(context)
    page = context.new_page()
    page.viewport_name = request.param
    page.csp_violations = violations
    yield page
    context.close()
    assert not violations, "the Content-Security-Policy refused:\n" + "\n".join(violations)


def log_in(page: Any, email: str = "manager@example.com") -> None:
    page.goto("/login")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")


def assert_no_horizontal_scroll(page: Any) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"page scrolls sideways by {overflow}px at {page.viewport_size}"
