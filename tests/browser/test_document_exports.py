"""The exports page in Chromium: the chosen export downloads; a wrong range is named."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser


def test_the_accountant_downloads_an_export_and_sees_a_wrong_range(page: Any) -> None:
    log_in(page, "admin@example.com")
    page.goto("/documents/exports")
    page.check("input[name=format][value=ereporting]")
    page.fill("#export-from", "2026-01-01")
    page.fill("#export-to", "2026-03-31")
    with page.expect_download() as download:
        page.click("#document-exports button[type=submit]")
    assert download.value.suggested_filename == "e-reporting-2026-01-01-2026-03-31.csv"
    with open(download.value.path(), encoding="utf-8-sig") as summary:
        assert summary.readline().strip() == "date,currency,category,rate,base,vat,documents"

    page.fill("#export-from", "2026-04-01")
    page.click("#document-exports button[type=submit]")
    page.wait_for_load_state("networkidle")
    error = page.locator("#to-error")
    assert error.inner_text() == "La date de fin est antérieure à la date de début."
    assert page.locator("#export-to").get_attribute("aria-invalid") == "true"
    assert page.locator("input[name=format][value=ereporting]").is_checked()
