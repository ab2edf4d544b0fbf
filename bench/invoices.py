"""Time invoices with Factur-X: one invoice and a 200-line invoice, warm, then issue a few.

    .venv/bin/python bench/invoices.py [--lines 200] [--repeat 7] [--count 20] [--database-url URL]

The baseline is measured in the same run, so machines of different speed compare: a delivery
note of 5 lines rendered by the same engine (plain PDF, no Factur-X). An invoice costs its
PDF/A-3b rendering, the EN 16931 XML (built, checked against the XSD) and the embedding.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pypdf
from cryptography.fernet import Fernet
from facturx import get_facturx_xml_from_pdf
from sqlalchemy import func, select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.documents import delivery_notes, facturx, invoices  # noqa: E402
from web.documents.render import default_renderer  # noqa: E402
from web.documents.storage import LocalStorage  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import (  # noqa: E402
    CompanySettings,
    Document,
    Order,
    OrderLine,
    Shipment,
    ShipmentLine,
    Shop,
)
from web.models.enums import DocumentKind, Platform, ShipmentState, VatRegime  # noqa: E402
from web.services.timeline import Actor  # noqa: E402

PLACED = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
ISSUED = dt.date(2026, 3, 4)
ADDRESS = {
    "first_name": "Marie",
    "last_name": "Curie",
    "line1": "11 rue Pierre et Marie Curie",
    "postcode": "75005",
    "city": "Paris",
    "country_code": "FR",
}
RATES = (Decimal("20"), Decimal("5.5"), Decimal("10"), Decimal("2.1"))


def median_ms(func: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def company() -> CompanySettings:
    return CompanySettings(
        id=1,
        legal_name="Comptoir du Thé SAS",
        trade_name="La Boutique du Thé",
        address="12 rue des Lilas",
        postcode="69003",
        city="Lyon",
        country="FR",
        siren="732829320",
        siret="73282932000074",
        rcs_city="Lyon",
        legal_form="SAS",
        share_capital=Decimal("10000.00"),
        vat_number="FR44732829320",
        vat_regime=VatRegime.NORMAL,
        iban="FR1420041010050500013M02606",
        bic="PSSTFRPPLIL",
        payment_terms="Paiement à 30 jours",
        payment_days=30,
    )


def order_of(shop: Shop, index: int, lines: int) -> Order:
    """An order of `lines` lines over the four French rates, every third one discounted."""
    order_lines = []
    for n in range(lines):
        rate = RATES[n % len(RATES)]
        gross = Decimal("19.90") * 2
        discount = Decimal("2.00") if n % 3 == 0 else Decimal("0.00")
        net = ((gross - discount) * 100 / (100 + rate)).quantize(Decimal("0.01"))
        order_lines.append(
            OrderLine(
                sku=f"SKU-{n}",
                name=f"Article {n}",
                quantity=2,
                unit_price=Decimal("19.90"),
                position=n,
                tax_rate=rate,
                discount_amount=discount,
                total_gross=gross - discount,
                total_net=net,
                tax_amount=gross - discount - net,
            )
        )
    total = sum((line.total_gross for line in order_lines), Decimal("0.00"))
    return Order(
        shop=shop,
        external_id=str(index),
        number=f"#{1000 + index}",
        placed_at=PLACED,
        shop_updated_at=PLACED,
        billing_address=ADDRESS,
        shipping_address=ADDRESS,
        lines=order_lines,
        shipping_total=Decimal("6.00"),
        shipping_tax=Decimal("1.00"),
        discount_total=sum((line.discount_amount for line in order_lines), Decimal("0.00")),
        grand_total=total + Decimal("6.00"),
    )


def shipped(order: Order) -> Shipment:
    return Shipment(
        order=order,
        number=f"EXP-{order.external_id}",
        state=ShipmentState.SHIPPED,
        lines=[ShipmentLine(order_line=line, quantity=1) for line in order.lines],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lines", type=int, default=200, help="lines of the long invoice")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--count", type=int, default=20, help="invoices issued one by one")
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        storage = LocalStorage(Path(tmp) / "documents")
        with sessions.begin() as session:
            session.add(company())
            shop = Shop(
                key="bench", platform=Platform.SHOPIFY, name="Bench", base_url="https://b.test"
            )
            small, long = order_of(shop, 0, 5), order_of(shop, 1, args.lines)
            to_issue = [order_of(shop, 2 + n, 5) for n in range(args.count)]
            session.add_all([shipped(small), long, *to_issue])
        pending = [order.id for order in to_issue]
        with sessions() as session:
            settings = session.get(CompanySettings, 1)
            assert settings is not None
            shipment = session.scalars(select(Shipment)).one()
            note = delivery_notes.delivery_note_snapshot(
                shipment, "BL-2026-000000", ISSUED, False, "fr"
            )
            snapshots = [
                invoices.snapshot(
                    order,
                    settings,
                    DocumentKind.INVOICE,
                    f"FA-2026-{n:06d}",
                    ISSUED,
                    invoices.invoice_lines(session, order, settings),
                    "fr",
                )
                for n, order in enumerate(
                    (session.get(Order, small.id), session.get(Order, long.id)), start=1
                )
            ]

            renderer = default_renderer()
            started = time.perf_counter()
            renderer.render("delivery_note.html", {"doc": note}, "fr")
            invoices.render_document_pdf(snapshots[0], settings)
            print(f"first renders (imports, fonts, XSD): {time.perf_counter() - started:.2f} s")
            baseline = median_ms(
                lambda: renderer.render("delivery_note.html", {"doc": note}, "fr"), args.repeat
            )
            print(f"baseline, a delivery note (5 lines), plain PDF:  {baseline:8.1f} ms")
            plain = invoices._pdfa_renderer()
            for snapshot, order_lines in zip(snapshots, (5, args.lines), strict=True):
                pdf = invoices.render_document_pdf(snapshot, settings)
                _, embedded = get_facturx_xml_from_pdf(pdf, check_xsd=True)
                assert embedded == facturx.cii_xml(snapshot), "the PDF carries another XML"
                bare = plain.render("invoice.html", {"doc": snapshot}, "fr")
                whole = median_ms(
                    lambda s=snapshot: invoices.render_document_pdf(s, settings), args.repeat
                )
                render = median_ms(
                    lambda s=snapshot: plain.render("invoice.html", {"doc": s}, "fr"), args.repeat
                )
                xml = median_ms(lambda s=snapshot: facturx.cii_xml(s), args.repeat)
                attach = median_ms(lambda s=snapshot, b=bare: facturx.embed(b, s), args.repeat)
                pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
                print(
                    f"invoice of {order_lines:3d} order lines ({len(snapshot['lines'])} lines, "
                    f"{pages} pages), PDF/A-3b + Factur-X: {whole:8.1f} ms"
                    f"  ({whole / baseline:.1f} x the delivery note)"
                )
                print(
                    f"    of which the PDF/A-3b {render:.1f} ms, the XML {xml:.1f} ms,"
                    f" XML + embedding {attach:.1f} ms"
                )

        started = time.perf_counter()
        for order_id in pending:
            with sessions.begin() as session:
                order = session.get(Order, order_id)
                assert order is not None
                invoices.issue_invoice(session, order, Actor.system(), storage=storage)
        total = time.perf_counter() - started
        with sessions() as session:
            issued = session.scalar(select(func.count()).select_from(Document))
        assert issued == len(pending), f"{issued} invoices for {len(pending)} orders"
        print(
            f"issue {len(pending)} invoices, one after another: {total:8.1f} s"
            f"  ({1000 * total / max(len(pending), 1):.1f} ms each, {url.split(':')[0]})"
        )


if __name__ == "__main__":
    main()
