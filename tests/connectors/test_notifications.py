"""Comptoir's side of docs/NOTIFICATIONS.md: the signed change notifications of the PrestaShop
and Magento modules at POST /hooks/<platform>/<key>, read strictly, keyed as the probe keys.

The PHP side sends them (modules/*/tests); here the bodies are built as the contract writes
them and signed independently of the code under test.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import PrestaShopEmulator
from web.connectors.base import BadPayload, ShopSettings
from web.connectors.magento import MagentoConnector
from web.connectors.notifications import (
    Change,
    Notification,
    change_key,
    parse_change_key,
    read,
)
from web.connectors.prestashop import PrestaShopConnector
from web.models import InboxEvent, Shop
from web.models.enums import InboxState
from web.services import shops

UTC = dt.UTC


def body(**fields: Any) -> bytes:
    notification = {
        "version": 1,
        "event": "order.status_changed",
        "order_id": "1042",
        "date_upd": "2026-07-14 23:30:05",
        "sent_at": "2026-07-14T23:30:05+02:00",
        "module_version": "1.0.0",
        "platform_version": "8.1.7",
    }
    notification.update(fields)
    return json.dumps({k: v for k, v in notification.items() if v is not None}).encode()


def sign(secret: str, raw: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def post(client: FlaskClient, shop: Shop, raw: bytes, secret: str | None = None) -> Any:
    return client.post(
        f"/hooks/{shop.platform.value}/{shop.key}",
        data=raw,
        content_type="application/json",
        headers={
            "X-Comptoir-Hmac-Sha256": sign(secret or shop.webhook_secret or "", raw),
            "X-Comptoir-Event": "order.status_changed",
            "User-Agent": "Comptoir-PrestaShop/1.0.0 (PrestaShop 8.1.7)",
        },
    )


@pytest.fixture(params=["prestashop", "magento"])
def shop(request: pytest.FixtureRequest, db_session: Session) -> Shop:
    created = shops.create_shop(
        db_session, request.param, "Épicerie", "http://127.0.0.1:9/", api_key="k" * 32
    )
    db_session.commit()
    return created


def events(db_session: Session) -> list[InboxEvent]:
    db_session.expire_all()
    return list(db_session.scalars(select(InboxEvent).order_by(InboxEvent.id)))


def test_a_new_shop_gets_a_secret_to_paste_into_the_module(shop: Shop) -> None:
    assert shop.webhook_secret and len(shop.webhook_secret) >= 32
    assert shop.poll_interval_seconds == 30


def test_a_signed_notification_is_stored_once_and_counted(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    raw = body(date_upd="2026-07-14 21:30:05")
    first, again = post(client, shop, raw), post(client, shop, raw)
    assert (first.status_code, first.get_json()) == (200, {"status": "stored"})
    assert (again.status_code, again.get_json()) == (200, {"status": "duplicate"})
    [event] = events(db_session)
    assert event.topic == "notify/order.status_changed"
    assert event.external_order_id == "1042" and event.state == InboxState.PENDING
    assert event.dedupe_key.startswith("change:1042:")
    assert not any("hmac" in name for name in event.headers)  # never kept
    db_session.refresh(shop)
    assert (shop.notified_event, shop.notified_count) == ("order.status_changed", 2)


@pytest.mark.parametrize(
    "tamper",
    ["wrong secret", "body changed on the way", "no signature"],
)
def test_a_notification_not_signed_with_the_shop_secret_is_refused_and_nothing_stored(
    client: FlaskClient, shop: Shop, db_session: Session, tamper: str
) -> None:
    raw = body()
    if tamper == "wrong secret":
        response = post(client, shop, raw, secret="not-the-secret")
    elif tamper == "body changed on the way":
        signature = sign(shop.webhook_secret or "", raw)
        response = client.post(
            f"/hooks/{shop.platform.value}/{shop.key}",
            data=raw.replace(b"1042", b"1043"),
            headers={"X-Comptoir-Hmac-Sha256": signature},
        )
    else:
        response = client.post(f"/hooks/{shop.platform.value}/{shop.key}", data=raw)
    assert response.status_code == 401
    assert response.get_json()["error"].startswith("signature refused: ")
    assert events(db_session) == []
    db_session.refresh(shop)
    assert shop.notified_at is None and shop.notified_count == 0


BAD_BODIES = [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (body(version=2), "version"),
    (body(version="1"), "version"),
    (body(version=True), "version"),
    (body(event="order.deleted"), "event"),
    (body(event=None), "event"),
    (body(order_id="12a"), "order_id"),
    (body(order_id=1042), "order_id"),
    (body(order_id=""), "order_id"),
    (body(order_id="1" * 21), "order_id"),
    (body(date_upd="2026-07-14T23:30:05"), "date_upd"),
    (body(date_upd="2026-07-14"), "date_upd"),
    (body(date_upd="0000-00-00 00:00:00"), "date_upd"),
    (body(date_upd="2026-02-30 10:00:00"), "date_upd"),
    (body(change_id="x" * 101), "change_id"),
    (body(change_id="message:77\n"), "change_id"),
    (body(change_id="slip:\u00005"), "change_id"),
    (body(change_id=5), "change_id"),
]


# The body is read by one reader for both platforms (web/connectors/notifications.py): every
# case on PrestaShop, the time that each platform reads its own way on Magento too.
CASES = [("prestashop", raw, reason) for raw, reason in BAD_BODIES] + [
    ("magento", raw, reason) for raw, reason in BAD_BODIES if reason == "date_upd"
]


@pytest.mark.parametrize(("shop", "raw", "reason"), CASES, indirect=["shop"])
def test_a_body_outside_the_contract_is_a_400_with_its_reason_and_nothing_half_written(
    client: FlaskClient, shop: Shop, db_session: Session, raw: bytes, reason: str
) -> None:
    response = post(client, shop, raw)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error.startswith("unreadable delivery: ") and reason in error
    # Only the refusal itself is kept, with its cause, for the sync log.
    [event] = events(db_session)
    assert event.state == InboxState.REJECTED and reason in event.error
    db_session.refresh(shop)
    assert shop.notified_count == 0


def test_the_test_event_is_a_ping_shown_as_the_last_notification(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    response = post(client, shop, body(event="test", order_id="", date_upd=""))
    assert (response.status_code, response.get_json()) == (200, {"status": "ping"})
    assert events(db_session) == []
    db_session.refresh(shop)
    assert shop.notified_event == "test" and shop.notified_count == 1
    assert shop.notified_at is not None


def test_a_change_id_is_a_change_of_its_own(
    client: FlaskClient, shop: Shop, db_session: Session
) -> None:
    assert post(client, shop, body()).get_json() == {"status": "stored"}
    tracking = body(event="order.shipped", change_id="tracking:12:6A 123 é")
    assert post(client, shop, tracking).get_json() == {"status": "stored"}
    message = body(event="order.message_added", change_id="message:77")
    assert post(client, shop, message).get_json() == {"status": "stored"}
    assert post(client, shop, message).get_json() == {"status": "duplicate"}
    keys = [event.dedupe_key for event in events(db_session)]
    assert keys[1].endswith(":tracking:12:6A 123 é") and keys[2].endswith(":message:77")
    assert db_session.scalar(select(func.count()).select_from(InboxEvent)) == 3


def test_prestashop_keys_a_notified_change_as_its_probe_does_in_shop_time(
    prestashop_server: PrestaShopEmulator,
) -> None:
    shop = prestashop_server
    shop.reset()
    for order_id, stamp in (("7", "2026-07-14 23:30:05"), ("8", "2026-07-14 23:00:00")):
        shop.add("orders", {"id": order_id, "date_add": stamp, "date_upd": stamp})
    for zone, utc in (("Europe/Paris", "21:30:05"), ("America/New_York", "03:30:05")):
        connector = PrestaShopConnector(_settings(shop.base_url, shop.key, {"timezone": zone}, "s"))
        try:
            raw = body(order_id="7", date_upd="2026-07-14 23:30:05")
            notified = connector.describe_webhook(raw, {}).dedupe_key
            probed = connector.list_changes(dt.datetime(2026, 7, 1, tzinfo=UTC))
        finally:
            connector.close()
        [seen] = [when for order_id, when in probed.changes if order_id == "7"]
        assert notified == change_key("7", seen)
        day = "2026-07-15" if zone == "America/New_York" else "2026-07-14"
        assert notified == f"change:7:{day}T{utc}+00:00"


def test_magento_keys_a_notified_change_as_its_probe_does_in_utc(
    magento_server: MagentoEmulator,
) -> None:
    shop = magento_server
    shop.reset()
    created = shop.add_order({"increment_id": "000000007", "items": []})
    stamp = created["updated_at"]
    connector = MagentoConnector(_settings(shop.base_url, shop.token, {}, "s"))
    try:
        raw = body(order_id=str(created["entity_id"]), date_upd=stamp)
        notified = connector.describe_webhook(raw, {}).dedupe_key
        probed = connector.list_changes(dt.datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        connector.close()
    assert probed.changes and notified == change_key(*probed.changes[-1])
    assert notified == f"change:{created['entity_id']}:{stamp.replace(' ', 'T')}+00:00"


def _settings(base_url: str, key: str, extra: dict[str, str], secret: str) -> ShopSettings:
    return ShopSettings(base_url=base_url, api_key=key, webhook_secret=secret, extra=extra)


# --- The change key, written by a notification or the probe and read back by intake --------


@pytest.fixture()
def server_far_east(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own clock 14 hours ahead of UTC: the key must not depend on it."""
    monkeypatch.setenv("TZ", "Etc/GMT-14")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_far_east")
def test_a_change_key_names_the_time_in_utc_whatever_the_servers_zone() -> None:
    paris = dt.timezone(dt.timedelta(hours=2))
    when = dt.datetime(2026, 7, 15, 1, 30, 5, 123456, tzinfo=paris)
    assert change_key("1042", when) == "change:1042:2026-07-14T23:30:05+00:00"


def test_a_change_key_reads_back_as_its_order_time_and_change_id() -> None:
    when = dt.datetime(2026, 7, 14, 23, 30, 5, tzinfo=UTC)
    assert parse_change_key(change_key("1042", when)) == Change("1042", when, "")
    tracking = change_key("1042", when, "tracking:12:6A 123 é")
    assert parse_change_key(tracking) == Change("1042", when, "tracking:12:6A 123 é")


@pytest.mark.parametrize(
    "key",
    [
        "order.status_changed:1042",  # a platform webhook's key, not a change
        "1042:2026-07-14T23:30:05+00:00",
        "change:1042:yesterday",
        "change:1042:2026-07-14T23:30:05",  # no zone: not a key change_key writes
    ],
)
def test_a_key_that_is_no_change_key_reads_back_as_none(key: str) -> None:
    assert parse_change_key(key) is None


def test_an_unknown_event_is_refused_naming_the_events_the_contract_has() -> None:
    with pytest.raises(BadPayload) as refused:
        read(body(event="order.deleted"))
    assert str(refused.value) == (
        "event: 'order.deleted' is not one of order.created, order.status_changed, "
        "order.updated, order.refunded, order.invoiced, order.shipped, order.message_added, test"
    )


def test_a_ping_names_no_order_and_no_time_whatever_it_carries() -> None:
    assert read(body(event="test")) == Notification("test", "", "")
