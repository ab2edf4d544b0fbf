"""The printed invoice and credit note: every mention the law asks, PDF/A-3b, fonts inside.

Read as a person or an auditor would: the text pypdf extracts from the stored file, and
the PDF's own structure (XMP, output intent, font descriptors).
"""

from __future__ import annotations

import io
from decimal import Decimal

import pypdf
from PIL import Image
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, pdf_text, relay_order
from tests.documents.test_facturx import credit_lines, discounted_order, issue, squeezed
from tests.documents.test_render import Counter, loopback  # noqa: F401 (the fixture)
from web.documents import invoices
from web.documents.storage import LocalStorage
from web.models import Document
from web.models.enums import DocumentKind, VatRegime
from web.services.timeline import Actor

ACTOR = Actor.system("test")


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 20), (31, 78, 121)).save(out, format="PNG")
    return out.getvalue()


def text_of(document: Document, storage: LocalStorage) -> str:
    return squeezed(pdf_text(storage.get(document.pdf_storage_key or "")))


def assert_mentions(text: str, *mentions: str) -> None:
    missing = [mention for mention in mentions if squeezed(mention) not in text]
    assert missing == [], missing


def b2b_discounted_order(db_session: Session):  # type: ignore[no-untyped-def]
    order = discounted_order(
        db_session,
        shipping_address={
            "first_name": "Pierre",
            "last_name": "Curie",
            "line1": "2 place de la Gare",
            "postcode": "69002",
            "city": "Lyon",
            "country_code": "FR",
        },
    )
    order.billing_address = {
        **order.billing_address,
        "company": "Laboratoire Curie SARL",
        "vat_id": "FR40303265045",
    }
    return order


def test_an_invoice_prints_every_mandatory_mention_in_french(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session, payment_days=30)
    document = issue(db_session, b2b_discounted_order(db_session), storage)
    text = text_of(document, storage)
    assert_mentions(
        text,
        # the seller
        "La Boutique du Thé",
        "Comptoir du Thé SAS",
        "12 rue des Lilas",
        "69003 Lyon",
        "SAS au capital de 10 000,00 €",
        "RCS Lyon",
        "SIREN : 732829320",
        "SIRET : 73282932000074",
        "N° de TVA intracommunautaire : FR44732829320",
        # the buyer, its identifiers, the billing and the delivery addresses
        "Laboratoire Curie SARL",
        "11 rue Pierre et Marie Curie",
        "75005 Paris",
        "N° de TVA intracommunautaire : FR40303265045",
        "SIREN : 303265045",
        "Adresse de livraison",
        "2 place de la Gare",
        # the document
        "Facture",
        f"N° {document.reference}",
        "Date de facture",
        "Date de la vente ou de la livraison",
        "2 mars 2026",
        "Commande",
        "#1001",
        # the lines: designation, quantity, unit price, rate per line, amount
        "Bol en grès",
        "Prix unitaire HT",
        "25,00 €",
        "Remise — Bol en grès",
        "-5,00 €",
        "Livre de recettes",
        "5,5 %",
        "Frais de port — Colissimo",
        "Remise (BIENVENUE)",
        # the totals
        "Total HT 61,35 €",
        "TVA 20 % sur 44,01 € 8,80 €",
        "TVA 5,5 % sur 17,34 € 0,95 €",
        "Total TVA 9,75 €",
        "Total TTC 71,10 €",
        "Net à payer 71,10 €",
        # payment
        "Date d'échéance",
        "Paiement à réception de facture",
        "Pas d'escompte pour paiement anticipé",
        "Pénalités de retard : taux BCE + 10 points",
        "Indemnité forfaitaire pour frais de recouvrement : 40 €",
        "IBAN FR1420041010050500013M02606",
        "BIC PSSTFRPPLIL",
    )
    assert document.due_date is not None and document.issue_date is not None
    assert (document.due_date - document.issue_date).days == 30
    assert "TVA non applicable" not in text


def test_the_invoice_reads_in_english(db_session: Session, storage: LocalStorage) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    document = invoices.issue_invoice(db_session, order, ACTOR, storage=storage, locale="en")
    assert_mentions(
        text_of(document, storage),
        "Invoice",
        "Invoice date",
        "Date of sale or delivery",
        "March 2, 2026",
        "Unit price excl. VAT",
        "Total excl. VAT",
        "Total incl. VAT €49.00",
        "Amount due €49.00",
        "SAS with a share capital of €10,000.00",
        "VAT number: FR44732829320",
    )


def test_under_the_franchise_the_mention_replaces_the_vat(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    document = issue(db_session, discounted_order(db_session), storage)
    text = text_of(document, storage)
    assert_mentions(text, "TVA non applicable, art. 293 B du CGI", "Net à payer 71,10 €")
    assert squeezed("Total TTC") not in text and squeezed("TVA 20 %") not in text
    assert "HT" not in text  # no "excl. VAT" where there is no VAT
    assert "intracommunautaire" not in text


def test_a_credit_note_cites_the_invoice_and_is_net_to_deduct(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    order = discounted_order(db_session)
    invoice = issue(db_session, order, storage)
    credit = invoices._issue(
        db_session,
        order,
        ACTOR,
        DocumentKind.CREDIT_NOTE,
        credit_lines(invoice, only="BOL"),
        invoices.require_complete(db_session),
        locale="fr",
        storage=storage,
        renderer=None,
        corrects=invoice,
        reason="Bol arrivé cassé",
    )
    assert invoice.issue_date is not None
    text = text_of(credit, storage)
    assert_mentions(
        text,
        "Avoir",
        f"N° {credit.reference}",
        f"Avoir sur la facture {invoice.reference} du",
        "Motif : Bol arrivé cassé",
        "Bol en grès",
        "Total TTC 54,00 €",
        "Net à déduire 54,00 €",
        "SIREN : 732829320",
    )
    assert "Net à payer" not in text
    assert "IBAN" not in text


def test_the_company_logo_is_printed_when_set(db_session: Session, storage: LocalStorage) -> None:
    complete_company(db_session, logo=png(), logo_mime_type="image/png")
    document = issue(db_session, relay_order(db_session), storage)
    reader = pypdf.PdfReader(io.BytesIO(storage.get(document.pdf_storage_key or "")))
    images = reader.pages[0].images
    assert len(images) == 1 and images[0].image.size == (40, 20)


def fonts(reader: pypdf.PdfReader) -> list[pypdf.generic.DictionaryObject]:
    """Every font the pages use, descendants of composite fonts included."""
    found = []
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for font in resources.get("/Font", {}).values():
            font = font.get_object()
            found.append(font)
            for descendant in font.get("/DescendantFonts", []):
                found.append(descendant.get_object())
    return found


def test_the_pdf_is_pdf_a_3b_and_embeds_every_font(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)
    document = issue(db_session, b2b_discounted_order(db_session), storage)
    reader = pypdf.PdfReader(io.BytesIO(storage.get(document.pdf_storage_key or "")))
    catalog = reader.trailer["/Root"]
    xmp = catalog["/Metadata"].get_object().get_data().decode()
    assert "<pdfaid:part>3</pdfaid:part>" in xmp
    assert "<pdfaid:conformance>B</pdfaid:conformance>" in xmp
    (intent,) = catalog["/OutputIntents"]
    assert intent.get_object()["/S"] == "/GTS_PDFA1"
    assert "/DestOutputProfile" in intent.get_object()
    used = fonts(reader)
    assert used
    descriptors = [
        font["/FontDescriptor"].get_object() for font in used if "/FontDescriptor" in font
    ]
    assert descriptors
    for descriptor in descriptors:
        assert {"/FontFile", "/FontFile2", "/FontFile3"} & set(descriptor), descriptor["/FontName"]


def test_a_hostile_line_name_fetches_nothing(
    db_session: Session,
    storage: LocalStorage,
    loopback: str,  # noqa: F811
) -> None:
    complete_company(db_session)
    order = relay_order(db_session)
    order.lines[
        0
    ].name = f'<img src="{loopback}/x.png"><style>@import url({loopback}/y.css);</style>'
    order.billing_address = {**order.billing_address, "company": f"<link href={loopback}/z.css>"}
    document = issue(db_session, order, storage)
    assert f'<img src="{loopback}/x.png">' in pdf_text(storage.get(document.pdf_storage_key or ""))
    assert Counter.hits == []
    assert document.total_gross == Decimal("49.00")
