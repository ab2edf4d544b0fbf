"""WooCommerce write-backs (push_status, push_comment) over real HTTP to a loopback shop."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.conftest import Connect
from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import (
    AuthFailed,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    RetryableError,
)
from web.connectors.woocommerce import WooCommerceConnector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
API = "/wp-json/wc/v3"
UTC = dt.UTC


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture()
def shop(woocommerce_server: WooCommerceEmulator) -> WooCommerceEmulator:
    woocommerce_server.reset()
    return woocommerce_server


def on_hold_order(shop: WooCommerceEmulator) -> str:
    """The French company order with a bundle, on hold at the shop."""
    return shop.add_order(fixture("fr-order-company-bundle.json"))


def basic_auth(shop: WooCommerceEmulator) -> str:
    pair = f"{shop.consumer_key}:{shop.consumer_secret}".encode()
    return "Basic " + base64.b64encode(pair).decode()


def shop_notes(shop: WooCommerceEmulator, order_id: str) -> list[tuple[str, bool]]:
    return [(note["note"], note["customer_note"]) for note in shop.notes.get(order_id, [])]


# --- push_status --------------------------------------------------------------------------


def test_status_reads_the_order_then_puts_the_documented_body(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    before = connector.fetch_order(order_id)
    shop.requests.clear()

    outcome = connector.push_status(order_id, "completed", notify=False)

    assert outcome == PushOutcome(written=True, remote_ref="")
    read, update = shop.requests
    assert (read.method, read.path) == ("GET", f"{API}/orders/{order_id}")
    assert (update.method, update.path) == ("PUT", f"{API}/orders/{order_id}")
    assert update.json() == {"status": "completed"}
    for request in shop.requests:
        assert request.headers["authorization"] == basic_auth(shop)

    after = connector.fetch_order(order_id)
    assert after.status == "completed"
    assert after.updated_at > before.updated_at
    polled = connector.list_orders(before.updated_at + dt.timedelta(seconds=1))
    assert [(o.external_id, o.status) for o in polled.orders] == [(order_id, "completed")]
    # Core's own trace of the change, and its e-mail, which notify=False cannot hold back.
    assert shop_notes(shop, order_id) == [
        ("Order status changed from On hold to Completed.", False)
    ]
    assert shop.emails == [
        {"to": "customer", "template": "customer_completed_order", "order_id": int(order_id)}
    ]


def test_same_status_twice_writes_once(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    first = connector.push_status(order_id, "processing")
    second = connector.push_status(order_id, "processing")

    assert first.written
    assert second == PushOutcome.already_there()
    assert [(r.method, r.path) for r in shop.writes()] == [("PUT", f"{API}/orders/{order_id}")]
    assert len(shop.emails) == 1


def test_order_cancelled_at_the_shop_is_already_there_without_a_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = shop.add_order(fixture("fr-order-cancelled-colissimo-relay.json"))

    outcome = connector.push_status(order_id, "cancelled", reason="Client injoignable")

    assert outcome == PushOutcome.already_there()
    assert not outcome.skipped
    assert shop.writes() == []
    assert [r.path for r in shop.requests] == [f"{API}/orders/{order_id}"]


def test_cancellation_reason_becomes_a_private_note_before_the_status(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    outcome = connector.push_status(order_id, "cancelled", reason="Rupture de stock")

    assert outcome == PushOutcome(written=True, remote_ref="")
    read, notes, add, update = shop.requests
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
    assert shop.orders[order_id]["status"] == "cancelled"
    assert shop_notes(shop, order_id) == [
        ("Cancellation reason: Rupture de stock", False),
        ("Order status changed from On hold to Cancelled.", False),
    ]


def test_retry_after_the_note_landed_only_sets_the_status(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    # The first attempt wrote the note, then the status write failed.
    shop.fail_next(503, path_contains=f"/orders/{order_id}", method="PUT")
    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "cancelled", reason="Rupture de stock")
    assert shop.orders[order_id]["status"] == "on-hold"
    shop.requests.clear()

    outcome = connector.push_status(order_id, "cancelled", reason="Rupture de stock")

    assert outcome.written
    assert [(r.method, r.path) for r in shop.writes()] == [("PUT", f"{API}/orders/{order_id}")]
    reasons = [n for n, _ in shop_notes(shop, order_id) if n.startswith("Cancellation")]
    assert reasons == ["Cancellation reason: Rupture de stock"]


def test_reason_for_another_status_is_labelled(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    connector.push_status(order_id, "processing", reason="Virement reçu")

    assert shop_notes(shop, order_id)[0] == ("Processing: Virement reçu", False)


def test_unregistered_status_is_refused_by_the_shop(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    with pytest.raises(ConnectorError, match="HTTP 400") as caught:
        connector.push_status(order_id, "shipped")

    assert not isinstance(caught.value, RetryableError)
    assert shop.orders[order_id]["status"] == "on-hold"
    shop.custom_statuses["shipped"] = "Expédiée"
    assert connector.push_status(order_id, "shipped").written
    assert shop.orders[order_id]["status"] == "shipped"


# --- push_comment -------------------------------------------------------------------------


def test_comment_reads_the_notes_then_posts_the_documented_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    outcome = connector.push_comment(
        order_id, "Colis préparé, départ demain.", customer_visible=False
    )

    listing, add = shop.requests
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
    assert add.headers["authorization"] == basic_auth(shop)
    (stored,) = shop.notes[order_id]
    assert outcome == PushOutcome(written=True, remote_ref=str(stored["id"]))
    assert shop.emails == []


def test_same_comment_twice_writes_once_and_names_the_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    first = connector.push_comment(order_id, "Emballage renforcé.", customer_visible=True)
    second = connector.push_comment(order_id, "Emballage renforcé.", customer_visible=True)

    assert second == PushOutcome.already_there(first.remote_ref)
    assert len(shop.writes()) == 1
    assert len(shop.notes[order_id]) == 1


def test_customer_note_is_emailed_even_without_notify(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    connector.push_comment(
        order_id, "Votre colis part demain.", customer_visible=True, notify=False
    )

    assert shop.writes()[0].json()["customer_note"] is True
    assert shop.emails == [
        {"to": "customer", "template": "customer_note", "order_id": int(order_id)}
    ]
    customer_only = connector.http.request(
        "GET", f"{API}/orders/{order_id}/notes", params={"type": "customer"}
    ).json()
    assert [note["note"] for note in customer_only] == ["Votre colis part demain."]


def test_same_text_with_the_other_visibility_is_a_new_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)

    private = connector.push_comment(order_id, "Relais changé.", customer_visible=False)
    public = connector.push_comment(order_id, "Relais changé.", customer_visible=True)

    assert private.written and public.written
    assert private.remote_ref != public.remote_ref
    assert sorted(shop_notes(shop, order_id)) == [
        ("Relais changé.", False),
        ("Relais changé.", True),
    ]


def test_note_written_at_the_shop_is_already_there(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    shop.notes[order_id] = [
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
    assert shop.writes() == []


def test_a_note_with_the_same_text_from_before_the_comment_is_another_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    shop.notes[order_id] = [
        {
            "id": 777,
            "author": "claire",
            "date_created": "2024-06-18T11:00:00",
            "date_created_gmt": "2024-06-18T09:00:00",
            "note": "Colis parti.",
            "customer_note": False,
        }
    ]
    queued = dt.datetime(2024, 6, 20, 8, 0, tzinfo=UTC)

    outcome = connector.push_comment(order_id, "Colis parti.", customer_visible=False, since=queued)

    assert outcome.written and outcome.remote_ref != "777"
    assert shop_notes(shop, order_id) == [("Colis parti.", False), ("Colis parti.", False)]


def test_two_comments_with_the_same_text_are_both_written(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    queued = dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    shop.clock = queued + dt.timedelta(seconds=3)
    first = connector.push_comment(
        order_id, "Client rappelé.", customer_visible=False, since=queued
    )

    later = queued + dt.timedelta(hours=5)
    shop.clock = later + dt.timedelta(seconds=3)
    second = connector.push_comment(
        order_id, "Client rappelé.", customer_visible=False, since=later
    )
    retry = connector.push_comment(order_id, "Client rappelé.", customer_visible=False, since=later)

    assert first.written and second.written
    assert retry == PushOutcome.already_there(second.remote_ref)
    assert shop_notes(shop, order_id) == [("Client rappelé.", False), ("Client rappelé.", False)]


def test_a_shop_clock_a_little_behind_still_finds_our_note(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    queued = dt.datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    shop.clock = queued - dt.timedelta(seconds=90)  # within CLOCK_SKEW

    first = connector.push_comment(order_id, "Bonjour", customer_visible=True, since=queued)
    retry = connector.push_comment(order_id, "Bonjour", customer_visible=True, since=queued)

    assert retry == PushOutcome.already_there(first.remote_ref)
    assert len(shop.notes[order_id]) == 1


def test_keys_in_the_query_reach_the_write_endpoints(
    shop: WooCommerceEmulator, connect: Connect
) -> None:
    order_id = on_hold_order(shop)
    connector = connect(shop, extra={"auth": "query"})

    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written
    assert connector.push_status(order_id, "completed").written

    for request in shop.requests:
        assert "authorization" not in request.headers
        assert request.arg("consumer_key") == shop.consumer_key


# --- errors reach the caller, typed ---------------------------------------------------------


def test_unknown_order_is_not_found(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_status("424242", "completed")
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("424242", "Bonjour", customer_visible=False)
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("#4133", "Bonjour", customer_visible=False)
    assert shop.writes() == []


def test_server_error_on_the_read_writes_nothing(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    shop.fail_next(500)

    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "completed")
    assert shop.writes() == []
    assert shop.orders[order_id]["status"] == "on-hold"


def test_rate_limited_note_write_carries_retry_after_and_the_retry_writes_once(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    shop.fail_next(429, retry_after="7", path_contains="/notes", method="POST")

    with pytest.raises(RateLimited) as caught:
        connector.push_comment(order_id, "Bonjour", customer_visible=False)
    assert caught.value.retry_after == 7
    assert shop.notes.get(order_id, []) == []

    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written
    assert connector.push_comment(order_id, "Bonjour", customer_visible=False).written is False
    assert len(shop.notes[order_id]) == 1


def test_read_only_key_is_auth_failed_on_the_write(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    shop.read_only_key = True

    with pytest.raises(AuthFailed):
        connector.push_status(order_id, "completed")

    assert shop.orders[order_id]["status"] == "on-hold"


def test_a_note_whose_answer_was_lost_is_already_there_on_retry(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = on_hold_order(shop)
    queued = dt.datetime.now(UTC)
    shop.fail_next(502, path_contains="/notes", method="POST", after=True)

    with pytest.raises(PlatformUnavailable, match="HTTP 502"):
        connector.push_comment(order_id, "Bonjour", customer_visible=True, since=queued)
    [landed] = shop.notes[order_id]

    retry = connector.push_comment(order_id, "Bonjour", customer_visible=True, since=queued)

    assert retry == PushOutcome.already_there(str(landed["id"]))
    assert len(shop.writes()) == 1
    assert len(shop.emails) == 1
