"""Time the tracking import and the ready-to-ship export on N orders, then print.

    .venv/bin/python bench/tracking_import.py [--full] [--count N]

A French Excel file (BOM, `;`, CRLF) with one row per order: read it, import it (each row
its own transaction: find, lock, ship everything that remains), import it again (every row
already there: the baseline, same run), and write the CSV of the orders ready to ship
before the import. SQLite. Exits non-zero when an order is not shipped once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _report import Report, full_mode  # noqa: E402

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import Order, OrderLine, Shop  # noqa: E402
from web.models.enums import CommercialState, PaymentState, Platform  # noqa: E402
from web.services import ready_to_ship, tracking_import  # noqa: E402
from web.services.shipping_modes import ensure_default_shipping_modes  # noqa: E402
from web.services.timeline import Actor  # noqa: E402

T = TypeVar("T")
PLACED = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
ADDRESS = {
    "first_name": "Marie",
    "last_name": "Curie",
    "line1": "11 rue Pierre et Marie Curie",
    "postcode": "75005",
    "city": "Paris",
    "country_code": "FR",
    "phone": "+33 1 23 45 67 89",
}


def ready_order(shop: Shop, n: int, mode_id: int) -> Order:
    line = OrderLine(sku="MUG", name="Mug", quantity=2, unit_price=Decimal("12.00"))
    return Order(
        shop=shop,
        external_id=str(9000 + n),
        number=f"#{1000 + n}",
        placed_at=PLACED,
        shop_updated_at=PLACED,
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        shipping_mode_id=mode_id,
        shipping_address=ADDRESS,
        grand_total=Decimal("24.00"),
        lines=[line],
    )


def timed(func: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    result = func()
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--count", type=int, default=0, help="orders; quick 200, full 1000")
    args = parser.parse_args()
    full = full_mode(args.full)
    count = args.count or (1000 if full else 200)
    report = Report("tracking import and ready-to-ship export", full=full)

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "db").mkdir()
        url = f"sqlite:///{tmp}/db/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        with sessions.begin() as session:
            mode = ensure_default_shipping_modes(session)["colissimo"]
            session.flush()
            shop = Shop(
                key="bench", platform=Platform.SHOPIFY, name="Bench", base_url="https://b.test"
            )
            session.add_all(ready_order(shop, n, mode.id) for n in range(1, count + 1))

        with sessions() as session:
            out = io.StringIO()
            _, export = timed(lambda: ready_to_ship.write_ready(out, session))
        rows = ["N° de commande;N° de suivi;Transporteur;Poids (kg)"]
        rows += [f"{1000 + n};6A{n:011d};;1,2" for n in range(1, count + 1)]
        data = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")
        parsed, read = timed(lambda: tracking_import.parse(data))
        actor = Actor.system("bench")
        first, shipping = timed(lambda: tracking_import.run_rows(sessions, parsed.rows, actor))
        again, noop = timed(lambda: tracking_import.run_rows(sessions, parsed.rows, actor))

    base = f"second import, {count} rows all already there (find, lock, nothing to do)"
    report.baseline(base, 1000 * noop / count, "ms/row")
    report.figure(
        f"first import, {count} rows (ships every order)", 1000 * shipping / count, "ms/row", base
    )
    report.figure(f"read the file ({len(data) / 1024:.0f} KiB)", 1000 * read / count, "ms/row")
    report.figure(f"ready-to-ship export, {count} orders", 1000 * export / count, "ms/row")
    created = {"created": count, "completed": 0, "already_there": 0, "refused": 0}
    there = {"created": 0, "completed": 0, "already_there": count, "refused": 0}
    print(f"first import {first.counts}; second import {again.counts}")
    exact = first.counts == created and again.counts == there
    report.target("every order shipped once, found already there the second time", exact)
    sys.exit(report.finish() if exact else 1)


if __name__ == "__main__":
    main()
