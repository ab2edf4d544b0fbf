"""How long a change takes to reach the shop through the outbox and the embedded worker.

    .venv/bin/python bench/outbox_latency.py [--changes 40] [--database-url URL]

A loopback WooCommerce emulator plays the shop. For each change (a comment for the buyer),
the clock runs from the commit of the change to the moment the shop receives the write,
with the embedded worker running as under `make run`. The baseline, measured in the same
run, is the connector writing the same comment directly (one read and one write over
loopback HTTP), so the ratio shows what the outbox adds on top of talking to the shop.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulators.woocommerce import WooCommerceEmulator  # noqa: E402
from web import crypto  # noqa: E402
from web.connectors import addresses  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models.orders import Order  # noqa: E402
from web.queue import EmbeddedWorker  # noqa: E402
from web.services import comments, intake, shops  # noqa: E402
from web.services.sync import run_sync  # noqa: E402
from web.services.timeline import Actor  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    # The shops here are on loopback (emulators, this run's gunicorn): allowed for the bench
    # process and the processes it starts, as in the tests.
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--changes", type=int, default=40)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, WooCommerceEmulator() as woo:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        payload = copy.deepcopy(json.loads(FIXTURE.read_text()))
        payload["status"] = "processing"
        external_id = woo.add_order(payload)  # type: ignore[attr-defined]
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "woocommerce",
                "Bench",
                woo.base_url,
                api_key=woo.consumer_key,  # type: ignore[attr-defined]
                api_secret=woo.consumer_secret,  # type: ignore[attr-defined]
            )
            shop.poll_interval_seconds = 86_400
            connector = shops.connector_for(shop)
            incoming = connector.fetch_order(external_id)
            order = intake.upsert_order(session, shop, incoming, Actor.shop()).order
            assert order is not None
            order_id = order.id

        direct = []
        for index in range(args.changes):
            start = time.perf_counter()
            connector.push_comment(external_id, f"direct {index}", customer_visible=False)
            direct.append((time.perf_counter() - start) * 1000)

        worker = EmbeddedWorker(sessions, 1.0, tick=lambda: run_sync(sessions))
        worker.start()
        time.sleep(1.5)  # let the first poll of the new shop pass
        latencies = []
        try:
            for index in range(args.changes):
                text = f"Message {index} pour l'acheteur"
                with sessions.begin() as session:
                    order = session.get_one(Order, order_id)
                    comments.add_comment(session, order, Actor.system("bench"), text, "customer")
                start = time.perf_counter()
                while not any(n["note"] == text for n in woo.notes.get(external_id, [])):  # type: ignore[attr-defined]
                    if time.perf_counter() - start > 10:
                        raise SystemExit(f"change {index} never reached the shop")
                    time.sleep(0.001)
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.05)
        finally:
            worker.stop()
            worker.join(timeout=10)

        base = statistics.median(direct)
        median = statistics.median(latencies)
        print(
            f"database: {url.split(':', 1)[0]}, {args.changes} changes, WooCommerce over loopback"
        )
        print(f"baseline  direct connector write (read + write)  median {base:7.1f} ms  1.0x")
        print(
            f"outbox    commit -> shop received, embedded worker median {median:7.1f} ms  "
            f"{median / base:.1f}x   p95 {percentile(latencies, 0.95):.1f} ms   "
            f"max {max(latencies):.1f} ms"
        )


if __name__ == "__main__":
    main()
