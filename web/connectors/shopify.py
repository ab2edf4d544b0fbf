"""Shopify through the REST Admin API, version 2025-01.

Vendor pages:
- Order resource and list: https://shopify.dev/docs/api/admin-rest/2025-01/resources/order
- Transactions: https://shopify.dev/docs/api/admin-rest/2025-01/resources/transaction
- Shop: https://shopify.dev/docs/api/admin-rest/2025-01/resources/shop
- Shipping zones: https://shopify.dev/docs/api/admin-rest/2025-01/resources/shippingzone
- Webhook subscriptions: https://shopify.dev/docs/api/admin-rest/2025-01/resources/webhook
- Cursor pagination (Link header, page_info):
  https://shopify.dev/docs/api/admin-rest/usage/pagination
- Webhook HTTPS delivery and HMAC check:
  https://shopify.dev/docs/apps/build/webhooks/subscribe/https
- Rate limits (429 + Retry-After; X-Shopify-Shop-Api-Call-Limit "used/capacity" on every
  answer): https://shopify.dev/docs/api/usage/rate-limits
- Order cancel / close / update (write-back), same Order resource page; fulfilled and
  partly fulfilled orders cannot be cancelled:
  https://shopify.dev/changelog/fulfilled-and-partially-fulfilled-orders-can-no-longer-be-canceled-by-using-the-order-resource
- Fulfillments (shipments) and fulfillment orders, REST; "each fulfillment supports a
  single tracking number":
  https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillment
  https://shopify.dev/docs/api/admin-rest/2025-01/resources/fulfillmentorder
- Several tracking numbers on one fulfillment, GraphQL (FulfillmentTrackingInput numbers,
  urls): https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/fulfillmentCreate and
  https://shopify.dev/docs/api/admin-graphql/2025-01/mutations/fulfillmentTrackingInfoUpdate

What the payload cannot tell us, and how we cope:
- Order statuses are not merchant-defined: ShopOrder.status is the order's
  `financial_status` ("pending", "authorized", "paid", ...), or "cancelled" when
  `cancelled_at` is set.
- There is no payment-method catalogue: list_payment_methods() collects the
  `payment_gateway_names` of recent orders.
- Line items carry no EAN/barcode (it lives on the product variant), so ShopLine.ean is "".
- Addresses have no VAT number or relay-point field: both are read from the order's
  `note_attributes` (cart attributes that VAT and pickup-point apps fill), by name.
- Bundles (2025-01+): the components are the REST order's lines, each with the
  `sales_line_item_group_id` of its bundle; the bundle itself is not a line. They are folded
  into one line per bundle ("bundle:<group id>") carrying the components' money, named,
  counted and priced from the order's `line_item_groups` entry when the payload has one
  (else quantity 1 and the components' titles joined), the components after it with their
  quantities to pick and no money. A bundle whose components have several tax rates shows
  their overall rate (tax / net).
- Lines: unit prices are Shopify's `price` as given (the order's basis: tax included when
  `taxes_included`, before tax otherwise); `requires_shipping: false` and gift cards need
  no shipping. An order whose lines carry no `tax_lines` while the order has some (tax
  computed on the order only) gets the order's line tax (its `tax_lines` less the
  shipping's) spread over its taxable lines in proportion to their amount after
  discounts, to the cent, summing to it exactly, at the order tax line's rate (several:
  their added-up rate for stacked taxes, else the overall rate the amounts give).
- Discounts: one per `discount_applications[]` entry, its amount the sum of the line and
  shipping `discount_allocations` that point at it; a code of `discount_codes[]` without
  one keeps that entry's `amount`, even when `total_discounts` says 0.00 (Shopify's own
  sample order does: its TENOFF 10.00 is not counted in its totals, which the
  reconciliation then flags); `total_discounts` beyond the named discounts is kept as a
  discount without a code. Amounts are before tax in a tax-excluded shop. When
  `total_discounts` leaves a shipping discount out, shipping_total is after it.
- The order payload holds no transactions: ShopOrder.transactions is None and
  fetch_transactions() reads them.
- Shipments made in the shop are the order's `fulfillments`: "success" ones shipped,
  "cancelled"/"error"/"failure" ones undone, "pending"/"open" ones (waiting on a
  fulfillment service) left out until they ship. A fulfillment's lines are the order's line
  item ids; a bundle's fulfillment names its components, which Comptoir does not ship on
  their own, so it is not taken in as a shipment of the bundle.

What Shopify cannot receive (write-back):
- A status of our choosing: only the actions "cancel" and "close" of the milestone mapping
  are pushed; any other value is skipped with a reason.
- A free-text cancellation reason: REST cancel takes `reason` from a fixed list; we send
  "other" and the text stays in Comptoir.
- A comment, private or for the buyer: there is no comment API. Comments are appended to
  the staff-only order `note`, never shown or e-mailed to the buyer. The note keeps no
  dates, so each line carries Comptoir's reference of the comment ("Comptoir [c123]: …").
- A shipment's parcels one by one: a fulfillment holds the shipment's lines and all its
  tracking numbers under one carrier (`company`), with no weight and no link between a
  number and the items in that parcel. A shipment whose lines sit at several locations
  becomes one fulfillment per location, each with all the numbers.
- Tracking numbers taken away: Shopify keeps a fulfillment's numbers once given, and a
  fulfillment cancelled in Shopify takes no more.
- A bundle's shipment (the bundle is a Comptoir line; Shopify fulfils its components):
  refused with the reason, nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from web.connectors.base import (
    CENT,
    BadPayload,
    BucketReading,
    ConnectorError,
    NotFoundAtShop,
    OrderBatch,
    PaymentSummary,
    PermanentError,
    PushOutcome,
    RateLimited,
    RetryableError,
    ShipmentToPush,
    ShopAddress,
    ShopChoice,
    ShopCustomer,
    ShopDiscount,
    ShopLine,
    ShopOrder,
    ShopParcel,
    ShopRefund,
    ShopSettings,
    ShopShipment,
    ShopTransaction,
    TopicMismatch,
    WebhookDelivery,
    check_body_signature,
    may_be_ours,
    money,
    numeric_order_id,
    price,
    rate,
    reject,
    same_text,
    to_utc,
)
from web.connectors.http import ShopHttp
from web.connectors.jsonread import array as _list
from web.connectors.jsonread import digits_id
from web.connectors.jsonread import loads as _loads
from web.connectors.jsonread import obj as _obj
from web.connectors.jsonread import opt_obj as _opt_obj
from web.connectors.jsonread import text as _text
from web.models.enums import LineKind, TransactionKind, TransactionStatus

STATUS_LABELS: dict[str, str] = {
    "pending": "Pending payment",
    "authorized": "Payment authorized",
    "partially_paid": "Partially paid",
    "paid": "Paid",
    "partially_refunded": "Partially refunded",
    "refunded": "Refunded",
    "voided": "Voided (authorization cancelled)",
    "expired": "Authorization expired",
    "cancelled": "Cancelled",
}

GATEWAY_LABELS: dict[str, str] = {
    "shopify_payments": "Shopify Payments",
    "paypal": "PayPal",
    "manual": "Manual payment",
    "bogus": "Bogus (test gateway)",
    "gift_card": "Gift card",
    "cash": "Cash",
}

TRANSACTION_KINDS: dict[str, TransactionKind] = {
    "authorization": TransactionKind.AUTHORIZATION,
    "emv_authorization": TransactionKind.AUTHORIZATION,
    "capture": TransactionKind.CAPTURE,
    "sale": TransactionKind.SALE,
    "refund": TransactionKind.REFUND,
    "void": TransactionKind.VOID,
    # Cash handed back at a point of sale: money leaving the merchant, like a refund.
    "change": TransactionKind.REFUND,
}

TRANSACTION_STATUSES: dict[str, TransactionStatus] = {
    "success": TransactionStatus.SUCCESS,
    "pending": TransactionStatus.PENDING,
    "failure": TransactionStatus.FAILURE,
    "error": TransactionStatus.FAILURE,
}

# Cart attributes that VAT-number and pickup-point apps commonly write (compared casefolded).
VAT_ATTRIBUTE_WORDS = ("vat", "tva", "tax id", "tax number", "ust id", "nif")
RELAY_ATTRIBUTE_WORDS = ("relay", "relais", "pickup point", "point retrait", "pudo", "locker")

# The actions the milestone mapping may name for Shopify (see DEFAULT_MILESTONES).
STATUS_ACTIONS = ("cancel", "close")
NO_STATUSES = "Shopify has no merchant-defined order statuses; it follows fulfilments and payments."
# Shopify validates notes to 5,000 characters (documented for cart notes; assumed for the
# order note the Admin API writes).
NOTE_LIMIT = 5000
# Marks the note lines Comptoir wrote ("Comptoir [c123]: …", or "Comptoir: …" for a comment
# without a reference), so the buyer's own note is never trimmed.
NOTE_PREFIX = "Comptoir: "
_OUR_LINE = re.compile(r"Comptoir(?: \[[^\]\n]*\])?: ")

# What each topic's body is (https://shopify.dev/docs/api/webhooks): the REST Order, a
# Refund naming its `order_id`, or the deleted order's `{"id": …}` alone. The HMAC covers the
# body, not the topic header, so a body under another kind's topic is refused.
ORDER_BODY, REFUND_BODY, DELETED_BODY = "an order", "a refund", "a deleted order's id"
TOPIC_BODIES: dict[str, str] = {
    "orders/create": ORDER_BODY,
    "orders/updated": ORDER_BODY,
    "orders/paid": ORDER_BODY,
    "orders/cancelled": ORDER_BODY,
    "orders/fulfilled": ORDER_BODY,
    "orders/partially_fulfilled": ORDER_BODY,
    "orders/delete": DELETED_BODY,
    "refunds/create": REFUND_BODY,
}

T = TypeVar("T")


# --- Small typed readers: every failure names the field -----------------------------------


def _id(value: Any, field: str) -> str:
    return digits_id(value, field, "Shopify")


def _opt_id(value: Any, field: str) -> str | None:
    return None if value is None else _id(value, field)


def _bool(value: Any, field: str, default: bool = False) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadPayload(f"{field}: expected true or false, got {value!r}")
    return value


def _int(value: Any, field: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 10**9:
        return value
    raise BadPayload(f"{field}: {value!r} is not a quantity")


def _when(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not value:
        raise BadPayload(f"{field}: expected a timestamp, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadPayload(f"{field}: {value!r} is not a timestamp") from exc
    if parsed.tzinfo is None:
        raise BadPayload(f"{field}: {value!r} has no UTC offset")
    try:
        return to_utc(parsed)
    except (OverflowError, ValueError) as exc:
        raise BadPayload(f"{field}: {value!r} is out of range") from exc


def _opt_when(value: Any, field: str) -> dt.datetime | None:
    return None if value is None or value == "" else _when(value, field)


def _money(value: Any, field: str) -> Decimal:
    if isinstance(value, dict | list):
        raise BadPayload(f"{field}: expected an amount, got {type(value).__name__}")
    try:
        return money(value, field)
    except ArithmeticError as exc:  # an amount too large to keep to the cent
        raise BadPayload(f"{field}: {value!r} is not a usable amount") from exc


def _fraction(value: Any, field: str) -> Decimal:
    """A Shopify tax rate is a fraction (0.2 for 20 %)."""
    if value is None or value == "":
        return Decimal("0")
    if isinstance(value, bool | dict | list):
        raise BadPayload(f"{field}: {value!r} is not a rate")
    try:
        parsed = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise BadPayload(f"{field}: {value!r} is not a rate") from exc
    if not parsed.is_finite() or parsed < 0 or parsed > 1:
        raise BadPayload(f"{field}: {value!r} is not a rate")
    return parsed


def _guarded(field: str, step: Callable[..., T], *args: Any) -> T:
    """Run one parsing step; arithmetic or type surprises become BadPayload naming field."""
    try:
        return step(*args)
    except BadPayload:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise BadPayload(f"{field}: {type(exc).__name__}: {exc}") from exc


def _body_kind(data: Mapping[str, Any], topic: str) -> str:
    """Which of the bodies Shopify signs this is: an order, a refund or a deletion."""
    if set(data) == {"id"}:
        return DELETED_BODY
    if "line_items" in data and "order_id" not in data:
        return ORDER_BODY
    if "order_id" in data and "line_items" not in data:
        return REFUND_BODY
    raise BadPayload(f"{topic} body: neither an order, a refund nor a deleted order's id")


def _header(headers: Mapping[str, str], name: str) -> str:
    """A Shopify header: the newer `Shopify-Name` form first, then `X-Shopify-Name`."""
    wanted = (f"shopify-{name}".lower(), f"x-shopify-{name}".lower())
    found = {}
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() in wanted and isinstance(value, str):
            found[key.lower()] = value.strip()
    return next((found[key] for key in wanted if found.get(key)), "")


_CALL_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def call_limit(headers: Mapping[str, str]) -> BucketReading | None:
    """Read X-Shopify-Shop-Api-Call-Limit ("32/40"): the bucket's level after this call."""
    match = _CALL_LIMIT.match(_header(headers, "Shop-Api-Call-Limit"))
    if match is None or int(match.group(2)) <= 0:
        return None
    return BucketReading(used=int(match.group(1)), capacity=int(match.group(2)))


def _page_info(page: str) -> str:
    """Accept either a bare page_info token or the whole `next` URL of a Link header."""
    if "page_info=" in page:
        values = parse_qs(urlsplit(page).query).get("page_info") or parse_qs(page).get("page_info")
        if values:
            return values[0]
    return page


def _utc_param(value: dt.datetime) -> str:
    # Floored to the second: updated_at_min is inclusive, so nothing is lost.
    return to_utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- The connector ------------------------------------------------------------------------


class ShopifyConnector:
    """Orders in, catalogue look-ups and webhook subscriptions for one Shopify shop."""

    platform: ClassVar[str] = "shopify"
    api_version: ClassVar[str] = "2025-01"
    webhook_topics: ClassVar[tuple[str, ...]] = (
        "orders/create",
        "orders/updated",
        "orders/paid",
        "orders/cancelled",
        "refunds/create",
    )
    has_webhooks: ClassVar[bool] = True
    page_size: ClassVar[int] = 250

    def __init__(
        self, settings: ShopSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        base_url = settings.base_url.strip()
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        self.http = ShopHttp(
            base_url,
            timeout=settings.timeout,
            headers={
                "X-Shopify-Access-Token": settings.api_key,
                "Accept": "application/json",
            },
            transport=transport,
            pacer=settings.pacer,
            read_bucket=call_limit,
        )
        self.limit = self._page_size(settings.extra.get("page_size"))

    def _page_size(self, configured: str | None) -> int:
        if configured and configured.isdigit():
            return max(1, min(self.page_size, int(configured)))
        return self.page_size

    def _path(self, resource: str) -> str:
        return f"/admin/api/{self.api_version}/{resource}"

    def _get(self, resource: str, params: Mapping[str, str | int] | None = None) -> Any:
        path = self._path(resource)
        response = self.http.request("GET", path, params=params)
        return _loads(response.content, f"GET {path}")

    def close(self) -> None:
        self.http.close()

    # --- webhooks ---------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check X-Shopify-Hmac-Sha256 = base64(HMAC-SHA256(secret, raw body))."""
        received = _header(headers, "Hmac-Sha256")
        check_body_signature(self.settings.webhook_secret, body, received, "X-Shopify-Hmac-Sha256")

    def is_ping(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """A "Send test notification" delivery (X-Shopify-Test: true) carries a fake order."""
        return _header(headers, "Test").lower() == "true"

    def describe_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Topic from X-Shopify-Topic, dedupe key X-Shopify-Webhook-Id, order id from the body.

        The body must be what the topic carries (TOPIC_BODIES). Its content key names it
        whatever the headers say: `order:{id}:{updated_at}`, `refund:{id}`, `deleted:{id}`.
        """
        topic = _header(headers, "Topic")
        if not topic:
            raise BadPayload("X-Shopify-Topic header is missing")
        dedupe_key = _header(headers, "Webhook-Id")
        if not dedupe_key:
            raise BadPayload("X-Shopify-Webhook-Id header is missing")
        data = _obj(_loads(body, f"{topic} body"), f"{topic} body")
        expected = TOPIC_BODIES.get(topic)
        if expected is None:
            raise TopicMismatch(topic, f"{topic} is not a topic Comptoir handles")
        found = _body_kind(data, topic)
        if found != expected:
            raise TopicMismatch(topic, f"{topic} carries {expected}, this body is {found}")
        if found == REFUND_BODY:
            order_id = _id(data.get("order_id"), f"{topic} body: order_id")
            content_key = f"refund:{_id(data.get('id'), f'{topic} body: id')}"
        elif found == DELETED_BODY:
            order_id = _id(data.get("id"), f"{topic} body: id")
            content_key = f"deleted:{order_id}"
        else:
            order_id = _id(data.get("id"), f"{topic} body: id")
            updated_at = _text(data.get("updated_at"), f"{topic} body: updated_at")
            if not updated_at:
                raise BadPayload(f"{topic} body: updated_at is missing")
            content_key = f"order:{order_id}:{updated_at}"
        return WebhookDelivery(
            topic=topic,
            dedupe_key=dedupe_key,
            external_order_id=order_id,
            is_ping=self.is_ping(body, headers),
            content_key=content_key,
        )

    def register_webhooks(self, callback_url: str) -> list[str]:
        """Subscribe callback_url to our topics: GET, then POST /admin/api/2025-01/webhooks.json.

        Topics already sent to that address are skipped; the topics added are returned.
        """
        answer = _obj(self._get("webhooks.json", {"limit": 250}), "webhooks.json")
        existing = set()
        for index, item in enumerate(_list(answer.get("webhooks"), "webhooks")):
            hook = _obj(item, f"webhooks[{index}]")
            if _text(hook.get("address"), f"webhooks[{index}].address") == callback_url:
                existing.add(_text(hook.get("topic"), f"webhooks[{index}].topic"))
        created = []
        for topic in self.webhook_topics:
            if topic in existing:
                continue
            self.http.request(
                "POST",
                self._path("webhooks.json"),
                json={"webhook": {"topic": topic, "address": callback_url, "format": "json"}},
            )
            created.append(topic)
        return created

    # --- orders -----------------------------------------------------------------------

    def parse_order(self, payload: bytes) -> ShopOrder:
        """Read an order: a webhook body (the bare Order) or GET /orders/{id}.json ({"order":…})."""
        data = _obj(_loads(payload, "order payload"), "order payload")
        if isinstance(data.get("order"), dict):
            data = data["order"]
        if "order_id" in data and "line_items" not in data:
            raise BadPayload(
                f"this is a refund of order {data.get('order_id')!r}, not an order: fetch the order"
            )
        return _guarded("order", _parse_order, data)

    def parse_refund(self, payload: bytes) -> ShopRefund:
        """Read a refunds/create body: the Refund, its order id and its transactions."""
        data = _obj(_loads(payload, "refund payload"), "refund payload")
        if isinstance(data.get("refund"), dict):
            data = data["refund"]
        order_id = _id(data.get("order_id"), "refund.order_id")
        items = _list(data.get("transactions"), "refund.transactions")
        transactions = tuple(
            _guarded(f"refund.transactions[{i}]", _transaction, item, f"refund.transactions[{i}]")
            for i, item in enumerate(items)
        )
        return ShopRefund(order_external_id=order_id, transactions=transactions)

    def fetch_order(self, external_id: str) -> ShopOrder:
        """GET /admin/api/2025-01/orders/{id}.json"""
        order_id = numeric_order_id(external_id, "Shopify")
        answer = _obj(self._get(f"orders/{order_id}.json"), "orders/{id}.json")
        order = _obj(answer.get("order"), "order")
        return _guarded("order", _parse_order, order)

    def fetch_transactions(self, external_id: str) -> tuple[ShopTransaction, ...]:
        """GET /admin/api/2025-01/orders/{id}/transactions.json"""
        order_id = numeric_order_id(external_id, "Shopify")
        answer = _obj(
            self._get(f"orders/{order_id}/transactions.json"), "orders/{id}/transactions.json"
        )
        items = _list(answer.get("transactions"), "transactions")
        return tuple(
            _guarded(f"transactions[{index}]", _transaction, item, f"transactions[{index}]")
            for index, item in enumerate(items)
        )

    def list_orders(self, changed_since: dt.datetime, page: str | None = None) -> OrderBatch:
        """GET /admin/api/2025-01/orders.json, oldest change first, cursor-paged by Link.

        The first page asks status=any&updated_at_min=…&order=updated_at asc; the next
        pages send only limit and the page_info token (Shopify refuses anything else).
        """
        params: dict[str, str | int]
        if page:
            params = {"limit": self.limit, "page_info": _page_info(page)}
        else:
            params = {
                "status": "any",
                "updated_at_min": _utc_param(changed_since),
                "limit": self.limit,
                "order": "updated_at asc",
            }
        path = self._path("orders.json")
        response = self.http.request("GET", path, params=params)
        answer = _obj(_loads(response.content, f"GET {path}"), "orders.json")
        orders = []
        rejected = []
        for index, item in enumerate(_list(answer.get("orders"), "orders")):
            try:
                orders.append(
                    _guarded(f"orders[{index}]", _parse_order, _obj(item, f"orders[{index}]"))
                )
            except BadPayload as exc:
                rejected.append(reject(item, exc))
        next_link = response.links.get("next", {}).get("url")
        return OrderBatch(
            orders=tuple(orders),
            next_page=_page_info(next_link) if next_link else None,
            rejected=tuple(rejected),
        )

    # --- catalogues -------------------------------------------------------------------

    def list_statuses(self) -> list[ShopChoice]:
        """Shopify's fixed financial statuses plus "cancelled" (no endpoint: none to call)."""
        return [ShopChoice(code, label) for code, label in STATUS_LABELS.items()]

    def list_carriers(self) -> list[ShopChoice]:
        """GET /admin/api/2025-01/shipping_zones.json: the names of the shop's shipping rates.

        The name is what an order's shipping_lines[].title carries. Rates computed by a
        carrier service app have no fixed names and are not listed.
        """
        answer = _obj(self._get("shipping_zones.json"), "shipping_zones.json")
        seen: dict[str, str] = {}
        for z_index, item in enumerate(_list(answer.get("shipping_zones"), "shipping_zones")):
            zone = _obj(item, f"shipping_zones[{z_index}]")
            zone_name = _text(zone.get("name"), f"shipping_zones[{z_index}].name")
            for kind in ("price_based_shipping_rates", "weight_based_shipping_rates"):
                for r_index, rate_item in enumerate(_list(zone.get(kind), kind)):
                    field = f"shipping_zones[{z_index}].{kind}[{r_index}]"
                    name = _text(_obj(rate_item, field).get("name"), f"{field}.name")
                    if name and name not in seen:
                        seen[name] = f"{name} ({zone_name})" if zone_name else name
        return [ShopChoice(code, label) for code, label in seen.items()]

    def list_payment_methods(self) -> list[ShopChoice]:
        """GET /admin/api/2025-01/orders.json?fields=payment_gateway_names,gateway (recent 250).

        Shopify has no list of payment gateways in the Admin API: the gateways seen on the
        most recent orders are what the mapping screens can offer.
        """
        answer = _obj(
            self._get(
                "orders.json",
                {
                    "status": "any",
                    "limit": self.page_size,
                    "order": "created_at desc",
                    "fields": "id,payment_gateway_names,gateway",
                },
            ),
            "orders.json",
        )
        seen: list[str] = []
        for index, item in enumerate(_list(answer.get("orders"), "orders")):
            order = _obj(item, f"orders[{index}]")
            for name in _gateways(order, f"orders[{index}]"):
                if name not in seen:
                    seen.append(name)
        return [ShopChoice(name, _gateway_label(name)) for name in seen]

    def test_connection(self) -> str:
        """GET /admin/api/2025-01/shop.json"""
        shop = _obj(_obj(self._get("shop.json"), "shop.json").get("shop"), "shop")
        name = _text(shop.get("name"), "shop.name")
        domain = _text(shop.get("myshopify_domain"), "shop.myshopify_domain")
        currency = _text(shop.get("currency"), "shop.currency")
        plan = _text(shop.get("plan_display_name"), "shop.plan_display_name")
        details = ", ".join(part for part in (domain, currency, plan) if part)
        return f"Shopify shop {name} ({details})" if details else f"Shopify shop {name}"

    # --- write-backs ------------------------------------------------------------------

    def push_status(
        self, external_id: str, status: str, *, notify: bool = True, reason: str = ""
    ) -> PushOutcome:
        """POST /admin/api/2025-01/orders/{id}/cancel.json or close.json, after reading the order.

        `status` is an action: "cancel" sends {"reason": "other", "email": notify} (email
        true makes Shopify e-mail the buyer) unless `cancelled_at` is already set; "close"
        archives the order (no e-mail, `notify` is moot) unless `closed_at` is set. `reason`
        is not sent: REST cancel has no free-text reason. Shopify refuses to cancel a
        fulfilled or partly fulfilled order, which is reported as a skip; its 422 to a
        cancel of an order cancelled since our read is already there. Shopify answers with
        the order, not a record of the action: remote_ref is "".
        """
        action = status.strip()
        if action not in STATUS_ACTIONS:
            return PushOutcome.cannot(NO_STATUSES)
        order_id = numeric_order_id(external_id, "Shopify")
        order = self._order_state(order_id, "id,cancelled_at,closed_at,fulfillment_status")
        if action == "close":
            if order.get("closed_at"):
                return PushOutcome.already_there()
            self.http.request("POST", self._path(f"orders/{order_id}/close.json"), json={})
            return PushOutcome()
        if order.get("cancelled_at"):
            return PushOutcome.already_there()
        fulfilment = _text(order.get("fulfillment_status"), "order.fulfillment_status")
        if fulfilment in ("fulfilled", "partial"):
            return PushOutcome.cannot(
                "Shopify does not cancel an order that is fulfilled or partly fulfilled; "
                "cancel its fulfilments in Shopify first."
            )
        path = self._path(f"orders/{order_id}/cancel.json")
        try:
            self.http.request("POST", path, json={"reason": "other", "email": notify})
        except ConnectorError as exc:
            if isinstance(exc, RetryableError | PermanentError):
                raise
            # A 422: someone cancelled the order between our read and our write.
            if self._order_state(order_id, "id,cancelled_at").get("cancelled_at"):
                return PushOutcome.already_there()
            raise
        return PushOutcome()

    def push_comment(
        self,
        external_id: str,
        text: str,
        *,
        customer_visible: bool,
        notify: bool = False,
        since: dt.datetime | None = None,
        ref: str = "",
    ) -> PushOutcome:
        """PUT /admin/api/2025-01/orders/{id}.json with the comment added to the order note.

        Shopify has no comment API: the comment becomes a line "Comptoir [ref]: …" of the
        staff-only `note`, read first and rewritten whole (the buyer's note is kept). The
        note has no dates, so `since` is not used: the line is already there when the note
        holds that exact line, which only our write of this comment produces. Without a
        ref the line is "Comptoir: …" and the comment is already there when the note holds
        that line or the comment's own lines. The buyer never sees the note and is never
        e-mailed, whatever customer_visible and notify say. When the note would exceed
        5,000 characters our oldest lines go first; if it still cannot fit, the comment
        cannot be pushed. remote_ref is "": a note line has no id.
        """
        order_id = numeric_order_id(external_id, "Shopify")
        line = _note_line(text, ref)
        order = self._order_state(order_id, "id,note")
        note = order.get("note") or ""
        if not isinstance(note, str):
            raise BadPayload(f"order.note: expected text, got {type(note).__name__}")
        if _note_has(note, text, line, by_line_only=bool(ref)):
            return PushOutcome.already_there()
        updated = _note_with(note, line)
        if updated is None:
            return PushOutcome.cannot(
                f"the Shopify order note takes {NOTE_LIMIT} characters and the buyer's note "
                "leaves no room for this comment"
            )
        self.http.request(
            "PUT",
            self._path(f"orders/{order_id}.json"),
            json={"order": {"id": int(order_id), "note": updated}},
        )
        return PushOutcome()

    def _order_state(self, order_id: str, fields: str) -> dict[str, Any]:
        """GET /admin/api/2025-01/orders/{id}.json?fields=… (the few fields a write needs)."""
        answer = _obj(self._get(f"orders/{order_id}.json", {"fields": fields}), "order")
        return _obj(answer.get("order"), "order")

    # --- shipments --------------------------------------------------------------------

    def push_shipment(
        self, external_id: str, shipment: ShipmentToPush, *, since: dt.datetime | None = None
    ) -> PushOutcome:
        """Make Shopify show this shipment as fulfillments of the order, reading them first.

        GET orders/{id}/fulfillments.json, then:
        - a shipment Shopify knows (`shipment.external_id`, several ids joined by "," when
          it took one fulfillment per location): cancelled in Comptoir → POST
          fulfillments/{id}/cancel.json for those still standing; else tracking numbers that
          differ → update_tracking; else nothing to write;
        - a new one: fulfillments made at or after `since` less CLOCK_SKEW holding only our
          tracking numbers (or, without numbers, only lines of ours) are ours from an attempt
          whose answer was lost: they count, and get our numbers when they have none. What
          they do not cover is placed on the open fulfillment orders (GET
          orders/{id}/fulfillment_orders.json) and fulfilled with one POST per location, as
          Shopify takes one location per fulfillment. A cancelled shipment never confirmed
          cancels such fulfillments of ours, if any.
        One tracking number goes through REST (`tracking_info` number, url, company); several
        through the GraphQL mutations (`trackingInfo` numbers, urls), as REST fulfillments
        hold one number each. remote_ref is the fulfillment ids, joined by ",".
        """
        order_id = numeric_order_id(external_id, "Shopify")
        held = self._fulfillments(order_id)
        if shipment.external_id:
            return self._push_known(held, shipment)
        ours, left = _ours(held, shipment, since)
        if shipment.cancelled:
            standing = [f for f in ours if f.status not in VOID_FULFILLMENTS]
            for fulfillment in standing:
                self._cancel_fulfillment(fulfillment.id)
            ref = ",".join(f.id for f in ours)
            return PushOutcome(remote_ref=ref) if standing else PushOutcome.already_there(ref)
        written = False
        numbers = set(shipment.tracking_numbers)
        for fulfillment in ours:
            if numbers and set(fulfillment.numbers) != numbers:
                self._update_tracking(fulfillment.id, shipment)
                written = True
        ids = [f.id for f in ours]
        if left:
            bundles = sorted(line for line in left if not line.isdigit())
            if bundles:
                return PushOutcome.cannot(
                    "Shopify fulfils a bundle's components, which this shipment does not "
                    f"name: {', '.join(bundles)}."
                )
            groups = self._placements(order_id, left)
            if isinstance(groups, str):
                return PushOutcome.cannot(groups)
            ids.extend(self._create_fulfillment(group, shipment) for group in groups)
            written = True
        ref = ",".join(ids)
        return PushOutcome(remote_ref=ref) if written else PushOutcome.already_there(ref)

    def _push_known(self, held: list[_Fulfillment], shipment: ShipmentToPush) -> PushOutcome:
        wanted = [part for part in shipment.external_id.split(",") if part]
        by_id = {f.id: f for f in held}
        mine = [by_id[part] for part in wanted if part in by_id]
        if shipment.cancelled:
            standing = [f for f in mine if f.status not in VOID_FULFILLMENTS]
            for fulfillment in standing:
                self._cancel_fulfillment(fulfillment.id)
            if standing:
                return PushOutcome(remote_ref=shipment.external_id)
            return PushOutcome.already_there(shipment.external_id)
        if len(mine) < len(wanted):
            missing = ", ".join(part for part in wanted if part not in by_id)
            return PushOutcome.cannot(f"Shopify no longer shows fulfillment {missing}.")
        if any(f.status in VOID_FULFILLMENTS for f in mine):
            return PushOutcome.cannot(
                "The fulfillment was cancelled in Shopify; a cancelled fulfillment cannot "
                "take tracking numbers again."
            )
        numbers = set(shipment.tracking_numbers)
        stale = [f for f in mine if set(f.numbers) != numbers]
        if not stale:
            return PushOutcome.already_there(shipment.external_id)
        if not numbers:
            return PushOutcome.cannot("Shopify keeps a fulfillment's tracking numbers once given.")
        for fulfillment in stale:
            self._update_tracking(fulfillment.id, shipment)
        return PushOutcome(remote_ref=shipment.external_id)

    def _fulfillments(self, order_id: str) -> list[_Fulfillment]:
        """GET /admin/api/2025-01/orders/{id}/fulfillments.json"""
        answer = _obj(self._get(f"orders/{order_id}/fulfillments.json"), "fulfillments.json")
        return [
            _guarded(f"fulfillments[{i}]", _fulfillment, item, f"fulfillments[{i}]")
            for i, item in enumerate(_list(answer.get("fulfillments"), "fulfillments"))
        ]

    def _placements(self, order_id: str, wanted: Mapping[str, int]) -> list[_Placement] | str:
        """Where our lines sit on the open fulfillment orders, grouped by location; or why
        they do not fit (Shopify has less left to fulfil than the shipment holds)."""
        answer = _obj(
            self._get(f"orders/{order_id}/fulfillment_orders.json"), "fulfillment_orders.json"
        )
        left = dict(wanted)
        groups: dict[str, dict[str, list[tuple[str, int]]]] = {}
        orders = _list(answer.get("fulfillment_orders"), "fulfillment_orders")
        for index, item in enumerate(orders):
            field = f"fulfillment_orders[{index}]"
            found = _obj(item, field)
            if _text(found.get("status"), f"{field}.status") not in OPEN_FULFILLMENT_ORDERS:
                continue
            fo_id = _id(found.get("id"), f"{field}.id")
            location = str(found.get("assigned_location_id") or "")
            items = found.get("line_items", found.get("fulfillment_order_line_items"))
            for i, raw in enumerate(_list(items, f"{field}.line_items")):
                line = _obj(raw, f"{field}.line_items[{i}]")
                line_id = _id(line.get("line_item_id"), f"{field}.line_items[{i}].line_item_id")
                free = line.get("fulfillable_quantity", line.get("quantity"))
                take = min(left.get(line_id, 0), _int(free, f"{field}.line_items[{i}]"))
                if take > 0:
                    item_id = _id(line.get("id"), f"{field}.line_items[{i}].id")
                    left[line_id] -= take
                    groups.setdefault(location, {}).setdefault(fo_id, []).append((item_id, take))
        short = {line: quantity for line, quantity in left.items() if quantity > 0}
        if short:
            lines = ", ".join(f"{quantity} × line {line}" for line, quantity in short.items())
            return f"Shopify has nothing left to fulfil for {lines}."
        return [
            _Placement(location=location, orders=tuple((k, tuple(v)) for k, v in by_fo.items()))
            for location, by_fo in groups.items()
        ]

    def _create_fulfillment(self, placement: _Placement, shipment: ShipmentToPush) -> str:
        """POST fulfillments.json (one tracking number or none), or the GraphQL
        fulfillmentCreate mutation (several); the new fulfillment's id."""
        if len(shipment.tracking_numbers) > 1:
            data = self._graphql(
                FULFILLMENT_CREATE,
                {
                    "fulfillment": {
                        "lineItemsByFulfillmentOrder": [
                            {
                                "fulfillmentOrderId": _gid("FulfillmentOrder", fo_id),
                                "fulfillmentOrderLineItems": [
                                    {"id": _gid("FulfillmentOrderLineItem", item), "quantity": q}
                                    for item, q in items
                                ],
                            }
                            for fo_id, items in placement.orders
                        ],
                        "notifyCustomer": shipment.notify,
                        "trackingInfo": _tracking_input(shipment),
                    }
                },
                "fulfillmentCreate",
            )
            return _fulfillment_id(data)
        body: dict[str, Any] = {
            "notify_customer": shipment.notify,
            "line_items_by_fulfillment_order": [
                {
                    "fulfillment_order_id": int(fo_id),
                    "fulfillment_order_line_items": [
                        {"id": int(item), "quantity": q} for item, q in items
                    ],
                }
                for fo_id, items in placement.orders
            ],
        }
        if shipment.tracking_numbers:
            body["tracking_info"] = _tracking_info(shipment)
        path = self._path("fulfillments.json")
        response = self.http.request("POST", path, json={"fulfillment": body})
        answer = _obj(_loads(response.content, f"POST {path}"), "fulfillments.json")
        return _id(_obj(answer.get("fulfillment"), "fulfillment").get("id"), "fulfillment.id")

    def _update_tracking(self, fulfillment_id: str, shipment: ShipmentToPush) -> None:
        """POST fulfillments/{id}/update_tracking.json (one number), or the GraphQL
        fulfillmentTrackingInfoUpdate mutation (several)."""
        if len(shipment.tracking_numbers) > 1:
            self._graphql(
                TRACKING_UPDATE,
                {
                    "fulfillmentId": _gid("Fulfillment", fulfillment_id),
                    "trackingInfoInput": _tracking_input(shipment),
                    "notifyCustomer": shipment.notify,
                },
                "fulfillmentTrackingInfoUpdate",
            )
            return
        self.http.request(
            "POST",
            self._path(f"fulfillments/{fulfillment_id}/update_tracking.json"),
            json={
                "fulfillment": {
                    "notify_customer": shipment.notify,
                    "tracking_info": _tracking_info(shipment),
                }
            },
        )

    def _cancel_fulfillment(self, fulfillment_id: str) -> None:
        """POST fulfillments/{id}/cancel.json; one Shopify no longer has is gone already."""
        try:
            self.http.request(
                "POST", self._path(f"fulfillments/{fulfillment_id}/cancel.json"), json={}
            )
        except NotFoundAtShop:
            return

    def _graphql(self, query: str, variables: Mapping[str, Any], field: str) -> dict[str, Any]:
        """POST graphql.json; the mutation's payload, its userErrors raised as a refusal."""
        path = self._path("graphql.json")
        response = self.http.request("POST", path, json={"query": query, "variables": variables})
        answer = _obj(_loads(response.content, f"POST {path}"), "graphql.json")
        errors = answer.get("errors")
        if errors:
            summary = f"POST {path}: {json.dumps(errors, ensure_ascii=False)[:300]}"
            if "THROTTLED" in summary:
                raise RateLimited(summary, None)
            raise PermanentError(summary)
        data = _obj(_obj(answer.get("data"), "data").get(field), f"data.{field}")
        refused = _list(data.get("userErrors"), f"{field}.userErrors")
        if refused:
            raise PermanentError(f"{field}: {json.dumps(refused, ensure_ascii=False)[:300]}")
        return data


# --- Fulfillments: our shipments as Shopify holds them ------------------------------------

# Fulfillment statuses: "success" shipped; "pending"/"open" waiting on a fulfillment
# service (not shipped yet); "cancelled", "error", "failure" never shipped or undone.
VOID_FULFILLMENTS = ("cancelled", "error", "failure")
WAITING_FULFILLMENTS = ("pending", "open")
# Fulfillment orders that still take fulfillments.
OPEN_FULFILLMENT_ORDERS = ("open", "in_progress")

FULFILLMENT_CREATE = """
mutation fulfillmentCreate($fulfillment: FulfillmentInput!) {
  fulfillmentCreate(fulfillment: $fulfillment) {
    fulfillment { id legacyResourceId status trackingInfo { company number url } }
    userErrors { field message }
  }
}
""".strip()

TRACKING_UPDATE = """
mutation fulfillmentTrackingInfoUpdate(
  $fulfillmentId: ID!, $trackingInfoInput: FulfillmentTrackingInput!, $notifyCustomer: Boolean
) {
  fulfillmentTrackingInfoUpdate(
    fulfillmentId: $fulfillmentId,
    trackingInfoInput: $trackingInfoInput,
    notifyCustomer: $notifyCustomer
  ) {
    fulfillment { id legacyResourceId trackingInfo { company number url } }
    userErrors { field message }
  }
}
""".strip()


@dataclass(frozen=True)
class _Fulfillment:
    id: str
    status: str
    numbers: tuple[str, ...]
    urls: tuple[str, ...]
    company: str
    created_at: dt.datetime | None
    lines: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class _Placement:
    """What one fulfillment takes: (fulfillment order id, ((its line item id, quantity)…))…,
    all at one location."""

    location: str
    orders: tuple[tuple[str, tuple[tuple[str, int], ...]], ...]


def _texts(data: Mapping[str, Any], many: str, one: str, field: str) -> tuple[str, ...]:
    values = [
        _text(value, f"{field}.{many}[{index}]")
        for index, value in enumerate(_list(data.get(many), f"{field}.{many}"))
    ]
    values = [value for value in values if value]
    if not values and (single := _text(data.get(one), f"{field}.{one}")):
        values = [single]
    return tuple(values)


def _fulfillment(value: Any, field: str) -> _Fulfillment:
    data = _obj(value, field)
    lines: dict[str, int] = {}
    for index, raw in enumerate(_list(data.get("line_items"), f"{field}.line_items")):
        item = _obj(raw, f"{field}.line_items[{index}]")
        line_id = _id(item.get("id"), f"{field}.line_items[{index}].id")
        quantity = _int(item.get("quantity"), f"{field}.line_items[{index}].quantity")
        lines[line_id] = lines.get(line_id, 0) + quantity
    return _Fulfillment(
        id=_id(data.get("id"), f"{field}.id"),
        status=_text(data.get("status"), f"{field}.status").lower(),
        numbers=_texts(data, "tracking_numbers", "tracking_number", field),
        urls=_texts(data, "tracking_urls", "tracking_url", field),
        company=_text(data.get("tracking_company"), f"{field}.tracking_company"),
        created_at=_opt_when(data.get("created_at"), f"{field}.created_at"),
        lines=tuple(lines.items()),
    )


def _shop_shipment(found: _Fulfillment) -> ShopShipment:
    parcels = tuple(
        ShopParcel(
            tracking_number=number,
            carrier=found.company,
            tracking_url=found.urls[index] if index < len(found.urls) else "",
        )
        for index, number in enumerate(found.numbers)
    )
    return ShopShipment(
        external_id=found.id,
        parcels=parcels,
        lines=found.lines,
        carrier=found.company,
        shipped_at=found.created_at,
        cancelled=found.status in VOID_FULFILLMENTS,
    )


def _shop_shipments(data: Mapping[str, Any]) -> tuple[ShopShipment, ...] | None:
    """The order's fulfillments as shipments; None when this copy leaves them out.

    Fulfillments still waiting on a fulfillment service have not shipped: left out until
    they have.
    """
    if "fulfillments" not in data:
        return None
    found = [
        _guarded(f"fulfillments[{i}]", _fulfillment, item, f"fulfillments[{i}]")
        for i, item in enumerate(_list(data.get("fulfillments"), "fulfillments"))
    ]
    return tuple(_shop_shipment(f) for f in found if f.status not in WAITING_FULFILLMENTS)


def _ours(
    held: Iterable[_Fulfillment], shipment: ShipmentToPush, since: dt.datetime | None
) -> tuple[list[_Fulfillment], dict[str, int]]:
    """The fulfillments an earlier attempt at this shipment made, and the lines they leave.

    Ours: not another shipment's (`others_external_ids`), made at or after `since` less
    CLOCK_SKEW, standing, holding only lines of the shipment (within its quantities) and,
    when the shipment has tracking numbers, some of them and no other (a fulfillment
    without numbers is then another shipment's, say an earlier one shipped without
    tracking); when it has none, none. Being too strict costs at worst a refusal (Shopify
    fulfils nothing twice), too loose a fulfillment never made.
    """
    numbers = set(shipment.tracking_numbers)
    left: dict[str, int] = {}
    for line in shipment.lines:
        left[line.line_external_id] = left.get(line.line_external_id, 0) + line.quantity
    ours = []
    taken = set(shipment.others_external_ids)
    standing = [
        f
        for f in held
        if (f.status not in VOID_FULFILLMENTS or shipment.cancelled) and f.id not in taken
    ]
    for found in sorted(standing, key=lambda f: int(f.id)):
        if not may_be_ours(found.created_at, since):
            continue
        if bool(found.numbers) != bool(numbers) or not set(found.numbers) <= numbers:
            continue
        if not found.lines or any(left.get(line_id, 0) < q for line_id, q in found.lines):
            continue
        for line_id, quantity in found.lines:
            left[line_id] -= quantity
        ours.append(found)
    return ours, {line_id: quantity for line_id, quantity in left.items() if quantity > 0}


def _gid(kind: str, legacy_id: str) -> str:
    return f"gid://shopify/{kind}/{legacy_id}"


def _fulfillment_id(payload: Mapping[str, Any]) -> str:
    """The REST id of the fulfillment a mutation answered with."""
    found = _obj(payload.get("fulfillment"), "fulfillment")
    legacy = found.get("legacyResourceId")
    if legacy is not None:
        return _id(legacy, "fulfillment.legacyResourceId")
    gid = _text(found.get("id"), "fulfillment.id")
    return _id(gid.rsplit("/", 1)[-1], "fulfillment.id")


def _company(shipment: ShipmentToPush) -> str:
    """The carrier as Shopify names it (the mode's Shopify code), else the mode's carrier."""
    return shipment.carrier_code or shipment.carrier_name


def _tracking_info(shipment: ShipmentToPush) -> dict[str, str]:
    """REST tracking_info: one number, its URL (it wins over Shopify's own link), company."""
    parcel = next(p for p in shipment.parcels if p.tracking_number)
    info = {"number": parcel.tracking_number}
    if parcel.tracking_url:
        info["url"] = parcel.tracking_url
    if company := _company(shipment):
        info["company"] = company
    return info


def _tracking_input(shipment: ShipmentToPush) -> dict[str, Any]:
    """GraphQL FulfillmentTrackingInput with every number, and their URLs when all have one
    (`urls` pairs with `numbers` by position)."""
    parcels = [p for p in shipment.parcels if p.tracking_number]
    info: dict[str, Any] = {"numbers": [p.tracking_number for p in parcels]}
    if all(p.tracking_url for p in parcels):
        info["urls"] = [p.tracking_url for p in parcels]
    if company := _company(shipment):
        info["company"] = company
    return info


# --- The order note as a comment log ------------------------------------------------------


def _note_line(text: str, ref: str) -> str:
    """Our comment as one note line: Shopify shows the note as plain text."""
    parts = [part.strip() for part in text.strip().splitlines() if part.strip()]
    prefix = f"Comptoir [{ref}]: " if ref else NOTE_PREFIX
    return prefix + " / ".join(parts)


def _note_has(note: str, text: str, line: str, *, by_line_only: bool) -> bool:
    """Whether the note holds our line, or (by_line_only false) the comment's own lines
    typed in at the shop."""
    have = note.splitlines()
    if any(same_text(kept, line) for kept in have):
        return True
    if by_line_only:
        return False
    want = text.strip().splitlines()
    return any(
        len(have) - start >= len(want) and all(map(same_text, have[start:], want))
        for start in range(len(have))
    )


def _note_with(note: str, line: str) -> str | None:
    """The note with our line appended, dropping our oldest lines if it would be too long;
    None when even that leaves no room."""
    lines = [*(note.split("\n") if note else []), line]
    while len("\n".join(lines)) > NOTE_LIMIT:
        ours = next((i for i, kept in enumerate(lines[:-1]) if _OUR_LINE.match(kept)), None)
        if ours is None:
            return None
        del lines[ours]
    return "\n".join(lines)


# --- Translating the payload --------------------------------------------------------------


def _gateways(order: Mapping[str, Any], field: str) -> list[str]:
    names = [
        _text(name, f"{field}.payment_gateway_names[{index}]")
        for index, name in enumerate(
            _list(order.get("payment_gateway_names"), f"{field}.payment_gateway_names")
        )
    ]
    names = [name for name in names if name]
    if not names:
        legacy = _text(order.get("gateway"), f"{field}.gateway")
        names = [legacy] if legacy else []
    return names


def _gateway_label(name: str) -> str:
    return GATEWAY_LABELS.get(name, name)


def _attributes(order: Mapping[str, Any]) -> list[tuple[str, str]]:
    pairs = []
    for index, item in enumerate(_list(order.get("note_attributes"), "note_attributes")):
        attribute = _obj(item, f"note_attributes[{index}]")
        name = _text(attribute.get("name"), f"note_attributes[{index}].name")
        value = _text(attribute.get("value"), f"note_attributes[{index}].value")
        pairs.append((name, value))
    return pairs


def _words(name: str) -> str:
    return " " + re.sub(r"[\W_]+", " ", name.casefold()) + " "


def _attribute(pairs: Iterable[tuple[str, str]], words: tuple[str, ...]) -> str:
    """The value of the first attribute named with one of words, identifiers first.

    Pickup-point apps write several attributes ("… ID point relais", "… Nom du point
    relais"): the one whose name says id / code / number wins.
    """
    matches = [
        (_words(name), value)
        for name, value in pairs
        if value and any(f" {word} " in _words(name) for word in words)
    ]
    for spaced, value in matches:
        if any(f" {word} " in spaced for word in ("id", "code", "numéro", "numero", "number", "n")):
            return value
    return matches[0][1] if matches else ""


def _address(
    value: Any, field: str, *, email: str = "", vat_id: str = "", relay_point_id: str = ""
) -> ShopAddress | None:
    data = _opt_obj(value, field)
    if data is None:
        return None

    def get(key: str) -> str:
        return _text(data.get(key), f"{field}.{key}")

    return ShopAddress(
        first_name=get("first_name"),
        last_name=get("last_name"),
        company=get("company"),
        line1=get("address1"),
        line2=get("address2"),
        postcode=get("zip"),
        city=get("city"),
        region=get("province_code") or get("province"),
        country_code=get("country_code").upper(),
        phone=get("phone"),
        email=email,
        vat_id=vat_id,
        relay_point_id=relay_point_id,
    )


def _tax(lines: Any, field: str) -> tuple[Decimal, Decimal]:
    """The summed tax amount and the summed rate (in percent) of a list of tax_lines."""
    amount = Decimal("0.00")
    fraction = Decimal("0")
    for index, item in enumerate(_list(lines, field)):
        tax_line = _obj(item, f"{field}[{index}]")
        amount += _money(tax_line.get("price"), f"{field}[{index}].price")
        fraction += _fraction(tax_line.get("rate"), f"{field}[{index}].rate")
    return amount, rate(fraction * 100, f"{field}.rate")


def _properties(value: Any, field: str) -> list[str]:
    """Visible line (or bundle) properties as "name: value"; "_" names are private."""
    parts = []
    for index, prop in enumerate(_list(value, field)):
        entry = _obj(prop, f"{field}[{index}]")
        name = _text(entry.get("name"), f"{field}[{index}].name")
        value_text = _text(entry.get("value"), f"{field}[{index}].value")
        # Shopify themes hide properties whose name starts with "_": so do we.
        if name.startswith("_") or not (name or value_text):
            continue
        parts.append(f"{name}: {value_text}" if name else value_text)
    return parts


def _options(item: Mapping[str, Any], field: str) -> str:
    parts = []
    variant = _text(item.get("variant_title"), f"{field}.variant_title")
    if variant:
        parts.append(variant)
    parts.extend(_properties(item.get("properties"), f"{field}.properties"))
    return ", ".join(parts)


def _price(value: Any, field: str) -> Decimal:
    if isinstance(value, dict | list):
        raise BadPayload(f"{field}: expected an amount, got {type(value).__name__}")
    try:
        return price(value, field)
    except ArithmeticError as exc:
        raise BadPayload(f"{field}: {value!r} is not a usable amount") from exc


def _allocated(value: Any, field: str, into: dict[int, Decimal]) -> Decimal:
    """Sum a line's discount_allocations, adding each to its discount application in `into`."""
    total = Decimal("0.00")
    for index, entry in enumerate(_list(value, field)):
        allocation = _obj(entry, f"{field}[{index}]")
        amount = _money(allocation.get("amount"), f"{field}[{index}].amount")
        total += amount
        app_index = allocation.get("discount_application_index")
        if isinstance(app_index, int) and not isinstance(app_index, bool):
            into[app_index] = into.get(app_index, Decimal("0.00")) + amount
    return total


@dataclass
class _Item:
    """One line_items[] entry read, before the order-level tax and bundles are applied."""

    external_id: str
    name: str
    quantity: int
    unit_price: Decimal
    sku: str
    options: str
    discount: Decimal
    tax_amount: Decimal
    tax_rate: Decimal
    has_tax_lines: bool
    taxable: bool
    needs_shipping: bool
    group_id: str | None

    @property
    def after_discount(self) -> Decimal:
        """The line's amount after its discount, in the order's price basis."""
        return _money(self.unit_price * self.quantity - self.discount, f"line {self.external_id}")


def _item(value: Any, field: str, allocations: dict[int, Decimal]) -> _Item:
    item = _obj(value, field)
    if _list(item.get("discount_allocations"), f"{field}.discount_allocations"):
        discount = _allocated(
            item.get("discount_allocations"), f"{field}.discount_allocations", allocations
        )
    else:
        discount = _money(item.get("total_discount"), f"{field}.total_discount")
    tax_lines = _list(item.get("tax_lines"), f"{field}.tax_lines")
    tax_amount, tax_rate = _tax(tax_lines, f"{field}.tax_lines")
    gift_card = _bool(item.get("gift_card"), f"{field}.gift_card")
    requires_shipping = _bool(item.get("requires_shipping"), f"{field}.requires_shipping", True)
    name = _text(item.get("title"), f"{field}.title") or _text(item.get("name"), f"{field}.name")
    return _Item(
        external_id=_id(item.get("id"), f"{field}.id"),
        name=name,
        quantity=_int(item.get("quantity"), f"{field}.quantity"),
        unit_price=_price(item.get("price"), f"{field}.price"),
        sku=_text(item.get("sku"), f"{field}.sku"),
        options=_options(item, field),
        discount=discount,
        tax_amount=tax_amount,
        tax_rate=tax_rate,
        has_tax_lines=bool(tax_lines),
        taxable=_bool(item.get("taxable"), f"{field}.taxable", True) and not gift_card,
        needs_shipping=requires_shipping and not gift_card,
        group_id=_opt_id(item.get("sales_line_item_group_id"), f"{field}.sales_line_item_group_id"),
    )


def _spread(amount: Decimal, weights: list[Decimal]) -> list[Decimal]:
    """Split amount over weights to the cent, the shares summing to amount exactly
    (largest remainder: the cents left by rounding down go to the largest remainders)."""
    total = sum(weights, Decimal("0"))
    if not weights or total <= 0:
        return [Decimal("0.00")] * len(weights)
    cents = int((amount / CENT).to_integral_value(rounding=ROUND_HALF_UP))
    exact = [Decimal(cents) * weight / total for weight in weights]
    shares = [int(value.to_integral_value(rounding=ROUND_FLOOR)) for value in exact]
    by_remainder = sorted(
        range(len(weights)), key=lambda index: (exact[index] - shares[index], -index), reverse=True
    )
    for index in by_remainder[: cents - sum(shares)]:
        shares[index] += 1
    return [Decimal(share) * CENT for share in shares]


def _order_tax(
    items: list[_Item], order_tax_lines: Any, shipping_tax: Decimal, taxes_included: bool
) -> list[_Item]:
    """Lines without tax_lines on an order whose tax sits only in its own tax_lines: the
    order's line tax (its tax_lines less the shipping's) spread over the taxable lines in
    proportion to their amount after discounts, to the cent, summing to it exactly.

    The rate is the order tax line's `rate`; several tax lines are stacked taxes (state +
    county) whose rates add up, unless the amounts say otherwise (rates that each apply
    to some lines only): then the lines get the overall rate the amounts give.
    """
    if not items or any(item.has_tax_lines for item in items):
        return items
    amount, tax_rate = _tax(order_tax_lines, "tax_lines")
    amount -= shipping_tax
    taxed = [item for item in items if item.taxable]
    if amount <= 0 or not taxed:
        return items
    weights = [max(item.after_discount, Decimal("0")) for item in taxed]
    shares = _spread(amount, weights)
    if len(_list(order_tax_lines, "tax_lines")) > 1:
        base = sum(weights, Decimal("0")) - (amount if taxes_included else 0)
        overall = (amount * 100 / base).quantize(CENT, rounding=ROUND_HALF_UP) if base > 0 else 0
        if abs(overall - tax_rate) >= Decimal("0.5"):
            tax_rate = rate(overall, "tax_lines rate")
    for item, share in zip(taxed, shares, strict=True):
        item.tax_amount, item.tax_rate = share, tax_rate
    return items


def _shop_line(item: _Item, taxes_included: bool) -> ShopLine:
    after = item.after_discount
    if taxes_included:
        total_gross, total_net = after, after - item.tax_amount
    else:
        total_net, total_gross = after, after + item.tax_amount
    return ShopLine(
        external_id=item.external_id,
        name=item.name,
        quantity=item.quantity,
        unit_price=item.unit_price,
        sku=item.sku,
        ean="",
        options=item.options,
        tax_rate=item.tax_rate,
        discount_amount=item.discount,
        total_net=total_net,
        tax_amount=item.tax_amount,
        total_gross=total_gross,
        kind=LineKind.PRODUCT,
        needs_shipping=item.needs_shipping,
    )


def _groups(data: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The order's line_item_groups (bundles sold), by id."""
    groups = {}
    for index, entry in enumerate(_list(data.get("line_item_groups"), "line_item_groups")):
        group = _obj(entry, f"line_item_groups[{index}]")
        groups[_id(group.get("id"), f"line_item_groups[{index}].id")] = group
    return groups


def _bundle(group_id: str, group: Mapping[str, Any], parts: list[ShopLine]) -> list[ShopLine]:
    """A bundle as one line with the money, its components after it for picking."""
    field = f"line_item_groups[{group_id}]"
    parent_id = f"bundle:{group_id}"
    quantity = 1
    if group.get("quantity") is not None:
        quantity = _int(group.get("quantity"), f"{field}.quantity") or 1
    name = _text(group.get("title"), f"{field}.title") or " + ".join(part.name for part in parts)
    sku = _text(group.get("variant_sku"), f"{field}.variant_sku") or _text(
        group.get("sku"), f"{field}.sku"
    )
    before = sum((part.unit_price * part.quantity for part in parts), Decimal("0"))
    net = sum((part.total_net for part in parts), Decimal("0.00"))
    tax = sum((part.tax_amount for part in parts), Decimal("0.00"))
    rates = {part.tax_rate for part in parts}
    if len(rates) == 1:
        tax_rate = rates.pop()
    else:  # components at several rates: the bundle's overall rate
        tax_rate = rate((tax * 100 / net).quantize(CENT) if net else 0, f"{field} tax rate")
    parent = ShopLine(
        external_id=parent_id,
        name=name,
        quantity=quantity,
        unit_price=_price(before / quantity, f"{field} price"),
        sku=sku,
        options=", ".join(_properties(group.get("properties"), f"{field}.properties")),
        tax_rate=tax_rate,
        discount_amount=sum((part.discount_amount for part in parts), Decimal("0.00")),
        total_net=net,
        tax_amount=tax,
        total_gross=sum((part.total_gross for part in parts), Decimal("0.00")),
        needs_shipping=any(part.needs_shipping for part in parts),
    )
    zero = Decimal("0.00")
    components = [
        replace(
            part,
            parent_external_id=parent_id,
            unit_price=zero,
            discount_amount=zero,
            total_net=zero,
            tax_amount=zero,
            total_gross=zero,
        )
        for part in parts
    ]
    return [parent, *components]


def _lines(
    data: Mapping[str, Any],
    taxes_included: bool,
    shipping_tax: Decimal,
    allocations: dict[int, Decimal],
) -> tuple[ShopLine, ...]:
    items = [
        _guarded(f"line_items[{index}]", _item, item, f"line_items[{index}]", allocations)
        for index, item in enumerate(_list(data.get("line_items"), "line_items"))
    ]
    items = _guarded(
        "tax_lines", _order_tax, items, data.get("tax_lines"), shipping_tax, taxes_included
    )
    groups = _groups(data)
    members: dict[str, list[ShopLine]] = {}
    for item in items:
        if item.group_id is not None:
            members.setdefault(item.group_id, []).append(_shop_line(item, taxes_included))
    lines: list[ShopLine] = []
    for item in items:
        if item.group_id is None:
            lines.append(_shop_line(item, taxes_included))
        elif item.group_id in members:  # the group's first component: the bundle goes here
            parts = members.pop(item.group_id)
            lines.extend(
                _guarded("line_items", _bundle, item.group_id, groups.get(item.group_id, {}), parts)
            )
    return tuple(lines)


def _discounts(
    data: Mapping[str, Any], allocations: dict[int, Decimal]
) -> tuple[ShopDiscount, ...]:
    """Each discount with its code and amount.

    discount_applications[] says what was applied (a code, an automatic or manual
    discount, a script) and the discount_allocations of the lines and shipping lines
    point at it by index: their sum is its amount. A code without a matching application
    (payloads older than 2018-07, or an application with no allocations) keeps the
    `amount` of its discount_codes[] entry. Amounts are as Shopify states them: tax
    included when the order's prices are, before tax otherwise.
    """
    codes: dict[str, Decimal] = {}
    for index, entry in enumerate(_list(data.get("discount_codes"), "discount_codes")):
        item = _obj(entry, f"discount_codes[{index}]")
        code = _text(item.get("code"), f"discount_codes[{index}].code")
        if code:
            codes[code] = codes.get(code, Decimal("0.00")) + _money(
                item.get("amount"), f"discount_codes[{index}].amount"
            )
    found: list[ShopDiscount] = []
    applications = _list(data.get("discount_applications"), "discount_applications")
    for index, entry in enumerate(applications):
        field = f"discount_applications[{index}]"
        application = _obj(entry, field)
        kind = _text(application.get("type"), f"{field}.type")
        code = _text(application.get("code"), f"{field}.code") if kind == "discount_code" else ""
        label = _text(application.get("title"), f"{field}.title") or _text(
            application.get("description"), f"{field}.description"
        )
        if index in allocations:
            amount = allocations[index]
        elif code in codes:
            amount = codes[code]
        else:
            continue  # applied to nothing in this order
        codes.pop(code, None)
        found.append(ShopDiscount(code=code, amount=amount, label=label or code))
    found.extend(
        ShopDiscount(code=code, amount=amount, label=code) for code, amount in codes.items()
    )
    return tuple(found)


def _shop_money(value: Any, field: str) -> Decimal:
    """The shop-currency amount of a Shopify *_set object ({shop_money: {amount}})."""
    data = _opt_obj(value, field)
    if data is None:
        return Decimal("0.00")
    shop_money = _opt_obj(data.get("shop_money"), f"{field}.shop_money") or {}
    return _money(shop_money.get("amount"), f"{field}.shop_money.amount")


def _parse_order(data: dict[str, Any]) -> ShopOrder:
    external_id = _id(data.get("id"), "id")
    number = _text(data.get("name"), "name") or _text(data.get("order_number"), "order_number")
    currency = _text(data.get("currency"), "currency").upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BadPayload(f"currency: {data.get('currency')!r} is not a currency code")
    updated_at = _when(data.get("updated_at"), "updated_at")
    created_at = _opt_when(data.get("created_at"), "created_at")
    placed_at = _opt_when(data.get("processed_at"), "processed_at") or created_at or updated_at
    taxes_included = _bool(data.get("taxes_included"), "taxes_included")
    email = _text(data.get("email"), "email") or _text(data.get("contact_email"), "contact_email")

    attributes = _attributes(data)
    billing = _address(
        data.get("billing_address"),
        "billing_address",
        email=email,
        vat_id=_attribute(attributes, VAT_ATTRIBUTE_WORDS),
    ) or ShopAddress(email=email, vat_id=_attribute(attributes, VAT_ATTRIBUTE_WORDS))
    shipping = _address(
        data.get("shipping_address"),
        "shipping_address",
        relay_point_id=_attribute(attributes, RELAY_ATTRIBUTE_WORDS),
    )

    customer_data = _opt_obj(data.get("customer"), "customer") or {}
    customer = ShopCustomer(
        external_id=_opt_id(customer_data.get("id"), "customer.id"),
        email=_text(customer_data.get("email"), "customer.email") or email,
        first_name=_text(customer_data.get("first_name"), "customer.first_name")
        or billing.first_name,
        last_name=_text(customer_data.get("last_name"), "customer.last_name") or billing.last_name,
        phone=_text(customer_data.get("phone"), "customer.phone")
        or _text(data.get("phone"), "phone")
        or billing.phone,
        company=billing.company,
    )

    shipping_lines = [
        _obj(item, f"shipping_lines[{index}]")
        for index, item in enumerate(_list(data.get("shipping_lines"), "shipping_lines"))
    ]
    kept = [
        (index, item)
        for index, item in enumerate(shipping_lines)
        if not _bool(item.get("is_removed"), f"shipping_lines[{index}].is_removed")
    ]
    shipping_label = next(
        (
            title
            for index, item in kept
            if (title := _text(item.get("title"), f"shipping_lines[{index}].title"))
        ),
        "",
    )
    if kept:
        shipping_price = sum(
            (_money(item.get("price"), f"shipping_lines[{index}].price") for index, item in kept),
            Decimal("0.00"),
        )
    else:
        shipping_price = _shop_money(
            data.get("total_shipping_price_set"), "total_shipping_price_set"
        )
    shipping_tax = sum(
        (
            _tax(item.get("tax_lines"), f"shipping_lines[{index}].tax_lines")[0]
            for index, item in kept
        ),
        Decimal("0.00"),
    )
    allocations: dict[int, Decimal] = {}
    shipping_discount = sum(
        (
            _allocated(
                item.get("discount_allocations"),
                f"shipping_lines[{index}].discount_allocations",
                allocations,
            )
            for index, item in kept
        ),
        Decimal("0.00"),
    )
    lines = _lines(data, taxes_included, shipping_tax, allocations)

    tax_total = _money(data.get("total_tax"), "total_tax")
    discount_total = _money(data.get("total_discounts"), "total_discounts")
    line_discounts = sum(
        (line.discount_amount for line in lines if line.parent_external_id is None),
        Decimal("0.00"),
    )
    if shipping_discount and discount_total == line_discounts:
        # total_discounts leaves the shipping discount out (a free-shipping code): the
        # shipping is then what the buyer paid for it, so the figures still add up.
        shipping_price -= shipping_discount
    grand_total = _money(data.get("total_price"), "total_price")
    line_items_price = data.get("total_line_items_price")
    if taxes_included:
        shipping_total = shipping_price
        if line_items_price is None:
            subtotal = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
        else:
            subtotal = _money(line_items_price, "total_line_items_price")
    else:
        # Shopify's figures are before tax: add the tax so that ours are tax included. The
        # line tax is all the tax but the shipping's. total_discounts stays as the shop
        # states it (before tax), so subtotal - discounts + shipping == total_price holds.
        shipping_total = shipping_price + shipping_tax
        if line_items_price is None:
            subtotal = grand_total - shipping_total + discount_total
        else:
            lines_total = _money(line_items_price, "total_line_items_price")
            subtotal = lines_total + tax_total - shipping_tax

    gateways = _gateways(data, "order")
    payment_method = gateways[0] if gateways else ""

    discounts = _discounts(data, allocations)
    named = sum((found.amount for found in discounts), Decimal("0.00"))
    if discount_total > named:
        # Counted by the order but named nowhere (a line's total_discount without any
        # discount application, as in Shopify's own test body): kept without a code.
        discounts = (*discounts, ShopDiscount(code="", amount=discount_total - named))
    codes = tuple(dict.fromkeys(found.code for found in discounts if found.code))

    cancelled_at = _opt_when(data.get("cancelled_at"), "cancelled_at")
    financial_status = _text(data.get("financial_status"), "financial_status") or "pending"
    status = "cancelled" if cancelled_at else financial_status

    return ShopOrder(
        external_id=external_id,
        number=number or external_id,
        placed_at=placed_at,
        updated_at=updated_at,
        currency=currency,
        status=status,
        status_label=STATUS_LABELS.get(status, status),
        customer=customer,
        billing=billing,
        shipping=shipping,
        lines=lines,
        grand_total=grand_total,
        subtotal=subtotal,
        discount_total=discount_total,
        shipping_total=shipping_total,
        shipping_tax=shipping_tax,
        tax_total=tax_total,
        prices_include_tax=taxes_included,
        email=email,
        shipping_label=shipping_label,
        payment_method=payment_method,
        payment_method_label=_gateway_label(payment_method) if payment_method else "",
        discount_codes=codes,
        discounts=discounts,
        buyer_note=_text(data.get("note"), "note"),
        marketplace_ref="",
        cancelled_at=cancelled_at,
        cancel_reason=_text(data.get("cancel_reason"), "cancel_reason"),
        transactions=None,
        payment_summary=_payment_summary(data, financial_status, grand_total),
        shipments=_shop_shipments(data),
    )


def _transaction(value: Any, field: str) -> ShopTransaction:
    data = _obj(value, field)
    kind_name = _text(data.get("kind"), f"{field}.kind")
    kind = TRANSACTION_KINDS.get(kind_name)
    if kind is None:
        raise BadPayload(f"{field}.kind: unknown transaction kind {kind_name!r}")
    status_name = _text(data.get("status"), f"{field}.status")
    status = TRANSACTION_STATUSES.get(status_name)
    if status is None:
        raise BadPayload(f"{field}.status: unknown transaction status {status_name!r}")
    occurred_at = _opt_when(data.get("processed_at"), f"{field}.processed_at") or _when(
        data.get("created_at"), f"{field}.created_at"
    )
    return ShopTransaction(
        external_id=_id(data.get("id"), f"{field}.id"),
        kind=kind,
        amount=_money(data.get("amount"), f"{field}.amount"),
        currency=_text(data.get("currency"), f"{field}.currency").upper(),
        occurred_at=occurred_at,
        status=status,
        method=_text(data.get("gateway"), f"{field}.gateway"),
        reference=_text(data.get("authorization"), f"{field}.authorization"),
    )


# financial_status values whose whole total was paid (refunds come on top).
PAID_STATUSES = ("paid", "partially_refunded", "refunded")


def _payment_summary(data: Mapping[str, Any], status: str, total: Decimal) -> PaymentSummary:
    """What the order body tells of its money: `financial_status`, `total_outstanding` and
    the refunds' transactions it embeds (the transactions themselves are read later)."""
    refunded = Decimal("0.00")
    for index, item in enumerate(_list(data.get("refunds"), "refunds")):
        refund = _obj(item, f"refunds[{index}]")
        for tx_index, raw in enumerate(_list(refund.get("transactions"), "refunds.transactions")):
            tx = _guarded(f"refunds[{index}].transactions[{tx_index}]", _transaction, raw, "tx")
            if tx.kind == TransactionKind.REFUND and tx.status == TransactionStatus.SUCCESS:
                refunded += tx.amount
    if status == "authorized":
        return PaymentSummary(authorized=total)
    if status == "partially_paid":
        outstanding = data.get("total_outstanding")
        if outstanding in (None, ""):
            return PaymentSummary(exact=False)
        return PaymentSummary(paid=max(Decimal("0.00"), total - _money(outstanding, "total")))
    if status not in PAID_STATUSES:
        return PaymentSummary()
    if status == "refunded" and not refunded:
        return PaymentSummary(paid=total, refunded=total)
    # A partial refund the body carries no record of: its amount comes with the details.
    exact = status != "partially_refunded" or bool(refunded)
    return PaymentSummary(paid=total, refunded=refunded, exact=exact)
