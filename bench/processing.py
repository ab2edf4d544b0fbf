"""Inbox events → orders with one worker, against a bare insert of the same rows, same run.

    .venv/bin/python bench/processing.py [--full] [--orders N] [--sqlite-only]

For each database (a temporary SQLite file; PostgreSQL in a fresh database next to
BENCH_DATABASE_URL when set), a WooCommerce shop (the loopback emulator) delivers N signed
`order.created` webhooks of a typical order — 3 lines, paid by card (date_paid set), from
tests/fixtures — stored in the inbox beforehand. Then one worker, in a process of its own,
works the inbox as `flask worker` does (`sync.process_pending`, each event its own
transaction): orders per second, and the worker's peak memory (the process's maximum RSS,
and, on a second smaller batch, the peak of Python allocations under tracemalloc).

The baseline, same run, same database kind: every row the worker inserted (orders, lines,
payments, timeline, outbox, ...: found by comparing each table before and after) inserted
again into a fresh, migrated database with plain INSERT statements through a DB-API
connection (sqlite3 / psycopg), one transaction per order, as the worker commits. The ratio
is what parsing, checking, mapping and the ORM cost on top of writing the rows. The worker also
updates each inbox row (processed); the baseline does not.

Every event must end processed, one order each: the script exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import Table, func, select
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import bench_database, database_kinds, deliver_woocommerce_orders  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from tests.emulators.woocommerce import WooCommerceEmulator  # noqa: E402
from web import crypto  # noqa: E402
from web.connectors import addresses  # noqa: E402
from web.db import add_sqlite_functions, make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import InboxEvent, Order  # noqa: E402
from web.models.base import Base  # noqa: E402
from web.models.enums import InboxState  # noqa: E402
from web.services import shops, sync  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-variation-virtual.json"


def deliver(url: str, emulator: WooCommerceEmulator, shop_id: int, ids: range) -> None:
    """Store the signed deliveries in the inbox (not timed), 50 per transaction."""
    engine = make_engine(url)
    deliver_woocommerce_orders(make_session_factory(engine), shop_id, emulator, ids, FIXTURE)
    engine.dispose()


def worker(url: str, key: str, tmp: str, shop_id: int, traced: bool, results: Any) -> None:
    """The worker process: warm, then work the whole inbox; its time and memory."""
    addresses.configure(allow_private=True)
    crypto.configure(key, tmp)
    sessions = make_session_factory(make_engine(url))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    tried = sync.process_pending(sessions, shop_id, limit=1_000_000)
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put((tried, elapsed, rss_before * 1024, rss_after * 1024, peak))


def run_worker(url: str, key: str, tmp: str, shop_id: int, traced: bool) -> tuple[Any, ...]:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    process = context.Process(target=worker, args=(url, key, tmp, shop_id, traced, results))
    process.start()
    outcome = results.get(timeout=3600)
    process.join(timeout=60)
    return tuple(outcome)


# --- the rows, and their bare insert ------------------------------------------------------


def _raw(url: str) -> Any:
    """A DB-API connection whose values come back as the driver gives them (JSON as text)."""
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        conn = sqlite3.connect(sa_url.database or "", isolation_level=None)
        add_sqlite_functions(conn)  # the search index's triggers call them
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    import psycopg
    from psycopg.types.string import TextLoader

    conn = psycopg.connect(
        host=sa_url.host,
        port=sa_url.port,
        user=sa_url.username,
        password=sa_url.password,
        dbname=sa_url.database,
        autocommit=True,
    )
    for name in ("json", "jsonb"):
        conn.adapters.register_loader(name, TextLoader)
    return conn


# Rows the database's own triggers write (web/state_counts.py): the bare insert's triggers
# write them again, as the worker's did.
KEPT_BY_TRIGGERS = frozenset({"order_state_counts"})


def _tables() -> list[Table]:
    return [
        table
        for table in Base.metadata.sorted_tables
        if table.primary_key.columns and table.name not in KEPT_BY_TRIGGERS
    ]


def rows_of(url: str) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every row of every table, by primary key, as the DB-API driver reads them."""
    conn = _raw(url)
    found: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    try:
        for table in _tables():
            columns = [column.name for column in table.columns]
            keys = [columns.index(column.name) for column in table.primary_key.columns]
            quoted = ", ".join(f'"{name}"' for name in columns)
            rows = conn.execute(f'SELECT {quoted} FROM "{table.name}"').fetchall()
            found[table.name] = {tuple(row[k] for k in keys): tuple(row) for row in rows}
    finally:
        conn.close()
    return found


def bare_insert(
    url: str,
    before: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]],
    after: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]],
) -> tuple[float, int, int]:
    """Copy `before` into the fresh database `url` (not timed), then insert the rows the
    worker added, one transaction per order; (seconds, transactions, rows)."""
    placeholder = "?" if url.startswith("sqlite") else "%s"
    conn = _raw(url)
    per_order: dict[Any, list[tuple[str, tuple[Any, ...]]]] = defaultdict(list)
    first: list[tuple[str, tuple[Any, ...]]] = []
    last: list[tuple[str, tuple[Any, ...]]] = []
    tables = _tables()
    seen_orders = False
    statements = {}
    for table in tables:
        columns = [column.name for column in table.columns]
        quoted = ", ".join(f'"{name}"' for name in columns)
        marks = ", ".join([placeholder] * len(columns))
        statements[table.name] = f'INSERT INTO "{table.name}" ({quoted}) VALUES ({marks})'
        group = "id" if table.name == "orders" else "order_id" if "order_id" in columns else ""
        seen_orders = seen_orders or table.name == "orders"
        added = [row for key, row in after[table.name].items() if key not in before[table.name]]
        for row in added:
            if group and row[columns.index(group)] is not None:
                per_order[row[columns.index(group)]].append((table.name, row))
            else:
                (last if seen_orders else first).append((table.name, row))
    try:
        existing = rows_of(url)
        conn.execute("BEGIN")
        for table in tables:
            for key, row in before[table.name].items():
                if key not in existing[table.name]:
                    conn.execute(statements[table.name], row)
        conn.execute("COMMIT")
        units = [first, *per_order.values(), last]
        started = time.perf_counter()
        for unit in units:
            if not unit:
                continue
            conn.execute("BEGIN")
            for name, row in unit:
                conn.execute(statements[name], row)
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        conn.close()
    return elapsed, len(per_order), sum(len(unit) for unit in units)


# --- the run ------------------------------------------------------------------------------


def check(url: str, expected: int, label: str) -> bool:
    engine = make_engine(url)
    with engine.connect() as conn:
        orders = conn.scalar(select(func.count(Order.id)))
        states = dict(
            conn.execute(select(InboxEvent.state, func.count()).group_by(InboxEvent.state)).all()
        )
    engine.dispose()
    processed = states.get(InboxState.PROCESSED, 0)
    exact = orders == expected and processed == expected and sum(states.values()) == expected
    if not exact:
        print(f"{label}: {orders} orders for {expected} events, inbox states {states}")
    return exact


def run_database(kind: str, orders: int, warmup: bool, tmp: str, report: Report) -> bool:
    key = Fernet.generate_key().decode()
    crypto.configure(key, tmp)
    with (
        WooCommerceEmulator() as woo,
        bench_database(kind, tmp) as url,
        bench_database(kind, tmp) as bare_url,
    ):
        upgrade(url)
        upgrade(bare_url)
        sessions = make_session_factory(make_engine(url))
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "woocommerce",
                "Bench",
                woo.base_url,
                api_key=woo.consumer_key,
                api_secret=woo.consumer_secret,
                webhook_secret=woo.webhook_secret,
            )
            shop.poll_interval_seconds = 86_400
            shop_id = shop.id
        sessions.kw["bind"].dispose()
        warm = max(10, orders // 10) if warmup else 0
        if warm:
            deliver(url, woo, shop_id, range(1, warm + 1))
            run_worker(url, key, tmp, shop_id, traced=False)  # compiled statements, pyc
        deliver(url, woo, shop_id, range(1000, 1000 + orders))
        before = rows_of(url)
        calls = len(woo.requests)
        tried, elapsed, rss_start, rss_peak, _ = run_worker(url, key, tmp, shop_id, traced=False)
        after = rows_of(url)
        calls = len(woo.requests) - calls
        exact = check(url, warm + orders, kind)
        traced_count = max(5, orders // 4)
        deliver(url, woo, shop_id, range(100_000, 100_000 + traced_count))
        *_, traced_peak = run_worker(url, key, tmp, shop_id, traced=True)
        exact = check(url, warm + orders + traced_count, kind) and exact
        bare_seconds, units, rows = bare_insert(bare_url, before, after)

    base = f"{kind}: bare INSERT of the same rows ({rows // max(units, 1)} rows/order)"
    report.baseline(base, units / bare_seconds, "orders/s")
    report.figure(
        f"{kind}: inbox → orders, one worker ({tried} events)", tried / elapsed, "orders/s", base
    )
    report.figure(f"{kind}: requests to the shop per order", calls / tried, "requests")
    report.figure(f"{kind}: worker peak RSS", rss_peak / 2**20, "MiB")
    report.figure(
        f"{kind}: worker RSS growth while processing", (rss_peak - rss_start) / 2**20, "MiB"
    )
    report.figure(
        f"{kind}: peak Python allocations, {traced_count} events (tracemalloc)",
        traced_peak / 2**20,
        "MiB",
    )
    report.target(f"{kind}: every event processed into one order", exact)
    return exact


def main() -> None:
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--orders", type=int, default=0, help="quick 150, full 2000")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--no-warmup", action="store_true", help="tests only: no warm-up run")
    args = parser.parse_args()
    full = full_mode(args.full)
    orders = args.orders or (2000 if full else 150)
    report = Report("inbox processing", full=full)
    kinds = ["sqlite"] if args.sqlite_only else database_kinds()
    if "postgresql" not in kinds:
        report.note("PostgreSQL not measured (no BENCH_DATABASE_URL)")
    with tempfile.TemporaryDirectory() as tmp:
        exact = [run_database(kind, orders, not args.no_warmup, tmp, report) for kind in kinds]
    status = report.finish()
    sys.exit(status if all(exact) else 1)


if __name__ == "__main__":
    main()
