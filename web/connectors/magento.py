"""Magento 2 Open Source / Adobe Commerce through the REST API V1.

Vendor pages:
- REST reference (admin), orders and store endpoints:
  https://developer.adobe.com/commerce/webapi/rest/quick-reference/
- Searches (searchCriteria, filter groups, condition types, sort orders, paging):
  https://developer.adobe.com/commerce/webapi/rest/use-rest/performing-searches/
- Filtered responses (`fields=`):
  https://developer.adobe.com/commerce/webapi/rest/use-rest/retrieve-filtered-responses/
- Token authentication (admin and integration tokens, bearer use of integration tokens):
  https://developer.adobe.com/commerce/webapi/get-started/authentication/gs-authentication-token/
- The order resource as an admin reads it (source of the published fixture):
  https://developer.adobe.com/commerce/webapi/rest/tutorials/orders/order-create-order/
- "The system does not currently support webhooks": https://developer.adobe.com/commerce/webapi/get-started/
- Order management (comments, cancel), `salesOrderManagementV1` in the admin schema:
  https://developer.adobe.com/commerce/webapi/rest/quick-reference/ (POST
  /V1/orders/{id}/comments, POST /V1/orders/{id}/cancel)

What the payload cannot tell us, and how we cope:
- No webhooks in Open Source: Comptoir's module (modules/magento) sends signed change
  notifications (docs/NOTIFICATIONS.md, web/connectors/notifications.py); without it the
  change probe (list_changes: `fields=` trimmed to ids and updated_at) finds what changed,
  and the reconciliation poll reads whole pages.
- No core REST list of order statuses, carriers or payment methods: the catalogues are
  Magento's defaults merged with what the most recent orders carry (see each method).
- Times are UTC `YYYY-MM-DD HH:MM:SS` without a zone: read as UTC.
- Money is JSON numbers: the body is parsed with parse_float=Decimal so no float ever appears.
- Items come flat: configurable and bundle children carry `parent_item_id` (and an
  embedded `parent_item`). One line per thing ordered: a configurable's simple child (same
  SKU, price 0) is folded into its parent, which keeps the price and the ordered quantity
  and takes the chosen options (`product_options.attributes_info` labels when the answer
  carries them, else the child's name "{parent}-{option}-{option}"). A bundle's children
  follow it as components: their own quantities to pick, no money, their own tax rate. The
  bundle line carries the price where the buyer saw it: its own row when Magento fills it
  (fixed price, or a dynamic price repeated by recalculateParent), else the sum of its
  children's rows; children at several tax rates give it their blended rate. So the top
  level's quantities add up to `total_qty_ordered`.
- `product_type` virtual, downloadable or giftcard, or `is_virtual`, marks a line that
  needs no shipping (a bundle whose parts are all virtual too).
- Unit prices are in the order's basis (price_incl_tax when the catalogue includes tax,
  price otherwise) at the shop's precision (price()).
- Line amounts are rebuilt tax included whatever the shop's discount settings: the line
  pays row_total + tax_amount + discount_tax_compensation_amount - discount_amount, and
  its discount is what separates that from the row before discount. The order's
  discount_total is those line discounts with tax plus `shipping_discount_amount`; its one
  ShopDiscount carries `coupon_code` and `discount_description` (Magento keeps a single
  figure for all cart rules).
- No EAN on order items (a custom product attribute at most): ShopLine.ean is "".
- No relay-point field in core: the id is read from extension attributes (core MSI
  in-store pickup `pickup_location_code`, or a relay module's attribute whose name says
  relay / relais / pickup / pudo).
- No payment transactions in the order: they are synthesized from `total_paid` (a capture,
  id "{entity_id}:paid") and `total_refunded` (a refund, id "{entity_id}:refunded").
- No cancellation time: the newest `canceled` status-history entry gives it, else updated_at.

Write-back (no write is idempotent, so each one reads the order first):
- Statuses move through the status history: a comment carrying `status` sets it on the
  order (Order::addStatusHistory). "canceled" goes through the cancel action, which runs
  Magento's own checks. Documents (invoice, shipment) are what really make an order
  `complete`; a comment only records the status.
- Comments are status_histories entries: is_visible_on_front = customer-visible,
  is_customer_notified = e-mailed. The answer is `true` only, so no comment id comes back.
  Every comment we post carries a status: Order::addStatusHistory sets the order's status
  to the entry's, so a comment without one would clear it.
- Shipments are Magento shipment documents: POST /V1/order/{id}/ship with the items, their
  quantities and one track per tracking number; tracking numbers added later go through
  POST /V1/shipment/track, corrected ones are replaced (the new track added, the old one
  deleted). A track holds a carrier code, a title and a number, no link: the buyer's e-mail
  and order page show the number. Each shipment we create carries a private comment
  naming our shipment ("Comptoir shipment EXP-12-1"), so a retry after a lost answer
  recognises it exactly. Magento's REST API cannot cancel or delete a shipment: a shipment
  cancelled in Comptoir loses its tracks there, its items stay shipped (PushOutcome.cannot).

Shipments made in the shop come with the orders (fetch_order, list_orders): one
GET /V1/shipments search on the order ids of the page, items mapped to the order's lines
(order_item_id), tracks to parcels (track entity_id). Magento never cancels a shipment.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, TypeVar

import httpx

from web.connectors import notifications
from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ChangeBatch,
    ConnectorError,
    NotFoundAtShop,
    OrderBatch,
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
from web.connectors.jsonread import array as _list
from web.connectors.jsonread import digits_id
from web.connectors.jsonread import loads as _loads
from web.connectors.jsonread import obj as _obj
from web.connectors.jsonread import opt_obj as _opt_obj
from web.connectors.jsonread import text as _text
from web.i18n import N_
from web.models.enums import LineKind, TransactionKind, TransactionStatus

# Magento's default order statuses (sales_order_status install data) and their labels.
DEFAULT_STATUSES: dict[str, str] = {
    "pending": "Pending",
    "pending_payment": "Pending Payment",
    "processing": "Processing",
    "fraud": "Suspected Fraud",
    "payment_review": "Payment Review",
    "holded": "On Hold",
    "complete": "Complete",
    "closed": "Closed",
    "canceled": "Canceled",
}

# The offline shipping carriers of core as an order labels them by default
# ("{carrier title} - {method name}"), keyed on that label; the method code follows.
DEFAULT_CARRIERS: dict[str, str] = {
    "Flat Rate - Fixed": "flatrate_flatrate",
    "Best Way - Table Rate": "tablerate_bestway",
    "Free Shipping - Free": "freeshipping_freeshipping",
}

# The offline payment methods of core and their default titles.
DEFAULT_PAYMENT_METHODS: dict[str, str] = {
    "checkmo": "Check / Money order",
    "banktransfer": "Bank Transfer Payment",
    "cashondelivery": "Cash On Delivery",
    "purchaseorder": "Purchase Order",
    "free": "No Payment Information Required",
}

# Adobe Commerce gift wrapping, in the order's extension attributes: (key prefix, line id).
GIFT_WRAPPING = (("gw", "gw"), ("gw_items", "gw_items"), ("gw_card", "gw_card"))

# The comment of a status change that comes without a reason (the field is required); when
# the buyer is e-mailed, the comment names the new status instead (see _status_comment).
STATUS_COMMENT = "Status updated by Comptoir"
# States whose status no comment may move any more.
FINAL_STATES = ("canceled", "closed")

# Items that never wait for a shipment.
VIRTUAL_TYPES = ("virtual", "downloadable", "giftcard")
CENT = Decimal("0.01")

# Shipments read per call: Magento's optional input limits cap page sizes at 300.
SHIPMENT_PAGE = 300
SHIPMENT_FIELDS = (
    "items[entity_id,order_id,created_at,items[order_item_id,qty],"
    "tracks[entity_id,track_number,title,carrier_code],comments[comment]],total_count"
)
# The private comment that names our shipment on the one we create; read back exactly.
SHIPMENT_COMMENT = "Comptoir shipment {reference}"
_SHIPMENT_COMMENT = re.compile(r"Comptoir shipment (\S+)")
CANNOT_CANCEL_SHIPMENT = N_(
    "Magento cannot cancel a shipment: its tracking numbers were removed there, "
    "its items stay shipped."
)
NOTHING_TO_SHIP = N_("This shipment holds no line Magento can ship.")

RELAY_WORDS = ("relay", "relais", "pickup", "pudo", "retrait", "locker")
RECENT_ORDERS = 100
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
CHANGE_FIELDS = "items[entity_id,updated_at],total_count"

_TOKEN = re.compile(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\|(\d+)")

T = TypeVar("T")


# --- Small typed readers: every failure names the field -----------------------------------


def _id(value: Any, field: str) -> str:
    return digits_id(value, field, "Magento")


def _opt_id(value: Any, field: str) -> str | None:
    return None if value is None or value == "" else _id(value, field)


def _flag(value: Any, field: str) -> bool:
    """Magento's 0/1 flags (sometimes booleans or "0"/"1")."""
    if value is None or value == "":
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal) or (isinstance(value, str) and value.strip().isdigit()):
        return Decimal(str(value).strip()) != 0
    raise BadPayload(f"{field}: {value!r} is not a 0/1 flag")


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise BadPayload(f"{field}: {value!r} is not a quantity")
    amount = money(value, field) if not isinstance(value, int) else Decimal(value)
    if amount != amount.to_integral_value():
        raise BadPayload(f"{field}: {value!r} is not a whole quantity")
    if not 0 <= amount < 10**9:
        raise BadPayload(f"{field}: {value!r} is not a quantity")
    return int(amount)


def _when(value: Any, field: str) -> dt.datetime:
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{field}: expected a timestamp, got {value!r}")
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise BadPayload(f"{field}: {value!r} is not a timestamp") from exc
    if parsed.tzinfo is None:
        # Magento stores and answers UTC, without saying so.
        return parsed.replace(tzinfo=dt.UTC)
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


def _opt_money(value: Any, field: str) -> Decimal | None:
    return None if value is None or value == "" else _money(value, field)


def _rate(value: Any, field: str) -> Decimal:
    if isinstance(value, bool | dict | list):
        raise BadPayload(f"{field}: {value!r} is not a rate")
    try:
        return rate(value, field)
    except ArithmeticError as exc:
        raise BadPayload(f"{field}: {value!r} is not a rate") from exc


def _guarded(field: str, step: Callable[..., T], *args: Any) -> T:
    """Run one parsing step; arithmetic or type surprises become BadPayload naming field."""
    try:
        return step(*args)
    except BadPayload:
        raise
    except (ArithmeticError, ValueError, TypeError, KeyError, AttributeError, IndexError) as exc:
        raise BadPayload(f"{field}: {type(exc).__name__}: {exc}") from exc


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _stamp(value: dt.datetime) -> str:
    """A Magento filter value: UTC, floored to the second (gteq keeps the boundary)."""
    return to_utc(value).strftime(TIME_FORMAT)


def _search(
    groups: Iterable[Iterable[tuple[str, str, str]]],
    sort: Iterable[tuple[str, str]],
    page_size: int,
    page: int = 1,
) -> list[tuple[str, str]]:
    """searchCriteria as query arguments: groups are AND-ed, filters inside a group OR-ed."""
    params: list[tuple[str, str]] = []
    for g_index, group in enumerate(groups):
        for f_index, (field, value, condition) in enumerate(group):
            prefix = f"searchCriteria[filter_groups][{g_index}][filters][{f_index}]"
            params += [
                (f"{prefix}[field]", field),
                (f"{prefix}[value]", value),
                (f"{prefix}[condition_type]", condition),
            ]
    for s_index, (field, direction) in enumerate(sort):
        params += [
            (f"searchCriteria[sortOrders][{s_index}][field]", field),
            (f"searchCriteria[sortOrders][{s_index}][direction]", direction),
        ]
    params += [
        ("searchCriteria[pageSize]", str(page_size)),
        ("searchCriteria[currentPage]", str(page)),
    ]
    return params


# --- The connector ------------------------------------------------------------------------


class MagentoConnector:
    """Orders in and catalogue look-ups for one Magento 2 store view, by polling."""

    platform: ClassVar[str] = "magento"
    api_version: ClassVar[str] = "V1"
    webhook_topics: ClassVar[tuple[str, ...]] = ()
    has_webhooks: ClassVar[bool] = True
    page_size: ClassVar[int] = 100

    def __init__(
        self, settings: ShopSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        base_url = settings.base_url.strip().rstrip("/")
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        # Accept a base URL pasted with its /rest suffix.
        base_url = re.sub(r"/rest$", "", base_url)
        self.store_code = (settings.extra.get("store_code") or "").strip().strip("/")
        self.http = ShopHttp(
            base_url,
            timeout=settings.timeout,
            headers={
                "Authorization": f"Bearer {settings.api_key}",
                "Accept": "application/json",
            },
            transport=transport,
            pacer=settings.pacer,
        )
        configured = settings.extra.get("page_size") or ""
        self.limit = max(1, min(300, int(configured))) if configured.isdigit() else self.page_size

    def _path(self, resource: str) -> str:
        store = f"/{self.store_code}" if self.store_code else ""
        return f"/rest{store}/{self.api_version}/{resource}"

    def _get(self, resource: str, params: list[tuple[str, str]] | None = None) -> Any:
        path = self._path(resource)
        response = self.http.request("GET", path, params=params)
        return _loads(response.content, f"GET {path}")

    def close(self) -> None:
        self.http.close()

    # --- webhooks ---------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """A notification of Comptoir's module: X-Comptoir-Hmac-Sha256 signs the raw body."""
        notifications.verify(self.settings.webhook_secret, body, headers)

    def describe_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """The change a notification names; its `date_upd` is sales_order.updated_at, UTC."""
        return notifications.describe(body, _when)

    # --- orders -----------------------------------------------------------------------

    def parse_order(self, payload: bytes) -> ShopOrder:
        """Read the answer of GET /rest/V1/orders/{id} (also wrapped as {"order": …}, or a
        search answer holding exactly one order)."""
        data = _obj(_loads(payload, "order payload"), "order payload")
        if "entity_id" not in data:
            if isinstance(data.get("order"), dict):
                data = data["order"]
            elif isinstance(data.get("items"), list) and "total_count" in data:
                items = data["items"]
                if len(items) != 1:
                    raise BadPayload(f"items: a search answer with {len(items)} orders, not one")
                data = _obj(items[0], "items[0]")
        return _guarded("order", _parse_order, data)

    def fetch_order(self, external_id: str) -> ShopOrder:
        """GET /rest/V1/orders/{entity_id}, then GET /rest/V1/shipments?searchCriteria… on
        its order_id: the order with the shipments the store holds for it."""
        return self._with_shipments([self._order_only(external_id)])[0]

    def _order_only(self, external_id: str) -> ShopOrder:
        order_id = numeric_order_id(external_id, "Magento")
        order = _obj(self._get(f"orders/{order_id}"), "orders/{id}")
        return _guarded("order", _parse_order, order)

    def fetch_transactions(self, external_id: str) -> tuple[ShopTransaction, ...]:
        """GET /rest/V1/orders/{entity_id}: the payments synthesized from its paid/refunded
        totals (Magento keeps no transaction list for offline methods)."""
        transactions = self._order_only(external_id).transactions
        return transactions or ()

    def _shipments_for(self, order_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """GET /rest/V1/shipments?searchCriteria… order_id in the ids, trimmed to what we
        read, by pages of 300: the store's shipments by order id."""
        groups = [[("order_id", ",".join(order_ids), "in")]]
        found: dict[str, dict[str, Any]] = {}
        page = 1
        while True:
            params = _search(groups, [("entity_id", "ASC")], SHIPMENT_PAGE, page)
            params.append(("fields", SHIPMENT_FIELDS))
            answer = _obj(self._get("shipments", params), "GET shipments")
            items = _list(answer.get("items"), "shipments.items")
            fresh = 0
            for index, item in enumerate(items):
                data = _obj(item, f"shipments.items[{index}]")
                key = _id(data.get("entity_id"), f"shipments.items[{index}].entity_id")
                fresh += key not in found
                found[key] = data
            total = answer.get("total_count")
            # A page past the end comes back as the last page again: stop on nothing new.
            if not isinstance(total, int) or len(found) >= total or not fresh:
                break
            page += 1
        by_order: dict[str, list[dict[str, Any]]] = {}
        for key, data in found.items():
            order_id = _id(data.get("order_id"), f"shipment {key}.order_id")
            by_order.setdefault(order_id, []).append(data)
        return by_order

    def _with_shipments(self, orders: Sequence[ShopOrder]) -> list[ShopOrder]:
        """The orders with ShopOrder.shipments filled from one search of their shipments.

        An integration not allowed to read shipments (Magento_Sales::shipment) leaves them
        unsaid (None), as does a shipment we cannot read: the orders still come in.
        """
        if not orders:
            return []
        try:
            found = self._shipments_for([order.external_id for order in orders])
        except AuthFailed:
            return list(orders)
        filled = []
        for order in orders:
            lines = {
                line.external_id
                for line in order.lines
                if line.parent_external_id is None and line.kind == LineKind.PRODUCT
            }
            try:
                shipments: tuple[ShopShipment, ...] | None = tuple(
                    _guarded("shipment", _parse_shipment, data, lines)
                    for data in found.get(order.external_id, [])
                )
            except BadPayload:
                shipments = None
            filled.append(dataclasses.replace(order, shipments=shipments))
        return filled

    def list_orders(self, changed_since: dt.datetime, page: str | None = None) -> OrderBatch:
        """GET /rest/V1/orders?searchCriteria… on updated_at ≥ since, oldest change first.

        Sorted on (updated_at, entity_id) and paged by key, not by currentPage: the token
        "YYYY-MM-DD HH:MM:SS|entity_id" names the last order read, and the next page asks
        for (updated_at > T) OR (updated_at = T AND entity_id > id) through two filter
        groups. An order changed while we page moves behind the key instead of shifting
        the others into pages already read, and a page past the end cannot come back as
        the last page again (Magento's collections do that with currentPage). The page's
        shipments come with one more call (see fetch_order).
        """
        params = self._page_params(changed_since, page)
        answer = _obj(self._get("orders", params), "GET orders")
        raw = [
            _obj(item, f"items[{index}]")
            for index, item in enumerate(_list(answer.get("items"), "items"))
        ]
        orders: list[ShopOrder] = []
        rejected = []
        for index, item in enumerate(raw):
            try:
                orders.append(_guarded(f"items[{index}]", _parse_order, item))
            except BadPayload as exc:
                rejected.append(reject(item, exc))
        next_page = self._next_page(answer, raw)
        if next_page is None and raw and orders and self._more(answer, raw):
            next_page = f"{orders[-1].updated_at.strftime(TIME_FORMAT)}|{orders[-1].external_id}"
        orders = self._with_shipments(orders)
        return OrderBatch(orders=tuple(orders), next_page=next_page, rejected=tuple(rejected))

    def list_changes(self, changed_since: dt.datetime, page: str | None = None) -> ChangeBatch:
        """The change probe: the search of list_orders trimmed by
        `fields=items[entity_id,updated_at],total_count`: which orders changed, and when."""
        params = self._page_params(changed_since, page)
        params.append(("fields", CHANGE_FIELDS))
        answer = _obj(self._get("orders", params), "GET orders")
        raw = [
            _obj(item, f"items[{index}]")
            for index, item in enumerate(_list(answer.get("items"), "items"))
        ]
        changes = []
        readable = True
        for index, item in enumerate(raw):
            try:
                changes.append(
                    (
                        _id(item.get("entity_id"), f"items[{index}].entity_id"),
                        _when(item.get("updated_at"), f"items[{index}].updated_at"),
                    )
                )
            except BadPayload:
                readable = False  # the full poll parks that order alone
        return ChangeBatch(
            changes=tuple(changes), next_page=self._next_page(answer, raw), readable=readable
        )

    def _page_params(self, changed_since: dt.datetime, page: str | None) -> list[tuple[str, str]]:
        """searchCriteria of one page of orders changed since a time (see list_orders)."""
        if page:
            match = _TOKEN.fullmatch(page.strip())
            if match is None:
                raise BadPayload(f"page: {page!r} is not a Magento page token")
            last_time, last_id = match.groups()
            groups = [
                [("updated_at", last_time, "gteq")],
                [("updated_at", last_time, "gt"), ("entity_id", last_id, "gt")],
            ]
        else:
            groups = [[("updated_at", _stamp(changed_since), "gteq")]]
        return _search(groups, [("updated_at", "ASC"), ("entity_id", "ASC")], self.limit)

    def _more(self, answer: Mapping[str, Any], raw: list[dict[str, Any]]) -> bool:
        total = answer.get("total_count")
        if isinstance(total, int) and not isinstance(total, bool):
            return total > len(raw)
        return len(raw) >= self.limit

    def _next_page(self, answer: Mapping[str, Any], raw: list[dict[str, Any]]) -> str | None:
        """The token of the page after this one (None: the last), from its last order read,
        readable or not, so none is skipped."""
        if not raw or not self._more(answer, raw):
            return None
        stamp, entity = raw[-1].get("updated_at"), raw[-1].get("entity_id")
        if isinstance(stamp, str) and entity is not None:
            return f"{stamp}|{entity}"
        return None

    # --- catalogues -------------------------------------------------------------------

    def _recent_orders(self, fields: str) -> list[dict[str, Any]]:
        """GET /rest/V1/orders: the 100 most recent orders, trimmed to `fields`."""
        params = _search([], [("created_at", "DESC")], RECENT_ORDERS)
        params.append(("fields", f"items[{fields}],total_count"))
        answer = _obj(self._get("orders", params), "GET orders")
        return [
            _obj(item, f"items[{index}]")
            for index, item in enumerate(_list(answer.get("items"), "items"))
        ]

    def list_statuses(self) -> list[ShopChoice]:
        """GET /rest/V1/orders?fields=items[status] (100 most recent), after the defaults.

        Core has no REST list of statuses: Magento's nine default statuses come first,
        then any other `status` code seen on recent orders (a merchant's own statuses).
        """
        choices = dict(DEFAULT_STATUSES)
        for index, item in enumerate(self._recent_orders("status")):
            code = _text(item.get("status"), f"items[{index}].status")
            if code and code not in choices:
                choices[code] = _status_label(code)
        return [ShopChoice(code, label) for code, label in choices.items()]

    def list_carriers(self) -> list[ShopChoice]:
        """GET /rest/V1/orders?fields=items[shipping_description,…method] (recent 100).

        Codes are what ShopOrder.shipping_label holds, the order's `shipping_description`
        ("Best Way - Table Rate"), so a mapping made here matches incoming orders. Seen
        labels come first (with their method code, e.g. tablerate_bestway, in the label),
        then the core offline carriers under their default labels. Online carriers (ups,
        usps, fedex, dhl) label each order with the service chosen, so they appear once
        an order used them.
        """
        seen: dict[str, str] = {}
        items = self._recent_orders(
            "shipping_description,extension_attributes[shipping_assignments[shipping[method]]]"
        )
        for index, item in enumerate(items):
            label = _text(item.get("shipping_description"), f"items[{index}].shipping_description")
            if label and label not in seen:
                seen[label] = _shipping_method(item, f"items[{index}]")
        for label, method in DEFAULT_CARRIERS.items():
            seen.setdefault(label, method)
        return [
            ShopChoice(label, f"{label} ({method})" if method else label)
            for label, method in seen.items()
        ]

    def list_payment_methods(self) -> list[ShopChoice]:
        """GET /rest/V1/orders?fields=items[payment[method,additional_information]] (100).

        Core has no REST list of payment methods: codes seen on recent orders first, with
        the title the order recorded (additional_information[0]), then core's offline
        methods (checkmo, banktransfer, cashondelivery, purchaseorder, free).
        """
        seen: dict[str, str] = {}
        for index, item in enumerate(self._recent_orders("payment[method,additional_information]")):
            payment = _opt_obj(item.get("payment"), f"items[{index}].payment") or {}
            code = _text(payment.get("method"), f"items[{index}].payment.method")
            if code and code not in seen:
                seen[code] = _payment_label(payment, code)
        for code, label in DEFAULT_PAYMENT_METHODS.items():
            seen.setdefault(code, label)
        return [ShopChoice(code, label) for code, label in seen.items()]

    def test_connection(self) -> str:
        """GET /rest/V1/store/storeConfigs"""
        configs = _list(self._get("store/storeConfigs"), "storeConfigs")
        stores = [_obj(item, f"storeConfigs[{i}]") for i, item in enumerate(configs)]
        if not stores:
            raise BadPayload("storeConfigs: the answer lists no store view")
        wanted = self.store_code or "default"
        store = next((s for s in stores if s.get("code") == wanted), stores[0])
        code = _text(store.get("code"), "storeConfigs.code")
        url = _text(store.get("secure_base_url"), "storeConfigs.secure_base_url") or _text(
            store.get("base_url"), "storeConfigs.base_url"
        )
        currency = _text(store.get("base_currency_code"), "storeConfigs.base_currency_code")
        zone = _text(store.get("timezone"), "storeConfigs.timezone")
        details = ", ".join(part for part in (url, currency, zone) if part)
        views = f", {len(stores)} store views" if len(stores) > 1 else ""
        return f"Magento store view {code} ({details}){views}"

    # --- write-back -------------------------------------------------------------------

    def push_status(
        self, external_id: str, status: str, *, notify: bool = True, reason: str = ""
    ) -> PushOutcome:
        """GET /rest/V1/orders/{id}; unless its status already is `status`:
        "canceled" → POST /rest/V1/orders/{id}/cancel, then, with a reason or notify, a
        comment (status "canceled", is_customer_notified = notify) holding the reason;
        any other status → POST /rest/V1/orders/{id}/comments with
        {"statusHistory": {comment, is_customer_notified: notify, is_visible_on_front: 0,
        parent_id, status}}, the comment being the reason, else "Order status: {label}."
        when the buyer is e-mailed, else "Status updated by Comptoir".

        An order whose state is canceled is canceled whatever its (custom) status says.
        Magento answers `true` without an id: remote_ref is "" after a write, and the
        matching history entry's id when the status was already there. A cancel Magento
        refuses (invoiced, on hold, complete, closed) raises PermanentError. The order of a
        canceled or closed state cannot take another status: PushOutcome.cannot.
        "complete" is only reached for real through invoice and shipment documents; the
        comment records the status (and sets it on the order) without creating them.
        A retry after a crash between the cancel and its comment writes the missing reason;
        a comment that only notified (no reason) is not written again.
        """
        order = self._order_for_write(external_id)
        entity_id = _id(order.get("entity_id"), "entity_id")
        current = _text(order.get("status"), "status")
        state = _text(order.get("state"), "state")
        histories = _histories(order)
        reason = reason.strip()
        if current == status or (status == "canceled" and state == "canceled"):
            missing = (
                status == "canceled"
                and reason
                and _comment_ref(histories, reason, visible=False, since=None) is None
            )
            if missing:
                # The cancel landed, its reason did not: the comment keeps the order's status.
                self._add_comment(entity_id, reason, notified=notify, visible=False, status=current)
                return PushOutcome()
            return PushOutcome.already_there(_status_ref(histories, status))
        if status == "canceled":
            path = self._path(f"orders/{entity_id}/cancel")
            answer = _loads(self.http.request("POST", path).content, f"POST {path}")
            if answer is not True:
                raise PermanentError(
                    f"POST {path}: Magento refused to cancel order {entity_id} "
                    f"(state {state!r}, status {current!r}): an order that is fully invoiced, "
                    "on hold, in payment review, complete or closed cannot be canceled"
                )
            if reason or notify:
                comment = reason or _status_comment(status, notify)
                self._add_comment(entity_id, comment, notified=notify, visible=False, status=status)
            return PushOutcome()
        if state in FINAL_STATES:
            return PushOutcome.cannot(
                f"the Magento order is {state}; its status can no longer become {status!r}"
            )
        comment = reason or _status_comment(status, notify)
        self._add_comment(entity_id, comment, notified=notify, visible=False, status=status)
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
        """GET /rest/V1/orders/{id}; unless one of its status_histories is this comment,
        POST /rest/V1/orders/{id}/comments with {"statusHistory": {comment,
        is_visible_on_front: customer_visible, is_customer_notified: notify, parent_id,
        status: the order's current status}}.

        This comment is an entry with the same text and the same is_visible_on_front,
        created (`created_at`) at or after `since` less CLOCK_SKEW: an older entry with
        the same text is another comment. The status is sent because Magento sets the
        order's status to the entry's, so a comment without one would clear it.
        is_visible_on_front shows the comment on the buyer's order page;
        is_customer_notified e-mails it (when the store's order comment e-mails are
        enabled). `ref` is not needed, entries are dated. remote_ref: see push_status.
        """
        text = text.strip()
        order = self._order_for_write(external_id)
        entity_id = _id(order.get("entity_id"), "entity_id")
        found = _comment_ref(_histories(order), text, visible=customer_visible, since=since)
        if found is not None:
            return PushOutcome.already_there(found)
        current = _text(order.get("status"), "status")
        self._add_comment(
            entity_id, text, notified=notify, visible=customer_visible, status=current
        )
        return PushOutcome()

    def _order_for_write(self, external_id: str) -> dict[str, Any]:
        """GET /rest/V1/orders/{entity_id}: the order as it is now, read before a write."""
        order_id = numeric_order_id(external_id, "Magento")
        return _obj(self._get(f"orders/{order_id}"), "orders/{id}")

    def _add_comment(
        self, entity_id: str, comment: str, *, notified: bool, visible: bool, status: str
    ) -> None:
        """POST /rest/V1/orders/{id}/comments (Magento answers true)."""
        history = {
            "comment": comment,
            "is_customer_notified": 1 if notified else 0,
            "is_visible_on_front": 1 if visible else 0,
            "parent_id": int(entity_id),
            "status": status,
        }
        path = self._path(f"orders/{entity_id}/comments")
        response = self.http.request("POST", path, json={"statusHistory": history})
        if _loads(response.content, f"POST {path}") is not True:
            raise PermanentError(f"POST {path}: Magento did not add the comment")

    # --- shipments --------------------------------------------------------------------

    def push_shipment(
        self, external_id: str, shipment: ShipmentToPush, *, since: dt.datetime | None = None
    ) -> PushOutcome:
        """Make the store show the shipment, reading its shipments first.

        Known (shipment.external_id): GET /rest/V1/shipment/{id}, then POST
        /rest/V1/shipment/track for each tracking number it lacks and DELETE
        /rest/V1/shipment/track/{id} for each track whose number is no longer ours (a
        corrected number: the new track first, so the buyer always has one); nothing to
        change is already_there. New: GET /rest/V1/shipments?searchCriteria… order_id = the
        order; a shipment whose private comment names ours, or, without such a comment,
        one created at or after `since` less CLOCK_SKEW whose tracks are all ours (without
        tracking: no track and our items and quantities) is ours from an attempt whose
        answer was lost, and is completed as a known one. Else POST
        /rest/V1/order/{id}/ship with {items: [{order_item_id, qty}], tracks:
        [{track_number, title, carrier_code}], notify, appendComment: false, comment: the
        private comment naming our shipment}; Magento answers the bare shipment id, then
        GET /rest/V1/shipment/{id} gives the tracks' ids (left to a later push when that
        read fails). carrier_code is the shipping mode's Magento code, else "custom";
        title the carrier's name.

        Cancelled: Magento's REST API cannot cancel a shipment, so its tracks are deleted
        (the buyer no longer follows a parcel that is not coming) and the outcome is
        PushOutcome.cannot; a cancelled shipment the store never received is already_there.
        Magento's 400 to a ship (nothing left to ship, the order cannot be shipped) is a
        PermanentError.
        """
        order_id = numeric_order_id(external_id, "Magento")
        if shipment.external_id:
            found: _Remote | None = self._shipment(shipment.external_id, order_id)
        else:
            found = self._our_shipment(order_id, shipment, since)
        if shipment.cancelled:
            if found is None:
                return PushOutcome.already_there()
            for track_id, _number in found.tracks:
                self._delete_track(track_id)
            return PushOutcome.cannot(CANNOT_CANCEL_SHIPMENT)
        if found is None:
            return self._ship(order_id, shipment)
        return self._complete(order_id, found, shipment)

    def _shipment(self, shipment_id: str, order_id: str) -> _Remote:
        """GET /rest/V1/shipment/{id}: the shipment, which must be the order's."""
        ref = _id(shipment_id, "shipment.external_id")
        data = _obj(self._get(f"shipment/{ref}"), "shipment/{id}")
        remote = _guarded("shipment", _remote, data)
        if remote.order_id != order_id:
            raise PermanentError(
                f"Magento shipment {ref} belongs to order {remote.order_id}, not {order_id}"
            )
        return remote

    def _our_shipment(
        self, order_id: str, shipment: ShipmentToPush, since: dt.datetime | None
    ) -> _Remote | None:
        """The order's shipment at the store that is this one, written by an attempt whose
        answer was lost (see push_shipment); None when there is none."""
        numbers = set(shipment.tracking_numbers)
        wanted = _line_quantities(shipment)
        for data in self._shipments_for([order_id]).get(order_id, []):
            remote = _guarded("shipment", _remote, data)
            if remote.reference:
                if remote.reference == shipment.reference:
                    return remote
                continue  # another shipment of ours
            if not may_be_ours(remote.created_at, since):
                continue
            theirs = {number for _track, number in remote.tracks}
            if numbers and theirs and theirs <= numbers:
                return remote
            if not numbers and not theirs and remote.items == wanted:
                return remote
        return None

    def _ship(self, order_id: str, shipment: ShipmentToPush) -> PushOutcome:
        """POST /rest/V1/order/{id}/ship, then read the new shipment's track ids."""
        quantities = _line_quantities(shipment)
        if not quantities or not all(ref.isdigit() for ref in quantities):
            return PushOutcome.cannot(NOTHING_TO_SHIP)
        numbers = list(dict.fromkeys(shipment.tracking_numbers))
        code, title = _carrier(shipment)
        body = {
            "items": [{"order_item_id": int(ref), "qty": qty} for ref, qty in quantities.items()],
            "notify": shipment.notify,
            "appendComment": False,
            "comment": {
                "comment": SHIPMENT_COMMENT.format(reference=shipment.reference),
                "is_visible_on_front": 0,
            },
            "tracks": [
                {"track_number": number, "title": title, "carrier_code": code} for number in numbers
            ],
        }
        path = self._path(f"order/{order_id}/ship")
        try:
            response = self.http.request("POST", path, json=body)
        except ConnectorError as exc:
            if isinstance(exc, RetryableError | PermanentError):
                raise
            raise PermanentError(
                f"Magento refused to ship {shipment.reference} on order {order_id}: {exc}",
                status=exc.status,
            ) from exc
        shipment_id = _id(_loads(response.content, f"POST {path}"), f"POST {path}")
        try:
            remote = self._shipment(shipment_id, order_id)
        except RetryableError:
            return PushOutcome(remote_ref=shipment_id)  # its tracks are found by number later
        return PushOutcome(remote_ref=shipment_id, parcel_refs=_refs(remote, numbers))

    def _complete(self, order_id: str, remote: _Remote, shipment: ShipmentToPush) -> PushOutcome:
        """Bring a shipment the store holds to our tracking numbers, adding before deleting."""
        numbers = list(dict.fromkeys(shipment.tracking_numbers))
        have = {number: track_id for track_id, number in remote.tracks}
        stale = [track_id for track_id, number in remote.tracks if number not in numbers]
        missing = [number for number in numbers if number not in have]
        code, title = _carrier(shipment)
        for number in missing:
            have[number] = self._add_track(order_id, remote.entity_id, number, code, title)
        for track_id in stale:
            self._delete_track(track_id)
        refs = tuple((number, have[number]) for number in numbers)
        if not missing and not stale:
            return PushOutcome.already_there(remote.entity_id, refs)
        return PushOutcome(remote_ref=remote.entity_id, parcel_refs=refs)

    def _add_track(
        self, order_id: str, shipment_id: str, number: str, code: str, title: str
    ) -> str:
        """POST /rest/V1/shipment/track; Magento answers the track with its entity_id."""
        entity = {
            "order_id": int(order_id),
            "parent_id": int(shipment_id),
            "track_number": number,
            "title": title,
            "carrier_code": code,
            "weight": 0,
            "qty": 0,
            "description": "",
        }
        path = self._path("shipment/track")
        response = self.http.request("POST", path, json={"entity": entity})
        answer = _obj(_loads(response.content, f"POST {path}"), f"POST {path}")
        return _id(answer.get("entity_id"), f"POST {path}: entity_id")

    def _delete_track(self, track_id: str) -> None:
        """DELETE /rest/V1/shipment/track/{id}; a track already gone is fine."""
        path = self._path(f"shipment/track/{track_id}")
        try:
            self.http.request("DELETE", path)
        except NotFoundAtShop:
            pass


@dataclasses.dataclass(frozen=True)
class _Remote:
    """A shipment as the store holds it: ids, our reference if it names one, items, tracks."""

    entity_id: str
    order_id: str
    created_at: dt.datetime | None
    reference: str
    items: dict[str, int]
    tracks: tuple[tuple[str, str], ...]  # (track entity_id, track_number)


def _remote(data: Mapping[str, Any]) -> _Remote:
    entity_id = _id(data.get("entity_id"), "shipment.entity_id")
    items: dict[str, int] = {}
    for index, item in enumerate(_list(data.get("items"), "shipment.items")):
        field = f"shipment.items[{index}]"
        entry = _obj(item, field)
        ref = _id(entry.get("order_item_id"), f"{field}.order_item_id")
        quantity = _quantity(entry.get("qty"), f"{field}.qty")
        if quantity:
            items[ref] = items.get(ref, 0) + quantity
    tracks = []
    for index, item in enumerate(_list(data.get("tracks"), "shipment.tracks")):
        field = f"shipment.tracks[{index}]"
        entry = _obj(item, field)
        number = _text(entry.get("track_number"), f"{field}.track_number")
        if number:
            tracks.append((_id(entry.get("entity_id"), f"{field}.entity_id"), number))
    reference = ""
    for index, item in enumerate(_list(data.get("comments"), "shipment.comments")):
        comment = _text(_obj(item, "shipment.comments").get("comment"), f"comments[{index}]")
        match = _SHIPMENT_COMMENT.fullmatch(comment)
        if match is not None:
            reference = match.group(1)
    return _Remote(
        entity_id=entity_id,
        order_id=_id(data.get("order_id"), "shipment.order_id"),
        created_at=_opt_when(data.get("created_at"), "shipment.created_at"),
        reference=reference,
        items=items,
        tracks=tuple(tracks),
    )


def _parse_shipment(data: Mapping[str, Any], lines: set[str]) -> ShopShipment:
    """A shipment of the store as ShopShipment: its items on the order's lines (an item
    that is no line of ours, a configurable's child, is left out), a parcel per track."""
    remote = _remote(data)
    titles = {}
    carrier = ""
    for index, item in enumerate(_list(data.get("tracks"), "shipment.tracks")):
        entry = _obj(item, f"shipment.tracks[{index}]")
        title = _text(entry.get("title"), f"shipment.tracks[{index}].title")
        code = _text(entry.get("carrier_code"), f"shipment.tracks[{index}].carrier_code")
        track = _text(entry.get("entity_id"), f"shipment.tracks[{index}].entity_id")
        titles[track] = title or code
        carrier = carrier or title or code
    return ShopShipment(
        external_id=remote.entity_id,
        parcels=tuple(
            ShopParcel(tracking_number=number, carrier=titles.get(track, ""), external_id=track)
            for track, number in remote.tracks
        ),
        lines=tuple((ref, qty) for ref, qty in remote.items.items() if ref in lines),
        carrier=carrier,
        shipped_at=remote.created_at,
    )


def _line_quantities(shipment: ShipmentToPush) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for line in shipment.lines:
        if line.quantity > 0:
            ref = line.line_external_id
            quantities[ref] = quantities.get(ref, 0) + line.quantity
    return quantities


def _carrier(shipment: ShipmentToPush) -> tuple[str, str]:
    """(carrier_code, title) of our tracks: the mode's Magento code, else custom."""
    code = shipment.carrier_code.strip() or "custom"
    return code, shipment.carrier_name.strip() or code


def _refs(remote: _Remote, numbers: Iterable[str]) -> tuple[tuple[str, str], ...]:
    have = {number: track_id for track_id, number in remote.tracks}
    return tuple((number, have[number]) for number in numbers if number in have)


def _status_comment(status: str, notify: bool) -> str:
    """The comment of a status change without a reason: the buyer reads it when notified."""
    return f"Order status: {_status_label(status)}." if notify else STATUS_COMMENT


# --- Translating the payload --------------------------------------------------------------


def _histories(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The order's status_histories entries."""
    entries = _list(order.get("status_histories"), "status_histories")
    return [_obj(entry, f"status_histories[{i}]") for i, entry in enumerate(entries)]


def _entry_ref(entry: Mapping[str, Any], index: int) -> str:
    return _text(entry.get("entity_id"), f"status_histories[{index}].entity_id")


def _comment_ref(
    histories: list[dict[str, Any]], text: str, *, visible: bool, since: dt.datetime | None
) -> str | None:
    """The id of the entry that may be this comment: the same text (spacing aside), the same
    visibility, created when it may be ours (see may_be_ours); None when there is none."""
    for index, entry in enumerate(histories):
        field = f"status_histories[{index}]"
        if _flag(entry.get("is_visible_on_front"), f"{field}.is_visible_on_front") != visible:
            continue
        if not same_text(_text(entry.get("comment"), f"{field}.comment"), text):
            continue
        if may_be_ours(_opt_when(entry.get("created_at"), f"{field}.created_at"), since):
            return _entry_ref(entry, index)
    return None


def _status_ref(histories: list[dict[str, Any]], status: str) -> str:
    """The id of the newest entry that recorded `status` ("" when none did)."""
    refs = [
        _entry_ref(entry, index)
        for index, entry in enumerate(histories)
        if _text(entry.get("status"), f"status_histories[{index}].status") == status
    ]
    return max(refs, key=lambda ref: (len(ref), ref), default="")


def _status_label(code: str) -> str:
    return DEFAULT_STATUSES.get(code) or code.replace("_", " ").strip().title()


def _payment_label(payment: Mapping[str, Any], code: str) -> str:
    info = payment.get("additional_information")
    if isinstance(info, list) and info and isinstance(info[0], str) and info[0].strip():
        return info[0].strip()
    return DEFAULT_PAYMENT_METHODS.get(code, code)


def _assignment(order: Mapping[str, Any], field: str) -> dict[str, Any]:
    """The first shipping assignment's `shipping` object (address, method, total)."""
    ext = _opt_obj(order.get("extension_attributes"), f"{field}.extension_attributes") or {}
    assignments = _list(
        ext.get("shipping_assignments"), f"{field}.extension_attributes.shipping_assignments"
    )
    for index, item in enumerate(assignments):
        where = f"{field}.extension_attributes.shipping_assignments[{index}]"
        shipping = _opt_obj(_obj(item, where).get("shipping"), f"{where}.shipping")
        if shipping is not None:
            return shipping
    return {}


def _shipping_method(order: Mapping[str, Any], field: str) -> str:
    shipping = _assignment(order, field)
    return _text(shipping.get("method"), f"{field}.shipping.method") or _text(
        order.get("shipping_method"), f"{field}.shipping_method"
    )


def _relay_point(*sources: tuple[Any, str]) -> str:
    """A relay-point id from extension attributes: core in-store pickup's location code,
    or a relay module's attribute whose name says relay / pickup (id or code first)."""
    found: list[tuple[bool, str]] = []
    for value, field in sources:
        data = _opt_obj(value, field)
        if not data:
            continue
        for key, item in data.items():
            if (
                not isinstance(key, str)
                or not isinstance(item, str | int)
                or isinstance(item, bool)
            ):
                continue
            words = re.split(r"[^a-z0-9]+", key.lower())
            if words[0] in ("is", "has", "use") or not any(
                word in part for part in words for word in RELAY_WORDS
            ):
                continue
            text = str(item).strip()
            if text:
                found.append((any(w in ("id", "code", "number") for w in words), text))
    found.sort(key=lambda pair: not pair[0])
    return found[0][1] if found else ""


def _address(
    value: Any, field: str, *, email: str = "", vat_id: str = "", relay_point_id: str = ""
) -> ShopAddress | None:
    data = _opt_obj(value, field)
    if data is None:
        return None

    def get(key: str) -> str:
        return _text(data.get(key), f"{field}.{key}")

    raw_street = data.get("street")
    if isinstance(raw_street, str):
        street = [part.strip() for part in raw_street.splitlines()]
    else:
        street = [
            _text(part, f"{field}.street[{index}]")
            for index, part in enumerate(_list(raw_street, f"{field}.street"))
        ]
    street = [part for part in street if part]
    first_name = " ".join(part for part in (get("firstname"), get("middlename")) if part)
    return ShopAddress(
        first_name=first_name,
        last_name=get("lastname"),
        company=get("company"),
        line1=street[0] if street else "",
        line2=", ".join(street[1:]),
        postcode=get("postcode"),
        city=get("city"),
        region=get("region_code") or get("region"),
        country_code=get("country_id").upper(),
        phone=get("telephone"),
        email=get("email") or email,
        vat_id=get("vat_id") or vat_id,
        relay_point_id=relay_point_id,
    )


def _parent_of(item: Mapping[str, Any], field: str) -> str | None:
    parent = _opt_id(item.get("parent_item_id"), f"{field}.parent_item_id")
    if parent is None:
        embedded = _opt_obj(item.get("parent_item"), f"{field}.parent_item")
        if embedded is not None:
            parent = _opt_id(embedded.get("item_id"), f"{field}.parent_item.item_id")
    return parent


def _carries_amounts(item: Mapping[str, Any], field: str) -> bool:
    return any(
        _money(item.get(key), f"{field}.{key}") != 0
        for key in ("row_total", "row_total_incl_tax", "price", "price_incl_tax")
    )


def _is_virtual(item: Mapping[str, Any], field: str) -> bool:
    product_type = _text(item.get("product_type"), f"{field}.product_type")
    return product_type in VIRTUAL_TYPES or _flag(item.get("is_virtual"), f"{field}.is_virtual")


def _option_labels(item: Mapping[str, Any], field: str) -> str:
    """The buyer's choices as "Label: value", from the item's `product_options` (the
    serialized options Magento keeps on the order item: `attributes_info` for a
    configurable's attributes, `options` for custom options), when the answer carries them."""
    raw = item.get("product_options")
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        return ""
    labels = []
    for key in ("attributes_info", "options"):
        entries = raw.get(key)
        if not isinstance(entries, list):
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                continue
            where = f"{field}.product_options.{key}[{index}]"
            label = _text(entry.get("label"), f"{where}.label")
            value = entry.get("print_value", entry.get("value"))
            shown = (
                _text(value, f"{where}.value")
                if not isinstance(value, int | Decimal)
                else str(value)
            )
            if label and shown:
                labels.append(f"{label}: {shown}")
    return ", ".join(labels)


def _lines(value: Any, include_tax: bool) -> tuple[list[ShopLine], Decimal]:
    """One line per thing ordered: a configurable's simple child is folded into its parent,
    a bundle's children follow it as components (quantities to pick, no money). Also the
    lines' discounts tax included, whatever the basis of their prices."""
    items = [
        (f"items[{index}]", _obj(item, f"items[{index}]"))
        for index, item in enumerate(_list(value, "items"))
    ]
    by_id: dict[str, Mapping[str, Any]] = {}
    for field, item in items:
        item_id = _opt_id(item.get("item_id"), f"{field}.item_id")
        if item_id is not None:
            by_id[item_id] = item
    parents = {field: _parent_of(item, field) for field, item in items}
    children: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for field, item in items:
        parent = parents[field]
        if parent is not None and parent in by_id:
            children.setdefault(parent, []).append((field, item))
    lines = []
    discounts = Decimal("0.00")
    for field, item in items:
        parent = parents[field]
        if parent is None or parent not in by_id:
            item_id = _opt_id(item.get("item_id"), f"{field}.item_id") or ""
            kids = children.get(item_id, [])
            line, discount = _guarded(field, _line, item, field, kids, include_tax)
            lines.append(line)
            discounts += discount
            continue
        parent_type = _text(by_id[parent].get("product_type"), f"{field}.parent product_type")
        if parent_type == "configurable":
            continue  # the variant the buyer chose: its parent line says it all
        lines.append(_guarded(field, _component, item, field, parent))
    return lines, discounts


def _component(item: Mapping[str, Any], field: str, parent: str) -> ShopLine:
    return ShopLine(
        external_id=_id(item.get("item_id"), f"{field}.item_id"),
        name=_text(item.get("name"), f"{field}.name"),
        quantity=_quantity(item.get("qty_ordered"), f"{field}.qty_ordered"),
        unit_price=Decimal("0.00"),
        sku=_text(item.get("sku"), f"{field}.sku"),
        options=_option_labels(item, field),
        tax_rate=_rate(item.get("tax_percent"), f"{field}.tax_percent"),
        kind=LineKind.PRODUCT,
        parent_external_id=parent,
        needs_shipping=not _is_virtual(item, field),
    )


def _summed(kids: list[tuple[str, Mapping[str, Any]]], keys: tuple[str, ...]) -> dict[str, Decimal]:
    return {
        key: sum((_money(kid.get(key), f"{field}.{key}") for field, kid in kids), Decimal("0"))
        for key in keys
    }


def _line(
    item: Mapping[str, Any],
    field: str,
    kids: list[tuple[str, Mapping[str, Any]]],
    include_tax: bool,
) -> tuple[ShopLine, Decimal]:
    external_id = _id(item.get("item_id"), f"{field}.item_id")
    quantity = _quantity(item.get("qty_ordered"), f"{field}.qty_ordered")
    name = _text(item.get("name"), f"{field}.name")
    product_type = _text(item.get("product_type"), f"{field}.product_type")
    options = _option_labels(item, field)
    if not options and product_type == "configurable" and kids:
        child_name = _text(kids[0][1].get("name"), f"{kids[0][0]}.name")
        if child_name.startswith(name) and child_name != name:
            # The simple child is named "{parent}-{option}-{option}" by default.
            options = child_name[len(name) :].strip(" -")
    needs_shipping = not _is_virtual(item, field)
    if product_type != "configurable" and kids:
        needs_shipping = any(not _is_virtual(kid, kf) for kf, kid in kids)
    keys = (
        "row_total",
        "row_total_incl_tax",
        "tax_amount",
        "discount_tax_compensation_amount",
        "discount_amount",
    )
    source: Mapping[str, Any] = item
    rates = {_rate(kid.get("tax_percent"), f"{kf}.tax_percent") for kf, kid in kids}
    if product_type != "configurable" and kids and not _carries_amounts(item, field):
        # A dynamic-price bundle whose row stays at zero: its children carry the money,
        # the buyer saw their sum on the bundle.
        source = _summed(kids, keys)
    row_total = _money(source.get("row_total"), f"{field}.row_total")
    tax_amount = _money(source.get("tax_amount"), f"{field}.tax_amount")
    compensation = _money(
        source.get("discount_tax_compensation_amount"),
        f"{field}.discount_tax_compensation_amount",
    )
    discount = abs(_money(source.get("discount_amount"), f"{field}.discount_amount"))
    total_gross = row_total + tax_amount + compensation - discount
    total_net = total_gross - tax_amount
    row_gross = _opt_money(source.get("row_total_incl_tax"), f"{field}.row_total_incl_tax")
    if row_gross is None:
        row_gross = row_total + tax_amount + compensation
    if source is item and item.get("price_incl_tax") not in (None, ""):
        unit_gross = price(item.get("price_incl_tax"), f"{field}.price_incl_tax")
    else:
        unit_gross = price(row_gross / quantity, f"{field} unit price") if quantity else row_gross
    if source is item and item.get("price") not in (None, ""):
        unit_net = price(item.get("price"), f"{field}.price")
    else:
        unit_net = price(row_total / quantity, f"{field} unit price") if quantity else row_total
    tax_rate = _rate(item.get("tax_percent"), f"{field}.tax_percent")
    if item.get("tax_percent") is None and kids and product_type != "configurable":
        if len(rates) == 1:
            tax_rate = rates.pop()
        elif total_net > 0:
            # Children at several rates: the bundle's own rate is their blend; each
            # component keeps its rate.
            tax_rate = _rate((tax_amount * 100 / total_net).quantize(CENT), f"{field} rate")
    # The price in the order's basis (tax included or not), and what the line pays in it.
    unit_price, paid = (unit_gross, total_gross) if include_tax else (unit_net, total_net)
    gross_discount = _cents(row_gross - total_gross) if discount else Decimal("0.00")
    sku = _text(item.get("sku"), f"{field}.sku")
    if product_type == "configurable" and kids:
        # The variant is what is picked: its SKU (Magento usually repeats it on the parent).
        sku = _text(kids[0][1].get("sku"), f"{kids[0][0]}.sku") or sku
    line = ShopLine(
        external_id=external_id,
        name=name,
        quantity=quantity,
        unit_price=unit_price,
        sku=sku,
        ean="",
        options=options,
        tax_rate=tax_rate,
        discount_amount=_cents(unit_price * quantity - paid) if discount else Decimal("0.00"),
        total_net=total_net,
        tax_amount=tax_amount,
        total_gross=total_gross,
        kind=LineKind.PRODUCT,
        needs_shipping=needs_shipping,
    )
    return line, gross_discount


def _gift_wrapping(ext: Mapping[str, Any], order_id: str) -> list[ShopLine]:
    """Adobe Commerce gift wrapping (order, items, printed card) as gift_wrap lines."""
    lines = []
    names = {"gw": "Gift wrapping", "gw_items": "Gift wrapping (items)", "gw_card": "Gift card"}
    for prefix, suffix in GIFT_WRAPPING:
        field = f"extension_attributes.{prefix}"
        gross = _opt_money(ext.get(f"{prefix}_price_incl_tax"), f"{field}_price_incl_tax")
        tax = _money(ext.get(f"{prefix}_tax_amount"), f"{field}_tax_amount")
        if gross is None:
            gross = _money(ext.get(f"{prefix}_price"), f"{field}_price") + tax
        if gross <= 0:
            continue
        net = gross - tax
        tax_rate = _rate((tax * 100 / net).quantize(Decimal("0.1")) if net else 0, f"{field} rate")
        lines.append(
            ShopLine(
                external_id=f"{order_id}:{suffix}",
                name=names[prefix],
                quantity=1,
                unit_price=gross,
                tax_rate=tax_rate,
                total_net=net,
                tax_amount=tax,
                total_gross=gross,
                kind=LineKind.GIFT_WRAP,
            )
        )
    return lines


def _prices_include_tax(items: Iterable[Any]) -> bool:
    """Infer the catalogue's tax mode: a taxed item's original_price equals the price with
    tax when catalogue prices include it, the price without tax otherwise."""
    for item in items:
        if not isinstance(item, dict):
            continue
        fields = ("original_price", "price", "price_incl_tax", "tax_amount")
        values = [_opt_money(item.get(key), f"items.{key}") for key in fields]
        original, price, price_incl, tax = values
        if original is None or price is None or price_incl is None or not tax:
            continue
        if original == price_incl and original != price:
            return True
        if original == price and original != price_incl:
            return False
    return True


def _cancellation(data: Mapping[str, Any], updated_at: dt.datetime) -> tuple[dt.datetime, str]:
    newest: tuple[dt.datetime, str] | None = None
    for index, item in enumerate(_list(data.get("status_histories"), "status_histories")):
        field = f"status_histories[{index}]"
        entry = _obj(item, field)
        if _text(entry.get("status"), f"{field}.status") != "canceled":
            continue
        when = _opt_when(entry.get("created_at"), f"{field}.created_at") or updated_at
        comment = _text(entry.get("comment"), f"{field}.comment")
        if newest is None or when > newest[0]:
            newest = (when, comment)
    return newest or (updated_at, "")


def _transactions(
    data: Mapping[str, Any], external_id: str, currency: str, when: dt.datetime, method: str
) -> tuple[ShopTransaction, ...]:
    payment = _opt_obj(data.get("payment"), "payment") or {}
    reference = _text(payment.get("last_trans_id"), "payment.last_trans_id")
    found = []
    paid = _money(data.get("total_paid"), "total_paid")
    if paid > 0:
        found.append(
            ShopTransaction(
                external_id=f"{external_id}:paid",
                kind=TransactionKind.CAPTURE,
                amount=paid,
                currency=currency,
                occurred_at=when,
                status=TransactionStatus.SUCCESS,
                method=method,
                reference=reference,
            )
        )
    refunded = _money(data.get("total_refunded"), "total_refunded")
    if refunded > 0:
        found.append(
            ShopTransaction(
                external_id=f"{external_id}:refunded",
                kind=TransactionKind.REFUND,
                amount=refunded,
                currency=currency,
                occurred_at=when,
                status=TransactionStatus.SUCCESS,
                method=method,
                reference=reference,
            )
        )
    return tuple(found)


def _parse_order(data: dict[str, Any]) -> ShopOrder:
    external_id = _id(data.get("entity_id"), "entity_id")
    number = _text(data.get("increment_id"), "increment_id") or external_id
    currency = (
        _text(data.get("order_currency_code"), "order_currency_code")
        or _text(data.get("base_currency_code"), "base_currency_code")
    ).upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise BadPayload(f"order_currency_code: {currency!r} is not a currency code")
    placed_at = _when(data.get("created_at"), "created_at")
    updated_at = _opt_when(data.get("updated_at"), "updated_at") or placed_at

    ext = _opt_obj(data.get("extension_attributes"), "extension_attributes") or {}
    shipping_data = _assignment(data, "order")
    shipping_address = _opt_obj(
        shipping_data.get("address"), "extension_attributes.shipping_assignments.shipping.address"
    )
    relay = _relay_point(
        (ext, "extension_attributes"),
        (
            (shipping_address or {}).get("extension_attributes"),
            "shipping.address.extension_attributes",
        ),
    )

    email = _text(data.get("customer_email"), "customer_email")
    taxvat = _text(data.get("customer_taxvat"), "customer_taxvat")
    billing = _address(
        data.get("billing_address"), "billing_address", email=email, vat_id=taxvat
    ) or ShopAddress(email=email, vat_id=taxvat)
    email = email or billing.email
    shipping = _address(
        shipping_address,
        "extension_attributes.shipping_assignments.shipping.address",
        relay_point_id=relay,
    )

    guest = _flag(data.get("customer_is_guest"), "customer_is_guest")
    customer = ShopCustomer(
        external_id=None if guest else _opt_id(data.get("customer_id"), "customer_id"),
        email=email,
        first_name=_text(data.get("customer_firstname"), "customer_firstname")
        or billing.first_name,
        last_name=_text(data.get("customer_lastname"), "customer_lastname") or billing.last_name,
        phone=billing.phone,
        company=billing.company,
    )

    items = _list(data.get("items"), "items")
    include_tax = _prices_include_tax(items)
    lines, line_discounts = _lines(items, include_tax)
    wrapping = _gift_wrapping(ext, external_id)

    subtotal_incl = _opt_money(data.get("subtotal_incl_tax"), "subtotal_incl_tax")
    if subtotal_incl is None:
        subtotal_incl = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00"))
    subtotal = subtotal_incl + sum((line.total_gross for line in wrapping), Decimal("0.00"))
    shipping_tax = _money(data.get("shipping_tax_amount"), "shipping_tax_amount")
    shipping_total = _opt_money(data.get("shipping_incl_tax"), "shipping_incl_tax")
    if shipping_total is None:
        shipping_total = _money(data.get("shipping_amount"), "shipping_amount") + shipping_tax
    grand_total = _money(data.get("grand_total"), "grand_total")
    # The order's discount_amount is in the basis the shop discounts (before or after
    # tax): the tax-included figure is what the lines lost to their discounts, plus any
    # discount on the shipping. Taken from the lines, never from the grand total, so an
    # order whose figures contradict each other is flagged, not made to add up.
    shipping_discount = abs(
        _money(data.get("shipping_discount_amount"), "shipping_discount_amount")
    )
    discount_total = line_discounts + shipping_discount

    payment = _opt_obj(data.get("payment"), "payment") or {}
    payment_method = _text(payment.get("method"), "payment.method")

    status = _text(data.get("status"), "status")
    state = _text(data.get("state"), "state")
    cancelled_at: dt.datetime | None = None
    cancel_reason = ""
    if state == "canceled":
        cancelled_at, cancel_reason = _cancellation(data, updated_at)

    coupon = _text(data.get("coupon_code"), "coupon_code")
    description = _text(data.get("discount_description"), "discount_description")
    discounts: tuple[ShopDiscount, ...] = ()
    if discount_total or coupon:
        # Magento keeps one figure for all its cart rules; the description names them.
        label = "" if description == coupon else description
        discounts = (ShopDiscount(code=coupon, amount=discount_total, label=label),)

    return ShopOrder(
        external_id=external_id,
        number=number,
        placed_at=placed_at,
        updated_at=updated_at,
        currency=currency,
        status=status,
        status_label=_status_label(status) if status else "",
        customer=customer,
        billing=billing,
        shipping=shipping,
        lines=tuple(lines + wrapping),
        grand_total=grand_total,
        subtotal=subtotal,
        discount_total=discount_total,
        shipping_total=shipping_total,
        shipping_tax=shipping_tax,
        tax_total=_money(data.get("tax_amount"), "tax_amount"),
        prices_include_tax=include_tax,
        email=email,
        shipping_label=_text(data.get("shipping_description"), "shipping_description"),
        payment_method=payment_method,
        payment_method_label=_payment_label(payment, payment_method) if payment_method else "",
        discount_codes=(coupon,) if coupon else (),
        discounts=discounts,
        buyer_note=_text(data.get("customer_note"), "customer_note"),
        marketplace_ref="",
        cancelled_at=cancelled_at,
        cancel_reason=cancel_reason,
        transactions=_transactions(data, external_id, currency, updated_at, payment_method),
    )
