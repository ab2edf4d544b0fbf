"""The explicit map from platform name to connector class."""

from __future__ import annotations

import importlib
from typing import Any

from web.connectors.base import Connector, ShopSettings
from web.models.enums import Platform

CONNECTORS: dict[Platform, str] = {
    Platform.SHOPIFY: "web.connectors.shopify:ShopifyConnector",
    Platform.WOOCOMMERCE: "web.connectors.woocommerce:WooCommerceConnector",
    Platform.PRESTASHOP: "web.connectors.prestashop:PrestaShopConnector",
    Platform.MAGENTO: "web.connectors.magento:MagentoConnector",
}


def connector_class(platform: Platform | str) -> type[Connector]:
    """The connector class of a platform (imported on first use)."""
    module_name, _, class_name = CONNECTORS[Platform(platform)].partition(":")
    cls: Any = getattr(importlib.import_module(module_name), class_name)
    return cls


def make_connector(platform: Platform | str, settings: ShopSettings, **kwargs: Any) -> Connector:
    """Build the connector for one shop."""
    return connector_class(platform)(settings, **kwargs)
