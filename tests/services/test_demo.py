"""The demo seed: two shops and ~300 orders whose states, money and parcels all hold together."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, selectinload
from stdnum import bic, iban
from stdnum.eu import vat as eu_vat
from stdnum.fr import siren as fr_siren
from stdnum.fr import siret as fr_siret

from web import crypto
from web.documents.company import company_settings, missing_fields, require_complete
from web.models import (
    Comment,
    Customer,
    CustomerShopLink,
    InboxEvent,
    Order,
    OutboxMessage,
    ShippingMode,
    Shop,
)
from web.models.enums import (
    CommentVisibility,
    CommercialState,
    FulfilmentState,
    InboxState,
    LineKind,
    OutboxState,
    PaymentState,
    Platform,
    ShipmentState,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.models.shipping import Shipment
from web.services.company import update_company
from web.services.demo import DemoSummary, seed_demo
from web.services.errors import ValidationFailed
from web.services.order_state import derive_payment_state, is_ready_to_prepare
from web.services.reconcile import stored_order_total

TODAY = dt.date(2026, 11, 27)
PARIS = ZoneInfo("Europe/Paris")
HORIZON = dt.datetime.combine(TODAY, dt.time(0), PARIS).astimezone(dt.UTC)
CENT = Decimal("0.01")
ORDERS = 300

TRACKING_FORMATS = {
    "colissimo": r"\d[A-Z]\d{11}",
    "colissimo_relais": r"\d[A-Z]\d{11}",
    "chronopost": r"[A-Z]{2}\d{9}FR",
    "mondial_relay": r"\d{8}",
    "dpd": r"\d{14}",
    "gls": r"\d{11,12}",
    "ups": r"1Z[0-9A-Z]{16}",
}


@dataclass
class Seeded:
    summary: DemoSummary
    shops: list[Shop]
    modes: list[ShippingMode]
    orders: list[Order]
    customers: list[Customer]
    inbox: list[InboxEvent]
    raw_api_keys: list[str]
    outbox: list[OutboxMessage]


@pytest.fixture(scope="module")
def seeded(engine: Engine) -> Seeded:
    """Seed once, read everything back from the database, then roll it all back.

    The rows are read into detached objects before the rollback, so the read-only tests share
    one seed without holding a write transaction open (SQLite would lock the other tests out).
    Shop secrets are encrypted with the key that conftest's `_encryption` installs.
    """
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    try:
        summary = seed_demo(session, orders=ORDERS, today=TODAY)
        session.expire_all()
        orders = list(
            session.scalars(
                select(Order)
                .order_by(Order.placed_at)
                .options(
                    selectinload(Order.shop),
                    selectinload(Order.customer).selectinload(Customer.shop_links),
                    selectinload(Order.shipping_mode),
                    selectinload(Order.lines),
                    selectinload(Order.transactions),
                    selectinload(Order.shipments).selectinload(Shipment.lines),
                    selectinload(Order.shipments).selectinload(Shipment.parcels),
                    selectinload(Order.shipments).selectinload(Shipment.shipping_mode),
                    selectinload(Order.events),
                    selectinload(Order.comments),
                )
            )
        )
        shops = list(
            session.scalars(
                select(Shop)
                .order_by(Shop.key)
                .options(
                    selectinload(Shop.status_mappings),
                    selectinload(Shop.milestone_mappings),
                    selectinload(Shop.payment_mappings),
                    selectinload(Shop.carrier_mappings),
                )
            )
        )
        raw_api_keys = list(session.scalars(text("SELECT api_key FROM shops ORDER BY key")))
        outbox = list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        result = Seeded(
            summary=summary,
            shops=shops,
            modes=list(session.scalars(select(ShippingMode).order_by(ShippingMode.code))),
            orders=orders,
            customers=list(session.scalars(select(Customer))),
            inbox=list(session.scalars(select(InboxEvent).order_by(InboxEvent.id))),
            raw_api_keys=raw_api_keys,
            outbox=outbox,
        )
        session.expunge_all()
    finally:
        session.close()
        outer.rollback()
        connection.close()
    return result


def _captured(order: Order) -> Decimal:
    return sum(
        (
            t.amount
            for t in order.transactions
            if t.status == TransactionStatus.SUCCESS
            and t.kind in (TransactionKind.CAPTURE, TransactionKind.SALE)
        ),
        Decimal("0"),
    )


def _refunded(order: Order) -> Decimal:
    return sum(
        (
            t.amount
            for t in order.transactions
            if t.status == TransactionStatus.SUCCESS and t.kind == TransactionKind.REFUND
        ),
        Decimal("0"),
    )


def _shipped_quantities(order: Order) -> Counter[int]:
    shipped: Counter[int] = Counter()
    for shipment in order.shipments:
        for line in shipment.lines:
            shipped[line.order_line_id] += line.quantity
    return shipped


# --- Shops, carriers, mappings -------------------------------------------------------------


def test_seeds_two_shops_seven_carriers_and_the_orders_asked_for(seeded: Seeded) -> None:
    assert seeded.summary.shops == 2
    assert seeded.summary.orders == ORDERS == len(seeded.orders)
    assert seeded.summary.shipping_modes == 7 == len(seeded.modes)
    assert seeded.summary.order_lines == sum(len(o.lines) for o in seeded.orders)
    assert seeded.summary.parcels == sum(len(s.parcels) for o in seeded.orders for s in o.shipments)
    by_key = {shop.key: shop for shop in seeded.shops}
    assert set(by_key) == {"demo-shopify", "demo-presta"}
    assert by_key["demo-shopify"].platform == Platform.SHOPIFY
    assert by_key["demo-shopify"].name == "Atelier Lumière (Shopify)"
    assert by_key["demo-shopify"].base_url == "https://atelier-lumiere.myshopify.com"
    assert by_key["demo-presta"].platform == Platform.PRESTASHOP
    assert by_key["demo-presta"].name == "La Belle Épicerie (PrestaShop)"
    assert by_key["demo-presta"].base_url == "https://boutique.labelleepicerie.fr"
    per_shop = Counter(order.shop.key for order in seeded.orders)
    assert min(per_shop.values()) > ORDERS // 4


def test_shop_credentials_are_stored_encrypted(seeded: Seeded) -> None:
    for shop, raw in zip(seeded.shops, seeded.raw_api_keys, strict=True):
        assert shop.api_key and shop.webhook_secret
        assert raw != shop.api_key
        assert crypto.decrypt(raw) == shop.api_key


def test_shipping_modes_follow_the_carrier_reference(seeded: Seeded) -> None:
    modes = {mode.code: mode for mode in seeded.modes}
    assert set(modes) == set(TRACKING_FORMATS)
    assert modes["colissimo"].tracking_url_template == (
        "https://www.laposte.fr/outils/suivre-vos-envois?code={tracking}"
    )
    assert "{postcode}" in modes["mondial_relay"].tracking_url_template
    assert modes["mondial_relay"].is_relay_point and modes["colissimo_relais"].is_relay_point
    assert not modes["chronopost"].is_relay_point
    for mode in modes.values():
        assert mode.tracking_url_template.startswith("https://")
        assert "{tracking}" in mode.tracking_url_template
        assert set(mode.carrier_codes) == {"shopify", "woocommerce", "prestashop", "magento"}
        assert "@" in mode.carrier_codes["prestashop"]
        assert "{" not in mode.carrier_codes["prestashop"]
    assert modes["colissimo"].carrier_codes["shopify"] == "Colissimo"
    assert modes["colissimo"].carrier_codes["woocommerce"] == "colissimo"
    assert modes["ups"].carrier_codes["magento"] == "ups"
    assert modes["dpd"].carrier_codes["shopify"] == "DPD"


def test_each_shop_has_status_milestone_payment_and_carrier_mappings(seeded: Seeded) -> None:
    by_key = {shop.key: shop for shop in seeded.shops}
    shopify, presta = by_key["demo-shopify"], by_key["demo-presta"]
    assert {"paid", "pending", "refunded"} <= {m.shop_status for m in shopify.status_mappings}
    assert {
        "Paiement accepté",
        "En attente de virement bancaire",
        "Annulé",
        "Expédié",
        "Livré",
    } <= {m.shop_status for m in presta.status_mappings}
    assert {"shopify_payments", "paypal", "manual"} <= {
        m.shop_method for m in shopify.payment_mappings
    }
    assert {"Carte bancaire", "Virement bancaire", "Chèque", "PayPal"} <= {
        m.shop_method for m in presta.payment_mappings
    }
    for shop in (shopify, presta):
        assert len(shop.milestone_mappings) == 7
        assert any(m.enabled for m in shop.milestone_mappings)
        assert len(shop.carrier_mappings) >= 5
    mapped_modes = {m.shipping_mode_id for shop in seeded.shops for m in shop.carrier_mappings}
    assert mapped_modes == {mode.id for mode in seeded.modes}


# --- States ---------------------------------------------------------------------------------


def test_every_state_of_every_axis_appears(seeded: Seeded) -> None:
    orders = seeded.orders
    assert {o.commercial_state for o in orders} == set(CommercialState)
    assert {o.fulfilment_state for o in orders} == set(FulfilmentState)
    assert {o.payment_state for o in orders} == set(PaymentState)
    assert sum(o.on_hold for o in orders) >= 2
    assert sum(o.needs_mapping for o in orders) >= 3
    assert sum(is_ready_to_prepare(o) for o in orders) >= 5
    free = [o for o in orders if o.grand_total == 0]
    assert len(free) >= 2
    assert all(o.commercial_state == CommercialState.VALIDATED for o in free)


def test_states_are_coherent_with_each_other(seeded: Seeded) -> None:
    for order in seeded.orders:
        state = order.commercial_state
        if state == CommercialState.NEW:
            assert order.payment_state in (PaymentState.UNPAID, PaymentState.PARTIALLY_PAID)
            assert order.fulfilment_state == FulfilmentState.UNFULFILLED
            assert order.validated_at is None
        if state in (CommercialState.VALIDATED, CommercialState.CLOSED):
            assert order.validated_at is not None and order.validated_at >= order.placed_at
            by_hand = any(
                e.kind == "order.validated" and not e.details.get("automatic") for e in order.events
            )
            assert order.payment_state != PaymentState.UNPAID or by_hand or not order.grand_total
        if state == CommercialState.CLOSED:
            assert order.fulfilment_state == FulfilmentState.DELIVERED
            assert order.closed_at is not None
        if state == CommercialState.CANCELLED:
            assert order.cancel_reason and order.cancelled_at is not None
            assert order.fulfilment_state == FulfilmentState.UNFULFILLED
            assert order.payment_state in (PaymentState.UNPAID, PaymentState.REFUNDED)
            assert not order.on_hold
        if order.on_hold:
            assert order.hold_reason
            assert order.fulfilment_state == FulfilmentState.UNFULFILLED
        if order.needs_mapping:
            assert [issue["kind"] for issue in order.mapping_issues] == ["carrier"]
            assert order.mapping_issues[0]["value"] == order.shipping_label
            assert order.shipping_mode_id is None
            assert order.shipping_label not in {m.shop_label for m in order.shop.carrier_mappings}
        else:
            assert order.shipping_mode is not None
            assert order.shipping_label in {m.shop_label for m in order.shop.carrier_mappings}


def test_payment_state_agrees_with_the_transactions(seeded: Seeded) -> None:
    for order in seeded.orders:
        captured, refunded, total = _captured(order), _refunded(order), order.grand_total
        state = order.payment_state
        assert state == derive_payment_state(total, order.transactions), order.number
        if state == PaymentState.PAID:
            assert captured >= total and refunded == 0
        elif state == PaymentState.PARTIALLY_PAID:
            assert 0 < captured < total and refunded == 0
        elif state == PaymentState.UNPAID:
            assert captured == 0 and refunded == 0 and total > 0
        elif state == PaymentState.PARTIALLY_REFUNDED:
            assert 0 < refunded < captured
        else:
            assert refunded == captured > 0
        methods = {m.shop_method for m in order.shop.payment_mappings}
        assert order.payment_method in methods
        for transaction in order.transactions:
            assert transaction.method in methods
            assert transaction.amount > 0
            assert transaction.amount == transaction.amount.quantize(CENT)
            assert transaction.occurred_at >= order.placed_at
            if transaction.source == "shop":
                assert transaction.external_id


# --- Money ---------------------------------------------------------------------------------


def test_totals_add_up_to_the_cent(seeded: Seeded) -> None:
    rates = set()
    for order in seeded.orders:
        assert 1 <= sum(line.kind == LineKind.PRODUCT for line in order.lines) <= 5
        for line in order.lines:
            rates.add((order.shop.key, line.tax_rate))
            for amount in (line.unit_price, line.total_net, line.tax_amount, line.total_gross):
                assert isinstance(amount, Decimal) and amount == amount.quantize(CENT)
            assert line.total_gross == line.unit_price * line.quantity - line.discount_amount
            assert line.total_net + line.tax_amount == line.total_gross
            expected_net = (line.total_gross * 100 / (100 + line.tax_rate)).quantize(CENT)
            assert line.total_net == expected_net
        lines_gross = sum((line.total_gross for line in order.lines), Decimal("0"))
        assert order.subtotal == sum(
            (line.unit_price * line.quantity for line in order.lines), Decimal("0")
        )
        assert order.discount_total == sum(
            (line.discount_amount for line in order.lines), Decimal("0")
        )
        assert order.grand_total == lines_gross + order.shipping_total
        assert order.grand_total == order.subtotal - order.discount_total + order.shipping_total
        assert order.shipping_tax == order.shipping_total - (
            order.shipping_total * 100 / 120
        ).quantize(CENT)
        assert order.tax_total == order.shipping_tax + sum(
            (line.tax_amount for line in order.lines), Decimal("0")
        )
        if order.discount_total:
            assert order.discount_codes and order.discount_codes[0]["code"]
            # Each discount with its amount, adding up to the order's discount total.
            amounts = [Decimal(d["amount"]) for d in order.discounts]
            assert sum(amounts, Decimal("0")) == order.discount_total
            assert order.discounts[0]["code"] == order.discount_codes[0]["code"]
        # The demo's orders reconcile: no totals banner on any of them.
        assert stored_order_total(order) == order.grand_total
    assert ("demo-shopify", Decimal("20")) in rates
    assert ("demo-presta", Decimal("5.5")) in rates
    assert ("demo-presta", Decimal("20")) in rates
    assert {r for _, r in rates} <= {Decimal("20"), Decimal("5.5")}
    assert sum(bool(o.discount_codes) for o in seeded.orders) >= 10


# --- Shipments ------------------------------------------------------------------------------


def test_shipped_orders_have_parcels_with_tracking_urls(seeded: Seeded) -> None:
    numbers = set()
    for order in seeded.orders:
        products = [line for line in order.lines if line.kind == LineKind.PRODUCT]
        shipped = _shipped_quantities(order)
        state = order.fulfilment_state
        if state in (FulfilmentState.UNFULFILLED, FulfilmentState.IN_PREPARATION):
            assert order.shipments == []
            continue
        assert order.shipments, order.number
        if state == FulfilmentState.PARTIALLY_SHIPPED:
            assert 0 < sum(shipped.values())
            assert any(shipped[line.id] < line.quantity for line in products)
        else:
            assert all(shipped[line.id] == line.quantity for line in products)
        assert set(shipped) <= {line.id for line in order.lines}
        for line in order.lines:
            assert shipped[line.id] <= line.quantity
        postcode = order.shipping_address["postcode"]
        for shipment in order.shipments:
            assert re.fullmatch(r"EXP-\d{6}", shipment.number)
            numbers.add(shipment.number)
            assert shipment.shipping_mode_id == order.shipping_mode_id
            assert shipment.shipped_at is not None and shipment.shipped_at > order.placed_at
            if state == FulfilmentState.DELIVERED:
                assert shipment.state == ShipmentState.DELIVERED
                assert shipment.delivered_at and shipment.delivered_at > shipment.shipped_at
            else:
                assert shipment.state == ShipmentState.SHIPPED
            assert 1 <= len(shipment.parcels) <= 2
            mode = shipment.shipping_mode
            assert mode is not None
            for parcel in shipment.parcels:
                assert re.fullmatch(TRACKING_FORMATS[mode.code], parcel.tracking_number)
                assert parcel.tracking_url == mode.tracking_url(parcel.tracking_number, postcode)
                assert parcel.tracking_number in parcel.tracking_url
                assert parcel.tracking_url.startswith("https://")
                assert "{" not in parcel.tracking_url
                assert parcel.weight_kg is not None and parcel.weight_kg > 0
    assert len(numbers) == sum(len(o.shipments) for o in seeded.orders)
    assert any(len(p.shipments) > 1 for p in seeded.orders)
    assert any(len(s.parcels) == 2 for o in seeded.orders for s in o.shipments)


def test_ups_numbers_carry_a_valid_check_digit(seeded: Seeded) -> None:
    ups = [
        parcel.tracking_number
        for order in seeded.orders
        for shipment in order.shipments
        for parcel in shipment.parcels
        if shipment.shipping_mode and shipment.shipping_mode.code == "ups"
    ]
    assert ups
    for number in ups:
        values = [int(c) if c.isdigit() else (ord(c) - 3) % 10 for c in number[2:17]]
        total = sum(v * (2 if i % 2 else 1) for i, v in enumerate(values))
        assert (total + int(number[17])) % 10 == 0, number


# --- Identifiers and people -----------------------------------------------------------------


def test_shop_numbers_and_external_ids_look_like_each_platform(seeded: Seeded) -> None:
    shopify = [o for o in seeded.orders if o.shop.key == "demo-shopify"]
    presta = [o for o in seeded.orders if o.shop.key == "demo-presta"]
    assert sorted(int(o.number[1:]) for o in shopify) == list(range(1001, 1001 + len(shopify)))
    for order in shopify:
        assert int(order.external_id) > 2**53
        assert all(int(line.external_id) > 2**53 for line in order.lines)
    for order in presta:
        assert re.fullmatch(r"[A-Z]{9}", order.number)
        assert order.external_id.isdigit() and int(order.external_id) < 2**31
    assert len({o.number for o in presta}) == len(presta)


def test_eans_have_valid_check_digits_and_skus_are_set(seeded: Seeded) -> None:
    lines = [line for o in seeded.orders for line in o.lines if line.kind == LineKind.PRODUCT]
    for line in lines:
        assert line.sku
        assert re.fullmatch(r"\d{13}", line.ean)
        weighted = sum(int(d) * (1 if i % 2 == 0 else 3) for i, d in enumerate(line.ean))
        assert weighted % 10 == 0, line.ean
    assert any(line.options.startswith("Parfum : ") for line in lines)
    assert any("Confiture" in line.name for line in lines)


def test_customers_are_french_reused_and_unreachable(seeded: Seeded) -> None:
    orders_per_customer = Counter(o.customer_id for o in seeded.orders)
    assert None not in orders_per_customer
    assert max(orders_per_customer.values()) >= 3
    assert len(seeded.customers) < ORDERS * 0.7
    for order in seeded.orders:
        address = order.billing_address
        assert address["country_code"] == "FR"
        assert re.fullmatch(r"\d{5}", address["postcode"])
        assert address["phone"].startswith("+33")
        assert order.email.split("@")[1] in {"example.com", "example.net", "example.org"}
        assert order.customer is not None and order.customer.email == order.email
        assert order.shop_id in {link.shop_id for link in order.customer.shop_links}
        if order.shipping_mode and order.shipping_mode.is_relay_point:
            assert order.shipping_address["relay_point_id"]
    vat_ids = {o.billing_address["vat_id"] for o in seeded.orders if o.billing_address["company"]}
    assert vat_ids
    for vat in vat_ids:
        siren = vat[4:]
        assert re.fullmatch(r"FR\d{11}", vat)
        assert int(vat[2:4]) == (12 + 3 * (int(siren) % 97)) % 97


# --- Time -------------------------------------------------------------------------------------


def test_orders_span_sixty_days_and_events_follow_them(seeded: Seeded) -> None:
    earliest = dt.datetime.combine(TODAY - dt.timedelta(days=60), dt.time(0), PARIS)
    for order in seeded.orders:
        assert earliest <= order.placed_at < HORIZON
        assert order.placed_at.tzinfo is not None
        assert order.placed_at <= order.created_at <= order.updated_at < HORIZON
        assert order.placed_at <= order.shop_updated_at < HORIZON
        moments = [e.occurred_at for e in order.events]
        assert len(set(moments)) == len(moments), "timeline entries must not tie"
        assert min(order.events, key=lambda e: e.occurred_at).kind == "order.received"
        for event in order.events:
            assert order.placed_at <= event.occurred_at < HORIZON
        for moment in (order.validated_at, order.cancelled_at, order.closed_at):
            assert moment is None or order.placed_at < moment < HORIZON
    recent = sum(o.placed_at >= HORIZON - dt.timedelta(days=20) for o in seeded.orders)
    oldest = sum(o.placed_at < HORIZON - dt.timedelta(days=40) for o in seeded.orders)
    assert recent > oldest


def test_timeline_comments_and_inbox_give_the_dashboard_something_to_show(
    seeded: Seeded,
) -> None:
    kinds = Counter(e.kind for o in seeded.orders for e in o.events)
    for kind in (
        "order.received",
        "order.validated",
        "order.shipped",
        "order.delivered",
        "order.cancelled",
        "order.held",
        "payment.refunded",
        "outbox.sent",
    ):
        assert kinds[kind] > 0, kind
    comments: list[Comment] = [c for o in seeded.orders for c in o.comments]
    assert {c.visibility for c in comments} == set(CommentVisibility)
    states = Counter(event.state for event in seeded.inbox)
    assert states[InboxState.PROCESSED] >= 5
    assert states[InboxState.PARKED] == 1 and states[InboxState.FAILED] == 1
    for event in seeded.inbox:
        if event.state in (InboxState.PARKED, InboxState.FAILED):
            assert event.error
    parked = next(e for e in seeded.inbox if e.state == InboxState.PARKED)
    assert parked.order_id in {o.id for o in seeded.orders if o.needs_mapping}
    # Every push the timelines mention is an outbox message the shop received.
    assert len(seeded.outbox) == kinds["outbox.sent"] + sum(
        c.visibility == CommentVisibility.CUSTOMER for c in comments
    )
    assert {m.state for m in seeded.outbox} == {OutboxState.SENT}
    assert {m.kind for m in seeded.outbox} == {"status", "comment"}


# --- Idempotence and determinism --------------------------------------------------------------


def test_seeding_twice_is_refused(db_session: Session) -> None:
    seed_demo(db_session, orders=40, today=TODAY)
    with pytest.raises(ValidationFailed, match="demo data already present") as refused:
        seed_demo(db_session, orders=40, today=TODAY)
    assert refused.value.errors == {"shops": "demo-presta, demo-shopify"}
    assert db_session.scalar(select(func.count()).select_from(Shop)) == 2
    assert db_session.scalar(select(func.count()).select_from(Order)) == 40


def test_an_impossible_order_count_is_refused(db_session: Session) -> None:
    with pytest.raises(ValidationFailed):
        seed_demo(db_session, orders=0, today=TODAY)


def _snapshot(session: Session) -> list[tuple[Any, ...]]:
    orders = session.scalars(
        select(Order).options(selectinload(Order.shop)).order_by(Order.placed_at, Order.number)
    ).all()
    rows: list[tuple[Any, ...]] = []
    for order in orders:
        rows.append(
            (
                order.shop.key,
                order.external_id,
                order.number,
                order.placed_at,
                order.email,
                order.commercial_state,
                order.fulfilment_state,
                order.payment_state,
                order.grand_total,
                order.tax_total,
                order.shipping_label,
                tuple((li.sku, li.quantity, li.total_gross) for li in order.lines),
                tuple((t.kind, t.amount, t.occurred_at, t.external_id) for t in order.transactions),
                tuple(
                    (s.number, tuple((p.tracking_number, p.tracking_url) for p in s.parcels))
                    for s in order.shipments
                ),
                tuple(sorted((e.occurred_at, e.kind) for e in order.events)),
            )
        )
    return rows


def test_the_same_seed_gives_the_same_data(db_session: Session) -> None:
    snapshots = []
    for seed in (7, 7, 8):
        savepoint = db_session.begin_nested()
        seed_demo(db_session, orders=60, seed=seed, today=TODAY)
        snapshots.append(_snapshot(db_session))
        savepoint.rollback()
    assert len(snapshots[0]) == 60
    assert snapshots[0] == snapshots[1]
    assert snapshots[0] != snapshots[2]


def test_the_service_does_not_load_flask() -> None:
    code = "import sys, web.services.demo; assert 'flask' not in sys.modules"
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)


def test_identifiers_pass_their_official_checks(seeded: Seeded) -> None:
    from stdnum import ean
    from stdnum.fr import tva

    eans = [line.ean for order in seeded.orders for line in order.lines if line.ean]
    assert eans and all(ean.is_valid(code) for code in eans)
    vat_ids = [
        order.billing_address.get("vat_id")
        for order in seeded.orders
        if order.billing_address.get("vat_id")
    ]
    assert vat_ids and all(tva.is_valid(vat_id) for vat_id in vat_ids)


def test_the_demo_names_a_complete_seller_with_valid_identifiers(db_session: Session) -> None:
    seed_demo(db_session, orders=3, today=TODAY)
    company = company_settings(db_session)
    assert missing_fields(company) == []
    assert require_complete(db_session) is company
    assert fr_siren.is_valid(company.siren) and fr_siret.is_valid(company.siret)
    assert company.siret.startswith(company.siren)
    assert eu_vat.is_valid(company.vat_number) and company.vat_number.endswith(company.siren)
    assert iban.is_valid(company.iban) and bic.is_valid(company.bic)
    assert company.email.endswith("@example.com")


def test_the_demo_leaves_a_named_company_alone(db_session: Session) -> None:
    update_company(db_session, {"legal_name": "Ma Vraie Boutique SARL"})
    seed_demo(db_session, orders=3, today=TODAY)
    assert company_settings(db_session).legal_name == "Ma Vraie Boutique SARL"
    assert company_settings(db_session).siren == ""


# --- A small demo, seeded per test --------------------------------------------------------
# The checks above share one seed (a module fixture); these seed their own forty orders, which
# every scenario's minimum still fits, so each reads the seed it ran.


def _small_demo(session: Session) -> list[Order]:
    seed_demo(session, orders=40, today=TODAY)
    session.expire_all()
    return list(session.scalars(select(Order).order_by(Order.placed_at)))


def _events(order: Order, kind: str) -> list[Any]:
    return [event for event in order.events if event.kind == kind]


def test_business_customers_are_validated_by_hand_before_they_pay(db_session: Session) -> None:
    orders = _small_demo(db_session)
    by_hand = [
        order
        for order in orders
        for event in _events(order, "order.validated")
        if event.details.get("note") == "Business customer, payment at 30 days."
    ]
    assert any(
        o.commercial_state == CommercialState.VALIDATED and o.payment_state == PaymentState.UNPAID
        for o in by_hand
    )
    for order in by_hand:
        assert order.validated_at is not None
        assert any(
            c.text.startswith("Client professionnel") and c.visibility == "internal"
            for c in order.comments
        )


def test_refunds_carry_their_reason_amount_and_the_shop_s_id(db_session: Session) -> None:
    orders = _small_demo(db_session)
    reasons = set()
    for order in orders:
        refunds = [t for t in order.transactions if t.kind == TransactionKind.REFUND]
        events = _events(order, "payment.refunded")
        assert [(e.details["amount"], e.details["reason"]) for e in events] == [
            (str(t.amount), t.reference) for t in refunds
        ]
        for refund in refunds:
            reasons.add(refund.reference)
            assert bool(refund.external_id) == (refund.source == "shop")
    assert "Article arrivé cassé : remboursement de la ligne." in reasons
    assert any(t.source == "shop" for o in orders for t in o.transactions if t.kind == "refund")


def test_bank_transfers_name_the_payer_and_the_order(db_session: Session) -> None:
    orders = _small_demo(db_session)
    transfers = [
        (order, t)
        for order in orders
        for t in order.transactions
        if t.source == TransactionSource.BANK_TRANSFER
    ]
    assert transfers
    for order, transfer in transfers:
        last_name = order.billing_address["last_name"].upper()
        assert transfer.reference == f"VIR SEPA {last_name} {order.number}"


def test_each_platform_numbers_its_customers_its_own_way(db_session: Session) -> None:
    _small_demo(db_session)
    for key, smallest, largest in (("demo-presta", 1, 9), ("demo-shopify", 1000, 999999)):
        numbers = sorted(
            int(external)
            for external in db_session.scalars(
                select(CustomerShopLink.external_id).join(Shop).where(Shop.key == key)
            )
        )
        steps = {b - a for a, b in zip(numbers, numbers[1:], strict=False)}
        assert len(numbers) > 3 and smallest <= min(steps) and max(steps) <= largest


def test_shopify_deliveries_carry_shopify_s_headers(db_session: Session) -> None:
    _small_demo(db_session)
    inbox = db_session.scalars(select(InboxEvent).join(Shop)).all()
    assert {row.shop.key for row in inbox} == {"demo-shopify", "demo-presta"}
    for row in inbox:
        if row.shop.key == "demo-shopify":
            assert set(row.headers) == {
                "X-Shopify-Topic",
                "X-Shopify-Shop-Domain",
                "X-Shopify-Webhook-Id",
                "X-Shopify-API-Version",
            }
            assert row.headers["X-Shopify-Webhook-Id"] == row.dedupe_key
        else:
            assert row.headers == {}


def test_the_epicerie_sells_by_the_jar_and_the_atelier_one_or_two(db_session: Session) -> None:
    orders = _small_demo(db_session)
    quantities: dict[str, set[int]] = {"demo-shopify": set(), "demo-presta": set()}
    for order in orders:
        for line in order.lines:
            if line.kind == LineKind.PRODUCT:
                quantities[order.shop.key].add(line.quantity)
    assert max(quantities["demo-shopify"]) <= 2
    assert 2 < max(quantities["demo-presta"]) <= 4


def test_orders_are_placed_at_any_second(db_session: Session) -> None:
    orders = _small_demo(db_session)
    assert len({order.placed_at.second for order in orders}) > 10


def test_every_status_push_names_the_status_it_sent(db_session: Session) -> None:
    orders = _small_demo(db_session)
    pushes = db_session.scalars(select(OutboxMessage).where(OutboxMessage.kind == "status")).all()
    assert pushes
    for order in orders:
        sent = [e for e in _events(order, "outbox.sent") if e.details["kind"] == "status"]
        queued = [e for e in _events(order, "outbox.queued") if e.details["kind"] == "status"]
        statuses = [m.payload["status"] for m in pushes if m.order_id == order.id]
        assert sorted(e.details["status"] for e in sent) == sorted(statuses)
        assert sorted(e.details["status"] for e in queued) == sorted(statuses)


def test_every_order_s_shop_status_is_one_its_shop_maps(db_session: Session) -> None:
    orders = _small_demo(db_session)
    for order in orders:
        known = {mapping.shop_status for mapping in order.shop.status_mappings}
        assert order.shop_status in known, (order.number, order.shop_status)
    assert any(o.shop_status == "En cours de préparation" for o in orders)


def test_messages_are_sent_after_they_were_queued(db_session: Session) -> None:
    orders = _small_demo(db_session)
    messages = db_session.scalars(select(OutboxMessage)).all()
    assert {m.kind for m in messages} == {"status", "comment"}
    for message in messages:
        assert message.sent_at is not None and message.created_at < message.sent_at
    pushed = [c for o in orders for c in o.comments if c.pushed_at is not None]
    assert pushed and all(c.created_at < c.pushed_at for c in pushed if c.pushed_at)


def test_staff_act_on_weekdays_in_working_hours(db_session: Session) -> None:
    orders = _small_demo(db_session)
    # Squeezed against the horizon (10 minutes before midnight), a step is only kept in order.
    squeezed = HORIZON - dt.timedelta(minutes=10)
    acts = [
        event
        for order in orders
        for event in order.events
        if event.kind in ("payment.recorded", "order.held")
        or (event.kind == "order.validated" and not event.details.get("automatic"))
    ]
    assert len(acts) > 5
    for event in acts:
        local = event.occurred_at.astimezone(PARIS)
        if event.occurred_at < squeezed:
            assert local.weekday() < 5 and 9 <= local.hour < 18, (event.kind, local)


def test_the_demo_s_webhook_secrets_say_they_are_the_demo_s(db_session: Session) -> None:
    _small_demo(db_session)
    for shop in db_session.scalars(select(Shop)):
        assert re.fullmatch(r"demo-whsec-[a-z]{24}", shop.webhook_secret)


def test_business_customers_work_for_different_companies(db_session: Session) -> None:
    _small_demo(db_session)
    # One buyer in nine is a business; the ten company names repeat only past ten of them.
    companies = [c.company for c in db_session.scalars(select(Customer)) if c.company]
    assert len(companies) > 1 and len(set(companies)) == len(companies)
