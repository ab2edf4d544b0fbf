"""The contract across the languages (docs/NOTIFICATIONS.md): each module's own PHP code, in a
PHP process of its own, sends its notification to a live Comptoir over loopback; Comptoir's
worker reads the order from the shop (the loopback emulator) and it is in the JSON API. The
same change again is a duplicate and is not read again; signed with another secret, or changed
after signing, it is refused and nothing is stored; the module's test is a ping, shown as the
shop's last notification on its settings page.

PrestaShop also as a whole shop request (modules/prestashop/tests/scripts/request.php: a status
change firing its hooks), whose two hooks of one change are read once.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from defusedxml import ElementTree as SafeET
from sqlalchemy import func, select

from tests.conftest import log_in, wait_until
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, record_from_element
from tests.modules.conftest import Live
from tests.modules.drivers import DRIVERS, ROOT, notify
from tests.sync.test_magento_e2e import fixture as magento_fixture
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED
from web.models import InboxEvent, Order, Shop
from web.models.enums import Role
from web.services import shops, users

REQUEST = ROOT / "modules/prestashop/tests/scripts/request.php"
ORDER = "1042"  # request.php's order, changed at 2026-12-04 10:15:02 (Paris) for the module
OLD = "2020-01-01 00:00:00"  # before the first poll's window: only a notification brings it in
PASSWORD = "correct horse battery"


@pytest.fixture(autouse=True)
def php_is_there() -> None:
    """make test installs PHP (the Makefile's system-deps): without it this test fails."""
    assert shutil.which("php"), "php is missing: `make system-deps` installs php-cli"
    for path in (REQUEST, *DRIVERS.values()):
        assert path.exists(), f"{path} is missing"


@dataclass
class ShopOrder:
    """A shop in Comptoir, its emulator, and the one order the emulator holds for it."""

    emulator: Any
    shop_id: int
    webhook_url: str
    secret: str
    order_id: str
    date_upd: str  # as the shop stores it
    change_utc: str  # the same time in the dedupe key
    read_path: str  # the emulator's path of the order's read

    def reads(self) -> int:
        return sum(1 for request in self.emulator.requests if request.path == self.read_path)


def prestashop_order(emulator: PrestaShopEmulator) -> str:
    for name in RELATED:
        emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
    order = SafeET.fromstring((FIXTURES / "fr-order-101.xml").read_bytes()).find("order")
    assert order is not None
    emulator.add("orders", {**record_from_element(order), "id": ORDER, "date_upd": OLD})  # type: ignore[attr-defined]
    return ORDER


def magento_order(emulator: MagentoEmulator) -> str:
    payload = magento_fixture("fr-order-relay-coupon.json")
    payload["created_at"] = payload["updated_at"] = OLD
    return str(emulator.add_order(payload)["entity_id"])  # type: ignore[attr-defined]


@contextmanager
def shop_with_order(platform: str, live: Live) -> Iterator[ShopOrder]:
    if platform == "prestashop":
        emulator: Any = PrestaShopEmulator()
        api_key, read, change_utc = DEFAULT_KEY, "/api/orders/{}", "2019-12-31T23:00:00+00:00"
    else:
        emulator = MagentoEmulator()
        api_key, read, change_utc = "", "/rest/V1/orders/{}", "2020-01-01T00:00:00+00:00"
    with emulator:
        add_order = prestashop_order if platform == "prestashop" else magento_order
        order_id = add_order(emulator)
        with live.sessions.begin() as session:
            shop = shops.create_shop(
                session, platform, "Boutique", emulator.base_url, api_key=api_key or emulator.token
            )
            webhook_url = shops.webhook_url(live.base_url, shop)
            secret, shop_id = shop.webhook_secret, shop.id
        assert secret
        yield ShopOrder(
            emulator, shop_id, webhook_url, secret, order_id, OLD, change_utc, read.format(order_id)
        )


def comptoir_said(platform: str, answer: dict[str, Any]) -> str:
    """Comptoir's status word, as each module reports it (Magento logs the whole body)."""
    if platform == "prestashop":
        return str(answer["detail"])
    said = json.loads(str(answer["detail"]).split(": ", 1)[1])
    return str(said.get("status") or said.get("error"))


@pytest.mark.parametrize("platform", ["prestashop", "magento"])
def test_a_modules_notification_brings_the_order_in_once_and_a_tampered_one_is_refused(
    live: Live, platform: str
) -> None:
    with shop_with_order(platform, live) as shop:
        send = (shop.webhook_url, shop.secret, shop.order_id, shop.date_upd)

        stored = notify(platform, *send, "order.status_changed")
        assert (stored["status"], comptoir_said(platform, stored)) == (200, "stored")

        def arrived() -> Order | None:
            with live.sessions() as session:
                query = select(Order).where(
                    Order.shop_id == shop.shop_id, Order.external_id == shop.order_id
                )
                return session.scalars(query).first()

        wait_until(arrived, 10, "the notified order read from the shop")
        order = arrived()
        assert order is not None and shop.reads() == 1
        with live.sessions.begin() as session:
            user, _ = users.create_user(session, "admin@example.com", Role.ADMIN, PASSWORD, "A")
            token = users.create_api_token(session, user, "contract")
        listed = httpx.get(
            f"{live.base_url}/api/v1/orders", headers={"Authorization": f"Bearer {token}"}
        )
        assert [found["number"] for found in listed.json()["orders"]] == [order.number]

        again = notify(platform, *send, "order.updated")
        assert (again["status"], comptoir_said(platform, again)) == (200, "duplicate")
        forged = notify(platform, shop.webhook_url, "not-the-secret", *send[2:], "order.updated")
        assert (forged["accepted"], forged["status"]) == (False, 401)
        tampered = notify(platform, *send, "order.updated", tamper=True)
        assert (tampered["accepted"], tampered["status"]) == (False, 401)

        ping = notify(platform, shop.webhook_url, shop.secret, "", "", "test")
        if platform == "prestashop":  # the configuration page's button and its message
            assert "Comptoir answered: ping" in ping["page"]
        else:
            assert (ping["status"], comptoir_said(platform, ping)) == (200, "ping")
        client = live.app.test_client()
        log_in(client, "admin@example.com", PASSWORD)
        page = client.get(f"/shops/{shop_key(live, shop.shop_id)}").get_data(as_text=True)
        assert '<span class="mono">test</span>' in page  # the last notification
        # Verified: the change, its duplicate, the ping; the forged and the tampered are not.
        assert '<dd id="notifications-today">3</dd>' in page

        with live.sessions() as session:
            kept = session.scalars(
                select(InboxEvent).where(
                    InboxEvent.shop_id == shop.shop_id, InboxEvent.topic.startswith("notify/")
                )
            ).all()
            assert [event.dedupe_key for event in kept] == [
                f"change:{shop.order_id}:{shop.change_utc}"
            ]
            assert session.scalar(select(func.count()).select_from(Order)) == 1
        assert shop.reads() == 1  # the duplicate was not read again


def shop_key(live: Live, shop_id: int) -> str:
    with live.sessions() as session:
        return session.get_one(Shop, shop_id).key


def send_request(webhook_url: str, secret: str) -> None:
    result = subprocess.run(
        ["php", str(REQUEST), webhook_url, secret],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0 and "hooks done" in result.stdout, result.stdout + result.stderr


def test_a_prestashop_requests_hooks_of_one_change_are_read_once(live: Live) -> None:
    sessions = live.sessions
    with PrestaShopEmulator() as emulator:
        prestashop_order(emulator)
        with sessions.begin() as session:
            shop = shops.create_shop(
                session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
            )
            webhook_url, secret, shop_id = (
                shops.webhook_url(live.base_url, shop),
                shop.webhook_secret,
                shop.id,
            )
        assert secret

        send_request(webhook_url, "not-the-secret")
        send_request(webhook_url, secret)

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
