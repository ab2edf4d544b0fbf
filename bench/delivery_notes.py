"""Delivery notes: one, and 500 as one PDF to print, against the engines alone, same run.

    .venv/bin/python bench/delivery_notes.py [--full] [--count N] [--repeat N]

One delivery note (5 lines), warm, median of --repeat, as Comptoir renders it (WeasyPrint
through our URL fetcher). Then --count delivery notes as one PDF, as the warehouse prints a
day's parcels: each issued (number, render, store, row; SQLite), then the bulk print
(`issued.combined_pdf`: the stored PDFs one after another). The baselines, same run: the same
HTML (our assets inlined) printed by WeasyPrint alone (its defaults, no fetcher of ours) and
by wkhtmltopdf through pdfkit when the program is installed — one note, and every note one by
one merged into one PDF by pypdf.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import bare_engines, median_ms  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.documents import delivery_notes  # noqa: E402
from web.documents import issued as issued_documents  # noqa: E402
from web.documents.render import default_renderer, render_html  # noqa: E402
from web.documents.storage import LocalStorage  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import Order, OrderLine, Parcel, Shipment, ShipmentLine, Shop  # noqa: E402
from web.models.enums import Platform, ShipmentState  # noqa: E402
from web.services.timeline import Actor  # noqa: E402

PLACED = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
ADDRESS = {
    "first_name": "Marie",
    "last_name": "Curie",
    "line1": "11 rue Pierre et Marie Curie",
    "postcode": "75005",
    "city": "Paris",
    "country_code": "FR",
}


def shipped_order(shop: Shop, index: int, lines: int) -> Shipment:
    order_lines = [
        OrderLine(
            sku=f"SKU-{n}", name=f"Article {n}", quantity=2, unit_price=Decimal("9.90"), position=n
        )
        for n in range(lines)
    ]
    order = Order(
        shop=shop,
        external_id=str(index),
        number=f"#{1000 + index}",
        placed_at=PLACED,
        shop_updated_at=PLACED,
        billing_address=ADDRESS,
        shipping_address=ADDRESS,
        lines=order_lines,
    )
    return Shipment(
        order=order,
        number=f"EXP-{index}",
        state=ShipmentState.SHIPPED,
        lines=[ShipmentLine(order_line=line, quantity=1) for line in order_lines],
        parcels=[Parcel(tracking_number=f"6A{index:09d}", weight_kg=Decimal("1.2"))],
    )


def merged(pages: list[bytes]) -> bytes:
    writer = pypdf.PdfWriter()
    for page in pages:
        writer.append(io.BytesIO(page))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--count", type=int, default=0, help="notes in one PDF; quick 30, full 500")
    parser.add_argument("--lines", type=int, default=5, help="lines per order")
    parser.add_argument("--repeat", type=int, default=0, help="quick 3, full 15")
    args = parser.parse_args()
    full = full_mode(args.full)
    count = args.count or (500 if full else 30)
    repeat = args.repeat or (15 if full else 3)
    report = Report("delivery notes", full=full)

    renderer = default_renderer()
    started = time.perf_counter()
    renderer.engine.pdf("<p></p>", renderer.assets)
    report.figure(
        "first render (imports WeasyPrint, loads fonts)", time.perf_counter() - started, "s"
    )

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "db").mkdir()
        url = f"sqlite:///{tmp}/db/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        storage = LocalStorage(Path(tmp) / "documents")
        with sessions.begin() as session:
            shop = Shop(
                key="bench", platform=Platform.SHOPIFY, name="Bench", base_url="https://b.test"
            )
            shipments = [shipped_order(shop, n, args.lines) for n in range(count + 1)]
            session.add_all(shipments)
        ids = [shipment.id for shipment in shipments]

        with sessions() as session:
            pages = []
            for number, shipment_id in enumerate(ids):
                shipment = session.get_one(Shipment, shipment_id)
                snapshot = delivery_notes.delivery_note_snapshot(
                    shipment, f"BL-2026-{number:06d}", PLACED.date(), False, "fr"
                )
                pages.append(render_html("delivery_note.html", {"doc": snapshot}, "fr"))
            first = delivery_notes.delivery_note_snapshot(
                session.get_one(Shipment, ids[0]), "BL-2026-000000", PLACED.date(), False, "fr"
            )
        engines = bare_engines(renderer.assets)
        if len(engines) == 1:
            report.note("wkhtmltopdf is not installed: no wkhtmltopdf baseline")
        for engine in engines.values():
            engine(pages[0])  # warm, as ours is
        one_bases = []
        for name, engine in engines.items():
            base = f"one delivery note ({args.lines} lines): the same HTML, {name}"
            report.baseline(base, median_ms(lambda e=engine: e(pages[0]), repeat), "ms")
            one_bases.append(base)
        one = median_ms(lambda: renderer.render("delivery_note.html", {"doc": first}, "fr"), repeat)
        for base in one_bases:
            report.figure(f"one delivery note ({args.lines} lines), Comptoir", one, "ms", base)

        many_bases = []
        for name, engine in engines.items():
            base = f"{count} notes as one PDF: the same HTML, {name}, merged"
            started = time.perf_counter()
            merged([engine(page) for page in pages[1:]])
            report.baseline(base, time.perf_counter() - started, "s")
            many_bases.append(base)

        started = time.perf_counter()
        documents = []
        for shipment_id in ids[1:]:
            with sessions.begin() as session:
                shipment = session.get_one(Shipment, shipment_id)
                document = delivery_notes.issue_delivery_note(
                    session, shipment, Actor.system(), storage=storage
                )
                documents.append(document.id)
        issued = time.perf_counter() - started
        with sessions() as session:
            started = time.perf_counter()
            pdf = issued_documents.combined_pdf(session, documents, storage)
            printed = time.perf_counter() - started
        page_count = len(pypdf.PdfReader(io.BytesIO(pdf)).pages)
        name = f"{count} notes as one PDF, Comptoir (issue each, then the bulk print)"
        for base in many_bases:
            report.figure(name, issued + printed, "s", base)
        report.figure(f"of which the bulk print of {count} stored notes", printed, "s")
    exact = page_count >= count and len(set(documents)) == count
    report.target(f"{count} notes issued, all in the one PDF", exact, f"{page_count} pages")
    sys.exit(report.finish() if exact else 1)


if __name__ == "__main__":
    main()
