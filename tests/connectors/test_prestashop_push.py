"""PrestaShop write-back against the loopback webservice: state changes and order messages."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import re
import xml.etree.ElementTree as ET
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.connectors.conftest import Connect
from tests.emulators.base import RecordedRequest
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, order_record
from web.connectors.base import (
    ConnectorError,
    NotFoundAtShop,
    ParcelToPush,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    RetryableError,
    ShipmentToPush,
)
from web.connectors.prestashop import PrestaShopConnector

ORDER = "7"
PARIS = ZoneInfo("Europe/Paris")
PLACED = "2025-03-10 10:00:00"
BASIC = "Basic " + base64.b64encode(f"{DEFAULT_KEY}:".encode()).decode()


@pytest.fixture()
def shop(prestashop_server: PrestaShopEmulator) -> PrestaShopEmulator:
    """A fresh install holding order 7 of the demo customer, paid (state 2)."""
    prestashop_server.reset()
    prestashop_server.add_order(order_record(7, PLACED, id_shop="1"))
    prestashop_server.requests.clear()
    return prestashop_server


def body(request: RecordedRequest, node: str) -> dict[str, str]:
    """The fields of the one object a webservice write carries."""
    root = ET.fromstring(request.body)
    assert root.tag == "prestashop"
    children = list(root)
    assert [child.tag for child in children] == [node]
    return {field.tag: field.text or "" for field in children[0]}


def add_thread(shop: PrestaShopEmulator, order_id: str = ORDER) -> str:
    return shop.add(
        "customer_threads",
        {
            "id_lang": "1",
            "id_shop": "1",
            "id_customer": "1",
            "id_order": order_id,
            "id_contact": "0",
            "email": "pub@prestashop.com",
            "token": "Ab3dEf6hIj9k",
            "status": "open",
        },
    )


def add_message(shop: PrestaShopEmulator, thread: str, text: str, private: str) -> str:
    return shop.add(
        "customer_messages",
        {"id_customer_thread": thread, "id_employee": "1", "message": text, "private": private},
    )


# --- push_status ------------------------------------------------------------------------------


def test_status_reads_the_order_then_posts_one_order_history(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_status(ORDER, "4", notify=True)

    assert [(r.method, r.path) for r in shop.requests] == [
        ("GET", "/api/orders/7"),
        ("POST", "/api/order_histories"),
    ]
    post = shop.requests[1]
    assert post.query == [("sendemail", "1")]
    assert post.headers["authorization"] == BASIC
    assert post.headers["content-type"].startswith("text/xml")
    assert body(post, "order_history") == {"id_order": "7", "id_order_state": "4"}
    [history] = shop.objects("order_histories")
    assert outcome == PushOutcome(written=True, remote_ref=history["id"])
    assert (history["id_order"], history["id_order_state"]) == ("7", "4")


def test_the_new_state_shows_in_later_reads_and_polls(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert connector.list_orders(before).orders == ()

    connector.push_status(ORDER, "4")

    assert shop.get("orders", ORDER)["date_upd"] > PLACED
    assert connector.fetch_order(ORDER).status == "4"
    polled = connector.list_orders(before).orders
    assert [(order.external_id, order.status) for order in polled] == [("7", "4")]


def test_without_notify_no_email_is_asked(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    connector.push_status(ORDER, "3", notify=False)

    [post] = shop.requests_to("POST", "/api/order_histories")
    assert post.query == []
    assert body(post, "order_history") == {"id_order": "7", "id_order_state": "3"}


def test_a_second_identical_call_writes_nothing(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    first = connector.push_status(ORDER, "4")
    writes = len(shop.writes())

    second = connector.push_status(ORDER, "4")

    assert first.remote_ref
    assert len(shop.writes()) == writes == 1
    assert second == PushOutcome.already_there()
    assert len(shop.objects("order_histories")) == 1


def test_a_state_set_at_the_shop_is_already_there(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.update_order(ORDER, current_state="6")
    row = shop.add("order_histories", {"id_order": ORDER, "id_order_state": "6"})
    shop.requests.clear()

    outcome = connector.push_status(ORDER, "6", notify=True)

    assert row and outcome == PushOutcome.already_there()
    assert [(r.method, r.path) for r in shop.requests] == [("GET", "/api/orders/7")]
    assert outcome.written is False and outcome.skipped == ""


def test_a_cancellation_reason_becomes_one_private_message(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_status(ORDER, "6", reason="Rupture de stock fournisseur")

    assert outcome.written
    posts = [(r.path, r.query) for r in shop.writes()]
    assert posts == [
        ("/api/order_histories", [("sendemail", "1")]),
        ("/api/customer_threads", []),
        ("/api/customer_messages", []),
    ]
    message = body(shop.writes()[2], "customer_message")
    assert message["message"] == "Cancellation reason: Rupture de stock fournisseur"
    assert message["private"] == "1"

    again = connector.push_status(ORDER, "6", reason="Rupture de stock fournisseur")
    assert len(shop.writes()) == 3
    assert again == PushOutcome.already_there()


def test_a_reason_lost_after_the_state_change_is_written_on_retry(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    # The state went through, then the process died before the message.
    shop.update_order(ORDER, current_state="6")
    shop.requests.clear()

    outcome = connector.push_status(ORDER, "6", reason="Client injoignable")

    assert outcome.written
    assert [r.path for r in shop.writes()] == ["/api/customer_threads", "/api/customer_messages"]
    [message] = shop.objects("customer_messages")
    assert (message["message"], message["private"]) == (
        "Cancellation reason: Client injoignable",
        "1",
    )
    assert outcome.remote_ref == message["id"]


def test_a_state_that_is_not_an_id_cannot_be_pushed(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_status(ORDER, "shipped")

    assert outcome.written is False
    assert "numeric ids" in outcome.skipped and "'shipped'" in outcome.skipped
    assert shop.requests == []


def test_an_unknown_order_is_not_found_and_nothing_is_written(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_status("404", "4")
    assert shop.writes() == []


def test_a_server_error_is_retryable(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.fail_next(500)
    with pytest.raises(PlatformUnavailable):
        connector.push_status(ORDER, "4")
    assert shop.writes() == []


def test_rate_limiting_carries_retry_after(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.fail_next(429, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        connector.push_status(ORDER, "4")
    assert caught.value.retry_after == 7


def test_a_failed_write_is_retried_once_and_lands_once(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.fail_next(503, path_contains="/api/order_histories")
    with pytest.raises(PlatformUnavailable):
        connector.push_status(ORDER, "4")
    assert shop.objects("order_histories") == []

    outcome = connector.push_status(ORDER, "4")

    assert outcome.written
    assert len(shop.objects("order_histories")) == 1


def test_a_slow_shop_times_out_as_unavailable(shop: PrestaShopEmulator, connect: Connect) -> None:
    shop.slow_next(1.5, path_contains="/api/order_histories")
    with pytest.raises(PlatformUnavailable, match="timed out"):
        connect(shop, timeout=0.5).push_status(ORDER, "4")
    shop.wait_landed()


# --- push_comment -----------------------------------------------------------------------------


def test_first_comment_creates_the_thread_then_the_message(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_comment(ORDER, "Votre colis part demain.", customer_visible=True)

    reads = [(r.path, r.query) for r in shop.requests if r.method == "GET"]
    assert reads[0] == (
        "/api/customer_threads",
        [("display", "[id]"), ("filter[id_order]", "[7]"), ("sort", "[id_ASC]")],
    )
    assert [r.path for r in shop.writes()] == ["/api/customer_threads", "/api/customer_messages"]
    thread = body(shop.writes()[0], "customer_thread")
    token = thread.pop("token")
    assert re.fullmatch(r"[A-Za-z0-9]{12}", token)
    assert thread == {
        "id_order": "7",
        "id_customer": "1",
        "id_shop": "1",
        "id_lang": "1",
        "id_contact": "0",
        "email": "pub@prestashop.com",
        "status": "open",
    }
    [stored_thread] = shop.objects("customer_threads")
    assert body(shop.writes()[1], "customer_message") == {
        "id_customer_thread": stored_thread["id"],
        "id_employee": "1",
        "message": "Votre colis part demain.",
        "private": "0",
    }
    assert all(r.headers["authorization"] == BASIC for r in shop.requests)
    [message] = shop.objects("customer_messages")
    assert outcome == PushOutcome(written=True, remote_ref=message["id"])


def test_a_second_identical_comment_writes_nothing(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    text = "Colis « fragile » & lourd <2 colis>"
    first = connector.push_comment(ORDER, text, customer_visible=False)
    writes = len(shop.writes())

    second = connector.push_comment(ORDER, text, customer_visible=False)

    assert len(shop.writes()) == writes == 2
    assert second == PushOutcome.already_there(first.remote_ref)
    [message] = shop.objects("customer_messages")
    assert (message["message"], message["private"]) == (text, "1")


def test_a_message_already_in_the_thread_is_already_there(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    thread = add_thread(shop)
    existing = add_message(shop, thread, "Retard transporteur,\r\nlivraison lundi.", "0")
    shop.requests.clear()

    outcome = connector.push_comment(
        ORDER, "Retard transporteur,\nlivraison lundi.", customer_visible=True
    )

    assert outcome == PushOutcome.already_there(existing)
    assert shop.writes() == []
    listed = shop.requests_to("GET", "/api/customer_messages")[0]
    assert listed.arg("filter[id_customer_thread]") == f"[{thread}]"


def test_the_same_text_with_another_visibility_is_a_new_message_in_the_same_thread(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    thread = add_thread(shop)
    add_message(shop, thread, "Remboursement effectué.", "1")
    shop.requests.clear()

    outcome = connector.push_comment(ORDER, "Remboursement effectué.", customer_visible=True)

    assert outcome.written
    assert [r.path for r in shop.writes()] == ["/api/customer_messages"]
    sent = body(shop.writes()[0], "customer_message")
    assert (sent["id_customer_thread"], sent["private"]) == (thread, "0")
    assert len(shop.objects("customer_threads")) == 1


def test_notify_cannot_make_prestashop_send_an_email(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_comment(ORDER, "Expédié.", customer_visible=True, notify=True)

    assert outcome.written  # the message is still written
    assert all(r.query == [] for r in shop.writes())


def test_a_configured_employee_signs_the_message(
    shop: PrestaShopEmulator, connect: Connect
) -> None:
    add_thread(shop)
    shop.requests.clear()

    connect(shop, extra={"id_employee": "3"}).push_comment(
        ORDER, "Note interne.", customer_visible=False
    )

    assert shop.requests_to("GET", "/api/employees") == []
    assert body(shop.writes()[0], "customer_message")["id_employee"] == "3"


def test_comment_on_an_unknown_order_is_not_found(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    with pytest.raises(NotFoundAtShop):
        connector.push_comment("404", "Bonjour", customer_visible=True)
    assert shop.writes() == []


def test_comment_errors_propagate_typed(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.fail_next(429, retry_after="30", path_contains="/api/customer_threads")
    with pytest.raises(RateLimited) as caught:
        connector.push_comment(ORDER, "Bonjour", customer_visible=True)
    assert caught.value.retry_after == 30

    shop.fail_next(500, path_contains="/api/customer_messages")
    with pytest.raises(PlatformUnavailable):
        connector.push_comment(ORDER, "Bonjour", customer_visible=True)
    assert shop.objects("customer_messages") == []

    outcome = connector.push_comment(ORDER, "Bonjour", customer_visible=True)
    assert outcome.written
    # The thread created before the failure is reused: one thread, one message.
    assert len(shop.objects("customer_threads")) == 1
    assert len(shop.objects("customer_messages")) == 1


def shop_time(shop: PrestaShopEmulator, when: dt.datetime) -> None:
    """Set the shop's clock (shop-local, naive, as PrestaShop stores dates) to `when`."""
    local = when.astimezone(PARIS).replace(tzinfo=None, microsecond=0)
    shop.clock = lambda: local


def test_a_message_from_before_the_comment_is_another_message(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    thread = add_thread(shop)
    shop.add(
        "customer_messages",
        {
            "id_customer_thread": thread,
            "id_employee": "1",
            "message": "Colis parti.",
            "private": "1",
            "date_add": "2025-03-10 11:00:00",  # Paris time: 10:00 UTC
        },
    )
    queued = dt.datetime(2025, 3, 10, 10, 5, tzinfo=dt.UTC)

    outcome = connector.push_comment(ORDER, "Colis parti.", customer_visible=False, since=queued)

    assert outcome.written
    assert [m["message"] for m in shop.objects("customer_messages")] == ["Colis parti."] * 2


def test_a_message_dated_in_shop_time_after_the_queue_time_is_ours(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    """10:01 in Paris is 09:01 UTC, before the comment was queued: not ours. 11:01 is."""
    thread = add_thread(shop)
    queued = dt.datetime(2025, 3, 10, 10, 0, tzinfo=dt.UTC)
    for stamp in ("2025-03-10 10:01:00", "2025-03-10 11:01:00"):
        shop.add(
            "customer_messages",
            {"id_customer_thread": thread, "message": "Bonjour", "private": "0", "date_add": stamp},
        )

    outcome = connector.push_comment(ORDER, "Bonjour", customer_visible=True, since=queued)

    assert outcome == PushOutcome.already_there("2")
    assert shop.writes() == []


def test_two_comments_with_the_same_text_are_both_written(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    queued = dt.datetime(2025, 3, 10, 9, 0, tzinfo=dt.UTC)
    shop_time(shop, queued + dt.timedelta(seconds=3))
    first = connector.push_comment(ORDER, "Client rappelé.", customer_visible=True, since=queued)

    later = queued + dt.timedelta(hours=5)
    shop_time(shop, later + dt.timedelta(seconds=3))
    second = connector.push_comment(ORDER, "Client rappelé.", customer_visible=True, since=later)
    retry = connector.push_comment(ORDER, "Client rappelé.", customer_visible=True, since=later)

    assert first.written and second.written
    assert retry == PushOutcome.already_there(second.remote_ref)
    messages = shop.objects("customer_messages")
    assert [(m["message"], m["date_add"]) for m in messages] == [
        ("Client rappelé.", "2025-03-10 10:00:03"),
        ("Client rappelé.", "2025-03-10 15:00:03"),
    ]


def test_a_message_whose_answer_was_lost_is_already_there_on_retry(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    add_thread(shop)
    queued = dt.datetime.now(dt.UTC)
    shop.fail_next(502, path_contains="/api/customer_messages", method="POST", after=True)

    with pytest.raises(PlatformUnavailable, match="HTTP 502"):
        connector.push_comment(ORDER, "Bonjour", customer_visible=True, since=queued)
    [landed] = shop.objects("customer_messages")

    retry = connector.push_comment(ORDER, "Bonjour", customer_visible=True, since=queued)

    assert retry == PushOutcome.already_there(landed["id"])
    assert len(shop.writes()) == 1


# --- the emulator's validation ----------------------------------------------------------------


def test_the_emulator_refuses_a_thread_without_its_required_fields(
    shop: PrestaShopEmulator,
) -> None:
    xml = (
        "<prestashop><customer_thread><id_order>7</id_order><id_lang>1</id_lang>"
        "<id_contact>0</id_contact></customer_thread></prestashop>"
    )
    answer = httpx.post(
        f"{shop.base_url}/api/customer_threads", content=xml, auth=(DEFAULT_KEY, "")
    )

    assert answer.status_code == 400
    error = ET.fromstring(answer.content).find("errors/error")
    assert error is not None
    assert error.findtext("code") == "85"
    assert error.findtext("message") == (
        'Validation error: "Property CustomerThread->token is empty."'
    )
    assert shop.objects("customer_threads") == []


def test_the_emulator_refuses_a_history_for_an_unknown_order(
    shop: PrestaShopEmulator, connector: PrestaShopConnector
) -> None:
    client = connector
    xml = (
        "<prestashop><order_history><id_order>99</id_order>"
        "<id_order_state>4</id_order_state></order_history></prestashop>"
    )
    with pytest.raises(NotFoundAtShop):
        client.http.request("POST", "/order_histories", content=xml)
    missing = "<prestashop><order_history><id_order>7</id_order></order_history></prestashop>"
    with pytest.raises(ConnectorError, match="OrderHistory->id_order_state is empty"):
        client.http.request("POST", "/order_histories", content=missing)
    assert shop.objects("order_histories") == []
    assert shop.get("orders", ORDER)["current_state"] == "2"


# --- push_shipment ----------------------------------------------------------------------------


def shipment(
    *numbers: str, ref: str = "", cancelled: bool = False, notify: bool = True
) -> ShipmentToPush:
    """What the outbox sends: the shipment's numbers, each with the shop id it was given."""
    refs = dict(pair.split("=", 1) for pair in ref.split() if "=" in pair)
    return ShipmentToPush(
        reference="EXP-7-1",
        external_id="",
        lines=(),
        parcels=tuple(ParcelToPush(n, external_id=refs.get(n, "")) for n in numbers),
        cancelled=cancelled,
        notify=notify,
    )


def test_shipment_reads_the_order_carrier_then_puts_the_whole_object(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    row = shop.add_order_carrier(ORDER, "4")
    before = dict(shop.get("order_carriers", row))

    outcome = connector.push_shipment(ORDER, shipment("6A1", "6A2"))

    assert [(r.method, r.path) for r in shop.requests] == [
        ("GET", "/api/order_carriers"),
        ("GET", f"/api/order_carriers/{row}"),
        ("PUT", f"/api/order_carriers/{row}"),
    ]
    listed, _read, put = shop.requests
    assert ("filter[id_order]", f"[{ORDER}]") in listed.query
    assert ("sendemail", "1") in put.query
    sent = body(put, "order_carrier")
    assert sent == {**{k: str(v) for k, v in before.items()}, "tracking_number": "6A1, 6A2"}
    assert outcome.written and outcome.remote_ref == f"oc-{row}/EXP-7-1"
    assert outcome.parcel_refs == (("6A1", f"oc-{row}:6A1"), ("6A2", f"oc-{row}:6A2"))


def test_a_shipment_already_in_the_field_is_not_written_again(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    row = shop.add_order_carrier(ORDER, "4", tracking_number="6A2 6A1")  # typed by hand
    outcome = connector.push_shipment(ORDER, shipment("6A1", "6A2"))
    assert not outcome.written and not outcome.skipped
    assert outcome.parcel_refs == (("6A1", f"oc-{row}:6A1"), ("6A2", f"oc-{row}:6A2"))
    assert shop.writes() == []


def test_a_known_order_carrier_is_read_directly_and_numbers_of_others_are_kept(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    row = shop.add_order_carrier(ORDER, "4", tracking_number="6A1, 6A2, 6A9")
    told = shipment("6A1", "6A3", ref=f"6A1=oc-{row}:6A1 6A3=oc-{row}:6A2", notify=False)
    told = dataclasses.replace(told, external_id=f"oc-{row}/EXP-7-1")

    connector.push_shipment(ORDER, told)

    assert [(r.method, r.path) for r in shop.requests] == [
        ("GET", f"/api/order_carriers/{row}"),
        ("PUT", f"/api/order_carriers/{row}"),
    ]
    assert ("sendemail", "1") not in shop.requests[-1].query  # the shop may not e-mail
    assert shop.get("order_carriers", row)["tracking_number"] == "6A1, 6A9, 6A3"


def test_a_cancelled_shipment_removes_its_numbers_without_an_email(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    row = shop.add_order_carrier(ORDER, "4", tracking_number="6A1, 6A2, 6A3")
    outcome = connector.push_shipment(ORDER, shipment("6A1", "6A2", cancelled=True))
    assert outcome.written and outcome.parcel_refs == ()
    assert shop.get("order_carriers", row)["tracking_number"] == "6A3"
    assert ("sendemail", "1") not in shop.requests[-1].query


def test_numbers_past_64_characters_are_refused_and_nothing_is_written(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    row = shop.add_order_carrier(ORDER, "4", tracking_number="CB" + "1" * 30)
    outcome = connector.push_shipment(ORDER, shipment("XW" + "2" * 30))
    assert not outcome.written and "64 characters" in outcome.skipped
    assert "XW222" in outcome.skipped
    assert shop.writes() == [] and shop.get("order_carriers", row)["tracking_number"] != ""


def test_an_order_without_order_carrier_cannot_hold_tracking(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    outcome = connector.push_shipment(ORDER, shipment("6A1"))
    assert outcome.skipped and "no order carrier" in outcome.skipped
    assert shop.writes() == []


def test_shipment_errors_propagate_typed(
    connector: PrestaShopConnector, shop: PrestaShopEmulator
) -> None:
    shop.add_order_carrier(ORDER, "4")
    shop.fail_next(429, retry_after="30", path_contains="/api/order_carriers")
    with pytest.raises(RateLimited):
        connector.push_shipment(ORDER, shipment("6A1"))
    shop.fail_next(503, path_contains="/api/order_carriers/", method="PUT")
    with pytest.raises(PlatformUnavailable):
        connector.push_shipment(ORDER, shipment("6A1"))
    shop.fail_next(400, path_contains="/api/order_carriers/", method="PUT")
    with pytest.raises(ConnectorError) as caught:
        connector.push_shipment(ORDER, shipment("6A1"))
    assert not isinstance(caught.value, RetryableError)
    assert shop.writes() == []


def test_the_emulator_refuses_a_tracking_number_past_64_characters(
    shop: PrestaShopEmulator,
) -> None:
    row = shop.add_order_carrier(ORDER, "4")
    put = (
        f"<prestashop><order_carrier><id>{row}</id><id_order>{ORDER}</id_order>"
        f"<tracking_number>{'1' * 65}</tracking_number></order_carrier></prestashop>"
    )
    answer = httpx.put(
        f"{shop.base_url}/api/order_carriers/{row}", content=put, auth=(DEFAULT_KEY, "")
    )
    assert answer.status_code == 400 and b"tracking_number" in answer.content
    assert shop.get("order_carriers", row)["tracking_number"] == ""
