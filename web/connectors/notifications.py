"""Change notifications from Comptoir's PrestaShop and Magento modules (docs/NOTIFICATIONS.md).

A notification says which order changed and when, never the order itself: the body is read
strictly here, the platform's connector turns its `date_upd` into UTC (PrestaShop stores shop
local time, Magento UTC), and the inbox event it becomes is keyed on the change, the same key
the change probe stores for a change it finds (`change_key`), so one change is read once.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from web.connectors.base import BadPayload, WebhookDelivery, check_body_signature

SIGNATURE_HEADER = "X-Comptoir-Hmac-Sha256"
VERSION = 1
EVENTS = (
    "order.created",
    "order.status_changed",
    "order.updated",
    "order.refunded",
    "order.invoiced",
    "order.shipped",
    "order.message_added",
    "test",
)
PING_EVENT = "test"
TOPIC_PREFIX = "notify/"
CHANGE_PREFIX = "change:"
CHANGE_ID_LENGTH = 100
_ORDER_ID = re.compile(r"[0-9]{1,20}")
_DATE_UPD = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# Any text but control characters (a tracking number may hold spaces or accents): it ends
# the dedupe key, which is shown and compared.
_CHANGE_ID = re.compile(rf"[^\x00-\x1f\x7f-\x9f]{{1,{CHANGE_ID_LENGTH}}}")
_ISO_LENGTH = len("2026-12-04T10:15:02+00:00")


@dataclass(frozen=True)
class Notification:
    """What a notification says: the event, the order id and its `date_upd` as sent, and the
    change id of a change that does not move `date_upd` ("" otherwise)."""

    event: str
    order_id: str
    date_upd: str
    change_id: str = ""

    @property
    def is_ping(self) -> bool:
        return self.event == PING_EVENT


def verify(secret: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Raise InvalidSignature unless X-Comptoir-Hmac-Sha256 signs the raw body."""
    received = next(
        (value for name, value in headers.items() if name.lower() == SIGNATURE_HEADER.lower()),
        "",
    )
    check_body_signature(secret, body, received, SIGNATURE_HEADER)


def read(body: bytes) -> Notification:
    """The notification in a body, read strictly: BadPayload naming what breaks the contract."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadPayload("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise BadPayload("the body is not a JSON object")
    version = data.get("version")
    if isinstance(version, bool) or version != VERSION:
        raise BadPayload(f"version: {version!r} is not {VERSION}")
    event = _text(data, "event")
    if event not in EVENTS:
        raise BadPayload(f"event: {event!r} is not one of {', '.join(EVENTS)}")
    order_id, date_upd = _text(data, "order_id"), _text(data, "date_upd")
    change_id = _text(data, "change_id", required=False)
    if event == PING_EVENT:
        return Notification(event, "", "")
    if not _ORDER_ID.fullmatch(order_id):
        raise BadPayload(f"order_id: {order_id!r} is not an order id (decimal digits)")
    if not _DATE_UPD.fullmatch(date_upd):
        raise BadPayload(f"date_upd: {date_upd!r} is not a YYYY-MM-DD HH:MM:SS time")
    if change_id and not _CHANGE_ID.fullmatch(change_id):
        raise BadPayload(f"change_id: at most {CHANGE_ID_LENGTH} characters, none a control one")
    return Notification(event, order_id, date_upd, change_id)


def _text(data: dict[str, Any], name: str, *, required: bool = True) -> str:
    value = data.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise BadPayload(f"{name}: expected a string, got {value!r}"[:200])
    return value


def describe(body: bytes, to_utc: Callable[[str, str], dt.datetime | None]) -> WebhookDelivery:
    """The inbox identity of a notification; `to_utc(date_upd, field)` is the connector's
    reading of the shop's time (None for a time the shop leaves unset)."""
    notification = read(body)
    topic = f"{TOPIC_PREFIX}{notification.event}"
    if notification.is_ping:
        return WebhookDelivery(topic=topic, dedupe_key="", is_ping=True)
    when = to_utc(notification.date_upd, "date_upd")
    if when is None:
        raise BadPayload(f"date_upd: {notification.date_upd!r} is not a time")
    return WebhookDelivery(
        topic=topic,
        dedupe_key=change_key(notification.order_id, when, notification.change_id),
        external_order_id=notification.order_id,
    )


def change_key(order_id: str, updated_at: dt.datetime, change_id: str = "") -> str:
    """`change:{order id}:{modification time, UTC ISO 8601}[:{change id}]`: one change of one
    order, whoever saw it (a notification or the change probe)."""
    stamp = updated_at.astimezone(dt.UTC).replace(microsecond=0).isoformat()
    return f"{CHANGE_PREFIX}{order_id}:{stamp}" + (f":{change_id}" if change_id else "")


@dataclass(frozen=True)
class Change:
    """A change key read back: the order, its modification time, the change id ("" if none)."""

    order_id: str
    updated_at: dt.datetime
    change_id: str


def parse_change_key(key: str) -> Change | None:
    """The change a `change_key` names; None for any other key."""
    if not key.startswith(CHANGE_PREFIX):
        return None
    order_id, _, rest = key[len(CHANGE_PREFIX) :].partition(":")
    try:
        updated_at = dt.datetime.fromisoformat(rest[:_ISO_LENGTH])
    except ValueError:
        return None
    if updated_at.tzinfo is None:
        return None
    return Change(order_id, updated_at, rest[_ISO_LENGTH + 1 :])
