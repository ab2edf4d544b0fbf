"""A WooCommerce shop on loopback: the `wc/v3` REST routes Comptoir reads, and its webhooks.

Behaviour copied from WooCommerce core: HTTP Basic consumer key/secret (or the
`consumer_key`/`consumer_secret` query parameters) with WooCommerce's 401 bodies, offset
pagination with X-WP-Total / X-WP-TotalPages / Link, exclusive `after`/`modified_after`
filters on site-local or GMT dates (`dates_are_gmt`), PHP-style JSON (escaped slashes and
non-ASCII), webhook bodies signed base64(HMAC-SHA256(secret, body)) with the X-WC-Webhook-*
headers, and the unsigned form-encoded ping.

Routes live in a table (`add_route`) so write-back issues can add or replace handlers; any
write without a handler is recorded and answered 201/200 with the request echoed back.

Order writes keep state that later reads return:
- PUT /orders/{id} changes the fields sent and moves date_modified(_gmt) forward. A status
  outside the registered ones is refused 400 `rest_invalid_param`; a status change adds
  core's private system note ("Order status changed from … to ….") and records the
  e-mails core sends for the new status in `emails` (STATUS_EMAILS; no per-call switch).
- GET /orders/{id}/notes (`type` any | customer | internal, newest first) and POST
  /orders/{id}/notes, dated by `clock` (date_created / date_created_gmt); a customer note
  records the "Customer note" e-mail to the buyer.

The WooCommerce.com Shipment Tracking extension (`/wp-json/wc-shipment-tracking/v3`), on
unless `shipment_tracking` is False (then its routes answer 404 `rest_no_route`, as
WordPress does for a plugin that is not there):
- GET/POST /orders/{id}/shipment-trackings, GET/DELETE …/shipment-trackings/{tracking_id},
  GET /shipment-trackings/providers ({country: {name: URL template}}, PROVIDERS).
- Items live in the order's meta `_wc_shipment_tracking_items` as the extension stores
  them (tracking_provider as its slug, custom_tracking_provider, custom_tracking_link,
  tracking_number, date_shipped as a unix timestamp of the site-local day, tracking_id),
  so they appear in the order payload and its webhooks; a change saves the order, moving
  date_modified on. The REST answer of an item is the extension's formatted one
  (tracking_id, tracking_provider's display name, tracking_link, tracking_number,
  date_shipped as Y-m-d). `add_tracking` adds one as the merchant would in the admin.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import itertools
import json
import math
import re
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from tests.emulators.base import Emulator, RecordedRequest, Reply

API = "/wp-json/wc/v3"
WP_VERSION = "6.6.2"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

CORE_STATUSES = {
    "pending": "Pending payment",
    "processing": "Processing",
    "on-hold": "On hold",
    "completed": "Completed",
    "cancelled": "Cancelled",
    "refunded": "Refunded",
    "failed": "Failed",
    "checkout-draft": "Draft",
}
# The e-mails core sends when an order enters a status (default settings): (to, template).
STATUS_EMAILS = {
    "processing": ("customer", "customer_processing_order"),
    "on-hold": ("customer", "customer_on_hold_order"),
    "completed": ("customer", "customer_completed_order"),
    "refunded": ("customer", "customer_refunded_order"),
    "cancelled": ("admin", "cancelled_order"),
    "failed": ("admin", "failed_order"),
}
NOTE_TYPES = ("any", "customer", "internal")
TRACKING_API = "/wp-json/wc-shipment-tracking/v3"
TRACKING_META = "_wc_shipment_tracking_items"
# A part of the extension's built-in providers (WC_Shipment_Tracking_Actions::get_providers):
# %1$s the tracking number, %2$s the postcode, %3$s the country.
PROVIDERS: dict[str, dict[str, str]] = {
    "France": {"Colissimo": "https://www.laposte.fr/outils/suivre-vos-envois?code=%1$s"},
    "Netherlands": {"PostNL": "https://postnl.nl/tracktrace/?B=%1$s&P=%2$s&D=%3$s&T=C"},
    "United Kingdom": {
        "Royal Mail": "https://www3.royalmail.com/track-your-item#/tracking-results/%1$s",
        "TNT Express (consignment)": "https://www.tnt.com/express/en_gb/site/shipping-tools/"
        "tracking.html?searchType=con&cons=%1$s",
    },
    "United States": {
        "Fedex": "https://www.fedex.com/apps/fedextrack/?action=track&tracknumbers=%1$s",
        "UPS": "https://www.ups.com/track?loc=en_US&tracknum=%1$s",
    },
}
ORDERBY_FIELDS = {
    "date": "date_created",
    "modified": "date_modified",
    "id": "id",
    "include": "id",
    "title": "id",
    "slug": "id",
}

Handler = Callable[[RecordedRequest, re.Match[str]], Reply]


def php_json(data: Any) -> bytes:
    """json_encode() as WordPress sends it: ASCII only, slashes escaped."""
    return json.dumps(data, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()


def _slug(name: str) -> str:
    """sanitize_title(): the slug the extension stores a provider under."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    return "-".join(re.findall(r"[a-z0-9]+", plain))


def wc_error(code: str, message: str, status: int, **data: Any) -> Reply:
    """A WP_Error as the REST server renders it."""
    body = {"code": code, "message": message, "data": {"status": status, **data}}
    return Reply(status, php_json(body), {"Content-Type": "application/json; charset=UTF-8"})


def wc_json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    return Reply(
        status,
        php_json(data),
        {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
    )


class WooCommerceEmulator(Emulator):
    """Orders in memory behind WooCommerce's REST API; tests add, update and hook them."""

    def __init__(
        self,
        consumer_key: str = "ck_comptoir_test",
        consumer_secret: str = "cs_comptoir_test",
        webhook_secret: str = "comptoir-webhook-secret",
        site_timezone: str = "Europe/Paris",
        version: str = "9.3.3",
    ) -> None:
        super().__init__()
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.webhook_secret = webhook_secret
        self.timezone = ZoneInfo(site_timezone)
        self.version = version
        self.read_only_key = False
        self.orders: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.custom_statuses: dict[str, str] = {}
        # E-mails WooCommerce would have sent: {"to": …, "template": …, "order_id": …}.
        self.emails: list[dict[str, Any]] = []
        # None: real time; otherwise each timestamp bump uses it and moves it on a second.
        self.clock: dt.datetime | None = None
        # Whether the Shipment Tracking extension is installed.
        self.shipment_tracking = True
        self._ids = itertools.count(9000)
        self.payment_gateways: list[dict[str, Any]] = [
            self._gateway("bacs", "Virement bancaire", "Direct bank transfer", True),
            self._gateway("cheque", "Chèque", "Check payments", True),
            self._gateway("cod", "Paiement à la livraison", "Cash on delivery", False),
            self._gateway("stripe", "Carte bancaire (Stripe)", "Stripe", True),
        ]
        self.shipping_methods: list[dict[str, Any]] = [
            self._shipping_method("flat_rate", "Flat rate"),
            self._shipping_method("free_shipping", "Free shipping"),
            self._shipping_method("local_pickup", "Local pickup"),
            self._shipping_method("lpc_sign", "Colissimo avec signature"),
            self._shipping_method("lpc_relay", "Colissimo Point Retrait"),
            self._shipping_method("wms_mondial_relay_relay", "Mondial Relay - Point Relais®"),
        ]
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.add_route("GET", rf"{API}/orders", self._list_orders)
        self.add_route("GET", rf"{API}/orders/(?P<id>\d+)", self._get_order)
        self.add_route("PUT", rf"{API}/orders/(?P<id>\d+)", self._put_order)
        self.add_route("GET", rf"{API}/orders/(?P<id>\d+)/notes", self._list_notes)
        self.add_route("POST", rf"{API}/orders/(?P<id>\d+)/notes", self._add_note)
        trackings = rf"{TRACKING_API}/orders/(?P<id>\d+)/shipment-trackings"
        self.add_route("GET", trackings, self._list_trackings)
        self.add_route("POST", trackings, self._add_tracking_item)
        self.add_route("GET", rf"{trackings}/(?P<item>[^/]+)", self._get_tracking)
        self.add_route("DELETE", rf"{trackings}/(?P<item>[^/]+)", self._delete_tracking)
        self.add_route("GET", rf"{TRACKING_API}/shipment-trackings/providers", self._list_providers)
        self.add_route("GET", rf"{API}/reports/orders/totals", self._order_totals)
        self.add_route("GET", rf"{API}/payment_gateways", self._list_gateways)
        self.add_route("GET", rf"{API}/shipping_methods", self._list_shipping_methods)
        self.add_route("GET", rf"{API}/system_status", self._system_status)
        self.add_route("GET", rf"{API}/webhooks", self._list_webhooks)
        self.add_route("POST", rf"{API}/webhooks", self._create_webhook)
        self.add_route("GET", rf"{API}/webhooks/(?P<id>\d+)", self._get_webhook)
        self.add_route("PUT", rf"{API}/webhooks/(?P<id>\d+)", self._update_webhook)

    # --- test-facing API --------------------------------------------------------------

    def reset(self) -> None:
        """Forget orders, notes, webhooks, custom statuses, e-mails, recorded requests and
        pending faults; real time again and a read-write key (server kept running)."""
        self.wait_idle()
        with self._lock:
            self.orders.clear()
            self.notes.clear()
            self.webhooks.clear()
            self.custom_statuses.clear()
            self.emails.clear()
            self.requests.clear()
            self._faults.clear()
            self._outage = []
        self.read_only_key = False
        self.clock = None
        self.shipment_tracking = True

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        """Serve `method pattern` (a full-match regex on the path); later routes win."""
        self._routes.insert(0, (method, re.compile(pattern), handler))

    def add_order(self, payload: dict[str, Any]) -> str:
        """Store an order (a `GET /orders/{id}` body); return its id."""
        order = copy.deepcopy(payload)
        if "id" not in order:
            order["id"] = next(self._ids)
            order.setdefault("number", str(order["id"]))
        order_id = str(order["id"])
        with self._lock:
            self.orders[order_id] = order
        return order_id

    def update_order(self, order_id: str | int, **changes: Any) -> dict[str, Any]:
        """Change an order as the shop would, bumping date_modified(_gmt)."""
        with self._lock:
            order = self.orders[str(order_id)]
            order.update(copy.deepcopy(changes))
            self._touch(order)
            return copy.deepcopy(order)

    def add_tracking(
        self,
        order_id: str | int,
        tracking_number: str,
        *,
        provider: str = "",
        custom_provider: str = "",
        custom_link: str = "",
        date_shipped: dt.date | None = None,
    ) -> str:
        """Add a tracking item as the merchant does in the order screen; its tracking_id."""
        with self._lock:
            item = self._store_tracking(
                self.orders[str(order_id)],
                {
                    "tracking_number": tracking_number,
                    "tracking_provider": provider,
                    "custom_tracking_provider": custom_provider,
                    "custom_tracking_link": custom_link,
                    "date_shipped": (date_shipped or self._now().date()).isoformat(),
                },
            )
        return str(item["tracking_id"])

    def tracking_items(self, order_id: str | int) -> list[dict[str, Any]]:
        """The order's tracking items as stored in its meta."""
        with self._lock:
            return copy.deepcopy(self._items(self.orders[str(order_id)]))

    def set_modified(self, order_id: str | int, when: dt.datetime) -> None:
        """Put an order's modification time at `when` (aware), both GMT and site-local."""
        with self._lock:
            self._stamp(self.orders[str(order_id)], "date_modified", when)

    def webhook(self, topic: str, order_id: str | int) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers WooCommerce POSTs for `topic` about this order."""
        resource, _, event = topic.partition(".")
        with self._lock:
            order = copy.deepcopy(self.orders.get(str(order_id)))
        if event == "deleted" or order is None:
            payload: Any = {"id": int(order_id)}
        else:
            payload = order
        body = php_json(payload).strip()
        hook = next(
            (h for h in self.webhooks.values() if h["topic"] == topic and h["status"] == "active"),
            None,
        )
        secret = hook["secret"] if hook else self.webhook_secret
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"WooCommerce/{self.version} Hookshot (WordPress/{WP_VERSION})",
            "X-WC-Webhook-Source": f"{self._home_url()}/",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": self.sign(secret, body),
            "X-WC-Webhook-ID": str(hook["id"]) if hook else "1",
            "X-WC-Webhook-Delivery-ID": uuid.uuid4().hex,
        }
        return body, headers

    def ping(self, webhook_id: int = 1) -> tuple[bytes, dict[str, str]]:
        """The ping sent when a webhook is saved active: form-encoded, unsigned."""
        return f"webhook_id={webhook_id}".encode(), {
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": f"WooCommerce/{self.version} Hookshot (WordPress/{WP_VERSION})",
        }

    @staticmethod
    def sign(secret: str, body: bytes) -> str:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    # --- routing ----------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Reply:
        path = request.path.rstrip("/")
        if path in ("/wp-json", API):
            return wc_json({"namespace": "wc/v3", "routes": {API: {"methods": ["GET"]}}})
        if path.startswith(TRACKING_API) and not self.shipment_tracking:
            return self._no_route()
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match and method == request.method:
                return handler(request, match)
        if request.method in ("POST", "PUT", "PATCH"):
            return self._echo_write(request)
        return self._no_route()

    @staticmethod
    def _no_route() -> Reply:
        return wc_error(
            "rest_no_route", "No route was found matching the URL and request method.", 404
        )

    def _authenticate(self, request: RecordedRequest) -> Reply | None:
        key = request.arg("consumer_key")
        secret = request.arg("consumer_secret")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(header[6:].strip()).decode()
            except ValueError:
                decoded = ""
            key, _, secret = decoded.partition(":")
        if key is None:
            return wc_error(
                "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.", 401
            )
        if key != self.consumer_key:
            return wc_error(
                "woocommerce_rest_authentication_error", "Consumer key is invalid.", 401
            )
        if secret != self.consumer_secret:
            return wc_error(
                "woocommerce_rest_authentication_error", "Consumer secret is invalid.", 401
            )
        if self.read_only_key and request.method != "GET":
            return wc_error(
                "woocommerce_rest_authentication_error",
                "The API key provided does not have write permissions.",
                401,
            )
        return None

    # --- orders -----------------------------------------------------------------------

    def _list_orders(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        page = request.arg("page", "1") or "1"
        per_page = request.arg("per_page", "10") or "10"
        if not page.isdigit() or int(page) < 1:
            return self._invalid_param("page", "page must be greater than or equal to 1")
        if not per_page.isdigit() or not 1 <= int(per_page) <= 100:
            return self._invalid_param(
                "per_page", "per_page must be between 1 (inclusive) and 100 (inclusive)"
            )
        orderby = request.arg("orderby", "date") or "date"
        if orderby not in ORDERBY_FIELDS:
            return self._invalid_param(
                "orderby", "orderby is not one of " + ", ".join(ORDERBY_FIELDS)
            )
        direction = request.arg("order", "desc") or "desc"
        if direction not in ("asc", "desc"):
            return self._invalid_param("order", "order is not one of asc, desc")
        gmt = (request.arg("dates_are_gmt", "false") or "").lower() in ("true", "1")
        statuses = self._statuses_asked(request)
        include = {i for i in re.split(r"[,\s]+", request.arg("include", "") or "") if i}
        bounds = []
        for name, field, after in (
            ("after", "date_created", True),
            ("before", "date_created", False),
            ("modified_after", "date_modified", True),
            ("modified_before", "date_modified", False),
        ):
            value = request.arg(name)
            if value:
                try:
                    limit = dt.datetime.fromisoformat(value).replace(tzinfo=None)
                except ValueError:
                    return self._invalid_param(name, "Invalid date.")
                bounds.append((field + ("_gmt" if gmt else ""), after, limit))

        with self._lock:
            orders = [copy.deepcopy(order) for order in self.orders.values()]
        selected = []
        for order in orders:
            if statuses is not None and order.get("status") not in statuses:
                continue
            if statuses is None and order.get("status") == "trash":
                continue
            if include and str(order["id"]) not in include:
                continue
            if all(self._within(order, *bound) for bound in bounds):
                selected.append(order)
        field = ORDERBY_FIELDS[orderby]
        if field != "id":
            field += "_gmt"
        selected.sort(
            key=lambda o: (str(o.get(field) or "") if field != "id" else "", int(o["id"])),
            reverse=direction == "desc",
        )
        total = len(selected)
        size = int(per_page)
        pages = math.ceil(total / size)
        number = int(page)
        chunk = selected[(number - 1) * size : number * size]
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        links = []
        base = f"{self._home_url()}{API}/orders"
        if number > 1:
            links.append(f'<{base}?page={number - 1}>; rel="prev"')
        if number < pages:
            links.append(f'<{base}?page={number + 1}>; rel="next"')
        if links:
            headers["Link"] = ", ".join(links)
        return wc_json(chunk, headers=headers)

    def _statuses_asked(self, request: RecordedRequest) -> set[str] | None:
        asked = [value for key, value in request.query if key in ("status", "status[]")]
        names = {s.strip() for value in asked for s in value.split(",") if s.strip()}
        if not names or "any" in names:
            return None
        return names

    @staticmethod
    def _within(order: dict[str, Any], field: str, after: bool, limit: dt.datetime) -> bool:
        value = order.get(field)
        if not value:
            return False
        when = dt.datetime.fromisoformat(value).replace(tzinfo=None)
        # WP_Date_Query's after/before are exclusive unless `inclusive` is set.
        return when > limit if after else when < limit

    def _get_order(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        with self._lock:
            order = copy.deepcopy(self.orders.get(match["id"]))
        if order is None:
            return wc_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        return wc_json(order)

    def _put_order(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if match["id"] not in self.orders:
            return wc_error("woocommerce_rest_shop_order_invalid_id", "Invalid ID.", 404)
        changes = request.json() if request.body else {}
        meta = changes.pop("meta_data", None)
        statuses = {**CORE_STATUSES, **self.custom_statuses}
        status = changes.get("status")
        if status is not None and status not in statuses:
            return self._invalid_param("status", "status is not one of " + ", ".join(statuses))
        with self._lock:
            order = self.orders[match["id"]]
            previous = order.get("status")
            order.update(changes)
            if status is not None and status != previous:
                self._status_changed(order, previous, status, statuses)
            for entry in meta or []:
                existing = [
                    m for m in order.setdefault("meta_data", []) if m["key"] == entry["key"]
                ]
                if existing:
                    existing[0]["value"] = entry.get("value")
                else:
                    order["meta_data"].append({"id": next(self._ids), **entry})
            self._touch(order)
            return wc_json(copy.deepcopy(order))

    def _status_changed(
        self, order: dict[str, Any], previous: Any, status: str, statuses: dict[str, str]
    ) -> None:
        """What core does on a status change: a system note, dates, the status e-mails."""
        now = self._now()
        if status == "completed":
            self._stamp(order, "date_completed", now)
        before = statuses.get(str(previous), str(previous))
        self.notes.setdefault(str(order["id"]), []).append(
            {
                "id": next(self._ids),
                "author": "WooCommerce",
                "date_created": self._local(now),
                "date_created_gmt": now.strftime(DATE_FORMAT),
                "note": f"Order status changed from {before} to {statuses[status]}.",
                "customer_note": False,
            }
        )
        if status in STATUS_EMAILS:
            to, template = STATUS_EMAILS[status]
            self.emails.append({"to": to, "template": template, "order_id": order["id"]})

    def _list_notes(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if match["id"] not in self.orders:
            return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        kind = request.arg("type", "any") or "any"
        if kind not in NOTE_TYPES:
            return self._invalid_param("type", "type is not one of " + ", ".join(NOTE_TYPES))
        with self._lock:
            notes = copy.deepcopy(self.notes.get(match["id"], []))
        if kind != "any":
            notes = [n for n in notes if n["customer_note"] is (kind == "customer")]
        return wc_json(list(reversed(notes)))

    def _add_note(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        if match["id"] not in self.orders:
            return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
        body = request.json() if request.body else {}
        if not body.get("note"):
            return wc_error(
                "rest_missing_callback_param",
                "Missing parameter(s): note",
                400,
                params=["note"],
            )
        now = self._now()
        note = {
            "id": next(self._ids),
            "author": "WooCommerce" if not body.get("added_by_user") else "admin",
            "date_created": self._local(now),
            "date_created_gmt": now.strftime(DATE_FORMAT),
            "note": body["note"],
            "customer_note": bool(body.get("customer_note", False)),
        }
        with self._lock:
            self.notes.setdefault(match["id"], []).append(note)
            if note["customer_note"]:
                order_id = self.orders[match["id"]]["id"]
                self.emails.append(
                    {"to": "customer", "template": "customer_note", "order_id": order_id}
                )
        return wc_json(note, 201)

    # --- Shipment Tracking extension ---------------------------------------------------

    @staticmethod
    def _items(order: dict[str, Any]) -> list[dict[str, Any]]:
        for entry in order.get("meta_data") or []:
            if entry.get("key") == TRACKING_META and isinstance(entry.get("value"), list):
                items: list[dict[str, Any]] = entry["value"]
                return items
        return []

    def _store_tracking(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """add_tracking_item(): the stored item; the order is saved (date_modified moves)."""
        day = dt.date.fromisoformat(str(body.get("date_shipped") or self._now().date()))
        midnight = dt.datetime.combine(day, dt.time(), self.timezone)
        number = str(body.get("tracking_number", "")).strip()
        provider = str(body.get("tracking_provider") or "").strip()
        item = {
            "tracking_provider": _slug(provider),
            "custom_tracking_provider": str(body.get("custom_tracking_provider") or ""),
            "custom_tracking_link": str(body.get("custom_tracking_link") or ""),
            "tracking_number": number,
            "date_shipped": int(midnight.timestamp()),
            "tracking_id": hashlib.md5(
                f"{provider}-{number}{next(self._ids)}".encode(), usedforsecurity=False
            ).hexdigest(),
        }
        meta = order.setdefault("meta_data", [])
        existing = [m for m in meta if m.get("key") == TRACKING_META]
        if existing and isinstance(existing[0].get("value"), list):
            existing[0]["value"].append(item)
        else:
            meta.append({"id": next(self._ids), "key": TRACKING_META, "value": [item]})
        self._touch(order)
        return item

    def _formatted(self, order: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """The extension's REST answer for an item: display name and link filled in."""
        name, link = item["custom_tracking_provider"], item["custom_tracking_link"]
        for group in PROVIDERS.values():
            for provider, template in group.items():
                if item["tracking_provider"] and _slug(provider) == item["tracking_provider"]:
                    shipping = order.get("shipping") or {}
                    name = provider
                    link = (
                        template.replace("%1$s", item["tracking_number"])
                        .replace("%2$s", str(shipping.get("postcode", "")).replace(" ", ""))
                        .replace("%3$s", str(shipping.get("country", "")))
                    )
        shipped = dt.datetime.fromtimestamp(item["date_shipped"], self.timezone)
        return {
            "tracking_id": item["tracking_id"],
            "tracking_provider": name,
            "tracking_link": link,
            "tracking_number": item["tracking_number"],
            "date_shipped": shipped.strftime("%Y-%m-%d"),
        }

    def _list_trackings(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        with self._lock:
            order = self.orders.get(match["id"])
            if order is None:
                return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            return wc_json([self._formatted(order, item) for item in self._items(order)])

    def _get_tracking(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        with self._lock:
            order = self.orders.get(match["id"])
            if order is None:
                return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            for item in self._items(order):
                if item["tracking_id"] == match["item"]:
                    return wc_json(self._formatted(order, item))
        return self._invalid_tracking()

    def _add_tracking_item(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        body = request.json() if request.body else {}
        if not str(body.get("tracking_number") or "").strip():
            return wc_error(
                "rest_missing_callback_param",
                "Missing parameter(s): tracking_number",
                400,
                params=["tracking_number"],
            )
        with self._lock:
            order = self.orders.get(match["id"])
            if order is None:
                return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            item = self._store_tracking(order, body)
            return wc_json(self._formatted(order, item), 201)

    def _delete_tracking(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        with self._lock:
            order = self.orders.get(match["id"])
            if order is None:
                return wc_error("woocommerce_rest_order_invalid_id", "Invalid order ID.", 404)
            items = self._items(order)
            for item in items:
                if item["tracking_id"] == match["item"]:
                    answer = self._formatted(order, item)
                    items.remove(item)
                    self._touch(order)
                    return wc_json(answer)
        return self._invalid_tracking()

    @staticmethod
    def _invalid_tracking() -> Reply:
        return wc_error(
            "woocommerce_rest_shop_order_shipment_tracking_invalid_id",
            "Invalid shipment tracking ID.",
            404,
        )

    def _list_providers(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return wc_json(PROVIDERS)

    # --- catalogs and status ----------------------------------------------------------

    def _order_totals(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        statuses = {**CORE_STATUSES, **self.custom_statuses}
        with self._lock:
            counts = [order.get("status") for order in self.orders.values()]
        return wc_json(
            [
                {"slug": slug, "name": name, "total": counts.count(slug)}
                for slug, name in statuses.items()
            ]
        )

    def _list_gateways(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return wc_json(self.payment_gateways)

    def _list_shipping_methods(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return wc_json(self.shipping_methods)

    def _system_status(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        home = self._home_url()
        return wc_json(
            {
                "environment": {
                    "home_url": home,
                    "site_url": home,
                    "version": self.version,
                    "wp_version": WP_VERSION,
                    "wp_multisite": False,
                    "wp_debug_mode": False,
                    "language": "fr_FR",
                    "default_timezone": "UTC",
                    "external_object_cache": None,
                },
                "database": {"wc_database_version": self.version, "database_prefix": "wp_"},
                "active_plugins": [
                    {
                        "plugin": "woocommerce/woocommerce.php",
                        "name": "WooCommerce",
                        "version": self.version,
                        "author_name": "Automattic",
                    },
                ],
                "theme": {"name": "Storefront", "version": "4.6.0"},
                "settings": {
                    "api_enabled": True,
                    "force_ssl": False,
                    "currency": "EUR",
                    "currency_symbol": "€",
                    "currency_position": "right_space",
                    "thousand_separator": " ",
                    "decimal_separator": ",",
                    "number_of_decimals": 2,
                },
                "security": {"secure_connection": True, "hide_errors": True},
                "pages": [],
            }
        )

    # --- webhooks ---------------------------------------------------------------------

    def _list_webhooks(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        size = int(request.arg("per_page", "10") or "10")
        number = int(request.arg("page", "1") or "1")
        hooks = sorted(self.webhooks.values(), key=lambda h: -h["id"])
        pages = math.ceil(len(hooks) / size)
        chunk = [self._public_hook(h) for h in hooks[(number - 1) * size : number * size]]
        return wc_json(
            chunk, headers={"X-WP-Total": str(len(hooks)), "X-WP-TotalPages": str(pages)}
        )

    def _get_webhook(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        hook = self.webhooks.get(match["id"])
        if hook is None:
            return wc_error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
        return wc_json(self._public_hook(hook))

    def _create_webhook(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        body = request.json() if request.body else {}
        missing = [name for name in ("topic", "delivery_url") if not body.get(name)]
        if missing:
            return wc_error(
                "rest_missing_callback_param",
                "Missing parameter(s): " + ", ".join(missing),
                400,
                params=missing,
            )
        resource, _, event = body["topic"].partition(".")
        now = self._now()
        hook = {
            "id": next(self._ids),
            "name": body.get("name") or f"Webhook created on {now:%b %d, %Y @ %I:%M %p}",
            "status": body.get("status", "active"),
            "topic": body["topic"],
            "resource": resource,
            "event": event,
            "hooks": [f"woocommerce_{event}_{resource}"],
            "delivery_url": body["delivery_url"],
            "secret": body.get("secret") or "generated-from-user",
            "date_created": self._local(now),
            "date_created_gmt": now.strftime(DATE_FORMAT),
            "date_modified": self._local(now),
            "date_modified_gmt": now.strftime(DATE_FORMAT),
        }
        with self._lock:
            self.webhooks[str(hook["id"])] = hook
        return wc_json(self._public_hook(hook), 201)

    def _update_webhook(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        hook = self.webhooks.get(match["id"])
        if hook is None:
            return wc_error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
        body = request.json() if request.body else {}
        with self._lock:
            for name in ("name", "status", "delivery_url", "secret", "topic"):
                if name in body:
                    hook[name] = body[name]
            now = self._now()
            hook["date_modified"] = self._local(now)
            hook["date_modified_gmt"] = now.strftime(DATE_FORMAT)
        return wc_json(self._public_hook(hook))

    def _public_hook(self, hook: dict[str, Any]) -> dict[str, Any]:
        shown = {key: value for key, value in hook.items() if key != "secret"}
        shown["_links"] = {
            "self": [{"href": f"{self._home_url()}{API}/webhooks/{hook['id']}"}],
            "collection": [{"href": f"{self._home_url()}{API}/webhooks"}],
        }
        return shown

    # --- helpers ----------------------------------------------------------------------

    def _echo_write(self, request: RecordedRequest) -> Reply:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {"data": body}
        if request.method == "POST":
            return wc_json({"id": next(self._ids), **body}, 201)
        return wc_json(body)

    @staticmethod
    def _invalid_param(name: str, message: str) -> Reply:
        return wc_error(
            "rest_invalid_param", f"Invalid parameter(s): {name}", 400, params={name: message}
        )

    def _home_url(self) -> str:
        return self.base_url if self._server is not None else "https://shop.example"

    def _now(self) -> dt.datetime:
        if self.clock is None:
            return dt.datetime.now(dt.UTC).replace(microsecond=0)
        now = self.clock
        self.clock = now + dt.timedelta(seconds=1)
        return now

    def _local(self, when: dt.datetime) -> str:
        return when.astimezone(self.timezone).strftime(DATE_FORMAT)

    def _stamp(self, order: dict[str, Any], field: str, when: dt.datetime) -> None:
        order[field] = self._local(when)
        order[f"{field}_gmt"] = when.astimezone(dt.UTC).strftime(DATE_FORMAT)

    def _touch(self, order: dict[str, Any]) -> None:
        now = self._now()
        previous = order.get("date_modified_gmt")
        if previous:
            floor = dt.datetime.fromisoformat(previous).replace(tzinfo=dt.UTC)
            now = max(now, floor + dt.timedelta(seconds=1))
        self._stamp(order, "date_modified", now)

    @staticmethod
    def _gateway(gateway_id: str, title: str, method_title: str, enabled: bool) -> dict[str, Any]:
        return {
            "id": gateway_id,
            "title": title,
            "description": "",
            "order": "",
            "enabled": enabled,
            "method_title": method_title,
            "method_description": "",
            "method_supports": ["products"],
            "settings": {},
            "needs_setup": False,
            "post_install_scripts": [],
            "settings_url": "/wp-admin/admin.php?page=wc-settings&tab=checkout"
            f"&section={gateway_id}",
            "connection_url": None,
            "setup_help_text": None,
            "required_settings_keys": [],
            "_links": {},
        }

    @staticmethod
    def _shipping_method(method_id: str, title: str) -> dict[str, Any]:
        return {"id": method_id, "title": title, "description": "", "_links": {}}
