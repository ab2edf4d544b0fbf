"""The AWS shape: intake events per second through SQS (start-up imports: bench/startup.py).

    .venv/bin/python bench/aws.py [--full] [--events N] [--sqlite-only]

For each database (a temporary SQLite file; in full mode also PostgreSQL, a fresh database
next to BENCH_DATABASE_URL when set):
intake throughput: --events signed WooCommerce `order.created` deliveries go through the
   webhook service (signature checked, inbox row stored, its id sent to the intake FIFO queue
   of a stack deployed from infra/cloudformation.json on a moto server on loopback); then
   consumers invoke sync_lambdas.intake as Lambda's event source mapping does
   (`driver.consume_once`: receive, invoke, delete what did not fail), with 1 and with 4
   concurrent consumers, each in its own interpreter as each Lambda execution is (its cold
   start done before the clock starts), the clock running until the last order is created.
   The baseline, same run, same database, same kind of events: the local worker's
   `process_pending` working the same number of stored events.

Figures only, no target; the runs check their own results (every delivery made exactly one
order) and the script exits non-zero otherwise.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import secrets
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import bench_database, database_kinds, deliver_woocommerce_orders  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from sync_lambdas import driver, runtime  # noqa: E402
from tests.emulators.woocommerce import WooCommerceEmulator  # noqa: E402
from web import aws, queue  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import InboxEvent, Order  # noqa: E402
from web.models.enums import InboxState  # noqa: E402
from web.services import shops, sync  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- 1. cold-start imports ----------------------------------------------------------------


# --- 2. intake throughput -----------------------------------------------------------------


def deliver(
    sessions: sessionmaker[Session], shop_id: int, emulator: WooCommerceEmulator, ids: range
) -> None:
    deliver_woocommerce_orders(sessions, shop_id, emulator, ids, FIXTURE)


def orders_made(sessions: sessionmaker[Session], ids: range) -> int:
    external = [str(i) for i in ids]
    with sessions() as session:
        query = select(func.count(Order.id)).where(Order.external_id.in_(external))
        return int(session.scalar(query) or 0)


def check(sessions: sessionmaker[Session], ids: range, label: str) -> None:
    """Every delivery made exactly one order; no event left pending."""
    made = orders_made(sessions, ids)
    with sessions() as session:
        pending = session.scalar(
            select(func.count(InboxEvent.id)).where(
                InboxEvent.external_order_id.in_([str(i) for i in ids]),
                InboxEvent.state != InboxState.PROCESSED,
            )
        )
    if made != len(ids) or pending:
        raise SystemExit(f"{label}: {made} orders for {len(ids)} deliveries, {pending} pending")


def consumer_process(
    overrides: dict[str, Any],
    settings: aws.AwsSettings,
    ready: Any,
    go: Any,
    stop: Any,
    results: Any,
) -> None:
    """One concurrent execution of the intake function: its own interpreter, as a Lambda
    container is (threads of one interpreter would share its GIL)."""
    from sync_lambdas import intake as intake_lambda

    runtime.use(overrides)
    runtime.sessions()  # the cold start, before the clock runs
    stats = {"batches": 0, "records": 0, "handler": 0.0, "first": 0.0}

    def handler(event: dict[str, Any], context: Any) -> Any:
        began = time.perf_counter()
        stats["first"] = stats["first"] or time.time()
        try:
            return intake_lambda.handler(event, context)
        finally:
            stats["batches"] += 1
            stats["records"] += len(event["Records"])
            stats["handler"] += time.perf_counter() - began

    ready.release()
    go.wait()
    while not stop.is_set():
        driver.consume_once(settings, aws.INTAKE, handler)
    results.put(stats)


def through_sqs(
    settings: aws.AwsSettings,
    overrides: dict[str, Any],
    sessions: sessionmaker[Session],
    consumers: int,
    ids: range,
) -> tuple[float, str]:
    """Events per second: `consumers` intake executions working the queued ids; and where
    their time went (batch sizes, the share spent inside the handler)."""
    context = multiprocessing.get_context("spawn")
    ready, go, stop = context.Semaphore(0), context.Event(), context.Event()
    results = context.Queue()
    processes = [
        context.Process(
            target=consumer_process, args=(overrides, settings, ready, go, stop, results)
        )
        for _ in range(consumers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        if not ready.acquire(timeout=120):
            raise SystemExit("a consumer process did not start")
    started = time.perf_counter()
    go.set()
    deadline = time.monotonic() + 60 + len(ids)
    while orders_made(sessions, ids) < len(ids):
        if time.monotonic() > deadline or not all(p.is_alive() for p in processes):
            stop.set()
            raise SystemExit(f"{consumers} consumer(s): the orders never all arrived")
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    stop.set()
    stats = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    check(sessions, ids, f"{consumers} consumer(s)")
    batches = sum(int(s["batches"]) for s in stats)
    records = sum(int(s["records"]) for s in stats)
    share = sum(s["handler"] for s in stats) / (consumers * elapsed)
    where = (
        f"{batches} batches of {records / max(1, batches):.1f} records on average, "
        f"{100 * min(1.0, share):.0f} % of the consumers' time in the handler"
    )
    return len(ids) / elapsed, where


def local_worker(sessions: sessionmaker[Session], shop_id: int, ids: range) -> float:
    started = time.perf_counter()
    sync.process_pending(sessions, shop_id, limit=len(ids) * 2)
    elapsed = time.perf_counter() - started
    check(sessions, ids, "local worker")
    return len(ids) / elapsed


def throughput(
    events: int, database_url: str, env: dict[str, str], report: Report, counts: list[int]
) -> None:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    prefix = f"bench{uuid.uuid4().hex[:8]}"
    settings = aws.AwsSettings(
        region="eu-west-3", endpoint_url=endpoint, prefix=prefix, bucket=f"{prefix}-documents"
    )
    moto = driver.start_moto_server(port)
    try:
        driver.deploy_stack(settings, prefix, (ROOT / driver.TEMPLATE).read_text())
        upgrade(database_url)
        overrides = {
            "DATABASE_URL": database_url,
            "SECRET_KEY": env["APP_SECRET_KEY"],
            "ENCRYPTION_KEY": env["APP_ENCRYPTION_KEY"],
            "ALLOW_PRIVATE_SHOP_URLS": True,
            "QUEUE": "sqs",
            "STORAGE": "s3",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": settings.region,
            "AWS_PREFIX": prefix,
            "S3_BUCKET": settings.bucket,
        }
        runtime.use(overrides)
        sessions = runtime.sessions()
        woo = WooCommerceEmulator()
        with woo:
            with sessions.begin() as session:
                shop = shops.create_shop(
                    session,
                    "woocommerce",
                    "Bench",
                    woo.base_url,
                    api_key=woo.consumer_key,
                    api_secret=woo.consumer_secret,
                    webhook_secret=woo.webhook_secret,
                    key=f"bench-{prefix}",
                )
                shop.poll_interval_seconds = 86_400
                shop_id = shop.id
            base = 7_000_000 + secrets.randbelow(1_000_000) * 10_000
            # Warm-up (first statements compiled, connectors built), worked by neither run.
            queue.configure(queue.LocalBackend())
            warm = range(base - 5, base)
            deliver(sessions, shop_id, woo, warm)
            sync.process_pending(sessions, shop_id)
            check(sessions, warm, "warm-up")
            runs: dict[str, float] = {}
            notes: dict[int, str] = {}
            phases = [("local", 0), *(("sqs", consumers) for consumers in counts)]
            for number, (kind, consumers) in enumerate(phases):
                ids = range(base + number * events, base + (number + 1) * events)
                backend = queue.LocalBackend() if kind == "local" else queue.SqsBackend(settings)
                queue.configure(backend)
                deliver(sessions, shop_id, woo, ids)
                if kind == "local":
                    runs["local"] = local_worker(sessions, shop_id, ids)
                else:
                    rate, where = through_sqs(settings, overrides, sessions, consumers, ids)
                    runs[f"sqs{consumers}"], notes[consumers] = rate, where
        local = runs["local"]
        dialect = database_url.split(":", 1)[0].split("+")[0]
        worker = f"{dialect}: local worker process_pending, {events} events"
        report.baseline(worker, local, "events/s")
        for consumers in counts:
            report.figure(
                f"{dialect}: SQS → intake Lambda, {consumers} consumer(s)",
                runs[f"sqs{consumers}"],
                "events/s",
                worker,
            )
            report.note(f"{dialect}, {consumers} consumer(s): {notes[consumers]}")
        report.target(
            f"{dialect}: every delivery made exactly one order ({len(phases) * events} orders)",
            True,
        )
    finally:
        runtime.use()
        queue.configure(queue.LocalBackend())
        moto.terminate()
        moto.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--events", type=int, default=0, help="per run; quick 40, full 400")
    parser.add_argument("--consumers", default="1,4", help="consumer counts, one run each")
    parser.add_argument("--sqlite-only", action="store_true")
    args = parser.parse_args()
    full = full_mode(args.full)
    events = args.events or (400 if full else 40)
    counts = [int(n) for n in args.consumers.split(",") if n]
    report = Report("AWS shape: intake through SQS", full=full)
    # Quick mode: SQLite only (a moto stack per database costs about a minute here).
    kinds = ["sqlite"] if args.sqlite_only or not full else database_kinds()
    if "postgresql" not in kinds:
        report.note("PostgreSQL measured in full mode only (BENCH_FULL=1)")
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        env.update(
            {
                "APP_SECRET_KEY": secrets.token_urlsafe(32),
                "APP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "APP_INSTANCE_PATH": f"{tmp}/instance",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "eu-west-3",
            }
        )
        os.environ.update({k: env[k] for k in env if k.startswith(("AWS_", "APP_INSTANCE"))})
        for kind in kinds:
            with bench_database(kind, tmp) as url:
                throughput(events, url, env, report, counts)
    sys.exit(report.finish())


if __name__ == "__main__":
    main()
