"""Magento write-back against the loopback store: statuses, cancellation and order comments."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.magento import MagentoEmulator
from web.connectors.base import (
    AuthFailed,
    ConnectorError,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    ShopSettings,
)
from web.connectors.magento import MagentoConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "magento"
NEW = 1043  # pending / new, nothing invoiced yet
INVOICED = 1042  # processing, every item invoiced, one history entry
CANCELLED = 1044  # canceled, two history entries


def order_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


@pytest.fixture(scope="module")
def running_shop() -> Iterator[MagentoEmulator]:
    shop = MagentoEmulator(store_codes=("default", "fr"))
    shop.start()
    yield shop
    shop.stop()


@pytest.fixture()
def shop(running_shop: MagentoEmulator) -> MagentoEmulator:
    running_shop.reset()
    for name in (
        "fr-order-company-bundle.json",
        "fr-order-relay-coupon.json",
        "fr-order-cancelled.json",
    ):
        running_shop.add_order(order_json(name))
    running_shop.requests.clear()
    return running_shop


def connect(shop: MagentoEmulator, *, token: str = "", **extra: str) -> MagentoConnector:
    settings = ShopSettings(
        base_url=shop.base_url, api_key=token or shop.token, timeout=5.0, extra=extra
    )
    return MagentoConnector(settings)


@pytest.fixture()
def connector(shop: MagentoEmulator) -> Iterator[MagentoConnector]:
    client = connect(shop)
    yield client
    client.close()


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
            "comment": "Status updated by Comptoir",
            "is_customer_notified": 1,
            "is_visible_on_front": 0,
            "parent_id": 1043,
            "status": "processing",
        }
    }
    assert outcome == PushOutcome(written=True, remote_ref="")
    assert shop.writes == [("POST", "/rest/V1/orders/1043/comments", post.json())]


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

    assert len(shop.writes) == 1
    assert again == PushOutcome.already_there(str(created))


def test_a_status_set_at_the_shop_is_already_there(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    [entry] = history(shop, INVOICED)
    assert entry["status"] == "processing"

    outcome = connector.push_status(str(INVOICED), "processing", notify=True)

    assert outcome == PushOutcome.already_there(str(entry["entity_id"]))
    assert shop.writes == []
    assert [r.method for r in shop.requests] == ["GET"]


def test_complete_is_recorded_by_a_comment_carrying_the_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(INVOICED), "complete", notify=False)

    assert outcome.written
    [(method, path, sent)] = shop.writes
    assert (method, path) == ("POST", "/rest/V1/orders/1042/comments")
    assert sent["statusHistory"]["status"] == "complete"
    assert sent["statusHistory"]["is_customer_notified"] == 0
    assert connector.fetch_order(str(INVOICED)).status == "complete"


def test_cancel_goes_through_the_cancel_action_then_the_reason(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    reason = "Rupture de stock fournisseur"
    outcome = connector.push_status(str(NEW), "canceled", notify=True, reason=reason)

    assert outcome.written
    assert [(m, p) for m, p, _ in shop.writes] == [
        ("POST", "/rest/V1/orders/1043/cancel"),
        ("POST", "/rest/V1/orders/1043/comments"),
    ]
    assert shop.requests_to("POST", "/cancel")[0].body == b""
    assert shop.writes[1][2] == {
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
    assert len(shop.writes) == 2
    assert again.written is False and again.skipped == ""


def test_a_silent_cancel_without_reason_is_the_cancel_action_alone(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(NEW), "canceled", notify=False)

    assert outcome.written
    assert [p for _, p, _ in shop.writes] == ["/rest/V1/orders/1043/cancel"]
    assert shop.orders[NEW]["status"] == "canceled"


def test_a_cancel_magento_refuses_is_a_permanent_error(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    with pytest.raises(PermanentError, match="refused to cancel order 1042") as caught:
        connector.push_status(str(INVOICED), "canceled", reason="Trop tard")

    assert isinstance(caught.value, ConnectorError)
    assert [p for _, p, _ in shop.writes] == ["/rest/V1/orders/1042/cancel"]
    assert shop.orders[INVOICED]["status"] == "processing"
    assert len(history(shop, INVOICED)) == 1


def test_a_reason_lost_after_the_cancel_is_written_on_retry(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    # The cancel went through, then the process died before the comment.
    shop.update_order(NEW, state="canceled", status="canceled")

    outcome = connector.push_status(str(NEW), "canceled", notify=False, reason="Client injoignable")

    assert outcome.written
    [(_, path, sent)] = shop.writes
    assert path == "/rest/V1/orders/1043/comments"
    assert sent["statusHistory"]["comment"] == "Client injoignable"
    assert connector.push_status(str(NEW), "canceled", reason="Client injoignable").written is False
    assert len(shop.writes) == 1


def test_a_canceled_order_cannot_take_another_status(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_status(str(CANCELLED), "complete")

    assert outcome.written is False
    assert "canceled" in outcome.skipped and "'complete'" in outcome.skipped
    assert shop.writes == []


def test_status_errors_propagate_typed(connector: MagentoConnector, shop: MagentoEmulator) -> None:
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
        connect(shop, token="wrong").push_status(str(NEW), "processing")
    assert shop.writes == []


def test_a_failed_status_write_is_retried_and_lands_once(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.fail_next(503, path_contains="/comments")
    with pytest.raises(PlatformUnavailable):
        connector.push_status(str(NEW), "processing")
    assert shop.writes == [] and shop.orders[NEW]["status"] == "pending"

    assert connector.push_status(str(NEW), "processing").written
    assert connector.push_status(str(NEW), "processing").written is False
    assert len(shop.writes) == 1


def test_a_slow_store_times_out_as_unavailable(shop: MagentoEmulator) -> None:
    settings = ShopSettings(base_url=shop.base_url, api_key=shop.token, timeout=0.5)
    shop.slow_next(1.5, path_contains="/cancel")
    with pytest.raises(PlatformUnavailable, match="timed out"):
        MagentoConnector(settings).push_status(str(NEW), "canceled")


# --- push_comment -----------------------------------------------------------------------------


def test_comment_posts_visibility_notification_and_the_current_status(
    shop: MagentoEmulator,
) -> None:
    text = "Votre colis part demain."
    outcome = connect(shop, store_code="fr").push_comment(
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

    [(_, _, sent)] = shop.writes
    assert sent["statusHistory"]["is_visible_on_front"] == 0
    assert sent["statusHistory"]["is_customer_notified"] == 0
    assert sent["statusHistory"]["status"] == "processing"


def test_a_second_identical_comment_writes_nothing(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    connector.push_comment(str(NEW), "Colis remis à Colissimo.", customer_visible=True)
    created = history(shop, NEW)[0]["entity_id"]

    again = connector.push_comment(str(NEW), "Colis remis à Colissimo.", customer_visible=True)

    assert again == PushOutcome.already_there(str(created))
    assert len(shop.writes) == 1


def test_a_comment_already_in_the_history_is_already_there(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_comment(
        str(CANCELLED), "Relance :  chèque non reçu.\n", customer_visible=False
    )

    assert outcome == PushOutcome.already_there("3401")
    assert shop.writes == []


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
    assert shop.writes == []

    assert connector.push_comment(str(NEW), "Bonjour", customer_visible=True).written
    assert len(history(shop, NEW)) == 1


def test_an_empty_comment_cannot_be_pushed(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    assert connector.push_comment(str(NEW), " ", customer_visible=True).skipped
    assert shop.requests == []


def test_the_emulator_requires_the_documented_comment_fields(shop: MagentoEmulator) -> None:
    client = connect(shop)
    path = "/rest/V1/orders/1043/comments"
    incomplete = {"statusHistory": {"comment": "x", "is_customer_notified": 0, "parent_id": 1043}}
    with pytest.raises(ConnectorError, match="is_visible_on_front"):
        client.http.request("POST", path, json=incomplete)
    assert history(shop, NEW) == []
