"""Loopback shops for the connector tests: one server per platform for the whole session,
emptied by each test's own `shop` fixture, and connectors closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.emulators.base import Emulator
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import PrestaShopEmulator
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import ShopSettings
from web.connectors.magento import MagentoConnector
from web.connectors.prestashop import PrestaShopConnector
from web.connectors.shopify import ShopifyConnector
from web.connectors.woocommerce import WooCommerceConnector

E = TypeVar("E", bound=Emulator)
Connect = Callable[..., Any]


def _running(emulator: E) -> Iterator[E]:
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def shopify_server() -> Iterator[ShopifyEmulator]:
    yield from _running(ShopifyEmulator())


@pytest.fixture(scope="session")
def woocommerce_server() -> Iterator[WooCommerceEmulator]:
    yield from _running(WooCommerceEmulator())


@pytest.fixture(scope="session")
def magento_server() -> Iterator[MagentoEmulator]:
    yield from _running(MagentoEmulator(store_codes=("default", "fr")))


@pytest.fixture(scope="session")
def prestashop_server() -> Iterator[PrestaShopEmulator]:
    yield from _running(PrestaShopEmulator())


def settings_for(shop: Emulator, **overrides: Any) -> ShopSettings:
    """Settings that reach the emulator with its own credentials; overrides win."""
    if isinstance(shop, ShopifyEmulator):
        credentials = {"api_key": shop.access_token, "webhook_secret": shop.webhook_secret}
    elif isinstance(shop, WooCommerceEmulator):
        credentials = {
            "api_key": shop.consumer_key,
            "api_secret": shop.consumer_secret,
            "webhook_secret": shop.webhook_secret,
        }
    elif isinstance(shop, MagentoEmulator):
        credentials = {"api_key": shop.token}
    elif isinstance(shop, PrestaShopEmulator):
        credentials = {"api_key": shop.key}
    else:
        raise TypeError(f"no settings for {type(shop).__name__}")
    options: dict[str, Any] = {"base_url": shop.base_url, "timeout": 5.0, **credentials}
    return ShopSettings(**{**options, **overrides})


CONNECTORS: dict[type[Emulator], Callable[[ShopSettings], Any]] = {
    ShopifyEmulator: ShopifyConnector,
    WooCommerceEmulator: WooCommerceConnector,
    MagentoEmulator: MagentoConnector,
    PrestaShopEmulator: PrestaShopConnector,
}


@pytest.fixture()
def connect() -> Iterator[Connect]:
    """connect(shop, **settings): a connector to the emulator, closed after the test."""
    opened: list[Any] = []

    def make(shop: Emulator, **overrides: Any) -> Any:
        connector = CONNECTORS[type(shop)](settings_for(shop, **overrides))
        opened.append(connector)
        return connector

    yield make
    for connector in opened:
        connector.close()


@pytest.fixture()
def connector(shop: Emulator, connect: Connect) -> Any:
    """A connector to the test module's `shop`, with the default settings."""
    return connect(shop)
