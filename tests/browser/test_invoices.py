"""Invoicing from the order page in Chromium, at desktop size and on a 360 px phone."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from web.models.enums import CommercialState, PaymentState

pytestmark = pytest.mark.browser

KEYS = itertools.count(1)


@pytest.fixture()
def order_id(live_app: Flask) -> int:
    """A paid order of three mugs and a tea with a long name, the company set up to invoice."""
    sessions = live_app.extensions["comptoir.sessions"]
    with sessions.begin() as session:
        complete_company(session)
        shop = make_shop(session, f"invoice-{next(KEYS)}")
        order = make_order(
            session,
            shop,
            [
                make_line("MUG-BLEU", 3, "12.00", name="Mug bleu"),
                make_line("THE-VERT", 1, "5.50", name="Thé vert Sencha de printemps, 100 g"),
            ],
            commercial_state=CommercialState.VALIDATED,
            payment_state=PaymentState.PAID,
            billing_address={
                "first_name": "Ana",
                "last_name": "Lima",
                "postcode": "69001",
                "city": "Lyon",
                "country_code": "FR",
                "line1": "1 rue Neuve",
            },
            grand_total=Decimal("41.50"),
        )
        session.flush()
        return order.id


def test_invoice_part_then_the_rest(page: Any, order_id: int) -> None:
    install_axe(page)
    log_in(page)
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/orders/{order_id}")
    page.click(".invoice-part summary")
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)

    mug, tea = page.locator(".invoice-part-form input[type=number]").all()
    assert (mug.input_value(), tea.input_value()) == ("3", "1")  # what remains
    mug.fill("0")
    tea.fill("0")
    page.locator(".invoice-part-form button[type=submit]").click()
    page.locator("#invoice-part-error").wait_for()  # refused, the form still open
    assert "au moins une quantité" in page.inner_text("#invoice-part-error")
    assert axe_violations(page) == []

    page.locator(".invoice-part-form input[type=number]").first.fill("1")
    page.locator(".invoice-part-form input[type=number]").last.fill("0")
    page.locator(".invoice-part-form button[type=submit]").click()
    page.locator(".documents-table a", has_text="FA-").first.wait_for()
    assert page.locator(".documents-table tbody tr").count() == 1
    assert page.locator(".invoice-part-form input[type=number]").first.input_value() == "2"

    page.click(".invoice-form button[type=submit]")  # confirmed by the dialog
    page.locator(".documents-table tbody tr").nth(1).wait_for()
    assert page.locator(".invoice-form").count() == 0  # nothing left to invoice
    links = page.locator(".documents-table a[download]").all()
    assert len(links) == 2 and all(link.get_attribute("href").endswith("/pdf") for link in links)
    assert axe_violations(page) == []
    assert_no_horizontal_scroll(page)
