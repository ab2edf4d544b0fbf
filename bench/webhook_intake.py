"""Webhook intake throughput under gunicorn, against /healthz on the same server, same run.

    .venv/bin/python bench/webhook_intake.py [--deliveries 3000] [--database-url URL | --postgres]

Starts gunicorn itself (2 gthread workers, 4 threads each) on a free loopback port against a
fresh database (a temporary SQLite file; a new database next to --database-url; or, with
--postgres, a throwaway cluster started by tests/tools/postgres.sh), migrates it and creates a
WooCommerce and a Shopify shop with webhook secrets. Then, with 8 concurrent keep-alive
connections (one load process each, so the generator is not bound by one interpreter):

1. GET /healthz: the server's ceiling for a request that touches the database (and the
   generator's: a delivery can go no faster than this);
2. signed distinct deliveries, WooCommerce `order.created` and Shopify `orders/create`
   alternately, each with its own order id (and webhook id), bodies built from tests/fixtures.

It prints requests/s and p50/p95/p99 for both, the ratio deliveries/healthz, and checks the
inbox after the run: every delivery answered "stored" is there exactly once, nothing else is.

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
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster on loopback for this run, as tests/tools/run-suite.sh starts one."""
    workdir = tempfile.mkdtemp(prefix="comptoir-bench-pg.")
    os.chmod(workdir, 0o755)
    script = str(ROOT / "tests" / "tools" / "postgres.sh")
    data = f"{workdir}/data"
    try:
        url = subprocess.run(
            [script, "start", data, str(free_port())], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield url
    finally:
        subprocess.run([script, "stop", data], check=False)
        subprocess.run(["rm", "-rf", workdir, f"{data}.initdb.log"], check=False)


@contextmanager
def fresh_postgres_database(url: str) -> Iterator[str]:
    """A new database next to the one named by `url`, dropped after the run."""
    sa_url = make_url(url)
    name = f"{sa_url.database}_bench_{os.getpid()}"
    admin = make_engine(str(sa_url.set(database="postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def database(args: argparse.Namespace, tmp: str) -> Iterator[str]:
    if args.postgres:
        with throwaway_postgres() as url, fresh_postgres_database(url) as fresh:
            yield fresh
    elif args.database_url:
        with fresh_postgres_database(args.database_url) as fresh:
            yield fresh
    else:
        yield f"sqlite:///{tmp}/bench.sqlite"


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


def report(label: str, figures: dict[str, Any]) -> None:
    latencies = [value * 1000 for value in figures["latencies"]]
    print(
        f"{label:<11} {figures['count']:>6} requests  {figures['rate']:8.0f} /s   "
        f"p50 {percentile(latencies, 0.50):6.1f} ms   p95 {percentile(latencies, 0.95):6.1f} ms"
        f"   p99 {percentile(latencies, 0.99):6.1f} ms   max {max(latencies):6.1f} ms"
    )


# --- the run -----------------------------------------------------------------------------


@contextmanager
def gunicorn(url: str, tmp: str, key: str, args: argparse.Namespace) -> Iterator[int]:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "APP_ENCRYPTION_KEY": key,
        "APP_SECRET_KEY": "bench",
        "APP_INSTANCE_PATH": f"{tmp}/instance",
    }
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(args.threads),
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
    ]
    # Only the settings above: gunicorn would otherwise read ./gunicorn.conf.py, whose access
    # log (a line per request on stdout) would be measured too.
    empty = Path(tmp) / "gunicorn-bench.conf.py"
    empty.write_text("")
    command += ["--config", args.config or str(empty), "web.wsgi:app"]
    server = subprocess.Popen(command, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("gunicorn did not start") from None
                time.sleep(0.1)
        yield port
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def main() -> None:
    # The shops here are on loopback (emulators, this run's gunicorn): allowed for the bench
    # process and the processes it starts, as in the tests.
    os.environ["APP_ALLOW_PRIVATE_SHOP_URLS"] = "1"
    addresses.configure(allow_private=True)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--healthz", type=int, default=6000)
    parser.add_argument("--database-url", default="", help="PostgreSQL server to use")
    parser.add_argument("--postgres", action="store_true", help="start a throwaway PostgreSQL")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument(
        "--config", default="", help="a gunicorn config file (e.g. gunicorn.conf.py) to add"
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, database(args, tmp) as url:
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
            run_load(port, [http_request("GET", "/healthz", {})] * 400)  # warm-up
            warm = run_load(port, [raw for raw, _ in warmup])["outcomes"]
            health = run_load(port, healthz)
            intake = run_load(port, [raw for raw, _ in deliveries])

        print(
            f"database: {make_url(url).get_backend_name()}, gunicorn {args.workers} gthread "
            f"workers x {args.threads} threads, {CONNECTIONS} keep-alive connections "
            f"(one load process each), {os.cpu_count()} CPUs"
        )
        report("/healthz", health)
        report("deliveries", intake)
        print(f"ratio deliveries/healthz  {intake['rate'] / health['rate']:.2f}x")

        keys, answers = accepted(warm + intake["outcomes"], warmup + deliveries)
        print(f"answers: {answers}; reconnects during the deliveries: {intake['reconnects']}")
        check_inbox(url, keys)


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


def check_inbox(url: str, keys: list[str]) -> None:
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
    verdict = "OK" if not (missing or doubled or extra) else "FAILED"
    print(
        f"inbox: {sum(counts.values())} rows for {len(keys)} stored deliveries "
        f"(missing {len(missing)}, more than once {len(doubled)}, unexpected {len(extra)}) "
        f"{verdict}"
    )
    if verdict != "OK":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
