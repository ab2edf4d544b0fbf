"""The contract across the languages: the PrestaShop module's own PHP code, in a PHP process of
its own (modules/prestashop/tests/scripts/request.php: a status change firing its hooks), sends
its notification to a live Comptoir over loopback; Comptoir's worker reads the order from the
shop (the emulator) and it is visible. Signed with another secret, it is refused and nothing
is stored.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy import func, select
from werkzeug.serving import make_server

from tests.conftest import migrate, reset_schema, separate_database_url, wait_until
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, record_from_element
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED
from web.app import create_app
from web.db import make_engine
from web.jobs import start_worker
from web.models import InboxEvent, Order, Shop
from web.services import shops

ROOT = Path(__file__).resolve().parents[2]
REQUEST = ROOT / "modules/prestashop/tests/scripts/request.php"
ORDER = "1042"  # request.php's order, changed at 2026-12-04 10:15:02 (Paris) for the module
OLD = "2020-01-01 00:00:00"

pytestmark = pytest.mark.skipif(
    shutil.which("php") is None or not REQUEST.exists(),
    reason="php or the PrestaShop module's request script is missing",
)


@pytest.fixture()
def live(tmp_path: Path, encryption_key: str) -> Iterator[tuple[str, Any]]:
    """A Comptoir on a free loopback port with its worker, on a database of its own."""
    url = separate_database_url(tmp_path, "php")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    app = create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "php-contract",
            "ENCRYPTION_KEY": encryption_key,
            "ALLOW_PRIVATE_SHOP_URLS": True,
        }
    )
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker = start_worker(app)
    try:
        yield f"http://127.0.0.1:{server.server_port}", app.extensions["comptoir.sessions"]
    finally:
        worker.stop()
        worker.join(timeout=10)
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["comptoir.engine"].dispose()


def send(webhook_url: str, secret: str) -> None:
    result = subprocess.run(
        ["php", str(REQUEST), webhook_url, secret],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "hooks done" in result.stdout, result.stdout + result.stderr


def test_the_modules_notification_brings_the_order_in_and_a_forged_one_is_refused(
    live: tuple[str, Any],
) -> None:
    base_url, sessions = live
    with PrestaShopEmulator() as emulator:
        for name in RELATED:
            emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        order = SafeET.fromstring((FIXTURES / "fr-order-101.xml").read_bytes()).find("order")
        assert order is not None
        # Changed long before the first poll's window: only the notification brings it in.
        emulator.add("orders", {**record_from_element(order), "id": ORDER, "date_upd": OLD})  # type: ignore[attr-defined]
        with sessions.begin() as session:
            shop = shops.create_shop(
                session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
            )
            webhook_url, secret, shop_id = (
                shops.webhook_url(base_url, shop),
                shop.webhook_secret,
                shop.id,
            )
        assert secret

        send(webhook_url, "not-the-secret")
        send(webhook_url, secret)

        def arrived() -> bool:
            with sessions() as session:
                query = select(Order).where(Order.shop_id == shop_id, Order.external_id == ORDER)
                return session.scalars(query).first() is not None

        wait_until(arrived, 15, "the notified order read from the shop")
        reads = sum(1 for r in emulator.requests if r.path == f"/api/orders/{ORDER}")
    with sessions() as session:
        events = session.scalars(select(InboxEvent).where(InboxEvent.shop_id == shop_id)).all()
        shop = session.get_one(Shop, shop_id)
        # Two hooks of one change, once signed: one event, one read; the forged one left nothing.
        [event] = [e for e in events if not e.topic.startswith("fetch/")]
        assert event.topic in ("notify/order.status_changed", "notify/order.updated")
        assert event.dedupe_key == f"change:{ORDER}:2026-12-04T09:15:02+00:00"
        assert shop.notified_count == 2  # the status change and the update, both verified
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    assert reads == 1
