"""PrestaShop 1.7 and 8 through the Webservice API (XML).

Vendor pages:
- Webservice, keys and permissions: https://devdocs.prestashop-project.org/8/webservice/
- Testing access (the key as Basic-auth user, empty password):
  https://devdocs.prestashop-project.org/8/webservice/tutorials/testing-access/
- Cheat sheet (display, filter, `date=1`, sort, limit):
  https://devdocs.prestashop-project.org/8/webservice/cheat-sheet/
- Resources: https://devdocs.prestashop-project.org/8/webservice/resources/ — orders,
  order_details, order_states, order_histories, order_payments, order_slip, order_cart_rules,
  cart_rules, messages, customers, addresses, countries, states, currencies, carriers, taxes,
  customer_threads, customer_messages, employees.
- Request handling (filters, errors, 401 answers): PrestaShop/PrestaShop
  `classes/webservice/WebserviceRequest.php`.

An order answer holds ids only, so every connector call reads the referenced customers,
addresses, countries, states, currencies, carriers, order states, order details, taxes, cart
rules and buyer messages in batched list requests (`filter[id]=[1|2|3]`), cached for that
call: a page of 100 orders costs about a dozen requests, not hundreds.

What the shop cannot tell us, and how we cope:
- No webhooks in core: Comptoir's module (modules/prestashop) sends signed change
  notifications (docs/NOTIFICATIONS.md, web/connectors/notifications.py); without it the
  change probe (list_changes: ids and `date_upd` only) finds what changed, and orders are
  polled on `date_upd` (there is no total count: page until a short page).
- Times are shop-local without offset: read with settings.extra["timezone"] (default
  Europe/Paris, fold=0 for times repeated or skipped by DST); "0000-00-00 00:00:00" is unset.
- ShopOrder.status is the `current_state` id ("2"); merchants and modules add states, so the
  mapping table works on ids, and status_label is the state's name in the first language.
- shipping_label is the carrier's `name` (carrier id changes on every edit of a carrier; the
  name does not). A carrier named "0" is displayed by PrestaShop as the shop name: so is it here.
- There is no payment-method catalogue: list_payment_methods() collects the `module` (code)
  and `payment` (label) of recent orders.
- Per-line tax rates are hidden by the webservice: they come from the order detail's `taxes`
  association (`/api/taxes` rates), else from the tax-excluded and tax-included amounts.
- Cart-rule discounts are order-level: lines carry no discount, discount_total is
  `total_discounts_tax_incl`, each rule is a ShopDiscount (order_cart_rules `name` and
  `value`, tax included; the code from cart_rules), codes come from order_cart_rules +
  cart_rules (rules without a code contribute their name). Both resources are optional
  (older shops lack them).
- Unit prices keep the webservice's six decimals (price()); line totals are the order
  detail's own `total_price_tax_incl`/`_excl`, to the cent.
- Packs are one line: neither order_rows nor order_details mark a pack or list its
  components (only the product resource's `type` would say so).
- Virtual products: an order detail says so only for a downloadable one (`download_hash`
  set); a virtual product without a file is not marked in the order (the product
  resource's `is_virtual` is), so such a line still needs shipping.
- Options: PrestaShop writes them into the line's name ("Blouse - Color : Black, Size :
  S"); they are split back into name and options.
- No relay-point field in core: the Mondial Relay module writes "Point Mondial Relay :
  FR-066974" into the delivery address `alias` and `other`; that id is read from there.
- No cancellation time: cancelled_at is the time of the order history row that set the
  cancelled state (a state whose template is `order_canceled`, or listed in
  settings.extra["cancelled_states"]), else date_upd. There is no cancel reason.
- The order payload holds no payments: transactions is None and fetch_transactions() reads
  order_payments (shared by all orders of one `reference`) and credit slips (order_slip).

Write-back (no webservice write is idempotent, so each one reads first):
- push_status adds an order_histories row (`OrderHistory::addWs`, `sendemail=1` to let the
  state send its e-mail) unless current_state already is the wanted state.
- push_comment writes customer_messages in the order's customer_threads (created as core
  creates it for order messages); `private` 0 is visible in the buyer's order history.
  PrestaShop e-mails nobody about a webservice-created message: `notify` is not honoured.
- push_shipment writes the shipment's tracking numbers into the order carrier's one
  `tracking_number` (varchar 64): GET order_carriers?filter[id_order] (first push only),
  GET the order carrier, PUT the whole object back (`sendemail=1` sends the "in transit"
  e-mail) only when the value changes. Several parcels or shipments share the field as
  numbers joined with ", "; a value that would pass 64 characters is refused, not cut.
  The shipped state is the order's milestone (push_status), sent after it by the outbox.
  orders.shipping_number is not written: the webservice reads it from the order carrier
  (Order::getWsShippingNumber) and writing it means a PUT of the whole order.

Shipments made in the shop: one extra GET per page (order_carriers?display=full filtered on
the page's order ids) gives each order carrier's tracking_number; every number is one
ShopShipment "oc-{id_order_carrier}:{number}" (lines None: PrestaShop records no lines),
the id push_shipment gives the parcels it writes, so Comptoir's own are recognised.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
import string
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import ClassVar
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import httpx
from defusedxml import ElementTree as SafeET

from web.connectors import notifications
from web.connectors.base import (
    CANCEL_REASON,
    AuthFailed,
    BadPayload,
    ChangeBatch,
    ConnectorError,
    NotFoundAtShop,
    OrderBatch,
    PermanentError,
    PushOutcome,
    RejectedOrder,
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
    same_text,
    to_utc,
)
from web.connectors.http import ShopHttp
from web.models.enums import LineKind, TransactionKind, TransactionStatus

DEFAULT_TIMEZONE = "Europe/Paris"
PAGE_SIZE = 100
ID_CHUNK = 50  # ids per `filter[id]=[a|b|…]` request, to keep URLs short
RECENT_ORDERS = 250  # orders read to list payment modules
UNSET_TIME = "0000-00-00"
CANCELLED_TEMPLATE = "order_canceled"
GIFT_WRAP_NAME = "Gift wrapping"
# What the key must be allowed to read for orders to be imported.
REQUIRED_RESOURCES = (
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
# Amounts beyond this are not money but a broken payload (and would overflow the cent).
MAX_AMOUNT = Decimal("1e12")
MAX_QUANTITY = 10**9
# VAT rates a line's amounts are snapped to when the shop does not say the rate: France
# (incl. Corsica and overseas departments) first, then the other EU rates.
KNOWN_RATES = tuple(
    Decimal(value)
    for value in (
        "0 20 10 5.5 2.1 8.5 13 0.9 1.05 1.75 "
        "3 4 5 6 7 8 9 12 13.5 14 15 16 17 18 19 21 22 23 24 25 25.5 27"
    ).split()
)
RATE_TOLERANCE = Decimal("0.015")  # cents lost rounding the net and the gross amounts
TRACKING_FIELD_LENGTH = 64  # order_carrier.tracking_number is a varchar(64)
TRACKING_JOIN = ", "
THREAD_TOKEN = string.ascii_letters + string.digits  # Tools::passwdGen's alphabet

_DIGITS = re.compile(r"[0-9]{1,20}")
# Characters XML 1.0 cannot carry, even escaped: dropped from the text we write.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_LOCAL_TIME = r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}"
_PAGE_TOKEN = re.compile(rf"(?P<time>{_LOCAL_TIME})\|(?P<id>[0-9]{{1,20}})")
# "Faded Short Sleeve T-shirts - Color : Orange, Size : S": the combination's attributes
# follow the last " - " whose attribute group name holds no " - ".
_ATTRIBUTES = re.compile(r"^(?P<name>.+?) - (?P<options>(?:(?! - )[^:])+ : .+)$", re.S)
_MONDIAL_RELAY = re.compile(r"Point\s+Mondial\s+Relay\s*:\s*(?P<id>[A-Z]{2}-?[0-9A-Z]+)", re.I)
_VAT_SEPARATORS = re.compile(r"[\s.\-/]")
_BARCODE_SEPARATORS = re.compile(r"[\s-]")
_TRACKING_SEPARATORS = re.compile(r"[,;\s]+")
_ORDER_CARRIER_REF = re.compile(r"oc-(?P<id>[0-9]{1,20})[:/]")
XLINK_NS = "http://www.w3.org/1999/xlink"
register_namespace("xlink", XLINK_NS)  # rejected orders are written back as PrestaShop does


# --- XML writing ---------------------------------------------------------------------------


def _write_xml(node: str, fields: Iterable[tuple[str, str]]) -> bytes:
    """A webservice request body: <prestashop><node><field>value</field>…</node></prestashop>."""
    root = Element("prestashop")
    item = SubElement(root, node)
    for name, value in fields:
        SubElement(item, name).text = _NOT_XML.sub("", value)
    return tostring(root, encoding="utf-8")


# --- XML reading: every failure names the field -------------------------------------------


def _parse_xml(body: bytes | str, what: str) -> Element:
    """A <prestashop> document, refusing DTDs, entities and external references."""
    try:
        root = SafeET.fromstring(body, forbid_dtd=True)
    except Exception as exc:  # expat, defusedxml and decoding errors alike
        raise BadPayload(f"{what}: not a readable XML document ({exc})") from exc
    if not isinstance(root, Element) or root.tag != "prestashop":
        tag = getattr(root, "tag", "?")
        raise BadPayload(f"{what}: the root element is <{tag}>, expected <prestashop>")
    return root


def _amount(raw: str, path: str) -> Decimal:
    if raw == "":
        return Decimal("0")
    try:
        value = Decimal(raw)
    except (InvalidOperation, ValueError) as exc:
        raise BadPayload(f"{path}: {raw!r} is not an amount") from exc
    if not value.is_finite() or abs(value) >= MAX_AMOUNT:
        raise BadPayload(f"{path}: {raw!r} is not a usable amount")
    return value


def _cents(value: Decimal, path: str) -> Decimal:
    try:
        return money(value, path)
    except ArithmeticError as exc:
        raise BadPayload(f"{path}: {value!r} is not a usable amount") from exc


def _unit(value: Decimal, path: str) -> Decimal:
    """A unit price at PrestaShop's six decimals (16.510000 reads 16.51, 3.225 stays)."""
    try:
        return price(value, path)
    except ArithmeticError as exc:
        raise BadPayload(f"{path}: {value!r} is not a usable amount") from exc


def _order_id(external_id: str) -> str:
    """An order id as the webservice takes it (no leading zeros); NotFoundAtShop if not one."""
    return str(int(numeric_order_id(external_id, "PrestaShop")))


def _identifier(raw: str, path: str) -> str:
    if not _DIGITS.fullmatch(raw):
        raise BadPayload(f"{path}: {raw!r} is not a PrestaShop id")
    return str(int(raw))


class _Node:
    """One XML element of a PrestaShop answer, read field by field."""

    __slots__ = ("el", "path")

    def __init__(self, el: Element, path: str) -> None:
        self.el = el
        self.path = path

    def where(self, name: str) -> str:
        return f"{self.path}.{name}"

    def _leaf(self, name: str) -> Element | None:
        child = self.el.find(name)
        if child is not None and len(child):
            raise BadPayload(f"{self.where(name)}: expected a value, found nested elements")
        return child

    def has(self, name: str) -> bool:
        return self.el.find(name) is not None

    def text(self, name: str) -> str:
        child = self._leaf(name)
        return "" if child is None or child.text is None else child.text.strip()

    def required(self, name: str) -> str:
        value = self.text(name)
        if not value:
            raise BadPayload(f"{self.where(name)}: missing")
        return value

    def id(self, name: str = "id") -> str:
        return _identifier(self.required(name), self.where(name))

    def ref(self, name: str) -> str | None:
        """A foreign key: None when absent or 0."""
        raw = self.text(name)
        if raw == "":
            return None
        value = _identifier(raw, self.where(name))
        return None if value == "0" else value

    def amount(self, name: str) -> Decimal:
        return _amount(self.text(name), self.where(name))

    def money(self, name: str, *fallbacks: str) -> Decimal:
        for candidate in (name, *fallbacks):
            if self.text(candidate) != "":
                return _cents(self.amount(candidate), self.where(candidate))
        return Decimal("0.00")

    def quantity(self, name: str) -> int:
        raw = self.required(name)
        if not _DIGITS.fullmatch(raw) or int(raw) >= MAX_QUANTITY:
            raise BadPayload(f"{self.where(name)}: {raw!r} is not a quantity")
        return int(raw)

    def flag(self, name: str) -> bool:
        return self.text(name) not in ("", "0")

    def i18n(self, name: str) -> str:
        """A multilingual field: the text of its first <language>, or its plain text."""
        child = self.el.find(name)
        if child is None:
            return ""
        languages = child.findall("language")
        if not languages:
            return self.text(name)
        first = languages[0]
        if len(first):
            raise BadPayload(f"{self.where(name)}.language: expected a value")
        return (first.text or "").strip()

    def i18n_values(self, name: str) -> list[str]:
        child = self.el.find(name)
        if child is None:
            return []
        return [(lang.text or "").strip() for lang in child.findall("language") if not len(lang)]

    def children(self, *path: str) -> list[_Node]:
        """The elements at associations/<…>/<…>, each with its own path for messages."""
        found = self.el.findall("/".join(path))
        return [_Node(el, f"{self.path}.{path[-2]}[{i}]") for i, el in enumerate(found)]


def _items(root: Element, what: str) -> list[_Node]:
    """The objects of a list answer: <prestashop><orders><order/>…</orders></prestashop>."""
    containers = list(root)
    if not containers:
        return []
    if len(containers) != 1:
        raise BadPayload(f"{what}: expected one list element, found {len(containers)}")
    container = containers[0]
    return [_Node(el, f"{container.tag}[{i}]") for i, el in enumerate(container)]


def _order_nodes(root: Element) -> list[_Node]:
    """<order> of GET /api/orders/{id}, or the <order>s of a display=full list."""
    single = root.findall("order")
    if single:
        return [_Node(el, "order") for el in single]
    listed = root.find("orders")
    if listed is not None:
        return [_Node(el, f"orders[{i}]") for i, el in enumerate(listed.findall("order"))]
    raise BadPayload("order: no <order> element under <prestashop>")


def _rejected(node: _Node, exc: BadPayload) -> RejectedOrder:
    """One unreadable order of a page, parked alone with its XML while the page goes on."""
    raw_id = (node.el.findtext("id") or "").strip()
    wrapped = Element("prestashop")
    wrapped.append(node.el)
    return RejectedOrder(
        external_id=raw_id if _DIGITS.fullmatch(raw_id) else "",
        error=str(exc),
        raw=tostring(wrapped, encoding="unicode").encode("utf-8"),
    )


def _page_key(node: _Node) -> tuple[str, int] | None:
    """(date_upd as the shop wrote it, id) of a listed order: its place in the sort."""
    stamp = (node.el.findtext("date_upd") or "").strip()
    raw_id = (node.el.findtext("id") or "").strip()
    if not re.fullmatch(_LOCAL_TIME, stamp) or not _DIGITS.fullmatch(raw_id):
        return None
    return stamp, int(raw_id)


def _after(found: tuple[str, int] | None, key: tuple[str, int]) -> bool:
    """Whether a listed order comes after the page key (unplaceable ones are kept)."""
    return found is None or found > key


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    ordered = sorted(set(ids), key=int)
    for start in range(0, len(ordered), ID_CHUNK):
        yield ordered[start : start + ID_CHUNK]


def _tracking_numbers(value: str) -> list[str]:
    """The numbers an order carrier's tracking_number holds ("A, B", or typed "A B")."""
    numbers: list[str] = []
    for part in _TRACKING_SEPARATORS.split(value):
        if part and part not in numbers:
            numbers.append(part)
    return numbers


def _parcel_ref(order_carrier_id: str, number: str) -> str:
    """The shop's id of one tracking number: its order carrier and the number itself."""
    return f"oc-{order_carrier_id}:{number}"


def _compact_vat(value: str) -> str:
    return _VAT_SEPARATORS.sub("", value).upper()


def _relay_point(*texts: str) -> str:
    for text in texts:
        found = _MONDIAL_RELAY.search(text)
        if found:
            return found.group("id").upper()
    return ""


def _split_name(name: str, has_combination: bool) -> tuple[str, str]:
    if has_combination:
        found = _ATTRIBUTES.match(name)
        if found:
            return found.group("name").strip(), found.group("options").strip()
    return name, ""


def _derive_rate(net: Decimal, gross: Decimal, path: str) -> Decimal:
    """The VAT rate behind tax-excluded and tax-included amounts, snapped to a known rate."""
    tax = gross - net
    if net <= 0 or tax <= 0:
        return Decimal("0")
    best = min(KNOWN_RATES, key=lambda known: abs(net * known / 100 - tax))
    if abs(net * best / 100 - tax) <= RATE_TOLERANCE:
        return rate(best, path)
    return rate((tax * 100 / net).quantize(Decimal("0.01")), path)


# --- What one order answer says --------------------------------------------------------------


@dataclass(frozen=True)
class _Row:
    id: str
    quantity: int
    name: str
    has_combination: bool
    sku: str
    ean: str
    unit_incl: Decimal
    unit_excl: Decimal
    path: str


@dataclass(frozen=True)
class _RawOrder:
    id: str
    reference: str
    customer_id: str | None
    delivery_id: str | None
    invoice_id: str | None
    currency_id: str
    carrier_id: str | None
    state: str
    module: str
    payment: str
    placed_at: dt.datetime
    updated_at: dt.datetime
    gift: bool
    gift_message: str
    grand_total: Decimal
    grand_total_excl: Decimal
    products: Decimal
    discounts: Decimal
    shipping: Decimal
    shipping_excl: Decimal
    wrapping: Decimal
    wrapping_excl: Decimal
    rows: tuple[_Row, ...]


@dataclass(frozen=True)
class _Detail:
    unit_incl: Decimal
    total_incl: Decimal
    total_excl: Decimal
    tax_ids: tuple[str, ...]
    virtual: bool = False


@dataclass(frozen=True)
class _State:
    label: str
    deleted: bool
    cancelled: bool


@dataclass
class _Call:
    """The look-ups of one connector call, read in batches and kept for that call only."""

    customers: dict[str, _Node] = field(default_factory=dict)
    addresses: dict[str, _Node] = field(default_factory=dict)
    countries: dict[str, str] = field(default_factory=dict)
    regions: dict[str, str] = field(default_factory=dict)
    currencies: dict[str, str] = field(default_factory=dict)
    carriers: dict[str, str] = field(default_factory=dict)
    carrier_urls: dict[str, str] = field(default_factory=dict)
    # order id -> its order carriers (id, id_carrier, tracking_number); None: not readable.
    order_carriers: dict[str, list[tuple[str, str, str]]] | None = None
    states: dict[str, _State] | None = None
    details: dict[str, dict[str, _Detail]] = field(default_factory=dict)
    taxes: dict[str, Decimal] | None = None
    discounts: dict[str, list[tuple[str | None, str, Decimal]]] = field(default_factory=dict)
    codes: dict[str, str] = field(default_factory=dict)
    messages: dict[str, list[tuple[str, int, str]]] = field(default_factory=dict)
    history: dict[str, list[tuple[str, int, dt.datetime]]] = field(default_factory=dict)
    shop_name: str | None = None


# --- The connector ------------------------------------------------------------------------


class PrestaShopConnector:
    """Orders in, catalogue look-ups for one PrestaShop shop (Webservice, XML)."""

    platform: ClassVar[str] = "prestashop"
    api_version: ClassVar[str] = "webservice 1.7/8"
    webhook_topics: ClassVar[tuple[str, ...]] = ()
    has_webhooks: ClassVar[bool] = True

    def __init__(
        self, settings: ShopSettings, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.settings = settings
        zone = settings.extra.get("timezone") or DEFAULT_TIMEZONE
        try:
            self.tz = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise PermanentError(f"settings: unknown shop timezone {zone!r}") from exc
        self.cancelled_states = frozenset(
            part.strip()
            for part in settings.extra.get("cancelled_states", "").split(",")
            if part.strip()
        )
        base_url = settings.base_url.strip().rstrip("/")
        if "://" not in base_url:
            base_url = f"https://{base_url}"
        if base_url.endswith("/api"):
            base_url = base_url[: -len("/api")]
        shop_id = settings.extra.get("id_shop", "")
        self.http = ShopHttp(
            f"{base_url}/api",
            timeout=settings.timeout,
            auth=(settings.api_key, ""),
            params={"id_shop": shop_id} if shop_id.isdigit() else None,
            transport=transport,
            pacer=settings.pacer,
        )
        self._employee_id: str | None = None

    def close(self) -> None:
        self.http.close()

    # --- HTTP -------------------------------------------------------------------------

    def _get(self, path: str, params: list[tuple[str, str]] | None = None) -> httpx.Response:
        return self.http.request("GET", path, params=params or [])

    def _list(self, resource: str, params: list[tuple[str, str]]) -> list[_Node]:
        """GET /api/{resource} with display/filter/sort/limit: the listed objects."""
        what = f"GET /api/{resource}"
        return _items(_parse_xml(self._get(f"/{resource}", params).content, what), what)

    def _optional(self, resource: str, params: list[tuple[str, str]]) -> list[_Node] | None:
        """Like _list for resources a shop may lack or not grant: None when refused."""
        try:
            return self._list(resource, params)
        except RetryableError:
            raise
        except ConnectorError:
            return None

    def _by_ids(
        self,
        resource: str,
        display: str,
        ids: Iterable[str],
        field_name: str = "id",
        optional: bool = False,
        extra: tuple[tuple[str, str], ...] = (),
    ) -> list[_Node] | None:
        """Objects whose field is one of ids, in requests of ID_CHUNK ids."""
        found: list[_Node] = []
        for chunk in _chunks(ids):
            params = [("display", display), (f"filter[{field_name}]", f"[{'|'.join(chunk)}]")]
            params.extend(extra)
            nodes = self._optional(resource, params) if optional else self._list(resource, params)
            if nodes is None:
                return None
            found.extend(nodes)
        return found

    # --- webhooks ---------------------------------------------------------------------

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """A notification of Comptoir's module: X-Comptoir-Hmac-Sha256 signs the raw body."""
        notifications.verify(self.settings.webhook_secret, body, headers)

    def describe_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """The change a notification names; its `date_upd` is shop-local, read as the poll
        reads the order's, so the key is the one the change probe stores."""
        return notifications.describe(body, self._local_time)

    # --- orders -----------------------------------------------------------------------

    def parse_order(self, payload: bytes) -> ShopOrder:
        """Read the answer of GET /api/orders/{id} (or a one-order display=full list) and
        complete it with its customer, addresses, currency, carrier, state and details."""
        nodes = _order_nodes(_parse_xml(payload, "order"))
        if len(nodes) != 1:
            raise BadPayload(f"order: expected one <order>, found {len(nodes)}")
        return self._complete([self._read_order(nodes[0])])[0]

    def fetch_order(self, external_id: str) -> ShopOrder:
        """GET /api/orders/{id}, then the look-ups of parse_order."""
        order_id = _order_id(external_id)
        response = self._get(f"/orders/{order_id}")
        if not response.content.strip():
            raise NotFoundAtShop(f"GET /api/orders/{order_id}: empty answer")
        return self.parse_order(response.content)

    def list_orders(self, changed_since: dt.datetime, page: str | None = None) -> OrderBatch:
        """GET /api/orders?display=full&date=1&filter[date_upd]=>[local time]
        &sort=[date_upd_ASC,id_ASC]&limit=100, then paged by key (see _page_of)."""
        nodes, next_page = self._page_of("full", changed_since, page)
        readable: list[tuple[_Node, _RawOrder]] = []
        rejected: list[RejectedOrder] = []
        for node in nodes:
            try:
                readable.append((node, self._read_order(node)))
            except BadPayload as exc:
                rejected.append(_rejected(node, exc))
        call = self._prefetched([raw for _, raw in readable])
        orders: list[ShopOrder] = []
        for node, raw in readable:
            try:
                orders.append(self._build(raw, call))
            except BadPayload as exc:
                rejected.append(_rejected(node, exc))
        return OrderBatch(orders=tuple(orders), next_page=next_page, rejected=tuple(rejected))

    def list_changes(self, changed_since: dt.datetime, page: str | None = None) -> ChangeBatch:
        """The change probe: GET /api/orders?display=[id,date_upd]&date=1
        &filter[date_upd]=>[local time]&sort=[date_upd_ASC,id_ASC]&limit=100, paged as
        list_orders is: which orders changed since then, and when (UTC)."""
        nodes, next_page = self._page_of("[id,date_upd]", changed_since, page)
        changes = []
        readable = True
        for node in nodes:
            try:
                when = self._local_time(node.required("date_upd"), node.where("date_upd"))
                if when is not None:
                    changes.append((node.id(), when))
            except BadPayload:
                readable = False  # the full poll parks that order alone
        return ChangeBatch(changes=tuple(changes), next_page=next_page, readable=readable)

    def _page_of(
        self, display: str, changed_since: dt.datetime, page: str | None
    ) -> tuple[list[_Node], str | None]:
        """One page of orders changed since a time, with `display`, and the next page's token.

        Sorted on [date_upd_ASC,id_ASC], limit 100, paged by key, not by offset. The filter
        is strict, so it asks for one second before `changed_since`. The token
        "YYYY-MM-DD HH:MM:SS|id" names the last order read (shop-local date_upd, readable or
        not). The next page asks for the rest of that second, filter[date_upd]=[T] and
        filter[id]=>[id] (filters on two fields are AND-ed), then, if that is short, for
        filter[date_upd]=>[T]. An order changed while we page moves behind the key instead
        of shifting the others into pages already read, and a bulk change sharing one second
        pages through by id: every page moves the key forward, so paging ends and no order is
        read twice (rows not after the key are dropped, should the shop answer them anyway).
        """
        common = [("display", display), ("date", "1")]
        sort = ("sort", "[date_upd_ASC,id_ASC]")
        key: tuple[str, int] | None = None
        if page:
            found = _PAGE_TOKEN.fullmatch(page.strip())
            if found is None:
                raise BadPayload(f"page: {page!r} is not a PrestaShop page token")
            key = (found.group("time"), int(found.group("id")))
            last_time, last_id = key
            nodes = self._list(
                "orders",
                [
                    *common,
                    ("filter[date_upd]", f"[{last_time}]"),
                    ("filter[id]", f">[{last_id}]"),
                    sort,
                    ("limit", str(PAGE_SIZE)),
                ],
            )
            if len(nodes) < PAGE_SIZE:
                nodes += self._list(
                    "orders",
                    [
                        *common,
                        ("filter[date_upd]", f">[{last_time}]"),
                        sort,
                        ("limit", str(PAGE_SIZE - len(nodes))),
                    ],
                )
        else:
            nodes = self._list(
                "orders",
                [
                    *common,
                    ("filter[date_upd]", f">[{self._local_filter(changed_since)}]"),
                    sort,
                    ("limit", str(PAGE_SIZE)),
                ],
            )
        full = len(nodes) >= PAGE_SIZE
        if key is not None:
            nodes = [node for node in nodes if _after(_page_key(node), key)]
        next_page = None
        if full:
            # The token is the last order read, readable or not, so none is skipped.
            keys = [found for found in map(_page_key, nodes) if found is not None]
            if not keys:
                raise BadPayload("GET /api/orders: a full page without a usable date_upd and id")
            next_page = f"{keys[-1][0]}|{keys[-1][1]}"
        return nodes, next_page

    def fetch_transactions(self, external_id: str) -> tuple[ShopTransaction, ...]:
        """GET /api/orders?filter[id]=[N] for the reference, then
        GET /api/order_payments?filter[order_reference]=[REF]&display=full and
        GET /api/order_slip?filter[id_order]=[N]&display=full (credit slips as refunds)."""
        order_id = _order_id(external_id)
        found = self._list(
            "orders", [("display", "[id,reference,id_currency]"), ("filter[id]", f"[{order_id}]")]
        )
        if not found:
            raise NotFoundAtShop(f"GET /api/orders: no order {order_id}")
        order = found[0]
        reference = order.required("reference")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", reference):
            raise BadPayload(f"{order.where('reference')}: {reference!r} is not a reference")
        call = _Call()
        currency_id = order.ref("id_currency")
        payments = self._list(
            "order_payments",
            [("display", "full"), ("filter[order_reference]", f"[{reference}]")],
        )
        currency_ids = {p.ref("id_currency") for p in payments} | {currency_id}
        self._load_currencies(call, {c for c in currency_ids if c})
        default_currency = call.currencies.get(currency_id or "", "")
        transactions = [self._payment(node, call, default_currency) for node in payments]
        slips = self._optional(
            "order_slip", [("display", "full"), ("filter[id_order]", f"[{order_id}]")]
        )
        for node in slips or ():
            transactions.append(self._slip(node, default_currency))
        transactions.sort(key=lambda tx: (tx.occurred_at, tx.external_id))
        return tuple(transactions)

    # --- catalogues -------------------------------------------------------------------

    def list_statuses(self) -> list[ShopChoice]:
        """GET /api/order_states?display=full: code = state id, label = first-language name."""
        call = _Call()
        states = self._load_states(call)
        return [
            ShopChoice(code=state_id, label=state.label or state_id)
            for state_id, state in sorted(states.items(), key=lambda item: int(item[0]))
            if not state.deleted
        ]

    def list_carriers(self) -> list[ShopChoice]:
        """GET /api/carriers?display=full&filter[deleted]=[0]: code = label = carrier name
        (what ShopOrder.shipping_label carries), with the carrier module in the label."""
        call = _Call()
        choices: dict[str, ShopChoice] = {}
        nodes = self._list("carriers", [("display", "full"), ("filter[deleted]", "[0]")])
        for node in nodes:
            name = self._carrier_name(call, node.text("name"))
            if not name or name in choices:
                continue
            module = node.text("external_module_name") if node.flag("is_module") else ""
            choices[name] = ShopChoice(code=name, label=f"{name} ({module})" if module else name)
        return list(choices.values())

    def list_payment_methods(self) -> list[ShopChoice]:
        """GET /api/orders?display=[id,module,payment]&sort=[id_DESC]&limit=250: the payment
        modules of recent orders (code = `module`, label = `payment` of its latest order)."""
        nodes = self._list(
            "orders",
            [
                ("display", "[id,module,payment]"),
                ("sort", "[id_DESC]"),
                ("limit", str(RECENT_ORDERS)),
            ],
        )
        choices: dict[str, ShopChoice] = {}
        for node in nodes:
            module = node.text("module")
            if module and module not in choices:
                choices[module] = ShopChoice(code=module, label=node.text("payment") or module)
        return sorted(choices.values(), key=lambda choice: choice.code)

    def test_connection(self) -> str:
        """GET /api/: the resources the key may read, the shop name and PSWS-Version."""
        response = self._get("/")
        root = _parse_xml(response.content, "GET /api/")
        api = root.find("api")
        if api is None:
            raise BadPayload("GET /api/: no <api> element")
        readable = {child.tag for child in api if child.get("get", "true") == "true"}
        missing = [name for name in REQUIRED_RESOURCES if name not in readable]
        if missing:
            raise AuthFailed(f"the webservice key may not read: {', '.join(missing)}")
        version = response.headers.get("PSWS-Version", "?")
        name = api.get("shopName", "")
        return f"PrestaShop {version} webservice, shop {name!r}, {len(readable)} resources readable"

    # --- write-back -------------------------------------------------------------------

    def push_status(
        self, external_id: str, status: str, *, notify: bool = True, reason: str = ""
    ) -> PushOutcome:
        """GET /api/orders/{id}; unless its current_state is already `status` (an
        order_states id), POST /api/order_histories (with `sendemail=1` when notify)
        holding <order_history><id_order/><id_order_state/></order_history>.

        OrderHistory::addWs runs the whole state change (stock, invoice, paid/shipped flags)
        and, with sendemail=1, the state's own e-mail template; remote_ref is the history
        row's id ("" when the state was already set). A reason goes into a private
        customer message "Cancellation reason: …" (see push_comment), written even when
        the state was already set, unless the same message is already there; when only
        that message is written, remote_ref is its id.
        """
        order_id = _order_id(external_id)
        state = str(status).strip()
        if not _DIGITS.fullmatch(state):
            return PushOutcome.cannot(
                f"PrestaShop order states are numeric ids and {status!r} is not one: "
                "check the shop's status mapping"
            )
        state = str(int(state))
        order = self._order_for_write(order_id)
        outcome = PushOutcome.already_there()
        if order.text("current_state") != state:
            history = [("id_order", order_id), ("id_order_state", state)]
            params = [("sendemail", "1")] if notify else []
            outcome = PushOutcome(
                remote_ref=self._create("order_histories", "order_history", history, params)
            )
        if reason.strip():
            text = f"{CANCEL_REASON}{reason.strip()}"
            note = self._add_message(order_id, text, private=True, since=None, order=order)
            if note.written and not outcome.written:
                outcome = note
        return outcome

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
        """Add a customer message to the order's customer thread, unless one of its threads
        already holds this message: the same text and private flag, dated (`date_add`,
        shop-local time) at or after `since` less CLOCK_SKEW. An older message with the
        same text is another comment; `ref` is not needed, messages are dated.

        Reads GET /api/customer_threads?display=[id]&filter[id_order]=[N] and
        GET /api/customer_messages?display=[id,message,private,date_add]&
        filter[id_customer_thread]=[…]; when the order has no thread yet, reads the order
        and its customer's e-mail and creates one with POST /api/customer_threads
        (id_order, id_customer, id_shop, id_lang, id_contact 0, email, a random
        12-character token, status "open", as core does for order messages); then POST
        /api/customer_messages (id_customer_thread, id_employee, message, private = 0 when
        customer_visible, else 1). remote_ref is the message id.

        `notify` cannot be honoured: PrestaShop sends no e-mail for a message created
        through the webservice; a customer-visible message shows in the buyer's order
        history only. The message is signed by settings.extra["id_employee"], else by the
        first active employee (GET /api/employees: one more request per push, as the
        connector lives for one push), else by nobody (id_employee 0), in which case the
        back office shows it as written by the customer.
        """
        order_id = _order_id(external_id)
        return self._add_message(
            order_id, text.strip(), private=not customer_visible, since=since, order=None
        )

    def push_shipment(
        self, external_id: str, shipment: ShipmentToPush, *, since: dt.datetime | None = None
    ) -> PushOutcome:
        """Make the order carrier's tracking_number hold this shipment's numbers.

        Reads the order carrier first: GET /api/order_carriers?filter[id_order]=[N] (only
        while the shipment has no shop id naming it), then GET /api/order_carriers/{id}; then,
        only when the value changes, PUT /api/order_carriers/{id} with the whole object
        (`sendemail=1` when a number is added and the shop may e-mail the buyer: core's
        "in transit" e-mail). The numbers this shipment wrote before (its parcels' shop ids
        "oc-{id}:{number}") and no longer has are taken out, those it has are added after
        the numbers already there, anything else in the field (other shipments, numbers
        typed in the shop) is kept. A cancelled shipment takes all its numbers out. A value
        past 64 characters is refused, with nothing written. remote_ref
        "oc-{id}/{reference}" names the order carrier (one holds all the order's
        shipments); parcel_refs give each number its id "oc-{id}:{number}", the id polls
        give that number (see _shipments), so Comptoir's own are recognised.
        """
        order_id = _order_id(external_id)
        known = _ORDER_CARRIER_REF.match(shipment.external_id)
        carrier_ref = known.group("id") if known else self._order_carrier_of(order_id, shipment)
        if carrier_ref is None:
            return PushOutcome.cannot(
                "PrestaShop holds no order carrier for this order: "
                "there is no tracking number to write"
            )
        path = f"/order_carriers/{carrier_ref}"
        response = self._get(path)
        if not response.content.strip():
            raise NotFoundAtShop(f"GET /api{path}: empty answer")
        node = self._one(response.content, "order_carrier", f"GET /api{path}")
        if node.id("id_order") != order_id:
            raise BadPayload(f"GET /api{path}: order carrier of order {node.id('id_order')}")
        current = node.text("tracking_number")
        had = _tracking_numbers(current)
        before = {
            ref.partition(":")[2]
            for parcel in shipment.parcels
            if (ref := parcel.external_id).startswith(f"oc-{carrier_ref}:")
        }
        mine = [] if shipment.cancelled else list(shipment.tracking_numbers)
        if shipment.cancelled:
            before.update(shipment.tracking_numbers)
        kept = [number for number in had if number not in before or number in mine]
        added = [number for number in mine if number not in kept]
        value = TRACKING_JOIN.join(kept + added)
        refs = tuple((number, _parcel_ref(carrier_ref, number)) for number in mine)
        remote_ref = f"oc-{carrier_ref}/{shipment.reference}"
        if value == current or _tracking_numbers(value) == had:
            return PushOutcome.already_there(remote_ref, refs)
        if len(value) > TRACKING_FIELD_LENGTH:
            return PushOutcome.cannot(
                f"PrestaShop keeps one tracking number field of {TRACKING_FIELD_LENGTH} "
                f"characters per order carrier; {value!r} does not fit: "
                f"{', '.join(added)} not written"
            )
        fields = [
            (child.tag, value if child.tag == "tracking_number" else (child.text or "").strip())
            for child in node.el
            if not len(child)
        ]
        params = [("sendemail", "1")] if added and shipment.notify else []
        self.http.request(
            "PUT",
            path,
            params=params,
            content=_write_xml("order_carrier", fields),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
        return PushOutcome(remote_ref=remote_ref, parcel_refs=refs)

    def _order_carrier_of(self, order_id: str, shipment: ShipmentToPush) -> str | None:
        """The order carrier to write: the one already holding one of the shipment's numbers
        (an earlier push whose answer was lost), else the order's first."""
        nodes = self._list(
            "order_carriers",
            [
                ("display", "[id,tracking_number]"),
                ("filter[id_order]", f"[{order_id}]"),
                ("sort", "[id_ASC]"),
            ],
        )
        wanted = set(shipment.tracking_numbers)
        for node in nodes:
            if wanted & set(_tracking_numbers(node.text("tracking_number"))):
                return node.id()
        return nodes[0].id() if nodes else None

    def _one(self, body: bytes, node_name: str, what: str) -> _Node:
        found = _parse_xml(body, what).find(node_name)
        if found is None:
            raise BadPayload(f"{what}: no <{node_name}> in the answer")
        return _Node(found, node_name)

    def _order_for_write(self, order_id: str) -> _Node:
        """GET /api/orders/{id}: the order as it is now (NotFoundAtShop when absent)."""
        response = self._get(f"/orders/{order_id}")
        if not response.content.strip():
            raise NotFoundAtShop(f"GET /api/orders/{order_id}: empty answer")
        nodes = _order_nodes(_parse_xml(response.content, f"GET /api/orders/{order_id}"))
        if len(nodes) != 1:
            raise BadPayload(f"order: expected one <order>, found {len(nodes)}")
        return nodes[0]

    def _create(
        self,
        resource: str,
        node: str,
        fields: Iterable[tuple[str, str]],
        params: list[tuple[str, str]] | None = None,
    ) -> str:
        """POST /api/{resource} with one new object; the id the shop gave it."""
        what = f"POST /api/{resource}"
        response = self.http.request(
            "POST",
            f"/{resource}",
            params=params or [],
            content=_write_xml(node, fields),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
        created = _parse_xml(response.content, what).find(node)
        if created is None:
            raise BadPayload(f"{what}: no <{node}> in the answer")
        return _Node(created, node).id()

    def _add_message(
        self,
        order_id: str,
        text: str,
        *,
        private: bool,
        since: dt.datetime | None,
        order: _Node | None,
    ) -> PushOutcome:
        """The message in the order's first thread, unless one of its threads holds it."""
        threads = self._list(
            "customer_threads",
            [("display", "[id]"), ("filter[id_order]", f"[{order_id}]"), ("sort", "[id_ASC]")],
        )
        thread_ids = [thread.id() for thread in threads]
        messages = self._by_ids(
            "customer_messages", "[id,message,private,date_add]", thread_ids, "id_customer_thread"
        )
        for message in messages or ():
            if message.flag("private") != private:
                continue
            if not same_text(message.text("message"), text):
                continue
            created = self._local_time(message.text("date_add"), message.where("date_add"))
            if may_be_ours(created, since):
                return PushOutcome.already_there(message.id())
        if thread_ids:
            thread_id = thread_ids[0]
        else:
            thread_id = self._create_thread(order or self._order_for_write(order_id))
        message_id = self._create(
            "customer_messages",
            "customer_message",
            [
                ("id_customer_thread", thread_id),
                ("id_employee", self._employee()),
                ("message", text),
                ("private", "1" if private else "0"),
            ],
        )
        return PushOutcome(remote_ref=message_id)

    def _create_thread(self, order: _Node) -> str:
        """POST /api/customer_threads: the order's thread, filled as core fills it."""
        customer_id = order.ref("id_customer")
        email = ""
        if customer_id:
            found = self._list(
                "customers", [("display", "[id,email]"), ("filter[id]", f"[{customer_id}]")]
            )
            email = found[0].text("email") if found else ""
        fields = [
            ("id_order", order.id()),
            ("id_customer", customer_id or "0"),
            ("id_shop", order.ref("id_shop") or "0"),
            ("id_lang", order.id("id_lang")),
            ("id_contact", "0"),
            ("email", email),
            ("token", "".join(secrets.choice(THREAD_TOKEN) for _ in range(12))),
            ("status", "open"),
        ]
        return self._create("customer_threads", "customer_thread", fields)

    def _employee(self) -> str:
        """The employee who signs our messages: configured, else the first active one (one
        GET /api/employees per connector)."""
        if self._employee_id is None:
            configured = (self.settings.extra.get("id_employee") or "").strip()
            if _DIGITS.fullmatch(configured):
                self._employee_id = str(int(configured))
            else:
                found = self._optional(
                    "employees",
                    [
                        ("display", "[id]"),
                        ("filter[active]", "[1]"),
                        ("sort", "[id_ASC]"),
                        ("limit", "1"),
                    ],
                )
                self._employee_id = found[0].id() if found else "0"
        return self._employee_id

    # --- reading one order ------------------------------------------------------------

    def _local_time(self, raw: str, path: str) -> dt.datetime | None:
        if raw == "" or raw.startswith(UNSET_TIME):
            return None
        for pattern in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d"):
            try:
                naive = dt.datetime.strptime(raw, pattern)
                break
            except ValueError:
                continue
        else:
            raise BadPayload(f"{path}: {raw!r} is not a YYYY-MM-DD HH:MM:SS time")
        try:
            return naive.replace(tzinfo=self.tz, fold=0).astimezone(dt.UTC)
        except (OverflowError, ValueError) as exc:
            raise BadPayload(f"{path}: {raw!r} is out of range") from exc

    def _local_filter(self, when: dt.datetime) -> str:
        try:
            local = to_utc(when).astimezone(self.tz).replace(tzinfo=None, microsecond=0)
            local -= dt.timedelta(seconds=1)
        except OverflowError:
            local = dt.datetime(1970, 1, 1)
        return local.isoformat(sep=" ", timespec="seconds")

    def _read_row(self, node: _Node) -> _Row:
        barcode = (
            node.text("product_ean13") or node.text("product_isbn") or node.text("product_upc")
        )
        ean = _BARCODE_SEPARATORS.sub("", barcode)  # ISBNs come as 978-2-212-67890-1
        return _Row(
            id=node.id(),
            quantity=node.quantity("product_quantity"),
            name=node.text("product_name"),
            has_combination=node.ref("product_attribute_id") is not None,
            sku=node.text("product_reference"),
            ean=ean,
            unit_incl=node.amount("unit_price_tax_incl"),
            unit_excl=node.amount("unit_price_tax_excl"),
            path=node.path,
        )

    def _read_order(self, node: _Node) -> _RawOrder:
        placed_at = self._local_time(node.required("date_add"), node.where("date_add"))
        if placed_at is None:
            raise BadPayload(f"{node.where('date_add')}: unset")
        updated_at = self._local_time(node.text("date_upd"), node.where("date_upd")) or placed_at
        currency_id = node.ref("id_currency")
        if currency_id is None:
            raise BadPayload(f"{node.where('id_currency')}: missing")
        rows = tuple(
            self._read_row(row) for row in node.children("associations", "order_rows", "order_row")
        )
        return _RawOrder(
            id=node.id(),
            reference=node.text("reference"),
            customer_id=node.ref("id_customer"),
            delivery_id=node.ref("id_address_delivery"),
            invoice_id=node.ref("id_address_invoice"),
            currency_id=currency_id,
            carrier_id=node.ref("id_carrier"),
            state=node.ref("current_state") or "0",
            module=node.text("module"),
            payment=node.text("payment"),
            placed_at=placed_at,
            updated_at=updated_at,
            gift=node.flag("gift"),
            gift_message=node.text("gift_message"),
            grand_total=node.money("total_paid_tax_incl", "total_paid"),
            grand_total_excl=node.money("total_paid_tax_excl", "total_paid_tax_incl", "total_paid"),
            products=node.money("total_products_wt"),
            discounts=node.money("total_discounts_tax_incl", "total_discounts"),
            shipping=node.money("total_shipping_tax_incl", "total_shipping"),
            shipping_excl=node.money("total_shipping_tax_excl", "total_shipping_tax_incl"),
            wrapping=node.money("total_wrapping_tax_incl", "total_wrapping"),
            wrapping_excl=node.money("total_wrapping_tax_excl", "total_wrapping_tax_incl"),
            rows=rows,
        )

    # --- look-ups ---------------------------------------------------------------------

    def _complete(self, raws: list[_RawOrder]) -> tuple[ShopOrder, ...]:
        call = self._prefetched(raws)
        return tuple(self._build(raw, call) for raw in raws)

    def _prefetched(self, raws: list[_RawOrder]) -> _Call:
        call = _Call()
        if raws:
            self._prefetch(call, raws)
        return call

    def _prefetch(self, call: _Call, raws: list[_RawOrder]) -> None:
        order_ids = {raw.id for raw in raws}
        self._load_states(call)
        self._load_currencies(call, {raw.currency_id for raw in raws})
        self._load_order_carriers(call, order_ids)
        carrier_ids = {raw.carrier_id for raw in raws if raw.carrier_id}
        for found in (call.order_carriers or {}).values():
            carrier_ids.update(carrier for _, carrier, _ in found if carrier)
        for node in self._by_ids("carriers", "[id,name,url]", carrier_ids) or ():
            call.carriers[node.id()] = self._carrier_name(call, node.text("name"))
            call.carrier_urls[node.id()] = node.text("url")
        customer_ids = {raw.customer_id for raw in raws if raw.customer_id}
        display = "[id,email,firstname,lastname,company]"  # never the password hash
        for node in self._by_ids("customers", display, customer_ids) or ():
            call.customers[node.id()] = node
        address_ids = {a for raw in raws for a in (raw.delivery_id, raw.invoice_id) if a}
        for node in self._by_ids("addresses", "full", address_ids) or ():
            call.addresses[node.id()] = node
        addresses = list(call.addresses.values())
        country_ids = {c for node in addresses if (c := node.ref("id_country"))}
        for node in self._by_ids("countries", "[id,iso_code]", country_ids) or ():
            call.countries[node.id()] = node.text("iso_code").upper()
        region_ids = {s for node in addresses if (s := node.ref("id_state"))}
        for node in self._by_ids("states", "[id,name]", region_ids, optional=True) or ():
            call.regions[node.id()] = node.text("name")
        self._load_details(call, order_ids)
        self._load_discounts(call, order_ids)
        for node in (
            self._by_ids(
                "messages",
                "full",
                order_ids,
                "id_order",
                optional=True,
                extra=(("filter[private]", "[0]"),),
            )
            or ()
        ):
            if node.ref("id_employee") is None and not node.flag("private"):
                entry = (node.text("date_add"), int(node.id()), node.text("message"))
                call.messages.setdefault(node.id("id_order"), []).append(entry)
        states = call.states or {}
        cancelled = {raw.id for raw in raws if self._is_cancelled(raw.state, states)}
        for node in (
            self._by_ids("order_histories", "full", cancelled, "id_order", optional=True) or ()
        ):
            when = self._local_time(node.text("date_add"), node.where("date_add"))
            if when is not None:
                row = (node.text("id_order_state"), int(node.id()), when)
                call.history.setdefault(node.id("id_order"), []).append(row)

    def _load_order_carriers(self, call: _Call, order_ids: set[str]) -> None:
        """The page's order carriers in one list per ID_CHUNK orders (none when not granted)."""
        nodes = self._by_ids(
            "order_carriers",
            "[id,id_order,id_carrier,tracking_number]",
            order_ids,
            "id_order",
            optional=True,
        )
        if nodes is None:
            return
        call.order_carriers = {}
        for node in sorted(nodes, key=lambda n: int(n.id())):
            entry = (node.id(), node.ref("id_carrier") or "", node.text("tracking_number"))
            call.order_carriers.setdefault(node.id("id_order"), []).append(entry)

    def _shipments(self, call: _Call, order_id: str) -> tuple[ShopShipment, ...] | None:
        """Each tracking number of the order's order carriers as one shipment of the shop."""
        if call.order_carriers is None:
            return None
        found = []
        for carrier_ref, carrier_id, tracking in call.order_carriers.get(order_id, ()):
            carrier = call.carriers.get(carrier_id, "")
            template = call.carrier_urls.get(carrier_id, "")
            for number in _tracking_numbers(tracking):
                ref = _parcel_ref(carrier_ref, number)
                url = template.replace("@", number) if "@" in template else ""
                parcel = ShopParcel(number, carrier=carrier, tracking_url=url, external_id=ref)
                found.append(ShopShipment(external_id=ref, parcels=(parcel,), carrier=carrier))
        return tuple(found)

    def _load_states(self, call: _Call) -> dict[str, _State]:
        if call.states is None:
            call.states = {}
            for node in self._list("order_states", [("display", "full")]):
                templates = node.i18n_values("template") or [node.text("template")]
                call.states[node.id()] = _State(
                    label=node.i18n("name"),
                    deleted=node.flag("deleted"),
                    cancelled=CANCELLED_TEMPLATE in templates,
                )
        return call.states

    def _load_currencies(self, call: _Call, ids: set[str]) -> None:
        wanted = ids - call.currencies.keys()
        for node in self._by_ids("currencies", "[id,iso_code]", wanted) or ():
            call.currencies[node.id()] = node.text("iso_code").upper()

    def _load_details(self, call: _Call, order_ids: set[str]) -> None:
        nodes = self._by_ids("order_details", "full", order_ids, "id_order", optional=True)
        tax_ids: set[str] = set()
        for node in nodes or ():
            taxes = tuple(t.id() for t in node.children("associations", "taxes", "tax"))
            tax_ids.update(taxes)
            call.details.setdefault(node.id("id_order"), {})[node.id()] = _Detail(
                unit_incl=node.amount("unit_price_tax_incl"),
                total_incl=node.money("total_price_tax_incl"),
                total_excl=node.money("total_price_tax_excl"),
                tax_ids=taxes,
                # A download link (virtual product with a file), or a module's is_virtual.
                virtual=bool(node.text("download_hash")) or node.flag("is_virtual"),
            )
        if tax_ids:
            found = self._by_ids("taxes", "[id,rate]", tax_ids, optional=True)
            if found is not None:
                call.taxes = {
                    node.id(): rate(node.text("rate"), node.where("rate")) for node in found
                }

    def _load_discounts(self, call: _Call, order_ids: set[str]) -> None:
        nodes = self._by_ids("order_cart_rules", "full", order_ids, "id_order", optional=True)
        rule_ids: set[str] = set()
        for node in nodes or ():
            if node.flag("deleted"):
                continue
            rule_id = node.ref("id_cart_rule")
            if rule_id:
                rule_ids.add(rule_id)
            applied = (rule_id, node.text("name"), node.money("value"))
            call.discounts.setdefault(node.id("id_order"), []).append(applied)
        for node in self._by_ids("cart_rules", "[id,code]", rule_ids, optional=True) or ():
            call.codes[node.id()] = node.text("code")

    def _carrier_name(self, call: _Call, name: str) -> str:
        """PrestaShop shows a carrier named "0" under the shop's name."""
        if name != "0":
            return name
        if call.shop_name is None:
            api = _parse_xml(self._get("/").content, "GET /api/").find("api")
            call.shop_name = (api.get("shopName", "") if api is not None else "") or name
        return call.shop_name

    def _is_cancelled(self, state_id: str, states: dict[str, _State]) -> bool:
        if self.cancelled_states:
            return state_id in self.cancelled_states
        state = states.get(state_id)
        return state is not None and state.cancelled

    # --- building ShopOrder -----------------------------------------------------------

    def _address(self, call: _Call, address_id: str | None, email: str = "") -> ShopAddress:
        node = call.addresses.get(address_id or "")
        if node is None:
            return ShopAddress(email=email)
        return ShopAddress(
            first_name=node.text("firstname"),
            last_name=node.text("lastname"),
            company=node.text("company"),
            line1=node.text("address1"),
            line2=node.text("address2"),
            postcode=node.text("postcode"),
            city=node.text("city"),
            region=call.regions.get(node.ref("id_state") or "", ""),
            country_code=call.countries.get(node.ref("id_country") or "", ""),
            phone=node.text("phone_mobile") or node.text("phone"),
            email=email,
            vat_id=_compact_vat(node.text("vat_number")),
            relay_point_id=_relay_point(node.text("alias"), node.text("other")),
        )

    def _line_rate(
        self, call: _Call, detail: _Detail | None, net: Decimal, gross: Decimal, path: str
    ) -> Decimal:
        if detail is not None and call.taxes is not None and detail.tax_ids:
            if all(tax_id in call.taxes for tax_id in detail.tax_ids):
                return rate(sum((call.taxes[t] for t in detail.tax_ids), Decimal("0")), path)
        if detail is not None and not detail.tax_ids and gross == net:
            return Decimal("0")
        return _derive_rate(net, gross, path)

    def _line(self, call: _Call, raw: _RawOrder, row: _Row) -> ShopLine:
        detail = call.details.get(raw.id, {}).get(row.id)
        unit_incl = detail.unit_incl if detail is not None else row.unit_incl
        if detail is not None:
            gross, net = detail.total_incl, detail.total_excl
        else:
            gross = _cents(row.unit_incl * row.quantity, f"{row.path}.unit_price_tax_incl")
            net = _cents(row.unit_excl * row.quantity, f"{row.path}.unit_price_tax_excl")
        name, options = _split_name(row.name, row.has_combination)
        return ShopLine(
            external_id=row.id,
            name=name,
            quantity=row.quantity,
            unit_price=_unit(unit_incl, f"{row.path}.unit_price_tax_incl"),
            sku=row.sku,
            ean=row.ean,
            options=options,
            tax_rate=self._line_rate(call, detail, net, gross, f"{row.path}.tax rate"),
            total_net=net,
            tax_amount=gross - net,
            total_gross=gross,
            kind=LineKind.PRODUCT,
            needs_shipping=not (detail is not None and detail.virtual),
        )

    def _gift_wrap(self, raw: _RawOrder) -> ShopLine:
        return ShopLine(
            external_id=f"{raw.id}-wrapping",
            name=GIFT_WRAP_NAME,
            quantity=1,
            unit_price=raw.wrapping,
            tax_rate=_derive_rate(raw.wrapping_excl, raw.wrapping, "order.total_wrapping"),
            total_net=raw.wrapping_excl,
            tax_amount=raw.wrapping - raw.wrapping_excl,
            total_gross=raw.wrapping,
            kind=LineKind.GIFT_WRAP,
        )

    def _discount_codes(self, call: _Call, order_id: str) -> tuple[str, ...]:
        codes: list[str] = []
        for rule_id, name, _value in call.discounts.get(order_id, []):
            code = call.codes.get(rule_id or "", "") or name
            if code and code not in codes:
                codes.append(code)
        return tuple(codes)

    def _discounts(self, call: _Call, order_id: str) -> tuple[ShopDiscount, ...]:
        """The order's cart rules: the code typed (none for an automatic rule), the rule's
        name and the amount it took, tax included (order_cart_rules `value`)."""
        return tuple(
            ShopDiscount(code=call.codes.get(rule_id or "", ""), amount=value, label=name)
            for rule_id, name, value in call.discounts.get(order_id, [])
        )

    def _buyer_note(self, call: _Call, raw: _RawOrder) -> str:
        notes = [text for _, _, text in sorted(call.messages.get(raw.id, [])) if text]
        if raw.gift and raw.gift_message:
            notes.append(f"Gift message: {raw.gift_message}")
        return "\n\n".join(notes)

    def _cancelled_at(self, call: _Call, raw: _RawOrder) -> dt.datetime | None:
        if not self._is_cancelled(raw.state, call.states or {}):
            return None
        rows = [row for row in call.history.get(raw.id, []) if row[0] == raw.state]
        if rows:
            return max(rows, key=lambda row: (row[2], row[1]))[2]
        return raw.updated_at

    def _build(self, raw: _RawOrder, call: _Call) -> ShopOrder:
        currency = call.currencies.get(raw.currency_id)
        if not currency:
            raise BadPayload(f"order {raw.id}.id_currency: currency {raw.currency_id} is unknown")
        person = call.customers.get(raw.customer_id or "")
        email = person.text("email") if person is not None else ""
        billing = self._address(call, raw.invoice_id or raw.delivery_id, email)
        shipping = self._address(call, raw.delivery_id) if raw.delivery_id else None
        customer = ShopCustomer(
            external_id=raw.customer_id,
            email=email,
            first_name=person.text("firstname") if person is not None else billing.first_name,
            last_name=person.text("lastname") if person is not None else billing.last_name,
            phone=billing.phone or (shipping.phone if shipping else ""),
            company=(person.text("company") if person is not None else "") or billing.company,
        )
        lines = [self._line(call, raw, row) for row in raw.rows]
        if raw.wrapping > 0:
            lines.append(self._gift_wrap(raw))
        state = (call.states or {}).get(raw.state)
        cancelled_at = self._cancelled_at(call, raw)
        return ShopOrder(
            external_id=raw.id,
            number=raw.reference or raw.id,
            placed_at=raw.placed_at,
            updated_at=raw.updated_at,
            currency=currency,
            status=raw.state,
            status_label=state.label if state is not None else "",
            customer=customer,
            billing=billing,
            shipping=shipping,
            lines=tuple(lines),
            grand_total=raw.grand_total,
            subtotal=raw.products + raw.wrapping,
            discount_total=raw.discounts,
            shipping_total=raw.shipping,
            shipping_tax=raw.shipping - raw.shipping_excl,
            tax_total=raw.grand_total - raw.grand_total_excl,
            prices_include_tax=True,
            email=email,
            shipping_label=call.carriers.get(raw.carrier_id or "", ""),
            payment_method=raw.module,
            payment_method_label=raw.payment,
            discount_codes=self._discount_codes(call, raw.id),
            discounts=self._discounts(call, raw.id),
            buyer_note=self._buyer_note(call, raw),
            cancelled_at=cancelled_at,
            transactions=None,
            shipments=self._shipments(call, raw.id),
        )

    # --- payments ---------------------------------------------------------------------

    def _payment(self, node: _Node, call: _Call, default_currency: str) -> ShopTransaction:
        occurred_at = self._local_time(node.required("date_add"), node.where("date_add"))
        if occurred_at is None:
            raise BadPayload(f"{node.where('date_add')}: unset")
        amount = node.money("amount")
        currency = call.currencies.get(node.ref("id_currency") or "", "") or default_currency
        if not currency:
            raise BadPayload(f"{node.where('id_currency')}: unknown currency")
        return ShopTransaction(
            external_id=node.id(),
            kind=TransactionKind.REFUND if amount < 0 else TransactionKind.SALE,
            amount=abs(amount),
            currency=currency,
            occurred_at=occurred_at,
            status=TransactionStatus.SUCCESS,
            method=node.text("payment_method"),
            reference=node.text("transaction_id"),
        )

    def _slip(self, node: _Node, currency: str) -> ShopTransaction:
        occurred_at = self._local_time(node.required("date_add"), node.where("date_add"))
        if occurred_at is None:
            raise BadPayload(f"{node.where('date_add')}: unset")
        if node.has("total_products_tax_incl"):
            amount = node.money("total_products_tax_incl") + node.money("total_shipping_tax_incl")
        else:
            amount = node.money("amount") + node.money("shipping_cost_amount")
        return ShopTransaction(
            external_id=f"order_slip:{node.id()}",
            kind=TransactionKind.REFUND,
            amount=amount,
            currency=currency,
            occurred_at=occurred_at,
            status=TransactionStatus.SUCCESS,
            method="order_slip",
            reference=f"credit slip {node.id()}",
        )


def dedupe_key(order: ShopOrder) -> str:
    """The key of one polled version of an order: its id and `date_upd` (in UTC)."""
    return f"{order.external_id}:{order.updated_at.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
