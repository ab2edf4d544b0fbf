"""Load realistic order data at scale: a million orders into PostgreSQL in minutes.

    .venv/bin/python bench/datagen.py DATABASE_URL [--orders 100000] [--seed 13]
                                      [--end 2026-12-01] [--batch 5000]

Migrates the database (Alembic, so tables, indexes and constraints are the ones the app
runs on), creates four shops (Shopify, WooCommerce, PrestaShop, Magento 2) with the standard
shipping modes, then writes in batches, one transaction each, through COPY (psycopg's
`cursor.copy`) on PostgreSQL and `executemany` on SQLite. The indexes and constraints stay as
the migrations leave them; on PostgreSQL a superuser's load skips the foreign keys' per-row
triggers (`session_replication_role = replica`: the rows are consistent by construction, and
the keys still guard every later write), which doubles its rate. It writes:

- customers with French names and e-mails on the reserved example.* domains, about one for
  every 1.6 orders (repeat buyers), and a few guest orders without a customer;
- orders spread over the three years before `--end`, the newest with the highest ids, their
  states in the proportions of a working shop (old orders closed or cancelled, recent ones
  new, paid, in preparation or shipped; a few on hold, to map or to review);
- 1 to 10 lines each with real-looking SKUs and EANs, amounts to the cent that add up
  (prices include tax: total_gross = net + tax, grand_total = lines + shipping);
- payments (sales, part payments, refunds), shipments with their lines
  and parcels whose tracking numbers have the carrier's shape, issued invoices (numbered in
  gapless yearly series, the series counters set to the last number), comments and the
  timeline's events.

Everything comes from one `random.Random(seed)` and the end date: the same seed, size and
end date give the same rows. It prints rows/s and orders/s. The database must hold no
orders yet (a fresh one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import string
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from stdnum import ean  # noqa: E402

from web import search_index, state_counts  # noqa: E402
from web.db import make_engine  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import Base, NumberSeries, Order, Shop  # noqa: E402
from web.models.enums import (  # noqa: E402
    ActorType,
    CommentVisibility,
    CommercialState,
    DocumentKind,
    DocumentState,
    FulfilmentState,
    LineKind,
    Milestone,
    PaymentState,
    Platform,
    ShipmentOrigin,
    ShipmentState,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.models.orders import sort_names  # noqa: E402
from web.services.demo import (  # noqa: E402
    CANCEL_REASONS_REFUNDED,
    CANCEL_REASONS_UNPAID,
    CITIES,
    CUSTOMER_COMMENTS,
    EMAIL_DOMAINS,
    FIRST_NAMES,
    HOLD_REASONS,
    INTERNAL_COMMENTS,
    LAST_NAMES,
    STREETS,
    tracking_number,
)
from web.services.shipping_modes import ensure_default_shipping_modes  # noqa: E402

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
YEARS = 3
SHOP_KEY_PREFIX = "scale-"


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def split_gross(gross: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """A tax-inclusive amount as net + tax that add up exactly."""
    net = money(gross * 100 / (100 + rate))
    return net, gross - net


# --- The shops and what they sell ------------------------------------------------------------


@dataclass(frozen=True)
class ShopSpec:
    key: str
    platform: Platform
    name: str
    url: str
    weight: int  # share of the orders
    sku_prefix: str
    carriers: tuple[tuple[str, str, Decimal, int], ...]  # (mode code, label, price, weight)
    payments: tuple[tuple[str, int], ...]  # (method, weight)


SHOPS = (
    ShopSpec(
        SHOP_KEY_PREFIX + "shopify",
        Platform.SHOPIFY,
        "Atelier Lumière",
        "https://atelier-lumiere.myshopify.com",
        40,
        "AL",
        (
            ("colissimo", "Colissimo - Livraison à domicile", Decimal("6.90"), 35),
            ("mondial_relay", "Mondial Relay - Point Relais", Decimal("3.90"), 30),
            ("chronopost", "Chronopost - Livraison express 24h", Decimal("12.90"), 10),
            ("ups", "UPS Standard", Decimal("14.90"), 5),
        ),
        (("shopify_payments", 75), ("paypal", 22), ("manual", 3)),
    ),
    ShopSpec(
        SHOP_KEY_PREFIX + "woo",
        Platform.WOOCOMMERCE,
        "Le Jardin de Sophie",
        "https://jardin-de-sophie.example.com",
        25,
        "JS",
        (
            ("colissimo", "Colissimo", Decimal("7.50"), 40),
            ("colissimo_relais", "Colissimo Point Retrait", Decimal("5.50"), 30),
            ("gls", "GLS Chez vous +", Decimal("8.20"), 15),
        ),
        (("stripe", 70), ("paypal", 20), ("bacs", 7), ("cheque", 3)),
    ),
    ShopSpec(
        SHOP_KEY_PREFIX + "presta",
        Platform.PRESTASHOP,
        "La Belle Épicerie",
        "https://boutique.labelleepicerie.example.com",
        20,
        "BE",
        (
            ("colissimo", "Colissimo Domicile sans signature", Decimal("7.40"), 30),
            ("mondial_relay", "Mondial Relay Point Relais", Decimal("4.50"), 30),
            ("dpd", "DPD Predict", Decimal("7.90"), 10),
        ),
        (("Carte bancaire", 75), ("PayPal", 20), ("Virement bancaire", 5)),
    ),
    ShopSpec(
        SHOP_KEY_PREFIX + "magento",
        Platform.MAGENTO,
        "Maison Textile",
        "https://maison-textile.example.com",
        15,
        "MT",
        (
            ("colissimo", "Colissimo - Domicile", Decimal("6.50"), 40),
            ("dpd", "DPD Predict", Decimal("7.90"), 20),
            ("gls", "GLS", Decimal("6.90"), 15),
        ),
        (("checkmo", 5), ("braintree", 70), ("paypal_express", 25)),
    ),
)

# (product name, SKU code, VAT rate, price incl. tax, option label, [option values])
PRODUCTS = (
    ("Bougie parfumée 180 g", "BOU180", "20", "29.00", "Parfum", ("FIG", "CED", "LAV", "ORA")),
    ("Bougie parfumée 400 g", "BOU400", "20", "49.00", "Parfum", ("FIG", "CED", "LAV")),
    ("Vase en grès émaillé", "VASE", "20", "38.00", "Taille", ("S", "M", "L")),
    ("Tasses en grès (lot de 2)", "TAS2", "20", "32.00", "Émail", ("CEL", "BLC", "NOI")),
    ("Lampe à poser en céramique", "LDUNE", "20", "129.00", "Couleur", ("SAB", "TER")),
    ("Abat-jour en lin Ø 30 cm", "ABJ30", "20", "45.00", "Couleur", ("NAT", "OCR", "GRI")),
    ("Plaid en laine mérinos", "PLAID", "20", "89.00", "Couleur", ("ECR", "ANT", "MOU")),
    ("Coussin en lin lavé 45 × 45", "COUS45", "20", "35.00", "Couleur", ("NAT", "ROU", "VER")),
    ("Nappe en lin 160 × 250", "NAPPE", "20", "69.00", "Couleur", ("BLA", "BLE")),
    ("Torchons en coton bio (lot de 3)", "TORCH", "20", "24.00", "Motif", ("RAY", "CAR")),
    ("Confiture extra abricot 340 g", "CONF-ABR", "5.5", "6.90", "", ()),
    ("Confiture de figue violette 340 g", "CONF-FIG", "5.5", "7.20", "", ()),
    (
        "Huile d'olive vierge extra AOP Nyons",
        "HO-NYONS",
        "5.5",
        "18.50",
        "Contenance",
        ("50", "100"),
    ),
    ("Thé vert Sencha bio 100 g", "THE-SEN", "5.5", "12.90", "", ()),
    ("Tablette chocolat noir 70 % 100 g", "CHOC-MAD", "5.5", "5.90", "", ()),
    ("Miel de lavande 250 g", "MIEL-LAV", "5.5", "11.00", "", ()),
    ("Fleur de sel de Guérande 125 g", "SEL", "5.5", "6.20", "", ()),
    ("Graines de tomates anciennes", "GR-TOM", "20", "3.90", "Variété", ("CDB", "NOI", "ANA")),
    ("Sécateur de jardin forgé", "SECAT", "20", "39.00", "", ()),
    ("Arrosoir en zinc 5 L", "ARRO5", "20", "45.00", "", ()),
    ("Pot en terre cuite Ø 25", "POT25", "20", "19.00", "Finition", ("BRU", "BLA")),
    ("Tablier de jardinier en toile", "TABL", "20", "34.00", "Taille", ("S", "M", "L", "XL")),
)
SHOP_STATUSES = {
    CommercialState.NEW: "pending",
    CommercialState.VALIDATED: "processing",
    CommercialState.CLOSED: "completed",
    CommercialState.CANCELLED: "cancelled",
}
# Each carrier's tracking number shape (web/services/demo.py draws the same, digit by digit):
# (prefixes, digits, suffix).
TRACKING_SHAPES = {
    "colissimo": (("6A", "6C"), 11, ""),
    "colissimo_relais": (("6H",), 11, ""),
    "chronopost": (("XW", "XY", "XR"), 9, "FR"),
    "mondial_relay": (("",), 8, ""),
    "dpd": (("250",), 11, ""),
    "gls": (("",), 11, ""),
}
LINE_COUNT_WEIGHTS = (34, 24, 15, 10, 6, 4, 3, 2, 1, 1)  # 1 to 10 lines


@dataclass(frozen=True)
class Variant:
    sku: str
    ean: str
    name: str
    options: str
    price: Decimal
    rate: Decimal


def catalogue(spec: ShopSpec, index: int) -> tuple[Variant, ...]:
    variants = []
    for number, (name, code, rate, price, label, values) in enumerate(PRODUCTS):
        for value in values or ("",):
            body = f"37{index}{number:02d}{len(variants):07d}"[:12]
            variants.append(
                Variant(
                    sku=f"{spec.sku_prefix}-{code}-{value}"
                    if value
                    else f"{spec.sku_prefix}-{code}",
                    ean=body + ean.calc_check_digit(body),
                    name=name,
                    options=f"{label} : {value}" if value else "",
                    price=Decimal(price),
                    rate=Decimal(rate),
                )
            )
    return tuple(variants)


# --- Rows ------------------------------------------------------------------------------------

# The columns written per table, in the order of the generated tuples.
COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("id", "email", "first_name", "last_name", "company", "phone", "created_at"),
    "orders": (
        "id", "shop_id", "external_id", "number", "customer_id", "email", "placed_at",
        "shop_updated_at", "created_at", "updated_at", "currency", "prices_include_tax",
        "billing_address", "shipping_address", "shipping_label", "shipping_mode_id",
        "payment_method", "discount_codes", "discounts", "subtotal", "discount_total",
        "shipping_total", "shipping_tax", "tax_total", "grand_total", "payment_details_pending",
        "buyer_note", "marketplace_ref", "shop_status", "on_hold", "hold_reason",
        "needs_mapping", "mapping_issues", "needs_review", "commercial_state",
        "fulfilment_state", "payment_state", "last_pushed_milestone", "validated_at",
        "closed_at", "cancelled_at", "cancel_reason", "sort_last", "sort_first",
    ),
    "order_lines": (
        "id", "order_id", "position", "external_id", "kind", "sku", "ean", "name", "options",
        "quantity", "unit_price", "tax_rate", "discount_amount", "total_net", "tax_amount",
        "total_gross", "needs_shipping",
    ),
    "transactions": (
        "id", "order_id", "external_id", "method", "kind", "status", "source", "amount",
        "currency", "reference", "occurred_at",
    ),
    "shipments": (
        "id", "order_id", "number", "state", "shipping_mode_id", "created_at", "shipped_at",
        "delivered_at", "origin", "external_id", "cancel_reason", "pushed_at",
    ),
    "shipment_lines": ("id", "shipment_id", "order_line_id", "quantity"),
    "parcels": ("id", "shipment_id", "tracking_number", "tracking_url", "weight_kg", "created_at"),
    "documents": (
        "id", "order_id", "kind", "state", "series", "number", "reference", "issue_date",
        "currency", "total_net", "total_tax", "total_gross", "buyer_name", "reason",
        "cancels_invoice", "created_at", "issued_at",
    ),
    "comments": (
        "id", "order_id", "text", "visibility", "notify_customer", "created_at",
    ),
    "order_events": ("id", "order_id", "occurred_at", "actor_type", "kind", "details"),
}  # fmt: skip
ORDER_ID = COLUMNS["orders"].index("id")
TABLES = tuple(COLUMNS)


@dataclass
class Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in TABLES}
    )

    def size(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


@dataclass
class Context:
    shop_id: int
    spec: ShopSpec
    variants: tuple[Variant, ...]
    mode_ids: dict[str, int]
    mode_templates: dict[str, str]
    next_number: int
    next_external: int


class Generator:
    """Draws the rows of `count` orders placed between `start` and `end`, in id order."""

    def __init__(self, rng: random.Random, contexts: list[Context], count: int, end: dt.datetime):
        self.rng = rng
        self.contexts = contexts
        self.weights = [ctx.spec.weight for ctx in contexts]
        self.count = count
        self.end = end
        self.start = end - dt.timedelta(days=365 * YEARS)
        self.span = (self.end - self.start).total_seconds()
        self.next_id = dict.fromkeys(TABLES, 1)
        self.invoice_numbers: dict[str, int] = {}
        self.made_customers = 0

    def take(self, table: str) -> int:
        value = self.next_id[table]
        self.next_id[table] = value + 1
        return value

    # People ---------------------------------------------------------------------------------

    def person(self, number: int) -> tuple[str, str, str]:
        """The customer `number`'s first name, last name and e-mail: a pure function of it."""
        first = FIRST_NAMES[number % len(FIRST_NAMES)]
        last = LAST_NAMES[(number // len(FIRST_NAMES)) % len(LAST_NAMES)]
        local = f"{first}.{last}".lower().replace(" ", "-")
        for plain, accented in (("e", "éèêë"), ("a", "àâ"), ("i", "ïî"), ("o", "ô"), ("c", "ç")):
            for char in accented:
                local = local.replace(char, plain)
        domain = EMAIL_DOMAINS[number % len(EMAIL_DOMAINS)]
        return first, last, f"{local}.{number}@{domain}"

    def customer_row(self, batch: Batch, created: dt.datetime) -> int:
        self.made_customers += 1
        number = self.made_customers
        first, last, email = self.person(number)
        phone = "+3363998" + f"{number % 10000:04d}"
        row = (self.take("customers"), email, first, last, "", phone, created)
        batch.rows["customers"].append(row)
        return row[0]

    def address(self, first: str, last: str) -> dict[str, Any]:
        rng = self.rng
        city, postcode = rng.choice(CITIES)
        return {
            "first_name": first,
            "last_name": last,
            "company": "",
            "address1": f"{rng.randint(1, 180)} {rng.choice(STREETS)}",
            "address2": "",
            "postcode": postcode,
            "city": city,
            "country_code": "FR",
            "country": "France",
            "phone": "",
        }

    # One order ------------------------------------------------------------------------------

    def order(self, batch: Batch, index: int) -> None:
        rng = self.rng
        ctx = rng.choices(self.contexts, self.weights)[0]
        spec = ctx.spec
        # Ids grow with time: slot `index` of the three years, a little jitter inside it.
        offset = (index + rng.random()) * self.span / self.count
        placed = self.start + dt.timedelta(seconds=offset)
        age = (self.end - placed).total_seconds() / 86400
        order_id = self.take("orders")

        # A returning buyer (an existing customer), a new one, or a guest.
        draw = rng.random()
        if draw < 0.04:
            customer_id = None
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            email = f"invite.{order_id}@{rng.choice(EMAIL_DOMAINS)}"
        else:
            if draw < 0.40 and self.made_customers:
                number = rng.randint(1, self.made_customers)
                customer_id = number  # customers are numbered from 1 in creation order
            else:
                customer_id = self.customer_row(batch, placed)
                number = self.made_customers
            first, last, email = self.person(number)
        billing = self.address(first, last)
        record = None if customer_id is None else (first, last)  # the customer's names
        shipping = billing if rng.random() < 0.85 else self.address(first, last)

        mode, label, shipping_price, _weight = rng.choices(
            spec.carriers, [carrier[3] for carrier in spec.carriers]
        )[0]
        method = rng.choices(spec.payments, [payment[1] for payment in spec.payments])[0][0]

        # Lines.
        n_lines = rng.choices(range(1, 11), LINE_COUNT_WEIGHTS)[0]
        subtotal = tax_total = ZERO
        line_ids: list[tuple[int, int]] = []
        for position, variant in enumerate(rng.sample(ctx.variants, n_lines)):
            quantity = rng.choices((1, 2, 3, 4), (70, 20, 7, 3))[0]
            gross = variant.price * quantity
            net, tax = split_gross(gross, variant.rate)
            line_id = self.take("order_lines")
            line_ids.append((line_id, quantity))
            batch.rows["order_lines"].append(
                (
                    line_id, order_id, position, str(rng.randint(10**9, 10**10)),
                    LineKind.PRODUCT.value, variant.sku, variant.ean, variant.name,
                    variant.options, quantity, variant.price, variant.rate, ZERO, net, tax,
                    gross, True,
                )
            )  # fmt: skip
            subtotal += gross
            tax_total += tax
        if subtotal >= Decimal("79"):
            shipping_price = ZERO
        shipping_net, shipping_tax = split_gross(shipping_price, Decimal("20"))
        grand_total = subtotal + shipping_price
        tax_total += shipping_tax

        # States by age: the old orders are done, the recent ones are being worked.
        commercial, fulfilment, payment, paid = self.states(age)
        on_hold = commercial == CommercialState.VALIDATED and age < 20 and rng.random() < 0.02
        needs_mapping = age < 30 and rng.random() < 0.004
        needs_review = age < 30 and rng.random() < 0.003
        received = placed + dt.timedelta(seconds=rng.randint(2, 90))
        validated_at = (
            placed + dt.timedelta(hours=rng.uniform(0.2, 20))
            if commercial in (CommercialState.VALIDATED, CommercialState.CLOSED)
            else None
        )
        closed_at = (
            placed + dt.timedelta(days=rng.uniform(6, 14))
            if commercial == CommercialState.CLOSED
            else None
        )
        cancelled_at = (
            placed + dt.timedelta(hours=rng.uniform(1, 120))
            if commercial == CommercialState.CANCELLED
            else None
        )
        cancel_reason = ""
        if cancelled_at is not None:
            reasons = CANCEL_REASONS_REFUNDED if paid else CANCEL_REASONS_UNPAID
            cancel_reason = rng.choice(reasons)
        updated = max(t for t in (received, validated_at, closed_at, cancelled_at) if t)
        if updated > self.end:
            updated = self.end

        number, external = self.identify(ctx)
        events = [
            (received, ActorType.SHOP, "order.received", {"number": number, "shop": spec.name})
        ]

        # Payments.
        if paid:
            tx_at = placed + dt.timedelta(seconds=rng.randint(5, 3600))
            amount = (
                grand_total if payment != PaymentState.PARTIALLY_PAID else money(grand_total / 2)
            )
            self.transaction(batch, order_id, method, TransactionKind.SALE, amount, tx_at)
            events.append(
                (
                    tx_at,
                    ActorType.SHOP,
                    "payment.sale",
                    {"amount": str(amount), "currency": "EUR", "status": "success"},
                )
            )
            if payment in (PaymentState.REFUNDED, PaymentState.PARTIALLY_REFUNDED):
                refund = grand_total if payment == PaymentState.REFUNDED else money(grand_total / 3)
                refund_at = (cancelled_at or placed) + dt.timedelta(hours=rng.uniform(1, 48))
                self.transaction(batch, order_id, method, TransactionKind.REFUND, refund, refund_at)

        # Shipments and parcels.
        if fulfilment in (
            FulfilmentState.PARTIALLY_SHIPPED,
            FulfilmentState.SHIPPED,
            FulfilmentState.DELIVERED,
        ):
            shipped_at = (validated_at or placed) + dt.timedelta(hours=rng.uniform(2, 48))
            delivered_at = (
                shipped_at + dt.timedelta(days=rng.uniform(1, 4))
                if fulfilment == FulfilmentState.DELIVERED
                else None
            )
            shipped_lines = (
                line_ids[: max(1, len(line_ids) // 2)]
                if fulfilment == FulfilmentState.PARTIALLY_SHIPPED and len(line_ids) > 1
                else line_ids
            )
            self.shipment(batch, ctx, order_id, mode, shipped_lines, shipped_at, delivered_at)
            events.append((shipped_at, ActorType.SYSTEM, "order.shipped", {}))
            if delivered_at is not None:
                events.append((delivered_at, ActorType.SYSTEM, "order.delivered", {}))
        if validated_at is not None:
            events.append((validated_at, ActorType.SYSTEM, "order.preparation_started", {}))
        if closed_at is not None:
            events.append((closed_at, ActorType.SYSTEM, "order.closed", {}))
            self.invoice(
                batch, order_id, closed_at, subtotal, shipping_price, tax_total, f"{first} {last}"
            )
        if cancelled_at is not None:
            events.append(
                (cancelled_at, ActorType.SHOP, "order.cancelled", {"reason": cancel_reason})
            )
        if on_hold:
            events.append((updated, ActorType.SYSTEM, "order.held", {"reason": HOLD_REASONS[0]}))
        if rng.random() < 0.12:
            visible = rng.random() < 0.5
            text = rng.choice(CUSTOMER_COMMENTS if visible else INTERNAL_COMMENTS)
            visibility = CommentVisibility.CUSTOMER if visible else CommentVisibility.INTERNAL
            batch.rows["comments"].append(
                (self.take("comments"), order_id, text, visibility.value, False, updated)
            )
        for at, actor, kind, details in events:
            batch.rows["order_events"].append(
                (self.take("order_events"), order_id, at, actor.value, kind, details)
            )

        milestone = {
            CommercialState.CLOSED: Milestone.COMPLETED,
            CommercialState.CANCELLED: Milestone.CANCELLED,
        }.get(commercial)
        batch.rows["orders"].append(
            (
                order_id, ctx.shop_id, external, number, customer_id, email, placed,
                updated, received, updated, "EUR", True, billing, shipping, label,
                ctx.mode_ids[mode], method, [], [], subtotal, ZERO, shipping_price,
                shipping_tax, tax_total, grand_total, False, "", "", self.shop_status(commercial),
                on_hold, HOLD_REASONS[0] if on_hold else "", needs_mapping, [], needs_review,
                commercial.value, fulfilment.value, payment.value,
                milestone.value if milestone else None, validated_at, closed_at, cancelled_at,
                cancel_reason, *sort_names(billing, record, email),
            )
        )  # fmt: skip

    def states(self, age: float) -> tuple[CommercialState, FulfilmentState, PaymentState, bool]:
        """Commercial, fulfilment and payment states for an order `age` days old, and
        whether a payment was received."""
        draw = self.rng.random()
        c, f, p = CommercialState, FulfilmentState, PaymentState
        if age > 21:
            if draw < 0.86:
                return c.CLOSED, f.DELIVERED, p.PAID, True
            if draw < 0.90:
                return c.CLOSED, f.DELIVERED, p.PARTIALLY_REFUNDED, True
            if draw < 0.94:
                return c.CANCELLED, f.UNFULFILLED, p.UNPAID, False
            if draw < 0.97:
                return c.CANCELLED, f.UNFULFILLED, p.REFUNDED, True
            return c.VALIDATED, f.SHIPPED, p.PAID, True
        if age > 3:
            if draw < 0.35:
                return c.CLOSED, f.DELIVERED, p.PAID, True
            if draw < 0.75:
                return c.VALIDATED, f.SHIPPED, p.PAID, True
            if draw < 0.82:
                return c.VALIDATED, f.DELIVERED, p.PAID, True
            if draw < 0.88:
                return c.NEW, f.UNFULFILLED, p.UNPAID, False
            if draw < 0.94:
                return c.CANCELLED, f.UNFULFILLED, p.UNPAID, False
            return c.VALIDATED, f.PARTIALLY_SHIPPED, p.PAID, True
        if draw < 0.25:
            return c.NEW, f.UNFULFILLED, p.UNPAID, False
        if draw < 0.35:
            return c.NEW, f.UNFULFILLED, p.PAID, True
        if draw < 0.60:
            return c.VALIDATED, f.UNFULFILLED, p.PAID, True
        if draw < 0.75:
            return c.VALIDATED, f.IN_PREPARATION, p.PAID, True
        if draw < 0.80:
            return c.VALIDATED, f.PARTIALLY_SHIPPED, p.PAID, True
        if draw < 0.83:
            return c.NEW, f.UNFULFILLED, p.PARTIALLY_PAID, True
        if draw < 0.86:
            return c.CANCELLED, f.UNFULFILLED, p.UNPAID, False
        return c.VALIDATED, f.SHIPPED, p.PAID, True

    @staticmethod
    def shop_status(commercial: CommercialState) -> str:
        return SHOP_STATUSES[commercial]

    def tracking(self, mode: str) -> str:
        """A tracking number in the carrier's shape (UPS's check digit: the demo's own)."""
        shape = TRACKING_SHAPES.get(mode)
        if shape is None:
            return tracking_number(self.rng, mode)
        prefixes, digits, suffix = shape
        number = self.rng.randrange(10**digits)
        return f"{self.rng.choice(prefixes)}{number:0{digits}d}{suffix}"

    def identify(self, ctx: Context) -> tuple[str, str]:
        """The order's number and external id, each platform's way."""
        rng = self.rng
        number_value = ctx.next_number
        ctx.next_number += 1
        ctx.next_external += rng.randint(1, 3)
        platform = ctx.spec.platform
        if platform == Platform.SHOPIFY:
            ctx.next_external += rng.randint(10**5, 9 * 10**6)
            return f"#{number_value}", str(ctx.next_external)
        if platform == Platform.PRESTASHOP:
            reference = "".join(rng.choice(string.ascii_uppercase) for _ in range(9))
            return reference, str(ctx.next_external)
        if platform == Platform.MAGENTO:
            return f"{number_value:09d}", str(ctx.next_external)
        return str(ctx.next_external), str(ctx.next_external)

    def transaction(
        self,
        batch: Batch,
        order_id: int,
        method: str,
        kind: TransactionKind,
        amount: Decimal,
        at: dt.datetime,
    ) -> None:
        tx_id = self.take("transactions")
        source = TransactionSource.SHOP
        if method in ("manual", "bacs", "Virement bancaire", "checkmo"):
            source = TransactionSource.BANK_TRANSFER
        elif method == "cheque":
            source = TransactionSource.CHEQUE
        batch.rows["transactions"].append(
            (
                tx_id, order_id, f"tx-{tx_id}", method, kind.value,
                TransactionStatus.SUCCESS.value, source.value, amount, "EUR", "", at,
            )
        )  # fmt: skip

    def shipment(
        self,
        batch: Batch,
        ctx: Context,
        order_id: int,
        mode: str,
        lines: Sequence[tuple[int, int]],
        shipped_at: dt.datetime,
        delivered_at: dt.datetime | None,
    ) -> None:
        rng = self.rng
        shipment_id = self.take("shipments")
        state = ShipmentState.DELIVERED if delivered_at else ShipmentState.SHIPPED
        batch.rows["shipments"].append(
            (
                shipment_id, order_id, f"EXP-{shipment_id:08d}", state.value, ctx.mode_ids[mode],
                shipped_at, shipped_at, delivered_at, ShipmentOrigin.COMPTOIR.value, None, "",
                shipped_at,
            )
        )  # fmt: skip
        for line_id, quantity in lines:
            batch.rows["shipment_lines"].append(
                (self.take("shipment_lines"), shipment_id, line_id, quantity)
            )
        for _ in range(1 if rng.random() < 0.92 else 2):
            tracking = self.tracking(mode)
            url = ctx.mode_templates[mode].replace("{tracking}", tracking)
            weight = Decimal(rng.randint(150, 9000)) / 1000
            batch.rows["parcels"].append(
                (self.take("parcels"), shipment_id, tracking, url, weight, shipped_at)
            )

    def invoice(
        self,
        batch: Batch,
        order_id: int,
        at: dt.datetime,
        gross: Decimal,
        shipping: Decimal,
        tax: Decimal,
        buyer: str,
    ) -> None:
        series = f"FA-{at.year}"
        number = self.invoice_numbers.get(series, 0) + 1
        self.invoice_numbers[series] = number
        total_gross = gross + shipping
        batch.rows["documents"].append(
            (
                self.take("documents"), order_id, DocumentKind.INVOICE.value,
                DocumentState.ISSUED.value, series, number, f"{series}-{number:06d}", at.date(),
                "EUR", total_gross - tax, tax, total_gross, buyer, "", False, at, at,
            )
        )  # fmt: skip


# --- Writers ---------------------------------------------------------------------------------


class Writer:
    """Writes a batch of rows per table in one transaction: COPY on PostgreSQL, executemany
    with the models' own bind conversions on SQLite."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.dialect = engine.dialect
        self.postgres = engine.dialect.name == "postgresql"
        self.raw = engine.raw_connection()
        self.triggers_skipped = self.postgres and self._skip_triggers()
        tables = Base.metadata.tables
        self.converters: dict[str, list[Callable[[Any], Any] | None]] = {}
        for table, columns in COLUMNS.items():
            converters: list[Callable[[Any], Any] | None] = []
            for name in columns:
                column_type = tables[table].c[name].type
                if self.postgres:
                    is_json = column_type.__class__.__name__ == "JSON"
                    converters.append(json.dumps if is_json else None)
                else:
                    converters.append(column_type._cached_bind_processor(self.dialect))
            self.converters[table] = converters

    def _skip_triggers(self) -> bool:
        """Skip the foreign keys' per-row checks (their triggers) while loading rows that are
        consistent by construction: a superuser may (session_replication_role); the keys stay
        declared, and checked for every later write. Any other role loads with the checks."""
        cursor = self.raw.cursor()
        try:
            cursor.execute("SET session_replication_role = replica")
            self.raw.commit()
            return True
        except Exception:  # noqa: BLE001 - not a superuser: load with the checks
            self.raw.rollback()
            return False
        finally:
            cursor.close()

    def write(self, batch: Batch) -> None:
        cursor = self.raw.cursor()
        if not self.postgres:
            cursor.execute("BEGIN")  # the app's connections leave pysqlite in autocommit
        try:
            for table in TABLES:
                rows = batch.rows[table]
                if rows:
                    self._write(cursor, table, self._converted(table, rows))
            if self.triggers_skipped and batch.rows["orders"]:
                # The search document's triggers were skipped with the keys' checks.
                ids = [row[ORDER_ID] for row in batch.rows["orders"]]
                where = "o.id BETWEEN %s AND %s"
                cursor.execute(search_index.refresh_sql(where), (min(ids), max(ids)))
            self.raw.commit()
        except BaseException:
            self.raw.rollback()
            raise
        finally:
            cursor.close()

    def _converted(self, table: str, rows: list[tuple[Any, ...]]) -> Iterable[tuple[Any, ...]]:
        converters = self.converters[table]
        active = [(i, f) for i, f in enumerate(converters) if f is not None]
        if not active:
            return rows
        converted = []
        for row in rows:
            values = list(row)
            for i, convert in active:
                if values[i] is not None:
                    values[i] = convert(values[i])
            converted.append(tuple(values))
        return converted

    def _write(self, cursor: Any, table: str, rows: Iterable[tuple[Any, ...]]) -> None:
        columns = COLUMNS[table]
        if self.postgres:
            with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            marks = ", ".join("?" * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    def finish(self) -> None:
        """Move PostgreSQL's sequences past the ids written, refresh the planner's figures."""
        cursor = self.raw.cursor()
        if self.triggers_skipped:
            cursor.execute("SET session_replication_role = DEFAULT")
        if self.postgres:
            for table in TABLES:
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                )
        # One row per combination of states (the load's triggers skipped or row by row).
        self.raw.commit()
        with self.engine.begin() as connection:
            state_counts.rebuild(connection)
        cursor.execute("ANALYZE")
        self.raw.commit()
        cursor.close()
        self.raw.close()


def check_columns() -> None:
    """Every column the schema requires is written (COPY applies no Python defaults)."""
    for table, columns in COLUMNS.items():
        for column in Base.metadata.tables[table].c:
            required = not column.nullable and column.server_default is None
            if required and column.name not in columns and not column.primary_key:
                raise SystemExit(f"datagen writes no {table}.{column.name}, which is required")


# --- Loading ---------------------------------------------------------------------------------


@dataclass
class LoadResult:
    orders: int
    rows: dict[str, int]
    seconds: float
    cpu_seconds: float  # this process's CPU: generating, converting, sending (not the server's)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())


def setup_shops(session: Session) -> list[Context]:
    """The four shops and the shipping modes (the ORM: a handful of rows)."""
    present = session.scalar(select(func.count()).select_from(Order))
    if present:
        raise SystemExit(f"the database already holds {present} orders: load into a fresh one")
    modes = ensure_default_shipping_modes(session)
    shop_ids = []
    for spec in SHOPS:
        shop = Shop(key=spec.key, platform=spec.platform, name=spec.name, base_url=spec.url)
        session.add(shop)
        session.flush()
        shop_ids.append(shop.id)
    templates = {code: mode.tracking_url_template for code, mode in modes.items()}
    return contexts(shop_ids, {code: mode.id for code, mode in modes.items()}, templates)


def contexts(
    shop_ids: Sequence[int], mode_ids: dict[str, int], templates: dict[str, str]
) -> list[Context]:
    """What the generator needs to know of each shop: its id, catalogue and carriers' ids."""
    return [
        Context(
            shop_id=shop_id,
            spec=spec,
            variants=catalogue(spec, index),
            mode_ids=mode_ids,
            mode_templates=templates,
            next_number=1001 if spec.platform == Platform.SHOPIFY else 1,
            next_external=100000 * (index + 1),
        )
        for index, (spec, shop_id) in enumerate(zip(SHOPS, shop_ids, strict=True))
    ]


def batches(generator: Generator, batch_orders: int) -> Iterator[Batch]:
    """The generator's orders, `batch_orders` at a time."""
    for first in range(0, generator.count, batch_orders):
        batch = Batch()
        for index in range(first, min(first + batch_orders, generator.count)):
            generator.order(batch, index)
        yield batch


def load(
    url: str,
    orders: int,
    seed: int = 13,
    end: dt.date | None = None,
    batch_orders: int = 5000,
    progress: Callable[[str], None] | None = None,
) -> LoadResult:
    """Migrate `url` and load `orders` generated orders with everything around them."""
    check_columns()
    upgrade(url)
    engine = make_engine(url)
    end_day = end or dt.datetime.now(dt.UTC).date()
    end_time = dt.datetime.combine(end_day, dt.time(), tzinfo=dt.UTC)
    try:
        with Session(engine) as session, session.begin():
            contexts = setup_shops(session)
        generator = Generator(random.Random(seed), contexts, orders, end_time)
        writer = Writer(engine)
        started = time.perf_counter()
        cpu_started = time.process_time()
        counts = dict.fromkeys(TABLES, 0)
        for batch in batches(generator, batch_orders):
            writer.write(batch)
            for table, rows in batch.rows.items():
                counts[table] += len(rows)
            if progress is not None:
                elapsed = time.perf_counter() - started
                done = generator.next_id["orders"] - 1
                progress(f"{done} orders, {sum(counts.values())} rows, {elapsed:.1f} s")
        writer.finish()
        with Session(engine) as session, session.begin():
            for series, last in generator.invoice_numbers.items():
                session.add(
                    NumberSeries(
                        name=series,
                        kind=DocumentKind.INVOICE,
                        last_number=last,
                    )
                )
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    finally:
        engine.dispose()
    return LoadResult(orders, counts, seconds, cpu_seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database_url")
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=None,
        help="the last day of the three years (default: today, UTC)",
    )
    parser.add_argument("--batch", type=int, default=5000, help="orders per transaction")
    args = parser.parse_args()
    result = load(args.database_url, args.orders, args.seed, args.end, args.batch, print)
    for table, rows in result.rows.items():
        print(f"{table:<16} {rows:>12,}")
    print(
        f"loaded {result.orders:,} orders, {result.total_rows:,} rows in {result.seconds:.1f} s: "
        f"{result.total_rows / result.seconds:,.0f} rows/s, "
        f"{result.orders / result.seconds:,.0f} orders/s "
        f"(this process's CPU: {result.cpu_seconds:.1f} s)"
    )


if __name__ == "__main__":
    main()
