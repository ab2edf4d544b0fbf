"""A manager finds issued documents, filters them and downloads a selection as a ZIP."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy import select

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.documents.conftest import complete_company
from tests.factories import make_customer, make_line, make_order, make_shop
from web.documents import invoices
from web.documents import storage as document_storage
from web.documents.company import company_settings, missing_fields
from web.models import Document, Order, Shop
from web.services.timeline import Actor

pytestmark = pytest.mark.browser

SHOP = "docs-browser"


def issued_references(live_app: Flask) -> list[str]:
    """Three invoices of a shop of their own, issued once per live server; newest first."""
    storage = document_storage.LocalStorage(Path(live_app.instance_path) / "documents")
    # The storage is process-wide: another app made by a test may have replaced it.
    document_storage.configure(storage)
    with live_app.extensions["comptoir.sessions"].begin() as session:
        shop = session.scalars(select(Shop).where(Shop.key == SHOP)).first()
        if shop is None:
            if missing_fields(company_settings(session)):
                complete_company(session)
            shop = make_shop(session, SHOP, name="Boutique des documents")
            for last in ("Zola", "Sand", "Hugo"):
                order = make_order(
                    session,
                    shop,
                    [make_line("LIVRE", 1, "18.00", name="Livre")],
                    customer=make_customer(session, None, "Auteur", last),
                    billing_address={
                        "first_name": "Auteur",
                        "last_name": last,
                        "line1": "3 quai Voltaire",
                        "postcode": "75007",
                        "city": "Paris",
                        "country_code": "FR",
                    },
                )
                invoices.issue_invoice(session, order, Actor.system("test"), storage=storage)
        query = (
            select(Document.reference)
            .join(Order, Document.order_id == Order.id)
            .where(Order.shop_id == shop.id)
            .order_by(Document.id.desc())
        )
        return [reference for reference in session.scalars(query) if reference]


def test_filter_the_documents_and_download_two_as_a_zip(page: Any, live_app: Flask) -> None:
    references = issued_references(live_app)
    install_axe(page)
    log_in(page)
    page.goto(f"/documents/?shop={SHOP}")
    rows = page.locator(".documents-table tbody tr")
    expect(rows).to_have_count(3)
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    # Typing a buyer's name narrows the list without a reload, and the URL keeps it.
    if page.viewport_name == "phone":
        expect(page.locator("#filter-panel")).not_to_have_attribute("open", "")
        page.click("#filter-panel > summary")  # phones start with the filters folded
    page.fill("#document-search", "hugo")
    expect(rows).to_have_count(1)
    expect(page).to_have_url(re.compile(rf"/documents/\?q=hugo&shop={SHOP}$"))
    page.fill("#document-search", "")
    expect(rows).to_have_count(3)

    expect(page.locator("#bulk-bar .bulk-actions")).to_be_hidden()
    rows.nth(0).locator("input[name=ids]").check()
    rows.nth(2).locator("input[name=ids]").check()
    expect(page.locator("#bulk-count")).to_have_text("2")
    page.click("#bulk-bar button[name=format][value=zip]")
    link = page.locator("#bulk-job a[href$='/file']")
    expect(link).to_be_visible(timeout=15_000)
    assert axe_violations(page) == []
    with page.expect_download() as info:
        link.click()
    with zipfile.ZipFile(info.value.path()) as archive:
        assert sorted(archive.namelist()) == sorted(
            f"{reference}.pdf" for reference in (references[0], references[2])
        )
