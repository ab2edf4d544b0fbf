"""The PrestaShop connector against published payloads, French orders and a loopback shop."""

from __future__ import annotations

import copy
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator, order_record
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    InvalidSignature,
    NotFoundAtShop,
    PermanentError,
    PlatformUnavailable,
    RateLimited,
    ShopAddress,
    ShopCustomer,
    ShopDiscount,
    ShopOrder,
    ShopSettings,
)
from web.connectors.codec import decode_order, encode_order
from web.connectors.prestashop import REQUIRED_RESOURCES, PrestaShopConnector, dedupe_key
from web.models.enums import LineKind, TransactionKind, TransactionStatus
from web.services.reconcile import shop_order_mismatch

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prestashop"
UTC = dt.UTC
D = Decimal
ORDER_FIXTURES = (
    "prestashop-order.xml",
    "fr-order-101.xml",
    "fr-order-102.xml",
    "fr-order-103.xml",
)
# The related objects a shop would answer for those orders (display=full lists).
SHOP_FIXTURES = (
    "prestashop-address.xml",
    "prestashop-order-detail.xml",
    "fr-customers.xml",
    "fr-addresses.xml",
    "fr-order_details.xml",
    "fr-order_payments.xml",
    "fr-order_slip.xml",
    "fr-order_cart_rules.xml",
    "fr-cart_rules.xml",
    "fr-messages.xml",
    "fr-order_histories.xml",
)


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def when(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture(scope="module")
def running_shop() -> Iterator[PrestaShopEmulator]:
    emulator = PrestaShopEmulator()
    emulator.start()
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture()
def shop(running_shop: PrestaShopEmulator) -> PrestaShopEmulator:
    """The module's loopback shop, back to its install data for each test."""
    running_shop.reset()
    return running_shop


@pytest.fixture()
def stocked(shop: PrestaShopEmulator) -> PrestaShopEmulator:
    """The shop holding the published order and the three French ones with their objects."""
    for name in SHOP_FIXTURES:
        shop.load(raw(name))
    for name in ORDER_FIXTURES:
        shop.add_order(raw(name))
    shop.requests.clear()
    return shop


def connect(shop: PrestaShopEmulator, **overrides: object) -> PrestaShopConnector:
    options: dict[str, object] = {"base_url": shop.base_url, "api_key": DEFAULT_KEY}
    options.update(overrides)
    return PrestaShopConnector(ShopSettings(**options))  # type: ignore[arg-type]


@pytest.fixture()
def connector(stocked: PrestaShopEmulator) -> Iterator[PrestaShopConnector]:
    client = connect(stocked)
    yield client
    client.close()


def parse(connector: PrestaShopConnector, name: str) -> ShopOrder:
    return connector.parse_order(raw(name))


# --- published payload ----------------------------------------------------------------------


def test_published_order_parses_to_exact_values(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    order = parse(connector, "prestashop-order.xml")

    assert order.external_id == "5"
    assert order.number == "KHWLILZLL"
    # Shop-local "2019-01-30 01:02:12" in Europe/Paris (winter, +01:00).
    assert order.placed_at == when(2019, 1, 30, 0, 2, 12)
    assert order.updated_at == when(2019, 1, 30, 0, 2, 13)
    assert order.currency == "EUR"
    assert (order.status, order.status_label) == ("10", "Awaiting bank wire payment")
    assert (order.payment_method, order.payment_method_label) == ("bankwire", "Bank wire")
    assert order.shipping_label == "My carrier"
    assert order.customer == ShopCustomer(
        external_id="1",
        email="pub@prestashop.com",
        first_name="John",
        last_name="DOE",
        phone="0102030405",
        company="My Company",
    )
    expected_address = ShopAddress(
        first_name="John",
        last_name="DOE",
        company="My Company",
        line1="16, Main street",
        line2="2nd floor",
        postcode="33133",
        city="Miami",
        region="Florida",
        country_code="US",
        phone="0102030405",
    )
    assert order.shipping == expected_address
    assert order.billing == ShopAddress(
        **{**expected_address.__dict__, "email": "pub@prestashop.com"}
    )
    assert order.email == "pub@prestashop.com"
    assert (order.grand_total, order.subtotal, order.discount_total) == (D("71.51"), D("69.51"), 0)
    assert (order.shipping_total, order.shipping_tax, order.tax_total) == (D("2.00"), 0, 0)
    assert order.transactions is None and order.cancelled_at is None
    assert order.discount_codes == () and order.buyer_note == ""

    lines = {line.external_id: line for line in order.lines}
    assert list(lines) == ["13", "14", "15"]
    first = lines["13"]
    assert (first.name, first.options) == (
        "Faded Short Sleeve T-shirts",
        "Color : Orange, Size : S",
    )
    assert (first.sku, first.ean, first.quantity) == ("demo_1", "", 1)
    assert (first.unit_price, first.total_net, first.total_gross) == (D("16.51"),) * 3
    assert (first.tax_rate, first.tax_amount, first.kind) == (0, 0, LineKind.PRODUCT)
    # Rows 14 and 15 have no published order_detail: the order row is enough.
    assert (lines["14"].name, lines["14"].unit_price, lines["14"].total_gross) == (
        "Blouse",
        D("27.00"),
        D("27.00"),
    )
    assert (lines["15"].sku, lines["15"].options) == ("demo_3", "Color : Orange, Size : S")
    assert sum(line.total_gross for line in order.lines) == order.subtotal


def test_lookups_are_batched_and_never_read_password_hashes(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    parse(connector, "prestashop-order.xml")
    paths = [request.path for request in stocked.requests]
    assert len(paths) == len(set(paths)) <= 12  # one request per resource
    customers = stocked.requests_to("GET", "/api/customers")[0]
    assert customers.arg("filter[id]") == "[1]"
    assert "passwd" not in (customers.arg("display") or "") and customers.arg("display") != "full"
    details = stocked.requests_to("GET", "/api/order_details")[0]
    assert (details.arg("filter[id_order]"), details.arg("display")) == ("[5]", "full")
    assert all(r.headers["authorization"].startswith("Basic ") for r in stocked.requests)


# --- French orders --------------------------------------------------------------------------


def test_company_order_with_vat_number_discount_code_and_note(
    connector: PrestaShopConnector,
) -> None:
    order = parse(connector, "fr-order-101.xml")

    assert (order.external_id, order.number) == ("101", "XKBKNABJK")
    assert order.placed_at == when(2024, 7, 15, 12, 32, 10)  # 14:32:10 CEST
    assert (order.status, order.status_label) == ("10", "Awaiting bank wire payment")
    assert (order.payment_method, order.payment_method_label) == (
        "ps_wirepayment",
        "Virement bancaire",
    )
    assert order.shipping_label == "Colissimo"
    assert order.customer.company == "Atelier Dupont SARL"
    assert order.billing.vat_id == "FR44732829320"
    assert order.billing.company == "Atelier Dupont SARL"
    assert (order.billing.line1, order.billing.postcode, order.billing.city) == (
        "12 rue de la République",
        "69002",
        "Lyon",
    )
    assert (order.billing.country_code, order.billing.phone) == ("FR", "04 78 12 34 56")
    assert order.discount_codes == ("BIENVENUE10",)
    assert order.buyer_note.startswith("Merci de livrer avant 17 h")
    assert (order.subtotal, order.discount_total, order.shipping_total) == (
        D("120.00"),
        D("12.00"),
        D("6.90"),
    )
    assert (order.shipping_tax, order.tax_total, order.grand_total) == (
        D("1.15"),
        D("15.03"),
        D("114.90"),
    )

    sketchbook, apron, book = order.lines
    assert (sketchbook.quantity, sketchbook.unit_price, sketchbook.tax_rate) == (3, D("15"), 20)
    assert (sketchbook.total_net, sketchbook.tax_amount, sketchbook.total_gross) == (
        D("37.50"),
        D("7.50"),
        D("45.00"),
    )
    assert (sketchbook.sku, sketchbook.ean) == ("CARN-A5-REC", "3760123450010")
    assert (apron.name, apron.options) == (
        "Tablier de cuisine en lin",
        "Couleur : Bleu nuit, Taille : Unique",
    )
    assert (apron.total_net, apron.tax_amount) == (D("29.17"), D("5.83"))
    assert (book.tax_rate, book.total_net, book.tax_amount) == (D("5.5"), D("37.91"), D("2.09"))
    assert book.ean == "9782212678901"


def test_relay_point_order_with_accents_gift_wrap_and_ambiguous_time(
    connector: PrestaShopConnector,
) -> None:
    order = parse(connector, "fr-order-102.xml")

    # "2024-10-27 02:15:00" happens twice in Paris that night: fold=0 takes CEST (+02:00).
    assert order.placed_at == when(2024, 10, 27, 0, 15)
    assert order.updated_at == when(2024, 10, 27, 0, 40)
    assert (order.status, order.status_label) == ("2", "Payment accepted")
    assert order.customer.first_name == "Hélène"
    assert order.customer.last_name == "Lefèvre-Château"
    assert order.shipping_label == "Mondial Relay"
    assert order.shipping is not None
    assert order.shipping.relay_point_id == "FR-066974"
    assert (order.shipping.company, order.shipping.line1, order.shipping.postcode) == (
        "Tabac Presse du Marché",
        "3 place du Marché",
        "44100",
    )
    assert order.billing.relay_point_id == ""
    assert (order.billing.line1, order.billing.phone) == ("8 allée des Tilleuls", "06 12 34 56 78")
    assert order.buyer_note == "Gift message: Joyeux anniversaire Maman ! Je t'embrasse, Léa"

    tea, teapot, wrap = order.lines
    assert (tea.tax_rate, tea.quantity, tea.unit_price) == (D("5.5"), 2, D("7.90"))
    assert (tea.total_net, tea.tax_amount, tea.total_gross) == (D("14.98"), D("0.82"), D("15.80"))
    assert (teapot.name, teapot.options) == (
        "Théière en fonte",
        "Couleur : Noir, Contenance : 0,8 L",
    )
    assert (wrap.kind, wrap.external_id, wrap.unit_price, wrap.tax_rate) == (
        LineKind.GIFT_WRAP,
        "102-wrapping",
        D("2.50"),
        20,
    )
    assert (wrap.total_net, wrap.tax_amount) == (D("2.08"), D("0.42"))
    assert wrap.quantity == 1  # one wrapping for the parcel, however many items
    assert (order.subtotal, order.shipping_total, order.shipping_tax) == (
        D("63.30"),
        D("4.90"),
        D("0.82"),
    )
    assert (order.tax_total, order.grand_total) == (D("9.56"), D("68.20"))


def test_cancelled_order_with_pack_free_shipping_and_derived_rates(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    order = parse(connector, "fr-order-103.xml")

    # "2024-03-31 02:30:00" does not exist in Paris (clocks jump 02:00 → 03:00): fold=0.
    assert order.placed_at == when(2024, 3, 31, 1, 30)
    assert (order.status, order.status_label) == ("6", "Canceled")
    assert order.cancelled_at == when(2024, 4, 2, 7, 12, 44)  # the history row of state 6
    assert order.cancel_reason == ""
    assert (order.customer.first_name, order.customer.last_name) == ("Zoé", "Öztürk")
    assert order.billing.line2 == "Bâtiment C, 3e étage"
    assert order.shipping_label == "Chronopost"
    assert order.discount_codes == ("LIVRAISONOFFERTE", "Cadeau fidélité")  # no code: name
    assert order.buyer_note == ""  # the order `note` is internal to the back office
    assert (order.discount_total, order.shipping_total, order.grand_total) == (
        D("9.90"),
        D("9.90"),
        D("71.00"),
    )
    # No order_details for this order: rates come from the tax-excluded and included prices.
    pack, cups = order.lines
    assert (pack.name, pack.quantity, pack.tax_rate) == (
        "Coffret découverte thés du monde",
        1,
        D("5.5"),
    )
    assert (pack.total_net, pack.tax_amount) == (D("33.18"), D("1.82"))
    assert (cups.tax_rate, cups.total_net, cups.total_gross, cups.ean) == (20, 30, 36, "")
    histories = stocked.requests_to("GET", "/api/order_histories")
    assert [r.arg("filter[id_order]") for r in histories] == ["[103]"]


@pytest.mark.parametrize("name", ORDER_FIXTURES)
def test_shop_figures_add_up(connector: PrestaShopConnector, name: str) -> None:
    order = parse(connector, name)
    assert order.subtotal - order.discount_total + order.shipping_total == order.grand_total
    assert sum(line.total_gross for line in order.lines) == order.subtotal
    for line in order.lines:
        assert line.total_net + line.tax_amount == line.total_gross
    # Lines + shipping - cart rules (never inside PrestaShop's line totals) = total paid.
    assert shop_order_mismatch(order) is None
    assert sum(d.amount for d in order.discounts) == order.discount_total


def test_cart_rules_are_discounts_with_names_codes_and_amounts(
    connector: PrestaShopConnector,
) -> None:
    assert parse(connector, "fr-order-101.xml").discounts == (
        ShopDiscount(code="BIENVENUE10", amount=D("12.00"), label="Bienvenue -10 %"),
    )
    # Free shipping is a rule worth the shipping (9.90); a code-less gift rule took nothing.
    assert parse(connector, "fr-order-103.xml").discounts == (
        ShopDiscount(code="LIVRAISONOFFERTE", amount=D("9.90"), label="Livraison offerte"),
        ShopDiscount(code="", amount=D("0.00"), label="Cadeau fidélité"),
    )
    assert parse(connector, "prestashop-order.xml").discounts == ()


def test_every_line_is_a_thing_to_ship_unless_downloadable(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    for name in ORDER_FIXTURES:
        order = parse(connector, name)
        assert all(line.needs_shipping for line in order.lines), name
        assert all(line.parent_external_id is None for line in order.lines), name
    # The book of order 101 sold as an e-book: its order detail carries a download link.
    head, book_id, tail = raw("fr-order_details.xml").partition(b"<![CDATA[1003]]>")
    tail = tail.replace(
        b"<download_hash></download_hash>",
        b"<download_hash><![CDATA[3f2a9c0e7b1d4e6f8a0b2c4d6e8f0a1b3c5d7e9f]]></download_hash>",
        1,
    )
    details = head + book_id + tail
    stocked.load(details)
    sketchbook, apron, book = parse(connector, "fr-order-101.xml").lines
    assert (sketchbook.needs_shipping, apron.needs_shipping) == (True, True)
    assert (book.sku, book.needs_shipping) == ("LIV-CERAM", False)


def test_unit_prices_keep_six_decimals_and_line_totals_stay_as_given(
    connector: PrestaShopConnector,
) -> None:
    # Order 103 without order_details, its cups at 3.225 with tax (2 × 3.225 = 6.45).
    payload = (
        raw("fr-order-103.xml")
        .replace(
            b"<![CDATA[18.000000]]></unit_price_tax_incl>",
            b"<![CDATA[3.225000]]></unit_price_tax_incl>",
        )
        .replace(
            b"<![CDATA[15.000000]]></unit_price_tax_excl>",
            b"<![CDATA[2.687500]]></unit_price_tax_excl>",
        )
        .replace(
            b"<total_products_wt><![CDATA[71.000000]]>", b"<total_products_wt><![CDATA[41.450000]]>"
        )
        .replace(
            b"<total_paid_tax_incl><![CDATA[71.000000]]>",
            b"<total_paid_tax_incl><![CDATA[41.450000]]>",
        )
    )
    order = connector.parse_order(payload)
    _pack, cups = order.lines
    assert (cups.quantity, cups.unit_price, cups.total_gross) == (2, D("3.225"), D("6.45"))
    assert order.grand_total == D("41.45")
    assert shop_order_mismatch(order) is None
    # The published order's 16.510000 reads as 16.51.
    published = parse(connector, "prestashop-order.xml")
    assert [line.unit_price for line in published.lines] == [D("16.51"), D("27.00"), D("26.00")]


@pytest.mark.parametrize("name", ORDER_FIXTURES)
def test_orders_travel_through_the_inbox_codec(connector: PrestaShopConnector, name: str) -> None:
    order = parse(connector, name)
    assert decode_order(encode_order(order)) == order


def test_isbn_serves_as_barcode(connector: PrestaShopConnector) -> None:
    payload = raw("fr-order-101.xml").replace(b"<![CDATA[9782212678901]]>", b"")
    book = connector.parse_order(payload).lines[2]
    assert book.ean == "9782212678901"  # from product_isbn 978-2-212-67890-1


def test_one_order_list_answer_is_accepted(connector: PrestaShopConnector) -> None:
    single = ET.fromstring(raw("fr-order-101.xml"))
    listed = ET.Element("prestashop")
    ET.SubElement(listed, "orders").append(single[0])
    assert connector.parse_order(ET.tostring(listed)).external_id == "101"


def test_missing_optional_resources_degrade(stocked: PrestaShopEmulator) -> None:
    granted = {"GET", "HEAD"}
    stocked.permissions = {
        name: granted
        for name in (
            "orders",
            "order_details",
            "order_states",
            "order_payments",
            "customers",
            "addresses",
            "countries",
            "currencies",
            "carriers",
        )
    }
    order = parse(connect(stocked), "fr-order-101.xml")
    assert order.discount_codes == () and order.buyer_note == ""
    assert [line.tax_rate for line in order.lines] == [20, 20, D("5.5")]  # derived


def test_deleted_customer_and_unknown_currency(stocked: PrestaShopEmulator) -> None:
    del stocked.data["customers"][201]
    order = parse(connect(stocked), "fr-order-101.xml")
    assert order.customer.external_id == "201" and order.email == ""
    assert order.customer.last_name == "Dupont"  # from the invoice address

    payload = raw("fr-order-101.xml").replace(
        b'currencies/1"><![CDATA[1]]>', b'currencies/7"><![CDATA[7]]>'
    )
    with pytest.raises(BadPayload, match="id_currency"):
        connect(stocked).parse_order(payload)


def test_shop_timezone_setting(stocked: PrestaShopEmulator) -> None:
    client = connect(stocked, extra={"timezone": "America/New_York"})
    assert parse(client, "fr-order-101.xml").placed_at == when(2024, 7, 15, 18, 32, 10)
    with pytest.raises(PermanentError, match="timezone"):
        connect(stocked, extra={"timezone": "Mars/Olympus"})


# --- hostile and broken payloads ------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;">]>
<prestashop><order><id>&lol2;</id></order></prestashop>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<prestashop><order><id>&secret;</id></order></prestashop>"""


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (BILLION_LAUGHS, "not a readable XML"),
        (EXTERNAL_ENTITY, "not a readable XML"),
        (b"<!DOCTYPE prestashop><prestashop/>", "not a readable XML"),
        (b"", "not a readable XML"),
        (b'{"order": {"id": 5}}', "not a readable XML"),
        (b"<shop><order/></shop>", "expected <prestashop>"),
        (b"<prestashop><customer/></prestashop>", "no <order>"),
        (b"<prestashop><order><id>x</id></order></prestashop>", "date_add"),
        (
            raw("fr-order-101.xml").replace(b"14:32:10]]>", b"25:99:99]]>"),
            r"order\.date_add",
        ),
        (
            raw("fr-order-101.xml").replace(b"<![CDATA[120.000000]]>", b"<![CDATA[NaN]]>"),
            "not a usable amount",
        ),
        (
            raw("fr-order-101.xml").replace(
                b"[CDATA[3]]></product_quantity>", b"[CDATA[-3]]></product_quantity>"
            ),
            r"order_rows\[0\]\.product_quantity",
        ),
        (
            raw("fr-order-101.xml").replace(b"<reference>", b"<reference><x/>"),
            r"order\.reference",
        ),
    ],
)
def test_broken_payloads_raise_bad_payload(
    connector: PrestaShopConnector, payload: bytes, message: str
) -> None:
    with pytest.raises(BadPayload, match=message):
        connector.parse_order(payload)


# Offline connector for arbitrary bytes: nothing parses far enough to need the network.
OFFLINE = PrestaShopConnector(ShopSettings(base_url="http://127.0.0.1:9", api_key=DEFAULT_KEY))


@settings(max_examples=200, deadline=None)
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_bad_payload(payload: bytes) -> None:
    with pytest.raises(BadPayload):
        OFFLINE.parse_order(payload)


TEXTS = st.one_of(
    st.sampled_from(["", "0", "-1", "1e999", "NaN", "0000-00-00 00:00:00", "9" * 25, "abc"]),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
)


def _mutate(data: st.DataObject, root: ET.Element) -> None:
    elements = list(root.iter())
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        target = data.draw(st.sampled_from(elements), label="element")
        operation = data.draw(
            st.sampled_from(["text", "delete", "duplicate", "rename", "nest", "clear"]),
            label="operation",
        )
        parent = next((p for p in root.iter() if target in list(p)), None)
        if operation == "text":
            target.text = data.draw(TEXTS, label="text")
        elif operation == "delete" and parent is not None:
            parent.remove(target)
        elif operation == "duplicate" and parent is not None:
            parent.append(copy.deepcopy(target))
        elif operation == "rename":
            target.tag = data.draw(st.sampled_from(["order", "id", "language", "x", "order_row"]))
        elif operation == "nest":
            ET.SubElement(target, data.draw(st.sampled_from(["language", "id", "x"])))
        elif operation == "clear":
            target.clear()
        elements = list(root.iter())


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_mutated_orders_raise_only_bad_payload(
    connector: PrestaShopConnector, data: st.DataObject
) -> None:
    root = ET.fromstring(raw(data.draw(st.sampled_from(ORDER_FIXTURES), label="fixture")))
    _mutate(data, root)
    try:
        order = connector.parse_order(ET.tostring(root, encoding="utf-8"))
    except BadPayload:
        return
    assert isinstance(order, ShopOrder)


# --- the shop over HTTP -----------------------------------------------------------------------


def _stock_orders(shop: PrestaShopEmulator, count: int, start: dt.datetime) -> None:
    """Orders whose date_upd order differs from their id order, some sharing a second."""
    for index in range(count):
        local = start + dt.timedelta(minutes=(count - index) // 2)
        shop.add("orders", order_record(1000 + index, local.strftime("%Y-%m-%d %H:%M:%S")))


def test_list_orders_pages_in_change_order(shop: PrestaShopEmulator) -> None:
    _stock_orders(shop, 230, dt.datetime(2024, 5, 1, 9, 0, 0))
    client = connect(shop)
    seen: list[ShopOrder] = []
    pages: list[str | None] = []
    page: str | None = None
    while True:
        shop.requests.clear()
        batch = client.list_orders(when(2024, 1, 1), page)
        # Two listings at most; look-ups batched per page (ID_CHUNK ids a request: the
        # order details, cart rules, messages and order carriers of 100 orders take two).
        assert len(shop.requests) <= 15
        seen.extend(batch.orders)
        pages.append(batch.next_page)
        page = batch.next_page
        if page is None:
            break
    assert len(pages) == 3 and pages[-1] is None
    assert all(token and "|" in token for token in pages[:-1])
    ids = [order.external_id for order in seen]
    assert len(ids) == len(set(ids)) == 230
    keys = [(order.updated_at, int(order.external_id)) for order in seen]
    assert keys == sorted(keys)

    listing = shop.requests_to("GET", "/api/orders")[0]
    assert listing.arg("display") == "full" and listing.arg("date") == "1"
    assert listing.arg("sort") == "[date_upd_ASC,id_ASC]"
    assert listing.arg("limit") == "100"
    last_time, last_id = pages[1].split("|")  # type: ignore[union-attr]
    assert listing.arg("filter[date_upd]") == f"[{last_time}]"
    assert listing.arg("filter[id]") == f">[{last_id}]"


def _poll(
    client: PrestaShopConnector,
    since: dt.datetime,
    between: Callable[[int], None] = lambda _: None,
) -> list[ShopOrder]:
    """Every page of one poll, calling between(n) after page n; fails if it never ends."""
    seen: list[ShopOrder] = []
    page: str | None = None
    for number in range(1, 50):
        batch = client.list_orders(since, page)
        seen.extend(batch.orders)
        if batch.next_page is None:
            return seen
        assert batch.next_page != page
        page = batch.next_page
        between(number)
    raise AssertionError("paging does not end")


def test_order_changed_during_a_poll_is_not_skipped(shop: PrestaShopEmulator) -> None:
    _stock_orders(shop, 230, dt.datetime(2024, 5, 1, 9, 0, 0))
    shop.clock = lambda: dt.datetime(2024, 6, 1, 10, 0, 0)
    first = [o.external_id for o in connect(shop).list_orders(when(2024, 1, 1)).orders]

    def change(number: int) -> None:
        if number == 1:
            shop.update_order(first[10], current_state="4")  # read on page 1, moves to the end

    seen = _poll(connect(shop), when(2024, 1, 1), change)
    ids = [order.external_id for order in seen]
    assert set(ids) == {str(1000 + index) for index in range(230)}
    assert ids.count(first[10]) == 2 and len(ids) == 231  # again, with its new date_upd
    assert seen[-1].status == "4" and seen[-1].updated_at == when(2024, 6, 1, 8, 0, 0)
    keys = [(order.updated_at, int(order.external_id)) for order in seen]
    assert keys == sorted(keys)


def test_offset_token_is_refused(shop: PrestaShopEmulator) -> None:
    with pytest.raises(BadPayload, match="page token"):
        connect(shop).list_orders(when(2024, 1, 1), "100")


def test_bulk_change_in_one_second_pages_through(shop: PrestaShopEmulator) -> None:
    for index in range(250):
        shop.add("orders", order_record(2000 - index, "2024-05-01 09:00:00"))
    shop.add("orders", order_record(1, "2024-05-01 09:00:01"))
    shop.add("orders", order_record(5000, "2024-05-01 08:59:59"))

    seen = _poll(connect(shop), when(2024, 5, 1, 7, 0, 0))  # 09:00:00 in Paris

    ids = [int(order.external_id) for order in seen]
    assert ids == sorted(range(1751, 2001)) + [1]


def test_list_orders_filters_on_shop_local_date_upd(shop: PrestaShopEmulator) -> None:
    shop.add("orders", order_record(1, "2024-07-15 14:32:09"))
    shop.add("orders", order_record(2, "2024-07-15 14:32:10"))
    shop.add("orders", order_record(3, "2024-07-16 08:00:00"))
    client = connect(shop)

    batch = client.list_orders(when(2024, 7, 15, 12, 32, 10))  # = 14:32:10 in Paris
    assert [order.external_id for order in batch.orders] == ["2", "3"]
    assert batch.next_page is None
    sent = shop.requests_to("GET", "/api/orders")[-1].arg("filter[date_upd]")
    assert sent == ">[2024-07-15 14:32:09]"  # strict filter, one second earlier

    shop.clock = lambda: dt.datetime(2024, 7, 20, 10, 0, 0)
    shop.update_order(1, current_state="4")
    batch = client.list_orders(when(2024, 7, 17))
    assert [(o.external_id, o.status, o.updated_at) for o in batch.orders] == [
        ("1", "4", when(2024, 7, 20, 8, 0, 0))
    ]
    assert dedupe_key(batch.orders[0]) == "1:2024-07-20T08:00:00Z"
    assert client.list_orders(when(2024, 8, 1)) == type(batch)(orders=(), next_page=None)


def test_unreadable_order_is_rejected_alone(shop: PrestaShopEmulator) -> None:
    shop.add("orders", order_record(1, "2024-07-15 10:00:00"))
    shop.add("orders", order_record(2, "2024-07-15 10:00:01", date_add="2024-13-45 10:00:00"))
    shop.add("orders", order_record(3, "2024-07-15 10:00:02", id_currency="7"))
    shop.add("orders", order_record(4, "2024-07-15 10:00:03"))

    batch = connect(shop).list_orders(when(2024, 7, 1))

    assert [order.external_id for order in batch.orders] == ["1", "4"]
    assert [(r.external_id, r.error.split(":")[0]) for r in batch.rejected] == [
        ("2", "orders[1].date_add"),
        ("3", "order 3.id_currency"),
    ]
    assert all(r.raw.startswith(b'<prestashop xmlns:xlink="') for r in batch.rejected)
    assert b"<reference>REF000002</reference>" in batch.rejected[0].raw


def test_date_filters_need_date_1(shop: PrestaShopEmulator) -> None:
    """The emulator answers like PrestaShop when `date=1` is forgotten."""
    client = connect(shop)
    with pytest.raises(ConnectorError, match="This filter does not exist"):
        client._list("orders", [("filter[date_upd]", ">[2024-01-01 00:00:00]")])


def test_fetch_order(connector: PrestaShopConnector, stocked: PrestaShopEmulator) -> None:
    order = connector.fetch_order("102")
    assert order.number == "QWMRTZPLE" and order.shipping_label == "Mondial Relay"
    assert stocked.requests_to("GET", "/api/orders/102")
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("999")
    asked = len(stocked.requests)
    with pytest.raises(NotFoundAtShop):
        connector.fetch_order("../customers")
    assert len(stocked.requests) == asked


def test_fetch_transactions(connector: PrestaShopConnector, stocked: PrestaShopEmulator) -> None:
    payment, slip = connector.fetch_transactions("102")
    assert payment.external_id == "601"
    assert (payment.kind, payment.status, payment.amount, payment.currency) == (
        TransactionKind.SALE,
        TransactionStatus.SUCCESS,
        D("68.20"),
        "EUR",
    )
    assert payment.occurred_at == when(2024, 10, 27, 0, 15, 3)
    assert (payment.method, payment.reference) == ("Carte bancaire", "pi_3Q4xYzAbCdEf12")
    assert (slip.external_id, slip.kind, slip.amount) == (
        "order_slip:71",
        TransactionKind.REFUND,
        D("7.90"),
    )
    assert slip.occurred_at == when(2024, 11, 4, 9, 20)
    asked = stocked.requests_to("GET", "/api/order_payments")[0]
    assert asked.arg("filter[order_reference]") == "[QWMRTZPLE]"

    assert connector.fetch_transactions("101") == ()  # awaiting the bank wire
    with pytest.raises(NotFoundAtShop):
        connector.fetch_transactions("999")


def test_catalogues(connector: PrestaShopConnector, stocked: PrestaShopEmulator) -> None:
    stocked.add("order_states", {"id": "14", "deleted": "1", "name": {"1": "Old state"}})
    statuses = connector.list_statuses()
    assert [s.code for s in statuses] == [str(i) for i in range(1, 14)]
    assert statuses[5].code == "6" and statuses[5].label == "Canceled"

    carriers = connector.list_carriers()
    assert [c.code for c in carriers] == [
        "Maison Lumière",  # the carrier named "0" is shown under the shop's name
        "My carrier",
        "Colissimo",
        "Mondial Relay",
        "Chronopost",
    ]
    assert carriers[3].label == "Mondial Relay (mondialrelay)"
    assert stocked.requests_to("GET", "/api/carriers")[0].arg("filter[deleted]") == "[0]"

    methods = {choice.code: choice.label for choice in connector.list_payment_methods()}
    assert methods == {
        "bankwire": "Bank wire",
        "ps_checkout": "Carte bancaire",
        "ps_checkpayment": "Chèque",
        "ps_wirepayment": "Virement bancaire",
    }


def test_order_codes_match_catalogue_codes(connector: PrestaShopConnector) -> None:
    carriers = {choice.code for choice in connector.list_carriers()}
    statuses = {choice.code for choice in connector.list_statuses()}
    methods = {choice.code for choice in connector.list_payment_methods()}
    for name in ORDER_FIXTURES:
        order = parse(connector, name)
        assert order.shipping_label in carriers
        assert order.status in statuses
        assert order.payment_method in methods


def test_test_connection(stocked: PrestaShopEmulator) -> None:
    description = connect(stocked).test_connection()
    assert "8.1.5" in description and "Maison Lumière" in description
    stocked.permissions = {"orders": {"GET"}}
    with pytest.raises(AuthFailed, match="customers"):
        connect(stocked).test_connection()


def test_notifications_replace_webhooks(connector: PrestaShopConnector) -> None:
    # Comptoir's module signs its notifications (tests/connectors/test_notifications.py);
    # an order body is no notification, signed or not.
    assert PrestaShopConnector.has_webhooks is True
    assert PrestaShopConnector.webhook_topics == ()
    assert PrestaShopConnector.platform == "prestashop"
    with pytest.raises(InvalidSignature):
        connector.verify_webhook(raw("fr-order-101.xml"), {})
    with pytest.raises(BadPayload, match="not JSON"):
        connector.describe_webhook(raw("fr-order-101.xml"), {})


# --- failures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "short", "X" * 32])
def test_wrong_credentials(shop: PrestaShopEmulator, key: str) -> None:
    with pytest.raises(AuthFailed):
        connect(shop, api_key=key).list_statuses()
    answer = shop.requests[-1]
    assert answer.path == "/api/order_states"


def test_wrong_key_gets_prestashop_answer(shop: PrestaShopEmulator) -> None:
    response = httpx.get(f"{shop.base_url}/api/orders", auth=("X" * 32, ""))
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers
    assert b"<code><![CDATA[20]]></code>" in response.content


def test_rate_limited(shop: PrestaShopEmulator) -> None:
    shop.fail_next(429, retry_after="7")
    with pytest.raises(RateLimited) as caught:
        connect(shop).list_statuses()
    assert caught.value.retry_after == 7


def test_unavailable(shop: PrestaShopEmulator) -> None:
    shop.fail_next(503)
    with pytest.raises(PlatformUnavailable):
        connect(shop).list_orders(when(2024, 1, 1))
    shop.enabled = False  # webservice switched off in the back office
    with pytest.raises(PlatformUnavailable):
        connect(shop).list_orders(when(2024, 1, 1))


def test_slow_shop_times_out(shop: PrestaShopEmulator) -> None:
    shop.slow_next(1.5)
    connector = connect(shop, timeout=0.5)
    with pytest.raises(PlatformUnavailable, match="timed out"):
        connector.list_carriers()
    connector.close()
    shop.wait_landed()


def test_lookup_failure_is_not_hidden(stocked: PrestaShopEmulator) -> None:
    stocked.fail_next(503, path_contains="/api/customers")
    with pytest.raises(PlatformUnavailable):
        connect(stocked).fetch_order("101")


# --- emulator writes (for the write-back issues) ------------------------------------------


def test_emulator_order_history_moves_the_order(stocked: PrestaShopEmulator) -> None:
    stocked.clock = lambda: dt.datetime(2024, 7, 16, 9, 0, 0)
    body = (
        "<prestashop><order_history><id_order>101</id_order>"
        "<id_order_state>2</id_order_state></order_history></prestashop>"
    )
    response = httpx.post(
        f"{stocked.base_url}/api/order_histories?sendemail=1",
        content=body,
        auth=(DEFAULT_KEY, ""),
    )
    assert response.status_code == 201
    assert b"<id_order_state" in response.content
    order = connect(stocked).fetch_order("101")
    assert (order.status, order.updated_at) == ("2", when(2024, 7, 16, 7, 0, 0))

    put = raw("prestashop-order-carrier-put-request.xml")
    stocked.load(raw("prestashop-order-carrier-before.xml"))
    answer = httpx.put(
        f"{stocked.base_url}/api/order_carriers", content=put, auth=(DEFAULT_KEY, "")
    )
    assert answer.status_code == 200
    assert stocked.get("order_carriers", 2)["tracking_number"] == "xyz"


# --- shipments made in the shop -------------------------------------------------------------


def test_published_order_carrier_tracking_is_a_shipment_of_the_shop(
    stocked: PrestaShopEmulator,
) -> None:
    stocked.load(raw("prestashop-order-carrier-before.xml"))  # order 2, carrier 2, "ABCD"
    stocked.get("order_carriers", 2)["id_order"] = "5"  # onto the published order
    order = parse(connect(stocked), "prestashop-order.xml")
    [made] = order.shipments or ()
    assert made.external_id == "oc-2:ABCD" and made.lines is None
    [parcel] = made.parcels
    assert (parcel.tracking_number, parcel.external_id) == ("ABCD", "oc-2:ABCD")
    assert parcel.tracking_url == ""  # "My carrier" has no tracking URL


def test_each_number_is_one_shipment_with_the_carriers_link(stocked: PrestaShopEmulator) -> None:
    row = stocked.add_order_carrier("102", "6", tracking_number="XA1, XA2")  # Chronopost
    stocked.add_order_carrier("101", "4")  # no number: no shipment
    stocked.requests.clear()
    batch = connect(stocked).list_orders(when(2000, 1, 1))
    orders = {order.external_id: order for order in batch.orders}
    assert orders["101"].shipments == ()
    shipped = orders["102"].shipments or ()
    assert [s.external_id for s in shipped] == [f"oc-{row}:XA1", f"oc-{row}:XA2"]
    assert shipped[0].parcels[0].tracking_url == (
        "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=XA1&langue=fr"
    )
    assert shipped[0].carrier == "Chronopost"
    assert len(stocked.requests_to("GET", "/api/order_carriers")) == 1  # one for the page
    assert decode_order(encode_order(orders["102"])) == orders["102"]


def test_a_key_without_order_carriers_says_nothing_of_shipments(
    stocked: PrestaShopEmulator,
) -> None:
    stocked.add_order_carrier("101", "4", tracking_number="6A1")
    stocked.permissions = {name: {"GET"} for name in REQUIRED_RESOURCES}
    order = parse(connect(stocked), "fr-order-101.xml")
    assert order.shipments is None  # not "none": this copy does not say


# --- what the shop is asked and what its answers say ----------------------------------------


def test_a_multistore_shop_id_is_sent_on_every_request(stocked: PrestaShopEmulator) -> None:
    connect(stocked, extra={"id_shop": "2"}).fetch_order("102")
    assert {r.arg("id_shop") for r in stocked.requests} == {"2"}
    stocked.requests.clear()
    connect(stocked, extra={"id_shop": "boutique-2"}).fetch_order("102")
    assert {r.arg("id_shop") for r in stocked.requests} == {None}


def test_a_change_date_before_1970_asks_for_every_order(shop: PrestaShopEmulator) -> None:
    shop.add("orders", order_record(1, "2024-07-15 14:32:09"))
    client = connect(shop, extra={"timezone": "America/New_York"})
    batch = client.list_orders(dt.datetime.min.replace(tzinfo=UTC))
    assert [order.external_id for order in batch.orders] == ["1"]
    sent = shop.requests_to("GET", "/api/orders")[-1].arg("filter[date_upd]")
    assert sent == ">[1970-01-01 00:00:00]"


def test_buyer_messages_make_the_note_in_the_order_they_were_written(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    for message_id, written, text in (
        ("400", "2024-07-15 18:00:00", "Sonnez deux fois."),
        ("600", "2024-07-15 10:00:00", "Bonjour !"),
    ):
        stocked.add(
            "messages",
            {
                "id": message_id,
                "id_order": "101",
                "id_customer": "201",
                "id_employee": "0",
                "message": text,
                "private": "0",
                "date_add": written,
            },
        )
    notes = connector.fetch_order("101").buyer_note.split("\n\n")
    assert notes[0] == "Bonjour !"
    assert notes[1].startswith("Merci de livrer avant 17 h")
    assert notes[2] == "Sonnez deux fois."


def test_a_credit_slip_without_payments_is_in_the_orders_currency(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    stocked.add(
        "order_slip",
        {
            "id": "72",
            "id_order": "101",
            "total_products_tax_incl": "12.000000",
            "total_shipping_tax_incl": "0.000000",
            "date_add": "2024-07-20 10:00:00",
        },
    )
    [slip] = connector.fetch_transactions("101")
    assert (slip.external_id, slip.kind, slip.amount, slip.currency) == (
        "order_slip:72",
        TransactionKind.REFUND,
        D("12.00"),
        "EUR",
    )


def test_carriers_sharing_a_name_are_listed_once_and_the_next_ones_still(
    connector: PrestaShopConnector, stocked: PrestaShopEmulator
) -> None:
    stocked.add("carriers", {"id": "20", "deleted": "0", "is_module": "0", "name": "Colissimo"})
    stocked.add("carriers", {"id": "21", "deleted": "0", "is_module": "0", "name": "DPD"})
    codes = [choice.code for choice in connector.list_carriers()]
    assert codes.count("Colissimo") == 1
    assert codes[-1] == "DPD"


def test_a_rate_no_eu_country_uses_is_kept_as_the_amounts_say(
    connector: PrestaShopConnector,
) -> None:
    # 15.00 excluding tax, 16.155 including it: 7.7 % (Switzerland's former rate).
    swiss = raw("fr-order-103.xml").replace(
        b"<![CDATA[18.000000]]></unit_price_tax_incl>",
        b"<![CDATA[16.155000]]></unit_price_tax_incl>",
    )
    _, cups = connector.parse_order(swiss).lines
    assert cups.tax_rate == D("7.70")


def test_a_connection_test_takes_a_resource_listed_without_flags_as_readable() -> None:
    """An answer listing resources without their get/put/… flags: each is readable."""
    listed = "".join(f"<{name}/>" for name in REQUIRED_RESOURCES)
    body = f'<prestashop><api shopName="Atelier">{listed}</api></prestashop>'

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"PSWS-Version": "1.7.8.11"}, text=body)

    client = PrestaShopConnector(
        ShopSettings(base_url="https://atelier.example.com", api_key=DEFAULT_KEY),
        transport=httpx.MockTransport(answer),
    )
    description = client.test_connection()
    assert description == (
        f"PrestaShop 1.7.8.11 webservice, shop 'Atelier', "
        f"{len(REQUIRED_RESOURCES)} resources readable"
    )
