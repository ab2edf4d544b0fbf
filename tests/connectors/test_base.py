"""The helpers every connector shares: amounts, prices and rates read from the shop, webhook
signatures, the unreadable order of a page, and timestamps in UTC."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from web.connectors.base import (
    BadPayload,
    InvalidSignature,
    RejectedOrder,
    check_body_signature,
    money,
    price,
    rate,
    reject,
    to_utc,
)

D = Decimal


# --- Amounts, prices, rates -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("2.005", D("2.01")), ("0.125", D("0.13")), ("12.500000", D("12.50")), (3, D("3.00"))],
)
def test_an_amount_is_kept_to_the_cent_half_cents_rounding_up(sent: object, kept: Decimal) -> None:
    # Half-up, as the shops and the invoices round: never the banker's rounding to even.
    assert money(sent) == kept
    assert str(money(sent)) == str(kept)


def test_an_unreadable_amount_is_refused_naming_the_amount() -> None:
    with pytest.raises(BadPayload) as caught:
        money("12,50")
    assert str(caught.value) == "amount: '12,50' is not an amount"


def test_an_unreadable_price_is_refused_naming_the_price() -> None:
    with pytest.raises(BadPayload) as caught:
        price("douze")
    assert str(caught.value) == "price: 'douze' is not an amount"


@pytest.mark.parametrize(("sent", "kept"), [("100", D("100.0000")), (20, D("20.0000"))])
def test_a_rate_up_to_one_hundred_percent_is_read(sent: object, kept: Decimal) -> None:
    assert rate(sent) == kept


@pytest.mark.parametrize("sent", ["100.5", "101", "-1", "NaN"])
def test_a_rate_outside_nought_to_one_hundred_percent_is_refused_naming_it(sent: str) -> None:
    with pytest.raises(BadPayload) as caught:
        rate(sent, "line_items[0].tax_lines[0].rate")
    assert str(caught.value) == f"line_items[0].tax_lines[0].rate: {sent!r} is not a rate"


def test_an_unreadable_rate_is_refused_naming_the_tax_rate() -> None:
    with pytest.raises(BadPayload) as caught:
        rate("vingt")
    assert str(caught.value) == "tax rate: 'vingt' is not a rate"


# --- Webhook signatures ---------------------------------------------------------------------


def test_a_signature_header_that_utf8_cannot_encode_is_refused_as_not_matching() -> None:
    body = b'{"id": 1}'
    good = base64.b64encode(hmac.new(b"s3cret", body, hashlib.sha256).digest()).decode()
    check_body_signature("s3cret", body, good, "X-Shopify-Hmac-Sha256")

    # A lone surrogate (a JSON event may carry "\ud800") is a bad signature, not a crash.
    with pytest.raises(InvalidSignature, match="the X-Shopify-Hmac-Sha256 signature does not"):
        check_body_signature("s3cret", body, good[:-2] + "\ud800=", "X-Shopify-Hmac-Sha256")


# --- An unreadable order of a page ----------------------------------------------------------


def test_an_unreadable_order_is_parked_with_its_id_its_error_and_its_data() -> None:
    item = {"id": 4021, "total": "douze", "date_created": dt.date(2026, 3, 2)}

    rejected = reject(item, BadPayload("total: 'douze' is not an amount"))

    assert rejected == RejectedOrder(
        external_id="4021",
        error="total: 'douze' is not an amount",
        raw=json.dumps(item, default=str).encode(),
    )
    assert json.loads(rejected.raw)["date_created"] == "2026-03-02"


def test_a_magento_order_is_parked_under_its_entity_id() -> None:
    rejected = reject({"entity_id": 77, "grand_total": []}, BadPayload("grand_total: …"))

    assert rejected.external_id == "77"


def test_an_order_without_id_is_parked_without_one() -> None:
    assert reject({"total": "1"}, BadPayload("id: missing")).external_id == ""
    assert reject(["not", "an", "order"], BadPayload("orders[3]: not an object")).external_id == ""


def test_an_unreadable_order_sent_as_bytes_is_kept_as_sent() -> None:
    assert reject(b"<order><id>12", BadPayload("not XML")).raw == b"<order><id>12"


# --- Timestamps -----------------------------------------------------------------------------


@pytest.fixture()
def server_in_new_york(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server's own time zone is not UTC (a developer's machine, a host set to local time)."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("server_in_new_york")
def test_a_shop_time_is_converted_to_utc_whatever_the_servers_zone() -> None:
    noon_in_paris = dt.datetime(2026, 1, 15, 12, 0, tzinfo=ZoneInfo("Europe/Paris"))

    converted = to_utc(noon_in_paris)

    # What the connectors send to the shops ("…Z") and store: 11:00 UTC, not New York's 06:00.
    assert converted.strftime("%Y-%m-%dT%H:%M:%SZ") == "2026-01-15T11:00:00Z"
    assert converted.utcoffset() == dt.timedelta(0)


def test_a_time_without_zone_is_refused() -> None:
    with pytest.raises(BadPayload, match="has no timezone"):
        to_utc(dt.datetime(2026, 1, 15, 12, 0))
