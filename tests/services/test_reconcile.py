"""Reconciliation on platform-neutral orders: lines + shipping - discounts = total, to the cent."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from tests.services.test_intake import shop_order
from web.connectors.base import ShopLine, ShopOrder
from web.models.enums import LineKind
from web.services.reconcile import (
    LineFigures,
    Mismatch,
    computed_total,
    shop_order_mismatch,
    shop_order_total,
)

D = Decimal


def test_an_order_that_adds_up() -> None:
    # 58.00 + 8.40 + shipping 4.90 - code 6.64 (not inside the lines) = 64.66
    order = shop_order()
    assert shop_order_total(order) == D("64.66") == order.grand_total
    assert shop_order_mismatch(order) is None


def test_a_cent_off_is_flagged_with_both_figures() -> None:
    order = shop_order(grand_total=D("64.67"))
    assert shop_order_mismatch(order) == Mismatch(D("64.66"), D("64.67"), "EUR")
    assert shop_order_mismatch(order).params() == {  # type: ignore[union-attr]
        "computed": "64.66",
        "stated": "64.67",
        "difference": "-0.01",
        "currency": "EUR",
    }


def test_shipping_counts() -> None:
    order = shop_order(shipping_total=D("0.00"))
    assert shop_order_mismatch(order) == Mismatch(D("59.76"), D("64.66"), "EUR")


def with_lines(order: ShopOrder, *lines: ShopLine, **changes: object) -> ShopOrder:
    return dataclasses.replace(order, lines=lines, **changes)  # type: ignore[arg-type]


def test_discounts_inside_the_line_totals_are_not_taken_twice() -> None:
    base = shop_order()
    candle, tea = base.lines
    # The 10 % code spread onto the lines: 5.80 and 0.84, inside their totals.
    candle = dataclasses.replace(candle, discount_amount=D("5.80"), total_gross=D("52.20"))
    tea = dataclasses.replace(tea, discount_amount=D("0.84"), total_gross=D("7.56"))
    order = with_lines(base, candle, tea)
    assert shop_order_total(order) == D("64.66")
    assert shop_order_mismatch(order) is None
    # Half inside the lines, half at the order level (a second, order-wide discount).
    order = with_lines(base, candle, tea, discount_total=D("9.64"), grand_total=D("61.66"))
    assert shop_order_mismatch(order) is None


def test_components_are_ignored() -> None:
    base = shop_order()
    component = ShopLine(
        external_id="c1",
        name="Mèche de rechange",
        quantity=2,
        unit_price=D("4.00"),  # a connector mistake: money on a component is not counted
        total_gross=D("8.00"),
        parent_external_id=base.lines[0].external_id,
    )
    order = with_lines(base, *base.lines, component)
    assert shop_order_mismatch(order) is None
    # The same line without its parent is something the buyer pays for.
    loose = dataclasses.replace(component, parent_external_id=None)
    assert shop_order_mismatch(with_lines(base, *base.lines, loose)) == Mismatch(
        D("72.66"), D("64.66"), "EUR"
    )


def test_prices_excluding_tax() -> None:
    """A B2B order: prices and line discounts without tax, totals with tax."""
    line = ShopLine(
        external_id="b1",
        name="Carnet A5",
        quantity=10,
        unit_price=D("12.50"),  # without tax
        tax_rate=D("20"),
        discount_amount=D("12.50"),  # 10 % without tax, inside the line
        total_net=D("112.50"),
        tax_amount=D("22.50"),
        total_gross=D("135.00"),
    )
    order = with_lines(
        shop_order(),
        line,
        prices_include_tax=False,
        subtotal=D("150.00"),
        discount_total=D("15.00"),  # the same discount with its tax
        shipping_total=D("12.00"),
        shipping_tax=D("2.00"),
        tax_total=D("24.50"),
        grand_total=D("147.00"),
    )
    assert shop_order_total(order) == D("147.00")
    assert shop_order_mismatch(order) is None
    assert shop_order_mismatch(dataclasses.replace(order, grand_total=D("122.50"))) == Mismatch(
        D("147.00"), D("122.50"), "EUR"
    )  # a total that forgot the tax is flagged, not corrected


def test_fees_and_gift_wrapping_are_lines_like_the_others() -> None:
    base = shop_order()
    wrap = ShopLine(
        external_id="w",
        name="Gift wrapping",
        quantity=1,
        unit_price=D("2.50"),
        total_gross=D("2.50"),
        kind=LineKind.GIFT_WRAP,
    )
    order = with_lines(base, *base.lines, wrap, grand_total=D("67.16"))
    assert shop_order_mismatch(order) is None


def test_every_lines_discount_counts_with_its_tax_when_prices_exclude_tax() -> None:
    """Two B2B lines, each with a discount without tax: both discounts are inside."""
    lines = [
        LineFigures(total_gross=D("60.00"), discount_amount=D("5.00"), tax_rate=D("20")),
        LineFigures(total_gross=D("54.00"), discount_amount=D("10.00"), tax_rate=D("20")),
    ]
    # 6.00 + 12.00 of the order's 18.00 discount are inside the lines: nothing left to take.
    total = computed_total(
        lines, prices_include_tax=False, shipping_total=D("0.00"), discount_total=D("18.00")
    )
    assert total == D("114.00")


def test_half_a_cent_rounds_up_as_the_shops_do() -> None:
    # 1.00 without tax at 12.5 % is 1.125 with it: 1.13 inside the line, not 1.12.
    inside = [LineFigures(total_gross=D("10.00"), discount_amount=D("1.00"), tax_rate=D("12.5"))]
    total = computed_total(
        inside, prices_include_tax=False, shipping_total=D("0.00"), discount_total=D("1.13")
    )
    assert total == D("10.00")
    # A platform that keeps four decimals on a line: 10.1250 is paid as 10.13.
    fine = [LineFigures(total_gross=D("10.1250"), discount_amount=D("0"), tax_rate=D("20"))]
    total = computed_total(
        fine, prices_include_tax=True, shipping_total=D("0.00"), discount_total=D("0.00")
    )
    assert total == D("10.13")
