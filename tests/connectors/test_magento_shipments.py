"""Magento shipments against the loopback store: read with the orders, pushed once."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.connectors.conftest import Connect
from tests.emulators.magento import MagentoEmulator
from web.connectors.base import (
    ParcelToPush,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    ShipmentLineToPush,
    ShipmentToPush,
    ShopParcel,
    ShopShipment,
)
from web.connectors.codec import decode_order, encode_order
from web.connectors.magento import CANNOT_CANCEL_SHIPMENT, NOTHING_TO_SHIP, MagentoConnector

FIXTURES = Path(__file__).parents[1] / "fixtures" / "magento"
REFERENCE = Path(__file__).parents[3] / "shared" / "reference" / "payloads"
RELAY = 1042  # processing, invoiced: 1201 (1), 1202 configurable (2) with its child 1203
BUNDLE = 1043  # new: 1301 bundle (1) with children 1302, 1303; 1304 (3)
SINCE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def order_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_bytes())
    return data


@pytest.fixture()
def shop(magento_server: MagentoEmulator) -> MagentoEmulator:
    magento_server.reset()
    magento_server.add_order(order_json("fr-order-relay-coupon.json"))
    magento_server.add_order(order_json("fr-order-company-bundle.json"))
    magento_server.requests.clear()
    return magento_server


def calls(shop: MagentoEmulator) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in shop.requests]


def to_push(
    *numbers: str, lines: tuple[tuple[str, int], ...] = (("1201", 1),), **kw: Any
) -> ShipmentToPush:
    return ShipmentToPush(
        reference=kw.pop("reference", "EXP-7-1"),
        external_id=kw.pop("external_id", ""),
        lines=tuple(ShipmentLineToPush(ref, qty) for ref, qty in lines),
        parcels=tuple(ParcelToPush(n) for n in numbers),
        carrier_code=kw.pop("carrier_code", ""),
        carrier_name=kw.pop("carrier_name", "Colissimo"),
        **kw,
    )


# --- In: the store's shipments come with the orders -------------------------------------------


def test_fetch_order_reads_its_shipments_in_one_more_call(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    made = shop.add_shop_shipment(
        RELAY, {1202: 2}, [("6A01", "Colissimo", "custom"), ("6A02", "DHL Express", "dhl")]
    )
    order = connector.fetch_order(str(RELAY))

    assert calls(shop) == [("GET", "/rest/V1/orders/1042"), ("GET", "/rest/V1/shipments")]
    [track_1, track_2] = (str(t["entity_id"]) for t in made["tracks"])
    assert order.shipments == (
        ShopShipment(
            external_id=str(made["entity_id"]),
            # The configurable's child shipped with it is no line of ours.
            lines=(("1202", 2),),
            parcels=(
                ShopParcel("6A01", carrier="Colissimo", external_id=track_1),
                ShopParcel("6A02", carrier="DHL Express", external_id=track_2),
            ),
            carrier="Colissimo",
            shipped_at=dt.datetime.strptime(made["created_at"], "%Y-%m-%d %H:%M:%S").replace(
                tzinfo=dt.UTC
            ),
        ),
    )
    assert connector.fetch_order(str(BUNDLE)).shipments == ()


def test_a_page_of_orders_reads_its_shipments_in_one_search(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.add_shop_shipment(RELAY, {1201: 1}, [("6A01", "Colissimo", "custom")])
    shop.add_shop_shipment(BUNDLE, {1304: 2})
    batch = connector.list_orders(SINCE)

    assert calls(shop) == [("GET", "/rest/V1/orders"), ("GET", "/rest/V1/shipments")]
    search = shop.requests[1]
    assert search.arg("searchCriteria[filter_groups][0][filters][0][field]") == "order_id"
    assert search.arg("searchCriteria[filter_groups][0][filters][0][condition_type]") == "in"
    assert search.arg("searchCriteria[filter_groups][0][filters][0][value]") == "1042,1043"
    assert search.arg("fields", "").startswith("items[entity_id,order_id,created_at,")
    by_order = {o.external_id: o.shipments for o in batch.orders}
    assert [(s.lines, [p.tracking_number for p in s.parcels]) for s in by_order["1042"] or ()] == [
        ((("1201", 1),), ["6A01"])
    ]
    assert [s.lines for s in by_order["1043"] or ()] == [(("1304", 2),)]


def test_an_empty_page_asks_nothing_more(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    batch = connector.list_orders(dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    assert batch.orders == ()
    assert calls(shop) == [("GET", "/rest/V1/orders")]


def test_shipments_past_one_page_are_all_read(
    connector: MagentoConnector, shop: MagentoEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("web.connectors.magento.SHIPMENT_PAGE", 2)
    for _ in range(3):
        shop.add_shop_shipment(BUNDLE, {1304: 1})
    order = connector.fetch_order(str(BUNDLE))
    assert [s.lines for s in order.shipments or ()] == [(("1304", 1),)] * 3
    assert calls(shop).count(("GET", "/rest/V1/shipments")) == 2


def test_without_access_to_shipments_the_orders_still_come_unsaid(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.fail_next(403, path_contains="/shipments")
    order = connector.fetch_order(str(RELAY))
    assert order.number == "000001042" and order.shipments is None


def test_a_polled_order_keeps_its_shipments_through_the_inbox(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.add_shop_shipment(RELAY, {1201: 1}, [("6A01", "Colissimo", "custom")])
    order = connector.fetch_order(str(RELAY))
    assert order.shipments
    assert decode_order(encode_order(order)) == order


def test_payloads_alone_do_not_say_which_shipments_exist(connector: MagentoConnector) -> None:
    for path in (REFERENCE / "magento-order.json", *sorted(FIXTURES.glob("fr-order-*.json"))):
        if path.exists():
            assert connector.parse_order(path.read_bytes()).shipments is None, path.name


# --- Out: push_shipment -----------------------------------------------------------------------


def test_a_shipment_without_tracking_is_found_again_by_its_items(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    first = connector.push_shipment(str(BUNDLE), to_push(lines=(("1304", 2),)), since=SINCE)
    assert first.written and first.remote_ref and first.parcel_refs == ()
    [ship] = [r.json() for r in shop.writes()]
    assert ship["tracks"] == [] and ship["items"] == [{"order_item_id": 1304, "qty": 2}]

    # The answer was lost: the comment naming it finds it.
    again = connector.push_shipment(str(BUNDLE), to_push(lines=(("1304", 2),)), since=SINCE)
    assert not again.written and again.remote_ref == first.remote_ref
    assert len(shop.writes()) == 1


def test_without_our_comment_a_recent_shipment_with_our_numbers_is_ours(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    made = shop.add_shop_shipment(RELAY, {1201: 1}, [("MR1", "Colissimo", "custom")])
    outcome = connector.push_shipment(str(RELAY), to_push("MR1", "MR2"), since=SINCE)
    # Ours, its answer lost and a parcel added since: completed, not shipped again.
    assert outcome.remote_ref == str(made["entity_id"])
    assert [(r.method, r.path) for r in shop.writes()] == [("POST", "/rest/V1/shipment/track")]
    assert [n for n, _ in outcome.parcel_refs] == ["MR1", "MR2"]


def test_an_older_shipment_or_another_of_ours_is_not_taken_for_this_one(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    shop.clock = lambda: dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    shop.add_shop_shipment(BUNDLE, {1304: 1})  # same items, long before the push was queued
    shop.clock = lambda: dt.datetime.now(dt.UTC)
    other = connector.push_shipment(
        str(BUNDLE), to_push(lines=(("1304", 1),), reference="EXP-7-1"), since=SINCE
    )
    assert other.written
    # Same items again, another of our shipments: its comment says it is not this one.
    this = connector.push_shipment(
        str(BUNDLE), to_push(lines=(("1304", 1),), reference="EXP-7-2"), since=SINCE
    )
    assert this.written and this.remote_ref != other.remote_ref
    assert len(shop.shipments) == 3
    assert shop.orders[BUNDLE]["items"][3]["qty_shipped"] == 3


def test_a_native_carrier_code_and_no_notification(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    connector.push_shipment(
        str(RELAY),
        to_push("1Z999", carrier_code="ups", carrier_name="UPS", notify=False),
        since=SINCE,
    )
    [ship] = [r.json() for r in shop.writes()]
    assert ship["notify"] is False
    assert ship["tracks"] == [{"track_number": "1Z999", "title": "UPS", "carrier_code": "ups"}]


def test_a_shipment_of_another_order_is_refused(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    made = shop.add_shop_shipment(BUNDLE, {1304: 1})
    with pytest.raises(PermanentError, match="belongs to order 1043"):
        connector.push_shipment(
            str(RELAY), to_push("MR1", external_id=str(made["entity_id"])), since=SINCE
        )
    assert shop.writes() == []


def test_lines_magento_cannot_ship_are_not_sent(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_shipment(str(RELAY), to_push("MR1", lines=()), since=SINCE)
    assert outcome.skipped == NOTHING_TO_SHIP
    gift = connector.push_shipment(str(RELAY), to_push("MR1", lines=(("1042:gw", 1),)))
    assert gift.skipped == NOTHING_TO_SHIP
    assert shop.writes() == []


def test_a_cancelled_shipment_the_store_never_got_is_left_alone(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_shipment(str(RELAY), to_push("MR1", cancelled=True), since=SINCE)
    assert not outcome.written and not outcome.skipped
    assert shop.writes() == []


def test_a_cancelled_shipment_twice_deletes_its_tracks_once(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    made = connector.push_shipment(str(RELAY), to_push("MR1", "MR2"), since=SINCE)
    cancelled = to_push("MR1", "MR2", external_id=made.remote_ref, cancelled=True)
    assert connector.push_shipment(str(RELAY), cancelled).skipped == CANNOT_CANCEL_SHIPMENT
    assert connector.push_shipment(str(RELAY), cancelled).skipped == CANNOT_CANCEL_SHIPMENT
    assert [r.method for r in shop.writes()] == ["POST", "DELETE", "DELETE"]
    assert shop.shipments[0]["tracks"] == []


@pytest.mark.parametrize(
    ("status", "error"), [(503, PlatformUnavailable), (429, RateLimited), (400, PermanentError)]
)
def test_store_errors_on_the_ship_call(
    connect: Connect, shop: MagentoEmulator, status: int, error: type[Exception]
) -> None:
    connector = connect(shop)
    shop.fail_next(status, path_contains="/ship", method="POST")
    with pytest.raises(error):
        connector.push_shipment(str(RELAY), to_push("MR1"), since=SINCE)
    assert shop.shipments == []


def test_shipping_more_than_remains_is_refused_for_good(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    with pytest.raises(PermanentError, match="Magento refused to ship EXP-7-1") as refused:
        connector.push_shipment(str(RELAY), to_push("MR1", lines=(("1201", 2),)), since=SINCE)
    assert refused.value.status == 400
    assert shop.shipments == [] and shop.orders[RELAY]["items"][0]["qty_shipped"] == 0


def test_a_new_shipment_names_the_shops_track_of_each_tracking_number(
    connector: MagentoConnector, shop: MagentoEmulator
) -> None:
    outcome = connector.push_shipment(str(RELAY), to_push("MR1", "MR2"), since=SINCE)
    assert outcome.written
    [made] = connector.fetch_order(str(RELAY)).shipments or ()
    assert outcome.parcel_refs == tuple(
        (parcel.tracking_number, parcel.external_id) for parcel in made.parcels
    )
    assert [number for number, _ in outcome.parcel_refs] == ["MR1", "MR2"]
