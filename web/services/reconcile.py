"""Reconciliation: do an order's lines, shipping and discounts add up to what the buyer pays?

Every order is checked on arrival, to the cent, with the line conventions of
web.connectors.base: the top-level lines' totals (tax included, after their own
discounts; components of a bundle carry no money and are left out), plus the shipping
(tax included), minus the order's discounts that are not already inside the line totals,
give the grand total. When the shop's prices exclude tax, the lines' discounts are in
that basis and are counted with their line's tax to compare with the order's discount
total, which is always tax included.

An order that does not add up keeps the shop's figures: it is flagged (computed_total,
an order event, a notice on the inbox event), never corrected.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy.orm import Session

from web.connectors.base import ShopOrder
from web.models import Order, OrderLine
from web.services.timeline import Actor, record_event

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MISMATCH_KIND = "totals_mismatch"


@dataclass(frozen=True)
class LineFigures:
    """What reconciliation reads of one top-level line."""

    total_gross: Decimal
    discount_amount: Decimal
    tax_rate: Decimal


@dataclass(frozen=True)
class Mismatch:
    """An order whose parts add up to `computed` while the shop says `stated`."""

    computed: Decimal
    stated: Decimal
    currency: str

    def params(self) -> dict[str, str]:
        """Both figures and the currency, as text (JSON keeps no Decimal)."""
        return {
            "computed": str(self.computed),
            "stated": str(self.stated),
            "difference": str(self.computed - self.stated),
            "currency": self.currency,
        }


def computed_total(
    lines: Iterable[LineFigures],
    *,
    prices_include_tax: bool,
    shipping_total: Decimal,
    discount_total: Decimal,
) -> Decimal:
    """What the top-level lines, the shipping and the remaining discounts add up to."""
    lines = list(lines)
    line_totals = sum((line.total_gross for line in lines), Decimal("0"))
    inside = Decimal("0")
    for line in lines:
        if prices_include_tax:
            inside += line.discount_amount
        else:
            inside += line.discount_amount * (1 + line.tax_rate / HUNDRED)
    inside = inside.quantize(CENT, rounding=ROUND_HALF_UP)
    outside = discount_total - inside
    return (line_totals + shipping_total - outside).quantize(CENT, rounding=ROUND_HALF_UP)


def shop_order_total(order: ShopOrder) -> Decimal:
    """The computed total of an order as a connector hands it over."""
    return computed_total(
        (
            LineFigures(line.total_gross, line.discount_amount, line.tax_rate)
            for line in order.lines
            if line.parent_external_id is None
        ),
        prices_include_tax=order.prices_include_tax,
        shipping_total=order.shipping_total,
        discount_total=order.discount_total,
    )


def shop_order_mismatch(order: ShopOrder) -> Mismatch | None:
    """Both figures when the connector's order does not add up, else None."""
    computed = shop_order_total(order)
    if computed == order.grand_total:
        return None
    return Mismatch(computed, order.grand_total, order.currency)


def stored_order_total(order: Order) -> Decimal:
    """The computed total of a stored order (its lines as Comptoir keeps them)."""
    return computed_total(
        (
            LineFigures(line.total_gross, line.discount_amount, line.tax_rate)
            for line in order.lines
            if _top_level(line)
        ),
        prices_include_tax=order.prices_include_tax,
        shipping_total=order.shipping_total,
        discount_total=order.discount_total,
    )


def _top_level(line: OrderLine) -> bool:
    if line.parent_line_id is not None:
        return False
    # Lines not flushed yet know their parent only through the relationship (read from
    # the instance so that a detached line is not loaded).
    return line.__dict__.get("parent") is None


def reconcile(
    session: Session,
    order: Order,
    actor: Actor,
    previous: tuple[Decimal | None, Decimal | None] = (None, None),
) -> Mismatch | None:
    """Check the stored order's figures; flag it when they do not add up.

    `previous` is (computed_total, grand_total) before this arrival: the order event is
    recorded when the mismatch appears or its figures change, not on every re-delivery.
    """
    computed = stored_order_total(order)
    if computed == order.grand_total:
        order.computed_total = None
        return None
    mismatch = Mismatch(computed, order.grand_total, order.currency)
    order.computed_total = computed
    if previous != (computed, order.grand_total):
        record_event(
            session,
            order,
            actor,
            "order.totals_mismatch",
            _details(mismatch),
        )
    return mismatch


def _details(mismatch: Mismatch) -> dict[str, Any]:
    return dict(mismatch.params())
