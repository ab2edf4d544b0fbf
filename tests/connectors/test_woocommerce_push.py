"""WooCommerce write-backs (push_status, push_comment) over real HTTP to a loopback shop."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.base import RecordedRequest
from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    RetryableError,
    ShopSettings,
)
from web.connectors.woocommerce import WooCommerceConnector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
API = "/wp-json/wc/v3"
UTC = dt.UTC


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture(scope="module")
def running_shop() -> Iterator[WooCommerceEmulator]:
    emulator = WooCommerceEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture()
def woo(running_shop: WooCommerceEmulator) -> WooCommerceEmulator:
    """The module's loopback shop, emptied for each test."""
    shop = running_shop
    shop.wait_idle()
    with shop._lock:
        shop.orders.clear()
        shop.notes.clear()
        shop.emails.clear()
        shop.custom_statuses.clear()
        shop.requests.clear()
        shop._faults.clear()
    shop.read_only_key = False
    shop.clock = None
    return shop


def connect(shop: WooCommerceEmulator, **overrides: Any) -> WooCommerceConnector:
    options: dict[str, Any] = {
        "base_url": shop.base_url,
        "api_key": shop.consumer_key,
        "api_secret": shop.consumer_secret,
        "timeout": 5.0,
    }
    options.update(overrides)
    return WooCommerceConnector(ShopSettings(**options))


@pytest.fixture()
def connector(woo: WooCommerceEmulator) -> Iterator[WooCommerceConnector]:
    client = connect(woo)
    yield client
    client.close()


def on_hold_order(shop: WooCommerceEmulator) -> str:
    """The French company order with a bundle, on hold at the shop."""
    return shop.add_order(fixture("fr-order-company-bundle.json"))


def writes(shop: WooCommerceEmulator) -> list[RecordedRequest]:
    return [request for request in shop.requests if request.method != "GET"]


def pass_next(shop: WooCommerceEmulator, path_contains: str) -> None:
    """Let the next matching request through untouched (a fault queued behind it waits)."""
    shop.slow_next(0, path_contains=path_contains)


def basic_auth(shop: WooCommerceEmulator) -> str:
    pair = f"{shop.consumer_key}:{shop.consumer_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def shop_notes(shop: WooCommerceEmulator, order_id: str) -> list[tuple[str, bool]]:
    return [(note["note"], note["customer_note"]) for note in shop.notes.get(order_id, [])]


# --- push_status --------------------------------------------------------------------------


def test_status_reads_the_order_then_puts_the_documented_body(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    before = connector.fetch_order(order_id)
    woo.requests.clear()

    outcome = connector.push_status(order_id, "completed", notify=False)

    assert outcome == PushOutcome(written=True, remote_ref="completed")
    read, update = woo.requests
    assert (read.method, read.path) == ("GET", f"{API}/orders/{order_id}")
    assert (update.method, update.path) == ("PUT", f"{API}/orders/{order_id}")
    assert update.json() == {"status": "completed"}
    for request in woo.requests:
        assert request.headers["authorization"] == basic_auth(woo)

    after = connector.fetch_order(order_id)
    assert after.status == "completed"
    assert after.updated_at > before.updated_at
    polled = connector.list_orders(before.updated_at + dt.timedelta(seconds=1))
    assert [(o.external_id, o.status) for o in polled.orders] == [(order_id, "completed")]
    # Core's own trace of the change, and its e-mail, which notify=False cannot hold back.
    assert shop_notes(woo, order_id) == [("Order status changed from On hold to Completed.", False)]
    assert woo.emails == [
        {"to": "customer", "template": "customer_completed_order", "order_id": int(order_id)}
    ]


def test_same_status_twice_writes_once(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    first = connector.push_status(order_id, "processing")
    second = connector.push_status(order_id, "processing")

    assert first.written
    assert second == PushOutcome.already_there("processing")
    assert [(r.method, r.path) for r in writes(woo)] == [("PUT", f"{API}/orders/{order_id}")]
    assert len(woo.emails) == 1


def test_order_cancelled_at_the_shop_is_already_there_without_a_note(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = woo.add_order(fixture("fr-order-cancelled-colissimo-relay.json"))

    outcome = connector.push_status(order_id, "cancelled", reason="Client injoignable")

    assert outcome == PushOutcome.already_there("cancelled")
    assert not outcome.skipped
    assert writes(woo) == []
    assert [r.path for r in woo.requests] == [f"{API}/orders/{order_id}"]


def test_cancellation_reason_becomes_a_private_note_before_the_status(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    outcome = connector.push_status(order_id, "cancelled", reason="Rupture de stock")

    assert outcome == PushOutcome(written=True, remote_ref="cancelled")
    read, notes, add, update = woo.requests
    assert (read.method, read.path) == ("GET", f"{API}/orders/{order_id}")
    assert (notes.method, notes.path, notes.arg("type")) == (
        "GET",
        f"{API}/orders/{order_id}/notes",
        "any",
    )
    assert (add.method, add.path) == ("POST", f"{API}/orders/{order_id}/notes")
    assert add.json() == {
        "note": "Cancellation reason: Rupture de stock",
        "customer_note": False,
        "added_by_user": False,
    }
    assert (update.method, update.path, update.json()) == (
        "PUT",
        f"{API}/orders/{order_id}",
        {"status": "cancelled"},
    )
    assert woo.orders[order_id]["status"] == "cancelled"
    assert shop_notes(woo, order_id) == [
        ("Cancellation reason: Rupture de stock", False),
        ("Order status changed from On hold to Cancelled.", False),
    ]


def test_retry_after_the_note_landed_only_sets_the_status(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    # The first attempt wrote the note, then the status write failed.
    pass_next(woo, f"/orders/{order_id}")  # GET order
    pass_next(woo, f"/orders/{order_id}")  # GET notes
    pass_next(woo, f"/orders/{order_id}")  # POST note
    woo.fail_next(503, path_contains=f"/orders/{order_id}")  # PUT status
    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "cancelled", reason="Rupture de stock")
    assert woo.orders[order_id]["status"] == "on-hold"
    woo.requests.clear()

    outcome = connector.push_status(order_id, "cancelled", reason="Rupture de stock")

    assert outcome.written
    assert [(r.method, r.path) for r in writes(woo)] == [("PUT", f"{API}/orders/{order_id}")]
    reasons = [n for n, _ in shop_notes(woo, order_id) if n.startswith("Cancellation")]
    assert reasons == ["Cancellation reason: Rupture de stock"]


def test_reason_for_another_status_is_labelled(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    connector.push_status(order_id, "processing", reason="Virement reçu")

    assert shop_notes(woo, order_id)[0] == ("Processing: Virement reçu", False)


def test_unregistered_status_is_refused_by_the_shop(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    with pytest.raises(ConnectorError, match="HTTP 400") as caught:
        connector.push_status(order_id, "shipped")

    assert not isinstance(caught.value, RetryableError)
    assert woo.orders[order_id]["status"] == "on-hold"
    woo.custom_statuses["shipped"] = "Expédiée"
    assert connector.push_status(order_id, "shipped").written
    assert woo.orders[order_id]["status"] == "shipped"


def test_empty_status_is_refused_before_any_request(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    with pytest.raises(BadPayload):
        connector.push_status(order_id, "  ")
    assert woo.requests == []


# --- push_comment -------------------------------------------------------------------------


def test_comment_reads_the_notes_then_posts_the_documented_note(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    outcome = connector.push_comment(
        order_id, "Colis préparé, départ demain.", customer_visible=False
    )

    listing, add = woo.requests
    assert (listing.method, listing.path, listing.arg("type")) == (
        "GET",
        f"{API}/orders/{order_id}/notes",
        "any",
    )
    assert (add.method, add.path) == ("POST", f"{API}/orders/{order_id}/notes")
    assert add.json() == {
        "note": "Colis préparé, départ demain.",
        "customer_note": False,
        "added_by_user": False,
    }
    assert add.headers["authorization"] == basic_auth(woo)
    (stored,) = woo.notes[order_id]
    assert outcome == PushOutcome(written=True, remote_ref=str(stored["id"]))
    assert woo.emails == []


def test_same_comment_twice_writes_once_and_names_the_note(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    first = connector.push_comment(order_id, "Emballage renforcé.", customer_visible=True)
    second = connector.push_comment(order_id, "Emballage renforcé.", customer_visible=True)

    assert second == PushOutcome.already_there(first.remote_ref)
    assert len(writes(woo)) == 1
    assert len(woo.notes[order_id]) == 1


def test_customer_note_is_emailed_even_without_notify(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    connector.push_comment(
        order_id, "Votre colis part demain.", customer_visible=True, notify=False
    )

    assert writes(woo)[0].json()["customer_note"] is True
    assert woo.emails == [
        {"to": "customer", "template": "customer_note", "order_id": int(order_id)}
    ]
    customer_only = connector.http.request(
        "GET", f"{API}/orders/{order_id}/notes", params={"type": "customer"}
    ).json()
    assert [note["note"] for note in customer_only] == ["Votre colis part demain."]


def test_same_text_with_the_other_visibility_is_a_new_note(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)

    private = connector.push_comment(order_id, "Relais changé.", customer_visible=False)
    public = connector.push_comment(order_id, "Relais changé.", customer_visible=True)

    assert private.written and public.written
    assert private.remote_ref != public.remote_ref
    assert sorted(shop_notes(woo, order_id)) == [
        ("Relais changé.", False),
        ("Relais changé.", True),
    ]


def test_note_written_at_the_shop_is_already_there(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    woo.notes[order_id] = [
        {
            "id": 777,
            "author": "claire",
            "date_created": "2024-06-18T11:00:00",
            "date_created_gmt": "2024-06-18T09:00:00",
            "note": "Colis &amp; facture séparés",
            "customer_note": False,
        }
    ]

    outcome = connector.push_comment(order_id, "Colis & facture séparés", customer_visible=False)

    assert outcome == PushOutcome.already_there("777")
    assert writes(woo) == []


def test_empty_comment_is_refused(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    with pytest.raises(BadPayload):
        connector.push_comment(order_id, "   ", customer_visible=False)
    assert woo.requests == []


def test_keys_in_the_query_reach_the_write_endpoints(woo: WooCommerceEmulator) -> None:
    order_id = on_hold_order(woo)
    connector = connect(woo, extra={"auth": "query"})

    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written
    assert connector.push_status(order_id, "completed").written

    for request in woo.requests:
        assert "authorization" not in request.headers
        assert request.arg("consumer_key") == woo.consumer_key
    connector.close()


# --- errors reach the caller, typed ---------------------------------------------------------


def test_unknown_order_is_not_found(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_status("424242", "completed")
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("424242", "Bonjour", customer_visible=False)
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("#4133", "Bonjour", customer_visible=False)
    assert writes(woo) == []


def test_server_error_on_the_read_writes_nothing(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    woo.fail_next(500)

    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "completed")
    assert writes(woo) == []
    assert woo.orders[order_id]["status"] == "on-hold"


def test_rate_limited_note_write_carries_retry_after_and_the_retry_writes_once(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    pass_next(woo, "/notes")  # the read goes through; the write is refused
    woo.fail_next(429, retry_after="7", path_contains="/notes")

    with pytest.raises(RateLimited) as caught:
        connector.push_comment(order_id, "Bonjour", customer_visible=False)
    assert caught.value.retry_after == 7
    assert woo.notes.get(order_id, []) == []

    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written
    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written is False
    assert len(woo.notes[order_id]) == 1


def test_read_only_key_is_auth_failed_on_the_write(
    woo: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(woo)
    woo.read_only_key = True

    with pytest.raises(AuthFailed) as caught:
        connector.push_status(order_id, "completed")

    assert isinstance(caught.value, PermanentError)
    assert woo.orders[order_id]["status"] == "on-hold"
