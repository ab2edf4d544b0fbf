"""Reliability drills: each ends with a count of lost and duplicated effects that must be zero.

`make test` runs them at reduced sizes; `make drills` sets DRILLS_FULL=1 for the sizes stated
in issue 13 (10,000 deliveries, kills again and again, ≥ 10,000 fuzz cases).
"""

from __future__ import annotations

import os

import pytest
from sqlalchemy.orm import Session

from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web.models import Shop
from web.services import shops

FULL = os.environ.get("DRILLS_FULL") == "1"


def drill_size(reduced: int, full: int) -> int:
    """The reduced size in `make test`, the full one in `make drills`."""
    return full if FULL else reduced


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.drill)


def woocommerce_shop(session: Session, woo: WooCommerceEmulator, key: str | None = None) -> Shop:
    """A shop of the WooCommerce emulator, with its keys and webhook secret."""
    return shops.create_shop(
        session,
        "woocommerce",
        "Thés & Fonte",
        woo.base_url,
        api_key=woo.consumer_key,
        api_secret=woo.consumer_secret,
        webhook_secret=woo.webhook_secret,
        key=key,
    )


def shopify_shop(session: Session, shopify: ShopifyEmulator, key: str | None = None) -> Shop:
    """A shop of the Shopify emulator, with its token and webhook secret."""
    return shops.create_shop(
        session,
        "shopify",
        "Maison Lumière",
        shopify.base_url,
        api_key=shopify.access_token,
        webhook_secret=shopify.webhook_secret,
        key=key,
    )
