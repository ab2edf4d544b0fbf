"""Propagation through the embedded worker, both ways: desk → shop and shop → desk.

    .venv/bin/python bench/outbox_latency.py [--full] [--changes N] [--sqlite-only]

For each database (a temporary SQLite file; PostgreSQL in a fresh database next to
BENCH_DATABASE_URL when set), a loopback WooCommerce emulator plays the shop.

Outbound: for each change (a comment for the buyer), the clock runs from the commit of the
change to the moment the shop receives the write, with the embedded worker running as under
`make run`. The baseline, same run: the connector writing the same comment directly (one
read and one write over loopback HTTP), so the ratio shows what the outbox adds.

Inbound: the app served as `flask serve` does (Werkzeug, threaded, its embedded worker in the
same process) on a free loopback port; for each new order the shop POSTs its signed
`order.created` webhook, and the clock runs from the POST to the moment the order is listed
by the JSON API (GET /api/v1/orders?number=, polled every 5 ms with a bearer token) — what a
person reloading the desk would see. The baseline, same run: the webhook's own round trip
(answered once the delivery is stored), so the ratio shows what the worker adds.

Target (issue 13): p95 ≤ 1 s both ways.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import httpx
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import free_port, measured_databases, percentile  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from tests.emulators.woocommerce import WooCommerceEmulator  # noqa: E402
from web.app import create_app  # noqa: E402
from web.connectors import addresses  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.jobs import start_worker  # noqa: E402
from web.models.orders import Order  # noqa: E402
from web.queue import EmbeddedWorker  # noqa: E402
from web.services import comments, intake, shops, users  # noqa: E402
from web.services.sync import run_sync  # noqa: E402
from web.services.timeline import Actor  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"
PAID_FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-variation-virtual.json"


def outbound(url: str, changes: int, kind: str, report: Report) -> None:
    """Desk change → request received by the shop emulator."""
    with WooCommerceEmulator() as woo:
        sessions = make_session_factory(make_engine(url))
        payload = copy.deepcopy(json.loads(FIXTURE.read_text()))
        payload["status"] = "processing"
        external_id = woo.add_order(payload)
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "woocommerce",
                "Bench",
                woo.base_url,
                api_key=woo.consumer_key,
                api_secret=woo.consumer_secret,
            )
            shop.poll_interval_seconds = 86_400
            connector = shops.connector_for(shop)
            incoming = connector.fetch_order(external_id)
            order = intake.upsert_order(session, shop, incoming, Actor.shop()).order
            assert order is not None
            order_id = order.id

        direct = []
        for index in range(changes):
            start = time.perf_counter()
            connector.push_comment(external_id, f"direct {index}", customer_visible=False)
            direct.append((time.perf_counter() - start) * 1000)

        worker = EmbeddedWorker(sessions, 1.0, tick=lambda: run_sync(sessions))
        worker.start()
        time.sleep(1.5)  # let the first poll of the new shop pass
        latencies = []
        try:
            for index in range(changes):
                text = f"Message {index} pour l'acheteur"
                with sessions.begin() as session:
                    order = session.get_one(Order, order_id)
                    comments.add_comment(session, order, Actor.system("bench"), text, "customer")
                start = time.perf_counter()
                while not any(n["note"] == text for n in woo.notes.get(external_id, [])):
                    if time.perf_counter() - start > 10:
                        raise SystemExit(f"change {index} never reached the shop")
                    time.sleep(0.001)
                latencies.append((time.perf_counter() - start) * 1000)
                time.sleep(0.05)
        finally:
            worker.stop()
            worker.join(timeout=10)
            sessions.kw["bind"].dispose()

    base = f"{kind}: direct connector write (read + write), median"
    report.baseline(base, statistics.median(direct), "ms")
    report.figure(
        f"{kind}: desk commit → shop received, median", statistics.median(latencies), "ms", base
    )
    p95 = percentile(latencies, 0.95)
    report.figure(f"{kind}: desk commit → shop received, p95", p95, "ms", base)
    report.target(f"{kind}: desk → shop p95 ≤ 1 s", p95 <= 1000, f"{p95:.0f} ms")


def inbound(url: str, tmp: str, key: str, changes: int, kind: str, report: Report) -> None:
    """Shop webhook → order listed by the API, the app and its embedded worker serving."""
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEY": key,
            "ALLOW_PRIVATE_SHOP_URLS": True,
            "INSTANCE_PATH": f"{tmp}/instance-{kind}",
        }
    )
    sessions = app.extensions["comptoir.sessions"]
    with WooCommerceEmulator() as woo:
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "woocommerce",
                "Bench in",
                woo.base_url,
                api_key=woo.consumer_key,
                api_secret=woo.consumer_secret,
                webhook_secret=woo.webhook_secret,
            )
            shop.poll_interval_seconds = 86_400
            hook = f"/hooks/woocommerce/{shop.key}"
            user, _ = users.create_user(session, "bench@example.com", "viewer")
            token = users.create_api_token(session, user, "bench")
        port = free_port()
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
        server = make_server("127.0.0.1", port, app, threaded=True)
        serving = threading.Thread(target=server.serve_forever, daemon=True)
        serving.start()
        worker = start_worker(app)
        payload = json.loads(PAID_FIXTURE.read_text())
        answered, visible = [], []
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
                time.sleep(1.0)  # the worker's first tick (the new shop's first poll) passes
                for index in range(changes + 2):  # the first two warm the server up
                    number = 700_000 + index
                    order = copy.deepcopy(payload)
                    order["id"], order["number"] = number, str(number)
                    woo.add_order(order)
                    body, signed = woo.webhook("order.created", number)
                    start = time.perf_counter()
                    response = client.post(hook, content=body, headers=signed)
                    stored = time.perf_counter()
                    assert response.status_code == 200, response.text
                    while True:
                        found = client.get(f"/api/v1/orders?number={number}", headers=headers)
                        if found.status_code == 200 and found.json()["total"] == 1:
                            break
                        if time.perf_counter() - start > 10:
                            raise SystemExit(f"order {number} never appeared: {found.text}")
                        time.sleep(0.005)
                    if index >= 2:
                        answered.append((stored - start) * 1000)
                        visible.append((time.perf_counter() - start) * 1000)
        finally:
            worker.stop()
            worker.join(timeout=10)
            server.shutdown()
            app.extensions["comptoir.engine"].dispose()

    base = f"{kind}: webhook answered (stored), median"
    report.baseline(base, statistics.median(answered), "ms")
    report.figure(
        f"{kind}: webhook sent → order in the API, median", statistics.median(visible), "ms", base
    )
    p95 = percentile(visible, 0.95)
    report.figure(f"{kind}: webhook sent → order in the API, p95", p95, "ms", base)
    report.target(f"{kind}: shop → desk p95 ≤ 1 s", p95 <= 1000, f"{p95:.0f} ms")


def main() -> None:
    # The shops here are on loopback (emulators): allowed for the bench process, as in tests.
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--changes", type=int, default=0, help="each way; quick 20, full 100")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    full = full_mode(args.full)
    changes = args.changes or (100 if full else 20)
    report = Report("propagation through the embedded worker", full=full)
    for kind, url, tmp, key in measured_databases(report, args.sqlite_only):
        outbound(url, changes, kind, report)
        inbound(url, tmp, key, changes, kind, report)
    sys.exit(report.finish())


if __name__ == "__main__":
    main()
