"""The registry: each platform's connector, built with the settings and options it is given."""

from __future__ import annotations

import httpx

from web.connectors.base import ShopSettings
from web.connectors.registry import connector_class, make_connector
from web.models.enums import Platform


def test_each_platform_has_its_connector() -> None:
    names = {platform.value: connector_class(platform).__name__ for platform in Platform}
    assert names == {
        "shopify": "ShopifyConnector",
        "woocommerce": "WooCommerceConnector",
        "prestashop": "PrestaShopConnector",
        "magento": "MagentoConnector",
    }


def test_a_connector_it_makes_calls_the_shop_through_the_transport_it_is_given() -> None:
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        shop = {
            "name": "Atelier",
            "myshopify_domain": "atelier.myshopify.com",
            "currency": "EUR",
            "plan_display_name": "Basic",
        }
        return httpx.Response(200, json={"shop": shop})

    connector = make_connector(
        "shopify",
        ShopSettings(base_url="https://atelier.myshopify.com", api_key="key", api_secret="secret"),
        transport=httpx.MockTransport(answer),
    )
    assert connector.test_connection() == "Shopify shop Atelier (atelier.myshopify.com, EUR, Basic)"
    assert asked == ["https://atelier.myshopify.com/admin/api/2025-01/shop.json"]
