"""An admin connects a Magento shop and presses "Sync now": the job shows its progress and
the orders land on the desk, through the embedded worker, as with `make run`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.emulators.magento import MagentoEmulator

pytestmark = pytest.mark.browser

FIXTURE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "magento" / "fr-order-relay-coupon.json"
)


@pytest.fixture(scope="module")
def magento() -> Iterator[MagentoEmulator]:
    with MagentoEmulator() as shop:
        order = json.loads(FIXTURE.read_text())
        for index in range(3):
            stored = shop.add_order(
                {
                    **order,
                    "entity_id": 7100 + index,  # type: ignore[attr-defined]
                    "increment_id": f"00000710{index}",
                }
            )
            shop.update_order(stored["entity_id"])  # type: ignore[attr-defined]
        yield shop  # type: ignore[misc]


@pytest.fixture(scope="module")
def shop_key(live_app: Flask, magento: MagentoEmulator) -> str:
    result = live_app.test_cli_runner().invoke(
        args=[
            "shops",
            "add",
            "--platform",
            "magento",
            "--name",
            "Papeterie Magento",
            "--url",
            magento.base_url,
            "--api-key",
            magento.token,  # type: ignore[attr-defined]
        ]
    )
    assert result.exit_code == 0, result.output
    return str(json.loads(result.output)["key"])


def test_sync_now_shows_progress_and_brings_the_orders(page: Any, shop_key: str) -> None:
    log_in(page, "admin@example.com")
    assert "/login" not in page.url
    page.goto(f"/shops/{shop_key}")
    button = page.get_by_role("button", name="Synchroniser maintenant")
    # The worker may be busy with this new shop's first poll: give the page time.
    button.wait_for(timeout=30_000)
    button.click()
    job = page.locator("#sync-jobs .job").first
    job.wait_for()
    # The widget polls its job until the worker is done with it.
    page.wait_for_selector("#sync-jobs .job-done", timeout=30_000)
    assert "Terminé" in job.inner_text()
    assert_no_horizontal_scroll(page)
    page.goto("/orders/?q=000007101")
    assert page.locator(".orders-table tbody tr").count() == 1
