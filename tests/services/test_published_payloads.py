"""Every published and fixture order of the webhook platforms and Magento, applied as intake
applies it: one line per thing ordered, and totals that add up — or a flag with both figures.

PrestaShop orders need several resources to be read; the PrestaShop end-to-end tests poll
its fixtures through the emulator and assert the same.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.connectors.base import ShopSettings
from web.connectors.registry import make_connector
from web.models import OrderEvent
from web.services import intake, shops
from web.services.timeline import Actor

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

ORDERS = {
    "shopify": (
        "shopify-order.json",
        "shopify-orders-create-webhook.json",
        "order-fr-relay-point.json",
        "order-fr-company-bundle.json",
        "order-fr-cancelled.json",
        "order-fr-order-level-tax.json",
        "order-fr-free-shipping-code.json",
        "order-fr-bundle-groups.json",
    ),
    "woocommerce": (
        "woocommerce-order.json",
        "fr-order-cancelled-colissimo-relay.json",
        "fr-order-company-bundle.json",
        "fr-order-composite.json",
        "fr-order-refund-no-date-paid.json",
        "fr-order-relay-coupon-refund.json",
        "fr-order-variation-virtual.json",
    ),
    "magento": (
        "magento-order.json",
        "fr-order-cancelled.json",
        "fr-order-company-bundle.json",
        "fr-order-relay-coupon.json",
    ),
}
CASES = [(platform, name) for platform, names in ORDERS.items() for name in names]

# Published samples that contradict themselves: (computed from the parts, stated total).
# Shopify's sample order (prices before tax) has three lines of 199.00 under a
# total_line_items_price of 398.00: 597.00 + 11.94 tax = 608.94 against its 409.94 total.
CONTRADICTIONS = {("shopify", "shopify-order.json"): (Decimal("608.94"), Decimal("409.94"))}


@pytest.mark.parametrize(("platform", "name"), CASES, ids=[f"{p}:{n}" for p, n in CASES])
def test_each_payload_gives_lines_a_person_agrees_with_and_adds_up_or_is_flagged(
    db_session: Session, platform: str, name: str
) -> None:
    connector = make_connector(platform, ShopSettings(base_url="https://shop.example"))
    incoming = connector.parse_order((FIXTURES / platform / name).read_bytes())
    shop = shops.create_shop(db_session, platform, "Boutique", "https://shop.example")
    db_session.flush()
    order = intake.upsert_order(db_session, shop, incoming, Actor.shop("test")).order
    assert order is not None
    db_session.flush()

    top = [line for line in order.lines if line.parent_line_id is None]
    components = [line for line in order.lines if line.parent_line_id is not None]
    assert top and all(line.quantity > 0 for line in order.lines)
    for line in top:
        assert line.total_net + line.tax_amount == line.total_gross, line.name
    for line in components:
        assert line.total_gross == 0, f"component {line.name} carries money"
        assert line.parent is not None and line.parent.parent_line_id is None

    mismatches = db_session.scalars(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "order.totals_mismatch"
        )
    ).all()
    expected = CONTRADICTIONS.get((platform, name))
    if expected is None:
        assert order.computed_total is None, (order.computed_total, order.grand_total)
        assert not mismatches
    else:
        computed, stated = expected
        assert (order.computed_total, order.grand_total) == (computed, stated)
        assert len(mismatches) == 1
        details = str(mismatches[0].details)
        assert str(computed) in details and str(stated) in details


def test_magento_configurable_sample_counts_what_was_ordered(db_session: Session) -> None:
    """The published sample's quantities add up to its total_qty_ordered (4), not 9."""
    connector = make_connector("magento", ShopSettings(base_url="https://shop.example"))
    incoming = connector.parse_order((FIXTURES / "magento" / "magento-order.json").read_bytes())
    top = [line for line in incoming.lines if line.parent_external_id is None]
    assert sum(line.quantity for line in top) == 4
