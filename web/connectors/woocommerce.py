"""WooCommerce: the core REST API `wc/v3` and the core webhooks.

Vendor pages:
- REST API (orders, webhooks, payment gateways, shipping methods, reports, system status):
  https://woocommerce.github.io/woocommerce-rest-api-docs/
  (source: woocommerce/woocommerce-rest-api-docs, `source/includes/wp-api-v3/_orders.md`,
  `_webhooks.md`, `_payment-gateways.md`, `_shipping-methods.md`, `_reports.md`,
  `_system-status.md`, `_authentication.md`)
- Webhook delivery, signature and ping: woocommerce/woocommerce
  `plugins/woocommerce/includes/class-wc-webhook.php`
- Product Bundles' `bundled_by` / `bundled_items` on order lines:
  https://woocommerce.com/document/bundles-rest-api-reference/
- Composite Products' `composite_parent` / `composite_children` on order lines:
  https://woocommerce.com/document/composite-products-rest-api-reference/
- Shipping lines' package contents ("Items" meta): woocommerce/woocommerce
  `plugins/woocommerce/includes/abstracts/abstract-wc-shipping-method.php`, add_rate()

Auth: HTTP Basic consumer key / secret (HTTPS shops); `settings.extra["auth"] = "query"` sends
them as `consumer_key` / `consumer_secret` query parameters for servers that strip the
Authorization header. Plain-HTTP shops (one-legged OAuth 1.0a) are not supported.

How the payload is read (choices the API leaves open):
- Dates: the `*_gmt` fields (UTC without offset); the unsuffixed ones are site-local.
- Money: every WooCommerce line amount is tax excluded (`subtotal` before coupons, `total`
  after), whatever `prices_include_tax` says; the line totals are kept as given (`total`,
  `total_tax`). The unit price is in the order's basis at the shop's precision: with
  prices including tax (`subtotal` + `subtotal_tax`) / quantity; without, the line's
  `price` (a JSON number such as 3.225, read from its text, never through a float; it is
  the line total over its quantity, so only a line no coupon touched uses it), else
  `subtotal` / quantity.
- Tax rate of a line: the `rate_percent` of the `tax_lines` its `taxes[]` point to (WC 5.7+);
  older shops without `rate_percent` get the rate computed from the line's tax and net.
- Options: the line's visible meta (keys not starting with "_"), `display_key: display_value`
  (WC >= 3.x answers give the attribute's label and the term's name); without them a
  global attribute reads "pa_couleur: bleu-marine" as "Couleur: bleu marine".
- Bundles: Product Bundles' `bundled_by` (or Composite Products' `composite_parent`) gives
  the parent line id, or failing those the children's `_bundled_by` / `_composite_parent`
  meta (the container's cart key). The container line carries the money of the whole (its
  components' too, when they are priced individually; several tax rates give the overall
  rate), the components keep their quantities to pick and no money.
- Needs no shipping: the order line does not say whether a product is virtual or
  downloadable, and a product lookup is no part of parsing. The checkout writes each
  shipping line's package contents in a meta ("Items", translated: "Articles"), "Name
  &times; 2, ...", products needing shipping only: a line not listed there needs no
  shipping (unless the list names none of the order's lines: then it tells nothing). An
  order made at the checkout without any shipping line needs none at all.
  Orders made in the admin or through the API carry neither sign: their lines need
  shipping.
- Discounts: each `coupon_lines[]` entry with its code and `discount` + `discount_tax` (tax
  included, like discount_total); a free-shipping coupon keeps its 0.00.
- Fees: `fee_lines` become lines of kind fee, or gift_wrap when the name says so.
- Shipping label: `shipping_lines[0].method_title`. WooCommerce has no carrier concept.
- Relay point: the first of RELAY_POINT_META_KEYS found in the order meta (plus any keys
  listed in `settings.extra["relay_point_meta_keys"]`, comma separated, tried first).
- VAT number: no core field; the first of VAT_META_KEYS found in the order meta (plus
  `settings.extra["vat_meta_keys"]`).
- Transactions: WooCommerce exposes no payment records; they are synthesized: a capture of
  `total` at `date_paid_gmt` (reference `transaction_id`), and one refund per `refunds[]`
  entry dated at the order's `date_modified_gmt` (refunds carry no date in the order).
  `date_paid` is null on some paid orders (status set by hand or by a plugin without
  WooCommerce's payment hooks, imports): an order with refunds, a paid status
  (processing, completed, refunded) or a `transaction_id` was paid all the same, at
  `date_completed_gmt` or else `date_created_gmt`; a refunded order never shows only its
  refunds. Pending, on-hold, failed and cancelled orders without any of these are unpaid.
- Cancellation: WooCommerce keeps no cancellation date; `date_modified_gmt` of a cancelled
  order stands in for it.

Write-back (`_orders.md`, `_order-notes.md`): statuses with PUT /orders/{id}, comments as
order notes. What WooCommerce cannot receive:
- A per-call e-mail choice: its e-mails follow the shop's settings for each status
  ("Completed order", "Processing order"... to the buyer), so `notify` is ignored; and a
  customer note (`customer_note: true`) is always e-mailed to the buyer.
- A cancellation reason field: the reason becomes a private order note.

Shipments: core WooCommerce has no shipment and no tracking field. With the WooCommerce.com
Shipment Tracking extension (`/wp-json/wc-shipment-tracking/v3`; carriers.md §5.2), each
parcel is one tracking item: a provider the extension knows by name or slug (read from
its providers route) goes as `tracking_provider`, any other carrier as
`custom_tracking_provider` with the parcel's fully rendered link (the extension shows a
custom link verbatim). Items are what the extension keeps: no lines, no weight, no
per-item e-mail (the buyer sees them in the "Completed order" e-mail and the account page,
hence tracking before the `completed` status, which the outbox sends after the shipment).
A corrected number replaces its item; a cancelled shipment's items are deleted. Without
the extension (404 `rest_no_route`), the numbers and links go in a customer note (e-mailed
to the buyer, whatever `notify` says); a cancellation then leaves a private note (the buyer
already had the links; what to tell them is a person's comment). Shipments made in the
shop are read from the order meta `_wc_shipment_tracking_items` (one shipment per item,
no lines: it stands for what remained to ship). The zorem "Advanced Shipment Tracking"
plugin (`/wc-ast/v3`) is not spoken.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import logging
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, NamedTuple
from urllib.parse import quote

import httpx

from web.connectors.base import (
    CANCEL_REASON,
    CENT,
    AuthFailed,
    BadPayload,
    ConnectorError,
    InvalidSignature,
    NotFoundAtShop,
    OrderBatch,
    ParcelToPush,
    PermanentError,
    PushOutcome,
    RetryableError,
    ShipmentToPush,
    ShopAddress,
    ShopChoice,
    ShopCustomer,
    ShopDiscount,
    ShopLine,
    ShopOrder,
    ShopParcel,
    ShopSettings,
    ShopShipment,
    ShopTransaction,
    TopicMismatch,
    WebhookDelivery,
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
from web.models.enums import LineKind, TransactionKind

log = logging.getLogger(__name__)

API = "/wp-json/wc/v3"
# The WooCommerce.com Shipment Tracking extension's routes and the order meta it keeps.
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"
TRACKING_META = "_wc_shipment_tracking_items"
PER_PAGE = 100
MAX_QUANTITY = 1_000_000

# wc_get_order_statuses() of a fresh install, the fallback when the report is unavailable.
CORE_STATUSES: tuple[tuple[str, str], ...] = (
    ("pending", "Pending payment"),
    ("processing", "Processing"),
    ("on-hold", "On hold"),
    ("completed", "Completed"),
    ("cancelled", "Cancelled"),
    ("refunded", "Refunded"),
    ("failed", "Failed"),
)
STATUS_LABELS = dict(CORE_STATUSES) | {"checkout-draft": "Draft", "trash": "Trash"}

# Order meta keys French relay-point plugins store the chosen point under, most reliable first.
RELAY_POINT_META_KEYS: tuple[str, ...] = (
    "_lpc_meta_pickUpLocationId",  # Colissimo's official plugin (LpcPickupSelection)
    "_wms_mondial_relay_pickup_info",  # WC Multishipping: {"pickup_id": ..., ...}
    "_wms_chronopost_pickup_info",  # WC Multishipping, Chronopost relay
    "_mondial_relay_point",  # unverified names seen in smaller plugins
    "_colissimo_pickup_point_id",
    "_chronopost_relay_id",
    "_relay_point_id",
)
# Order meta keys of the VAT-number plugins (EU VAT Number, EU/UK VAT, Aelia, Germanized).
VAT_META_KEYS: tuple[str, ...] = (
    "_billing_vat_number",
    "_billing_eu_vat_number",
    "_vat_number",
    "vat_number",
    "_billing_vat_id",
    "_billing_vat",
)
GIFT_WRAP_WORDS = ("emballage cadeau", "paquet cadeau", "papier cadeau", "gift wrap")

DIGITS = re.compile(r"[0-9]+")
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
# A shipping line's package list: "Name × 2, Other name × 1".
PACKAGE_LIST = re.compile(r".*\S × [0-9]+", re.DOTALL)
# Order statuses that say the buyer paid (wc_get_is_paid_statuses()) or was refunded.
PAID_STATUSES = ("processing", "completed", "refunded")
PING_BODY = re.compile(rb"webhook_id=[0-9]+")
# What each order topic's body is (`WC_Webhook::build_payload`): the order as
# GET /orders/{id} gives it, or for a deletion `{"id": N}` alone. The signature covers the
# body, not the topic header, so a body under another kind's topic is refused.
ORDER_BODY, DELETED_BODY = "a whole order", "a deleted order's id"
TOPIC_BODIES: dict[str, str] = {
    "order.created": ORDER_BODY,
    "order.updated": ORDER_BODY,
    "order.restored": ORDER_BODY,
    "order.deleted": DELETED_BODY,
}
WP_SPECIALCHARS = re.compile(r"&(?:amp|lt|gt|quot|#0*39|#x0*27);", re.IGNORECASE)
WP_SPECIALCHARS_MAP = {"&amp;": "&", "&lt;": "<", "&gt;": ">", "&quot;": '"'}


# --- JSON and field readers --------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise BadPayload(f"JSON constant {name} is not allowed")


def load_json(body: bytes | str, what: str) -> Any:
    """Decode JSON keeping every number as its text, so no id or amount goes through float."""
    try:
        return json.loads(body, parse_int=str, parse_float=str, parse_constant=_reject_constant)
    except BadPayload:
        raise
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadPayload(f"{what}: not JSON ({exc})") from exc


def _obj(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadPayload(f"{field}: expected an object, got {type(value).__name__}")
    return value


def _opt_obj(value: Any, field: str) -> dict[str, Any]:
    # PHP serializes an empty associative array as [].
    if value is None or value == []:
        return {}
    return _obj(value, field)


def _list(value: Any, field: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):  # a PHP array with holes in its keys
        return list(value.values())
    raise BadPayload(f"{field}: expected a list, got {type(value).__name__}")


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    raise BadPayload(f"{field}: expected text, got {type(value).__name__}")


def _label(value: Any, field: str) -> str:
    """Text WordPress may have stored with HTML entities (titles, names)."""
    return html.unescape(_text(value, field)).strip()


def _id(value: Any, field: str) -> str:
    text = value.strip() if isinstance(value, str) else None
    if not text or not DIGITS.fullmatch(text):
        raise BadPayload(f"{field}: expected a numeric id, got {value!r}"[:200])
    return text


def _opt_id(value: Any, field: str) -> str | None:
    if value is None or value in ("", "0"):
        return None
    return _id(value, field)


def _money(value: Any, field: str) -> Decimal:
    try:
        return money(value, field)
    except ArithmeticError as exc:  # quantize() of an absurd exponent
        raise BadPayload(f"{field}: {value!r} is not an amount"[:200]) from exc


def _price(value: Any, field: str) -> Decimal:
    try:
        return price(value, field)
    except ArithmeticError as exc:
        raise BadPayload(f"{field}: {value!r} is not an amount"[:200]) from exc


def _quantity(value: Any, field: str) -> int:
    text = _text(value, field).strip()
    try:
        parsed = Decimal(text)
    except InvalidOperation as exc:
        raise BadPayload(f"{field}: {value!r} is not a quantity"[:200]) from exc
    if not parsed.is_finite() or parsed != parsed.to_integral_value():
        raise BadPayload(f"{field}: {value!r} is not a whole quantity"[:200])
    if not 1 <= parsed <= MAX_QUANTITY:
        raise BadPayload(f"{field}: quantity {value!r} is out of range"[:200])
    return int(parsed)


def _date(value: Any, field: str, *, required: bool = False) -> dt.datetime | None:
    """Read a `*_gmt` date: ISO 8601 without offset, meaning UTC."""
    if value is None or value == "":
        if required:
            raise BadPayload(f"{field}: missing")
        return None
    if not isinstance(value, str):
        raise BadPayload(f"{field}: expected a date, got {type(value).__name__}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadPayload(f"{field}: {value!r} is not a date"[:200]) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return to_utc(parsed)
    except OverflowError as exc:
        raise BadPayload(f"{field}: {value!r} is out of range"[:200]) from exc


def _required_date(value: Any, field: str) -> dt.datetime:
    parsed = _date(value, field, required=True)
    assert parsed is not None
    return parsed


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def _wp_specialchars_decode(text: str) -> str:
    """WordPress's wp_specialchars_decode(ENT_QUOTES), which WooCommerce applies to secrets."""

    def replace(match: re.Match[str]) -> str:
        entity = match.group(0).lower()
        return WP_SPECIALCHARS_MAP.get(entity, "'")

    return WP_SPECIALCHARS.sub(replace, text)


def _meta_values(meta_data: Any, field: str) -> dict[str, Any]:
    """Order meta as key → value (the first entry of a repeated key wins)."""
    values: dict[str, Any] = {}
    for index, entry in enumerate(_list(meta_data, field)):
        entry = _obj(entry, f"{field}[{index}]")
        key = _text(entry.get("key"), f"{field}[{index}].key")
        values.setdefault(key, entry.get("value"))
    return values


def _relay_id(value: Any, depth: int = 0) -> str:
    """A relay-point id from a meta value: plain text, or an object (or its JSON) with an id."""
    if isinstance(value, dict):
        for key in ("pickup_id", "id", "relay_id", "point_id", "code"):
            found = value.get(key)
            if isinstance(found, str) and found.strip():
                return found.strip()
        return ""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{") and depth == 0:
            try:
                decoded = load_json(text, "relay point meta")
            except BadPayload:
                return ""
            return _relay_id(decoded, depth + 1)
        return text
    return ""


def _readable(slug: str, *, label: bool = False) -> str:
    """A readable form of a slug, for answers without display_key / display_value: an
    attribute "pa_couleur" → "Couleur", a term "bleu-marine" → "bleu marine" (the term's
    own name, capitals and accents, is not in the order)."""
    text = slug[3:] if label and slug.startswith("pa_") else slug
    text = " ".join(text.replace("-", " ").replace("_", " ").split())
    return text[:1].upper() + text[1:] if label else text


def _options(meta_data: Any, field: str) -> str:
    parts = []
    for index, entry in enumerate(_list(meta_data, field)):
        entry = _obj(entry, f"{field}[{index}]")
        key = _text(entry.get("key"), f"{field}[{index}].key")
        if key.startswith("_"):  # hidden meta: stock, bundle and plugin bookkeeping
            continue
        label = entry.get("display_key")
        value = entry.get("display_value")
        # A global attribute (pa_*) stores the term's slug: without WooCommerce's labels
        # (display_key / display_value, WC >= 3.x answers) its readable form stands in.
        if not isinstance(label, str) or not label.strip():
            label = _readable(key, label=True) if key.startswith("pa_") else key
        if value is None:
            value = entry.get("value")
            if key.startswith("pa_") and isinstance(value, str) and SLUG.fullmatch(value):
                value = _readable(value)
        # Plugins also store arrays and objects on lines; those are not options.
        if not isinstance(label, str) or not isinstance(value, str):
            continue
        label, value = html.unescape(label).strip(), html.unescape(value).strip()
        if value:
            parts.append(f"{label}: {value}" if label else value)
    return ", ".join(parts)


def _shipped_items(shipping_lines: list[dict[str, Any]]) -> list[str] | None:
    """The "name × quantity" entries of the packages the shipping lines carry.

    WooCommerce's checkout writes each shipping rate's package contents as a meta
    ("Items", under its translated name: "Articles"...), "Name &times; 2, Other &times; 1",
    listing only products that need shipping. None when no shipping line has it (orders
    made in the admin or through the API), so nothing can be told from it.
    """
    found: list[str] | None = None
    for index, line in enumerate(shipping_lines):
        for m_index, entry in enumerate(_list(line.get("meta_data"), "shipping_lines.meta_data")):
            entry = _obj(entry, f"shipping_lines[{index}].meta_data[{m_index}]")
            key, value = entry.get("key"), entry.get("value")
            if not isinstance(key, str) or key.startswith("_") or not isinstance(value, str):
                continue
            text = html.unescape(value).strip()
            if not PACKAGE_LIST.fullmatch(text):
                continue
            found = [*(found or []), text]
    return found


def _is_shipped(packages: list[str], name: str, quantity: int) -> bool:
    """Whether "name × quantity" is one entry of a package list (names may hold commas)."""
    entry = re.compile(rf"(?:^|, ){re.escape(f'{name} × {quantity}')}(?:,|$)")
    return any(entry.search(package) for package in packages)


def _bundle_parents(items: list[dict[str, Any]]) -> dict[str, str]:
    """line id → the id of the bundle or composite line it belongs to.

    Product Bundles adds `bundled_by` (the container's line id) to its lines' REST answer
    and Composite Products `composite_parent`; without them (a webhook built before the
    plugin's REST fields load) their hidden meta tells it: a child's `_bundled_by` /
    `_composite_parent` is the cart key its container keeps in `_bundle_cart_key` /
    `_composite_cart_key`.
    """
    cart_keys: dict[tuple[str, str], str] = {}
    metas = []
    for index, item in enumerate(items):
        line_id = _id(item.get("id"), f"line_items[{index}].id")
        meta = _meta_values(item.get("meta_data"), f"line_items[{index}].meta_data")
        metas.append((index, line_id, meta))
        for kind, key in (("bundle", "_bundle_cart_key"), ("composite", "_composite_cart_key")):
            value = meta.get(key)
            if isinstance(value, str) and value.strip():
                cart_keys.setdefault((kind, value.strip()), line_id)
    parents: dict[str, str] = {}
    for index, line_id, meta in metas:
        item = items[index]
        parent = None
        for key in ("bundled_by", "composite_parent"):
            parent = _opt_id(item.get(key), f"line_items[{index}].{key}")
            if parent is not None:
                break
        if parent is None:
            for kind, key in (("bundle", "_bundled_by"), ("composite", "_composite_parent")):
                value = meta.get(key)
                if isinstance(value, str) and value.strip():
                    parent = cart_keys.get((kind, value.strip()))
                    if parent is None:
                        raise BadPayload(
                            f"line_items[{index}].meta_data.{key}: no line of the order has "
                            f"the cart key {value.strip()!r}"[:200]
                        )
                    break
        if parent is not None and parent != line_id:
            parents[line_id] = parent
    return parents


def _fold_bundles(lines: list[ShopLine]) -> list[ShopLine]:
    """A bundle (or composite) line carries its components' money, if they have any (items
    priced individually); the components keep their quantities to pick and no money."""
    line_ids = {line.external_id for line in lines}
    children: dict[str, list[ShopLine]] = {}
    for line in lines:
        if line.parent_external_id is None:
            continue
        if line.parent_external_id not in line_ids:
            raise BadPayload(
                f"line {line.external_id}: bundle parent {line.parent_external_id} "
                "is not a line of the order"
            )
        children.setdefault(line.parent_external_id, []).append(line)
    zero = Decimal("0.00")
    folded = []
    for line in lines:
        if line.parent_external_id is not None:
            folded.append(
                replace(
                    line,
                    unit_price=zero,
                    discount_amount=zero,
                    total_net=zero,
                    tax_amount=zero,
                    total_gross=zero,
                )
            )
            continue
        parts = children.get(line.external_id, [])
        if not parts:
            folded.append(line)
            continue
        together = [line, *parts]
        before = sum((part.unit_price * part.quantity for part in together), Decimal("0"))
        net = sum((part.total_net for part in together), zero)
        tax = sum((part.tax_amount for part in together), zero)
        priced = [part for part in together if part.total_gross or part.unit_price]
        rates = {part.tax_rate for part in priced} or {line.tax_rate}
        if len(rates) == 1:
            tax_rate = rates.pop()
        else:  # components at several rates: the bundle's overall rate
            tax_rate = rate((tax * 100 / net).quantize(CENT, rounding=ROUND_HALF_UP), "tax rate")
        folded.append(
            replace(
                line,
                unit_price=price(before / line.quantity, f"line {line.external_id} price"),
                discount_amount=sum((part.discount_amount for part in together), zero),
                total_net=net,
                tax_amount=tax,
                total_gross=sum((part.total_gross for part in together), zero),
                tax_rate=tax_rate,
                needs_shipping=any(part.needs_shipping for part in together),
            )
        )
    return folded


def _reason_note(status: str, reason: str) -> str:
    """The private note that keeps the reason of a status change."""
    if status == "cancelled":
        return f"{CANCEL_REASON}{reason}"
    return f"{STATUS_LABELS.get(status, status)}: {reason}"


def _shipped_date(value: Any, field: str) -> dt.datetime | None:
    """A tracking item's `date_shipped`: a unix timestamp (the extension's strtotime())."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not DIGITS.fullmatch(text):
        return None
    try:
        return dt.datetime.fromtimestamp(int(text), dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise BadPayload(f"{field}: {value!r} is not a date"[:200]) from None


def _tracked_shipments(meta: Mapping[str, Any]) -> tuple[ShopShipment, ...]:
    """The Shipment Tracking items of the order (`_wc_shipment_tracking_items`), one
    shipment each: WooCommerce records no lines for them, so each stands for what remained
    to ship (Comptoir adds a later item to the shipment it made from an earlier one)."""
    found = []
    for index, raw in enumerate(_list(meta.get(TRACKING_META), TRACKING_META)):
        field = f"{TRACKING_META}[{index}]"
        if not isinstance(raw, dict):
            continue  # not an item the extension wrote
        number = _text(raw.get("tracking_number"), f"{field}.tracking_number").strip()
        if not number:
            continue
        tracking_id = _text(raw.get("tracking_id"), f"{field}.tracking_id").strip() or number
        carrier = _label(
            raw.get("custom_tracking_provider"), f"{field}.custom_tracking_provider"
        ) or _label(raw.get("tracking_provider"), f"{field}.tracking_provider")
        link = _text(raw.get("custom_tracking_link"), f"{field}.custom_tracking_link").strip()
        found.append(
            ShopShipment(
                external_id=tracking_id,
                parcels=(
                    ShopParcel(
                        tracking_number=number,
                        carrier=carrier,
                        tracking_url=link if link.startswith(("https://", "http://")) else "",
                        external_id=tracking_id,
                    ),
                ),
                lines=None,
                carrier=carrier,
                shipped_at=_shipped_date(raw.get("date_shipped"), f"{field}.date_shipped"),
            )
        )
    return tuple(found)


class _Tracking(NamedTuple):
    """One Shipment Tracking item as the extension lists it."""

    tracking_id: str
    number: str


def _slug(name: str) -> str:
    """WordPress's sanitize_title() for a provider name: "TNT Express (consignment)" →
    "tnt-express-consignment" (accents dropped)."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "-".join(re.findall(r"[a-z0-9]+", plain))


def _shipment_note(shipment: ShipmentToPush) -> str:
    """The customer note that carries a shipment's tracking when the shop has no tracking
    extension: Comptoir's reference, the carrier, each parcel's number and full link."""
    carrier = f" ({shipment.carrier_name})" if shipment.carrier_name else ""
    lines = [f"Shipment {shipment.reference}{carrier}, tracking:"]
    lines += [f"{p.tracking_number} {p.tracking_url}".strip() for p in shipment.parcels]
    return "\n".join(lines)


def _cancelled_note(shipment: ShipmentToPush) -> str:
    """The private note kept when a shipment told in a customer note is cancelled."""
    numbers = ", ".join(shipment.tracking_numbers)
    text = f"Shipment {shipment.reference} was cancelled in Comptoir"
    return f"{text}; its tracking numbers no longer apply: {numbers}." if numbers else f"{text}."


def _split_keys(value: str | None) -> tuple[str, ...]:
    return tuple(key.strip() for key in (value or "").split(",") if key.strip())


# --- The connector -----------------------------------------------------------------------


class WooCommerceConnector:
    """Orders from one WooCommerce shop over `wc/v3`, webhooks verified and described."""

    platform: ClassVar[str] = "woocommerce"
    api_version: ClassVar[str] = "wc/v3"
    webhook_topics: ClassVar[tuple[str, ...]] = (
        "order.created",
        "order.updated",
        "order.deleted",
        "order.restored",
    )
    has_webhooks: ClassVar[bool] = True

    def __init__(self, settings: ShopSettings, transport: httpx.BaseTransport | None = None):
        self.settings = settings
        # Shops whose server strips the Authorization header take the keys in the query.
        in_query = settings.extra.get("auth") == "query"
        credentials = (settings.api_key, settings.api_secret)
        self.http = ShopHttp(
            settings.base_url,
            timeout=settings.timeout,
            auth=None if in_query else credentials,
            params=(
                {"consumer_key": settings.api_key, "consumer_secret": settings.api_secret}
                if in_query
                else None
            ),
            headers={"Accept": "application/json"},
            transport=transport,
            pacer=settings.pacer,
        )
        self.relay_point_meta_keys = (
            _split_keys(settings.extra.get("relay_point_meta_keys")) + RELAY_POINT_META_KEYS
        )
        self.vat_meta_keys = _split_keys(settings.extra.get("vat_meta_keys")) + VAT_META_KEYS
        # Whether the shop has the Shipment Tracking extension (None: not asked yet), and
        # the providers it knows, read once.
        self._has_tracking: bool | None = None
        self._tracking_providers: set[str] | None = None

    def close(self) -> None:
        self.http.close()

    # --- webhooks -------------------------------------------------------------------------

    @staticmethod
    def signature(secret: str, body: bytes) -> str:
        """X-WC-Webhook-Signature: base64(HMAC-SHA256(secret, raw body))."""
        key = _wp_specialchars_decode(secret).encode("utf-8")
        return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode("ascii")

    @staticmethod
    def is_ping(body: bytes, headers: Mapping[str, str]) -> bool:
        """Whether this is the unsigned `webhook_id=N` ping sent when a webhook is saved.

        The service answers it 200 without verifying (it carries no signature) and
        without storing anything.
        """
        if any(key.lower().startswith("x-wc-webhook-") for key in headers.keys()):
            return False
        return PING_BODY.fullmatch(body.strip()) is not None

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Check X-WC-Webhook-Signature against the shop's webhook secret, as given.

        The secret may legitimately be "" on the WooCommerce side; refusing shops without a
        configured secret is the service's decision, not this method's.
        """
        signature = _header(headers, "X-WC-Webhook-Signature")
        if not signature or not signature.strip():
            raise InvalidSignature("X-WC-Webhook-Signature header missing")
        expected = self.signature(self.settings.webhook_secret, body).encode("ascii")
        given = signature.strip().encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
            raise InvalidSignature("X-WC-Webhook-Signature does not match the body")

    def describe_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Topic from X-WC-Webhook-Topic; dedupe key `{id}:{date_modified_gmt}`.

        The body must be what the topic carries: `order.deleted` only `{"id": N}`, the
        other order topics the whole order (TOPIC_BODIES). Its content key names it
        whatever the headers say: `order:{id}:{date_modified_gmt}` or `deleted:{id}`.
        A deletion's dedupe key adds the delivery id (WooCommerce never retries one); its
        content key makes a re-post of it a duplicate until the order is seen again.
        """
        if self.is_ping(body, headers):
            webhook_id = body.strip().partition(b"=")[2].decode("ascii")
            return WebhookDelivery(topic="ping", dedupe_key=f"ping:{webhook_id}", is_ping=True)
        topic = (_header(headers, "X-WC-Webhook-Topic") or "").strip()
        if not topic:
            raise BadPayload("X-WC-Webhook-Topic header missing")
        data = load_json(body, f"{topic} body")
        expected = TOPIC_BODIES.get(topic)
        if expected is None:
            raise TopicMismatch(topic, f"{topic} is not a topic Comptoir handles")
        order = _obj(data, f"{topic} body")
        order_id = _id(order.get("id"), "id")
        found = DELETED_BODY if set(order) == {"id"} else ORDER_BODY
        if found != expected:
            raise TopicMismatch(topic, f"{topic} carries {expected}, this body is {found}")
        if found == DELETED_BODY:
            delivery = (_header(headers, "X-WC-Webhook-Delivery-ID") or "").strip()
            key = f"{order_id}:deleted" + (f":{delivery}" if delivery else "")
            return WebhookDelivery(topic, key[:200], order_id, content_key=f"deleted:{order_id}")
        modified = _text(order.get("date_modified_gmt"), "date_modified_gmt").strip()
        _required_date(modified, "date_modified_gmt")
        return WebhookDelivery(
            topic,
            f"{order_id}:{modified}",
            order_id,
            content_key=f"order:{order_id}:{modified}",
        )

    def register_webhooks(self, callback_url: str) -> list[str]:
        """Create our order webhooks: GET then POST /wp-json/wc/v3/webhooks.

        Existing webhooks with the same delivery_url and topic are kept; a paused or
        disabled one (WooCommerce disables after 5 failed deliveries) is set active again
        with PUT /webhooks/{id}. Returns the ids of the webhooks created.
        """
        secret = self.settings.webhook_secret
        if not secret:
            raise PermanentError(
                "no webhook secret: WooCommerce would sign with one Comptoir does not know"
            )
        existing = list(self._all_webhooks())
        created: list[str] = []
        for topic in self.webhook_topics:
            matches = [
                hook
                for hook in existing
                if hook.get("delivery_url") == callback_url and hook.get("topic") == topic
            ]
            for hook in matches:
                if hook.get("status") != "active":
                    hook_id = _id(hook.get("id"), "webhooks[].id")
                    self.http.request("PUT", f"{API}/webhooks/{hook_id}", json={"status": "active"})
            if matches:
                continue
            response = self.http.request(
                "POST",
                f"{API}/webhooks",
                json={
                    "name": f"Comptoir {topic}",
                    "topic": topic,
                    "delivery_url": callback_url,
                    "secret": secret,
                    "status": "active",
                },
            )
            answer = _obj(load_json(response.content, "POST /webhooks"), "POST /webhooks")
            created.append(_id(answer.get("id"), "webhook id"))
        return created

    def _all_webhooks(self) -> Iterator[dict[str, Any]]:
        """GET /wp-json/wc/v3/webhooks, every page."""
        page = 1
        while True:
            response = self._get("/webhooks", {"per_page": str(PER_PAGE), "page": str(page)})
            hooks = _list(load_json(response.content, "GET /webhooks"), "webhooks")
            for index, hook in enumerate(hooks):
                yield _obj(hook, f"webhooks[{index}]")
            total_pages = self._total_pages(response)
            if total_pages is None or page >= total_pages or not hooks:
                return
            page += 1

    # --- orders ---------------------------------------------------------------------------

    def parse_order(self, payload: bytes) -> ShopOrder:
        """Read one order: a `GET /wp-json/wc/v3/orders/{id}` answer or an `order.*` body."""
        return self._parse(load_json(payload, "order"))

    def fetch_order(self, external_id: str) -> ShopOrder:
        """GET /wp-json/wc/v3/orders/{id}."""
        order_id = numeric_order_id(external_id, "WooCommerce")
        response = self._get(f"/orders/{order_id}")
        return self._parse(load_json(response.content, f"GET /orders/{order_id}"))

    def fetch_transactions(self, external_id: str) -> tuple[ShopTransaction, ...]:
        """GET /wp-json/wc/v3/orders/{id}; payments synthesized from the order (see module)."""
        transactions = self.fetch_order(external_id).transactions
        return transactions or ()

    def list_orders(self, changed_since: dt.datetime, page: str | None = None) -> OrderBatch:
        """GET /wp-json/wc/v3/orders?modified_after=…&dates_are_gmt=true&orderby=modified.

        `modified_after` is exclusive, so it is sent one second early and the answer is
        trimmed to `changed_since`; pages follow X-WP-TotalPages.
        """
        number = 1 if page is None else int(page) if DIGITS.fullmatch(page) else 0
        if number < 1:
            raise ValueError(f"page {page!r} is not a page number")
        since = to_utc(changed_since)
        after = (since - dt.timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S")
        params = {
            "modified_after": after,
            "dates_are_gmt": "true",
            "orderby": "modified",
            "order": "asc",
            "per_page": str(PER_PAGE),
            "page": str(number),
            "status": "any",
        }
        response = self._get("/orders", params)
        items = _list(load_json(response.content, "GET /orders"), "orders")
        orders = []
        rejected = []
        for item in items:
            try:
                orders.append(self._parse(item))
            except BadPayload as exc:
                rejected.append(reject(item, exc))
        total_pages = self._total_pages(response)
        if total_pages is None:
            has_more = len(items) >= PER_PAGE
        else:
            has_more = number < total_pages
        return OrderBatch(
            orders=tuple(order for order in orders if order.updated_at >= since),
            next_page=str(number + 1) if has_more else None,
            rejected=tuple(rejected),
        )

    # --- catalogs -------------------------------------------------------------------------

    def list_statuses(self) -> list[ShopChoice]:
        """GET /wp-json/wc/v3/reports/orders/totals (slug, name), core statuses as fallback.

        The report lists every registered status, plugins' custom ones included.
        """
        try:
            rows = _list(
                load_json(self._get("/reports/orders/totals").content, "order totals"),
                "order totals",
            )
            choices = []
            for index, row in enumerate(rows):
                row = _obj(row, f"order totals[{index}]")
                slug = _text(row.get("slug"), f"order totals[{index}].slug").strip()
                name = _label(row.get("name"), f"order totals[{index}].name")
                if slug:
                    choices.append(ShopChoice(slug, name or slug))
        except ConnectorError as exc:
            if isinstance(exc, RetryableError | AuthFailed):
                raise
            log.info("WooCommerce order totals report unavailable (%s): core statuses", exc)
            choices = []
        return choices or [ShopChoice(slug, label) for slug, label in CORE_STATUSES]

    def list_carriers(self) -> list[ShopChoice]:
        """GET /wp-json/wc/v3/shipping_methods (id, title).

        WooCommerce has no carrier concept: these are the shipping method types; an order's
        shipping_label is the method title the buyer chose.
        """
        return self._choices("/shipping_methods", "shipping_methods")

    def list_payment_methods(self) -> list[ShopChoice]:
        """GET /wp-json/wc/v3/payment_gateways (id, title), disabled gateways included."""
        return self._choices("/payment_gateways", "payment_gateways")

    def test_connection(self) -> str:
        """GET /wp-json/wc/v3/system_status (authenticated, unlike the API index)."""
        data = _obj(load_json(self._get("/system_status").content, "system_status"), "status")
        environment = _opt_obj(data.get("environment"), "system_status.environment")
        version = _text(environment.get("version"), "environment.version").strip()
        home = _text(environment.get("home_url"), "environment.home_url").strip()
        return f"WooCommerce {version or '?'} at {home or self.settings.base_url}"

    # --- write-backs -----------------------------------------------------------------------

    def push_status(
        self, external_id: str, status: str, *, notify: bool = True, reason: str = ""
    ) -> PushOutcome:
        """PUT /wp-json/wc/v3/orders/{id} {"status": …} unless GET /orders/{id} shows it already.

        `notify` is ignored: WooCommerce has no per-call e-mail switch, its e-mails follow
        the shop's settings for each status. A `reason` is added first as a private note
        (POST /orders/{id}/notes, unless the same note is there), so that a retry after a
        crash between the two writes finds the note and only sets the status. The answer
        is the order, not a record of the change: remote_ref is "".
        """
        wanted = status.strip()
        order_id = numeric_order_id(external_id, "WooCommerce")
        response = self._get(f"/orders/{order_id}")
        order = _obj(load_json(response.content, f"GET /orders/{order_id}"), "order")
        if _text(order.get("status"), "status").strip() == wanted:
            return PushOutcome.already_there()
        if reason.strip():
            note = _reason_note(wanted, reason.strip())
            if self._find_note(order_id, note, customer_note=False, since=None) is None:
                self._add_note(order_id, note, customer_note=False)
        self.http.request("PUT", f"{API}/orders/{order_id}", json={"status": wanted})
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
        """POST /wp-json/wc/v3/orders/{id}/notes unless GET …/notes?type=any holds this note.

        This note is one with the same text and the same customer_note flag, created
        (`date_created_gmt`) at or after `since` less CLOCK_SKEW: an older note with the
        same text is another comment. remote_ref is the note id. A customer-visible note
        (customer_note true) is always e-mailed to the buyer by WooCommerce ("Customer
        note"), so `notify` cannot hold it back; `ref` is not needed, notes are dated.
        """
        note = text.strip()
        order_id = numeric_order_id(external_id, "WooCommerce")
        found = self._find_note(order_id, note, customer_note=customer_visible, since=since)
        if found is not None:
            return PushOutcome.already_there(found)
        return PushOutcome(
            remote_ref=self._add_note(order_id, note, customer_note=customer_visible)
        )

    def _find_note(
        self, order_id: str, text: str, *, customer_note: bool, since: dt.datetime | None
    ) -> str | None:
        """GET /wp-json/wc/v3/orders/{id}/notes?type=any: the id of a note with this text
        and flag that may be ours (see may_be_ours)."""
        response = self._get(f"/orders/{order_id}/notes", {"type": "any"})
        notes = _list(load_json(response.content, f"GET /orders/{order_id}/notes"), "notes")
        for index, item in enumerate(notes):
            entry = _obj(item, f"notes[{index}]")
            if entry.get("customer_note") is not customer_note:
                continue
            # WordPress may hand stored text back with HTML entities.
            if not same_text(_label(entry.get("note"), f"notes[{index}].note"), text):
                continue
            created = _date(entry.get("date_created_gmt"), f"notes[{index}].date_created_gmt")
            if may_be_ours(created, since):
                return _id(entry.get("id"), f"notes[{index}].id")
        return None

    def _add_note(self, order_id: str, text: str, *, customer_note: bool) -> str:
        """POST /wp-json/wc/v3/orders/{id}/notes; the new note's id."""
        response = self.http.request(
            "POST",
            f"{API}/orders/{order_id}/notes",
            json={"note": text, "customer_note": customer_note, "added_by_user": False},
        )
        created = _obj(load_json(response.content, f"POST /orders/{order_id}/notes"), "note")
        return _id(created.get("id"), "note id")

    def push_shipment(
        self, external_id: str, shipment: ShipmentToPush, *, since: dt.datetime | None = None
    ) -> PushOutcome:
        """Show a shipment's tracking at the shop, reading it first so nothing is written twice.

        With the Shipment Tracking extension (GET …/orders/{id}/shipment-trackings answers a
        list): one tracking item per parcel whose number the order does not hold yet (POST),
        then the items this shipment had whose number was corrected away are deleted; a
        cancelled shipment's items are deleted. remote_ref is the first parcel's item id
        (the shipment's reference when it has no tracking), parcel_refs every parcel's.
        Without it (404 rest_no_route): a customer note with the numbers and links, unless
        that note is there since `since` less CLOCK_SKEW; a cancellation leaves a private
        note. The order status is not set here: the milestone message that follows does.
        """
        order_id = numeric_order_id(external_id, "WooCommerce")
        items = self._tracking_items(order_id)
        if items is None:
            return self._push_shipment_note(order_id, shipment, since)
        ours = {p.external_id for p in shipment.parcels if p.external_id}
        if shipment.external_id:
            ours.add(shipment.external_id)
        numbers = set(shipment.tracking_numbers)
        remote_ref = shipment.external_id or shipment.reference
        if shipment.cancelled:
            doomed = [i for i in items if i.tracking_id in ours or i.number in numbers]
            for item in doomed:
                self._delete_tracking(order_id, item.tracking_id)
            return PushOutcome(written=bool(doomed), remote_ref=remote_ref)
        held: dict[str, str] = {}
        for item in items:
            held.setdefault(item.number, item.tracking_id)
        written = False
        refs = []
        for parcel in shipment.parcels:
            tracking_id = held.get(parcel.tracking_number)
            if tracking_id is None:
                tracking_id = self._add_tracking(order_id, shipment, parcel)
                held[parcel.tracking_number] = tracking_id
                written = True
            refs.append((parcel.tracking_number, tracking_id))
        # Corrected numbers: their new item is there first, so the buyer never sees none.
        for item in items:
            if item.tracking_id in ours and item.number not in numbers:
                self._delete_tracking(order_id, item.tracking_id)
                written = True
        return PushOutcome(
            written=written, remote_ref=refs[0][1] if refs else remote_ref, parcel_refs=tuple(refs)
        )

    def _tracking_items(self, order_id: str) -> list[_Tracking] | None:
        """GET …/wc-shipment-tracking/v3/orders/{id}/shipment-trackings; None when the shop
        has no such route (no extension: 404 rest_no_route), remembered for this connector."""
        if self._has_tracking is False:
            return None
        path = f"{TRACKING_API}/orders/{order_id}/shipment-trackings"
        try:
            response = self.http.request("GET", path)
        except NotFoundAtShop as exc:
            if "rest_no_route" not in str(exc):
                raise
            self._has_tracking = False
            return None
        data = load_json(response.content, f"GET {path}")
        if not isinstance(data, list):
            raise BadPayload(f"GET {path}: expected a list of tracking items")
        self._has_tracking = True
        items = []
        for index, raw in enumerate(data):
            entry = _obj(raw, f"shipment-trackings[{index}]")
            tracking_id = _text(entry.get("tracking_id"), "tracking_id").strip()
            number = _text(entry.get("tracking_number"), "tracking_number").strip()
            if tracking_id:
                items.append(_Tracking(tracking_id, number))
        return items

    def _providers(self) -> set[str]:
        """The providers the extension knows, as names and slugs: GET
        …/shipment-trackings/providers ({country: {name: url template}}), once."""
        if self._tracking_providers is None:
            path = f"{TRACKING_API}/shipment-trackings/providers"
            groups = _opt_obj(load_json(self.http.request("GET", path).content, path), path)
            names: set[str] = set()
            for group in groups.values():
                if isinstance(group, dict):
                    names.update(_slug(name) for name in group)
            self._tracking_providers = names
        return self._tracking_providers

    def _add_tracking(self, order_id: str, shipment: ShipmentToPush, parcel: ParcelToPush) -> str:
        """POST …/orders/{id}/shipment-trackings for one parcel; the new item's id.

        A carrier code the extension knows (name or slug) goes as `tracking_provider` and
        the extension links it; any other carrier as `custom_tracking_provider` with the
        parcel's full link (the extension shows a custom link as given, no placeholders).
        """
        shipped = shipment.shipped_at or dt.datetime.now(dt.UTC)
        body: dict[str, str] = {
            "tracking_number": parcel.tracking_number,
            "date_shipped": to_utc(shipped).date().isoformat(),
        }
        code = shipment.carrier_code.strip()
        if code and _slug(code) in self._providers():
            body["tracking_provider"] = code
        else:
            body["custom_tracking_provider"] = code or shipment.carrier_name
            if parcel.tracking_url:
                body["custom_tracking_link"] = parcel.tracking_url
        path = f"{TRACKING_API}/orders/{order_id}/shipment-trackings"
        created = _obj(load_json(self.http.request("POST", path, json=body).content, path), path)
        tracking_id = _text(created.get("tracking_id"), "tracking_id").strip()
        if not tracking_id:
            raise BadPayload(f"POST {path}: the answer has no tracking_id")
        return tracking_id

    def _delete_tracking(self, order_id: str, tracking_id: str) -> None:
        """DELETE …/orders/{id}/shipment-trackings/{tracking_id}; gone already is fine."""
        item = quote(tracking_id, safe="")
        path = f"{TRACKING_API}/orders/{order_id}/shipment-trackings/{item}"
        try:
            self.http.request("DELETE", path)
        except NotFoundAtShop:
            pass

    def _push_shipment_note(
        self, order_id: str, shipment: ShipmentToPush, since: dt.datetime | None
    ) -> PushOutcome:
        """A shop without the tracking extension: the links in a customer note (e-mailed to
        the buyer), or for a cancelled shipment a private note; remote_ref the reference."""
        if not shipment.parcels:
            return PushOutcome.already_there(shipment.external_id or shipment.reference)
        customer = not shipment.cancelled
        text = _shipment_note(shipment) if customer else _cancelled_note(shipment)
        remote_ref = shipment.external_id or shipment.reference
        if self._find_note(order_id, text, customer_note=customer, since=since) is not None:
            return PushOutcome.already_there(remote_ref)
        self._add_note(order_id, text, customer_note=customer)
        return PushOutcome(remote_ref=remote_ref)

    # --- internals ------------------------------------------------------------------------

    def _get(self, path: str, params: Mapping[str, str] | None = None) -> httpx.Response:
        return self.http.request("GET", f"{API}{path}", params=params)

    @staticmethod
    def _total_pages(response: httpx.Response) -> int | None:
        value = (response.headers.get("X-WP-TotalPages") or "").strip()
        return int(value) if DIGITS.fullmatch(value) else None

    def _choices(self, path: str, what: str) -> list[ShopChoice]:
        rows = _list(load_json(self._get(path).content, what), what)
        choices = []
        for index, row in enumerate(rows):
            row = _obj(row, f"{what}[{index}]")
            code = _text(row.get("id"), f"{what}[{index}].id").strip()
            label = _label(row.get("title"), f"{what}[{index}].title") or _label(
                row.get("method_title"), f"{what}[{index}].method_title"
            )
            if code:
                choices.append(ShopChoice(code, label or code))
        return choices

    def _parse(self, data: Any) -> ShopOrder:
        try:
            return self._order(_obj(data, "order"))
        except BadPayload:
            raise
        except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadPayload(f"order: {type(exc).__name__}: {exc}"[:300]) from exc

    def _order(self, data: dict[str, Any]) -> ShopOrder:
        order_id = _id(data.get("id"), "id")
        status = _text(data.get("status"), "status").strip()
        if not status:
            raise BadPayload("status: missing")
        currency = _text(data.get("currency"), "currency").strip().upper()
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise BadPayload(f"currency: {currency!r} is not an ISO code"[:200])
        placed_at = _required_date(data.get("date_created_gmt"), "date_created_gmt")
        updated_at = _required_date(data.get("date_modified_gmt"), "date_modified_gmt")
        include_tax = data.get("prices_include_tax", False)
        if not isinstance(include_tax, bool):
            raise BadPayload(f"prices_include_tax: expected true or false, got {include_tax!r}")

        meta = _meta_values(data.get("meta_data"), "meta_data")
        billing = self._address(
            _opt_obj(data.get("billing"), "billing"), "billing", vat_id=self._vat_id(meta)
        )
        shipping: ShopAddress | None = self._address(
            _opt_obj(data.get("shipping"), "shipping"),
            "shipping",
            relay_point_id=self._relay_point_id(meta),
        )
        if shipping is not None and not shipping.as_dict():
            shipping = None

        rates = self._tax_rates(data.get("tax_lines"))
        shipping_lines = [
            _obj(entry, f"shipping_lines[{index}]")
            for index, entry in enumerate(_list(data.get("shipping_lines"), "shipping_lines"))
        ]
        shipping_label = (
            _label(shipping_lines[0].get("method_title"), "shipping_lines[0].method_title")
            if shipping_lines
            else ""
        )
        packages = _shipped_items(shipping_lines)
        created_via = _text(data.get("created_via"), "created_via").strip()
        # WooCommerce's checkout adds no shipping line when nothing in the cart needs one.
        nothing_shipped = not shipping_lines and created_via in ("checkout", "store-api")
        items = [
            _obj(item, f"line_items[{index}]")
            for index, item in enumerate(_list(data.get("line_items"), "line_items"))
        ]
        parents = _bundle_parents(items)
        lines = [
            self._product_line(item, index, rates, include_tax, parents)
            for index, item in enumerate(items)
        ]
        shipped = [
            packages is not None and _is_shipped(packages, line.name, line.quantity)
            for line in lines
        ]
        # A list that names none of the lines is no package list of this order (renamed
        # products, a plugin's meta): it tells nothing.
        if nothing_shipped or any(shipped):
            lines = [
                line if is_shipped else replace(line, needs_shipping=False)
                for line, is_shipped in zip(lines, shipped, strict=True)
            ]
        lines = _fold_bundles(lines)
        # What the lines cost tax included before the coupons, as WooCommerce states it.
        subtotal = sum(
            (
                _money(item.get("subtotal"), f"line_items[{index}].subtotal")
                + _money(item.get("subtotal_tax"), f"line_items[{index}].subtotal_tax")
                for index, item in enumerate(items)
            ),
            Decimal("0.00"),
        )
        for index, fee in enumerate(_list(data.get("fee_lines"), "fee_lines")):
            line = self._fee_line(_obj(fee, f"fee_lines[{index}]"), index, rates, include_tax)
            lines.append(line)
            subtotal += line.total_gross

        discounts = []
        for index, coupon in enumerate(_list(data.get("coupon_lines"), "coupon_lines")):
            coupon = _obj(coupon, f"coupon_lines[{index}]")
            code = _label(coupon.get("code"), f"coupon_lines[{index}].code")
            amount = _money(coupon.get("discount"), f"coupon_lines[{index}].discount") + _money(
                coupon.get("discount_tax"), f"coupon_lines[{index}].discount_tax"
            )
            if code or amount:
                discounts.append(ShopDiscount(code=code, amount=amount, label=code))
        codes = [found.code for found in discounts if found.code]
        discount_total = _money(data.get("discount_total"), "discount_total") + _money(
            data.get("discount_tax"), "discount_tax"
        )

        grand_total = _money(data.get("total"), "total")
        shipping_tax = _money(data.get("shipping_tax"), "shipping_tax")
        payment_method = _text(data.get("payment_method"), "payment_method").strip()
        customer_id = _opt_id(data.get("customer_id"), "customer_id")
        return ShopOrder(
            external_id=order_id,
            number=_text(data.get("number"), "number").strip() or order_id,
            placed_at=placed_at,
            updated_at=updated_at,
            currency=currency,
            status=status,
            status_label=STATUS_LABELS.get(status, ""),
            customer=ShopCustomer(
                external_id=customer_id,
                email=billing.email,
                first_name=billing.first_name,
                last_name=billing.last_name,
                phone=billing.phone,
                company=billing.company,
            ),
            email=billing.email,
            billing=billing,
            shipping=shipping,
            lines=tuple(lines),
            grand_total=grand_total,
            subtotal=subtotal,
            discount_total=discount_total,
            shipping_total=_money(data.get("shipping_total"), "shipping_total") + shipping_tax,
            shipping_tax=shipping_tax,
            tax_total=_money(data.get("total_tax"), "total_tax"),
            prices_include_tax=include_tax,
            shipping_label=shipping_label,
            payment_method=payment_method,
            payment_method_label=_label(data.get("payment_method_title"), "payment_method_title"),
            discount_codes=tuple(codes),
            discounts=tuple(discounts),
            buyer_note=_text(data.get("customer_note"), "customer_note").strip(),
            cancelled_at=updated_at if status == "cancelled" else None,
            transactions=self._transactions(
                data, order_id, currency, grand_total, payment_method, updated_at
            ),
            shipments=_tracked_shipments(meta) if "meta_data" in data else None,
        )

    def _address(
        self, raw: dict[str, Any], field: str, *, vat_id: str = "", relay_point_id: str = ""
    ) -> ShopAddress:
        def get(name: str) -> str:
            return _text(raw.get(name), f"{field}.{name}").strip()

        return ShopAddress(
            first_name=get("first_name"),
            last_name=get("last_name"),
            company=get("company"),
            line1=get("address_1"),
            line2=get("address_2"),
            postcode=get("postcode"),
            city=get("city"),
            region=get("state"),
            country_code=get("country").upper(),
            phone=get("phone"),
            email=get("email"),
            vat_id=vat_id,
            relay_point_id=relay_point_id,
        )

    def _vat_id(self, meta: Mapping[str, Any]) -> str:
        for key in self.vat_meta_keys:
            value = meta.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip().upper().replace(" ", "")
        return ""

    def _relay_point_id(self, meta: Mapping[str, Any]) -> str:
        for key in self.relay_point_meta_keys:
            found = _relay_id(meta.get(key))
            if found:
                return found
        return ""

    @staticmethod
    def _tax_rates(tax_lines: Any) -> dict[str, Decimal | None]:
        """rate_id → percent (None when the shop predates `rate_percent`)."""
        rates: dict[str, Decimal | None] = {}
        for index, entry in enumerate(_list(tax_lines, "tax_lines")):
            entry = _obj(entry, f"tax_lines[{index}]")
            rate_id = _id(entry.get("rate_id"), f"tax_lines[{index}].rate_id")
            percent = entry.get("rate_percent")
            rates[rate_id] = (
                None if percent in (None, "") else rate(percent, f"tax_lines[{index}].rate_percent")
            )
        return rates

    @staticmethod
    def _line_rate(
        item: dict[str, Any],
        field: str,
        rates: Mapping[str, Decimal | None],
        net: Decimal,
        tax: Decimal,
    ) -> Decimal:
        listed: list[tuple[str, bool]] = []
        for index, entry in enumerate(_list(item.get("taxes"), f"{field}.taxes")):
            entry = _obj(entry, f"{field}.taxes[{index}]")
            rate_id = _id(entry.get("id"), f"{field}.taxes[{index}].id")
            amount = _money(entry.get("total"), f"{field}.taxes[{index}].total")
            before = _money(entry.get("subtotal"), f"{field}.taxes[{index}].subtotal")
            listed.append((rate_id, bool(amount or before)))
        # The rates that taxed the line; a free line (bundle child) keeps its class's rates.
        chosen = [rate_id for rate_id, applied in listed if applied] or [
            rate_id for rate_id, _ in listed
        ]
        percents = [rates.get(rate_id) for rate_id in chosen]
        if chosen and all(percent is not None for percent in percents):
            return rate(sum(p for p in percents if p is not None), f"{field} tax rate")
        if not net or not tax:
            return Decimal("0")
        computed = (tax * 100 / net).quantize(CENT, rounding=ROUND_HALF_UP)
        return rate(computed, f"{field} tax rate")

    def _product_line(
        self,
        item: dict[str, Any],
        index: int,
        rates: Mapping[str, Decimal | None],
        include_tax: bool,
        parents: Mapping[str, str],
    ) -> ShopLine:
        field = f"line_items[{index}]"
        external_id = _id(item.get("id"), f"{field}.id")
        quantity = _quantity(item.get("quantity"), f"{field}.quantity")
        subtotal = _money(item.get("subtotal"), f"{field}.subtotal")
        subtotal_tax = _money(item.get("subtotal_tax"), f"{field}.subtotal_tax")
        total = _money(item.get("total"), f"{field}.total")
        total_tax = _money(item.get("total_tax"), f"{field}.total_tax")
        if include_tax:
            unit_price = _price((subtotal + subtotal_tax) / quantity, f"{field}.subtotal")
            discount = (subtotal + subtotal_tax) - (total + total_tax)
        else:
            discount = subtotal - total
            # `price` is the line's total over its quantity, at the shop's precision (3.225
            # where the line says 6.45): the unit price when no coupon took anything off.
            raw_price = item.get("price")
            if not discount and raw_price not in (None, ""):
                unit_price = _price(raw_price, f"{field}.price")
            else:
                unit_price = _price(subtotal / quantity, f"{field}.subtotal")
        return ShopLine(
            external_id=external_id,
            name=_label(item.get("name"), f"{field}.name"),
            quantity=quantity,
            unit_price=unit_price,
            sku=_text(item.get("sku"), f"{field}.sku").strip(),
            ean=_text(item.get("global_unique_id"), f"{field}.global_unique_id").strip(),
            options=_options(item.get("meta_data"), f"{field}.meta_data"),
            tax_rate=self._line_rate(item, field, rates, subtotal, subtotal_tax),
            discount_amount=discount,
            total_net=total,
            tax_amount=total_tax,
            total_gross=total + total_tax,
            kind=LineKind.PRODUCT,
            parent_external_id=parents.get(external_id),
        )

    def _fee_line(
        self,
        fee: dict[str, Any],
        index: int,
        rates: Mapping[str, Decimal | None],
        include_tax: bool,
    ) -> ShopLine:
        field = f"fee_lines[{index}]"
        name = _label(fee.get("name"), f"{field}.name")
        total = _money(fee.get("total"), f"{field}.total")
        total_tax = _money(fee.get("total_tax"), f"{field}.total_tax")
        folded = name.lower()
        wrap = any(word in folded for word in GIFT_WRAP_WORDS)
        return ShopLine(
            external_id=_id(fee.get("id"), f"{field}.id"),
            name=name,
            quantity=1,
            unit_price=total + total_tax if include_tax else total,
            tax_rate=self._line_rate(fee, field, rates, total, total_tax),
            total_net=total,
            tax_amount=total_tax,
            total_gross=total + total_tax,
            kind=LineKind.GIFT_WRAP if wrap else LineKind.FEE,
            # A fee is a charge, not goods to pick and ship.
            needs_shipping=False,
        )

    @staticmethod
    def _transactions(
        data: dict[str, Any],
        order_id: str,
        currency: str,
        grand_total: Decimal,
        method: str,
        updated_at: dt.datetime,
    ) -> tuple[ShopTransaction, ...]:
        transactions = []
        paid_at = _date(data.get("date_paid_gmt"), "date_paid_gmt")
        reference = _text(data.get("transaction_id"), "transaction_id").strip()
        status = _text(data.get("status"), "status").strip()
        if paid_at is None and (
            status in PAID_STATUSES or _list(data.get("refunds"), "refunds") or reference
        ):
            # Paid without a payment date (an order marked paid by hand, imported, or
            # refunded before WooCommerce kept date_paid): a refund or a paid status says
            # the money came in; when is the completion date, else the order's own.
            paid_at = _date(data.get("date_completed_gmt"), "date_completed_gmt") or (
                _required_date(data.get("date_created_gmt"), "date_created_gmt")
            )
        if paid_at is not None:
            transactions.append(
                ShopTransaction(
                    external_id=f"{order_id}:paid",
                    kind=TransactionKind.CAPTURE,
                    amount=grand_total,
                    currency=currency,
                    occurred_at=paid_at,
                    method=method,
                    reference=reference,
                )
            )
        for index, refund in enumerate(_list(data.get("refunds"), "refunds")):
            refund = _obj(refund, f"refunds[{index}]")
            transactions.append(
                ShopTransaction(
                    external_id=f"refund:{_id(refund.get('id'), f'refunds[{index}].id')}",
                    kind=TransactionKind.REFUND,
                    # WooCommerce lists refunds with negative totals ("-5.00").
                    amount=abs(_money(refund.get("total"), f"refunds[{index}].total")),
                    currency=currency,
                    occurred_at=updated_at,
                    method=method,
                )
            )
        return tuple(transactions)
