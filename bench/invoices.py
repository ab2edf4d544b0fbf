"""Invoices with Factur-X: one invoice (warm) and a 200-line invoice, against the engines alone.

    .venv/bin/python bench/invoices.py [--full] [--lines 200] [--repeat N] [--count N]

Each invoice is timed whole as Comptoir makes it (PDF/A-3b by WeasyPrint through our URL
fetcher, the EN 16931 XML built and checked against the XSD, embedded), median of --repeat,
warm (the first render, which imports WeasyPrint and loads the fonts, is timed apart). The
baselines, same run: the same HTML (our assets inlined) printed by WeasyPrint alone (its
defaults: no PDF/A, no Factur-X, no fetcher of ours) and by wkhtmltopdf through pdfkit when
the program is installed. Then --count invoices issued one by one (number, render, store,
row; SQLite), against the one invoice. Full mode also splits each invoice's time (the PDF/A-3b
render, the XML, the embedding).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import pypdf
from cryptography.fernet import Fernet
from facturx import get_facturx_xml_from_pdf
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import bare_engines, median_ms  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.documents import facturx, invoices  # noqa: E402
from web.documents.render import default_renderer, render_html  # noqa: E402
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
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--lines", type=int, default=200, help="lines of the long invoice")
    parser.add_argument("--repeat", type=int, default=0, help="quick 2, full 7")
    parser.add_argument("--count", type=int, default=0, help="invoices issued; quick 3, full 20")
    args = parser.parse_args()
    full = full_mode(args.full)
    repeat = args.repeat or (7 if full else 2)
    count = args.count or (20 if full else 3)
    report = Report("invoices (PDF/A-3b + Factur-X)", full=full)

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "db").mkdir()
        url = f"sqlite:///{tmp}/db/bench.sqlite"
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
            to_issue = [order_of(shop, 2 + n, 5) for n in range(count)]
            session.add_all([small, long, *to_issue])
        pending = [order.id for order in to_issue]
        with sessions() as session:
            settings = session.get(CompanySettings, 1)
            assert settings is not None
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
        engines = bare_engines(renderer.assets)
        if len(engines) == 1:
            report.note("wkhtmltopdf is not installed: no wkhtmltopdf baseline")
        started = time.perf_counter()
        invoices.render_document_pdf(snapshots[0], settings)
        report.figure("first invoice (imports, fonts, XSD)", time.perf_counter() - started, "s")
        plain = invoices._pdfa_renderer()
        one = ""
        for snapshot, size in zip(snapshots, (5, args.lines), strict=True):
            label = "one invoice" if size == 5 else f"a {size}-line invoice"
            pdf = invoices.render_document_pdf(snapshot, settings)
            _, embedded = get_facturx_xml_from_pdf(pdf, check_xsd=True)
            assert embedded == facturx.cii_xml(snapshot), "the PDF carries another XML"
            pages = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
            html = render_html("invoice.html", {"doc": snapshot}, "fr")
            bases = []
            for engine in engines.values():
                engine(html)  # warm, as ours is
            for name, engine in engines.items():
                base = f"{label}: the same HTML, {name}"
                report.baseline(base, median_ms(lambda e=engine, h=html: e(h), repeat), "ms")
                bases.append(base)
            whole = median_ms(lambda s=snapshot: invoices.render_document_pdf(s, settings), repeat)
            name = f"{label} ({len(snapshot['lines'])} lines, {pages} pages), PDF/A-3b + Factur-X"
            for base in bases:
                report.figure(name, whole, "ms", base)
            one = one or name
            if not full:
                continue  # where the time goes: full mode only
            bare = plain.render("invoice.html", {"doc": snapshot}, "fr")
            render = median_ms(
                lambda s=snapshot: plain.render("invoice.html", {"doc": s}, "fr"), repeat
            )
            xml = median_ms(lambda s=snapshot: facturx.cii_xml(s), repeat)
            attach = median_ms(lambda s=snapshot, b=bare: facturx.embed(b, s), repeat)
            report.figure(f"{label}: of which the PDF/A-3b", render, "ms")
            report.figure(f"{label}: of which the XML", xml, "ms")
            report.figure(f"{label}: of which XML + embedding", attach, "ms")

        started = time.perf_counter()
        for order_id in pending:
            with sessions.begin() as session:
                order = session.get(Order, order_id)
                assert order is not None
                invoices.issue_invoice(session, order, Actor.system(), storage=storage)
        total = time.perf_counter() - started
        with sessions() as session:
            issued = session.scalar(select(func.count()).select_from(Document))
    exact = issued == len(pending)
    report.figure(
        f"issue {len(pending)} invoices one by one, each", 1000 * total / count, "ms", one
    )
    report.target(f"{len(pending)} invoices issued, one document each", exact, f"{issued}")
    sys.exit(report.finish() if exact else 1)


if __name__ == "__main__":
    main()
