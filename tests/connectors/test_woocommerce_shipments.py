"""WooCommerce shipments at the connector: tracking items read from the order, and
push_shipment over real HTTP to the loopback shop (with and without the extension)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import (
    ConnectorError,
    ParcelToPush,
    PermanentError,
    PlatformUnavailable,
    PushOutcome,
    RateLimited,
    RetryableError,
    ShipmentToPush,
    ShopParcel,
    ShopShipment,
)
from web.connectors.woocommerce import WooCommerceConnector

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
TRACKING = "/wp-json/wc-shipment-tracking/v3"
SHIPPED = dt.datetime(2026, 12, 2, 15, 30, tzinfo=dt.UTC)


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.fixture()
def shop(woocommerce_server: WooCommerceEmulator) -> WooCommerceEmulator:
    woocommerce_server.reset()
    return woocommerce_server


def parse(connector: WooCommerceConnector, data: dict[str, Any]) -> Any:
    return connector.parse_order(json.dumps(data).encode())


def shipment(*parcels: ParcelToPush, **changes: Any) -> ShipmentToPush:
    fields: dict[str, Any] = {
        "reference": "EXP-7-1",
        "external_id": "",
        "lines": (),
        "parcels": parcels,
        "carrier_code": "Chronopost",
        "carrier_name": "Chronopost",
        "shipped_at": SHIPPED,
    }
    return ShipmentToPush(**{**fields, **changes})


def parcel(number: str, external_id: str = "") -> ParcelToPush:
    url = f"https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={number}&langue=fr"
    return ParcelToPush(number, url, None, external_id)


# --- Reading the order ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_the_published_payloads_still_parse_with_no_tracking(
    name: str, connector: WooCommerceConnector
) -> None:
    data = fixture(name)
    order = parse(connector, data)
    assert order.shipments == (() if "meta_data" in data else None)


def test_tracking_items_in_the_meta_are_shipments_without_lines(
    connector: WooCommerceConnector,
) -> None:
    data = fixture("fr-order-relay-coupon-refund.json")
    items = [
        {
            "tracking_provider": "colissimo",
            "custom_tracking_provider": "",
            "custom_tracking_link": "",
            "tracking_number": "6A999",
            "date_shipped": 1764633600,
            "tracking_id": "a1b2",
        },
        {
            "tracking_provider": "",
            "custom_tracking_provider": "Mondial Relay",
            "custom_tracking_link": "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition=MR1",
            "tracking_number": "MR1",
            "date_shipped": "",
            "tracking_id": "c3d4",
        },
        {"tracking_number": "", "tracking_id": "empty"},  # nothing to track: not a parcel
        "garbage",
    ]
    data["meta_data"].append({"id": 1, "key": "_wc_shipment_tracking_items", "value": items})
    order = parse(connector, data)
    assert order.shipments == (
        ShopShipment(
            external_id="a1b2",
            parcels=(ShopParcel("6A999", "colissimo", "", "a1b2"),),
            lines=None,
            carrier="colissimo",
            shipped_at=dt.datetime(2025, 12, 2, tzinfo=dt.UTC),
        ),
        ShopShipment(
            external_id="c3d4",
            parcels=(
                ShopParcel(
                    "MR1",
                    "Mondial Relay",
                    "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition=MR1",
                    "c3d4",
                ),
            ),
            lines=None,
            carrier="Mondial Relay",
            shipped_at=None,
        ),
    )
    del data["meta_data"]
    assert parse(connector, data).shipments is None  # this copy does not say


# --- Writing tracking items ------------------------------------------------------------------


def test_a_carrier_the_extension_lacks_goes_as_a_custom_provider_with_its_full_link(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = shop.add_order(fixture("fr-order-company-bundle.json"))
    outcome = connector.push_shipment(order_id, shipment(parcel("XA1"), parcel("XA2")))

    ids = [item["tracking_id"] for item in shop.tracking_items(order_id)]
    assert outcome == PushOutcome(
        written=True, remote_ref=ids[0], parcel_refs=(("XA1", ids[0]), ("XA2", ids[1]))
    )
    [first, *_] = shop.requests_to("POST", "/shipment-trackings")
    assert first.json() == {
        "tracking_number": "XA1",
        "date_shipped": "2026-12-02",
        "custom_tracking_provider": "Chronopost",
        "custom_tracking_link": parcel("XA1").tracking_url,
    }
    # Again with the ids Comptoir kept: read, nothing written.
    again = connector.push_shipment(
        order_id,
        shipment(parcel("XA1", ids[0]), parcel("XA2", ids[1]), external_id=ids[0]),
    )
    assert again == PushOutcome(
        written=False, remote_ref=ids[0], parcel_refs=(("XA1", ids[0]), ("XA2", ids[1]))
    )
    assert len(shop.requests_to("POST", "/shipment-trackings")) == 2


def test_a_provider_the_extension_knows_is_named_and_linked_by_it(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = shop.add_order(fixture("fr-order-company-bundle.json"))
    connector.push_shipment(
        order_id, shipment(parcel("1Z999"), carrier_code="ups", carrier_name="UPS")
    )
    [post] = shop.requests_to("POST", "/shipment-trackings")
    assert post.json() == {
        "tracking_number": "1Z999",
        "date_shipped": "2026-12-02",
        "tracking_provider": "ups",
    }
    answer = connector.http.request(
        "GET", f"{TRACKING}/orders/{order_id}/shipment-trackings"
    ).json()
    assert answer[0]["tracking_provider"] == "UPS"
    assert answer[0]["tracking_link"] == "https://www.ups.com/track?loc=en_US&tracknum=1Z999"


def test_a_shipment_without_tracking_writes_nothing(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    order_id = shop.add_order(fixture("fr-order-company-bundle.json"))
    assert connector.push_shipment(order_id, shipment()) == PushOutcome.already_there("EXP-7-1")
    shop.shipment_tracking = False
    fresh = WooCommerceConnector(connector.settings)
    try:
        assert fresh.push_shipment(order_id, shipment()) == PushOutcome.already_there("EXP-7-1")
    finally:
        fresh.close()
    assert shop.writes() == []


def test_the_extension_is_asked_once_per_connector(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    shop.shipment_tracking = False
    order_id = shop.add_order(fixture("fr-order-company-bundle.json"))
    connector.push_shipment(order_id, shipment(parcel("XA1")))
    connector.push_shipment(order_id, shipment(parcel("XA1")), since=dt.datetime.now(dt.UTC))
    assert len(shop.requests_to("GET", "/shipment-trackings")) == 1
    assert len(shop.requests_to("POST", "/notes")) == 1  # the second found its note


@pytest.mark.parametrize(
    ("status", "error"),
    [(503, PlatformUnavailable), (429, RateLimited), (400, ConnectorError)],
)
def test_errors_go_through_the_connector_error_classes(
    shop: WooCommerceEmulator,
    connector: WooCommerceConnector,
    status: int,
    error: type[Exception],
) -> None:
    order_id = shop.add_order(fixture("fr-order-company-bundle.json"))
    shop.fail_next(status, path_contains="/shipment-trackings", method="POST")
    with pytest.raises(error) as raised:
        connector.push_shipment(order_id, shipment(parcel("XA1")))
    # 503 and 429 are tried again later; a 4xx is a refusal, not retried.
    assert isinstance(raised.value, RetryableError) == (status != 400)
    assert shop.tracking_items(order_id) == []


def test_an_unknown_order_is_not_taken_for_a_missing_extension(
    shop: WooCommerceEmulator, connector: WooCommerceConnector
) -> None:
    with pytest.raises(PermanentError, match="invalid_id"):
        connector.push_shipment("999999", shipment(parcel("XA1")))
    assert shop.writes() == []
