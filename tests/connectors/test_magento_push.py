"""Magento write-back against the loopback store: statuses, cancellation and order comments."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.conftest import Connect
from tests.emulators.magento import MagentoEmulator
from web.connectors.base import (
    AuthFailed,
    ConnectorError,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
)
from web.connectors.magento import MagentoConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "magento"
NEW = 1043  # pending / new, nothing invoiced yet
INVOICED = 1042  # processing, every item invoiced, one history entry
CANCELLED = 1044  # canceled, two history entries


def order_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


@pytest.fixture()
def shop(magento_server: MagentoEmulator) -> MagentoEmulator:
    magento_server.reset()
    for name in (
        "fr-order-company-bundle.json",
        "fr-order-relay-coupon.json",
        "fr-order-cancelled.json",
    ):
        magento_server.add_order(order_json(name))
    magento_server.requests.clear()
    return magento_server


def sent(shop: MagentoEmulator) -> list[tuple[str, str, Any]]:
    """(method, path, body) of each write the store served."""
    return [(r.method, r.path, r.json() if r.body else None) for r in shop.writes()]


def history(shop: MagentoEmulator, order_id: int) -> list[dict[str, Any]]:
    return list(shop.orders[order_id].get("status_histories") or [])


# --- push_status ------------------------------------------------------------------------------


def test_status_reads_the_order_then_posts_one_comment_with_the_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(NEW), "processing", notify=True)

    assert [(r.method, r.path) for r in shop.requests] == [
        ("GET", "/rest/V1/orders/1043"),
        ("POST", "/rest/V1/orders/1043/comments"),
    ]
    post = shop.requests[1]
    assert post.headers["authorization"] == f"Bearer {shop.token}"
    assert post.headers["content-type"] == "application/json"
    assert post.query == []
    assert post.json() == {
        "statusHistory": {
            "comment": "Order status: Processing.",
            "is_customer_notified": 1,
            "is_visible_on_front": 0,
            "parent_id": 1043,
            "status": "processing",
        }
    }
    assert outcome == PushOutcome(written=True, remote_ref="")
    assert sent(shop) == [("POST", "/rest/V1/orders/1043/comments", post.json())]


def test_the_new_status_shows_in_later_reads_and_polls(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    before = shop.orders[NEW]["updated_at"]
    latest = max(order["updated_at"] for order in shop.orders.values())
    connector.push_status(str(NEW), "processing", notify=False, reason="Paiement reçu")

    order = connector.fetch_order(str(NEW))
    assert order.status == "processing"
    assert shop.orders[NEW]["updated_at"] > before
    newest = history(shop, NEW)[0]
    assert (newest["comment"], newest["status"], newest["is_customer_notified"]) == (
        "Paiement reçu",
        "processing",
        0,
    )
    since = dt.datetime.strptime(latest, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
    polled = connector.list_orders(since + dt.timedelta(seconds=1)).orders
    assert [(o.external_id, o.status) for o in polled] == [("1043", "processing")]


def test_a_second_identical_status_call_writes_nothing(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    connector.push_status(str(NEW), "processing")
    created = history(shop, NEW)[0]["entity_id"]

    again = connector.push_status(str(NEW), "processing")

    assert len(shop.writes()) == 1
    assert again == PushOutcome.already_there(str(created))


def test_a_status_set_at_the_shop_is_already_there(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    [entry] = history(shop, INVOICED)
    assert entry["status"] == "processing"

    outcome = connector.push_status(str(INVOICED), "processing", notify=True)

    assert outcome == PushOutcome.already_there(str(entry["entity_id"]))
    assert sent(shop) == []
    assert [r.method for r in shop.requests] == ["GET"]


def test_complete_is_recorded_by_a_comment_carrying_the_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(INVOICED), "complete", notify=False)

    assert outcome.written
    [(method, path, body)] = sent(shop)
    assert (method, path) == ("POST", "/rest/V1/orders/1042/comments")
    assert body["statusHistory"]["status"] == "complete"
    assert body["statusHistory"]["is_customer_notified"] == 0
    assert body["statusHistory"]["comment"] == "Status updated by Comptoir"  # staff only
    assert connector.fetch_order(str(INVOICED)).status == "complete"


def test_cancel_goes_through_the_cancel_action_then_the_reason(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    reason = "Rupture de stock fournisseur"
    outcome = connector.push_status(str(NEW), "canceled", notify=True, reason=reason)

    assert outcome.written
    assert [(m, p) for m, p, _ in sent(shop)] == [
        ("POST", "/rest/V1/orders/1043/cancel"),
        ("POST", "/rest/V1/orders/1043/comments"),
    ]
    assert shop.requests_to("POST", "/cancel")[0].body == b""
    assert sent(shop)[1][2] == {
        "statusHistory": {
            "comment": reason,
            "is_customer_notified": 1,
            "is_visible_on_front": 0,
            "parent_id": 1043,
            "status": "canceled",
        }
    }
    order = connector.fetch_order(str(NEW))
    assert (order.status, order.cancel_reason) == ("canceled", reason)
    assert all(item["qty_canceled"] == item["qty_ordered"] for item in shop.orders[NEW]["items"])

    again = connector.push_status(str(NEW), "canceled", notify=True, reason=reason)
    assert len(shop.writes()) == 2
    assert again.written is False and again.skipped == ""


def test_a_silent_cancel_without_reason_is_the_cancel_action_alone(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(NEW), "canceled", notify=False)

    assert outcome.written
    assert [p for _, p, _ in sent(shop)] == ["/rest/V1/orders/1043/cancel"]
    assert shop.orders[NEW]["status"] == "canceled"


def test_a_cancel_magento_refuses_is_a_permanent_error(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    with pytest.raises(PermanentError, match="refused to cancel order 1042"):
        connector.push_status(str(INVOICED), "canceled", reason="Trop tard")

    assert [p for _, p, _ in sent(shop)] == ["/rest/V1/orders/1042/cancel"]
    assert shop.orders[INVOICED]["status"] == "processing"
    assert len(history(shop, INVOICED)) == 1


def test_a_reason_lost_after_the_cancel_is_written_on_retry(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    # The cancel went through, then the process died before the comment.
    shop.update_order(NEW, state="canceled", status="canceled")

    outcome = connector.push_status(str(NEW), "canceled", notify=False, reason="Client injoignable")

    assert outcome.written
    [(_, path, body)] = sent(shop)
    assert path == "/rest/V1/orders/1043/comments"
    assert body["statusHistory"]["comment"] == "Client injoignable"
    assert connector.push_status(str(NEW), "canceled", reason="Client injoignable").written is False
    assert len(shop.writes()) == 1


def test_a_canceled_state_with_a_custom_status_is_already_canceled(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.update_order(CANCELLED, status="annulee_client")

    outcome = connector.push_status(str(CANCELLED), "canceled", notify=True)

    assert outcome == PushOutcome.already_there("3402")
    assert sent(shop) == []
    assert shop.requests_to("POST", "/cancel") == []


def test_a_reason_lost_after_a_cancel_to_a_custom_status_keeps_that_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.update_order(NEW, state="canceled", status="annulee_client")

    outcome = connector.push_status(str(NEW), "canceled", reason="Client injoignable")

    assert outcome.written
    [(_, path, body)] = sent(shop)
    assert path == "/rest/V1/orders/1043/comments"
    assert body["statusHistory"]["status"] == "annulee_client"
    assert shop.orders[NEW]["status"] == "annulee_client"


def test_a_canceled_order_cannot_take_another_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(CANCELLED), "complete")

    assert outcome.written is False
    assert "canceled" in outcome.skipped and "'complete'" in outcome.skipped
    assert sent(shop) == []


def test_status_errors_propagate_typed(
    connector: MagentoConnector, shop: MagentoEmulator, connect: Connect
) -> None:
    shop.fail_next(500)
    with pytest.raises(PlatformUnavailable):
        connector.push_status(str(NEW), "processing")

    shop.fail_next(429, retry_after="12")
    with pytest.raises(RateLimited) as caught:
        connector.push_status(str(NEW), "processing")
    assert caught.value.retry_after == 12

    with pytest.raises(NotFoundAtShop):
        connector.push_status("999", "processing")

    with pytest.raises(AuthFailed):
        connect(shop, api_key="wrong").push_status(str(NEW), "processing")
    assert sent(shop) == []


def test_a_failed_status_write_is_retried_and_lands_once(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.fail_next(503, path_contains="/comments")
    with pytest.raises(PlatformUnavailable):
        connector.push_status(str(NEW), "processing")
    assert sent(shop) == [] and shop.orders[NEW]["status"] == "pending"

    assert connector.push_status(str(NEW), "processing").written
    assert connector.push_status(str(NEW), "processing").written is False
    assert len(shop.writes()) == 1


def test_a_slow_store_times_out_as_unavailable(shop: MagentoEmulator, connect: Connect) -> None:
    shop.slow_next(1.5, path_contains="/cancel")
    with pytest.raises(PlatformUnavailable, match="timed out"):
        connect(shop, timeout=0.5).push_status(str(NEW), "canceled")
    shop.wait_landed()


# --- push_comment -----------------------------------------------------------------------------


def test_comment_posts_visibility_notification_and_the_current_status(
    shop: MagentoEmulator, connect: Connect
) -> None:
    text = "Votre colis part demain."
    outcome = connect(shop, extra={"store_code": "fr"}).push_comment(
        str(NEW), text, customer_visible=True, notify=True
    )

    assert [(r.method, r.path) for r in shop.requests] == [
        ("GET", "/rest/fr/V1/orders/1043"),
        ("POST", "/rest/fr/V1/orders/1043/comments"),
    ]
    assert shop.requests[1].headers["authorization"] == f"Bearer {shop.token}"
    assert shop.requests[1].json() == {
        "statusHistory": {
            "comment": text,
            "is_customer_notified": 1,
            "is_visible_on_front": 1,
            "parent_id": 1043,
            "status": "pending",
        }
    }
    assert outcome == PushOutcome(written=True, remote_ref="")
    assert shop.orders[NEW]["status"] == "pending"  # the comment does not move the status
    assert history(shop, NEW)[0]["comment"] == text


def test_a_private_comment_is_neither_visible_nor_emailed(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    connector.push_comment(str(INVOICED), "Client prévenu par téléphone.", customer_visible=False)

    [(_, _, body)] = sent(shop)
    assert body["statusHistory"]["is_visible_on_front"] == 0
    assert body["statusHistory"]["is_customer_notified"] == 0
    assert body["statusHistory"]["status"] == "processing"


def test_a_second_identical_comment_writes_nothing(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    queued = dt.datetime.now(dt.UTC)
    connector.push_comment(
        str(NEW), "Colis remis à Colissimo.", customer_visible=True, since=queued
    )
    created = history(shop, NEW)[0]["entity_id"]

    again = connector.push_comment(
        str(NEW), "Colis remis à Colissimo.", customer_visible=True, since=queued
    )

    assert again == PushOutcome.already_there(str(created))
    assert len(shop.writes()) == 1


def test_a_private_entry_already_in_the_history_is_already_there(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    private = {
        "comment": "Chèque  encaissé.",
        "created_at": "2025-03-10 08:00:00",
        "entity_id": 3403,
        "entity_name": "order",
        "is_customer_notified": 0,
        "is_visible_on_front": 0,
        "parent_id": 1044,
        "status": "canceled",
    }
    shop.update_order(CANCELLED, status_histories=[private, *history(shop, CANCELLED)])

    outcome = connector.push_comment(str(CANCELLED), "Chèque encaissé.\n", customer_visible=False)

    assert outcome == PushOutcome.already_there("3403")
    assert sent(shop) == []


def test_the_same_text_shown_to_the_buyer_is_another_comment(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    """3401 "Relance : chèque non reçu." is visible on the front: a private one is new."""
    outcome = connector.push_comment(
        str(CANCELLED), "Relance :  chèque non reçu.\n", customer_visible=False
    )

    assert outcome.written
    newest = history(shop, CANCELLED)[0]
    assert (newest["comment"], newest["is_visible_on_front"]) == ("Relance :  chèque non reçu.", 0)


def test_two_comments_with_the_same_text_are_both_written(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    queued = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)  # after every fixture's dates
    shop.clock = lambda: queued + dt.timedelta(seconds=3)
    first = connector.push_comment(
        str(NEW), "Client rappelé.", customer_visible=False, since=queued
    )

    later = queued + dt.timedelta(hours=5)
    shop.clock = lambda: later + dt.timedelta(seconds=3)
    second = connector.push_comment(
        str(NEW), "Client rappelé.", customer_visible=False, since=later
    )
    retry = connector.push_comment(str(NEW), "Client rappelé.", customer_visible=False, since=later)

    assert first.written and second.written
    assert retry == PushOutcome.already_there(str(history(shop, NEW)[0]["entity_id"]))
    assert [entry["comment"] for entry in history(shop, NEW)] == ["Client rappelé."] * 2


def test_a_comment_whose_answer_was_lost_is_already_there_on_retry(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    queued = dt.datetime.now(dt.UTC)
    shop.fail_next(502, path_contains="/comments", after=True)

    with pytest.raises(PlatformUnavailable, match="HTTP 502"):
        connector.push_comment(str(NEW), "Bonjour", customer_visible=True, since=queued)
    [landed] = history(shop, NEW)

    retry = connector.push_comment(str(NEW), "Bonjour", customer_visible=True, since=queued)

    assert retry == PushOutcome.already_there(str(landed["entity_id"]))
    assert len(shop.writes()) == 1


def test_comment_errors_propagate_typed(connector: MagentoConnector, shop: MagentoEmulator) -> None:
    shop.fail_next(503, path_contains="/comments")
    with pytest.raises(PlatformUnavailable):
        connector.push_comment(str(NEW), "Bonjour", customer_visible=True)

    shop.fail_next(429, retry_after="3", path_contains="/comments")
    with pytest.raises(RateLimited) as caught:
        connector.push_comment(str(NEW), "Bonjour", customer_visible=True)
    assert caught.value.retry_after == 3

    with pytest.raises(NotFoundAtShop):
        connector.push_comment("999", "Bonjour", customer_visible=True)
    assert sent(shop) == []

    assert connector.push_comment(str(NEW), "Bonjour", customer_visible=True).written
    assert len(history(shop, NEW)) == 1


# --- the emulator -----------------------------------------------------------------------------


def test_the_emulator_requires_the_documented_comment_fields(
    shop: MagentoEmulator, connector: MagentoConnector
) -> None:
    path = "/rest/V1/orders/1043/comments"
    incomplete = {"statusHistory": {"comment": "x", "is_customer_notified": 0, "parent_id": 1043}}
    with pytest.raises(ConnectorError, match="is_visible_on_front"):
        connector.http.request("POST", path, json=incomplete)
    assert history(shop, NEW) == []


def test_the_emulator_clears_the_status_of_a_comment_without_one(
    shop: MagentoEmulator, connector: MagentoConnector
) -> None:
    """Order::addStatusHistory copies the entry's status, null included, onto the order."""
    history_entry = {"comment": "x", "is_customer_notified": 0, "is_visible_on_front": 0}
    connector.http.request(
        "POST",
        "/rest/V1/orders/1043/comments",
        json={"statusHistory": {**history_entry, "parent_id": 1043}},
    )
    assert shop.orders[NEW]["status"] is None
