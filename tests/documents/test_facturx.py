"""Factur-X: the XML inside every kind of issued invoice and credit note is valid EN 16931.

The XML is taken out of the stored PDF as a buyer's software would, checked against the
XSD the `factur-x` library ships, then run through the official EN 16931 rules (the
Schematron compiled to XSLT, tests/fixtures/en16931) with saxonche: no fatal failed
assert is allowed, and its totals are the PDF's.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import facturx
import pypdf
import pytest
from babel.numbers import format_currency
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree
from saxonche import PySaxonProcessor
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, pdf_text, relay_order
from tests.factories import make_line, make_order, make_shop
from web.documents import invoices
from web.documents.facturx import FacturXError, cii_xml
from web.documents.storage import LocalStorage
from web.models import CompanySettings, Document, Order, Shop
from web.models.enums import DocumentKind, PaymentState, VatRegime
from web.services.timeline import Actor

ACTOR = Actor.system("test")
RULES = Path(__file__).resolve().parents[1] / "fixtures" / "en16931"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "svrl": "http://purl.oclc.org/dsdl/svrl",
}
Check = Callable[[bytes], list[str]]


@pytest.fixture(scope="session")
def en16931() -> Iterator[Check]:
    """The official rules, compiled once: XML in, the fatal failed asserts' ids and texts out."""
    with PySaxonProcessor(license=False) as processor:
        stylesheet = processor.new_xslt30_processor().compile_stylesheet(
            stylesheet_file=str(RULES / "EN16931-CII-validation.xslt")
        )

        def check(xml: bytes) -> list[str]:
            node = processor.parse_xml(xml_text=xml.decode())
            report = etree.fromstring(stylesheet.transform_to_string(xdm_node=node).encode())
            return [
                f"{failed.get('id')}: {' '.join(failed.itertext()).strip()}"
                for failed in report.iterfind(".//svrl:failed-assert", NS)
                if failed.get("flag") == "fatal"
            ]

        yield check


def stored_pdf(document: Document, storage: LocalStorage) -> bytes:
    return storage.get(document.pdf_storage_key or "")


def extracted_xml(pdf: bytes) -> bytes:
    """The factur-x.xml attached to the PDF, checked against the XSD on the way out."""
    filename, xml = facturx.get_facturx_xml_from_pdf(pdf, check_xsd=True)
    assert filename == "factur-x.xml"
    return bytes(xml)


def squeezed(text: str) -> str:
    """Text without its spaces (Babel's narrow no-break spaces, pypdf's plain ones)."""
    return "".join(text.split()).replace("\u202f", "").replace("\xa0", "")


def amount(tree: etree._Element, path: str) -> Decimal:
    return Decimal(tree.findtext(path, namespaces=NS) or "nan")


SUMMATION = ".//ram:SpecifiedTradeSettlementHeaderMonetarySummation/"


def assert_valid_and_equal(
    document: Document, storage: LocalStorage, check: Check
) -> etree._Element:
    """The XML in the stored PDF passes EN 16931 and its totals are the document's."""
    pdf = stored_pdf(document, storage)
    xml = extracted_xml(pdf)
    assert check(xml) == []
    tree = etree.fromstring(xml)
    snapshot = document.snapshot
    assert tree.findtext(".//rsm:ExchangedDocument/ram:ID", namespaces=NS) == document.reference
    assert amount(tree, SUMMATION + "ram:TaxBasisTotalAmount") == document.total_net
    assert amount(tree, SUMMATION + "ram:TaxTotalAmount") == document.total_tax
    assert amount(tree, SUMMATION + "ram:GrandTotalAmount") == document.total_gross
    assert amount(tree, SUMMATION + "ram:DuePayableAmount") == Decimal(snapshot["totals"]["due"])
    breakdown = {
        (
            tax.findtext("ram:CategoryCode", namespaces=NS),
            tax.findtext("ram:RateApplicablePercent", namespaces=NS),
        ): (amount(tax, "ram:BasisAmount"), amount(tax, "ram:CalculatedAmount"))
        for tax in tree.iterfind(
            ".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS
        )
    }
    assert {rate: figures for (_, rate), figures in breakdown.items()} == {
        tax["rate"]: (Decimal(tax["base"]), Decimal(tax["tax"])) for tax in snapshot["taxes"]
    }
    # The PDF a person reads says the same grand total as the XML.
    total = format_currency(document.total_gross, document.currency, locale=snapshot["locale"])
    assert squeezed(total) in squeezed(pdf_text(pdf))
    return tree


def issue(session: Session, order: Order, storage: LocalStorage, quantities=None) -> Document:  # type: ignore[no-untyped-def]
    return invoices.issue_invoice(session, order, ACTOR, quantities, storage=storage)


def discounted_order(session: Session, **overrides: object) -> Order:
    """A bowl at 20 % with its own discount, a book at 5.5 %, shipping, a discount code."""
    shop = make_shop(session, "remises")
    bowl = make_line(
        "BOL",
        2,
        "30.00",
        name="Bol en grès",
        discount_amount=Decimal("6.00"),
        total_gross=Decimal("54.00"),
        total_net=Decimal("45.00"),
        tax_amount=Decimal("9.00"),
    )
    book = make_line(
        "LIVRE",
        1,
        "21.10",
        name="Livre de recettes",
        tax_rate=Decimal("5.5"),
        total_gross=Decimal("21.10"),
        total_net=Decimal("20.00"),
        tax_amount=Decimal("1.10"),
    )
    values: dict[str, object] = {
        "shipping_total": Decimal("6.00"),
        "shipping_tax": Decimal("1.00"),
        "shipping_label": "Colissimo",
        "discount_total": Decimal("16.00"),  # 6.00 on the bowl, 10.00 on the order
        "discount_codes": ["BIENVENUE"],
        "grand_total": Decimal("71.10"),
        "billing_address": {
            "first_name": "Marie",
            "last_name": "Curie",
            "line1": "11 rue Pierre et Marie Curie",
            "postcode": "75005",
            "city": "Paris",
            "country_code": "FR",
        },
    }
    values.update(overrides)
    return make_order(session, shop, [bowl, book], **values)


@pytest.mark.parametrize("rate", ["20", "10", "5.5", "2.1"])
def test_each_french_rate_gives_a_valid_invoice(
    db_session: Session, storage: LocalStorage, en16931: Check, rate: str
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, f"taux-{rate}")
    net = Decimal("40.00")
    tax = (net * Decimal(rate) / 100).quantize(Decimal("0.01"))
    line = make_line(
        "ART",
        4,
        "10.00",
        tax_rate=Decimal(rate),
        total_net=net,
        tax_amount=tax,
        total_gross=net + tax,
    )
    document = issue(db_session, make_order(db_session, shop, [line]), storage)
    tree = assert_valid_and_equal(document, storage, en16931)
    assert tree.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "380"
    rates = tree.findall(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS)
    assert [r.findtext("ram:RateApplicablePercent", namespaces=NS) for r in rates] == [
        f"{Decimal(rate):.2f}"
    ]


def test_mixed_rates_discounts_and_shipping_give_a_valid_invoice(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session)
    document = issue(db_session, discounted_order(db_session), storage)
    assert document.total_gross == Decimal("71.10")
    tree = assert_valid_and_equal(document, storage, en16931)
    # The bowl's discount is its line's allowance; the code's discount, per rate, the
    # document's allowances; shipping is a line at 20 %.
    bowl = tree.find(".//ram:IncludedSupplyChainTradeLineItem", NS)
    assert bowl is not None
    assert amount(bowl, ".//ram:SpecifiedTradeAllowanceCharge/ram:ActualAmount") == Decimal("5.00")
    assert amount(bowl, ".//ram:LineTotalAmount") == Decimal("45.00")
    allowances = tree.findall(
        ".//ram:ApplicableHeaderTradeSettlement/ram:SpecifiedTradeAllowanceCharge", NS
    )
    assert {a.findtext(".//ram:RateApplicablePercent", namespaces=NS) for a in allowances} == {
        "20.00",
        "5.50",
    }
    names = [n.text for n in tree.iterfind(".//ram:SpecifiedTradeProduct/ram:Name", NS)]
    assert names == ["Bol en grès", "Livre de recettes", "Colissimo"]


def test_the_franchise_regime_gives_a_valid_exempt_invoice(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    document = issue(db_session, discounted_order(db_session), storage)
    tree = assert_valid_and_equal(document, storage, en16931)
    (tax,) = tree.findall(".//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax", NS)
    assert tax.findtext("ram:CategoryCode", namespaces=NS) == "E"
    assert tax.findtext("ram:ExemptionReason", namespaces=NS) == (
        "TVA non applicable, art. 293 B du CGI"
    )
    assert tax.findtext("ram:ExemptionReasonCode", namespaces=NS) == "VATEX-FR-FRANCHISE"
    # Without a VAT number the seller identifies itself for tax by its SIREN (BR-E-02).
    registration = tree.find(".//ram:SellerTradeParty/ram:SpecifiedTaxRegistration/ram:ID", NS)
    assert registration is not None and registration.get("schemeID") == "FC"
    assert registration.text == "732829320"


def test_a_business_buyer_and_a_paid_order_give_a_valid_invoice(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.payment_state = PaymentState.PAID
    order.billing_address = {
        **order.billing_address,
        "company": "Laboratoire Curie SARL",
        "vat_id": "FR40303265045",
    }
    document = issue(db_session, order, storage)
    tree = assert_valid_and_equal(document, storage, en16931)
    buyer = tree.find(".//ram:BuyerTradeParty", NS)
    assert buyer is not None
    assert buyer.findtext("ram:Name", namespaces=NS) == "Laboratoire Curie SARL"
    assert buyer.findtext(".//ram:SpecifiedTaxRegistration/ram:ID", namespaces=NS) == (
        "FR40303265045"
    )
    legal = buyer.find("ram:SpecifiedLegalOrganization/ram:ID", NS)
    assert legal is not None and (legal.text, legal.get("schemeID")) == ("303265045", "0002")
    assert amount(tree, SUMMATION + "ram:TotalPrepaidAmount") == Decimal("49.00")
    assert amount(tree, SUMMATION + "ram:DuePayableAmount") == Decimal("0.00")


def test_partial_invoices_are_valid_and_add_up(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session)
    order = discounted_order(db_session)
    book = next(line for line in order.lines if line.sku == "LIVRE")
    first = issue(db_session, order, storage, {book.id: Decimal(1)})
    rest = issue(db_session, order, storage)
    for document in (first, rest):
        assert_valid_and_equal(document, storage, en16931)
    assert first.total_gross + rest.total_gross == Decimal("71.10")


def credit_lines(invoice: Document, only: str | None = None) -> list[invoices.Line]:
    return [
        invoices.Line(
            row.kind,
            row.name,
            row.quantity,
            row.unit_price_net,
            row.tax_rate,
            row.total_net,
            row.tax_amount,
            row.order_line_id,
            row.sku,
            row.tax_category,
        )
        for row in invoice.lines
        if only is None or row.sku == only
    ]


@pytest.mark.parametrize("franchise", [False, True], ids=["normal", "franchise"])
def test_credit_notes_are_valid_and_cite_the_invoice(
    db_session: Session, storage: LocalStorage, en16931: Check, franchise: bool
) -> None:
    if franchise:
        complete_company(db_session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    else:
        complete_company(db_session)
    order = discounted_order(db_session)
    invoice = issue(db_session, order, storage)
    company = invoices.require_complete(db_session)
    full = invoices._issue(
        db_session,
        order,
        ACTOR,
        DocumentKind.CREDIT_NOTE,
        credit_lines(invoice),
        company,
        locale="fr",
        storage=storage,
        renderer=None,
        corrects=invoice,
        reason="Commande annulée",
        cancels_invoice=True,
    )
    partial = invoices._issue(
        db_session,
        order,
        ACTOR,
        DocumentKind.CREDIT_NOTE,
        credit_lines(invoice, only="BOL"),
        company,
        locale="en",
        storage=storage,
        renderer=None,
        corrects=invoice,
        reason="Broken bowl",
    )
    assert full.total_gross == invoice.total_gross
    for credit in (full, partial):
        tree = assert_valid_and_equal(credit, storage, en16931)
        assert tree.findtext(".//rsm:ExchangedDocument/ram:TypeCode", namespaces=NS) == "381"
        cited = tree.find(".//ram:InvoiceReferencedDocument", NS)
        assert cited is not None
        assert cited.findtext("ram:IssuerAssignedID", namespaces=NS) == invoice.reference
        assert invoice.issue_date is not None
        day = cited.findtext(".//{*}DateTimeString")
        assert day == invoice.issue_date.strftime("%Y%m%d")
    assert partial.total_gross == Decimal("54.00")


def test_the_validator_catches_a_changed_grand_total(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session)
    document = issue(db_session, relay_order(db_session), storage)
    xml = extracted_xml(stored_pdf(document, storage))
    tree = etree.fromstring(xml)
    total = tree.find(SUMMATION + "ram:GrandTotalAmount", NS)
    assert total is not None
    total.text = "50.00"
    failures = en16931(etree.tostring(tree))
    assert any(failure.startswith("BR-CO-15") for failure in failures), failures


def test_inconsistent_figures_refuse_the_document(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    document = issue(db_session, relay_order(db_session), storage)
    bad = {**document.snapshot, "totals": {**document.snapshot["totals"], "gross": "50.00"}}
    with pytest.raises(FacturXError):
        cii_xml(bad)
    unknown_currency = {**document.snapshot, "currency": "EURO"}
    with pytest.raises(FacturXError):
        cii_xml(unknown_currency)


def test_the_pdf_is_pdf_a_3b_with_the_xml_attached_as_data(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    document = issue(db_session, relay_order(db_session), storage)
    reader = pypdf.PdfReader(io.BytesIO(stored_pdf(document, storage)))
    catalog = reader.trailer["/Root"]
    metadata = catalog["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in metadata
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in metadata
    assert "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" in metadata
    assert "EN 16931" in metadata
    assert catalog["/OutputIntents"][0].get_object()["/S"] == "/GTS_PDFA1"
    (attached,) = catalog["/AF"]
    assert attached.get_object()["/F"] == "factur-x.xml"
    assert attached.get_object()["/AFRelationship"] == "/Data"
    assert list(reader.attachments) == ["factur-x.xml"]


# --- Any mix of lines the arithmetic can produce -------------------------------------------

RATES = [Decimal("20"), Decimal("10"), Decimal("5.5"), Decimal("2.1"), Decimal("0")]
PLACED = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def transient_company(franchise: bool) -> CompanySettings:
    """The test company, not stored: the snapshot reads its fields only."""
    return CompanySettings(
        id=1,
        legal_name="Comptoir du Thé SAS",
        trade_name="La Boutique du Thé",
        address="12 rue des Lilas",
        postcode="69003",
        city="Lyon",
        country="FR",
        email="compta@boutique-the.example",
        phone="",
        website="",
        siren="732829320",
        siret="73282932000074",
        rcs_city="Lyon",
        legal_form="SAS",
        share_capital=Decimal("10000.00"),
        vat_number="" if franchise else "FR44732829320",
        vat_regime=VatRegime.FRANCHISE if franchise else VatRegime.NORMAL,
        iban="FR1420041010050500013M02606",
        bic="PSSTFRPPLIL",
        payment_terms="Paiement à 30 jours",
        payment_days=30,
        early_payment="",
        late_penalty="",
        recovery_indemnity="",
    )


def transient_order(buyer: dict[str, str]) -> Order:
    return Order(
        shop=Shop(name="La Boutique du Thé"),
        number="#1001",
        marketplace_ref="",
        placed_at=PLACED,
        currency="EUR",
        payment_state=PaymentState.UNPAID,
        email="marie@example.org",
        billing_address=buyer,
        shipping_address=buyer,
    )


@st.composite
def documents(draw: st.DrawFn) -> tuple[list[invoices.Line], bool, DocumentKind, dict[str, str]]:
    """Products at French rates with their own discounts, shipping, order discounts per rate."""
    franchise = draw(st.booleans())
    category = "E" if franchise else "S"
    cents = st.integers(min_value=1, max_value=99_999).map(lambda c: Decimal(c) / 100)
    lines: list[invoices.Line] = []
    for index in range(draw(st.integers(min_value=1, max_value=25))):
        rate = Decimal(0) if franchise else draw(st.sampled_from(RATES))
        quantity = Decimal(draw(st.integers(min_value=1, max_value=7)))
        unit = draw(cents)
        net = invoices.money(unit * quantity)
        tax = invoices.money(net * rate / 100)
        lines.append(
            invoices.Line(
                "product",
                f"Article {index}",
                quantity,
                unit,
                rate,
                net,
                tax,
                index,
                f"A{index}",
                category,
            )
        )
        share = draw(st.sampled_from([None, Decimal("0.1"), Decimal("0.33"), Decimal("1")]))
        if share is not None:
            off = invoices.money(net * share)
            lines.append(
                invoices.Line(
                    "discount",
                    f"Article {index}",
                    quantity,
                    Decimal(0),
                    rate,
                    -off,
                    -invoices.money(off * rate / 100),
                    index,
                    f"A{index}",
                    category,
                )
            )
    if draw(st.booleans()):
        rate = Decimal(0) if franchise else Decimal(20)
        net = draw(cents)
        tax = invoices.money(net * rate / 100)
        lines.append(
            invoices.Line(
                "shipping", "Colissimo", Decimal(1), net, rate, net, tax, tax_category=category
            )
        )
    products = [line for line in lines if line.kind == "product"]
    if draw(st.booleans()):
        for rate in sorted({line.tax_rate for line in products}):
            base = sum((line.total_net for line in products if line.tax_rate == rate), Decimal(0))
            off = invoices.money(base * Decimal("0.05"))
            if off:
                lines.append(
                    invoices.Line(
                        "discount",
                        "BIENVENUE",
                        Decimal(1),
                        Decimal(0),
                        rate,
                        -off,
                        -invoices.money(off * rate / 100),
                        tax_category=category,
                    )
                )
    kind = draw(st.sampled_from([DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE]))
    buyer = draw(
        st.sampled_from(
            [
                {
                    "first_name": "Marie",
                    "last_name": "Curie",
                    "line1": "11 rue Curie",
                    "postcode": "75005",
                    "city": "Paris",
                    "country_code": "FR",
                },
                {
                    "company": "Atomium NV",
                    "vat_id": "BE0403170701",
                    "line1": "Square de l'Atomium",
                    "postcode": "1020",
                    "city": "Bruxelles",
                    "country_code": "BE",
                },
                {
                    "first_name": "Anonyme",
                    "vat_id": "12345",
                },  # no country, a VAT number without prefix
            ]
        )
    )
    return lines, franchise, kind, buyer


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_any_mix_of_lines_gives_valid_en16931(
    en16931: Check, drawn: tuple[list[invoices.Line], bool, DocumentKind, dict[str, str]]
) -> None:
    lines, franchise, kind, buyer = drawn
    figures = invoices.totals(lines)
    assume(figures.gross > 0)
    corrects = Document(reference="FA-2026-000041", issue_date=dt.date(2026, 3, 1))
    data = invoices.snapshot(
        transient_order(buyer),
        transient_company(franchise),
        kind,
        "AV-2026-000007" if kind == DocumentKind.CREDIT_NOTE else "FA-2026-000042",
        dt.date(2026, 3, 4),
        lines,
        "fr",
        corrects=corrects if kind == DocumentKind.CREDIT_NOTE else None,
        reason="Retour" if kind == DocumentKind.CREDIT_NOTE else "",
    )
    xml = cii_xml(data)
    assert en16931(xml) == []
    tree = etree.fromstring(xml)
    assert amount(tree, SUMMATION + "ram:GrandTotalAmount") == figures.gross
    assert amount(tree, SUMMATION + "ram:TaxTotalAmount") == figures.tax
    assert amount(tree, SUMMATION + "ram:TaxBasisTotalAmount") == figures.net


def test_a_name_with_control_characters_still_gives_valid_xml(
    db_session: Session, storage: LocalStorage, en16931: Check
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.lines[0].name = "Mug\x0bbleu\x1f"
    document = issue(db_session, order, storage)
    tree = assert_valid_and_equal(document, storage, en16931)
    names = [n.text for n in tree.iterfind(".//ram:SpecifiedTradeProduct/ram:Name", NS)]
    assert names[0] == "Mug bleu "


def test_a_document_whose_factur_x_data_is_refused_is_not_issued(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.currency = "ZZZ"  # no such currency: the Factur-X data cannot be built
    savepoint = db_session.begin_nested()
    with pytest.raises(FacturXError, match="ZZZ"):
        issue(db_session, order, storage)
    savepoint.rollback()
    assert db_session.scalars(select(Document)).all() == []
    assert list(storage.root.rglob("*.pdf")) == []
    order.currency = "EUR"
    assert issue(db_session, order, storage).number == 1  # the refused one took no number
