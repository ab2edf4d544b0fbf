"""The AWS shape's two figures: cold-start imports, and intake events per second through SQS.

    .venv/bin/python bench/aws.py [--repeat 7] [--events 400] [--database-url URL]

1. Cold start: the import of `web.wsgi` (the web Lambda: Zappa's app_function builds the app)
   and of each handler module of sync_lambdas/ (intake, push, jobs, render, and poll and
   maintenance once they exist), each in a fresh interpreter, median of --repeat; the
   baseline is a bare `import flask` measured the same way in the same run. The interpreter's
   own start is left out (Lambda pays it for every runtime alike).
2. Intake throughput: --events signed WooCommerce `order.created` deliveries go through the
   webhook service (signature checked, inbox row stored, its id sent to the intake FIFO queue
   of a stack deployed from infra/cloudformation.json on a moto server on loopback); then
   consumers invoke sync_lambdas.intake as Lambda's event source mapping does
   (`driver.consume_once`: receive, invoke, delete what did not fail), with 1 and with 4
   concurrent consumers, each in its own interpreter as each Lambda execution is (its cold
   start done before the clock starts), the clock running until the last order is created.
   The baseline, same run, same database, same kind of events: the local worker's
   `process_pending` working the same number of stored events.

Figures only; the runs check their own results (every delivery made exactly one order).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import multiprocessing
import os
import secrets
import socket
import statistics
import subprocess
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
sys.path.insert(0, str(ROOT))

import sync_lambdas  # noqa: E402
from sync_lambdas import driver, runtime  # noqa: E402
from tests.emulators.woocommerce import WooCommerceEmulator  # noqa: E402
from web import aws, queue  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import InboxEvent, Order  # noqa: E402
from web.models.enums import InboxState  # noqa: E402
from web.services import intake, shops, sync  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"
HANDLERS = [
    "sync_lambdas.intake",
    "sync_lambdas.push",
    "sync_lambdas.jobs",
    "sync_lambdas.render",
    "sync_lambdas.poll",
    "sync_lambdas.maintenance",
]
IMPORT_TIMER = (
    "import time, importlib; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print(time.perf_counter() - t)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- 1. cold-start imports ----------------------------------------------------------------


def written(module: str) -> bool:
    """Whether this checkout has the handler module (the package's own folder only: an
    editable install shared with another checkout may offer modules this one lacks)."""
    spec = importlib.util.find_spec(module)
    folder = Path(sync_lambdas.__file__).resolve().parent
    return spec is not None and spec.origin is not None and Path(spec.origin).parent == folder


def import_seconds(module: str, env: dict[str, str]) -> float:
    """How long a fresh interpreter takes to import `module` (the interpreter's start aside)."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_TIMER.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"import {module} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def cold_starts(repeat: int, env: dict[str, str]) -> None:
    modules = ["flask", "web.wsgi"] + [m for m in HANDLERS if written(m)]
    medians = {}
    for module in modules:
        # Interleaving is not needed: each sample is its own process; one warm-up first so
        # the first sample does not pay for compiling .pyc files.
        import_seconds(module, env)
        samples = [import_seconds(module, env) for _ in range(repeat)]
        medians[module] = statistics.median(samples) * 1000
    base = medians["flask"]
    print(f"cold-start import, fresh interpreter, median of {repeat}:")
    for module, ms in medians.items():
        label = "import flask (baseline)" if module == "flask" else f"import {module}"
        print(f"  {label:<34} {ms:8.1f} ms  {ms / base:5.1f}x")
    missing = [m for m in HANDLERS if not written(m)]
    if missing:
        print(f"  (not written yet, not measured: {', '.join(missing)})")


# --- 2. intake throughput -----------------------------------------------------------------


def deliver(
    sessions: sessionmaker[Session], shop_id: int, emulator: WooCommerceEmulator, ids: range
) -> None:
    """Signed order.created deliveries through the webhook service, 50 per transaction."""
    from web.models import Shop

    payload = json.loads(FIXTURE.read_text())
    batch: list[tuple[bytes, dict[str, str]]] = []
    for order_id in ids:
        order = copy.deepcopy(payload)
        order["id"] = order_id
        order["number"] = str(order_id)
        emulator.add_order(order)
        batch.append(emulator.webhook("order.created", order_id))
        if len(batch) == 50 or order_id == ids[-1]:
            with sessions.begin() as session:
                shop = session.get_one(Shop, shop_id)
                for body, headers in batch:
                    received = intake.receive_webhook(session, shop, body, headers)
                    assert received.event_id is not None and not received.duplicate
            batch.clear()


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


def throughput(events: int, database_url: str, env: dict[str, str]) -> None:
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
            phases = [("local", 0), ("sqs", 1), ("sqs", 4)]
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
        dialect = database_url.split(":", 1)[0]
        print(f"intake, {events} order.created deliveries per run, {dialect}, moto on loopback:")
        print(f"  local worker process_pending (baseline) {local:7.1f} events/s  1.00x")
        for consumers in (1, 4):
            rate = runs[f"sqs{consumers}"]
            print(
                f"  SQS → intake Lambda, {consumers} consumer(s)     {rate:7.1f} events/s  "
                f"{rate / local:.2f}x  ({notes[consumers]})"
            )
        print(f"  every delivery made exactly one order in each run ({3 * events} orders) OK")
    finally:
        runtime.use()
        queue.configure(queue.LocalBackend())
        moto.terminate()
        moto.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="imports per module (0: none)")
    parser.add_argument("--events", type=int, default=400, help="deliveries per run")
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        env.update(
            {
                "DATABASE_URL": args.database_url or f"sqlite:///{tmp}/bench.sqlite",
                "APP_SECRET_KEY": secrets.token_urlsafe(32),
                "APP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "APP_INSTANCE_PATH": f"{tmp}/instance",
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "eu-west-3",
            }
        )
        os.environ.update({k: env[k] for k in env if k.startswith(("AWS_", "APP_INSTANCE"))})
        if args.repeat > 0:
            cold_starts(args.repeat, env)
        throughput(args.events, env["DATABASE_URL"], env)


if __name__ == "__main__":
    main()
