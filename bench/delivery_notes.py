"""Time delivery notes: render one, and issue many (number, render, store, row), then print.

    .venv/bin/python bench/delivery_notes.py [--count 500] [--repeat 15] [--database-url URL]

Baselines measured in the same run, so machines of different speed compare: an empty page
printed by the same engine (WeasyPrint's fixed cost), and an empty page with our stylesheet.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.documents import delivery_notes  # noqa: E402
from web.documents.render import default_renderer  # noqa: E402
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


def median_ms(func: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--lines", type=int, default=5, help="lines per order")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    renderer = default_renderer()
    started = time.perf_counter()
    renderer.engine.pdf("<p></p>", renderer.assets)
    print(f"first render (imports WeasyPrint, loads fonts): {time.perf_counter() - started:.2f} s")
    empty = median_ms(lambda: renderer.engine.pdf("<p></p>", renderer.assets), args.repeat)
    styled_html = '<link rel="stylesheet" href="asset:document.css"><p></p>'
    styled = median_ms(lambda: renderer.engine.pdf(styled_html, renderer.assets), args.repeat)
    print(f"baseline, an empty page:                   {empty:8.1f} ms")
    print(f"baseline, an empty page with our CSS:      {styled:8.1f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        storage = LocalStorage(Path(tmp) / "documents")
        with sessions.begin() as session:
            shop = Shop(
                key="bench", platform=Platform.SHOPIFY, name="Bench", base_url="https://b.test"
            )
            shipments = [shipped_order(shop, n, args.lines) for n in range(args.count + 1)]
            session.add_all(shipments)
        ids = [shipment.id for shipment in shipments]

        with sessions() as session:
            shipment = session.get(Shipment, ids[0])
            assert shipment is not None
            snapshot = delivery_notes.delivery_note_snapshot(
                shipment, "BL-2026-000000", PLACED.date(), False, "fr"
            )
        one = median_ms(
            lambda: renderer.render("delivery_note.html", {"doc": snapshot}, "fr"), args.repeat
        )
        print(
            f"render one delivery note ({args.lines} lines):     {one:8.1f} ms"
            f"  ({one / empty:.1f} x the empty page)"
        )

        started = time.perf_counter()
        for shipment_id in ids[1:]:
            with sessions.begin() as session:
                shipment = session.get(Shipment, shipment_id)
                assert shipment is not None
                delivery_notes.issue_delivery_note(
                    session, shipment, Actor.system(), storage=storage
                )
        total = time.perf_counter() - started
        print(
            f"issue {args.count} delivery notes, one after another: {total:8.1f} s"
            f"  ({1000 * total / args.count:.1f} ms each, {url.split(':')[0]})"
        )


if __name__ == "__main__":
    main()
