"""A PrestaShop shop on loopback: the Webservice API (XML) as PrestaShop 1.7/8 answers it.

Objects are kept per resource as ordered field dicts (values are strings, multilingual
fields {language id: text}, associations {name: [row dicts]}) and rendered the way
`WebserviceOutputXML` does: CDATA values, `xlink:href` on foreign keys, `<language>` children
for multilingual fields, `<associations>` last. What is emulated, from
`classes/webservice/WebserviceRequest.php`:
- auth: the 32-character key as Basic-auth user (or `ws_key=`); missing or wrong key →
  401 with an XML error and WWW-Authenticate; resource not granted → 401 (code 26); method
  not granted → 405; webservice switched off → 503 (code 22);
- lists: `display` (absent = ids with xlink only, `full`, `[f1,f2]`), `filter[field]` with
  `[v]`, `[a|b]`, `[a,b]` (between), `>[v]`, `<[v]`, `![v]`, `%[v]%`-style LIKE; date fields
  are filterable and sortable only with `date=1`; `sort=[f_ASC,g_DESC]`; `limit=N` or
  `limit=offset,N`; no total count; an unknown filter or sort field → 400;
- details: GET /api/{resource}/{id} (404 with an empty body when absent);
- GET /api/ lists the resources the key may use, with the shop name;
- writes: POST (201, id forbidden in the body), PUT (200, id required; replaces the object),
  DELETE. POST validates as `ObjectModel::validateFields` does (a required field absent or
  empty, or a non-numeric id → 400, code 85, 'Validation error: "Property
  CustomerThread->token is empty."') and refuses, with 404, a history or thread about an
  unknown order and a message in an unknown thread (stricter than PrestaShop). POST
  /api/order_histories also moves the order's current_state and date_upd, as
  `OrderHistory::addWs` does (`sendemail=1` is only recorded, in the request's query);
- messages: customer_threads (required id_lang, id_contact, token) list their
  customer_messages (required message) in the association; a new message moves the thread's
  date_upd, never the order's;
- employees: the installer's SuperAdmin (id 1), without the password hash.
Every request is recorded by the base class; `writes()` lists the ones that are not reads.
Objects created through POST get date_add / date_upd from `clock` (shop-local, naive).
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element
from zoneinfo import ZoneInfo

from defusedxml import ElementTree as SafeET

from tests.emulators.base import Emulator, RecordedRequest, Reply

DEFAULT_KEY = "ZQ88PRJX5VWQHCWE4EE7SQ7HPNX00RAJ"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'
XLINK = 'xmlns:xlink="http://www.w3.org/1999/xlink"'
DATE_FIELDS = ("date_add", "date_upd")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})

Record = dict[str, Any]
# Validate::isTrackingNumber
TRACKING_NUMBER = re.compile(r"[~:#,%&_=()\[\].? +\-@/a-zA-Z0-9]+")


@dataclass(frozen=True)
class Association:
    node: str
    api: str = ""  # the resource its rows link to; "" for a virtual entity (order_rows)
    links: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Schema:
    node: str
    list_node: str
    fields: tuple[str, ...]
    links: Mapping[str, str] = field(default_factory=dict)
    i18n: frozenset[str] = frozenset()
    getters: frozenset[str] = frozenset()  # dynamic fields: shown, never filterable
    hidden: frozenset[str] = frozenset()
    associations: Mapping[str, Association] = field(default_factory=dict)
    # ObjectModel::$definition: the class named in validation errors, its required fields
    # (an absent or empty element is refused, "0" is not), and its isUnsignedId fields.
    class_name: str = ""
    required: tuple[str, ...] = ()
    unsigned: tuple[str, ...] = ()


def _f(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SCHEMAS: dict[str, Schema] = {
    "orders": Schema(
        "order",
        "orders",
        _f(
            "id id_address_delivery id_address_invoice id_cart id_currency id_lang id_customer "
            "id_carrier current_state module invoice_number invoice_date delivery_number "
            "delivery_date valid date_add date_upd shipping_number note id_shop_group id_shop "
            "secure_key payment recyclable gift gift_message mobile_theme total_discounts "
            "total_discounts_tax_incl total_discounts_tax_excl total_paid total_paid_tax_incl "
            "total_paid_tax_excl total_paid_real total_products total_products_wt "
            "total_shipping total_shipping_tax_incl total_shipping_tax_excl carrier_tax_rate "
            "total_wrapping total_wrapping_tax_incl total_wrapping_tax_excl round_mode "
            "round_type conversion_rate reference"
        ),
        links={
            "id_address_delivery": "addresses",
            "id_address_invoice": "addresses",
            "id_cart": "carts",
            "id_currency": "currencies",
            "id_lang": "languages",
            "id_customer": "customers",
            "id_carrier": "carriers",
            "current_state": "order_states",
        },
        getters=frozenset({"shipping_number"}),
        associations={"order_rows": Association("order_row", links={"product_id": "products"})},
    ),
    "order_details": Schema(
        "order_detail",
        "order_details",
        _f(
            "id id_order product_id product_attribute_id product_quantity_reinjected "
            "group_reduction discount_quantity_applied download_hash download_deadline "
            "id_order_invoice id_warehouse id_shop id_customization product_name "
            "product_quantity product_quantity_in_stock product_quantity_return "
            "product_quantity_refunded product_price reduction_percent reduction_amount "
            "reduction_amount_tax_incl reduction_amount_tax_excl product_quantity_discount "
            "product_ean13 product_isbn product_upc product_mpn product_reference "
            "product_supplier_reference product_weight tax_computation_method "
            "id_tax_rules_group ecotax ecotax_tax_rate download_nb unit_price_tax_incl "
            "unit_price_tax_excl total_price_tax_incl total_price_tax_excl "
            "total_shipping_price_tax_excl total_shipping_price_tax_incl "
            "purchase_supplier_price original_product_price original_wholesale_price "
            "total_refunded_tax_excl total_refunded_tax_incl tax_rate tax_name"
        ),
        links={
            "id_order": "orders",
            "product_id": "products",
            "product_attribute_id": "combinations",
        },
        hidden=frozenset({"tax_rate", "tax_name"}),
        associations={"taxes": Association("tax", api="taxes")},
    ),
    "order_states": Schema(
        "order_state",
        "order_states",
        _f(
            "id unremovable delivery hidden send_email module_name invoice color logable "
            "shipped paid pdf_delivery pdf_invoice deleted name template"
        ),
        i18n=frozenset({"name", "template"}),
    ),
    "order_histories": Schema(
        "order_history",
        "order_histories",
        _f("id id_employee id_order_state id_order date_add"),
        links={"id_order": "orders", "id_order_state": "order_states"},
        class_name="OrderHistory",
        required=("id_order", "id_order_state"),
        unsigned=("id_order", "id_order_state", "id_employee"),
    ),
    "order_payments": Schema(
        "order_payment",
        "order_payments",
        _f(
            "id order_reference id_currency amount payment_method conversion_rate "
            "transaction_id card_number card_brand card_expiration card_holder date_add"
        ),
        links={"id_currency": "currencies"},
    ),
    "order_slip": Schema(
        "order_slip",
        "order_slips",
        _f(
            "id id_customer id_order conversion_rate total_products_tax_excl "
            "total_products_tax_incl total_shipping_tax_excl total_shipping_tax_incl amount "
            "shipping_cost shipping_cost_amount partial date_add date_upd order_slip_type"
        ),
        links={"id_customer": "customers", "id_order": "orders"},
    ),
    "order_carriers": Schema(
        "order_carrier",
        "order_carriers",
        _f(
            "id id_order id_carrier id_order_invoice weight shipping_cost_tax_excl "
            "shipping_cost_tax_incl tracking_number date_add"
        ),
        links={"id_order": "orders", "id_carrier": "carriers"},
    ),
    "order_cart_rules": Schema(
        "order_cart_rule",
        "order_cart_rules",
        _f(
            "id id_order id_cart_rule id_order_invoice name value value_tax_excl "
            "free_shipping deleted"
        ),
        links={"id_order": "orders", "id_cart_rule": "cart_rules"},
    ),
    "cart_rules": Schema(
        "cart_rule",
        "cart_rules",
        _f(
            "id id_customer date_from date_to description quantity quantity_per_user "
            "priority partial_use code minimum_amount free_shipping reduction_percent "
            "reduction_amount reduction_tax active date_add date_upd name"
        ),
        links={"id_customer": "customers"},
        i18n=frozenset({"name"}),
    ),
    "messages": Schema(
        "message",
        "messages",
        _f("id id_cart id_order id_customer id_employee message private date_add"),
        links={
            "id_cart": "carts",
            "id_order": "orders",
            "id_customer": "customers",
            "id_employee": "employees",
        },
    ),
    "customer_threads": Schema(
        "customer_thread",
        "customer_threads",
        _f(
            "id id_lang id_shop id_customer id_order id_product id_contact email token status "
            "date_add date_upd"
        ),
        links={
            "id_lang": "languages",
            "id_shop": "shops",
            "id_customer": "customers",
            "id_order": "orders",
            "id_product": "products",
        },
        associations={
            "customer_messages": Association("customer_message", api="customer_messages")
        },
        class_name="CustomerThread",
        required=("id_lang", "id_contact", "token"),
        unsigned=("id_lang", "id_contact", "id_shop", "id_customer", "id_order", "id_product"),
    ),
    "customer_messages": Schema(
        "customer_message",
        "customer_messages",
        _f(
            "id id_employee id_customer_thread ip_address message file_name user_agent private "
            "date_add date_upd read"
        ),
        links={"id_employee": "employees", "id_customer_thread": "customer_threads"},
        class_name="CustomerMessage",
        required=("message",),
        unsigned=("id_employee", "id_customer_thread"),
    ),
    "employees": Schema(
        "employee",
        "employees",
        _f("id id_lang id_profile lastname firstname email active"),
        links={"id_lang": "languages", "id_profile": "profiles"},
    ),
    "customers": Schema(
        "customer",
        "customers",
        _f(
            "id id_default_group id_lang newsletter_date_add ip_registration_newsletter "
            "last_passwd_gen secure_key deleted passwd lastname firstname email id_gender "
            "birthday newsletter optin website company siret ape outstanding_allow_amount "
            "show_public_prices id_risk max_payment_days active note is_guest id_shop "
            "id_shop_group date_add date_upd reset_password_token reset_password_validity"
        ),
        links={"id_default_group": "groups", "id_lang": "languages", "id_gender": "genders"},
    ),
    "addresses": Schema(
        "address",
        "addresses",
        _f(
            "id id_customer id_manufacturer id_supplier id_warehouse id_country id_state "
            "alias company lastname firstname vat_number address1 address2 postcode city "
            "other phone phone_mobile dni deleted date_add date_upd"
        ),
        links={
            "id_customer": "customers",
            "id_manufacturer": "manufacturers",
            "id_supplier": "suppliers",
            "id_warehouse": "warehouses",
            "id_country": "countries",
            "id_state": "states",
        },
    ),
    "countries": Schema(
        "country",
        "countries",
        _f(
            "id id_zone id_currency call_prefix iso_code active contains_states "
            "need_identification_number need_zip_code zip_code_format display_tax_label name"
        ),
        links={"id_zone": "zones", "id_currency": "currencies"},
        i18n=frozenset({"name"}),
    ),
    "states": Schema(
        "state",
        "states",
        _f("id id_zone id_country iso_code name active"),
        links={"id_zone": "zones", "id_country": "countries"},
    ),
    "currencies": Schema(
        "currency",
        "currencies",
        _f(
            "id names name symbol iso_code numeric_iso_code precision conversion_rate "
            "deleted active"
        ),
    ),
    "carriers": Schema(
        "carrier",
        "carriers",
        _f(
            "id deleted is_module id_tax_rules_group id_reference name active is_free url "
            "shipping_handling shipping_external range_behavior shipping_method max_width "
            "max_height max_depth max_weight grade external_module_name need_range position "
            "delay"
        ),
        links={"id_tax_rules_group": "tax_rule_groups"},
        i18n=frozenset({"delay"}),
    ),
    "taxes": Schema("tax", "taxes", _f("id rate active deleted name"), i18n=frozenset({"name"})),
}
NODE_TO_RESOURCE = {schema.node: name for name, schema in SCHEMAS.items()}
LIST_TO_RESOURCE = {schema.list_node: name for name, schema in SCHEMAS.items()}
# Resources a shop lists and grants but the emulator keeps empty (answered like any other).
EXTRA_RESOURCES = ("carts", "order_invoices", "products")
DESCRIPTIONS = {
    "addresses": "The Customer, Brand and Customer addresses",
    "carriers": "The Carriers",
    "orders": "The Customers orders",
}


class WebserviceError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _number(value: str) -> Decimal | None:
    try:
        parsed = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return parsed if parsed.is_finite() else None


def _compare(left: str, right: str) -> int:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    return (left > right) - (left < right)


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if ch == "%" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.I | re.S) is not None


def _matcher(raw: str) -> Callable[[str], bool]:
    """SQLUtils::getSQLRetrieveFilter, on strings."""
    found = re.fullmatch(r"(?P<op>[<>!]?)(?P<pre>%?)\[(?P<body>.*)\](?P<post>%?)", raw, re.S)
    if found is None:
        return lambda value: value == raw
    op, body = found.group("op"), found.group("body")
    if found.group("pre") or found.group("post"):
        pattern = f"{found.group('pre')}{body}{found.group('post')}"
        return lambda value: _like(pattern, value)
    if op == ">":
        return lambda value: _compare(value, body) > 0
    if op == "<":
        return lambda value: _compare(value, body) < 0
    if op == "!":
        return lambda value: _compare(value, body) != 0
    if "|" in body:
        options = body.split("|")
        return lambda value: any(_compare(value, option) == 0 for option in options)
    if "," in body:
        low, _, high = body.partition(",")
        return lambda value: _compare(value, low) >= 0 and _compare(value, high) <= 0
    return lambda value: _compare(value, body) == 0


def _display_fields(raw: str) -> list[str]:
    """`[id,name,associations[order_rows[id]]]` → top-level names (associations ignored)."""
    inner = raw[1:-1]
    names, depth, current = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            names.append(current)
            current = ""
            continue
        depth += ch == "["
        depth -= ch == "]"
        current += ch
    names.append(current)
    return [name.split("[", 1)[0].strip() for name in names if name.strip()]


def record_from_element(el: Element) -> Record:
    """An object element (<order>…</order>) as a Record."""
    record: Record = {}
    for child in el:
        if child.tag == "associations":
            associations: dict[str, list[dict[str, str]]] = {}
            for assoc in child:
                associations[assoc.tag] = [{f.tag: f.text or "" for f in item} for item in assoc]
            record["associations"] = associations
        elif child.find("language") is not None:
            record[child.tag] = {
                lang.get("id", "1"): lang.text or "" for lang in child.findall("language")
            }
        else:
            record[child.tag] = child.text or ""
    return record


class PrestaShopEmulator(Emulator):
    """In-memory PrestaShop 8 webservice seeded with the install data a French shop has."""

    def __init__(
        self,
        key: str = DEFAULT_KEY,
        timezone: str = "Europe/Paris",
        version: str = "8.1.5",
        shop_name: str = "Maison Lumière",
    ) -> None:
        super().__init__()
        self.key = key
        self.version = version
        self.shop_name = shop_name
        self.tz = ZoneInfo(timezone)
        self.enabled = True
        # resource → allowed methods; None grants everything to the key.
        self.permissions: dict[str, set[str]] | None = None
        # "Now" for the shop: a naive shop-local time, as PrestaShop stores dates.
        self.clock: Callable[[], dt.datetime] = self._real_time
        self.data: dict[str, dict[int, Record]] = {}
        self.reset()

    # --- state ------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to a fresh install: seed data only, no requests, no pending faults, real time."""
        self.wait_idle()
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self._outage = []
        self.data = {name: {} for name in SCHEMAS}
        self.enabled = True
        self.permissions = None
        self.clock = self._real_time
        self._seed()

    def _real_time(self) -> dt.datetime:
        return dt.datetime.now(self.tz).replace(tzinfo=None, microsecond=0)

    def now(self) -> str:
        return self.clock().strftime("%Y-%m-%d %H:%M:%S")

    def add(self, resource: str, record: Mapping[str, Any]) -> str:
        """Store one object (id given or assigned); missing schema fields become ""."""
        schema = SCHEMAS[resource]
        stored: Record = {name: "" for name in schema.fields if name not in schema.i18n}
        for name in schema.i18n:
            stored[name] = {"1": ""}
        for name, value in record.items():
            stored[name] = copy.deepcopy(value) if isinstance(value, dict) else value
        if not str(stored.get("id") or ""):
            stored["id"] = str(max(self.data[resource], default=0) + 1)
        stored["id"] = str(stored["id"])
        if resource == "orders":
            stored.setdefault("associations", {"order_rows": []})
        self.data[resource][int(stored["id"])] = stored
        return str(stored["id"])

    def load(self, payload: bytes | str) -> list[str]:
        """Store every object of a webservice document (one object or a display=full list)."""
        root = SafeET.fromstring(payload)
        ids: list[str] = []
        for el in root:
            if el.tag in NODE_TO_RESOURCE and el.find("id") is not None:
                ids.append(self.add(NODE_TO_RESOURCE[el.tag], record_from_element(el)))
            elif el.tag in LIST_TO_RESOURCE:
                resource = LIST_TO_RESOURCE[el.tag]
                ids.extend(self.add(resource, record_from_element(item)) for item in el)
            else:
                raise ValueError(f"unknown webservice element <{el.tag}>")
        return ids

    def add_order(self, payload: bytes | str | Mapping[str, Any]) -> str:
        """Store an order given as GET /api/orders/{id} XML or as a Record."""
        if isinstance(payload, Mapping):
            return self.add("orders", payload)
        root = SafeET.fromstring(payload)
        el = root.find("order")
        if el is None:
            raise ValueError("no <order> in the payload")
        return self.add("orders", record_from_element(el))

    def update_order(self, order_id: str | int, **changes: Any) -> Record:
        """Change fields of an order; date_upd moves to now unless given."""
        order = self.data["orders"][int(order_id)]
        for name, value in changes.items():
            order[name] = copy.deepcopy(value) if isinstance(value, dict | list) else str(value)
        if "date_upd" not in changes:
            order["date_upd"] = self.now()
        return order

    def add_order_carrier(
        self, order_id: str | int, carrier_id: str = "2", tracking_number: str = ""
    ) -> str:
        """The order_carrier row PrestaShop creates with an order (one per carrier)."""
        return self.add(
            "order_carriers",
            {
                "id_order": str(order_id),
                "id_carrier": carrier_id,
                "id_order_invoice": "0",
                "weight": "0.000000",
                "shipping_cost_tax_excl": "0.000000",
                "shipping_cost_tax_incl": "0.000000",
                "tracking_number": tracking_number,
                "date_add": self.now(),
            },
        )

    def type_tracking(self, order_carrier_id: str | int, tracking_number: str) -> None:
        """The merchant sets the tracking number on the back office's order page: the
        order carrier and the order's shipping_number take it, the order's date_upd moves
        (UpdateOrderShippingDetailsHandler)."""
        carrier = self.get("order_carriers", order_carrier_id)
        carrier["tracking_number"] = tracking_number
        self.update_order(carrier["id_order"], shipping_number=tracking_number)

    def get(self, resource: str, object_id: str | int) -> Record:
        return self.data[resource][int(object_id)]

    def objects(self, resource: str) -> list[Record]:
        return [self.data[resource][key] for key in sorted(self.data[resource])]

    # --- HTTP -------------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Reply:
        try:
            return self._serve(request)
        except WebserviceError as error:
            return self._error(error)

    def _serve(self, request: RecordedRequest) -> Reply:
        parts = [part for part in request.path.split("/") if part]
        if not parts or parts[0] != "api":
            return Reply(404, b"Not Found", {"Content-Type": "text/html"})
        if not self.enabled:
            raise WebserviceError(
                503,
                22,
                "The PrestaShop webservice is disabled. "
                "Please activate it in the PrestaShop Back Office",
            )
        self._authenticate(request)
        if len(parts) == 1:
            return self._document(self._resource_list())
        resource = parts[1]
        known = (*SCHEMAS, *EXTRA_RESOURCES)
        if resource not in known:
            raise WebserviceError(
                400,
                27,
                f'Resource of type "{resource}" does not exists. '
                f'Did you mean: "{resource}"? The full list is: "' + '", "'.join(known) + '"',
            )
        allowed = self._allowed(resource)
        if not allowed:
            raise WebserviceError(
                401,
                26,
                f'Resource of type "{resource}" is not allowed with this authentication key',
            )
        if request.method not in allowed:
            raise WebserviceError(
                405,
                25,
                f"Method {request.method} is not allowed for the resource {resource} "
                "with this authentication key",
            )
        if resource in EXTRA_RESOURCES:
            return self._document(f"<{resource}>\n</{resource}>\n")
        object_id = parts[2] if len(parts) > 2 else ""
        if request.method == "GET":
            if object_id:
                return self._detail(resource, object_id, request)
            return self._list(resource, request)
        if request.method == "POST":
            return self._post(resource, request)
        if request.method in ("PUT", "PATCH"):
            return self._put(resource, object_id, request)
        if request.method == "DELETE":
            return self._delete(resource, object_id)
        raise WebserviceError(405, 23, f"Method {request.method} is not valid")

    def _authenticate(self, request: RecordedRequest) -> None:
        key: str | None = request.arg("ws_key")
        header = request.headers.get("authorization", "")
        if key is None and header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                decoded = ""
            key = decoded.partition(":")[0].strip()
        if key is None:
            raise WebserviceError(
                401, 16, "Please enter the authentication key as the login. No password required"
            )
        if not key:
            raise WebserviceError(401, 17, "Authentication key is empty")
        if len(key) != 32:
            raise WebserviceError(401, 18, "Invalid authentication key format")
        if key != self.key:
            raise WebserviceError(401, 20, "Authentification key is not active")

    def _allowed(self, resource: str) -> set[str]:
        if self.permissions is None:
            return set(METHODS)
        return self.permissions.get(resource, set())

    # --- rendering --------------------------------------------------------------------

    def _reply(self, status: int, text: str, **headers: str) -> Reply:
        body = text.encode("utf-8")
        return Reply(
            status,
            body,
            {
                "Content-Type": "text/xml;charset=utf-8",
                "Access-Time": str(int(dt.datetime.now(dt.UTC).timestamp())),
                "X-Powered-By": "PrestaShop Webservice",
                "PSWS-Version": self.version,
                "Execution-Time": "0.004",
                "Content-Sha1": hashlib.sha1(body).hexdigest(),
                **headers,
            },
        )

    def _document(self, inner: str, status: int = 200) -> Reply:
        return self._reply(status, f"{XML_HEAD}<prestashop {XLINK}>\n{inner}</prestashop>\n")

    def _error(self, error: WebserviceError) -> Reply:
        text = (
            f"{XML_HEAD}<prestashop {XLINK}>\n<errors>\n<error>\n"
            f"<code>{_cdata(str(error.code))}</code>\n"
            f"<message>{_cdata(error.message)}</message>\n"
            "</error>\n</errors>\n</prestashop>\n"
        )
        headers = {}
        if error.status == 401:
            headers["WWW-Authenticate"] = (
                'Basic realm="Welcome to PrestaShop Webservice, please enter the '
                'authentication key as the login. No password required."'
            )
        reply = self._reply(error.status, text, **headers)
        if error.status == 401:  # PSWS-Version is only sent once authenticated
            reply.headers.pop("PSWS-Version", None)
        return reply

    def _href(self, resource: str, object_id: str) -> str:
        return f"{self.base_url}/api/{resource}/{object_id}"

    def _field(self, schema: Schema, name: str, value: Any) -> str:
        if isinstance(value, dict):
            languages = "".join(
                f'<language id="{lang}" xlink:href="{self._href("languages", lang)}">'
                f"{_cdata(text)}</language>"
                for lang, text in value.items()
            )
            return f"\t<{name}>{languages}</{name}>\n"
        text = str(value)
        attributes = ' notFilterable="true"' if name in schema.getters else ""
        if name in schema.links and text not in ("", "0"):
            attributes += f' xlink:href="{self._href(schema.links[name], text)}"'
        inner = _cdata(text) if text else ""
        return f"\t<{name}{attributes}>{inner}</{name}>\n"

    def _associations(self, schema: Schema, record: Record) -> str:
        if not schema.associations:
            return ""
        stored = record.get("associations") or {}
        out = "<associations>\n"
        for name, assoc in schema.associations.items():
            rows = stored.get(name, [])
            kind = f'nodeType="{assoc.node}" ' + (
                f'api="{assoc.api}"' if assoc.api else 'virtualEntity="true"'
            )
            if not rows:
                out += f"<{name} {kind}/>\n"
                continue
            out += f"<{name} {kind}>\n"
            for row in rows:
                href = (
                    f' xlink:href="{self._href(assoc.api, row.get("id", ""))}"' if assoc.api else ""
                )
                out += f"\t<{assoc.node}{href}>\n"
                for key, value in row.items():
                    link = assoc.links.get(key)
                    attr = f' xlink:href="{self._href(link, value)}"' if link and value else ""
                    out += f"\t<{key}{attr}>{_cdata(value) if value else ''}</{key}>\n"
                out += f"\t</{assoc.node}>\n"
            out += f"</{name}>\n"
        return out + "</associations>\n"

    def _render(self, resource: str, record: Record, fields: list[str] | None) -> str:
        schema = SCHEMAS[resource]
        if resource == "customer_threads":
            # CustomerThread::getWsCustomerMessages: the association is a query, not stored.
            messages = [
                {"id": message["id"]}
                for message in self.objects("customer_messages")
                if message.get("id_customer_thread") == record["id"]
            ]
            record = {**record, "associations": {"customer_messages": messages}}
        out = f"<{schema.node}>\n"
        for name, value in record.items():
            if name == "associations" or name in schema.hidden:
                continue
            if fields is not None and name not in fields:
                continue
            out += self._field(schema, name, value)
        if fields is None or any(name in schema.associations for name in fields):
            out += self._associations(schema, record)
        return out + f"</{schema.node}>\n"

    def _resource_list(self) -> str:
        out = f'<api shopName="{self.shop_name}">\n'
        for name in sorted((*SCHEMAS, *EXTRA_RESOURCES)):
            allowed = self._allowed(name)
            if not allowed:
                continue
            flags = " ".join(
                f'{method.lower()}="{"true" if method in allowed else "false"}"'
                for method in ("GET", "PUT", "POST", "PATCH", "DELETE", "HEAD")
            )
            href = f"{self.base_url}/api/{name}"
            description = DESCRIPTIONS.get(name, f"The {name.replace('_', ' ')}")
            out += (
                f'<{name} xlink:href="{href}" {flags}>\n'
                f'<description xlink:href="{href}" >{description}</description>\n'
                f'<schema type="blank" xlink:href="{href}?schema=blank" />\n'
                f'<schema type="synopsis" xlink:href="{href}?schema=synopsis" />\n'
                f"</{name}>\n"
            )
        return out + "</api>\n"

    # --- reads ------------------------------------------------------------------------

    def _display(self, resource: str, request: RecordedRequest) -> list[str] | None | str:
        """None = full, a list of fields, or "minimum" (ids only)."""
        schema = SCHEMAS[resource]
        raw = request.arg("display")
        if raw is None or raw == "minimum":
            return "minimum"
        if raw == "full":
            return None
        if not (raw.startswith("[") and raw.endswith("]")):
            raise WebserviceError(
                400,
                36,
                "The 'display' syntax is wrong. You can set 'full' or "
                f"'[field_1,field_2,field_3,...]'. These are available: {', '.join(schema.fields)}",
            )
        fields = _display_fields(raw)
        for name in fields:
            if name not in schema.fields and name not in schema.associations:
                raise WebserviceError(
                    400,
                    35,
                    f'Unable to display this field "{name}". However, these are available: '
                    + ", ".join(schema.fields),
                )
        return fields

    def _detail(self, resource: str, object_id: str, request: RecordedRequest) -> Reply:
        display = self._display(resource, request)
        record = self.data[resource].get(int(object_id)) if object_id.isdigit() else None
        if record is None:
            return Reply(404, b"", {"PSWS-Version": self.version})
        fields = None if display == "minimum" else display
        assert not isinstance(fields, str)
        return self._document(self._render(resource, record, fields))

    def _available(self, schema: Schema, dates: bool) -> list[str]:
        names = [name for name in schema.fields if name not in schema.hidden]
        if dates:
            return names
        return [name for name in names if name not in DATE_FIELDS]

    def _query(self, resource: str, request: RecordedRequest) -> list[Record]:
        schema = SCHEMAS[resource]
        dates = bool(request.arg("date")) and request.arg("date") != "0"
        available = self._available(schema, dates)
        records = self.objects(resource)
        for key, value in request.query:
            found = re.fullmatch(r"filter\[(?P<field>[^\]]+)\]", key)
            if found is None:
                continue
            name = found.group("field")
            if name not in available:
                raise WebserviceError(
                    400,
                    32,
                    f'This filter does not exist. Did you mean: "{name}"? '
                    'The full list is: "' + '", "'.join(available) + '"',
                )
            if value == "":
                raise WebserviceError(400, 33, f'The filter "{name}" is malformed.')
            if name in schema.getters:
                raise WebserviceError(
                    400,
                    34,
                    f'The field "{name}" is dynamic. It is not possible to filter GET query '
                    "with this field.",
                )
            match = _matcher(value)
            records = [record for record in records if self._matches(record.get(name), match)]
        sort = request.arg("sort")
        if sort:
            records = self._sorted(records, sort, available)
        limit = request.arg("limit")
        if limit:
            parts = limit.split(",")
            if len(parts) > 2 or not all(part.strip().lstrip("-").isdigit() for part in parts):
                raise WebserviceError(
                    400, 39, 'The "limit" value has to be formed as this example: "5,25" or "10"'
                )
            offset, count = (0, int(parts[0])) if len(parts) == 1 else map(int, parts)
            records = records[max(offset, 0) : max(offset, 0) + max(count, 0)]
        return records

    @staticmethod
    def _matches(value: Any, match: Callable[[str], bool]) -> bool:
        if isinstance(value, dict):
            return any(match(text) for text in value.values())
        return match("" if value is None else str(value))

    @staticmethod
    def _sorted(records: list[Record], sort: str, available: list[str]) -> list[Record]:
        terms = sort[1:-1].split(",") if sort.startswith("[") and sort.endswith("]") else [sort]
        keys: list[tuple[str, bool]] = []
        for term in terms:
            name, _, direction = term.rpartition("_")
            if not name or direction.upper() not in ("ASC", "DESC"):
                raise WebserviceError(
                    400,
                    37,
                    'The "sort" value has to be formed as this example: "field_ASC" or '
                    "'[field_1_DESC,field_2_ASC,field_3_ASC,...]' (\"field\" has to be an "
                    "available field)",
                )
            if name not in available:
                raise WebserviceError(
                    400,
                    38,
                    "Unable to filter by this field. However, these are available: "
                    + ", ".join(available),
                )
            keys.append((name, direction.upper() == "DESC"))

        def sort_key(value: Any) -> tuple[int, Decimal | str]:
            text = str(value or "")
            number = _number(text)
            return (0, number) if number is not None else (1, text)

        for name, descending in reversed(keys):
            records = sorted(records, key=lambda r: sort_key(r.get(name)), reverse=descending)
        return records

    def _list(self, resource: str, request: RecordedRequest) -> Reply:
        schema = SCHEMAS[resource]
        display = self._display(resource, request)
        records = self._query(resource, request)
        out = f"<{schema.list_node}>\n"
        for record in records:
            if display == "minimum":
                href = self._href(resource, record["id"])
                out += f'\t<{schema.node} id="{record["id"]}" xlink:href="{href}"/>\n'
            else:
                assert not isinstance(display, str)
                out += self._render(resource, record, display)
        return self._document(out + f"</{schema.list_node}>\n")

    # --- writes -----------------------------------------------------------------------

    def _body(self, resource: str, request: RecordedRequest) -> Element:
        schema = SCHEMAS[resource]
        try:
            root = SafeET.fromstring(request.body)
        except Exception as exc:
            raise WebserviceError(
                500, 127, f"XML error : {exc}\nXML length : {len(request.body)}"
            ) from exc
        el = root.find(schema.node)
        if el is None:
            raise WebserviceError(400, 41, f'parameter "{schema.node}" required')
        return el

    def _post(self, resource: str, request: RecordedRequest) -> Reply:
        record = record_from_element(self._body(resource, request))
        if str(record.get("id") or "").strip():
            raise WebserviceError(400, 91, "id is forbidden when adding a new resource")
        record.pop("id", None)
        self._validate(resource, record)
        self._check_references(resource, record)
        now = self.now()
        for name in DATE_FIELDS:
            if name in SCHEMAS[resource].fields and not record.get(name):
                record[name] = now
        if resource == "customer_messages":
            for name in ("id_employee", "private", "read"):
                record[name] = str(record.get(name) or "0")
        object_id = self.add(resource, record)
        created = self.get(resource, object_id)
        if resource == "order_histories":
            self._apply_history(created, now)
        elif resource == "customer_messages":
            thread = self.data["customer_threads"].get(int(created["id_customer_thread"]))
            if thread is not None:
                thread["date_upd"] = now
        return self._document(self._render(resource, created, None), 201)

    def _validate(self, resource: str, record: Record) -> None:
        """ObjectModel::validateFields as the webservice reports it (400, code 85)."""
        schema = SCHEMAS[resource]
        for name in schema.required:
            if str(record.get(name) or "").strip() == "":
                raise WebserviceError(
                    400, 85, f'Validation error: "Property {schema.class_name}->{name} is empty."'
                )
        for name in schema.unsigned:
            value = str(record.get(name) or "").strip()
            if value and not value.isdigit():
                raise WebserviceError(
                    400,
                    85,
                    f'Validation error: "Property {schema.class_name}->{name} is not valid"',
                )

    def _check_references(self, resource: str, record: Record) -> None:
        """A write about an order (or a thread) that does not exist is refused with 404.

        PrestaShop itself does not check these references before writing; the emulator is
        stricter so that a connector writing to the wrong object fails loudly."""
        order_id = str(record.get("id_order") or "0")
        if resource in ("order_histories", "customer_threads") and order_id != "0":
            if int(order_id) not in self.data["orders"]:
                raise WebserviceError(404, 92, f"Invalid ID: order {order_id} does not exist")
        if resource == "order_histories":
            state_id = str(record.get("id_order_state") or "")
            if int(state_id) not in self.data["order_states"]:
                raise WebserviceError(
                    400,
                    85,
                    'Validation error: "Property OrderHistory->id_order_state is not valid"',
                )
        thread_id = str(record.get("id_customer_thread") or "0")
        if resource == "customer_messages" and thread_id != "0":
            if int(thread_id) not in self.data["customer_threads"]:
                raise WebserviceError(404, 92, f"Invalid ID: customer thread {thread_id}")

    def _apply_history(self, history: Record, now: str) -> None:
        """OrderHistory::addWs: the order takes the new state."""
        order = self.data["orders"].get(int(history.get("id_order") or 0))
        if order is not None:
            order["current_state"] = str(history.get("id_order_state") or "")
            order["date_upd"] = now

    def _put(self, resource: str, object_id: str, request: RecordedRequest) -> Reply:
        record = record_from_element(self._body(resource, request))
        body_id = str(record.get("id") or "").strip()
        if not body_id:
            raise WebserviceError(400, 90, "id is required when modifying a resource")
        if object_id and object_id != body_id:
            raise WebserviceError(400, 89, "id is duplicate in request")
        current = self.data[resource].get(int(body_id)) if body_id.isdigit() else None
        if current is None:
            raise WebserviceError(404, 92, "Invalid ID")
        if resource == "order_carriers":
            self._validate_tracking(str(record.get("tracking_number") or ""))
        schema = SCHEMAS[resource]
        for name in schema.fields:
            if name in record:
                current[name] = record[name]
            elif request.method == "PUT" and name not in schema.i18n and name not in DATE_FIELDS:
                current[name] = ""
        if "associations" in record:
            current["associations"] = record["associations"]
        if "date_upd" in schema.fields and "date_upd" not in record:
            current["date_upd"] = self.now()
        return self._document(self._render(resource, current, None))

    @staticmethod
    def _validate_tracking(value: str) -> None:
        """OrderCarrier's tracking_number: isTrackingNumber, size 64."""
        if len(value) > 64:
            raise WebserviceError(
                400, 85, 'Validation error: "Property OrderCarrier->tracking_number is too long"'
            )
        if value and not TRACKING_NUMBER.fullmatch(value):
            raise WebserviceError(
                400, 85, 'Validation error: "Property OrderCarrier->tracking_number is not valid"'
            )

    def _delete(self, resource: str, object_id: str) -> Reply:
        if not object_id.isdigit() or int(object_id) not in self.data[resource]:
            raise WebserviceError(404, 87, f"Id(s) not exists: {object_id}")
        del self.data[resource][int(object_id)]
        return Reply(200, b"", {"PSWS-Version": self.version})

    # --- install data -----------------------------------------------------------------

    def _seed(self) -> None:
        for row in ORDER_STATES:
            state_id, color, flags, template, module, en, fr = row
            paid, shipped, delivery, invoice, logable, send_email = flags
            self.add(
                "order_states",
                {
                    "id": state_id,
                    "unremovable": "1",
                    "delivery": delivery,
                    "hidden": "0",
                    "send_email": send_email,
                    "module_name": module,
                    "invoice": invoice,
                    "color": color,
                    "logable": logable,
                    "shipped": shipped,
                    "paid": paid,
                    "pdf_delivery": "0",
                    "pdf_invoice": invoice,
                    "deleted": "0",
                    "name": {"1": en, "2": fr},
                    "template": {"1": template, "2": template},
                },
            )
        self.add(
            "currencies",
            {
                "id": "1",
                "names": "Euro",
                "name": "Euro",
                "symbol": "€",
                "iso_code": "EUR",
                "numeric_iso_code": "978",
                "precision": "2",
                "conversion_rate": "1.000000",
                "deleted": "0",
                "active": "1",
            },
        )
        for country_id, iso, en, fr in COUNTRIES:
            self.add(
                "countries",
                {
                    "id": country_id,
                    "id_zone": "1",
                    "id_currency": "0",
                    "iso_code": iso,
                    "active": "1",
                    "contains_states": "1" if iso == "US" else "0",
                    "name": {"1": en, "2": fr},
                },
            )
        self.add(
            "states",
            {
                "id": "9",
                "id_zone": "2",
                "id_country": "21",
                "iso_code": "FL",
                "name": "Florida",
                "active": "1",
            },
        )
        for carrier_id, deleted, module, name, url, delay in CARRIERS:
            self.add(
                "carriers",
                {
                    "id": carrier_id,
                    "deleted": deleted,
                    "is_module": "1" if module else "0",
                    "id_tax_rules_group": "1",
                    "id_reference": carrier_id if carrier_id != "4" else "3",
                    "name": name,
                    "active": "0" if deleted == "1" else "1",
                    "is_free": "1" if carrier_id == "1" else "0",
                    "url": url,
                    "shipping_handling": "0",
                    "shipping_external": "1" if module else "0",
                    "range_behavior": "0",
                    "shipping_method": "2",
                    "external_module_name": module,
                    "need_range": "1" if module else "0",
                    "position": carrier_id,
                    "delay": {"1": delay, "2": delay},
                },
            )
        for tax_id, value, name in TAXES:
            self.add(
                "taxes",
                {
                    "id": tax_id,
                    "rate": value,
                    "active": "1",
                    "deleted": "0",
                    "name": {"1": name, "2": name},
                },
            )
        # The employee created by the installer (the shop's SuperAdmin).
        self.add(
            "employees",
            {
                "id": "1",
                "id_lang": "1",
                "id_profile": "1",
                "lastname": "Martin",
                "firstname": "Claire",
                "email": "claire@maison-lumiere.example",
                "active": "1",
            },
        )
        # The demo customer of a PrestaShop install, referenced by the published order.
        self.add(
            "customers",
            {
                "id": "1",
                "id_default_group": "3",
                "id_lang": "1",
                "secure_key": "b44a6d9efd7a0076a0fbce6b15eaf3b1",
                "deleted": "0",
                "passwd": "$2y$10$wtnFs6rOIUeg4kNqCwTDb.ZqE4lZ9nDfeP0rRKHuSnS0Ypd7pTBSe",
                "lastname": "DOE",
                "firstname": "John",
                "email": "pub@prestashop.com",
                "id_gender": "1",
                "newsletter": "1",
                "optin": "1",
                "active": "1",
                "is_guest": "0",
                "id_shop": "1",
                "id_shop_group": "1",
                "date_add": "2019-01-30 01:02:11",
                "date_upd": "2019-01-30 01:02:11",
            },
        )


# id, color, (paid, shipped, delivery, invoice, logable, send_email), template, module, en, fr
ORDER_STATES: tuple[tuple[str, str, tuple[str, ...], str, str, str, str], ...] = (
    ("1", "#34209E", ("0", "0", "0", "0", "0", "1"), "cheque", "ps_checkpayment",
     "Awaiting check payment", "En attente du paiement par chèque"),
    ("2", "#3498D8", ("1", "0", "0", "1", "1", "1"), "payment", "",
     "Payment accepted", "Paiement accepté"),
    ("3", "#3498D8", ("1", "0", "1", "1", "1", "1"), "preparation", "",
     "Processing in progress", "En cours de préparation"),
    ("4", "#01B887", ("1", "1", "1", "1", "1", "1"), "shipped", "",
     "Shipped", "Expédié"),
    ("5", "#01B887", ("1", "1", "1", "1", "1", "0"), "", "",
     "Delivered", "Livré"),
    ("6", "#2C3E50", ("0", "0", "0", "0", "0", "1"), "order_canceled", "",
     "Canceled", "Annulé"),
    ("7", "#01B887", ("0", "0", "0", "1", "0", "1"), "refund", "",
     "Refunded", "Remboursé"),
    ("8", "#E74C3C", ("0", "0", "0", "0", "0", "1"), "payment_error", "",
     "Payment error", "Erreur de paiement"),
    ("9", "#3498D8", ("1", "0", "0", "1", "0", "1"), "outofstock", "",
     "On backorder (paid)", "En attente de réapprovisionnement (payé)"),
    ("10", "#34209E", ("0", "0", "0", "0", "0", "1"), "bankwire", "ps_wirepayment",
     "Awaiting bank wire payment", "En attente de paiement par virement bancaire"),
    ("11", "#3498D8", ("1", "0", "0", "1", "1", "1"), "payment", "",
     "Remote payment accepted", "Paiement à distance accepté"),
    ("12", "#34209E", ("0", "0", "0", "0", "0", "1"), "outofstock", "",
     "On backorder (not paid)", "En attente de réapprovisionnement (non payé)"),
    ("13", "#34209E", ("0", "0", "0", "0", "0", "0"), "cashondelivery", "ps_cashondelivery",
     "Awaiting Cash On Delivery validation", "En attente de validation du paiement à la livraison"),
)  # fmt: skip

COUNTRIES = (
    ("1", "DE", "Germany", "Allemagne"),
    ("3", "BE", "Belgium", "Belgique"),
    ("6", "ES", "Spain", "Espagne"),
    ("8", "FR", "France", "France"),
    ("10", "IT", "Italy", "Italie"),
    ("12", "LU", "Luxemburg", "Luxembourg"),
    ("19", "CH", "Switzerland", "Suisse"),
    ("21", "US", "United States", "États-Unis"),
)

COLISSIMO_URL = "https://www.laposte.fr/outils/suivre-vos-envois?code=@"
MONDIAL_RELAY_URL = "https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition=@"
CHRONOPOST_URL = "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT=@&langue=fr"
# id, deleted, module, name, tracking url, delay (editing a carrier keeps its name, new id)
CARRIERS = (
    ("1", "0", "", "0", "", "Pick up in-store"),
    ("2", "0", "", "My carrier", "", "Delivery next day!"),
    ("3", "1", "colissimo", "Colissimo", COLISSIMO_URL, "48 h"),
    ("4", "0", "colissimo", "Colissimo", COLISSIMO_URL, "48 h"),
    ("5", "0", "mondialrelay", "Mondial Relay", MONDIAL_RELAY_URL, "3 à 5 jours"),
    ("6", "0", "chronopost", "Chronopost", CHRONOPOST_URL, "24 h"),
)

TAXES = (
    ("1", "20.000", "TVA FR 20%"),
    ("2", "10.000", "TVA FR 10%"),
    ("3", "5.500", "TVA FR 5.5%"),
    ("4", "2.100", "TVA FR 2.1%"),
)


def order_record(
    order_id: int,
    date_upd: str,
    *,
    reference: str | None = None,
    rows: Iterable[Mapping[str, str]] = (),
    **fields: str,
) -> Record:
    """A plain paid order of the demo customer (for pagination and filtering tests)."""
    record: Record = {
        "id": str(order_id),
        "id_address_delivery": "4",
        "id_address_invoice": "4",
        "id_cart": str(order_id),
        "id_currency": "1",
        "id_lang": "1",
        "id_customer": "1",
        "id_carrier": "2",
        "current_state": "2",
        "module": "ps_checkout",
        "valid": "1",
        "date_add": date_upd,
        "date_upd": date_upd,
        "payment": "Carte bancaire",
        "total_discounts_tax_incl": "0.000000",
        "total_paid_tax_incl": "24.000000",
        "total_paid_tax_excl": "20.000000",
        "total_products_wt": "24.000000",
        "total_shipping_tax_incl": "0.000000",
        "total_shipping_tax_excl": "0.000000",
        "total_wrapping_tax_incl": "0.000000",
        "total_wrapping_tax_excl": "0.000000",
        "reference": reference or f"REF{order_id:06d}",
        "associations": {
            "order_rows": list(rows)
            or [
                {
                    "id": str(order_id * 10),
                    "product_id": "1",
                    "product_attribute_id": "0",
                    "product_quantity": "2",
                    "product_name": "Bougie parfumée",
                    "product_reference": "BOUGIE-01",
                    "product_ean13": "",
                    "product_upc": "",
                    "product_price": "10.000000",
                    "unit_price_tax_incl": "12.000000",
                    "unit_price_tax_excl": "10.000000",
                }
            ]
        },
    }
    record.update(fields)
    return record
