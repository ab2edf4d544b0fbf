"""Webhook intake throughput under gunicorn, against /healthz on the same server, same run.

    .venv/bin/python bench/webhook_intake.py [--full] [--deliveries N] [--sqlite-only]

For each database (a temporary SQLite file; and PostgreSQL, a fresh database next to
BENCH_DATABASE_URL, when set — bench/run_all.py starts a throwaway server and sets it), starts
gunicorn itself with the project's gunicorn.conf.py (2 gthread workers, 4 threads each,
kept-alive connections shared out between them by web/gunicorn_worker.py, its
JSON access log to a file) on a free loopback port, migrates the database and creates a
WooCommerce and a Shopify shop with webhook secrets. Then, with 8 concurrent keep-alive
connections (one load process each, so the generator is not bound by one interpreter):

1. GET /healthz: the server's ceiling for a request that touches the database (and the
   generator's: a delivery can go no faster than this);
2. signed distinct deliveries, WooCommerce `order.created` and Shopify `orders/create`
   alternately, each with its own order id (and webhook id), bodies built from tests/fixtures.

Targets (issue 13): deliveries ≥ 0.4× /healthz, delivery p99 ≤ 25 ms. After the run the
inbox is counted: every delivery answered "stored" is there exactly once, nothing else is;
if not, the script exits non-zero (a count, not a figure). `--config bench/_lock_waits_gunicorn.py`
prints where SQLite's write time goes instead of using gunicorn.conf.py.

gthread, not sync workers: sync workers close the connection after every response (no
keep-alive) and hold one request per process, so a delivery waiting on the database lock
would idle a whole worker; gthread threads overlap those waits and keep connections open.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _common import bench_database, database_kinds, free_port, percentile  # noqa: E402
from _report import Report, full_mode  # noqa: E402

from web import crypto  # noqa: E402
from web.connectors import addresses  # noqa: E402
from web.connectors.woocommerce import WooCommerceConnector  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import InboxEvent  # noqa: E402
from web.services import shops  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"
WOO_FIXTURE = FIXTURES / "woocommerce" / "fr-order-company-bundle.json"
SHOPIFY_FIXTURE = FIXTURES / "shopify" / "shopify-orders-create-webhook.json"
CONNECTIONS = 8


# --- requests ----------------------------------------------------------------------------


def http_request(method: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def woocommerce_delivery(shop_key: str, secret: str, order_id: int) -> tuple[bytes, str]:
    order = copy.deepcopy(WOO_FIXTURE_DATA)
    order["id"] = order_id
    order["number"] = str(order_id)
    body = json.dumps(order).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://thes-et-fonte.example/",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": str(order_id),
        "X-WC-Webhook-Signature": WooCommerceConnector.signature(secret, body),
    }
    raw = http_request("POST", f"/hooks/woocommerce/{shop_key}", headers, body)
    return raw, f"{order_id}:{order['date_modified_gmt']}"


def shopify_delivery(shop_key: str, secret: str, order_id: int) -> tuple[bytes, str]:
    order = copy.deepcopy(SHOPIFY_FIXTURE_DATA)
    order["id"] = order_id
    order["order_number"] = order_id % 100_000
    body = json.dumps(order).encode()
    webhook_id = str(uuid.uuid4())
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    headers = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Shop-Domain": "bench.myshopify.com",
        "X-Shopify-API-Version": "2025-01",
        "X-Shopify-Webhook-Id": webhook_id,
        "X-Shopify-Triggered-At": "2026-01-05T10:00:00Z",
        "X-Shopify-Hmac-Sha256": signature.decode(),
    }
    raw = http_request("POST", f"/hooks/shopify/{shop_key}", headers, body)
    return raw, webhook_id


WOO_FIXTURE_DATA: dict[str, Any] = json.loads(WOO_FIXTURE.read_text())
SHOPIFY_FIXTURE_DATA: dict[str, Any] = json.loads(SHOPIFY_FIXTURE.read_text())


# --- load generator ----------------------------------------------------------------------


def _read_response(stream: Any) -> tuple[int, bytes, bool]:
    status_line = stream.readline()
    if not status_line:
        raise ConnectionError("the server closed the connection")
    status = int(status_line.split()[1])
    length, close = 0, False
    while True:
        line = stream.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            close = True
    return status, stream.read(length), close


def _connect(port: int) -> tuple[socket.socket, Any]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock, sock.makefile("rb")


def _load_process(conn: int, port: int, requests: list[bytes], start: Any, results: Any) -> None:
    """One keep-alive connection sending its requests one after another."""
    sock, stream = _connect(port)
    latencies: list[float] = []
    outcomes: list[tuple[int, str]] = []
    reconnects = 0
    start.wait()
    for raw in requests:
        began = time.perf_counter()
        sock.sendall(raw)
        status, body, close = _read_response(stream)
        latencies.append(time.perf_counter() - began)
        try:
            answer = str(json.loads(body).get("status", ""))
        except ValueError:
            answer = ""
        outcomes.append((status, answer))
        if close:
            sock.close()
            sock, stream = _connect(port)
            reconnects += 1
    sock.close()
    results.put((conn, latencies, outcomes, reconnects, time.perf_counter()))


def run_load(port: int, requests: list[bytes]) -> dict[str, Any]:
    """Send the requests over 8 connections (one process each); return the figures.

    Connection k sends requests k, k+8, k+16, ... one after the other; `outcomes` gives
    (HTTP status, answer's "status") back in the order of `requests`.
    """
    ctx = multiprocessing.get_context("fork")
    start = ctx.Event()
    results = ctx.Queue()
    processes = [
        ctx.Process(
            target=_load_process, args=(conn, port, requests[conn::CONNECTIONS], start, results)
        )
        for conn in range(CONNECTIONS)
    ]
    for process in processes:
        process.start()
    time.sleep(0.5)  # every connection open before the clock starts
    began = time.perf_counter()
    start.set()
    gathered = sorted(results.get(timeout=600) for _ in processes)
    for process in processes:
        process.join()
    outcomes: list[tuple[int, str]] = [(0, "")] * len(requests)
    for conn, _, answers, _, _ in gathered:
        outcomes[conn::CONNECTIONS] = answers
    latencies = [value for item in gathered for value in item[1]]
    elapsed = max(item[4] for item in gathered) - began
    return {
        "count": len(latencies),
        "rate": len(latencies) / elapsed,
        "latencies": latencies,
        "outcomes": outcomes,
        "reconnects": sum(item[3] for item in gathered),
    }


def measure(report: Report, label: str, figures: dict[str, Any], base: str | None) -> None:
    """Requests/s (against `base` when given) and the latency percentiles of one load."""
    latencies = [value * 1000 for value in figures["latencies"]]
    report.figure(f"{label} ({figures['count']} requests)", figures["rate"], "req/s", base)
    for share in (0.50, 0.95, 0.99):
        report.figure(f"{label} p{int(share * 100)}", percentile(latencies, share), "ms")


# --- the run -----------------------------------------------------------------------------


@contextmanager
def gunicorn(url: str, tmp: str, key: str, args: argparse.Namespace) -> Iterator[int]:
    """The production server: the project's gunicorn.conf.py (or --config), its JSON access
    log included (written to a file here, as a service's journal would take it)."""
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("APP_")},
        "DATABASE_URL": url,
        "APP_ENCRYPTION_KEY": key,
        "APP_SECRET_KEY": "bench",
        "APP_INSTANCE_PATH": f"{tmp}/instance",
        "APP_ALLOW_PRIVATE_SHOP_URLS": "1",
        "COMPTOIR_BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(args.workers),
        "COMPTOIR_THREADS": str(args.threads),
    }
    command = [str(Path(sys.executable).parent / "gunicorn"), "--config", args.config]
    log_path = Path(tmp) / f"gunicorn-{port}.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [*command, "web.wsgi:app"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1):
                        break
                except OSError:
                    if server.poll() is not None or time.monotonic() > deadline:
                        tail = log_path.read_text(errors="replace")[-3000:]
                        raise SystemExit(f"gunicorn did not start:\n{tail}") from None
                    time.sleep(0.1)
            yield port
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
    if args.config != str(ROOT / "gunicorn.conf.py"):  # e.g. _lock_waits_gunicorn.py's figures
        print(log_path.read_text(errors="replace")[-5000:])


def run_database(kind: str, args: argparse.Namespace, tmp: str, report: Report) -> bool:
    """Both loads on one database; whether the inbox holds every accepted delivery once."""
    with bench_database(kind, tmp) as url:
        key = Fernet.generate_key().decode()
        crypto.configure(key, tmp)
        upgrade(url)
        engine = make_engine(url)
        sessions = make_session_factory(engine)
        with sessions.begin() as session:
            woo = shops.create_shop(
                session, "woocommerce", "Bench Woo", "http://127.0.0.1:9", webhook_secret="w" * 32
            )
            shopify = shops.create_shop(
                session, "shopify", "Bench Shopify", "http://127.0.0.1:9", webhook_secret="s" * 32
            )
            woo_key, shopify_key = woo.key, shopify.key
        engine.dispose()

        warmup = [woocommerce_delivery(woo_key, "w" * 32, 9_000_000 + n) for n in range(16)]
        warmup += [shopify_delivery(shopify_key, "s" * 32, 9_100_000 + n) for n in range(16)]
        deliveries = []
        for n in range(args.deliveries):
            if n % 2:
                deliveries.append(shopify_delivery(shopify_key, "s" * 32, 7_000_000 + n))
            else:
                deliveries.append(woocommerce_delivery(woo_key, "w" * 32, 5_000_000 + n))
        healthz = [http_request("GET", "/healthz", {})] * args.healthz

        with gunicorn(url, tmp, key, args) as port:
            run_load(
                port, [http_request("GET", "/healthz", {})] * min(400, args.healthz)
            )  # warm-up
            warm = run_load(port, [raw for raw, _ in warmup])["outcomes"]
            health = run_load(port, healthz)
            intake = run_load(port, [raw for raw, _ in deliveries])

        base = f"{kind}: GET /healthz ({health['count']} requests)"
        report.baseline(base, health["rate"], "req/s")
        measure(report, f"{kind}: signed deliveries", intake, base)
        ratio = intake["rate"] / health["rate"]
        p99 = percentile([value * 1000 for value in intake["latencies"]], 0.99)
        report.target(f"{kind}: deliveries ≥ 0.4× /healthz", ratio >= 0.4, f"{ratio:.2f}×")
        report.target(f"{kind}: delivery p99 ≤ 25 ms", p99 <= 25, f"{p99:.1f} ms")
        keys, answers = accepted(warm + intake["outcomes"], warmup + deliveries)
        print(f"answers: {answers}; reconnects during the deliveries: {intake['reconnects']}")
        return check_inbox(url, keys, kind, report)


def main() -> None:
    # The shops here are on loopback (emulators, this run's gunicorn): allowed for the bench
    # process and the processes it starts, as in the tests.
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument("--deliveries", type=int, default=0, help="quick 600, full 3000")
    parser.add_argument("--healthz", type=int, default=0, help="quick 1200, full 6000")
    parser.add_argument("--sqlite-only", action="store_true", help="leave PostgreSQL out")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--config",
        default=str(ROOT / "gunicorn.conf.py"),
        help="gunicorn config file (default: the project's gunicorn.conf.py)",
    )
    args = parser.parse_args()
    full = full_mode(args.full)
    args.deliveries = args.deliveries or (3000 if full else 600)
    args.healthz = args.healthz or (6000 if full else 1200)

    report = Report("webhook intake under gunicorn", full=full)
    kinds = ["sqlite"] if args.sqlite_only else database_kinds()
    if "postgresql" not in kinds:
        report.note("PostgreSQL not measured (no BENCH_DATABASE_URL)")
    report.note(
        f"gunicorn.conf.py, {args.workers} gthread workers × {args.threads} threads, "
        f"{CONNECTIONS} keep-alive connections (one load process each), {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory() as tmp:
        exact = [run_database(kind, args, tmp, report) for kind in kinds]
    status = report.finish()
    sys.exit(status if all(exact) else 1)


def accepted(
    outcomes: list[tuple[int, str]], requests: list[tuple[bytes, str]]
) -> tuple[list[str], dict[str, int]]:
    """Dedupe keys of the deliveries answered 2xx "stored", and a count of every answer."""
    answers: dict[str, int] = {}
    keys: list[str] = []
    for (status, answer), (_, key) in zip(outcomes, requests, strict=True):
        label = f"{status} {answer}".strip()
        answers[label] = answers.get(label, 0) + 1
        if 200 <= status < 300 and answer == "stored":
            keys.append(key)
    return keys, answers


def check_inbox(url: str, keys: list[str], kind: str, report: Report) -> bool:
    """Every delivery answered "stored" is in the inbox exactly once, nothing else is."""
    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            select(InboxEvent.dedupe_key, func.count()).group_by(InboxEvent.dedupe_key)
        ).all()
    engine.dispose()
    counts = dict(rows)
    missing = [key for key in keys if key not in counts]
    doubled = [key for key, count in counts.items() if count != 1]
    extra = set(counts) - set(keys)
    exact = not (missing or doubled or extra)
    report.figure(f"{kind}: inbox rows after the run", sum(counts.values()), "rows")
    report.target(
        f"{kind}: every accepted delivery in the inbox once",
        exact,
        f"{len(keys)} accepted: missing {len(missing)}, more than once {len(doubled)}, "
        f"unexpected {len(extra)}",
    )
    return exact


if __name__ == "__main__":
    main()
