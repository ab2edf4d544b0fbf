"""A manager credits a refunded invoice from the order page, on a desk and on a phone."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from tests.browser.axe import axe_violations, install_axe
from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from web.documents import invoices
from web.models import Document, Shop
from web.models.enums import DocumentKind
from web.services import payments
from web.services.timeline import Actor

pytestmark = pytest.mark.browser

NUMBERS = itertools.count(1)


@pytest.fixture()
def refunded_order(live_app: Flask) -> tuple[int, int]:
    """An invoiced order, paid, then 12.50 refunded by hand: a credit note is proposed."""
    sessions = live_app.extensions["comptoir.sessions"]
    actor = Actor.system("test")
    with sessions.begin() as session:
        complete_company(session)
        shop = session.scalars(select(Shop).where(Shop.key == "avoirs-web")).first()
        shop = shop or make_shop(session, "avoirs-web", name="Boutique des avoirs")
        lines = [
            make_line("THEIERE", 1, "36.00", name="Théière en fonte Tetsubin 0,8 L"),
            make_line(
                "SENCHA",
                3,
                "7.70",
                name="Thé vert Sencha",
                tax_rate=Decimal("5.5"),
                total_net=Decimal("21.90"),
                tax_amount=Decimal("1.20"),
            ),
        ]
        order = make_order(session, shop, lines, number=f"#AV-{next(NUMBERS)}-{id(session)}")
        payments.record_manual(
            session, order, actor, kind="payment", source="cash", amount=order.grand_total
        )
        invoice = invoices.issue_invoice(session, order, actor)
        payments.record_manual(session, order, actor, kind="refund", source="cash", amount="12.50")
        return order.id, invoice.id


def test_a_proposed_credit_note_is_prefilled_and_issued(
    page: Any, live_app: Flask, refunded_order: tuple[int, int]
) -> None:
    order_id, invoice_id = refunded_order
    page.on("dialog", lambda dialog: dialog.accept())  # "It cannot be changed afterwards."
    install_axe(page)
    log_in(page)
    page.goto(f"/orders/{order_id}")
    panel = page.locator("#credit-notes")
    assert "12,50" in panel.inner_text()
    assert axe_violations(page) == []
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)

    page.click(f"#credit-{invoice_id}-proposal-amount")
    page.locator(f"#credit-{invoice_id}-amount").wait_for()
    page.wait_for_function(
        f"() => document.getElementById('credit-{invoice_id}-amount').value === '12.50'"
    )
    assert page.input_value(f"#credit-{invoice_id}-reason") == "Remboursement"
    assert axe_violations(page) == []  # the form open and prefilled
    if page.viewport_name == "phone":
        assert_no_horizontal_scroll(page)

    # Too much first: the refusal comes back in the panel, the values kept.
    page.fill(f"#credit-{invoice_id}-amount", "1000")
    page.click(f"#credit-{invoice_id}-submit")
    page.locator(f"#credit-{invoice_id}-errors").wait_for()
    assert "il reste" in page.inner_text(f"#credit-{invoice_id}-errors")
    assert axe_violations(page) == []

    page.fill(f"#credit-{invoice_id}-amount", "12,50")
    page.click(f"#credit-{invoice_id}-submit")
    page.wait_for_url(f"**/orders/{order_id}#documents-title")
    page.get_by_text("Avoir AV-").first.wait_for()
    sessions = live_app.extensions["comptoir.sessions"]
    with sessions() as session:
        notes = session.scalars(
            select(Document).where(
                Document.corrects_id == invoice_id, Document.kind == DocumentKind.CREDIT_NOTE
            )
        ).all()
        assert [note.total_gross for note in notes] == [Decimal("12.50")]
    assert page.locator(f"#credit-{invoice_id}-proposal-amount").count() == 0
