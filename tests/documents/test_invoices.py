"""Issuing invoices: what remains, one rounding rule, shop totals, the database refusing edits."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, relay_order
from tests.factories import make_line, make_order, make_shop
from web.documents import invoices
from web.documents.company import CompanyIncomplete
from web.documents.storage import LocalStorage, sha256
from web.models import Document, OrderEvent
from web.models.enums import DocumentKind, VatRegime
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.timeline import Actor

ACTOR = Actor.system("test")


def issue(session: Session, order, storage, quantities=None) -> Document:  # type: ignore[no-untyped-def]
    return invoices.issue_invoice(session, order, ACTOR, quantities, storage=storage)


def test_an_invoice_of_the_whole_order_equals_the_shop_total(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    document = issue(db_session, order, storage)
    assert document.reference is not None and document.reference.startswith("FA-")
    assert document.total_gross == order.grand_total == Decimal("49.00")
    assert document.total_net + document.total_tax == document.total_gross
    assert document.snapshot["shop_check"]["difference"] == "0.00"
    assert sha256(storage.get(document.pdf_storage_key or "")) == document.pdf_sha256
    kinds = [line.kind for line in document.lines]
    assert kinds == ["product", "product", "product"]
    event = db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "invoice.issued")).one()
    assert event.details["reference"] == document.reference


def test_the_same_quantity_is_never_invoiced_twice(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    mug = next(line for line in order.lines if line.sku == "MUG-BLEU")
    first = issue(db_session, order, storage, {mug.id: Decimal(1)})
    second = issue(db_session, order, storage, {mug.id: Decimal(2)})
    with pytest.raises(ValidationFailed):
        issue(db_session, order, storage, {mug.id: Decimal(1)})
    # The two parts add up to the shop's line exactly.
    parts = [line for doc in (first, second) for line in doc.lines if line.order_line_id == mug.id]
    assert sum(line.total_gross for line in parts) == mug.total_gross
    rest = issue(db_session, order, storage)
    assert {line.order_line_id for line in rest.lines} == {
        line.id for line in order.lines if line.sku != "MUG-BLEU"
    }
    with pytest.raises(InvalidTransition, match="nothing is left"):
        issue(db_session, order, storage)
    assert rest.snapshot["shop_check"]["difference"] == "0.00"


def test_discounts_and_shipping_are_lines_with_their_vat(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, "remises")
    line = make_line(
        "BOL",
        2,
        "30.00",
        discount_amount=Decimal("6.00"),
        total_gross=Decimal("54.00"),
        total_net=Decimal("45.00"),
        tax_amount=Decimal("9.00"),
    )
    book = make_line(
        "LIVRE",
        1,
        "21.10",
        tax_rate=Decimal("5.5"),
        total_gross=Decimal("21.10"),
        total_net=Decimal("20.00"),
        tax_amount=Decimal("1.10"),
    )
    order = make_order(
        db_session,
        shop,
        [line, book],
        shipping_total=Decimal("6.00"),
        shipping_tax=Decimal("1.00"),
        discount_total=Decimal("16.00"),  # 6.00 on the bowl, 10.00 on the order
        grand_total=Decimal("71.10"),
    )
    document = issue(db_session, order, storage)
    kinds = [(row.kind, row.tax_rate) for row in document.lines]
    assert ("discount", Decimal("20.0000")) in kinds and ("shipping", Decimal("20.0000")) in kinds
    assert document.total_gross == Decimal("71.10")
    rates = {tax["rate"]: tax for tax in document.snapshot["taxes"]}
    assert set(rates) == {"20.00", "5.50"}
    assert sum(Decimal(tax["base"]) + Decimal(tax["tax"]) for tax in rates.values()) == Decimal(
        "71.10"
    )


def test_under_the_franchise_no_line_carries_vat(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    order = relay_order(db_session)
    document = issue(db_session, order, storage)
    assert document.total_tax == 0
    assert document.total_gross == order.grand_total
    assert {line.tax_category for line in document.lines} == {"E"}
    assert document.snapshot["vat_exemption"] == "TVA non applicable, art. 293 B du CGI"


def test_issuing_is_refused_while_the_company_is_incomplete_naming_the_fields(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session, siret="", vat_number="")
    order = relay_order(db_session)
    with pytest.raises(CompanyIncomplete) as refused:
        issue(db_session, order, storage)
    assert refused.value.fields == ["siret", "vat_number"]
    assert db_session.scalars(select(Document)).all() == []


def test_a_failed_render_consumes_no_number(db_session: Session, storage: LocalStorage) -> None:
    complete_company(db_session)
    order = relay_order(db_session)

    class Broken:
        name = "broken"
        assets: dict[str, object] = {}

        class engine:  # noqa: N801
            @staticmethod
            def pdf(html: str, assets: object) -> bytes:
                raise RuntimeError("the engine fell over")

    savepoint = db_session.begin_nested()
    with pytest.raises(RuntimeError):
        invoices.issue_invoice(db_session, order, ACTOR, storage=storage, renderer=Broken())  # type: ignore[arg-type]
    savepoint.rollback()
    document = issue(db_session, order, storage)
    assert document.number == 1


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE documents SET total_gross = 0 WHERE id = :id",
        "DELETE FROM documents WHERE id = :id",
        "UPDATE document_lines SET total_net = 0 WHERE document_id = :id",
        "DELETE FROM document_lines WHERE document_id = :id",
    ],
)
def test_the_database_refuses_to_change_an_issued_invoice(
    db_session: Session, storage: LocalStorage, statement: str
) -> None:
    complete_company(db_session)
    document = issue(db_session, relay_order(db_session), storage)
    savepoint = db_session.begin_nested()
    with pytest.raises(IntegrityError, match="issued documents cannot be changed"):
        db_session.execute(text(statement), {"id": document.id})
    savepoint.rollback()
    kept = db_session.scalar(select(Document.total_gross).where(Document.id == document.id))
    assert kept == Decimal("49.00")


def test_a_b2b_buyer_gets_its_identifiers(db_session: Session, storage: LocalStorage) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.billing_address = {
        **order.billing_address,
        "company": "Laboratoire Curie SARL",
        "vat_id": "FR40303265045",
    }
    document = issue(db_session, order, storage)
    buyer = document.snapshot["buyer"]
    assert buyer["is_business"] and buyer["siren"] == "303265045"
    assert document.buyer_name == "Laboratoire Curie SARL"
    assert document.kind == DocumentKind.INVOICE


def test_a_discounted_line_invoiced_in_two_parts_adds_up_to_the_shop_line(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, "deux-fois")
    bowl = make_line(
        "BOL",
        2,
        "30.00",
        discount_amount=Decimal("6.00"),
        total_gross=Decimal("54.00"),
        total_net=Decimal("45.00"),
        tax_amount=Decimal("9.00"),
    )
    order = make_order(db_session, shop, [bowl], discount_total=Decimal("6.00"))
    first = issue(db_session, order, storage, {bowl.id: Decimal(1)})
    second = issue(db_session, order, storage)
    assert first.total_gross == second.total_gross == Decimal("27.00")
    assert second.snapshot["shop_check"]["difference"] == "0.00"
    discounts = [line for doc in (first, second) for line in doc.lines if line.kind == "discount"]
    assert [line.total_net for line in discounts] == [Decimal("-2.50"), Decimal("-2.50")]
    assert all("E" not in line["unit_price_net"] for line in second.snapshot["lines"])
