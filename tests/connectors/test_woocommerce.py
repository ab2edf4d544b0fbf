"""The WooCommerce connector against its published payloads and a loopback WooCommerce."""

from __future__ import annotations

import copy
import datetime as dt
import json
import random
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.woocommerce import WooCommerceEmulator
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    InvalidSignature,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    ShopChoice,
    ShopDiscount,
    ShopOrder,
    ShopSettings,
)
from web.connectors.woocommerce import WooCommerceConnector
from web.models.enums import LineKind, TransactionKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce"
UTC = dt.UTC
D = Decimal

# WooCommerce core's signature test vector (tests/legacy/unit-tests/webhooks/crud.php).
VECTOR_BODY = b"secret"
VECTOR_SIGNATURE = "GBDo00G55h6IiV+6CxqivQPLbI//KzaOZm747971tPs="


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture(name: str) -> dict[str, Any]:
    return json.loads(fixture_bytes(name))


_OFFLINE: dict[str, WooCommerceConnector] = {}


def offline(webhook_secret: str = "") -> WooCommerceConnector:
    """A connector that never goes online (built once per secret: httpx clients are slow)."""
    if webhook_secret not in _OFFLINE:
        _OFFLINE[webhook_secret] = WooCommerceConnector(
            ShopSettings(base_url="https://shop.example", webhook_secret=webhook_secret)
        )
    return _OFFLINE[webhook_secret]


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def shop() -> Iterator[WooCommerceEmulator]:
    emulator = WooCommerceEmulator()
    emulator.start()
    yield emulator
    emulator.stop()


@pytest.fixture()
def woo(shop: WooCommerceEmulator) -> Iterator[WooCommerceEmulator]:
    """The shared emulator, emptied for each test."""
    shop.reset()
    yield shop


def connect(shop: WooCommerceEmulator, **overrides: Any) -> WooCommerceConnector:
    options: dict[str, Any] = {
        "base_url": shop.base_url,
        "api_key": shop.consumer_key,
        "api_secret": shop.consumer_secret,
        "webhook_secret": shop.webhook_secret,
        "timeout": 5.0,
    }
    options.update(overrides)
    return WooCommerceConnector(ShopSettings(**options))


def order_at(template: dict[str, Any], order_id: int, modified: dt.datetime) -> dict[str, Any]:
    order = copy.deepcopy(template)
    order["id"] = order_id
    order["number"] = str(order_id)
    order["date_modified_gmt"] = modified.strftime("%Y-%m-%dT%H:%M:%S")
    order["date_modified"] = (modified + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
    return order


def assert_adds_up(order: ShopOrder) -> None:
    """The base.py conventions: subtotal - discounts + shipping = grand total; each line's
    unit price × quantity - its discount is its total in the order's price basis (gross
    when prices include tax, net otherwise), a component carries no money; the lines'
    totals plus the shipping make the grand total, their tax plus the shipping's all tax."""
    assert order.subtotal - order.discount_total + order.shipping_total == order.grand_total
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
    coupons = sum((found.amount for found in order.discounts), D("0"))
    assert coupons == order.discount_total


# --- The published order --------------------------------------------------------------------


def test_the_documented_order_parses_to_exact_values() -> None:
    order = offline().parse_order(fixture_bytes("woocommerce-order.json"))

    assert (order.external_id, order.number, order.currency) == ("727", "727", "USD")
    assert (order.status, order.status_label) == ("processing", "Processing")
    # The *_gmt dates, not the site-local ones three hours behind.
    assert order.placed_at == at("2017-03-22T19:28:02")
    assert order.updated_at == at("2017-03-22T19:28:08")
    assert order.prices_include_tax is False
    assert order.customer.external_id is None  # customer_id 0: a guest
    assert order.email == order.customer.email == "john.doe@example.com"
    assert order.billing.as_dict() == {
        "first_name": "John",
        "last_name": "Doe",
        "line1": "969 Market",
        "postcode": "94103",
        "city": "San Francisco",
        "region": "CA",
        "country_code": "US",
        "phone": "(555) 555-5555",
        "email": "john.doe@example.com",
    }
    assert order.shipping is not None and order.shipping.city == "San Francisco"
    assert order.shipping.email == ""

    single, variation = order.lines
    assert (single.external_id, single.name, single.quantity, single.sku) == (
        "315",
        "Woo Single #1",
        2,
        "",
    )
    # Prices exclude tax in this shop: the unit price is too (its `price`, 3).
    assert single.unit_price == D("3.00")
    assert (single.total_net, single.tax_amount, single.total_gross) == (
        D("6.00"),
        D("0.45"),
        D("6.45"),
    )
    assert single.tax_rate == D("7.5")  # no rate_percent in 3.0.0: computed from the line
    assert variation.name == "Ship Your Idea – Color: Black, Size: M Test"
    assert (variation.sku, variation.unit_price) == ("Bar3", D("12.00"))
    # WC 3.0.0 answers have no display_key / display_value: the attribute's readable name.
    assert variation.options == "Color: black, size: M Test"
    assert all(line.needs_shipping for line in order.lines)  # nothing tells otherwise
    assert_adds_up(order)
    assert all(line.kind == LineKind.PRODUCT for line in order.lines)

    assert order.subtotal == D("19.35")
    assert (order.discount_total, order.shipping_total, order.shipping_tax) == (
        D("0.00"),
        D("10.00"),
        D("0.00"),
    )
    assert (order.tax_total, order.grand_total) == (D("1.35"), D("29.35"))
    assert order.shipping_label == "Flat Rate"
    assert (order.payment_method, order.payment_method_label) == ("bacs", "Direct Bank Transfer")
    assert order.cancelled_at is None and order.discount_codes == ()
    assert order.transactions is not None
    (paid,) = order.transactions
    assert (paid.external_id, paid.kind, paid.amount, paid.currency) == (
        "727:paid",
        TransactionKind.CAPTURE,
        D("29.35"),
        "USD",
    )
    assert paid.occurred_at == at("2017-03-22T19:28:08")


@pytest.mark.parametrize(
    "name",
    [
        "woocommerce-order.json",
        "fr-order-relay-coupon-refund.json",
        "fr-order-company-bundle.json",
        "fr-order-cancelled-colissimo-relay.json",
        "fr-order-variation-virtual.json",
        "fr-order-refund-no-date-paid.json",
        "fr-order-composite.json",
    ],
)
def test_totals_add_up_as_the_shop_counts_them(name: str) -> None:
    order = offline().parse_order(fixture_bytes(name))

    assert_adds_up(order)


# --- French orders --------------------------------------------------------------------------


def test_a_relay_point_order_with_a_coupon_and_a_refund() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-relay-coupon-refund.json"))

    assert order.placed_at == at("2024-06-14T07:12:44")  # 09:12:44 in Paris, summer time
    assert order.updated_at == at("2024-06-17T14:03:10")
    assert order.billing.first_name == "Élodie" and order.billing.line1 == "12 rue des Écoles"
    assert order.customer.external_id == "58"
    assert order.shipping is not None
    assert order.shipping.relay_point_id == "020517"  # _wms_mondial_relay_pickup_info
    assert order.shipping.company == "Tabac Presse du Marché"
    assert order.shipping.phone == "+33 6 12 34 56 78"
    assert order.shipping_label == "Mondial Relay - Point Relais®"

    tea, teapot = order.lines
    assert (tea.tax_rate, tea.quantity, tea.unit_price) == (D("5.5"), 3, D("8.90"))
    assert (tea.discount_amount, tea.total_net, tea.tax_amount, tea.total_gross) == (
        D("2.67"),
        D("22.78"),
        D("1.25"),
        D("24.03"),
    )
    assert tea.options == ""  # only hidden meta (_reduced_stock)
    assert (teapot.tax_rate, teapot.unit_price, teapot.discount_amount) == (
        D("20"),
        D("49.00"),
        D("4.90"),
    )
    assert teapot.options == "Couleur: Noir"
    assert teapot.sku == "TETSUBIN-08-NOIR"

    assert order.discount_codes == ("bienvenue10",)
    # The coupon's discount + discount_tax: 6.61 + 0.96.
    assert order.discounts == (ShopDiscount("bienvenue10", D("7.57"), "bienvenue10"),)
    assert (order.subtotal, order.discount_total) == (D("75.70"), D("7.57"))
    assert (order.shipping_total, order.shipping_tax) == (D("4.90"), D("0.82"))
    assert (order.tax_total, order.grand_total) == (D("9.42"), D("73.03"))
    assert order.prices_include_tax is True
    assert (order.payment_method, order.payment_method_label) == (
        "stripe",
        "Carte bancaire (Stripe)",
    )
    assert order.transactions is not None
    paid, refund = order.transactions
    assert (paid.external_id, paid.amount, paid.reference, paid.method) == (
        "4127:paid",
        D("73.03"),
        "pi_3PqR2sLkdIwHu7ix0Zt8YbCd",
        "stripe",
    )
    assert paid.occurred_at == at("2024-06-14T07:13:02")
    assert (refund.external_id, refund.kind, refund.amount, refund.currency) == (
        "refund:4131",
        TransactionKind.REFUND,
        D("5.00"),
        "EUR",
    )


def test_a_company_order_with_a_bundle_and_gift_wrap() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-company-bundle.json"))

    assert order.status == "on-hold" and order.status_label == "On hold"
    assert order.billing.company == "Atelier Dupré SARL"
    assert order.billing.vat_id == "FR02812744308"  # _billing_vat_number
    assert order.customer.company == "Atelier Dupré SARL"
    assert order.shipping is not None
    assert order.shipping.line2 == "Bâtiment B, quai n° 2"
    assert order.shipping.phone == "05 56 00 11 23" and order.shipping.relay_point_id == ""
    assert order.buyer_note == "Livraison en matinée s'il vous plaît, le portail ferme à 13 h."

    box, assam, rooibos, tin, wrap = order.lines
    assert (box.external_id, box.quantity, box.unit_price, box.tax_rate) == (
        "5601",
        2,
        D("39.00"),
        D("5.5"),
    )
    assert box.parent_external_id is None
    assert [assam.parent_external_id, rooibos.parent_external_id] == ["5601", "5601"]
    assert (assam.unit_price, assam.tax_rate, assam.sku) == (D("0.00"), D("5.5"), "THE-ASSAM-50")
    assert tin.options == "Texte à graver: Atelier Dupré & fils"
    assert (wrap.kind, wrap.name, wrap.quantity) == (LineKind.GIFT_WRAP, "Emballage cadeau", 1)
    assert not wrap.needs_shipping  # a charge, not goods
    # The shipping line's "Items" lists the bundle, its contents and the tin: all shipped.
    assert all(line.needs_shipping for line in (box, assam, rooibos, tin))
    assert (assam.quantity, rooibos.quantity, box.total_gross) == (2, 2, D("78.00"))
    assert (wrap.unit_price, wrap.total_net, wrap.tax_amount, wrap.tax_rate) == (
        D("3.00"),
        D("2.50"),
        D("0.50"),
        D("20"),
    )
    assert (order.subtotal, order.shipping_total, order.grand_total) == (
        D("99.00"),
        D("8.40"),
        D("107.40"),
    )
    assert order.shipping_label == "Colissimo avec signature"
    assert (order.payment_method, order.payment_method_label) == ("bacs", "Virement bancaire")
    assert order.transactions == ()  # bank transfer not received yet: no date_paid


def test_a_cancelled_order_for_a_colissimo_pickup_point() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-cancelled-colissimo-relay.json"))

    # 00:20 on New Year's Day in Paris is still 2024 in UTC.
    assert order.placed_at == at("2024-12-31T23:20:11")
    assert order.status == "cancelled"
    assert order.cancelled_at == order.updated_at == at("2025-01-03T08:05:47")
    assert order.billing.last_name == "Le Bihan-Piérard"
    assert order.shipping is not None and order.shipping.relay_point_id == "293040"
    assert order.shipping_label == "Colissimo Point Retrait"
    assert order.discount_codes == ("livraisonofferte",)
    # A free-shipping coupon takes nothing off the goods: kept with its 0.00.
    assert order.discounts == (ShopDiscount("livraisonofferte", D("0.00"), "livraisonofferte"),)
    (mug,) = order.lines
    assert mug.name == "Mug en grès émaillé « Thé & Sérénité »"
    assert (mug.ean, mug.unit_price) == ("3760123450017", D("24.90"))
    assert order.transactions == ()


def test_variation_labels_and_lines_that_need_no_shipping() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-variation-virtual.json"))

    plaid, ebook, gift_card = order.lines
    # display_key / display_value: the attribute's label and the term's name, not slugs.
    assert plaid.options == "Couleur: Bleu marine, Taille: 130 × 170 cm"
    assert (plaid.quantity, plaid.unit_price, plaid.tax_rate) == (1, D("78.90"), D("20"))
    # The shipping line's package lists the plaid only: the e-book and the gift card are
    # virtual or downloadable.
    assert [line.needs_shipping for line in order.lines] == [True, False, False]
    assert (ebook.unit_price, ebook.tax_rate, ebook.tax_amount) == (D("9.90"), D("5.5"), D("0.52"))
    assert gift_card.options == "Destinataire: lucie.perrin@example.fr, Message: Bon anniversaire !"
    assert (gift_card.tax_rate, gift_card.total_gross) == (D("0"), D("30.00"))
    assert order.grand_total == D("124.70")
    assert_adds_up(order)


def test_an_order_from_the_checkout_without_shipping_lines_ships_nothing() -> None:
    payload = fixture("fr-order-variation-virtual.json")
    payload["line_items"] = payload["line_items"][1:]  # the e-book and the gift card
    payload["shipping_lines"] = []
    payload["shipping_total"] = payload["shipping_tax"] = "0.00"

    order = offline().parse_order(json.dumps(payload).encode())

    assert [line.needs_shipping for line in order.lines] == [False, False]


def test_an_order_made_in_the_admin_says_nothing_about_shipping() -> None:
    payload = fixture("fr-order-variation-virtual.json")
    payload["created_via"] = "admin"
    payload["shipping_lines"][0]["meta_data"] = []

    order = offline().parse_order(json.dumps(payload).encode())

    assert all(line.needs_shipping for line in order.lines)


def test_a_package_list_naming_none_of_the_lines_tells_nothing() -> None:
    payload = fixture("fr-order-variation-virtual.json")
    payload["shipping_lines"][0]["meta_data"][0]["value"] = "Colis 30 × 20, Palette × 1"

    order = offline().parse_order(json.dumps(payload).encode())

    assert all(line.needs_shipping for line in order.lines)


def test_slugs_are_made_readable_without_display_values() -> None:
    payload = fixture("fr-order-variation-virtual.json")
    for entry in payload["line_items"][0]["meta_data"]:
        entry.pop("display_key"), entry.pop("display_value")

    order = offline().parse_order(json.dumps(payload).encode())

    assert order.lines[0].options == "Couleur: bleu marine, Taille: 130 x 170 cm"


def test_a_paid_then_refunded_order_without_date_paid_shows_both() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-refund-no-date-paid.json"))

    assert (order.status, order.grand_total) == ("completed", D("39.00"))
    assert order.prices_include_tax is False
    sachets, teapot = order.lines
    # `price` 3.225 kept at the shop's precision: 3.225 × 2 = 6.45, the line's net.
    assert (sachets.quantity, sachets.unit_price, sachets.total_net) == (2, D("3.225"), D("6.45"))
    assert (sachets.tax_amount, sachets.total_gross) == (D("0.35"), D("6.80"))
    assert (teapot.unit_price, teapot.total_gross) == (D("21.83"), D("26.20"))
    assert_adds_up(order)
    # date_paid is null, yet the order is completed and partly refunded: it was paid, at
    # its completion, and the refund is money handed back, not the only movement.
    assert order.transactions is not None
    paid, refund = order.transactions
    assert (paid.kind, paid.amount, paid.method) == (TransactionKind.CAPTURE, D("39.00"), "cheque")
    assert paid.occurred_at == at("2024-07-09T16:20:05")
    assert (refund.kind, refund.amount) == (TransactionKind.REFUND, D("19.00"))
    net = sum(
        t.amount if t.kind == TransactionKind.CAPTURE else -t.amount for t in order.transactions
    )
    assert net == D("20.00")


@pytest.mark.parametrize(
    ("changes", "paid"),
    [
        ({"status": "on-hold", "date_completed_gmt": None}, True),  # refunds say it was paid
        ({"status": "on-hold", "date_completed_gmt": None, "refunds": []}, False),
        ({"status": "processing", "date_completed_gmt": None, "refunds": []}, True),
        ({"status": "pending", "refunds": [], "transaction_id": "ch_3PqZ"}, True),
        ({"status": "cancelled", "refunds": []}, False),
    ],
)
def test_payment_without_date_paid(changes: dict[str, Any], paid: bool) -> None:
    payload = fixture("fr-order-refund-no-date-paid.json")
    payload.update(changes)

    order = offline().parse_order(json.dumps(payload).encode())

    assert order.transactions is not None
    captures = [t for t in order.transactions if t.kind == TransactionKind.CAPTURE]
    assert [t.amount for t in captures] == ([D("39.00")] if paid else [])
    if paid and payload["date_completed_gmt"] is None:
        assert captures[0].occurred_at == at("2024-07-05T14:02:10")  # the order's own date


def test_a_composite_product_carries_the_money_of_its_components() -> None:
    order = offline().parse_order(fixture_bytes("fr-order-composite.json"))

    box, tea, cups = order.lines
    assert [tea.parent_external_id, cups.parent_external_id] == ["6301", "6301"]
    assert box.parent_external_id is None
    # The box (25.00) and the tea priced individually (12.00): 37.00 on the box line.
    assert (box.quantity, box.unit_price, box.total_gross) == (1, D("37.00"), D("37.00"))
    assert (box.total_net, box.tax_amount) == (D("32.20"), D("4.80"))
    assert box.tax_rate == D("14.91")  # 20 % and 5.5 %: 4.80 / 32.20
    assert [(line.sku, line.quantity, line.total_gross) for line in (tea, cups)] == [
        ("PAI-MU-TAN-50", 1, D("0")),
        ("TASSE-PORC-BL", 2, D("0")),
    ]
    assert cups.options == "Couleur: Blanc, Composant: Tasse"
    assert all(line.needs_shipping for line in order.lines)
    assert order.transactions == ()  # bank transfer awaited
    assert_adds_up(order)


def test_bundle_children_found_by_their_cart_key_meta() -> None:
    payload = fixture("fr-order-company-bundle.json")
    for item in payload["line_items"]:
        item.pop("bundled_by"), item.pop("bundled_items")

    order = offline().parse_order(json.dumps(payload).encode())

    assert [line.parent_external_id for line in order.lines] == [None, "5601", "5601", None, None]


def test_a_cart_key_no_line_has_is_refused() -> None:
    payload = fixture("fr-order-company-bundle.json")
    payload["line_items"][1].pop("bundled_by")
    payload["line_items"][1]["meta_data"][0]["value"] = "ffffffffffff"

    with pytest.raises(BadPayload, match="_bundled_by"):
        offline().parse_order(json.dumps(payload).encode())


def test_extra_relay_point_and_vat_keys_come_from_the_shop_settings() -> None:
    payload = fixture("fr-order-relay-coupon-refund.json")
    payload["meta_data"] += [
        {"id": 1, "key": "_my_relay", "value": "PR-778"},
        {"id": 2, "key": "siret_tva", "value": "fr 75 512345679"},
    ]
    connector = WooCommerceConnector(
        ShopSettings(
            base_url="https://shop.example",
            extra={"relay_point_meta_keys": "_my_relay", "vat_meta_keys": "siret_tva"},
        )
    )

    order = connector.parse_order(json.dumps(payload).encode())

    assert order.shipping is not None and order.shipping.relay_point_id == "PR-778"
    assert order.billing.vat_id == "FR75512345679"


def test_ids_beyond_two_to_the_53_survive() -> None:
    payload = fixture_bytes("woocommerce-order.json").replace(
        b'"id": 727', b'"id": 9007199254740993'
    )

    assert offline().parse_order(payload).external_id == "9007199254740993"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"date_modified_gmt": None}, "date_modified_gmt"),
        ({"date_created_gmt": "22/03/2017"}, "date_created_gmt"),
        ({"total": "29,35"}, "total"),
        ({"currency": 978}, "currency"),
        ({"billing": "John Doe"}, "billing"),
        ({"line_items": [{"id": 1, "quantity": 0}]}, "line_items[0].quantity"),
        ({"line_items": [{"id": 1, "quantity": 1.5}]}, "line_items[0].quantity"),
        ({"id": "72a"}, "id"),
        ({"refunds": [{"id": 3, "total": []}]}, "refunds[0].total"),
        ({"payment_method_title": ["Virement"]}, "payment_method_title: expected text"),
    ],
)
def test_a_payload_it_cannot_understand_names_the_field(change: dict[str, Any], field: str) -> None:
    payload = fixture("woocommerce-order.json") | change

    with pytest.raises(BadPayload, match=field.replace("[", r"\[").replace("]", r"\]")):
        offline().parse_order(json.dumps(payload).encode())


def test_text_of_the_wrong_type_is_refused_naming_the_type_received() -> None:
    payload = fixture("woocommerce-order.json") | {"customer_note": {"fr": "Merci"}}

    with pytest.raises(BadPayload) as refused:
        offline().parse_order(json.dumps(payload).encode())

    assert str(refused.value) == "customer_note: expected text, got dict"


def test_an_order_id_that_is_not_woocommerces_is_not_found_at_the_shop() -> None:
    with pytest.raises(NotFoundAtShop) as refused:
        offline().push_comment("C-1042", "Bonjour", customer_visible=True)

    assert str(refused.value) == "'C-1042' is not a WooCommerce order id"


def test_webhooks_are_not_registered_without_a_secret_to_sign_them() -> None:
    with pytest.raises(PermanentError) as refused:
        offline().register_webhooks("https://comptoir.example/hooks/woocommerce/wooc-abc")

    assert str(refused.value) == (
        "no webhook secret: WooCommerce would sign with one Comptoir does not know"
    )


def test_a_bundle_child_whose_parent_is_missing_is_refused() -> None:
    payload = fixture("fr-order-company-bundle.json")
    del payload["line_items"][0]

    with pytest.raises(BadPayload, match="bundle parent 5601"):
        offline().parse_order(json.dumps(payload).encode())


# --- Webhooks --------------------------------------------------------------------------------


def test_the_published_signature_vector_verifies() -> None:
    offline("").verify_webhook(VECTOR_BODY, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE})


@pytest.mark.parametrize(
    ("secret", "body", "headers"),
    [
        ("", b"secret ", {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}),
        ("other", VECTOR_BODY, {"X-WC-Webhook-Signature": VECTOR_SIGNATURE}),
        ("", VECTOR_BODY, {}),
        ("", VECTOR_BODY, {"X-WC-Webhook-Signature": ""}),
        ("", VECTOR_BODY, {"X-WC-Webhook-Signature": "GBDo00G55h6IiV+6CxqivQ=="}),
    ],
    ids=["tampered body", "wrong secret", "missing header", "empty header", "wrong signature"],
)
def test_anything_but_the_right_signature_is_refused(
    secret: str, body: bytes, headers: dict[str, str]
) -> None:
    with pytest.raises(InvalidSignature):
        offline(secret).verify_webhook(body, headers)


def test_a_delivery_from_the_shop_verifies_and_parses_like_the_api_answer(
    woo: WooCommerceEmulator,
) -> None:
    order_id = woo.add_order(fixture("fr-order-relay-coupon-refund.json"))
    connector = connect(woo)
    body, headers = woo.webhook("order.updated", order_id)

    # Header names arrive in any case.
    connector.verify_webhook(body, {name.lower(): value for name, value in headers.items()})
    delivery = connector.describe_webhook(body, headers)

    assert b"\\/" in body and b"\\u00c9" in body  # PHP's json_encode escaping
    assert (delivery.topic, delivery.external_order_id, delivery.is_ping) == (
        "order.updated",
        "4127",
        False,
    )
    assert delivery.dedupe_key == "4127:2024-06-17T14:03:10"
    assert connector.parse_order(body) == connector.fetch_order(order_id)


def test_two_deliveries_of_one_state_share_a_dedupe_key_and_a_change_gets_a_new_one(
    woo: WooCommerceEmulator,
) -> None:
    order_id = woo.add_order(fixture("fr-order-company-bundle.json"))
    connector = connect(woo)
    created = connector.describe_webhook(*woo.webhook("order.created", order_id))
    updated = connector.describe_webhook(*woo.webhook("order.updated", order_id))
    woo.update_order(order_id, status="processing")
    changed = connector.describe_webhook(*woo.webhook("order.updated", order_id))

    assert created.dedupe_key == updated.dedupe_key
    assert changed.dedupe_key != updated.dedupe_key
    assert changed.dedupe_key.startswith("4133:")


def test_a_deleted_order_delivery_carries_only_its_id(woo: WooCommerceEmulator) -> None:
    order_id = woo.add_order(fixture("fr-order-company-bundle.json"))
    connector = connect(woo)
    body, headers = woo.webhook("order.deleted", order_id)

    connector.verify_webhook(body, headers)
    delivery = connector.describe_webhook(body, headers)

    assert body == b'{"id":4133}'
    assert (delivery.topic, delivery.external_order_id) == ("order.deleted", "4133")
    assert delivery.dedupe_key.startswith("4133:deleted:")


def test_the_ping_is_recognised_without_a_signature(woo: WooCommerceEmulator) -> None:
    body, headers = woo.ping(42)

    assert WooCommerceConnector.is_ping(body, headers)
    delivery = offline("s3cret").describe_webhook(body, headers)
    assert delivery.is_ping and delivery.external_order_id is None
    assert delivery.dedupe_key == "ping:42" and delivery.topic == "ping"


def test_a_body_with_webhook_headers_is_never_a_ping() -> None:
    assert not WooCommerceConnector.is_ping(b"webhook_id=1", {"X-WC-Webhook-Topic": "x"})
    assert not WooCommerceConnector.is_ping(b'{"id": 1}', {})
    assert not WooCommerceConnector.is_ping(b"webhook_id=1&x=2", {})


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"id": 1}', {}),
        (b"not json", {"X-WC-Webhook-Topic": "order.updated"}),
        (b'{"id": 1}', {"X-WC-Webhook-Topic": "order.updated"}),
        (b"[1]", {"X-WC-Webhook-Topic": "order.created"}),
    ],
    ids=["no topic", "not JSON", "no date_modified_gmt", "not an object"],
)
def test_a_delivery_it_cannot_describe_is_a_bad_payload(
    body: bytes, headers: dict[str, str]
) -> None:
    with pytest.raises(BadPayload):
        offline().describe_webhook(body, headers)


def test_webhooks_are_registered_once_and_revived_when_disabled(woo: WooCommerceEmulator) -> None:
    connector = connect(woo)
    url = "https://comptoir.example/hooks/woocommerce/wooc-abc"

    created = connector.register_webhooks(url)
    again = connector.register_webhooks(url)
    hook = next(h for h in woo.webhooks.values() if h["topic"] == "order.updated")
    hook["status"] = "disabled"
    revived = connector.register_webhooks(url)

    assert len(created) == 4 and again == [] and revived == []
    assert sorted(h["topic"] for h in woo.webhooks.values()) == sorted(
        WooCommerceConnector.webhook_topics
    )
    assert {h["secret"] for h in woo.webhooks.values()} == {woo.webhook_secret}
    assert hook["status"] == "active"
    assert len(woo.requests_to("POST", "/webhooks")) == 4
    assert len(woo.requests_to("PUT", "/webhooks/")) == 1


# --- Reading orders from the shop ------------------------------------------------------------


def test_list_orders_pages_through_every_change_once_in_order(woo: WooCommerceEmulator) -> None:
    template = fixture("woocommerce-order.json")
    start = at("2024-05-01T08:00:00")
    # Ids run against modification order, so sorting by id would be caught.
    for n in range(250):
        woo.add_order(order_at(template, 20_000 - n, start + dt.timedelta(minutes=n)))
    connector = connect(woo)

    seen: list[str] = []
    pages = 0
    page: str | None = None
    while True:
        batch = connector.list_orders(start, page)
        pages += 1
        seen += [order.external_id for order in batch.orders]
        if batch.next_page is None:
            break
        page = batch.next_page

    assert pages == 3
    assert seen == [str(20_000 - n) for n in range(250)]
    request = woo.requests_to("GET", "/orders")[0]
    assert request.arg("per_page") == "100" and request.arg("orderby") == "modified"
    assert request.arg("dates_are_gmt") == "true" and request.arg("order") == "asc"
    assert request.arg("status") == "any"


def test_list_orders_returns_changes_at_or_after_the_time_only(woo: WooCommerceEmulator) -> None:
    template = fixture("woocommerce-order.json")
    since = at("2024-05-01T08:00:00")
    woo.add_order(order_at(template, 1, since - dt.timedelta(seconds=1)))
    woo.add_order(order_at(template, 2, since))
    woo.add_order(order_at(template, 3, since + dt.timedelta(hours=1)))
    connector = connect(woo)

    first = connector.list_orders(since)
    woo.clock = since + dt.timedelta(hours=2)
    woo.update_order(1, status="completed")
    later = connector.list_orders(since + dt.timedelta(minutes=30))

    assert [o.external_id for o in first.orders] == ["2", "3"] and first.next_page is None
    assert [o.external_id for o in later.orders] == ["3", "1"]
    assert later.orders[1].status == "completed"
    assert later.orders[1].updated_at == since + dt.timedelta(hours=2)
    assert woo.orders["1"]["date_modified"] == "2024-05-01T12:00:00"  # Paris, summer time


def test_list_orders_on_an_empty_shop(woo: WooCommerceEmulator) -> None:
    batch = connect(woo).list_orders(at("2024-01-01T00:00:00"))

    assert batch.orders == () and batch.next_page is None


def test_fetch_order_and_its_transactions(woo: WooCommerceEmulator) -> None:
    order_id = woo.add_order(fixture("fr-order-relay-coupon-refund.json"))
    connector = connect(woo)

    order = connector.fetch_order(order_id)
    transactions = connector.fetch_transactions(order_id)

    assert order == offline().parse_order(fixture_bytes("fr-order-relay-coupon-refund.json"))
    assert [t.external_id for t in transactions] == ["4127:paid", "refund:4131"]
    assert transactions == order.transactions
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("999999")
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("../system_status")


def test_catalog_lists(woo: WooCommerceEmulator) -> None:
    woo.custom_statuses["shipped"] = "Expédiée"
    connector = connect(woo)

    statuses = connector.list_statuses()
    carriers = connector.list_carriers()
    methods = connector.list_payment_methods()

    assert ShopChoice("on-hold", "On hold") in statuses
    assert ShopChoice("shipped", "Expédiée") in statuses
    assert ShopChoice("lpc_relay", "Colissimo Point Retrait") in carriers
    assert ShopChoice("flat_rate", "Flat rate") in carriers
    assert [m.code for m in methods] == ["bacs", "cheque", "cod", "stripe"]
    assert ShopChoice("cheque", "Chèque") in methods


def test_statuses_fall_back_to_the_core_set_without_the_report(woo: WooCommerceEmulator) -> None:
    woo.fail_next(404, path_contains="/reports/")

    statuses = connect(woo).list_statuses()

    assert [s.code for s in statuses] == [
        "pending",
        "processing",
        "on-hold",
        "completed",
        "cancelled",
        "refunded",
        "failed",
    ]


def test_test_connection_describes_the_shop(woo: WooCommerceEmulator) -> None:
    assert connect(woo).test_connection() == f"WooCommerce 9.3.3 at {woo.base_url}"


def test_credentials_can_travel_in_the_query_string(woo: WooCommerceEmulator) -> None:
    connector = connect(woo, extra={"auth": "query"})

    connector.test_connection()

    request = woo.requests[-1]
    assert request.arg("consumer_key") == woo.consumer_key
    assert "authorization" not in request.headers


# --- Failures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides",
    [{"api_secret": "cs_wrong"}, {"api_key": "ck_wrong"}],
    ids=["wrong secret", "wrong key"],
)
def test_wrong_credentials_are_an_auth_failure(
    woo: WooCommerceEmulator, overrides: dict[str, str]
) -> None:
    connector = connect(woo, **overrides)

    with pytest.raises(AuthFailed, match="woocommerce_rest_authentication_error"):
        connector.list_orders(at("2024-01-01T00:00:00"))
    with pytest.raises(AuthFailed):
        connector.test_connection()
    with pytest.raises(AuthFailed):
        connector.list_statuses()


def test_too_many_requests_is_rate_limited_with_the_delay(woo: WooCommerceEmulator) -> None:
    woo.fail_next(429, retry_after="7")

    with pytest.raises(RateLimited) as caught:
        connect(woo).list_orders(at("2024-01-01T00:00:00"))

    assert caught.value.retry_after == 7


def test_a_server_error_is_platform_unavailable(woo: WooCommerceEmulator) -> None:
    woo.fail_next(503)

    with pytest.raises(PlatformUnavailable):
        connect(woo).fetch_order("727")


def test_a_slow_shop_times_out_as_platform_unavailable(woo: WooCommerceEmulator) -> None:
    woo.add_order(fixture("woocommerce-order.json"))
    woo.slow_next(1.5)
    connector = connect(woo, timeout=0.5)

    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.fetch_order("727")
    connector.close()
    woo.wait_landed()


# --- Robustness ------------------------------------------------------------------------------

ODD_VALUES: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        True,
        "",
        [],
        {},
        "-0",
        "0.005",
        "1e999",
        "1E+40",
        "NaN",
        10**40,
        -(10**40),
        "2024-13-01T00:00:00",
        "0001-01-01T00:00:00+05:00",
        "9999-12-31T23:59:59-05:00",
    ]
)
JSON_VALUES = ODD_VALUES | st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
VALID_PAYLOADS = [
    fixture("woocommerce-order.json"),
    fixture("fr-order-relay-coupon-refund.json"),
    fixture("fr-order-company-bundle.json"),
    fixture("fr-order-cancelled-colissimo-relay.json"),
    fixture("fr-order-variation-virtual.json"),
    fixture("fr-order-refund-no-date-paid.json"),
    fixture("fr-order-composite.json"),
]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, (*prefix, index))
    return paths


@st.composite
def mutated_payloads(draw: st.DrawFn) -> bytes:
    payload = copy.deepcopy(draw(st.sampled_from(VALID_PAYLOADS)))
    # Paths are picked by a seeded Random: Hypothesis's own choices lean to the first ones.
    chooser = random.Random(draw(st.integers(min_value=0, max_value=2**32)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        path = chooser.choice(_paths(payload))
        parent: Any = payload
        for step in path[:-1]:
            parent = parent[step]
        if isinstance(parent, dict) and draw(st.integers(0, 4)) == 0:
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(JSON_VALUES)
    return json.dumps(payload).encode()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_only_ever_raise_bad_payload(body: bytes) -> None:
    try:
        offline().parse_order(body)
    except BadPayload:
        pass


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_payloads())
def test_mutated_orders_parse_or_raise_bad_payload(body: bytes) -> None:
    try:
        order = offline().parse_order(body)
    except BadPayload:
        return
    assert order.external_id and order.updated_at.tzinfo is not None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["order.updated", "order.deleted", "x.y"]))
def test_describe_webhook_only_ever_raises_bad_payload(body: bytes, topic: str) -> None:
    try:
        offline().describe_webhook(body, {"X-WC-Webhook-Topic": topic})
    except BadPayload:
        pass
