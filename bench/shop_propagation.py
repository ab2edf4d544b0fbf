"""PrestaShop and Magento change → order on the desk, with the companion module and without.

    .venv/bin/python bench/shop_propagation.py [--full] [--changes N] [--probe-changes N]
        [--probe-interval S] [--platforms prestashop,magento] [--sqlite-only]

For each database (a temporary SQLite file; PostgreSQL in a fresh database next to
BENCH_DATABASE_URL when set) and each platform, the app is served as outbox_latency.py serves
it (Werkzeug, threaded, its embedded worker in the same process, on a free loopback port) and
a loopback emulator plays the shop. A change is a new order at the emulator, stamped now; the
clock runs from the change to the moment the order is listed by the JSON API
(GET /api/v1/orders?number=, polled every 10 ms with a bearer token) — what a person reloading
the desk would see.

With the module: right after the change, the module's own PHP (its notifier, signing and curl
transport as shipped, in a PHP process of its own: tests/modules/drivers.py) sends the
`order.created` notification; PHP start-up is inside the figure. The shop's change probe is set
to a day, so the figure is the notification's alone. Baseline, same run: the PHP run itself
(change → Comptoir answered "stored"), so the ratio shows what the worker's read of the order
from the shop adds.

Without: no notification, only the change probe at its interval — 30 s, its default, in full
mode; 5 s in quick mode (the 30-second floor lowered in this process only), named in every
figure. Each change is made at a random offset into the probe's cycle. Baseline: the interval
itself (a change made just after a probe waits that long for the next one), so the ratio shows
how far the worst case goes past the one wait nobody can avoid.

Targets (issue 14): p95 ≤ 1 s with the module; p95 ≤ interval + 5 s without (35 s at 30 s).
"""

from __future__ import annotations

import argparse
import copy
import logging
import os
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from defusedxml import ElementTree as SafeET

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import measured_databases, percentile  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from tests.emulators.magento import MagentoEmulator  # noqa: E402
from tests.emulators.prestashop import (  # noqa: E402
    DEFAULT_KEY,
    PrestaShopEmulator,
    record_from_element,
)
from tests.live import serving  # noqa: E402
from tests.modules.drivers import notify  # noqa: E402
from tests.sync.test_magento_e2e import fixture as magento_fixture  # noqa: E402
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED  # noqa: E402
from web.app import create_app  # noqa: E402
from web.connectors import addresses  # noqa: E402
from web.models import Shop  # noqa: E402
from web.services import shops, sync, users  # noqa: E402

DEFAULT_PROBE_SECONDS = 30
QUICK_PROBE_SECONDS = 5
MODULE_TIMEOUT = 15.0  # seconds for a notified order to show before the run is called broken


@dataclass
class Change:
    order_id: str
    date_upd: str  # as the shop stores it
    number: str  # as the API lists it


@contextmanager
def prestashop_shop() -> Iterator[tuple[Any, str, Callable[[int], Change]]]:
    """The emulator, its API key, and how to make a new order there (stamped now)."""
    with PrestaShopEmulator() as emulator:
        for name in RELATED:
            emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        element = SafeET.fromstring((FIXTURES / "fr-order-101.xml").read_bytes()).find("order")
        assert element is not None
        template = record_from_element(element)

        def add(index: int) -> Change:
            now = emulator.now()  # type: ignore[attr-defined]
            order_id, reference = str(600_000 + index), f"BENCH{index:06d}"
            order = {**template, "id": order_id, "reference": reference}
            emulator.add("orders", {**order, "date_add": now, "date_upd": now})  # type: ignore[attr-defined]
            return Change(order_id, now, reference)

        yield emulator, DEFAULT_KEY, add


@contextmanager
def magento_shop() -> Iterator[tuple[Any, str, Callable[[int], Change]]]:
    with MagentoEmulator() as emulator:
        template = magento_fixture("fr-order-relay-coupon.json")
        for name in ("entity_id", "increment_id", "created_at", "updated_at"):
            template.pop(name, None)

        def add(index: int) -> Change:
            stored = emulator.add_order(copy.deepcopy(template))  # type: ignore[attr-defined]
            return Change(str(stored["entity_id"]), stored["updated_at"], stored["increment_id"])

        yield emulator, emulator.token, add  # type: ignore[attr-defined]


SHOPS = {"prestashop": prestashop_shop, "magento": magento_shop}


def wait_listed(
    client: httpx.Client, shop_key: str, number: str, start: float, timeout: float
) -> float:
    """Poll the API until the shop's order is listed; seconds since `start`."""
    while True:
        found = client.get("/api/v1/orders", params={"shop": shop_key, "number": number})
        if found.status_code == 200 and found.json()["total"] == 1:
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"order {number} never appeared: {found.status_code} {found.text}")
        time.sleep(0.01)


def propagation(
    url: str, tmp: str, key: str, platform: str, changes: int, interval: int | None
) -> tuple[list[float], list[float]]:
    """Seconds from each change to the order listed; with the module (`interval` None) also
    the PHP run's own seconds, else [] for them."""
    name = f"{platform}-{'module' if interval is None else 'probe'}-{time.monotonic_ns()}"
    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "bench",
            "ENCRYPTION_KEY": key,
            "ALLOW_PRIVATE_SHOP_URLS": True,
            "INSTANCE_PATH": f"{tmp}/instance-{name}",
        }
    )
    sessions = app.extensions["comptoir.sessions"]
    visible: list[float] = []
    answered: list[float] = []
    rng = random.Random(14)
    with SHOPS[platform]() as (emulator, api_key, add):
        first = add(0)  # in the first poll's window: the shop's first (full) poll reads it
        with serving(app) as base_url:
            with sessions.begin() as session:
                shop = shops.create_shop(
                    session, platform, f"Bench {name}", emulator.base_url, api_key=api_key
                )
                shop.poll_interval_seconds = 86_400 if interval is None else interval
                webhook_url, secret = shops.webhook_url(base_url, shop), shop.webhook_secret or ""
                shop_key, shop_id = shop.key, shop.id
                user, _ = users.create_user(session, f"{name}@example.com", "viewer")
                token = users.create_api_token(session, user, "bench")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
                # The shop's first poll: the probe runs from the cursor it leaves.
                started = time.perf_counter()
                wait_listed(client, shop_key, first.number, started, 30 + (interval or 0))
                for index in range(1, changes + 1):
                    if interval is not None:
                        time.sleep(rng.uniform(0, interval))
                    start = time.perf_counter()
                    change = add(index)
                    if interval is None:
                        said = notify(
                            platform,
                            webhook_url,
                            secret,
                            change.order_id,
                            change.date_upd,
                            "order.created",
                        )
                        answered.append(time.perf_counter() - start)
                        if not said["accepted"]:
                            raise SystemExit(f"the notification was refused: {said}")
                    timeout = MODULE_TIMEOUT if interval is None else 2 * interval + 60
                    visible.append(wait_listed(client, shop_key, change.number, start, timeout))
            with sessions.begin() as session:  # the app of the next run shares the database
                session.get_one(Shop, shop_id).is_active = False
    return visible, answered


def report_module(report: Report, label: str, visible: list[float], answered: list[float]) -> None:
    base = f"{label}: the module's PHP run (change → stored), median"
    report.baseline(base, statistics.median(answered) * 1000, "ms")
    median = statistics.median(visible) * 1000
    report.figure(f"{label}: with the module, change → in the API, median", median, "ms", base)
    p95 = percentile(visible, 0.95) * 1000
    report.figure(f"{label}: with the module, change → in the API, p95", p95, "ms", base)
    report.target(f"{label}: with the module, p95 ≤ 1 s", p95 <= 1000, f"{p95:.0f} ms")


def report_probe(report: Report, label: str, visible: list[float], interval: int) -> None:
    every = f"probe every {interval} s"
    base = f"{label}: the probe interval ({every})"
    report.baseline(base, float(interval), "s")
    median = statistics.median(visible)
    report.figure(f"{label}: without the module ({every}), median", median, "s", base)
    p95 = percentile(visible, 0.95)
    report.figure(f"{label}: without the module ({every}), p95", p95, "s", base)
    aim = interval + 5
    aim_name = f"{label}: without the module ({every}), p95 ≤ {aim} s"
    report.target(aim_name, p95 <= aim, f"{p95:.1f} s")


def main() -> None:
    # The shops here are on loopback (emulators): allowed for the bench process, as in tests.
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--changes", type=int, default=0, help="with the module; quick 8, full 50")
    parser.add_argument("--probe-changes", type=int, default=0, help="without; quick 2, full 20")
    parser.add_argument("--probe-interval", type=int, default=0, help="seconds; quick 5, full 30")
    parser.add_argument("--platforms", default="prestashop,magento")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    full = full_mode(args.full)
    changes = args.changes or (50 if full else 8)
    probe_changes = args.probe_changes or (20 if full else 2)
    interval = args.probe_interval or (DEFAULT_PROBE_SECONDS if full else QUICK_PROBE_SECONDS)
    platforms = [name for name in args.platforms.split(",") if name]
    report = Report("PrestaShop and Magento change → desk", full=full)
    if interval < DEFAULT_PROBE_SECONDS:
        # Shops are never polled more often than every 30 s; this process only, to stay short.
        sync.MIN_POLL_SECONDS = interval
        report.note(f"the change probe every {interval} s (its default is 30 s: BENCH_FULL=1)")
    for kind, url, tmp, key in measured_databases(report, args.sqlite_only):
        for platform in platforms:
            label = f"{kind} {platform}"
            visible, answered = propagation(url, tmp, key, platform, changes, None)
            report_module(report, label, visible, answered)
            visible, _ = propagation(url, tmp, key, platform, probe_changes, interval)
            report_probe(report, label, visible, interval)
    sys.exit(report.finish())


if __name__ == "__main__":
    main()
