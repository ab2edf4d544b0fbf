"""The Shopify connector against published payloads, French orders and a loopback shop."""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.shopify import ShopifyEmulator
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    InvalidSignature,
    NotFoundAtShop,
    PlatformUnavailable,
    RateLimited,
    ShopDiscount,
    ShopOrder,
    ShopSettings,
)
from web.connectors.shopify import ShopifyConnector
from web.models.enums import LineKind, TransactionKind, TransactionStatus

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "shopify"
UTC = dt.UTC
D = Decimal

# The known-good vector of reference/shop-platform-apis.md §1.1.
VECTOR_SECRET = "00000000000000000000000000000000"
VECTOR_SIGNATURE = "hvTE9wpDzMcDnPEuHWvYZ58ElKn5vHs0LomurfNIuUc="

ORDER_FIXTURES = (
    "shopify-order.json",
    "shopify-orders-create-webhook.json",
    "order-fr-relay-point.json",
    "order-fr-company-bundle.json",
    "order-fr-cancelled.json",
    "order-fr-order-level-tax.json",
    "order-fr-free-shipping-code.json",
    "order-fr-bundle-groups.json",
)
# Every fixture but Shopify's own sample order, which contradicts itself (see its test).
CONSISTENT_FIXTURES = ORDER_FIXTURES[1:]


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def doc(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(raw(name))
    return data


# Parsing needs no network: one connector for the pure tests and the hypothesis ones.
OFFLINE = ShopifyConnector(
    ShopSettings(base_url="https://maison-lumiere.myshopify.com", webhook_secret=VECTOR_SECRET)
)


def parse(name: str) -> ShopOrder:
    return OFFLINE.parse_order(raw(name))


@pytest.fixture(scope="module")
def running_shop() -> Iterator[ShopifyEmulator]:
    emulator = ShopifyEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture()
def shop(running_shop: ShopifyEmulator) -> ShopifyEmulator:
    """The module's loopback shop, emptied for each test (stopping one takes 0.5 s)."""
    running_shop.reset()
    return running_shop


def connect(shop: ShopifyEmulator, **overrides: Any) -> ShopifyConnector:
    options: dict[str, Any] = {
        "base_url": shop.base_url,
        "api_key": shop.access_token,
        "webhook_secret": shop.webhook_secret,
        "timeout": 5.0,
        "extra": {"page_size": "3"},
    }
    options.update(overrides)
    return ShopifyConnector(ShopSettings(**options))


@pytest.fixture()
def connector(shop: ShopifyEmulator) -> Iterator[ShopifyConnector]:
    client = connect(shop)
    yield client
    client.close()


def assert_totals_add_up(order: ShopOrder) -> None:
    assert order.subtotal - order.discount_total + order.shipping_total == order.grand_total


def assert_lines_add_up(order: ShopOrder) -> None:
    """The base.py conventions, line by line and for the order.

    Each line: unit price × quantity − its discount is its total in the order's price basis
    (gross when prices include tax, net otherwise), net + tax = gross; a bundle component
    carries no money. The order: the lines' totals plus the shipping are the grand total,
    and the lines' tax plus the shipping's is all the tax.
    """
    for line in order.lines:
        in_basis = line.total_gross if order.prices_include_tax else line.total_net
        before = (line.unit_price * line.quantity).quantize(D("0.01"))
        assert before - line.discount_amount == in_basis, line.external_id
        assert line.total_net + line.tax_amount == line.total_gross, line.external_id
        if line.parent_external_id is not None:
            assert (line.unit_price, line.total_gross, line.discount_amount) == (0, 0, 0)
    lines_total = sum((line.total_gross for line in order.lines), D("0"))
    assert lines_total + order.shipping_total == order.grand_total
    lines_tax = sum((line.tax_amount for line in order.lines), D("0"))
    assert lines_tax + order.shipping_tax == order.tax_total


# --- parsing: published payloads ----------------------------------------------------------


def test_published_sample_order_parses_to_exact_values() -> None:
    order = parse("shopify-order.json")

    assert order.external_id == "450789469"
    assert order.number == "#1001"
    assert order.placed_at == dt.datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    assert order.updated_at == dt.datetime(2008, 1, 10, 16, 0, tzinfo=UTC)
    assert order.currency == "USD"
    assert (order.status, order.status_label) == ("authorized", "Payment authorized")
    assert order.prices_include_tax is False
    # Tax-excluded shop: our subtotal carries the line tax so the totals add up.
    assert order.subtotal == D("409.94")
    assert order.discount_total == D("0.00")
    assert order.shipping_total == D("0.00")
    assert order.tax_total == D("11.94")
    assert order.grand_total == D("409.94")
    assert_totals_add_up(order)
    assert order.discount_codes == ("TENOFF",)
    # The code is kept with its amount although total_discounts says 0.00.
    assert order.discounts == (ShopDiscount("TENOFF", D("10.00"), "TENOFF"),)
    assert order.shipping_label == "Free Shipping"
    assert order.payment_method == "authorize_net"
    assert order.email == "bob.norman@hostmail.com"
    assert order.buyer_note == ""
    assert order.cancelled_at is None
    assert order.transactions is None

    assert [line.external_id for line in order.lines] == ["466157049", "518995019", "703073504"]
    green = order.lines[0]
    assert green.name == "IPod Nano - 8gb"
    assert green.sku == "IPOD2008GREEN"
    assert green.ean == ""
    assert green.options == "green, Custom Engraving: Happy Birthday"
    assert green.kind == LineKind.PRODUCT
    assert [line.options for line in order.lines[1:]] == ["red", "black"]
    # Prices before tax; the lines carry no tax_lines, so the order's 11.94 at 6 % is
    # spread over them to the cent: 3.98 each.
    assert [
        (line.quantity, line.unit_price, line.total_net, line.tax_amount, line.total_gross)
        for line in order.lines
    ] == [(1, D("199.00"), D("199.00"), D("3.98"), D("202.98"))] * 3
    assert {line.tax_rate for line in order.lines} == {D("6")}
    assert all(line.needs_shipping for line in order.lines)


def test_shopifys_sample_order_contradicts_itself_and_is_not_corrected() -> None:
    """Shopify's canonical sample (order 450789469) was assembled by hand: three lines at
    199.00 (597.00) under a total_line_items_price of 398.00, tax 11.94 (6 % of one line),
    and a TENOFF code of 10.00 that no total counts. Its figures are kept as stated, so the
    reconciliation flags it with both figures."""
    order = parse("shopify-order.json")

    lines_total = sum((line.total_gross for line in order.lines), D("0"))
    assert lines_total == D("608.94")  # 597.00 + the order's 11.94 spread over the lines
    assert lines_total + order.shipping_total != order.grand_total == D("409.94")
    assert sum((found.amount for found in order.discounts), D("0")) == D("10.00")
    assert order.discount_total == D("0.00")
    for line in order.lines:  # each line is consistent in itself
        assert line.unit_price * line.quantity - line.discount_amount == line.total_net

    assert order.billing.as_dict() == {
        "first_name": "Bob",
        "last_name": "Norman",
        "line1": "Chestnut Street 92",
        "postcode": "40202",
        "city": "Louisville",
        "region": "KY",
        "country_code": "US",
        "phone": "555-625-1199",
        "email": "bob.norman@hostmail.com",
    }
    assert order.shipping is not None and order.shipping.city == "Louisville"
    assert order.customer.external_id == "207119551"
    assert (order.customer.first_name, order.customer.last_name) == ("Bob", "Norman")


def test_published_webhook_body_keeps_ids_above_2_pow_53() -> None:
    order = parse("shopify-orders-create-webhook.json")

    assert order.external_id == "820982911946154508"
    assert [line.external_id for line in order.lines] == [
        "866550311766439020",
        "141249953214522974",
    ]
    assert order.customer.external_id == "115310627314723954"
    assert order.number == "#9999"
    assert (order.status, order.status_label) == ("cancelled", "Cancelled")
    assert order.cancelled_at == dt.datetime(2017, 7, 17, 17, 44, 9, tzinfo=UTC)
    assert order.cancel_reason == "customer"
    assert order.subtotal == D("52.98")
    assert order.discount_total == D("5.00")
    assert order.shipping_total == D("10.00")
    assert order.grand_total == D("57.98")
    assert_totals_add_up(order)
    hat = order.lines[1]
    assert (hat.unit_price, hat.discount_amount, hat.total_gross) == (
        D("27.99"),
        D("5.00"),
        D("22.99"),
    )
    # total_discounts 5.00 comes from a line's total_discount, with no code or application.
    assert order.discounts == (ShopDiscount("", D("5.00")),)
    assert_lines_add_up(order)
    assert order.payment_method == "visa"
    assert order.shipping_label == "Generic Shipping"
    assert order.billing.company == "My Company"
    assert order.email == "jon@doe.ca"
    assert order.customer.email == "john@test.com"
    assert order.shipping is not None
    assert (order.shipping.first_name, order.shipping.company) == ("Steve", "Shipping Company")


# --- parsing: French orders ---------------------------------------------------------------


def test_relay_point_order_with_discount_code_and_two_vat_rates() -> None:
    order = parse("order-fr-relay-point.json")

    assert order.external_id == "6187549311041"
    assert order.number == "#1042"
    assert order.placed_at == dt.datetime(2025, 3, 2, 17, 42, 10, tzinfo=UTC)
    assert order.updated_at == dt.datetime(2025, 3, 2, 17, 42, 13, tzinfo=UTC)
    assert (order.currency, order.status, order.prices_include_tax) == ("EUR", "paid", True)
    assert order.subtotal == D("88.80")
    assert order.discount_total == D("8.88")
    assert order.shipping_total == D("4.90")
    assert order.shipping_tax == D("0.82")
    assert order.tax_total == D("9.01")
    assert order.grand_total == D("84.82")
    assert_totals_add_up(order)
    assert order.discount_codes == ("BIENVENUE10",)
    # The code's amount is the sum of its allocations on the lines: 4.98 + 3.90.
    assert order.discounts == (ShopDiscount("BIENVENUE10", D("8.88"), "BIENVENUE10"),)
    assert_lines_add_up(order)
    assert order.shipping_label == "Mondial Relay - Point Relais"
    assert (order.payment_method, order.payment_method_label) == (
        "shopify_payments",
        "Shopify Payments",
    )
    assert order.buyer_note == "Merci de ne pas mettre la facture dans le colis, c'est un cadeau."

    book, apron = order.lines
    assert book.name == "Livre « Cuisine de saison »"
    assert (book.sku, book.quantity, book.unit_price) == ("LIV-CUIS-01", 2, D("24.90"))
    assert book.tax_rate == D("5.5")
    assert (book.discount_amount, book.total_gross) == (D("4.98"), D("44.82"))
    assert (book.tax_amount, book.total_net) == (D("2.34"), D("42.48"))
    assert apron.options == "Bleu / M, Broderie: Hélène"  # "_personalisation_id" is hidden
    assert apron.tax_rate == D("20")
    assert (apron.discount_amount, apron.total_gross) == (D("3.90"), D("35.10"))
    assert (apron.tax_amount, apron.total_net) == (D("5.85"), D("29.25"))
    lines_gross = sum((line.total_gross for line in order.lines), D("0"))
    assert lines_gross + order.shipping_total == order.grand_total

    assert order.shipping is not None
    assert order.shipping.relay_point_id == "FR-020391"
    assert order.shipping.company == "Relais Tabac Presse du Marché"
    assert (order.shipping.line1, order.shipping.postcode) == ("12 place du Marché", "69004")
    assert order.billing.relay_point_id == ""
    assert (order.billing.first_name, order.billing.last_name) == ("Hélène", "Dupré-Léger")
    assert order.billing.line2 == "Bâtiment B, 3e étage"
    assert order.billing.country_code == "FR"
    assert order.customer.external_id == "7364519023831"
    assert order.customer.phone == "+33612345678"


def test_company_order_with_vat_number_and_bundle() -> None:
    order = parse("order-fr-company-bundle.json")

    assert (order.status, order.status_label) == ("pending", "Pending payment")
    assert order.billing.company == "Atelier Générale SARL"
    assert order.billing.vat_id == "FR40303265045"
    assert order.billing.phone == "+33 1 43 55 12 34"
    assert order.customer.company == "Atelier Générale SARL"
    assert order.email == "compta@atelier-generale.fr"
    assert order.payment_method == "Virement bancaire"
    assert order.payment_method_label == "Virement bancaire"
    assert order.shipping_label == "Colissimo Domicile - sans signature"
    assert order.discount_codes == ()
    assert (order.subtotal, order.discount_total) == (D("107.00"), D("0.00"))
    assert (order.shipping_total, order.shipping_tax) == (D("6.90"), D("1.15"))
    assert (order.tax_total, order.grand_total) == (D("16.23"), D("113.90"))
    assert_totals_add_up(order)

    assert_lines_add_up(order)

    bundle, tea, teapot, cups = order.lines
    # The components carry only sales_line_item_group_id and the order no line_item_groups:
    # one bundle line, bought once, named after its components, with their money.
    assert (bundle.external_id, bundle.quantity, bundle.sku) == ("bundle:142831599", 1, "")
    assert bundle.name == "Thé vert Sencha bio 100 g + Théière en fonte 0,8 L"
    assert (bundle.unit_price, bundle.total_net, bundle.tax_amount, bundle.total_gross) == (
        D("69.00"),
        D("60.25"),
        D("8.75"),
        D("69.00"),
    )
    assert bundle.tax_rate == D("14.52")  # 5.5 % tea and 20 % teapot: 8.75 / 60.25
    assert bundle.parent_external_id is None and bundle.needs_shipping
    # The components, for picking: their quantities, no money.
    assert [(line.sku, line.quantity, line.parent_external_id) for line in (tea, teapot)] == [
        ("THE-SEN-100", 2, "bundle:142831599"),
        ("THEI-FON-08-NO", 1, "bundle:142831599"),
    ]
    assert (tea.total_gross, teapot.total_gross, tea.unit_price) == (D("0"), D("0"), D("0"))
    assert (tea.tax_rate, teapot.options) == (D("5.5"), "Noir mat")
    assert (cups.quantity, cups.unit_price, cups.tax_amount) == (4, D("9.50"), D("6.33"))
    assert cups.parent_external_id is None


def test_cancelled_and_refunded_order() -> None:
    order = parse("order-fr-cancelled.json")

    assert (order.status, order.status_label) == ("cancelled", "Cancelled")
    assert order.cancelled_at == dt.datetime(2025, 3, 3, 9, 15, 4, tzinfo=UTC)
    assert order.cancel_reason == "customer"
    assert order.billing.first_name == "Zoë"
    assert order.billing.last_name == "Château"
    assert order.shipping_label == "Chronopost - Livraison express à domicile"
    assert order.payment_method == "paypal"
    assert order.payment_method_label == "PayPal"
    assert order.grand_total == D("38.90")
    assert order.lines[0].name == "Bougie parfumée « Figuier »"


def test_tax_on_the_order_only_is_spread_over_the_lines_to_the_cent() -> None:
    order = parse("order-fr-order-level-tax.json")

    assert_totals_add_up(order)
    assert_lines_add_up(order)
    cushion, candles, pattern, gift_card = order.lines
    # 14.36 of tax, 0.98 of it the shipping's: 13.38 over 34.90, 37.35 and 8.00 of goods.
    assert [line.tax_amount for line in order.lines] == [
        D("5.82"),
        D("6.23"),
        D("1.33"),
        D("0.00"),
    ]
    assert [line.tax_rate for line in order.lines] == [D("20"), D("20"), D("20"), D("0")]
    assert (candles.quantity, candles.unit_price, candles.total_net) == (3, D("12.45"), D("31.12"))
    assert (order.tax_total, order.shipping_tax) == (D("14.36"), D("0.98"))
    # A PDF pattern (requires_shipping false) and a gift card need no shipping.
    assert [line.needs_shipping for line in order.lines] == [True, True, False, False]
    assert cushion.options == "Terracotta / 45 × 45"
    assert gift_card.options == "25 €" and gift_card.sku == ""


def test_the_spread_tax_sums_to_the_orders_exactly() -> None:
    data = doc("order-fr-order-level-tax.json")
    for item, price in zip(data["line_items"][:3], ("10.00", "10.00", "10.00"), strict=True):
        item["price"], item["quantity"] = price, 1
    data["line_items"] = data["line_items"][:3]
    data["shipping_lines"][0]["tax_lines"] = []
    data["tax_lines"][0]["price"] = "1.00"

    order = OFFLINE.parse_order(json.dumps(data).encode())

    # A third of a euro each: the cent left over goes to the first line.
    assert [line.tax_amount for line in order.lines] == [D("0.34"), D("0.33"), D("0.33")]


def test_stacked_order_taxes_add_their_rates() -> None:
    data = doc("order-fr-order-level-tax.json")
    data["tax_lines"] = [  # two taxes on every line, 12 % and 8 %
        {"price": "8.62", "rate": 0.12, "title": "Provincial"},
        {"price": "5.74", "rate": 0.08, "title": "Federal"},
    ]

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert [(line.tax_amount, line.tax_rate) for line in order.lines[:3]] == [
        (D("5.82"), D("20")),
        (D("6.23"), D("20")),
        (D("1.33"), D("20")),
    ]


def test_order_taxes_at_several_rates_give_the_overall_rate() -> None:
    data = doc("order-fr-order-level-tax.json")
    data["tax_lines"] = [
        {"price": "13.36", "rate": 0.2, "title": "FR TVA"},
        {"price": "1.00", "rate": 0.055, "title": "FR TVA"},
    ]

    order = OFFLINE.parse_order(json.dumps(data).encode())

    # 13.38 of line tax on 80.25 tax included: 20.01 %, not 20 + 5.5.
    assert {line.tax_rate for line in order.lines[:3]} == {D("20.01")}
    assert sum((line.tax_amount for line in order.lines), D("0")) == D("13.38")


def test_lines_with_their_own_tax_lines_keep_them() -> None:
    order = parse("order-fr-relay-point.json")

    assert [line.tax_amount for line in order.lines] == [D("2.34"), D("5.85")]


def test_a_free_shipping_code_keeps_its_amount_when_total_discounts_is_zero() -> None:
    order = parse("order-fr-free-shipping-code.json")

    assert order.discount_total == D("0.00")
    assert order.discount_codes == ("LIVRAISONOFFERTE",)
    assert order.discounts == (ShopDiscount("LIVRAISONOFFERTE", D("4.90"), "LIVRAISONOFFERTE"),)
    # total_discounts leaves the shipping discount out: the shipping is what was paid, 0.00.
    assert order.shipping_total == D("0.00")
    assert order.grand_total == D("39.00")
    assert_totals_add_up(order)
    assert_lines_add_up(order)


def test_a_shipping_discount_counted_in_total_discounts_leaves_the_shipping_price() -> None:
    data = doc("order-fr-free-shipping-code.json")
    data["total_discounts"] = "4.90"

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert (order.shipping_total, order.discount_total) == (D("4.90"), D("4.90"))
    assert order.discounts == (ShopDiscount("LIVRAISONOFFERTE", D("4.90"), "LIVRAISONOFFERTE"),)
    assert_totals_add_up(order)


def test_a_bundle_described_by_line_item_groups() -> None:
    order = parse("order-fr-bundle-groups.json")

    assert_totals_add_up(order)
    assert_lines_add_up(order)
    bundle, tea, cup, candle = order.lines
    assert (bundle.external_id, bundle.name, bundle.sku) == (
        "bundle:287341121",
        "Coffret « Thé du matin »",
        "COF-THE-MAT",
    )
    # Two boxes at 21.50; 10 % off (2.40 + 1.90) on the components' lines.
    assert (bundle.quantity, bundle.unit_price, bundle.discount_amount) == (
        2,
        D("21.50"),
        D("4.30"),
    )
    assert (bundle.total_net, bundle.tax_amount, bundle.total_gross) == (
        D("34.72"),
        D("3.98"),
        D("38.70"),
    )
    assert bundle.options == "Message: Joyeux anniversaire Mamie !"  # "_bundle_origin" hidden
    assert [(line.name, line.quantity, line.parent_external_id) for line in (tea, cup)] == [
        ("Thé vert Sencha bio 100 g", 2, "bundle:287341121"),
        ("Tasse en grès émaillé", 2, "bundle:287341121"),
    ]
    assert (candle.unit_price, candle.discount_amount, candle.total_gross) == (
        D("29.00"),
        D("2.90"),
        D("26.10"),
    )
    assert candle.parent_external_id is None
    assert order.discounts == (ShopDiscount("PRINTEMPS10", D("7.20"), "PRINTEMPS10"),)
    assert order.discount_total == D("7.20")


def test_an_automatic_discount_has_its_title_and_no_code() -> None:
    data = doc("order-fr-bundle-groups.json")
    data["discount_codes"] = []
    data["discount_applications"][0].update(
        type="automatic", title="Printemps -10 %", description="Printemps -10 %"
    )
    del data["discount_applications"][0]["code"]

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert order.discounts == (ShopDiscount("", D("7.20"), "Printemps -10 %"),)
    assert order.discount_codes == ()


@pytest.mark.parametrize("name", CONSISTENT_FIXTURES)
def test_every_order_adds_up(name: str) -> None:
    order = parse(name)

    assert_totals_add_up(order)
    assert_lines_add_up(order)
    assert sum((found.amount for found in order.discounts), D("0")) >= order.discount_total


def test_webhook_body_and_api_answer_parse_alike() -> None:
    bare = raw("order-fr-relay-point.json")
    wrapped = json.dumps({"order": json.loads(bare)}).encode()

    assert OFFLINE.parse_order(wrapped) == OFFLINE.parse_order(bare)


def test_removed_shipping_line_is_not_the_shipping_label() -> None:
    data = doc("order-fr-relay-point.json")
    removed = copy.deepcopy(data["shipping_lines"][0])
    removed.update(id=1, title="Colissimo Domicile - sans signature", price="6.90", is_removed=True)
    data["shipping_lines"].insert(0, removed)

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert order.shipping_label == "Mondial Relay - Point Relais"
    assert (order.shipping_total, order.shipping_tax) == (D("4.90"), D("0.82"))


def test_without_the_lines_total_the_subtotal_is_the_lines_prices_times_quantities() -> None:
    data = doc("order-fr-relay-point.json")
    stated = data.pop("total_line_items_price")
    data.pop("total_line_items_price_set", None)

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert order.subtotal == D(stated) == D("88.80")


def test_a_partly_paid_order_counts_what_the_buyer_paid_so_far() -> None:
    data = doc("order-fr-relay-point.json")
    data.update(financial_status="partially_paid", total_outstanding="30.00")

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert order.payment_summary is not None
    assert order.payment_summary.paid == D("84.82") - D("30.00")


def test_a_relay_point_app_naming_its_id_numero_gives_the_number_not_the_name() -> None:
    data = doc("order-fr-relay-point.json")
    data["note_attributes"] = [
        {"name": "Point relais - Nom", "value": "Relais Tabac Presse du Marché"},
        {"name": "Point relais - Numéro", "value": "020391"},
    ]

    order = OFFLINE.parse_order(json.dumps(data).encode())

    assert order.shipping is not None and order.shipping.relay_point_id == "020391"


def test_a_bundle_whose_quantity_is_not_a_number_is_refused_naming_the_bundle() -> None:
    data = doc("order-fr-bundle-groups.json")
    data["line_item_groups"][0]["quantity"] = "deux"

    with pytest.raises(BadPayload) as refused:
        OFFLINE.parse_order(json.dumps(data).encode())

    assert str(refused.value) == "line_item_groups[287341121].quantity: 'deux' is not a quantity"


def test_a_refund_body_is_not_an_order() -> None:
    refund = json.dumps(doc("order-fr-cancelled.json")["refunds"][0]).encode()

    with pytest.raises(BadPayload, match="refund"):
        OFFLINE.parse_order(refund)


@pytest.mark.parametrize(
    ("mutation", "field"),
    [
        ({"total_price": "12,50"}, "total_price"),
        ({"updated_at": "2025-03-02T18:42:13"}, "updated_at"),
        ({"line_items": [{"id": 1, "quantity": "two", "price": "1.00"}]}, "line_items[0].quantity"),
        ({"currency": None}, "currency"),
        ({"created_at": "hier"}, "created_at"),
        ({"discount_codes": "SOLDES"}, "discount_codes"),
        ({"refunds": ["remboursé"]}, "refunds[0]"),
        ({"refunds": [{"transactions": "remboursé"}]}, "refunds.transactions"),
    ],
)
def test_bad_fields_are_named(mutation: dict[str, Any], field: str) -> None:
    data = doc("order-fr-relay-point.json")
    data.update(mutation)

    with pytest.raises(BadPayload) as caught:
        OFFLINE.parse_order(json.dumps(data).encode())

    assert field in str(caught.value)


# --- webhooks -----------------------------------------------------------------------------


def test_published_signature_vector() -> None:
    body = raw("shopify-orders-create-webhook.json")
    headers = {"X-Shopify-Hmac-Sha256": VECTOR_SIGNATURE}

    OFFLINE.verify_webhook(body, headers)
    with pytest.raises(InvalidSignature):
        OFFLINE.verify_webhook(body.replace(b'"57.98"', b'"5.98"'), headers)
    with pytest.raises(InvalidSignature):
        OFFLINE.verify_webhook(body.rstrip(b"\n"), headers)
    with pytest.raises(InvalidSignature):
        wrong = ShopifyConnector(
            ShopSettings(base_url="https://x.myshopify.com", webhook_secret="1" * 32)
        )
        wrong.verify_webhook(body, headers)
    with pytest.raises(InvalidSignature, match="missing"):
        OFFLINE.verify_webhook(body, {})
    with pytest.raises(InvalidSignature, match="secret"):
        ShopifyConnector(ShopSettings(base_url="https://x.myshopify.com")).verify_webhook(
            body, headers
        )


def test_emulator_deliveries_verify_in_either_header_form(shop: ShopifyEmulator) -> None:
    shop.add_order(raw("order-fr-relay-point.json"))
    body, headers = shop.webhook("orders/create", 6187549311041)
    connector = connect(shop)

    assert "Hélène".encode() in body  # UTF-8 on the wire, signed as is
    connector.verify_webhook(body, headers)
    connector.verify_webhook(body, {"shopify-hmac-sha256": headers["X-Shopify-Hmac-Sha256"]})
    _, forged = shop.webhook("orders/create", 6187549311041, secret="not-the-secret")
    with pytest.raises(InvalidSignature):
        connector.verify_webhook(body, forged)


def test_describe_webhook_for_order_topics_and_refunds(shop: ShopifyEmulator) -> None:
    shop.add_order(raw("order-fr-cancelled.json"))
    connector = connect(shop)

    body, headers = shop.webhook("orders/cancelled", 6187573559361, webhook_id="b54557e4-abc1")
    delivery = connector.describe_webhook(body, headers)
    assert delivery.topic == "orders/cancelled"
    assert delivery.dedupe_key == "b54557e4-abc1"
    assert delivery.external_order_id == "6187573559361"
    assert delivery.is_ping is False
    assert connector.parse_order(body).status == "cancelled"

    body, headers = shop.webhook("refunds/create", 6187573559361)
    delivery = connector.describe_webhook(body, headers)
    assert delivery.topic == "refunds/create"
    assert delivery.external_order_id == "6187573559361"
    assert json.loads(body)["id"] == 1042987311169  # the Refund, not the order

    again = connector.describe_webhook(*shop.webhook("orders/paid", 6187573559361, webhook_id="r1"))
    assert again.dedupe_key == "r1"


def test_describe_webhook_refuses_deliveries_without_topic_or_id() -> None:
    body = raw("shopify-orders-create-webhook.json")

    with pytest.raises(BadPayload, match="Topic"):
        OFFLINE.describe_webhook(body, {"X-Shopify-Webhook-Id": "1"})
    with pytest.raises(BadPayload, match="Webhook-Id"):
        OFFLINE.describe_webhook(body, {"X-Shopify-Topic": "orders/create"})
    with pytest.raises(BadPayload, match="id"):
        OFFLINE.describe_webhook(
            b"{}", {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "1"}
        )


def test_test_notifications_are_pings() -> None:
    headers = {
        "X-Shopify-Topic": "orders/create",
        "X-Shopify-Webhook-Id": "w",
        "X-Shopify-Test": "true",
    }
    body = raw("shopify-orders-create-webhook.json")

    assert OFFLINE.is_ping(body, headers)
    assert OFFLINE.describe_webhook(body, headers).is_ping
    assert not OFFLINE.is_ping(body, {"X-Shopify-Topic": "orders/create"})


def test_register_webhooks_skips_topics_already_registered(shop: ShopifyEmulator) -> None:
    connector = connect(shop)
    url = "https://comptoir.example.fr/hooks/shopify/k3y"
    connector.register_webhooks("https://elsewhere.example.com/hook")

    assert connector.register_webhooks(url) == list(ShopifyConnector.webhook_topics)
    assert connector.register_webhooks(url) == []
    ours = [hook for hook in shop.webhooks if hook["address"] == url]
    assert sorted(hook["topic"] for hook in ours) == sorted(ShopifyConnector.webhook_topics)
    posted = shop.requests_to("POST", "/webhooks.json")[-1].json()
    assert posted["webhook"]["format"] == "json"


# --- polling ------------------------------------------------------------------------------


def add_series(shop: ShopifyEmulator, count: int) -> list[str]:
    """count orders updated one hour apart, stored out of order; two share a timestamp."""
    template = doc("order-fr-relay-point.json")
    ids = []
    for index in reversed(range(count)):
        order = copy.deepcopy(template)
        order["id"] = 6187549311100 + index
        order["name"] = f"#{1100 + index}"
        hour = min(index, count - 2)  # the last two tie on updated_at
        order["updated_at"] = f"2025-03-05T{8 + hour:02d}:00:00+01:00"
        shop.add_order(order)
        ids.append(str(order["id"]))
    return sorted(ids)


def read_all(connector: ShopifyConnector, since: dt.datetime) -> tuple[list[ShopOrder], int]:
    batch = connector.list_orders(since)
    orders, pages = list(batch.orders), 1
    while batch.next_page:
        batch = connector.list_orders(since, batch.next_page)
        orders.extend(batch.orders)
        pages += 1
    return orders, pages


def test_list_orders_pages_through_in_change_order(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    ids = add_series(shop, 8)
    shop.add_order(raw("shopify-order.json"))  # changed in 2008: outside the window

    orders, pages = read_all(connector, dt.datetime(2025, 3, 1, tzinfo=UTC))

    assert pages == 3
    assert [order.external_id for order in orders] == ids
    stamps = [order.updated_at for order in orders]
    assert stamps == sorted(stamps)
    first, *rest = shop.requests_to("GET", "/orders.json")
    assert first.arg("status") == "any"
    assert first.arg("order") == "updated_at asc"
    assert first.arg("updated_at_min") == "2025-03-01T00:00:00Z"
    assert first.arg("limit") == "3"
    assert rest and all({name for name, _ in r.query} == {"limit", "page_info"} for r in rest)


def test_list_orders_filters_on_changed_since(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    ids = add_series(shop, 5)
    later = shop.update_order(ids[3], note="Livrer après 18 h")
    latest = shop.update_order(ids[0], financial_status="refunded")

    since = dt.datetime.fromisoformat(later["updated_at"])
    orders, _ = read_all(connector, since)

    assert [order.external_id for order in orders] == [ids[3], ids[0]]
    assert orders[0].buyer_note == "Livrer après 18 h"
    assert orders[1].status == "refunded"
    assert orders[1].updated_at == dt.datetime.fromisoformat(latest["updated_at"])
    assert orders[0].updated_at < orders[1].updated_at


def test_list_orders_accepts_the_whole_next_url(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    add_series(shop, 4)
    first = connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC))
    assert first.next_page and "://" not in first.next_page  # the bare page_info token

    url = f"{shop.base_url}/admin/api/2025-01/orders.json?limit=3&page_info={first.next_page}"
    second = connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC), url)

    assert len(first.orders) == 3
    assert len(second.orders) == 1 and second.next_page is None
    assert shop.requests[-1].arg("page_info") == first.next_page


def test_fetch_order(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    shop.add_order(raw("order-fr-company-bundle.json"))

    order = connector.fetch_order("6187601215553")

    assert order == parse("order-fr-company-bundle.json")
    assert shop.requests[-1].path == "/admin/api/2025-01/orders/6187601215553.json"
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("123")
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("../shop")


def test_fetch_transactions(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    shop.add_order(raw("shopify-order.json"))
    shop.set_transactions(
        450789469,
        [
            {
                "id": 389404469,
                "order_id": 450789469,
                "kind": "authorization",
                "gateway": "bogus",
                "status": "success",
                "message": None,
                "created_at": "2005-08-01T11:57:11-04:00",
                "processed_at": "2005-08-01T11:57:11-04:00",
                "test": False,
                "authorization": "authorization-key",
                "parent_id": None,
                "amount": "409.94",
                "currency": "USD",
            },
            {
                "id": 1068278509,
                "order_id": 450789469,
                "kind": "capture",
                "gateway": "bogus",
                "status": "failure",
                "created_at": "2025-01-20T09:00:00+01:00",
                "processed_at": None,
                "authorization": None,
                "parent_id": 389404469,
                "amount": "409.94",
                "currency": "USD",
            },
            {
                "id": 1068278510,
                "order_id": 450789469,
                "kind": "capture",
                "gateway": "bogus",
                "status": "pending",
                "created_at": "2025-01-20T09:05:00+01:00",
                "processed_at": "2025-01-20T09:05:00+01:00",
                "amount": "409.94",
                "currency": "USD",
            },
        ],
    )

    auth, failed, pending = connector.fetch_transactions("450789469")

    assert auth.external_id == "389404469"
    assert (auth.kind, auth.status) == (TransactionKind.AUTHORIZATION, TransactionStatus.SUCCESS)
    assert (auth.amount, auth.currency) == (D("409.94"), "USD")
    assert auth.occurred_at == dt.datetime(2005, 8, 1, 15, 57, 11, tzinfo=UTC)
    assert (auth.method, auth.reference) == ("bogus", "authorization-key")
    assert (failed.kind, failed.status) == (TransactionKind.CAPTURE, TransactionStatus.FAILURE)
    assert failed.occurred_at == dt.datetime(2025, 1, 20, 8, 0, tzinfo=UTC)
    assert pending.status == TransactionStatus.PENDING
    assert shop.requests[-1].path.endswith("/orders/450789469/transactions.json")


def test_fetch_transactions_of_a_refunded_order(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    shop.add_order(raw("order-fr-cancelled.json"))

    sale, refund = connector.fetch_transactions("6187573559361")

    assert (sale.kind, sale.amount, sale.method) == (TransactionKind.SALE, D("38.90"), "paypal")
    assert (refund.kind, refund.amount) == (TransactionKind.REFUND, D("38.90"))
    assert refund.external_id == "7918325465153"
    assert refund.reference == "8TJ41203XL9870514"


# --- catalogues ---------------------------------------------------------------------------


def test_catalogues(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    for name in ("order-fr-relay-point.json", "order-fr-company-bundle.json"):
        shop.add_order(raw(name))
    shop.add_order(raw("shopify-orders-create-webhook.json"))

    statuses = {choice.code: choice.label for choice in connector.list_statuses()}
    assert set(statuses) == {
        "pending",
        "authorized",
        "partially_paid",
        "paid",
        "partially_refunded",
        "refunded",
        "voided",
        "expired",
        "cancelled",
    }
    assert statuses["voided"] == "Voided (authorization cancelled)"

    carriers = connector.list_carriers()
    assert [c.code for c in carriers] == [
        "Mondial Relay - Point Relais",
        "Colissimo Domicile - sans signature",
        "Chronopost - Livraison express à domicile",
        "Colissimo International",
    ]
    assert carriers[0].label == "Mondial Relay - Point Relais (France)"
    assert parse("order-fr-relay-point.json").shipping_label in {c.code for c in carriers}

    methods = connector.list_payment_methods()
    assert [(m.code, m.label) for m in methods] == [
        ("Virement bancaire", "Virement bancaire"),
        ("shopify_payments", "Shopify Payments"),
        ("visa", "visa"),
        ("bogus", "Bogus (test gateway)"),
    ]
    asked = shop.requests_to("GET", "/orders.json")[-1]
    assert asked.arg("fields") == "id,payment_gateway_names,gateway"

    assert connector.test_connection() == (
        "Shopify shop Maison Lumière (maison-lumiere.myshopify.com, EUR, Basic)"
    )
    assert shop.requests[-1].headers["x-shopify-access-token"] == shop.access_token


# --- failures -----------------------------------------------------------------------------


def test_wrong_credentials(shop: ShopifyEmulator) -> None:
    connector = connect(shop, api_key="shpat_revoked")

    with pytest.raises(AuthFailed, match="Invalid API key"):
        connector.test_connection()
    with pytest.raises(AuthFailed):
        connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC))


def test_a_shop_answer_without_its_name_is_refused_naming_the_field(
    shop: ShopifyEmulator, connector: ShopifyConnector
) -> None:
    shop.shop["name"] = ["Maison Lumière"]

    with pytest.raises(BadPayload, match=r"^shop\.name: "):
        connector.test_connection()


def test_rate_limited(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    shop.fail_next(429, retry_after="7")

    with pytest.raises(RateLimited) as caught:
        connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC))

    assert caught.value.retry_after == 7
    assert connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC)).orders == ()


def test_shop_unavailable(shop: ShopifyEmulator, connector: ShopifyConnector) -> None:
    shop.fail_next(503)

    with pytest.raises(PlatformUnavailable):
        connector.fetch_transactions("450789469")


def test_slow_shop_times_out(shop: ShopifyEmulator) -> None:
    connector = connect(shop, timeout=0.5)
    shop.slow_next(1.5)

    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.test_connection()
    connector.close()
    shop.wait_landed()


# --- robustness ---------------------------------------------------------------------------

# Values a shop could plausibly get wrong: they find the errors plain random values miss.
NASTY: list[Any] = [None, True, 0, -1, 10**30, 1e300, 0.055, "", "0.055", "1e999", "9" * 40]
NASTY += ["NaN", "12,50", "2025-13-45T00:00:00Z", "0001-01-01T00:00:00+01:00", "2025-03-02T18:42"]
NASTY += [[], {}, [{}], {"amount": "1"}]
nasty = st.sampled_from(NASTY)
json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    json_leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


# The keys the parser reads: mutations aim there (the fixtures hold many more).
READ_KEYS = {
    *("id", "name", "order_number", "currency", "updated_at", "created_at", "processed_at"),
    *("taxes_included", "email", "contact_email", "note", "note_attributes", "value"),
    *("billing_address", "shipping_address", "customer", "line_items", "shipping_lines"),
    *("total_line_items_price", "total_tax", "total_discounts", "total_price", "gateway"),
    *("payment_gateway_names", "discount_codes", "code", "cancelled_at", "cancel_reason"),
    *("financial_status", "quantity", "price", "discount_allocations", "amount", "rate"),
    *("total_discount", "tax_lines", "variant_title", "properties", "title", "sku"),
    *("is_removed", "total_shipping_price_set", "shop_money", "first_name", "last_name"),
    *("company", "address1", "address2", "zip", "city", "province_code", "province"),
    *("country_code", "phone", "order"),
    *("requires_shipping", "gift_card", "taxable", "sales_line_item_group_id", "type"),
    *("line_item_groups", "variant_sku", "discount_applications", "description"),
    *("discount_application_index",),
}


DELETED = object()


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if not prefix or isinstance(prefix[-1], int) or prefix[-1] in READ_KEYS:
        yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from paths(child, (*prefix, index))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_raise_only_bad_payload(payload: bytes) -> None:
    with contextlib.suppress(BadPayload):
        OFFLINE.parse_order(payload)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_payloads_raise_only_bad_payload(data: st.DataObject) -> None:
    document: Any = doc(data.draw(st.sampled_from(ORDER_FIXTURES)))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        path = data.draw(st.sampled_from(list(paths(document))))
        # A copy: NASTY holds lists and dicts that must not be shared or mutated.
        replacement = copy.deepcopy(data.draw(nasty | json_values))
        if not path:
            document = replacement
            continue
        parent = document
        for step in path[:-1]:
            parent = parent[step]
        if data.draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = replacement
    with contextlib.suppress(BadPayload):
        OFFLINE.parse_order(json.dumps(document).encode())


@pytest.mark.parametrize(
    "name", ["order-fr-relay-point.json", "shopify-order.json", "order-fr-bundle-groups.json"]
)
def test_every_read_field_spoiled_raises_only_bad_payload(name: str) -> None:
    document = doc(name)
    for path in list(paths(document))[1:]:
        parent: Any = document
        for step in path[:-1]:
            parent = parent[step]
        original = parent[path[-1]]
        for value in [*NASTY, DELETED]:
            if value is DELETED:
                if not isinstance(parent, dict):
                    continue
                del parent[path[-1]]
            else:
                parent[path[-1]] = value
            with contextlib.suppress(BadPayload):
                OFFLINE.parse_order(json.dumps(document).encode())
            parent[path[-1]] = original
