"""Shopify write-backs (push_status, push_comment) over real HTTP to a loopback shop."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.conftest import Connect
from tests.emulators.base import RecordedRequest, Reply
from tests.emulators.shopify import ShopifyEmulator
from web.connectors.base import (
    AuthFailed,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
)
from web.connectors.shopify import NO_STATUSES, NOTE_LIMIT, ShopifyConnector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
API = "/admin/api/2025-01"
BUYER_NOTE = "Merci de ne pas mettre la facture dans le colis, c'est un cadeau."


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data.get("order", data)


@pytest.fixture()
def shop(shopify_server: ShopifyEmulator) -> ShopifyEmulator:
    shopify_server.reset()
    return shopify_server


def open_order(shop: ShopifyEmulator, **changes: Any) -> str:
    """The French relay-point order (paid, unfulfilled, with a buyer note), stored at the shop."""
    order = copy.deepcopy(fixture("order-fr-relay-point.json"))
    order.update(changes)
    return str(shop.add_order(order)["id"])


# --- push_status: cancel ------------------------------------------------------------------


def test_cancel_reads_the_order_then_posts_the_documented_cancel(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    before = connector.fetch_order(order_id)
    shop.requests.clear()

    outcome = connector.push_status(order_id, "cancel", notify=True, reason="Rupture de stock")

    assert outcome == PushOutcome(written=True, remote_ref="")
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

    assert shop.writes()[0].json() == {"reason": "other", "email": False}
    assert shop.emails == []
    assert shop.orders[order_id]["cancelled_at"]


def test_cancel_twice_writes_once(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    order_id = open_order(shop)

    first = connector.push_status(order_id, "cancel")
    second = connector.push_status(order_id, "cancel")

    assert first.written
    assert second == PushOutcome.already_there()
    assert [r.path for r in shop.writes()] == [f"{API}/orders/{order_id}/cancel.json"]
    assert len(shop.emails) == 1


def test_order_cancelled_at_the_shop_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = str(shop.add_order(fixture("order-fr-cancelled.json"))["id"])

    outcome = connector.push_status(order_id, "cancel", reason="Client injoignable")

    assert outcome == PushOutcome.already_there()
    assert shop.writes() == []


@pytest.mark.parametrize("fulfilment", ["fulfilled", "partial"])
def test_fulfilled_order_cannot_be_cancelled(
    shop: ShopifyEmulator, connector: ShopifyConnector, fulfilment: str
) -> None:
    order_id = open_order(shop, fulfillment_status=fulfilment)

    outcome = connector.push_status(order_id, "cancel")

    assert not outcome.written
    assert "fulfilled or partly fulfilled" in outcome.skipped
    assert shop.writes() == []
    assert shop.orders[order_id]["cancelled_at"] is None


ORDER_ROUTE = r"orders/(?P<id>\d+)\.json"


def after_our_read(
    shop: ShopifyEmulator, monkeypatch: pytest.MonkeyPatch, order_id: str, **changes: Any
) -> None:
    """Someone changes the order at the shop right after our first read of it."""
    handler = next(h for m, p, h in shop.routes if m == "GET" and p.pattern == ORDER_ROUTE)
    done: list[bool] = []

    def read_then_change(request: RecordedRequest, match: re.Match[str]) -> Reply:
        reply = handler(request, match)
        if not done and match.group("id") == order_id:
            done.append(True)
            shop.orders[order_id].update(changes)
        return reply

    hooked = ("GET", re.compile(ORDER_ROUTE), read_then_change)
    monkeypatch.setattr(shop, "routes", [hooked, *shop.routes])


def test_the_shop_refuses_to_cancel_a_fulfilled_order(
    shop: ShopifyEmulator, connector: ShopifyConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fulfilled between our read and our write: Shopify's 422 reaches the caller."""
    order_id = open_order(shop)
    after_our_read(shop, monkeypatch, order_id, fulfillment_status="fulfilled")

    with pytest.raises(ConnectorError, match="HTTP 422"):
        connector.push_status(order_id, "cancel")
    assert shop.orders[order_id]["cancelled_at"] is None


def test_an_order_cancelled_since_our_read_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled by someone between our read and our write: Shopify's 422 means done."""
    order_id = open_order(shop)
    cancelled_at = "2025-03-04T09:00:00+01:00"
    after_our_read(shop, monkeypatch, order_id, cancelled_at=cancelled_at)

    outcome = connector.push_status(order_id, "cancel", notify=True)

    assert outcome == PushOutcome.already_there()
    assert len(shop.requests_to("POST", "/cancel.json")) == 1
    assert shop.orders[order_id]["cancelled_at"] == cancelled_at
    assert shop.emails == []


# --- push_status: close and the rest ------------------------------------------------------


def test_close_posts_close_and_then_is_already_there(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)

    first = connector.push_status(order_id, "close", notify=True)
    second = connector.push_status(order_id, "close", notify=True)

    assert first == PushOutcome(written=True, remote_ref="")
    assert second == PushOutcome.already_there()
    (close,) = shop.writes()
    assert (close.method, close.path) == ("POST", f"{API}/orders/{order_id}/close.json")
    assert close.json() == {}
    assert shop.orders[order_id]["closed_at"]
    assert shop.emails == []  # closing (archiving) e-mails nobody


def test_close_of_an_order_the_shop_archived_writes_nothing(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, closed_at="2025-03-04T09:00:00+01:00")

    assert connector.push_status(order_id, "close") == PushOutcome.already_there()
    assert shop.writes() == []


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

    outcome = connector.push_comment(
        order_id, "Colis reparti le 4 mars.", customer_visible=False, ref="c12"
    )

    assert outcome == PushOutcome(written=True, remote_ref="")
    read, update = shop.requests
    assert (read.method, read.path, read.arg("fields")) == (
        "GET",
        f"{API}/orders/{order_id}.json",
        "id,note",
    )
    assert (update.method, update.path) == ("PUT", f"{API}/orders/{order_id}.json")
    note = f"{BUYER_NOTE}\nComptoir [c12]: Colis reparti le 4 mars."
    assert update.json() == {"order": {"id": int(order_id), "note": note}}
    assert update.headers["x-shopify-access-token"] == shop.access_token
    after = connector.fetch_order(order_id)
    assert after.buyer_note == note
    assert after.updated_at > before.updated_at


def test_a_retried_comment_is_written_once(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)

    connector.push_comment(order_id, "Emballage renforcé.", customer_visible=False, ref="c7")
    again = connector.push_comment(
        order_id, "Emballage renforcé.", customer_visible=False, ref="c7"
    )

    assert again == PushOutcome.already_there()
    assert len(shop.writes()) == 1
    assert shop.orders[order_id]["note"].count("Emballage renforcé.") == 1


def test_two_comments_with_the_same_text_are_both_written(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note="")

    first = connector.push_comment(order_id, "Client rappelé.", customer_visible=False, ref="c1")
    second = connector.push_comment(order_id, "Client rappelé.", customer_visible=False, ref="c2")
    retry = connector.push_comment(order_id, "Client rappelé.", customer_visible=False, ref="c2")

    assert first.written and second.written and not retry.written
    assert shop.orders[order_id]["note"] == (
        "Comptoir [c1]: Client rappelé.\nComptoir [c2]: Client rappelé."
    )


def test_the_same_text_in_the_buyers_note_is_not_our_comment(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note=f"{BUYER_NOTE}\nComptoir: Merci !")

    outcome = connector.push_comment(order_id, "Merci !", customer_visible=False, ref="c3")

    assert outcome.written
    assert shop.orders[order_id]["note"].endswith("Comptoir: Merci !\nComptoir [c3]: Merci !")


def test_customer_visible_comment_is_still_only_a_staff_note(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note=None)

    outcome = connector.push_comment(
        order_id, "Votre colis part demain.", customer_visible=True, notify=True, ref="c4"
    )

    assert outcome == PushOutcome(written=True, remote_ref="")
    assert shop.writes()[0].json()["order"]["note"] == "Comptoir [c4]: Votre colis part demain."
    assert shop.emails == []


def test_multiline_comment_becomes_one_line(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note="")

    connector.push_comment(
        order_id, "Appelé la cliente.\n\n  Relais changé. ", customer_visible=False, ref="c5"
    )
    again = connector.push_comment(
        order_id, "Appelé la cliente.\nRelais changé.", customer_visible=False, ref="c5"
    )

    assert shop.orders[order_id]["note"] == "Comptoir [c5]: Appelé la cliente. / Relais changé."
    assert again.written is False
    assert len(shop.writes()) == 1


def test_without_a_ref_the_line_is_unmarked_and_the_text_anywhere_counts(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note=f"{BUYER_NOTE}\r\nRemboursement fait par Claire\r\n")

    typed = connector.push_comment(
        order_id, "Remboursement fait par Claire", customer_visible=False
    )
    new = connector.push_comment(order_id, "Colis parti.", customer_visible=False)
    again = connector.push_comment(order_id, "Colis parti.", customer_visible=False)

    assert typed == PushOutcome.already_there()
    assert new.written and not again.written
    assert shop.orders[order_id]["note"].endswith("\nComptoir: Colis parti.")
    assert len(shop.writes()) == 1


def test_full_note_drops_our_oldest_lines_never_the_buyers(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    ours = [f"Comptoir [c{index}]: suivi " + "x" * 80 for index in range(24)]
    ours += [f"Comptoir: suivi {index:03d} " + "x" * 80 for index in range(24)]
    note = "\n".join([BUYER_NOTE, *ours])
    assert len(note) <= NOTE_LIMIT
    order_id = open_order(shop, note=note)

    connector.push_comment(order_id, "Dernier mot " + "y" * 200, customer_visible=False, ref="c99")

    written = shop.orders[order_id]["note"]
    assert len(written) <= NOTE_LIMIT
    lines = written.split("\n")
    assert lines[0] == BUYER_NOTE
    assert lines[-1] == "Comptoir [c99]: Dernier mot " + "y" * 200
    kept = lines[1:-1]
    assert kept == ours[len(ours) - len(kept) :]  # the oldest went first
    assert len(kept) < len(ours)


def test_comment_that_cannot_fit_beside_the_buyers_note_cannot_be_pushed(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop, note="b" * (NOTE_LIMIT - 20))

    outcome = connector.push_comment(
        order_id, "Un commentaire trop long pour la place", customer_visible=False, ref="c6"
    )

    assert not outcome.written
    assert "5000 characters" in outcome.skipped
    assert shop.writes() == []


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


# --- errors reach the caller, typed ---------------------------------------------------------


def test_unknown_order_is_not_found(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_status("999999", "cancel")
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("999999", "Bonjour", customer_visible=False)
    with pytest.raises(NotFoundAtShop):
        connector.push_status("#1001", "close")
    assert shop.writes() == []


def test_server_error_on_the_read_writes_nothing(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    shop.fail_next(500)

    with pytest.raises(PlatformUnavailable):
        connector.push_status(order_id, "cancel")
    assert shop.writes() == []
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
    shop.fail_next(503, path_contains=f"/orders/{order_id}.json", method="PUT")

    with pytest.raises(PlatformUnavailable):
        connector.push_comment(order_id, "Bonjour", customer_visible=False, ref="c1")
    assert shop.orders[order_id]["note"] == BUYER_NOTE
    assert connector.push_comment(order_id, "Bonjour", customer_visible=False, ref="c1").written


def test_a_note_whose_answer_was_lost_is_already_there_on_retry(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    order_id = open_order(shop)
    shop.fail_next(502, path_contains=f"/orders/{order_id}.json", method="PUT", after=True)

    with pytest.raises(PlatformUnavailable, match="HTTP 502"):
        connector.push_comment(order_id, "Bonjour", customer_visible=False, ref="c1")
    assert shop.orders[order_id]["note"].endswith("\nComptoir [c1]: Bonjour")

    retry = connector.push_comment(order_id, "Bonjour", customer_visible=False, ref="c1")

    assert retry == PushOutcome.already_there()
    assert len(shop.writes()) == 1


def test_timed_out_write_that_landed_is_already_there_on_retry(
    shop: ShopifyEmulator, connect: Connect
) -> None:
    """A write whose answer never came back: the retry reads the shop and writes nothing."""
    order_id = open_order(shop)
    connector = connect(shop, timeout=0.5)
    shop.slow_next(1.5, path_contains="/cancel.json")

    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.push_status(order_id, "cancel")
    shop.wait_landed()

    assert connector.push_status(order_id, "cancel") == PushOutcome.already_there()
    assert len(shop.requests_to("POST", "/cancel.json")) == 1


def test_revoked_token_is_auth_failed(shop: ShopifyEmulator, connect: Connect) -> None:
    order_id = open_order(shop)

    with pytest.raises(AuthFailed):
        connect(shop, api_key="shpat_revoked").push_comment(
            order_id, "Bonjour", customer_visible=False
        )
    assert shop.writes() == []
