"""Shopify write-backs (push_status, push_comment) over real HTTP to a loopback shop."""

from __future__ import annotations

import copy
import datetime as dt
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.base import RecordedRequest
from tests.emulators.shopify import ShopifyEmulator
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    ShopSettings,
)
from web.connectors.shopify import NO_STATUSES, NOTE_LIMIT, ShopifyConnector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
API = "/admin/api/2025-01"
BUYER_NOTE = "Merci de ne pas mettre la facture dans le colis, c'est un cadeau."


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data.get("order", data)


@pytest.fixture(scope="module")
def running_shop() -> Iterator[ShopifyEmulator]:
    emulator = ShopifyEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture()
def shop(running_shop: ShopifyEmulator) -> ShopifyEmulator:
    running_shop.reset()
    return running_shop


def connect(shop: ShopifyEmulator, **overrides: Any) -> ShopifyConnector:
    options: dict[str, Any] = {
        "base_url": shop.base_url,
        "api_key": shop.access_token,
        "timeout": 5.0,
    }
    options.update(overrides)
    return ShopifyConnector(ShopSettings(**options))


@pytest.fixture()
def connector(shop: ShopifyEmulator) -> Iterator[ShopifyConnector]:
    client = connect(shop)
    yield client
    client.close()


def open_order(shop: ShopifyEmulator, **changes: Any) -> str:
    """The French relay-point order (paid, unfulfilled, with a buyer note), stored at the shop."""
    order = copy.deepcopy(fixture("order-fr-relay-point.json"))
    order.update(changes)
    return str(shop.add_order(order)["id"])


def writes(shop: ShopifyEmulator) -> list[RecordedRequest]:
    return [request for request in shop.requests if request.method != "GET"]


def pass_next(shop: ShopifyEmulator, path_contains: str) -> None:
    """Let the next matching request through untouched (a fault queued behind it waits)."""
    shop.slow_next(0, path_contains=path_contains)


# --- push_status: cancel ------------------------------------------------------------------


def test_cancel_reads_the_order_then_posts_the_documented_cancel(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    before = connector.fetch_order(order_id)
    shop.requests.clear()

    outcome = connector.push_status(order_id, "cancel", notify=True, reason="Rupture de stock")

    assert outcome == PushOutcome(written=True, remote_ref="cancel")
    read, cancel = shop.requests
    assert (read.method, read.path) == ("GET", f"{API}/orders/{order_id}.json")
    assert read.arg("fields") == "id,cancelled_at,closed_at,fulfillment_status"
    assert (cancel.method, cancel.path) == ("POST", f"{API}/orders/{order_id}/cancel.json")
    assert cancel.json() == {"reason": "other", "email": True}
    assert cancel.headers["content-type"] == "application/json"
    for request in shop.requests:
        assert request.headers["x-shopify-access-token"] == shop.access_token
    assert shop.emails == [
        {"to": "customer", "template": "order_cancelled", "order_id": int(order_id)}
    ]

    # The shop now shows it, to a fetch and to the next poll.
    after = connector.fetch_order(order_id)
    assert after.status == "cancelled"
    assert after.cancelled_at is not None
    assert after.cancel_reason == "other"
    assert after.updated_at > before.updated_at
    polled = connector.list_orders(before.updated_at + dt.timedelta(seconds=1))
    assert [(o.external_id, o.status) for o in polled.orders] == [(order_id, "cancelled")]


def test_cancel_without_notify_sends_email_false(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)

    connector.push_status(order_id, "cancel", notify=False)

    assert writes(shop)[0].json() == {"reason": "other", "email": False}
    assert shop.emails == []
    assert shop.orders[order_id]["cancelled_at"]


def test_cancel_twice_writes_once(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    order_id = open_order(shop)

    first = connector.push_status(order_id, "cancel")
    second = connector.push_status(order_id, "cancel")

    assert first.written
    assert second == PushOutcome.already_there("cancel")
    assert [r.path for r in writes(shop)] == [f"{API}/orders/{order_id}/cancel.json"]
    assert len(shop.emails) == 1


def test_order_cancelled_at_the_shop_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = str(shop.add_order(fixture("order-fr-cancelled.json"))["id"])

    outcome = connector.push_status(order_id, "cancel", reason="Client injoignable")

    assert outcome == PushOutcome.already_there("cancel")
    assert not outcome.written and not outcome.skipped
    assert writes(shop) == []


@pytest.mark.parametrize("fulfilment", ["fulfilled", "partial"])
def test_fulfilled_order_cannot_be_cancelled(
    shop: ShopifyEmulator, connector: ShopifyConnector, fulfilment: str
) -> None:
    order_id = open_order(shop, fulfillment_status=fulfilment)

    outcome = connector.push_status(order_id, "cancel")

    assert not outcome.written
    assert "fulfilled or partly fulfilled" in outcome.skipped
    assert writes(shop) == []
    assert shop.orders[order_id]["cancelled_at"] is None


def test_the_shop_refuses_to_cancel_a_fulfilled_order(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    """Fulfilled between our read and our write: Shopify's 422 reaches the caller."""
    order_id = open_order(shop, fulfillment_status="fulfilled")

    with pytest.raises(ConnectorError, match="HTTP 422"):
        connector.http.request(
            "POST", f"{API}/orders/{order_id}/cancel.json", json={"reason": "other"}
        )
    assert shop.orders[order_id]["cancelled_at"] is None


# --- push_status: close and the rest ------------------------------------------------------


def test_close_posts_close_and_then_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)

    first = connector.push_status(order_id, "close", notify=True)
    second = connector.push_status(order_id, "close", notify=True)

    assert first == PushOutcome(written=True, remote_ref="close")
    assert second == PushOutcome.already_there("close")
    (close,) = writes(shop)
    assert (close.method, close.path) == ("POST", f"{API}/orders/{order_id}/close.json")
    assert close.json() == {}
    assert shop.orders[order_id]["closed_at"]
    assert shop.emails == []  # closing (archiving) e-mails nobody


def test_close_of_an_order_the_shop_archived_writes_nothing(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, closed_at="2025-03-04T09:00:00+01:00")

    assert connector.push_status(order_id, "close") == PushOutcome.already_there("close")
    assert writes(shop) == []


@pytest.mark.parametrize("status", ["paid", "processing", "completed", "open", ""])
def test_other_statuses_cannot_be_pushed(
    shop: ShopifyEmulator, connector: ShopifyConnector, status: str
) -> None:
    order_id = open_order(shop)

    outcome = connector.push_status(order_id, status)

    assert outcome == PushOutcome.cannot(NO_STATUSES)
    assert shop.requests == []


# --- push_comment: the order note ---------------------------------------------------------


def test_comment_is_appended_to_the_note_keeping_the_buyers_text(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    before = connector.fetch_order(order_id)
    shop.requests.clear()

    outcome = connector.push_comment(order_id, "Colis reparti le 4 mars.", customer_visible=False)

    assert outcome == PushOutcome(written=True, remote_ref="note")
    read, update = shop.requests
    assert (read.method, read.path, read.arg("fields")) == (
        "GET",
        f"{API}/orders/{order_id}.json",
        "id,note",
    )
    assert (update.method, update.path) == ("PUT", f"{API}/orders/{order_id}.json")
    assert update.json() == {
        "order": {"id": int(order_id), "note": f"{BUYER_NOTE}\nComptoir: Colis reparti le 4 mars."}
    }
    assert update.headers["x-shopify-access-token"] == shop.access_token
    after = connector.fetch_order(order_id)
    assert after.buyer_note == f"{BUYER_NOTE}\nComptoir: Colis reparti le 4 mars."
    assert after.updated_at > before.updated_at


def test_same_comment_twice_writes_once(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    order_id = open_order(shop)

    connector.push_comment(order_id, "Emballage renforcé.", customer_visible=False)
    again = connector.push_comment(order_id, "Emballage renforcé.", customer_visible=False)

    assert again == PushOutcome.already_there("note")
    assert len(writes(shop)) == 1
    assert shop.orders[order_id]["note"].count("Emballage renforcé.") == 1


def test_customer_visible_comment_is_still_only_a_staff_note(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note=None)

    outcome = connector.push_comment(
        order_id, "Votre colis part demain.", customer_visible=True, notify=True
    )

    assert outcome == PushOutcome(written=True, remote_ref="note")
    assert writes(shop)[0].json()["order"]["note"] == "Comptoir: Votre colis part demain."
    assert shop.emails == []


def test_multiline_comment_becomes_one_line(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note="")

    connector.push_comment(
        order_id, "Appelé la cliente.\n\n  Relais changé. ", customer_visible=False
    )
    again = connector.push_comment(
        order_id, "Appelé la cliente.\nRelais changé.", customer_visible=False
    )

    assert shop.orders[order_id]["note"] == "Comptoir: Appelé la cliente. / Relais changé."
    assert again.written is False
    assert len(writes(shop)) == 1


def test_comment_typed_at_the_shop_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note=f"{BUYER_NOTE}\r\nRemboursement fait par Claire\r\n")

    outcome = connector.push_comment(
        order_id, "Remboursement fait par Claire", customer_visible=False
    )

    assert outcome == PushOutcome.already_there("note")
    assert writes(shop) == []


def test_full_note_drops_our_oldest_lines_never_the_buyers(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    ours = [f"Comptoir: suivi {index:03d} " + "x" * 80 for index in range(48)]
    note = "\n".join([BUYER_NOTE, *ours])
    assert len(note) <= NOTE_LIMIT
    order_id = open_order(shop, note=note)

    connector.push_comment(order_id, "Dernier mot " + "y" * 200, customer_visible=False)

    written = shop.orders[order_id]["note"]
    assert len(written) <= NOTE_LIMIT
    lines = written.split("\n")
    assert lines[0] == BUYER_NOTE
    assert lines[-1] == "Comptoir: Dernier mot " + "y" * 200
    kept = lines[1:-1]
    assert kept == ours[len(ours) - len(kept) :]  # the oldest went first
    assert len(kept) < len(ours)


def test_comment_that_cannot_fit_beside_the_buyers_note_is_refused(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note="b" * (NOTE_LIMIT - 20))

    with pytest.raises(BadPayload, match="5000 characters"):
        connector.push_comment(
            order_id, "Un commentaire trop long pour la place", customer_visible=False
        )
    assert writes(shop) == []


def test_the_shop_refuses_a_note_over_its_limit(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    """The emulator holds Shopify's limit, so a connector that overflowed would fail."""
    order_id = open_order(shop)
    with pytest.raises(ConnectorError, match="HTTP 422"):
        connector.http.request(
            "PUT",
            f"{API}/orders/{order_id}.json",
            json={"order": {"id": int(order_id), "note": "z" * (NOTE_LIMIT + 1)}},
        )
    assert shop.orders[order_id]["note"] == BUYER_NOTE


def test_empty_comment_is_refused(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    order_id = open_order(shop)
    with pytest.raises(BadPayload):
        connector.push_comment(order_id, " \n ", customer_visible=False)
    assert shop.requests == []


# --- errors reach the caller, typed ---------------------------------------------------------


def test_unknown_order_is_not_found(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_status("999999", "cancel")
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("999999", "Bonjour", customer_visible=False)
    with pytest.raises(NotFoundAtShop):
        connector.push_status("#1001", "close")
    assert writes(shop) == []


def test_server_error_on_the_read_writes_nothing(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    shop.fail_next(500)

    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "cancel")
    assert writes(shop) == []
    assert shop.orders[order_id]["cancelled_at"] is None


def test_rate_limited_write_carries_retry_after_and_the_retry_writes_once(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    shop.fail_next(429, retry_after="7", path_contains="/cancel.json")

    with pytest.raises(RateLimited) as caught:
        connector.push_status(order_id, "cancel")
    assert caught.value.retry_after == 7
    assert shop.orders[order_id]["cancelled_at"] is None

    assert connector.push_status(order_id, "cancel").written
    assert connector.push_status(order_id, "cancel").written is False
    assert len(shop.requests_to("POST", "/cancel.json")) == 2  # the refused one and the retry


def test_server_error_on_the_note_write(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    order_id = open_order(shop)
    pass_next(shop, f"/orders/{order_id}.json")
    shop.fail_next(503, path_contains=f"/orders/{order_id}.json")

    with pytest.raises(PlatformUnavailable):
        connector.push_comment(order_id, "Bonjour", customer_visible=False)
    assert shop.orders[order_id]["note"] == BUYER_NOTE
    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written


def test_timed_out_write_that_landed_is_already_there_on_retry(shop: ShopifyEmulator) -> None:
    """A write whose answer never came back: the retry reads the shop and writes nothing."""
    order_id = open_order(shop)
    connector = connect(shop, timeout=0.3)
    shop.slow_next(0.6, path_contains="/cancel.json")

    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.push_status(order_id, "cancel")
    deadline = time.monotonic() + 3
    while not shop.orders[order_id].get("cancelled_at") and time.monotonic() < deadline:
        time.sleep(0.05)

    assert connector.push_status(order_id, "cancel") == PushOutcome.already_there("cancel")
    assert len(shop.requests_to("POST", "/cancel.json")) == 1
    connector.close()


def test_revoked_token_is_auth_failed(shop: ShopifyEmulator) -> None:
    order_id = open_order(shop)
    connector = connect(shop, api_key="shpat_revoked")

    with pytest.raises(AuthFailed):
        connector.push_comment(order_id, "Bonjour", customer_visible=False)
    assert writes(shop) == []
