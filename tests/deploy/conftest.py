"""Comptoir as it runs in production: gunicorn and the queue worker as real processes.

These tests start processes (the launcher, the systemd units' command lines, the worker)
against a database of their own; each module is marked `server`, so
`pytest -m "not server"` leaves them out of a quick run; `make test` runs them.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import reset_schema, separate_database_url, wait_until
from web.connectors.woocommerce import WooCommerceConnector
from web.db import make_engine
from web.models import Order
from web.services import shops

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"
WEBHOOK_SECRET = "deploy-test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def server_database(tmp_path: Path) -> Iterator[str]:
    """An empty database the processes migrate themselves (SQLite file or PostgreSQL)."""
    url = separate_database_url(tmp_path, "deploy")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    yield url


def server_env(url: str, tmp_path: Path, encryption_key: str, **extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("APP_") and key not in ("DATABASE_URL", "TEST_DATABASE_URL")
    }
    env.update(
        {
            "DATABASE_URL": url,
            "APP_SECRET_KEY": "deploy-test",
            "APP_ENCRYPTION_KEY": encryption_key,
            "APP_INSTANCE_PATH": str(tmp_path / "instance"),
            "APP_ALLOW_PRIVATE_SHOP_URLS": "1",
            "WEB_CONCURRENCY": "2",
            "COMPTOIR_THREADS": "2",
        }
    )
    env.update(extra)
    return env


def wait_for_healthz(base_url: str, process: subprocess.Popen[bytes], seconds: float = 180) -> None:
    def answers() -> bool:
        assert process.poll() is None, f"the server exited with {process.returncode}"
        try:
            return httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, seconds, "/healthz to answer")


def create_woocommerce_shop(url: str, shop_url: str) -> str:
    """A WooCommerce shop with a webhook secret, created in the processes' database."""
    engine = make_engine(url)
    sessions = sessionmaker(engine, expire_on_commit=False)
    with sessions.begin() as session:
        shop = shops.create_shop(
            session, "woocommerce", "Atelier", shop_url, webhook_secret=WEBHOOK_SECRET
        )
        shop.poll_interval_seconds = 86_400
        key = shop.key
    engine.dispose()
    return key


def post_woocommerce_order(base_url: str, shop_key: str, order_id: int) -> httpx.Response:
    """POST a signed order.created delivery, as WooCommerce sends it."""
    order = copy.deepcopy(json.loads(FIXTURE.read_text()))
    order["id"] = order_id
    body = json.dumps(order).encode()
    headers = {
        "Content-Type": "application/json",
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Resource": "order",
        "X-WC-Webhook-Event": "created",
        "X-WC-Webhook-Delivery-ID": str(order_id),
        "X-WC-Webhook-Signature": WooCommerceConnector.signature(WEBHOOK_SECRET, body),
    }
    return httpx.post(
        f"{base_url}/hooks/woocommerce/{shop_key}", content=body, headers=headers, timeout=10
    )


def order_exists(url: str, external_id: str) -> bool:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            found = session.scalar(select(Order.id).where(Order.external_id == external_id))
    finally:
        engine.dispose()
    return found is not None


def wait_for_order(url: str, external_id: str, seconds: float = 90) -> float:
    """Wait until the worker has created the order; return how long it took."""
    started = time.monotonic()
    wait_until(lambda: order_exists(url, external_id), seconds, f"order {external_id}")
    return time.monotonic() - started


def alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(value) for value in path.read_text().split()] if path.exists() else []


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, seconds: float = 40) -> int:
    """Signal the process and wait for it; kill it if it does not stop."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise
