"""The Magento connector against published payloads, French fixtures and a loopback store."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.magento import MagentoEmulator
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    InvalidSignature,
    NotFoundAtShop,
    PlatformUnavailable,
    RateLimited,
    ShopChoice,
    ShopDiscount,
    ShopOrder,
    ShopSettings,
)
from web.connectors.magento import MagentoConnector
from web.connectors.registry import connector_class
from web.models.enums import LineKind, TransactionKind, TransactionStatus
from web.services.reconcile import shop_order_mismatch, shop_order_total

FIXTURES = Path(__file__).parents[1] / "fixtures" / "magento"
PUBLISHED = Path("/work/shared/reference/payloads")
UTC = dt.UTC


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def order_json(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fixture(name))
    return data


OFFLINE = MagentoConnector(ShopSettings(base_url="https://shop.example"))


def offline() -> MagentoConnector:
    return OFFLINE


def d(value: str) -> Decimal:
    return Decimal(value)


def assert_adds_up(order: ShopOrder) -> None:
    """The shop's figures, the lines and the reconciliation all agree (prices with tax)."""
    top = [line for line in order.lines if line.parent_external_id is None]
    components = [line for line in order.lines if line.parent_external_id is not None]
    assert order.subtotal - order.discount_total + order.shipping_total == order.grand_total
    assert sum(line.unit_price * line.quantity for line in top) == order.subtotal
    lines_paid = sum(line.total_gross for line in top)
    assert lines_paid == order.subtotal - sum(line.discount_amount for line in top)
    for line in top:
        assert line.unit_price * line.quantity - line.discount_amount == line.total_gross
        assert line.total_net + line.tax_amount == line.total_gross
    for line in components:
        assert (line.unit_price, line.total_gross, line.tax_amount) == (0, 0, 0)
    assert shop_order_mismatch(order) is None
    assert shop_order_total(order) == order.grand_total


def ordered_quantity(order: ShopOrder) -> int:
    """What the buyer ordered, counted as Magento's total_qty_ordered counts it."""
    return sum(line.quantity for line in order.lines if line.parent_external_id is None)


@pytest.fixture(scope="module")
def running_shop() -> Iterator[MagentoEmulator]:
    shop = MagentoEmulator(store_codes=("default", "fr"))
    shop.start()
    yield shop
    shop.stop()


@pytest.fixture()
def emulator(running_shop: MagentoEmulator) -> MagentoEmulator:
    running_shop.reset()
    return running_shop


def connect(shop: MagentoEmulator, *, timeout: float = 5.0, **extra: str) -> MagentoConnector:
    return MagentoConnector(
        ShopSettings(base_url=shop.base_url, api_key=shop.token, timeout=timeout, extra=extra)
    )


def stamp(minutes: int) -> str:
    return (dt.datetime(2025, 3, 10, 8, 0, tzinfo=UTC) + dt.timedelta(minutes=minutes)).strftime(
        "%Y-%m-%d %H:%M:%S"
    )


def small_order(entity_id: int, updated_at: str, **fields: Any) -> dict[str, Any]:
    """A French order trimmed of what these tests do not read, in Magento's shape."""
    data = order_json("fr-order-company-bundle.json")
    data.update(
        entity_id=entity_id,
        increment_id=f"{entity_id:09d}",
        created_at=updated_at,
        updated_at=updated_at,
        **fields,
    )
    return data


# --- Published payloads -------------------------------------------------------------------


def test_fixtures_are_the_published_bytes() -> None:
    # ../shared sits beside every checkout and CI run: its absence is a failure, not a skip.
    assert PUBLISHED.is_dir(), f"{PUBLISHED} is missing"
    for name in ("magento-order.json", "magento-ship-request.json", "magento-invoice-request.json"):
        assert fixture(name) == (PUBLISHED / name).read_bytes(), name


def test_registry_knows_the_connector() -> None:
    assert connector_class("magento") is MagentoConnector
    assert MagentoConnector.platform == "magento"
    assert MagentoConnector.api_version == "V1"
    assert MagentoConnector.has_webhooks is True  # through Comptoir's module
    assert MagentoConnector.webhook_topics == ()


def test_published_order_parses_exactly() -> None:
    order = offline().parse_order(fixture("magento-order.json"))

    assert order.external_id == "3"
    assert order.number == "000000003"
    assert order.placed_at == dt.datetime(2017, 8, 21, 22, 22, 19, tzinfo=UTC)
    assert order.updated_at == dt.datetime(2017, 8, 21, 22, 22, 20, tzinfo=UTC)
    assert order.currency == "USD"
    assert (order.status, order.status_label) == ("pending", "Pending")
    assert order.cancelled_at is None
    assert order.grand_total == d("165.00")
    assert order.subtotal == d("160.00")
    assert order.discount_total == d("0.00")
    assert order.shipping_total == d("5.00")
    assert order.shipping_tax == d("0.00")
    assert order.tax_total == d("0.00")
    assert order.email == "jdoe@example.com"
    assert order.customer.external_id == "3"
    assert (order.customer.first_name, order.customer.last_name) == ("Jane", "Doe")
    assert order.shipping_label == "Best Way - Table Rate"
    assert order.payment_method == "banktransfer"
    assert order.payment_method_label == "Bank Transfer Payment"
    assert order.discount_codes == ()
    assert order.transactions == ()
    expected_address = {
        "first_name": "Jane",
        "last_name": "Doe",
        "line1": "123 Oak Ave",
        "postcode": "10577",
        "city": "Purchase",
        "region": "NY",
        "country_code": "US",
        "phone": "512-555-1111",
        "email": "jdoe@example.com",
    }
    assert order.billing.as_dict() == expected_address
    assert order.shipping is not None
    assert order.shipping.as_dict() == expected_address

    lines = {line.external_id: line for line in order.lines}
    # Nine items, four things ordered: the configurable's child (11) is folded into its
    # parent, the bundle's four children follow it as components.
    assert list(lines) == ["3", "4", "5", "6", "7", "8", "9", "10"]
    assert (
        ordered_quantity(order)
        == 4
        == json.loads(fixture("magento-order.json"))["total_qty_ordered"]
    )
    tee = lines["3"]
    assert (tee.name, tee.sku, tee.quantity, tee.unit_price) == (
        "Radiant Tee-M-Orange",
        "WS12-M-Orange",
        1,
        d("22.00"),
    )
    assert (tee.total_gross, tee.tax_amount, tee.kind) == (d("22.00"), d("0.00"), LineKind.PRODUCT)
    assert tee.needs_shipping is True
    # The downloadable video ships nothing.
    video = lines["4"]
    assert (video.name, video.unit_price, video.needs_shipping) == (
        "Advanced Pilates & Yoga (Strength)",
        d("18.00"),
        False,
    )
    # The bundle carries the price the buyer saw (68 = 27 + 5 + 17 + 19); its children
    # are components to pick, with their quantities and no money.
    kit = lines["5"]
    assert kit.name == "Sprite Yoga Companion Kit"
    assert (kit.quantity, kit.unit_price, kit.total_gross, kit.parent_external_id) == (
        1,
        d("68.00"),
        d("68.00"),
        None,
    )
    assert kit.needs_shipping is True
    children = {key: lines[key] for key in ("6", "7", "8", "9")}
    assert {key: line.parent_external_id for key, line in children.items()} == dict.fromkeys(
        children, "5"
    )
    assert [(line.sku, line.quantity) for line in children.values()] == [
        ("24-WG082-blue", 1),
        ("24-WG084", 1),
        ("24-WG086", 1),
        ("24-WG088", 1),
    ]
    assert all(line.unit_price == 0 and line.total_gross == 0 for line in children.values())
    # The configurable: one line with the parent's price, the chosen variant's SKU and
    # its options (from the child's name: the answer carries no option labels).
    hoodie = lines["10"]
    assert (hoodie.quantity, hoodie.unit_price, hoodie.sku, hoodie.options) == (
        1,
        d("52.00"),
        "MH01-S-Gray",
        "S-Gray",
    )
    assert all(line.ean == "" for line in order.lines)
    assert_adds_up(order)


# --- French fixtures ----------------------------------------------------------------------


def test_relay_point_order_with_coupon_and_two_vat_rates() -> None:
    order = offline().parse_order(fixture("fr-order-relay-coupon.json"))

    assert (order.external_id, order.number, order.currency) == ("1042", "000001042", "EUR")
    assert order.placed_at == dt.datetime(2025, 3, 4, 13, 27, 45, tzinfo=UTC)
    assert order.updated_at == dt.datetime(2025, 3, 4, 14, 2, 11, tzinfo=UTC)
    assert (order.status, order.status_label) == ("processing", "Processing")
    assert order.subtotal == d("88.79")
    assert order.discount_total == d("8.88")
    assert order.shipping_total == d("4.90")
    assert order.shipping_tax == d("0.82")
    assert order.tax_total == d("12.18")
    assert order.grand_total == d("84.81")
    assert order.prices_include_tax is True
    assert order.discount_codes == ("BIENVENUE10",)
    assert order.buyer_note.startswith("Merci de déposer le colis au relais")
    assert order.shipping_label == "Mondial Relay - Livraison en Point Relais"
    assert (order.payment_method, order.payment_method_label) == (
        "banktransfer",
        "Virement bancaire",
    )
    assert order.customer.external_id is None  # a guest
    assert (order.customer.first_name, order.customer.last_name) == ("Éloïse", "Dupré-Lefèvre")
    assert order.billing.line1 == "8 rue des Capucins"
    assert order.billing.line2 == "Bâtiment B, 3e étage"
    assert order.shipping is not None
    assert order.shipping.company == "Relais Tabac de la Gare"
    assert order.shipping.line1 == "12 avenue Jean Jaurès"
    assert (order.shipping.postcode, order.shipping.country_code) == ("69007", "FR")
    assert order.shipping.relay_point_id == "069123"

    assert order.discounts == (ShopDiscount(code="BIENVENUE10", amount=d("8.88")),)
    assert (
        ordered_quantity(order)
        == 3
        == order_json("fr-order-relay-coupon.json")["total_qty_ordered"]
    )
    book, apron = order.lines
    assert (book.name, book.sku, book.tax_rate) == (
        "Le Petit Prince — édition illustrée",
        "LIV-PPRINCE-ILL",
        d("5.5"),
    )
    assert (book.unit_price, book.discount_amount, book.total_gross) == (
        d("18.99"),
        d("1.90"),
        d("17.09"),
    )
    assert (book.tax_amount, book.total_net) == (d("0.89"), d("16.20"))
    assert (apron.quantity, apron.unit_price, apron.tax_rate) == (2, d("34.90"), d("20"))
    assert (apron.discount_amount, apron.tax_amount, apron.total_gross) == (
        d("6.98"),
        d("10.47"),
        d("62.82"),
    )
    assert apron.options == "Moutarde-M"
    assert (apron.sku, apron.needs_shipping) == ("TAB-LIN-MOUT-M", True)
    assert order.transactions is not None
    (paid,) = order.transactions
    assert (paid.external_id, paid.kind, paid.amount, paid.currency) == (
        "1042:paid",
        TransactionKind.CAPTURE,
        d("84.81"),
        "EUR",
    )
    assert (paid.status, paid.method) == (TransactionStatus.SUCCESS, "banktransfer")
    assert_adds_up(order)


def test_company_order_with_vat_number_and_bundle() -> None:
    order = offline().parse_order(fixture("fr-order-company-bundle.json"))

    assert (order.status, order.status_label) == ("pending", "Pending")
    assert order.customer.external_id == "58"
    assert order.customer.company == "Ateliers Réunis SARL"
    assert order.billing.vat_id == "FR44732829320"
    assert order.billing.company == "Ateliers Réunis SARL"
    assert order.shipping is not None and order.shipping.vat_id == "FR44732829320"
    assert order.shipping_label == "Colissimo - Domicile avec signature"
    assert (order.payment_method, order.payment_method_label) == (
        "purchaseorder",
        "Bon de commande",
    )
    assert (order.subtotal, order.shipping_total, order.grand_total) == (
        d("53.70"),
        d("7.90"),
        d("61.60"),
    )
    assert (order.tax_total, order.shipping_tax, order.discount_total) == (
        d("8.33"),
        d("1.32"),
        d("0.00"),
    )
    assert order.transactions == ()
    box, tea, mug, soap = order.lines
    # The bundle row repeats its children's sum (17.00 + 16.00): it carries the money,
    # with the tax of both rates (0.89 + 2.67) and their blended rate; each component
    # keeps its own rate for the invoice and its quantity for picking.
    assert (box.name, box.quantity, box.unit_price, box.parent_external_id) == (
        "Coffret Dégustation Provence",
        1,
        d("33.00"),
        None,
    )
    assert (box.total_net, box.tax_amount, box.total_gross) == (d("29.44"), d("3.56"), d("33.00"))
    assert box.tax_rate == d("12.09")
    assert (tea.parent_external_id, tea.quantity, tea.unit_price, tea.tax_rate) == (
        "1301",
        2,
        d("0"),
        d("5.5"),
    )
    assert (tea.tax_amount, tea.total_gross) == (d("0"), d("0"))
    assert (mug.parent_external_id, mug.quantity, mug.tax_rate) == ("1301", 1, d("20"))
    assert (soap.quantity, soap.unit_price, soap.total_gross, soap.parent_external_id) == (
        3,
        d("6.90"),
        d("20.70"),
        None,
    )
    assert (
        ordered_quantity(order)
        == 4
        == order_json("fr-order-company-bundle.json")["total_qty_ordered"]
    )
    line_tax = sum(line.tax_amount for line in order.lines)
    assert line_tax + order.shipping_tax == order.tax_total
    assert_adds_up(order)


def test_cancelled_order_with_accented_name() -> None:
    order = offline().parse_order(fixture("fr-order-cancelled.json"))

    assert (order.status, order.status_label) == ("canceled", "Canceled")
    assert order.cancelled_at == dt.datetime(2025, 3, 12, 9, 41, 7, tzinfo=UTC)
    assert (
        order.cancel_reason == "Commande annulée à la demande de la cliente (chèque jamais reçu)."
    )
    assert (order.customer.first_name, order.customer.last_name) == ("Françoise", "Lefèvre-Hénaut")
    assert order.lines[0].name == "Bougie parfumée « Figue & Cèdre »"
    assert (order.payment_method, order.payment_method_label) == ("checkmo", "Chèque")
    assert order.shipping_label == "Livraison offerte - Gratuite"
    assert (order.grand_total, order.shipping_total, order.tax_total) == (
        d("29.00"),
        d("0.00"),
        d("4.83"),
    )
    assert_adds_up(order)


def test_other_order_shapes() -> None:
    connector = offline()
    data = order_json("fr-order-cancelled.json")
    wrapped = connector.parse_order(json.dumps({"order": data}).encode())
    assert wrapped.external_id == "1044"
    search = {"items": [data], "search_criteria": {}, "total_count": 1}
    assert connector.parse_order(json.dumps(search).encode()).external_id == "1044"
    search["items"] = [data, data]
    with pytest.raises(BadPayload, match="2 orders"):
        connector.parse_order(json.dumps(search).encode())


def test_derived_figures_and_edge_cases() -> None:
    connector = offline()
    data = order_json("fr-order-cancelled.json")
    data.update(state="holded", status="attente_cheque", customer_taxvat="FR44732829320")
    data["extension_attributes"]["pickup_location_code"] = "lyon-part-dieu"
    data["extension_attributes"].update(
        gw_price_incl_tax="6.00", gw_tax_amount="1.00", gw_price="5.00"
    )
    data["grand_total"] = 35
    order = connector.parse_order(json.dumps(data).encode())
    assert (order.status, order.status_label, order.cancelled_at) == (
        "attente_cheque",
        "Attente Cheque",
        None,
    )
    assert order.billing.vat_id == "FR44732829320"
    assert order.shipping is not None and order.shipping.relay_point_id == "lyon-part-dieu"
    wrap = order.lines[-1]
    assert (wrap.external_id, wrap.kind, wrap.unit_price, wrap.tax_rate) == (
        "1044:gw",
        LineKind.GIFT_WRAP,
        d("6.00"),
        d("20"),
    )
    assert order.subtotal == d("35.00")
    assert_adds_up(order)

    data["items"][0]["qty_ordered"] = Decimal("1.5")
    with pytest.raises(BadPayload, match=r"items\[0\]\.qty_ordered"):
        connector.parse_order(json.dumps(data, default=str).encode())


def test_a_wholesale_quantity_is_read_as_ordered() -> None:
    data = order_json("fr-order-cancelled.json")
    data["items"][0]["qty_ordered"] = 240  # a café ordering for the season

    (line,) = offline().parse_order(json.dumps(data).encode()).lines

    assert line.quantity == 240


def test_a_shipping_amount_that_is_not_an_amount_is_refused_naming_the_field() -> None:
    data = order_json("fr-order-cancelled.json")
    data.pop("shipping_incl_tax", None)  # without it, the amount before tax is read
    data["shipping_amount"] = "offert"

    with pytest.raises(BadPayload, match=r"^shipping_amount: "):
        offline().parse_order(json.dumps(data).encode())


def test_discount_before_tax_is_restated_tax_included() -> None:
    """A shop discounting prices without tax: the line and order discounts come out with tax."""
    data = order_json("fr-order-cancelled.json")
    item = data["items"][0]
    # 29.00 with 20 % tax (24.17 + 4.83); 10 % off the price without tax: 2.42, tax after it.
    item.update(discount_amount=2.42, tax_amount=4.35, discount_tax_compensation_amount=0)
    data.update(discount_amount=-2.42, tax_amount=4.35, grand_total=26.10)
    order = offline().parse_order(json.dumps(data).encode())
    (line,) = order.lines
    assert (line.total_gross, line.discount_amount, line.tax_amount) == (
        d("26.10"),
        d("2.90"),
        d("4.35"),
    )
    assert order.discount_total == d("2.90")
    assert_adds_up(order)


def test_dynamic_bundle_at_zero_takes_its_childrens_money() -> None:
    """A bundle row Magento leaves at 0.00: the bundle carries its children's sum."""
    data = order_json("fr-order-company-bundle.json")
    box = data["items"][0]
    for key in ("price", "price_incl_tax", "original_price", "row_total", "row_total_incl_tax"):
        box[key] = 0
    box["tax_amount"] = 0
    order = offline().parse_order(json.dumps(data).encode())
    box_line, tea, mug, soap = order.lines
    assert (box_line.quantity, box_line.unit_price, box_line.total_gross) == (
        1,
        d("33.00"),
        d("33.00"),
    )
    assert (box_line.total_net, box_line.tax_amount) == (d("29.44"), d("3.56"))
    assert [(c.sku, c.quantity, c.total_gross) for c in (tea, mug)] == [
        ("THE-VERT-LAV-100", 2, d("0")),
        ("MUG-GRES-BLEU", 1, d("0")),
    ]
    assert soap.total_gross == d("20.70")
    assert_adds_up(order)


def test_fixed_price_bundle_keeps_its_price_on_the_parent() -> None:
    data = order_json("fr-order-company-bundle.json")
    for child in data["items"][1:3]:
        for key in ("price", "price_incl_tax", "original_price", "row_total"):
            child[key] = 0
        child.update(row_total_incl_tax=0, tax_amount=0)
    data["items"][0]["tax_percent"] = 20
    order = offline().parse_order(json.dumps(data).encode())
    box_line, tea, mug, _soap = order.lines
    assert (box_line.unit_price, box_line.tax_rate, box_line.total_gross) == (
        d("33.00"),
        d("20"),
        d("33.00"),
    )
    assert (tea.quantity, tea.parent_external_id, mug.quantity) == (2, "1301", 1)
    assert shop_order_mismatch(order) is None


def test_virtual_downloadable_and_gift_card_items_need_no_shipping() -> None:
    data = order_json("fr-order-company-bundle.json")
    soap = data["items"][3]
    for product_type, is_virtual, expected in (
        ("virtual", 0, False),
        ("downloadable", 1, False),
        ("giftcard", 0, False),
        ("simple", 1, False),
        ("simple", 0, True),
    ):
        soap.update(product_type=product_type, is_virtual=is_virtual)
        line = offline().parse_order(json.dumps(data).encode()).lines[-1]
        assert line.needs_shipping is expected, product_type
    # A bundle made only of virtual parts ships nothing either.
    for child in data["items"][1:3]:
        child["product_type"] = "virtual"
    box, tea, mug, _ = offline().parse_order(json.dumps(data).encode()).lines
    assert (box.needs_shipping, tea.needs_shipping, mug.needs_shipping) == (False, False, False)


def test_option_labels_come_from_product_options() -> None:
    data = order_json("fr-order-relay-coupon.json")
    data["items"][1]["product_options"] = {
        "info_buyRequest": {"qty": 2},
        "attributes_info": [
            {"label": "Couleur", "value": "Moutarde", "option_id": 93, "option_value": 52},
            {"label": "Taille", "value": "M", "option_id": 144, "option_value": 167},
        ],
    }
    order = offline().parse_order(json.dumps(data).encode())
    assert order.lines[1].options == "Couleur: Moutarde, Taille: M"
    # Some answers keep the column as its serialized JSON text.
    data["items"][1]["product_options"] = json.dumps(
        {"options": [{"label": "Gravure", "value": "Léa"}]}
    )
    order = offline().parse_order(json.dumps(data).encode())
    assert order.lines[1].options == "Gravure: Léa"
    # The variant's SKU is what the warehouse picks, when the parent row says otherwise.
    data["items"][1]["sku"] = "TAB-LIN"
    assert offline().parse_order(json.dumps(data).encode()).lines[1].sku == "TAB-LIN-MOUT-M"


def test_prices_without_tax_stay_in_their_basis() -> None:
    """A B2B catalogue without tax: unit prices and line discounts without tax."""
    data = order_json("fr-order-cancelled.json")
    item = data["items"][0]
    # 24.17 without tax, 10 % off (2.42), tax after the discount.
    item.update(
        original_price=24.17,
        discount_amount=2.42,
        tax_amount=4.35,
        discount_tax_compensation_amount=0,
    )
    data.update(
        discount_amount=-2.42,
        tax_amount=4.35,
        grand_total=26.10,
        coupon_code="PRO10",
        discount_description="Remise professionnels",
    )
    order = offline().parse_order(json.dumps(data).encode())
    assert order.prices_include_tax is False
    (line,) = order.lines
    assert (line.unit_price, line.discount_amount, line.total_net) == (
        d("24.17"),
        d("2.42"),
        d("21.75"),
    )
    assert (line.tax_amount, line.total_gross) == (d("4.35"), d("26.10"))
    assert order.discounts == (
        ShopDiscount(code="PRO10", amount=d("2.90"), label="Remise professionnels"),
    )
    assert shop_order_total(order) == d("26.10")
    assert shop_order_mismatch(order) is None


def test_a_self_contradicting_order_is_flagged_with_both_figures() -> None:
    data = order_json("fr-order-company-bundle.json")
    data["grand_total"] = 61.61  # a cent more than lines + shipping
    order = offline().parse_order(json.dumps(data).encode())
    mismatch = shop_order_mismatch(order)
    assert mismatch is not None
    assert (mismatch.computed, mismatch.stated, mismatch.currency) == (
        d("61.60"),
        d("61.61"),
        "EUR",
    )
    # With a coupon too: the discount comes from the lines, so the cent is not absorbed.
    data = order_json("fr-order-relay-coupon.json")
    data["grand_total"] = 84.82
    order = offline().parse_order(json.dumps(data).encode())
    assert order.discount_total == d("8.88")
    mismatch = shop_order_mismatch(order)
    assert mismatch is not None
    assert (mismatch.computed, mismatch.stated) == (d("84.81"), d("84.82"))


def test_an_order_body_is_no_notification() -> None:
    # Comptoir's module signs its notifications (tests/connectors/test_notifications.py).
    connector = offline()
    with pytest.raises(InvalidSignature):
        connector.verify_webhook(fixture("magento-order.json"), {})
    with pytest.raises(BadPayload, match="version"):
        connector.describe_webhook(fixture("magento-order.json"), {})


# --- Against the emulator -----------------------------------------------------------------


def test_list_orders_pages_in_change_order(emulator: MagentoEmulator) -> None:
    # Ids out of time order, and two pairs sharing a second, to exercise the tie-breaker.
    times = {11: 5, 12: 1, 13: 3, 14: 3, 15: 9, 16: 7, 17: 7, 18: 2}
    for entity_id, minutes in times.items():
        emulator.add_order(small_order(entity_id, stamp(minutes)))
    emulator.add_order(small_order(10, stamp(-30)))  # changed before the window
    connector = connect(emulator, page_size="3")

    seen: list[str] = []
    page: str | None = None
    pages = 0
    while True:
        batch = connector.list_orders(dt.datetime(2025, 3, 10, 8, 0, tzinfo=UTC), page)
        pages += 1
        seen += [order.external_id for order in batch.orders]
        assert len(batch.orders) <= 3
        page = batch.next_page
        if page is None:
            break
    assert pages == 3
    assert seen == ["12", "18", "13", "14", "11", "16", "17", "15"]
    requests = emulator.requests_to("GET", "/V1/orders")
    assert len(requests) == 3
    first = requests[0]
    assert first.arg("searchCriteria[filter_groups][0][filters][0][field]") == "updated_at"
    assert first.arg("searchCriteria[filter_groups][0][filters][0][value]") == "2025-03-10 08:00:00"
    assert first.arg("searchCriteria[filter_groups][0][filters][0][condition_type]") == "gteq"
    assert first.arg("searchCriteria[sortOrders][0][field]") == "updated_at"
    assert first.arg("searchCriteria[sortOrders][0][direction]") == "ASC"
    assert first.arg("searchCriteria[pageSize]") == "3"
    assert first.headers["authorization"] == f"Bearer {emulator.token}"


def test_an_order_changed_while_paging_skips_no_other(emulator: MagentoEmulator) -> None:
    for entity_id in range(21, 27):
        emulator.add_order(small_order(entity_id, stamp(entity_id)))
    connector = connect(emulator, page_size="2")
    since = dt.datetime(2025, 3, 10, tzinfo=UTC)

    first = connector.list_orders(since)
    assert [o.external_id for o in first.orders] == ["21", "22"]
    emulator.update_order(21, status="processing")  # moves behind everything
    seen = []
    page = first.next_page
    while page:
        batch = connector.list_orders(since, page)
        seen += [o.external_id for o in batch.orders]
        page = batch.next_page
    assert seen == ["23", "24", "25", "26", "21"]


def test_changed_since_filters_on_updated_at(emulator: MagentoEmulator) -> None:
    for entity_id, minutes in {31: 0, 32: 10, 33: 20}.items():
        emulator.add_order(small_order(entity_id, stamp(minutes)))
    connector = connect(emulator)
    # Inclusive, and a fraction of a second is floored away rather than skipping the order.
    since = dt.datetime(2025, 3, 10, 9, 10, 0, 400_000, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    batch = connector.list_orders(since)
    assert [o.external_id for o in batch.orders] == ["32", "33"]
    assert batch.next_page is None
    assert connector.list_orders(dt.datetime(2025, 3, 11, tzinfo=UTC)).orders == ()

    emulator.update_order(31, status="processing")
    batch = connector.list_orders(dt.datetime(2025, 3, 10, 8, 30, tzinfo=UTC))
    assert [o.external_id for o in batch.orders] == ["31"]
    assert batch.orders[0].status == "processing"
    assert batch.orders[0].updated_at > dt.datetime(2025, 3, 10, 8, 30, tzinfo=UTC)


def test_the_emulator_repeats_the_last_page_past_the_end(emulator: MagentoEmulator) -> None:
    for entity_id in range(41, 46):
        emulator.add_order(small_order(entity_id, stamp(entity_id)))
    base = f"{emulator.base_url}/rest/V1/orders"
    headers = {"Authorization": f"Bearer {emulator.token}"}

    def ids(page: int) -> tuple[list[int], int]:
        params = {
            "searchCriteria[sortOrders][0][field]": "entity_id",
            "searchCriteria[pageSize]": "2",
            "searchCriteria[currentPage]": str(page),
        }
        answer = httpx.get(base, params=params, headers=headers).json()
        return [item["entity_id"] for item in answer["items"]], answer["total_count"]

    assert ids(3) == ([45], 5)
    assert ids(9) == ([45], 5)
    missing = httpx.get(base, headers=headers)
    assert missing.status_code == 400
    assert missing.json()["parameters"] == {"fieldName": "searchCriteria"}


def test_fetch_order_and_missing_order(emulator: MagentoEmulator) -> None:
    emulator.add_order(order_json("magento-order.json"))
    connector = connect(emulator)
    order = connector.fetch_order("3")
    assert (order.number, order.grand_total, len(order.lines)) == ("000000003", d("165.00"), 8)
    assert emulator.requests_to("GET", "/rest/V1/orders/3")
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("404")
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("../store")


def test_fetch_transactions_follows_paid_and_refunded(emulator: MagentoEmulator) -> None:
    emulator.add_order(order_json("fr-order-relay-coupon.json"))
    connector = connect(emulator)
    (paid,) = connector.fetch_transactions("1042")
    assert (paid.external_id, paid.amount) == ("1042:paid", d("84.81"))

    payment = dict(emulator.orders[1042]["payment"], last_trans_id="VIR-20250304-0042")
    emulator.update_order(1042, total_refunded=20.5, payment=payment)
    paid, refund = connector.fetch_transactions("1042")
    assert (paid.reference, refund.reference) == ("VIR-20250304-0042", "VIR-20250304-0042")
    assert (refund.external_id, refund.kind, refund.amount, refund.currency) == (
        "1042:refunded",
        TransactionKind.REFUND,
        d("20.50"),
        "EUR",
    )
    assert refund.occurred_at == connector.fetch_order("1042").updated_at


def test_catalogues_merge_defaults_with_recent_orders(emulator: MagentoEmulator) -> None:
    emulator.add_order(order_json("fr-order-relay-coupon.json"))
    emulator.add_order(order_json("fr-order-company-bundle.json"))
    emulator.add_order(order_json("fr-order-cancelled.json"))
    emulator.add_order(small_order(1050, stamp(0), status="attente_virement"))
    connector = connect(emulator)

    statuses = connector.list_statuses()
    assert statuses[:9] == [
        ShopChoice("pending", "Pending"),
        ShopChoice("pending_payment", "Pending Payment"),
        ShopChoice("processing", "Processing"),
        ShopChoice("fraud", "Suspected Fraud"),
        ShopChoice("payment_review", "Payment Review"),
        ShopChoice("holded", "On Hold"),
        ShopChoice("complete", "Complete"),
        ShopChoice("closed", "Closed"),
        ShopChoice("canceled", "Canceled"),
    ]
    assert statuses[9:] == [ShopChoice("attente_virement", "Attente Virement")]

    carriers = connector.list_carriers()
    codes = [choice.code for choice in carriers]
    assert codes[:3] == [
        "Colissimo - Domicile avec signature",
        "Mondial Relay - Livraison en Point Relais",
        "Livraison offerte - Gratuite",
    ]
    assert (
        ShopChoice(
            "Mondial Relay - Livraison en Point Relais",
            "Mondial Relay - Livraison en Point Relais (mondialrelay_24R)",
        )
        in carriers
    )
    assert codes[3:] == ["Flat Rate - Fixed", "Best Way - Table Rate", "Free Shipping - Free"]

    methods = {choice.code: choice.label for choice in connector.list_payment_methods()}
    assert methods == {
        "banktransfer": "Virement bancaire",
        "purchaseorder": "Bon de commande",
        "checkmo": "Chèque",
        "cashondelivery": "Cash On Delivery",
        "free": "No Payment Information Required",
    }
    catalogue_calls = emulator.requests_to("GET", "/V1/orders")
    assert len(catalogue_calls) == 3
    assert catalogue_calls[2].arg("fields") == (
        "items[payment[method,additional_information]],total_count"
    )
    assert catalogue_calls[0].arg("searchCriteria[sortOrders][0][direction]") == "DESC"


def test_catalogues_of_an_empty_shop_are_the_defaults(emulator: MagentoEmulator) -> None:
    connector = connect(emulator)
    assert len(connector.list_statuses()) == 9
    assert [c.code for c in connector.list_carriers()] == [
        "Flat Rate - Fixed",
        "Best Way - Table Rate",
        "Free Shipping - Free",
    ]
    assert [c.code for c in connector.list_payment_methods()] == [
        "checkmo",
        "banktransfer",
        "cashondelivery",
        "purchaseorder",
        "free",
    ]


def test_store_code_and_test_connection(emulator: MagentoEmulator) -> None:
    connector = connect(emulator, store_code="fr")
    description = connector.test_connection()
    assert description.startswith("Magento store view fr (")
    assert "EUR" in description and "Europe/Paris" in description
    assert emulator.requests[-1].path == "/rest/fr/V1/store/storeConfigs"
    assert connect(emulator).test_connection().startswith("Magento store view default")


def test_wrong_credentials_are_auth_failed(emulator: MagentoEmulator) -> None:
    connector = MagentoConnector(ShopSettings(base_url=emulator.base_url, api_key="wrong"))
    with pytest.raises(AuthFailed, match="HTTP 401"):
        connector.test_connection()
    with pytest.raises(AuthFailed):
        connector.list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC))


def test_rate_limit_and_outages_are_typed(emulator: MagentoEmulator) -> None:
    connector = connect(emulator)
    emulator.fail_next(429, retry_after="7")
    with pytest.raises(RateLimited) as limited:
        connector.list_statuses()
    assert limited.value.retry_after == 7
    emulator.fail_next(503)
    with pytest.raises(PlatformUnavailable):
        connector.fetch_order("3")
    assert connector.test_connection()


def test_a_slow_shop_times_out(emulator: MagentoEmulator) -> None:
    connector = connect(emulator, timeout=0.5)
    emulator.slow_next(1.5)
    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.test_connection()
    connector.close()
    emulator.wait_landed()


def test_a_forged_page_token_is_refused(emulator: MagentoEmulator) -> None:
    with pytest.raises(BadPayload, match="page"):
        connect(emulator).list_orders(dt.datetime(2025, 1, 1, tzinfo=UTC), "2")


def test_the_emulator_records_writes(emulator: MagentoEmulator) -> None:
    emulator.add_order(order_json("fr-order-company-bundle.json"))
    headers = {"Authorization": f"Bearer {emulator.token}"}
    base = f"{emulator.base_url}/rest/default/V1"
    ship = json.loads(fixture("magento-ship-request.json"))
    ship["items"] = [{"order_item_id": 1304, "qty": 3}]
    shipment = httpx.post(f"{base}/order/1043/ship", json=ship, headers=headers)
    assert shipment.status_code == 200 and isinstance(shipment.json(), int)
    comment = {
        "statusHistory": {
            "comment": "Colis remis à Colissimo.",
            "is_customer_notified": 1,
            "is_visible_on_front": 1,
            "parent_id": 1043,
            "status": "processing",
        }
    }
    assert httpx.post(f"{base}/orders/1043/comments", json=comment, headers=headers).json()
    other = httpx.put(f"{base}/products/SKU-1", json={"product": {}}, headers=headers)
    assert other.status_code == 200
    assert [write.path for write in emulator.writes()] == [
        "/rest/default/V1/order/1043/ship",
        "/rest/default/V1/orders/1043/comments",
        "/rest/default/V1/products/SKU-1",
    ]
    order = connect(emulator).fetch_order("1043")
    assert order.status == "processing"
    assert emulator.orders[1043]["items"][3]["qty_shipped"] == 3


# --- Nothing but BadPayload ---------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=24),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)
SAMPLES = [
    json.loads(fixture(name))
    for name in (
        "magento-order.json",
        "fr-order-relay-coupon.json",
        "fr-order-company-bundle.json",
        "fr-order-cancelled.json",
    )
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*prefix, index))


PATHS = [list(_paths(sample))[1:] for sample in SAMPLES]


def _parse_or_bad_payload(payload: bytes) -> None:
    try:
        order = offline().parse_order(payload)
    except BadPayload:
        return
    assert isinstance(order, ShopOrder)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_arbitrary_bytes_raise_only_bad_payload(payload: bytes) -> None:
    _parse_or_bad_payload(payload)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_orders_raise_only_bad_payload(data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(SAMPLES) - 1))
    sample = copy.deepcopy(SAMPLES[index])
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(PATHS[index]))
        parent = sample
        try:
            for step in path[:-1]:
                parent = parent[step]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent[path[-1]] = data.draw(JSON_VALUES)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed or replaced this path
    _parse_or_bad_payload(json.dumps(sample).encode())


# --- What the answers say, read exactly ---------------------------------------------------


def test_a_dynamic_bundle_at_zero_takes_its_childrens_tax_compensation() -> None:
    """Discounts on prices with tax: the tax compensation Magento keeps on the children is
    part of what the buyer paid for the bundle."""
    data = order_json("fr-order-company-bundle.json")
    box = data["items"][0]
    for key in ("price", "price_incl_tax", "original_price", "row_total", "row_total_incl_tax"):
        box[key] = 0
    box["tax_amount"] = 0
    data["items"][1].update(discount_amount=2.40, discount_tax_compensation_amount=0.40)
    box_line = offline().parse_order(json.dumps(data).encode()).lines[0]
    # 33.00 of children, 2.40 off with tax, 0.40 of it the tax compensation: 31.00 paid.
    assert (box_line.total_gross, box_line.total_net) == (d("31.00"), d("27.44"))


def test_a_quantity_that_is_not_a_number_is_refused_naming_the_field() -> None:
    data = order_json("fr-order-cancelled.json")
    data["items"][0]["qty_ordered"] = "deux"
    with pytest.raises(BadPayload, match=r"^items\[0\]\.qty_ordered: 'deux' "):
        offline().parse_order(json.dumps(data).encode())


def test_a_relay_flag_is_not_taken_for_a_relay_point() -> None:
    """`is_relay_point: 1` says the address is a relay point, not which one."""
    data = order_json("fr-order-cancelled.json")
    data["extension_attributes"]["is_relay_point"] = 1
    data["extension_attributes"]["has_pickup_location"] = "1"
    order = offline().parse_order(json.dumps(data).encode())
    assert order.shipping is not None and order.shipping.relay_point_id == ""
    data["extension_attributes"]["relay_point_id"] = "MR-69003-12"
    order = offline().parse_order(json.dumps(data).encode())
    assert order.shipping is not None and order.shipping.relay_point_id == "MR-69003-12"


def test_a_connection_to_a_shop_without_store_views_says_so(emulator: MagentoEmulator) -> None:
    kept = emulator.store_codes
    emulator.store_codes = ()
    try:
        with pytest.raises(BadPayload) as refused:
            connect(emulator).test_connection()
    finally:
        emulator.store_codes = kept
    assert str(refused.value) == "storeConfigs: the answer lists no store view"


def test_a_configurable_ships_as_its_own_row_says_not_as_its_variant() -> None:
    """A bundle ships when one of its parts does; a configurable is one thing, its row says."""
    data = order_json("fr-order-relay-coupon.json")
    parent, variant = data["items"][1], data["items"][2]
    variant.update(product_type="virtual", is_virtual=1)
    line = offline().parse_order(json.dumps(data).encode()).lines[1]
    assert (line.sku, line.needs_shipping) == ("TAB-LIN-MOUT-M", True)
    parent["is_virtual"] = 1
    variant.update(product_type="simple", is_virtual=0)
    line = offline().parse_order(json.dumps(data).encode()).lines[1]
    assert line.needs_shipping is False
