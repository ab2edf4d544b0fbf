"""Time the tracking import and the ready-to-ship export on N orders, then print.

    .venv/bin/python bench/tracking_import.py [--count 1000] [--database-url URL]

A French Excel file (BOM, `;`, CRLF) with one row per order: read it, import it (each row
its own transaction: find, lock, ship everything that remains), import it again (every row
already there), and write the CSV of the orders ready to ship before the import.
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

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def timed(label: str, func: Callable[[], T], count: int) -> T:
    started = time.perf_counter()
    result = func()
    elapsed = time.perf_counter() - started
    print(f"{label:<42} {elapsed:8.2f} s  ({elapsed / count * 1000:.1f} ms a row)")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    count = args.count

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
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
            timed("ready-to-ship export", lambda: ready_to_ship.write_ready(out, session), count)
        rows = ["N° de commande;N° de suivi;Transporteur;Poids (kg)"]
        rows += [f"{1000 + n};6A{n:011d};;1,2" for n in range(1, count + 1)]
        data = ("\ufeff" + "\r\n".join(rows) + "\r\n").encode("utf-8")
        print(f"file: {count} rows, {len(data) / 1024:.0f} KiB")
        parsed = timed("read the file", lambda: tracking_import.parse(data), count)
        actor = Actor.system("bench")
        for label in ("first import (ships every order)", "second import (all already there)"):
            summary = timed(
                label, lambda: tracking_import.run_rows(sessions, parsed.rows, actor), count
            )
            print(f"  {summary.counts}")


if __name__ == "__main__":
    main()
