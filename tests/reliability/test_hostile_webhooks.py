"""Hostile deliveries to /hooks/<platform>/<key> of the four platforms.

Unsigned or badly signed: refused (401, or 404 for a shop that does not exist) with a reason,
and nothing stored. Signed garbage (what a shop's leaked secret, or a broken plugin, sends):
never a 5xx; at most the delivery itself is kept, refused with its cause for the sync log, or
stored and then applied, parked or retried by the worker, never crashing it. Through the
Flask test client: the view reads the raw body and headers as any WSGI server hands them.
`post_raw` hands it the exact bytes: given `data=b""` under a multipart Content-Type, the
test client would send a multipart body of its own instead, which the signature does not cover.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote as url_quote

import pytest
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.reliability.hostile import (
    ANY_TEXT,
    HEADER_TEXT,
    HOSTILE_TEXT,
    added,
    fuzz_settings,
    row_counts,
)
from web.models import InboxEvent, Shop
from web.models.enums import InboxState
from web.services import shops, sync

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SECRET = "s3cret-du-webhook"
SHOPIFY_TOPICS = ["orders/create", "orders/paid", "orders/delete", "refunds/create"]
WOO_TOPICS = ["order.created", "order.updated", "order.deleted"]
CONTENT_TYPES = [
    "application/json",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/json; charset=latin-1",
    "",
]
DEEP = b"[" * 100_000 + b"]" * 100_000
HUGE = b'{"id": 1, "note": "' + b"A" * (3 * 1024 * 1024) + b'"}'

# JSON of any shape, its strings hostile.
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**30), 10**80)
    | st.floats(allow_nan=False)
    | HOSTILE_TEXT,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4)
    ),
    max_leaves=12,
)


def fixture(platform: str, name: str) -> dict[str, Any]:
    data = json.loads((FIXTURES / platform / name).read_text())
    return data.get("order", data)


def leaf_paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document (objects, lists, the values themselves)."""
    paths = [path] if path else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += leaf_paths(child, (*path, index))
    return paths


def mutated(document: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A real order with one to four of its values, at any depth, replaced by hostile ones."""
    paths = leaf_paths(document)

    def apply(changes: list[tuple[tuple[Any, ...], Any]]) -> dict[str, Any]:
        result = copy.deepcopy(document)
        for path, value in changes:
            target = result
            try:
                for step in path[:-1]:
                    target = target[step]
                target[path[-1]] = value
            except (KeyError, IndexError, TypeError):
                pass  # an earlier change replaced what held this path
        return result

    return st.lists(st.tuples(st.sampled_from(paths), JSON_VALUES), min_size=1, max_size=4).map(
        apply
    )


def bodies(order: dict[str, Any]) -> st.SearchStrategy[bytes]:
    """Raw bytes, JSON of any shape, or the real order mutated."""
    as_json = st.one_of(JSON_VALUES, mutated(order)).map(
        lambda value: json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")
    )
    return st.one_of(st.binary(max_size=300), as_json, as_json, as_json)


@pytest.fixture()
def hook_shops(db_session: Session) -> dict[str, Shop]:
    """A shop of each platform; the API address is closed, so applying fails fast."""
    made = {
        platform: shops.create_shop(
            db_session,
            platform,
            f"Boutique {platform}",
            "http://127.0.0.1:9",
            webhook_secret=SECRET,
            api_key="key",
            api_secret="secret",
        )
        for platform in ("shopify", "woocommerce", "prestashop", "magento")
    }
    db_session.commit()
    return made


def shopify_signature(body: bytes) -> str:
    return base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest()).decode()


woo_signature = shopify_signature  # the same HMAC-SHA256 in base64, under another header


def shopify_headers(topic: str, delivery: str, content_type: str) -> dict[str, str]:
    return {
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": delivery,
        "X-Shopify-Shop-Domain": "boutique.myshopify.com",
        "Content-Type": content_type,
    }


def woo_headers(topic: str, delivery: str, content_type: str) -> dict[str, str]:
    return {
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Delivery-ID": delivery,
        "X-WC-Webhook-Source": "https://boutique.example/",
        "Content-Type": content_type,
    }


PLATFORMS: dict[str, tuple[Callable[..., dict[str, str]], str, list[str], str]] = {
    "shopify": (shopify_headers, "X-Shopify-Hmac-Sha256", SHOPIFY_TOPICS, "shopify-order.json"),
    "woocommerce": (woo_headers, "X-WC-Webhook-Signature", WOO_TOPICS, "woocommerce-order.json"),
}


def deliveries(platform: str) -> st.SearchStrategy[tuple[bytes, dict[str, str]]]:
    """A body and the platform's headers (topic, delivery id, content type), unsigned."""
    make_headers, _signature, names, order_file = PLATFORMS[platform]
    headers = st.builds(
        make_headers,
        topic=st.sampled_from(names) | HEADER_TEXT,
        delivery=HEADER_TEXT,
        content_type=st.sampled_from(CONTENT_TYPES) | HEADER_TEXT,
    )
    return st.tuples(bodies(fixture(platform, order_file)), headers)


def post_raw(client: FlaskClient, url: str, body: bytes, headers: dict[str, str]) -> Any:
    """POST these bytes as they are, whatever the Content-Type says."""
    stream = io.BytesIO(body)
    return client.post(url, input_stream=stream, content_length=len(body), headers=headers)


def assert_refused_with_reason(response: Any, *statuses: int) -> None:
    assert response.status_code in statuses, (response.status_code, response.get_data()[:300])
    assert response.is_json and response.get_json()["error"], response.get_data()[:300]


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_unsigned_or_badly_signed_deliveries_are_refused_and_store_nothing(
    client: FlaskClient, db_session: Session, hook_shops: dict[str, Shop], platform: str
) -> None:
    make_headers, signature_header, names, _order = PLATFORMS[platform]
    shop = hook_shops[platform]
    plain = make_headers(names[0], "1", "application/json")

    @fuzz_settings(reduced=30, full=1_000)
    @given(
        delivery=deliveries(platform),
        signature=st.none()
        | HEADER_TEXT
        | st.binary(min_size=32, max_size=32).map(lambda raw: base64.b64encode(raw).decode()),
    )
    @example(delivery=(b"{}", plain), signature=None)
    @example(delivery=(DEEP, plain), signature="x")
    def deliver(delivery: tuple[bytes, dict[str, str]], signature: str | None) -> None:
        body, headers = delivery[0], dict(delivery[1])
        if signature is not None:
            headers[signature_header] = signature
        before = row_counts(db_session)
        response = post_raw(client, f"/hooks/{platform}/{shop.key}", body, headers)
        if response.status_code == 200:  # a platform's test ping: answered, never stored
            assert response.get_json() == {"status": "ping"}
        else:
            assert_refused_with_reason(response, 401)
        assert added(before, row_counts(db_session)) == {}

    deliver()


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_signed_garbage_is_kept_refused_or_applied_and_never_a_server_error(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    hook_shops: dict[str, Shop],
    platform: str,
) -> None:
    make_headers, signature_header, names, _order = PLATFORMS[platform]
    shop = hook_shops[platform]

    @fuzz_settings(reduced=40, full=1_500)
    @given(delivery=deliveries(platform))
    @example(delivery=(DEEP, make_headers(names[0], "1", "application/json")))
    def deliver(delivery: tuple[bytes, dict[str, str]]) -> None:
        body, headers = delivery[0], dict(delivery[1])
        headers[signature_header] = shopify_signature(body)
        before = row_counts(db_session)
        response = post_raw(client, f"/hooks/{platform}/{shop.key}", body, headers)
        change = added(before, row_counts(db_session))
        assert set(change) <= {"inbox_events"} and change.get("inbox_events", 0) <= 1, change
        new = db_session.scalars(
            select(InboxEvent).where(InboxEvent.shop_id == shop.id).order_by(InboxEvent.id.desc())
        ).first()
        if response.status_code == 400:
            assert_refused_with_reason(response, 400)
            if change:  # the refused delivery, kept with its cause for the sync log
                assert new is not None and new.state == InboxState.REJECTED and new.cause_kind
            return
        assert response.status_code == 200, (response.get_data()[:300], headers, body[:200])
        status = response.get_json()["status"]
        assert status in ("stored", "duplicate", "refused", "ping"), status
        if status == "refused" and change:  # a refused duplicate stores nothing more
            assert new is not None and new.state == InboxState.REJECTED and new.cause_kind
        if status == "stored":
            assert new is not None and change == {"inbox_events": 1}
            # The worker applies it, parks it with its cause, or retries it: never crashes.
            state = sync.process_one(session_factory, new.id)
            db_session.refresh(new)
            assert state in (InboxState.PROCESSED, InboxState.PARKED, InboxState.FAILED)
            assert state == InboxState.PROCESSED or new.cause_kind, new.error

    deliver()


@pytest.mark.parametrize("platform", sorted(PLATFORMS))
def test_the_signature_covers_the_raw_body_whatever_the_content_type(
    client: FlaskClient, hook_shops: dict[str, Shop], platform: str
) -> None:
    """A form or multipart Content-Type must not make Flask parse the body before the HMAC."""
    make_headers, signature_header, names, _order = PLATFORMS[platform]
    url = f"/hooks/{platform}/{hook_shops[platform].key}"
    for content_type in CONTENT_TYPES:
        for body in (b"", b"a=1&b=%C3%A9", b"--x\r\n\r\nbody\r\n--x--\r\n"):
            headers = make_headers(names[0], "raw-1", content_type)
            headers[signature_header] = shopify_signature(body)
            response = post_raw(client, url, body, headers)
            assert response.status_code in (200, 400), (content_type, body, response.get_data())


# A change notification of the PrestaShop and Magento modules (docs/NOTIFICATIONS.md).
NOTIFICATION = {
    "version": 1,
    "event": "order.status_changed",
    "order_id": "1042",
    "date_upd": "2026-12-04 10:15:02",
    "change_id": "tracking:12:6A123",
    "sent_at": "2026-12-04T10:15:02+01:00",
    "module_version": "1.0.0",
    "platform_version": "8.1.7",
}
NOTIFICATION_HEADERS = st.dictionaries(
    st.sampled_from(["X-Comptoir-Event", "X-Shopify-Topic", "Content-Type", "X-Test"]),
    HEADER_TEXT,
)


@pytest.mark.parametrize("platform", ["prestashop", "magento"])
def test_unsigned_or_badly_signed_notifications_are_refused_and_store_nothing(
    client: FlaskClient, db_session: Session, hook_shops: dict[str, Shop], platform: str
) -> None:
    shop = hook_shops[platform]

    @fuzz_settings(reduced=8, full=300)
    @given(
        body=bodies(NOTIFICATION),
        headers=NOTIFICATION_HEADERS,
        signature=st.none() | HEADER_TEXT | st.binary(max_size=40).map(base64.b64encode),
    )
    def deliver(body: bytes, headers: dict[str, str], signature: bytes | str | None) -> None:
        if signature is not None:
            value = signature.decode() if isinstance(signature, bytes) else signature
            if value == shopify_signature(body):
                return  # hypothesis found the secret: not this test's case
            headers = {**headers, "X-Comptoir-Hmac-Sha256": value}
        before = row_counts(db_session)
        response = post_raw(client, f"/hooks/{platform}/{shop.key}", body, headers)
        assert_refused_with_reason(response, 401)
        assert added(before, row_counts(db_session)) == {}

    deliver()


@pytest.mark.parametrize("platform", ["prestashop", "magento"])
def test_signed_garbage_notifications_are_answered_without_a_server_error(
    client: FlaskClient, db_session: Session, hook_shops: dict[str, Shop], platform: str
) -> None:
    """A leaked secret or a broken module: refused with a reason (400), or a change to read."""
    shop = hook_shops[platform]

    @fuzz_settings(reduced=12, full=500)
    @given(body=bodies(NOTIFICATION), headers=NOTIFICATION_HEADERS)
    def deliver(body: bytes, headers: dict[str, str]) -> None:
        signed = {**headers, "X-Comptoir-Hmac-Sha256": shopify_signature(body)}
        response = post_raw(client, f"/hooks/{platform}/{shop.key}", body, signed)
        assert response.status_code in (200, 400), (response.status_code, response.get_data())
        if response.status_code == 400:
            assert_refused_with_reason(response, 400)

    deliver()


def test_unknown_shop_keys_and_platforms_are_404_whatever_they_hold(
    client: FlaskClient, db_session: Session, hook_shops: dict[str, Shop]
) -> None:
    @fuzz_settings(reduced=20, full=600)
    @given(
        platform=st.sampled_from(["shopify", "woocommerce", "prestashop", "magento"]) | ANY_TEXT,
        key=HOSTILE_TEXT,
    )
    @example(platform="shopify", key="\x00")
    @example(platform="woocommerce", key="k" * 300)
    @example(platform="shopify", key=hook_shops["woocommerce"].key)  # another platform's shop
    def deliver(platform: str, key: str) -> None:
        before = row_counts(db_session)
        response = client.post(
            "/hooks/" + "/".join(quote(part) for part in (platform, key)), data=b"{}"
        )
        assert response.status_code in (404, 405), response.status_code
        assert added(before, row_counts(db_session)) == {}

    deliver()


def quote(part: str) -> str:
    return url_quote(part, safe="", errors="surrogatepass")


def test_a_body_over_the_limit_is_413_and_stores_nothing(
    client: FlaskClient, db_session: Session, hook_shops: dict[str, Shop]
) -> None:
    before = row_counts(db_session)
    headers = {**shopify_headers("orders/create", "1", "application/json")}
    headers["X-Shopify-Hmac-Sha256"] = shopify_signature(HUGE)
    url = f"/hooks/shopify/{hook_shops['shopify'].key}"
    response = client.post(url, data=HUGE, headers=headers)
    assert_refused_with_reason(response, 413)
    assert added(before, row_counts(db_session)) == {}
