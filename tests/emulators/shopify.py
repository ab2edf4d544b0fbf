"""A Shopify shop on loopback: the REST Admin API (any version path, 2025-01 shapes) and
signed webhooks, with Shopify's cursor pagination, filters, sorting and auth answers.

Rate limit: a leaky bucket per shop, as Shopify's REST API
(https://shopify.dev/docs/api/usage/rate-limits): `bucket_capacity` requests (40) leaking
`leak_rate` per second (2, standard plans). Every API answer carries
`X-Shopify-Shop-Api-Call-Limit: used/capacity`; a request that finds the bucket full is
answered 429 with Retry-After (the seconds until a request fits, at least 0.1) and is
counted in `refusals`.

Orders are kept as the JSON objects Shopify would send (ids as integers, money as strings,
timestamps with the shop's UTC offset). Read endpoints:
- GET orders.json (status, financial_status, ids, since_id, created/updated/processed_at
  min/max, order, fields, limit ≤ 250; Link-header pagination with page_info, after which
  only limit and fields are accepted), orders/count.json, orders/{id}.json (fields),
  orders/{id}/transactions.json, orders/{id}/fulfillment_orders.json,
  orders/{id}/fulfillments.json;
- shop.json, shipping_zones.json, webhooks.json.
Writes that exist today: webhooks.json (POST, DELETE), orders/{id}.json (PUT),
orders/{id}/cancel|close|open.json, fulfillments.json, fulfillments/{id}/update_tracking.json
and fulfillments/{id}/cancel.json (POST), and graphql.json for the mutations
fulfillmentCreate and fulfillmentTrackingInfoUpdate (several tracking numbers). Any other
POST/PUT is recorded and answered 201/200 with the posted resource given an id, so later
issues can add real behaviour by appending to `routes`.

Fulfillments live on the order (`fulfillments`, in its payload and webhooks) and move its
`updated_at`, line `fulfillable_quantity`/`fulfillment_status` and order
`fulfillment_status`. Fulfillment orders are derived, one per location (`line_locations`
places a line elsewhere than DEFAULT_LOCATION): each line's quantity less what standing
fulfillments hold; "open", "in_progress", "closed" once all is fulfilled, "cancelled" with
the order. A fulfillment takes fulfillment orders of one location only, never more than is
fulfillable (422 otherwise). The REST `tracking_info` keeps `number`, `url`, `company` (one
number per fulfillment, as documented); `numbers`/`urls` count only through GraphQL.
`fulfil_in_shop` and `cancel_in_shop` act as the merchant in Shopify's admin.

Order writes keep state that later reads return, and move `updated_at` forward:
- PUT orders/{id}.json changes the fields sent (`id` must match); a `note` longer than
  NOTE_LIMIT is refused 422 (Shopify documents 5,000 characters for cart notes; assumed
  here for the order note).
- POST cancel.json sets `cancelled_at`, `cancel_reason` (one of CANCEL_REASONS, else 422)
  and `closed_at`; an order already cancelled, or fulfilled or partly fulfilled, is
  refused 422. `"email": true` records a cancellation e-mail to the buyer in `emails`.
- POST close.json / open.json set or clear `closed_at`.
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
import threading
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from tests.emulators.base import Emulator, RecordedRequest, Reply

PARIS_WINTER = dt.timezone(dt.timedelta(hours=1))
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
ORDER_FILTERS = (
    "status",
    "financial_status",
    "fulfillment_status",
    "ids",
    "since_id",
    "created_at_min",
    "created_at_max",
    "updated_at_min",
    "updated_at_max",
    "processed_at_min",
    "processed_at_max",
    "order",
)
SORTABLE = ("created_at", "updated_at", "processed_at", "id")
CANCEL_REASONS = ("customer", "inventory", "fraud", "declined", "other")
NOTE_LIMIT = 5000
DEFAULT_LOCATION = 79871623233

Handler = Callable[[RecordedRequest, "re.Match[str]"], Reply]


def _json(data: Any, status: int = 200, **headers: str) -> Reply:
    body = json.dumps(data, ensure_ascii=False).encode()
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8", **headers})


def _error(status: int, errors: Any) -> Reply:
    return _json({"errors": errors}, status)


def _parse_time(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _token(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _untoken(token: str) -> dict[str, Any]:
    padded = token + "=" * (-len(token) % 4)
    data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    if not isinstance(data, dict):
        raise ValueError("not a cursor")
    return data


def _legacy(gid: Any) -> str:
    """The REST id in a GraphQL global id (gid://shopify/Kind/123)."""
    return str(gid or "").rsplit("/", 1)[-1]


def _mutation_payload(made: dict[str, Any]) -> dict[str, Any]:
    """A mutation's answer: the fulfillment in GraphQL shape, or the userErrors."""
    if "id" not in made:
        return {
            "fulfillment": None,
            "userErrors": [
                {"field": [field], "message": "; ".join(messages)}
                for field, messages in made.items()
            ],
        }
    return {
        "fulfillment": {
            "id": made["admin_graphql_api_id"],
            "legacyResourceId": str(made["id"]),
            "status": str(made["status"]).upper(),
            "trackingInfo": [
                {"company": made["tracking_company"], "number": number, "url": url}
                for number, url in itertools.zip_longest(
                    made["tracking_numbers"], made["tracking_urls"]
                )
            ],
        },
        "userErrors": [],
    }


class ShopifyEmulator(Emulator):
    """An in-memory Shopify shop; tests add orders, change them, and ask for webhooks."""

    def __init__(
        self,
        *,
        access_token: str = "shpat_0123456789abcdef0123456789abcdef",
        webhook_secret: str = "8f2c1b9e0d7a6f5e4c3b2a1908f7e6d5",
        shop_domain: str = "maison-lumiere.myshopify.com",
        api_version: str = "2025-01",
        timezone: dt.tzinfo = PARIS_WINTER,
        bucket_capacity: int = 40,
        leak_rate: float = 2.0,
    ) -> None:
        super().__init__()
        self.bucket_capacity = bucket_capacity
        self.leak_rate = leak_rate
        self.refusals = 0
        # The fullest the bucket has been (requests), for tests that show pacing at work.
        self.peak = 0
        self._level = 0.0
        self._leaked_at = time.monotonic()
        self.access_token = access_token
        self.webhook_secret = webhook_secret
        self.shop_domain = shop_domain
        self.api_version = api_version
        self.timezone = timezone
        self.orders: dict[str, dict[str, Any]] = {}
        self.transactions: dict[str, list[dict[str, Any]]] = {}
        self.webhooks: list[dict[str, Any]] = []
        self.created: list[tuple[str, str, Any]] = []
        # E-mails Shopify would have sent: {"to": "customer", "template": …, "order_id": …}.
        self.emails: list[dict[str, Any]] = []
        self.shop: dict[str, Any] = self._default_shop()
        self.shipping_zones: list[dict[str, Any]] = self._default_shipping_zones()
        # Line item id -> location id for lines stocked away from DEFAULT_LOCATION: their
        # fulfillment orders are separate, as Shopify splits an order by location.
        self.line_locations: dict[str, int] = {}
        self._state = threading.RLock()
        self._ids = itertools.count(9_100_000_000_001)
        self._last_stamp: dt.datetime | None = None
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"orders\.json"), self._list_orders),
            ("GET", re.compile(r"orders/count\.json"), self._count_orders),
            ("GET", re.compile(r"orders/(?P<id>\d+)\.json"), self._get_order),
            ("PUT", re.compile(r"orders/(?P<id>\d+)\.json"), self._put_order),
            ("GET", re.compile(r"orders/(?P<id>\d+)/transactions\.json"), self._get_transactions),
            (
                "GET",
                re.compile(r"orders/(?P<id>\d+)/fulfillment_orders\.json"),
                self._get_fulfillment_orders,
            ),
            (
                "POST",
                re.compile(r"orders/(?P<id>\d+)/(?P<action>cancel|close|open)\.json"),
                self._act,
            ),
            (
                "GET",
                re.compile(r"orders/(?P<id>\d+)/fulfillments\.json"),
                self._get_fulfillments,
            ),
            ("POST", re.compile(r"fulfillments\.json"), self._post_fulfillment),
            (
                "POST",
                re.compile(r"fulfillments/(?P<id>\d+)/update_tracking\.json"),
                self._post_update_tracking,
            ),
            (
                "POST",
                re.compile(r"fulfillments/(?P<id>\d+)/cancel\.json"),
                self._post_cancel_fulfillment,
            ),
            ("POST", re.compile(r"graphql\.json"), self._graphql),
            ("GET", re.compile(r"shop\.json"), lambda r, m: _json({"shop": self.shop})),
            (
                "GET",
                re.compile(r"shipping_zones\.json"),
                lambda r, m: _json({"shipping_zones": self.shipping_zones}),
            ),
            ("GET", re.compile(r"webhooks\.json"), self._list_webhooks),
            ("POST", re.compile(r"webhooks\.json"), self._create_webhook),
            ("DELETE", re.compile(r"webhooks/(?P<id>\d+)\.json"), self._delete_webhook),
        ]

    # --- test-facing API --------------------------------------------------------------

    def reset(self) -> None:
        """Forget orders, transactions, subscriptions, recorded requests and pending faults."""
        self.wait_idle()
        with self._state, self._lock:
            self.orders.clear()
            self.transactions.clear()
            self.webhooks.clear()
            self.created.clear()
            self.emails.clear()
            self.requests.clear()
            self._faults.clear()
            self._outage = []
            self.shop = self._default_shop()
            self.shipping_zones = self._default_shipping_zones()
            self.line_locations.clear()
            self._last_stamp = None
            self.refusals = 0
            self.peak = 0
            self._level = 0.0
            self._leaked_at = time.monotonic()

    def add_order(self, payload: dict[str, Any] | bytes | str) -> dict[str, Any]:
        """Store an order (bare or wrapped in {"order": …}); return the stored copy."""
        data = json.loads(payload) if isinstance(payload, bytes | str) else copy.deepcopy(payload)
        if isinstance(data.get("order"), dict):
            data = data["order"]
        with self._state:
            data.setdefault("id", next(self._ids))
            now = self._format(self._now())
            data.setdefault("created_at", now)
            data.setdefault("updated_at", data["created_at"])
            self.orders[str(data["id"])] = data
        return data

    def update_order(self, order_id: int | str, **changes: Any) -> dict[str, Any]:
        """Change top-level fields of an order and bump its updated_at (strictly later)."""
        with self._state:
            order = self.orders[str(order_id)]
            order.update(copy.deepcopy(changes))
            self._touch(order)
            return order

    def cancel_in_shop(self, fulfillment_id: int | str) -> None:
        """The merchant cancels a fulfillment in Shopify's admin (no API request)."""
        with self._state:
            found = self._find_fulfillment(str(fulfillment_id))
            assert found is not None, fulfillment_id
            order, fulfillment = found
            fulfillment["status"] = "cancelled"
            fulfillment["updated_at"] = self._format(self._now())
            self._follow_fulfillments(order)

    def fulfil_in_shop(
        self,
        order_id: int | str,
        lines: dict[str, int] | None = None,
        tracking: tuple[str, ...] = (),
        company: str = "",
        notify: bool = False,
    ) -> dict[str, Any]:
        """A fulfillment made by the merchant in Shopify's admin (no API request): the given
        line item quantities, or everything that remains; one or several numbers."""
        with self._state:
            order = self.orders[str(order_id)]
            entries = []
            for fo in self.fulfillment_orders(order):
                items = [
                    {"id": item["id"], "quantity": take}
                    for item in fo["line_items"]
                    if (
                        take := min(
                            item["fulfillable_quantity"],
                            item["fulfillable_quantity"]
                            if lines is None
                            else lines.get(str(item["line_item_id"]), 0),
                        )
                    )
                ]
                if items:
                    entries.append(
                        {"fulfillment_order_id": fo["id"], "fulfillment_order_line_items": items}
                    )
            info: dict[str, Any] = {"numbers": list(tracking)}
            if company:
                info["company"] = company
            made = self._fulfil(entries, info, notify)
            assert "id" in made, made
            return made

    def set_transactions(self, order_id: int | str, transactions: list[dict[str, Any]]) -> None:
        """Replace what orders/{id}/transactions.json answers for this order."""
        with self._state:
            self.transactions[str(order_id)] = copy.deepcopy(transactions)

    def webhook(
        self,
        topic: str,
        order_id: int | str,
        *,
        webhook_id: str | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers Shopify would POST for this topic and order.

        Pass the same webhook_id to reproduce a retry (Shopify keeps it on retries).
        """
        with self._state:
            order = self.orders[str(order_id)]
            if topic == "refunds/create":
                refunds = order.get("refunds") or [self._synthetic_refund(order)]
                data: dict[str, Any] = refunds[-1]
            elif topic == "orders/delete":
                data = {"id": order["id"]}  # Shopify's orders/delete body is the id alone
            else:
                data = order
            body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
        key = (self.webhook_secret if secret is None else secret).encode()
        signature = base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Shopify-Captain-Hook",
            "X-Shopify-Topic": topic,
            "X-Shopify-Hmac-Sha256": signature,
            "X-Shopify-Shop-Domain": self.shop_domain,
            "X-Shopify-API-Version": self.api_version,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Event-Id": str(uuid.uuid4()),
            "X-Shopify-Triggered-At": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        return body, headers

    # --- plumbing ---------------------------------------------------------------------

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)

    def _format(self, when: dt.datetime) -> str:
        return when.astimezone(self.timezone).isoformat(timespec="seconds")

    def _touch(self, order: dict[str, Any]) -> None:
        stamp = self._now()
        floor = [_parse_time(order["updated_at"])] if order.get("updated_at") else []
        if self._last_stamp is not None:
            floor.append(self._last_stamp)
        if floor and stamp <= max(floor):
            stamp = max(floor) + dt.timedelta(seconds=1)
        self._last_stamp = stamp
        order["updated_at"] = self._format(stamp)

    def route(self, request: RecordedRequest) -> Reply:
        match = re.fullmatch(
            r"/admin/api/(?P<version>\d{4}-\d{2}|unstable)/(?P<rest>.+)", request.path
        )
        if match is None:
            return _error(404, "Not Found")
        if request.headers.get("x-shopify-access-token") != self.access_token:
            return _error(401, INVALID_TOKEN)
        used, retry_after = self._take_from_bucket()
        limit = f"{used}/{self.bucket_capacity}"
        if retry_after is not None:
            reply = _error(429, "Exceeded 2 calls per second for api client. Reduce request rates.")
            reply.headers["Retry-After"] = f"{retry_after:.1f}"
            reply.headers["X-Shopify-Shop-Api-Call-Limit"] = limit
            return reply
        rest = match.group("rest")
        with self._state:
            for method, pattern, handler in self.routes:
                found = pattern.fullmatch(rest)
                if found is not None and method == request.method:
                    reply = handler(request, found)
                    break
            else:
                reply = self._fallback(request, rest)
        reply.headers.setdefault("X-Shopify-Shop-Api-Call-Limit", limit)
        reply.headers.setdefault("X-Request-Id", str(uuid.uuid4()))
        return reply

    def _take_from_bucket(self) -> tuple[int, float | None]:
        """Leak the bucket to now and add this request: (used, None), or (used, Retry-After)
        when the bucket is full."""
        with self._lock:
            now = time.monotonic()
            self._level = max(0.0, self._level - self.leak_rate * (now - self._leaked_at))
            self._leaked_at = now
            if self._level + 1 > self.bucket_capacity:
                self.refusals += 1
                wait = (self._level + 1 - self.bucket_capacity) / self.leak_rate
                return self.bucket_capacity, max(0.1, math.ceil(wait * 10) / 10)
            self._level += 1
            used = math.ceil(self._level)
            self.peak = max(self.peak, used)
            return used, None

    def _fallback(self, request: RecordedRequest, rest: str) -> Reply:
        if request.method not in ("POST", "PUT"):
            return _error(404, "Not Found")
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return _error(400, "body is not JSON")
        self.created.append((request.method, rest, body))
        if isinstance(body, dict) and len(body) == 1:
            ((name, resource),) = body.items()
            if isinstance(resource, dict):
                now = self._format(self._now())
                resource = {"id": next(self._ids), **resource}
                resource.setdefault("created_at", now)
                resource["updated_at"] = now
                body = {name: resource}
        return _json(body, 201 if request.method == "POST" else 200)

    def _order_or_404(self, order_id: str) -> dict[str, Any] | Reply:
        order = self.orders.get(order_id)
        return order if order is not None else _error(404, "Not Found")

    # --- orders -----------------------------------------------------------------------

    def _matches(self, order: dict[str, Any], filters: dict[str, str]) -> bool:
        status = filters.get("status", "open")
        if status == "open" and (order.get("closed_at") or order.get("cancelled_at")):
            return False
        if status == "closed" and not order.get("closed_at"):
            return False
        if status == "cancelled" and not order.get("cancelled_at"):
            return False
        financial = filters.get("financial_status", "any")
        if financial != "any" and order.get("financial_status") != financial:
            return False
        if "ids" in filters:
            wanted = {part.strip() for part in filters["ids"].split(",")}
            if str(order["id"]) not in wanted:
                return False
        if "since_id" in filters and int(order["id"]) <= int(filters["since_id"]):
            return False
        for field in ("created_at", "updated_at", "processed_at"):
            value = order.get(field) or order.get("created_at")
            if f"{field}_min" in filters and _parse_time(value) < _parse_time(
                filters[f"{field}_min"]
            ):
                return False
            if f"{field}_max" in filters and _parse_time(value) > _parse_time(
                filters[f"{field}_max"]
            ):
                return False
        return True

    def _sort_key(self, field: str) -> Callable[[dict[str, Any]], tuple[Any, int]]:
        def key(order: dict[str, Any]) -> tuple[Any, int]:
            order_id = int(order["id"])
            if field == "id":
                return (order_id, order_id)
            return (_parse_time(order.get(field) or order["created_at"]), order_id)

        return key

    def _list_orders(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        args = dict(request.query)
        try:
            limit = int(args.get("limit", "50"))
        except ValueError:
            return _error(400, {"limit": "expected Integer"})
        if not 1 <= limit <= 250:
            return _error(400, {"limit": "must be between 1 and 250"})
        cursor: dict[str, Any] | None = None
        if "page_info" in args:
            extra = sorted(set(args) - {"page_info", "limit", "fields"})
            if extra:
                return _error(400, {"page_info": f"cannot be combined with {', '.join(extra)}"})
            try:
                cursor = _untoken(args["page_info"])
                filters = dict(cursor["filters"])
            except (ValueError, KeyError, TypeError):
                return _error(400, {"page_info": "Invalid value."})
        else:
            filters = {key: args[key] for key in ORDER_FILTERS if key in args}
        field, _, direction = filters.get("order", "created_at desc").partition(" ")
        if field not in SORTABLE or direction not in ("asc", "desc"):
            return _error(400, {"order": "Invalid value."})
        try:
            candidates = [o for o in self.orders.values() if self._matches(o, filters)]
        except ValueError as exc:
            return _error(400, {"filters": str(exc)})
        key = self._sort_key(field)
        candidates.sort(key=key, reverse=direction == "desc")
        keys = [self._cursor_key(key(o)) for o in candidates]

        def after(position: list[Any]) -> int:
            return next(
                (i for i, k in enumerate(keys) if self._beyond(k, position, direction)), len(keys)
            )

        if cursor is None:
            start = 0
        elif cursor.get("direction") == "next":
            start = after(cursor["last"])
        else:
            end = next(
                (i for i, k in enumerate(keys) if not self._before(k, cursor["first"], direction)),
                len(keys),
            )
            start = max(0, end - limit)
        page = candidates[start : start + limit]
        links = []
        if page and start > 0:
            first = self._cursor_key(key(page[0]))
            links.append(
                self._link(filters, {"direction": "prev", "first": first}, args, "previous")
            )
        if page and start + limit < len(candidates):
            last = self._cursor_key(key(page[-1]))
            links.append(self._link(filters, {"direction": "next", "last": last}, args, "next"))
        fields = [f.strip() for f in args.get("fields", "").split(",") if f.strip()]
        body = [{k: v for k, v in o.items() if k in fields} if fields else o for o in page]
        reply = _json({"orders": body})
        if links:
            reply.headers["Link"] = ", ".join(links)
        return reply

    @staticmethod
    def _cursor_key(value: tuple[Any, int]) -> list[Any]:
        first, order_id = value
        return [first.isoformat() if isinstance(first, dt.datetime) else first, order_id]

    @staticmethod
    def _compare(a: list[Any], b: list[Any]) -> int:
        def normal(k: list[Any]) -> tuple[Any, int]:
            return (_parse_time(k[0]) if isinstance(k[0], str) else int(k[0]), int(k[1]))

        left, right = normal(a), normal(b)
        return (left > right) - (left < right)

    def _beyond(self, key: list[Any], position: list[Any], direction: str) -> bool:
        sign = self._compare(key, position)
        return sign > 0 if direction == "asc" else sign < 0

    def _before(self, key: list[Any], position: list[Any], direction: str) -> bool:
        sign = self._compare(key, position)
        return sign < 0 if direction == "asc" else sign > 0

    def _link(
        self, filters: dict[str, str], cursor: dict[str, Any], args: dict[str, str], rel: str
    ) -> str:
        token = _token({"filters": filters, **cursor})
        query = f"limit={args.get('limit', '50')}"
        if args.get("fields"):
            query += f"&fields={args['fields']}"
        url = f"{self.base_url}/admin/api/{self.api_version}/orders.json?{query}&page_info={token}"
        return f'<{url}>; rel="{rel}"'

    def _count_orders(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        args = dict(request.query)
        filters = {key: args[key] for key in ORDER_FILTERS if key in args}
        return _json({"count": sum(1 for o in self.orders.values() if self._matches(o, filters))})

    def _get_order(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        fields = [f.strip() for f in (request.arg("fields") or "").split(",") if f.strip()]
        shown = {k: v for k, v in order.items() if k in fields} if fields else order
        return _json({"order": shown})

    def _put_order(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        changes = (request.json() or {}).get("order") or {}
        if str(changes.pop("id", order["id"])) != str(order["id"]):
            return _error(400, {"id": ["does not match the order of the URL"]})
        note = changes.get("note")
        if isinstance(note, str) and len(note) > NOTE_LIMIT:
            return _error(422, {"note": [f"is too long (maximum is {NOTE_LIMIT} characters)"]})
        order.update(changes)
        self._touch(order)
        return _json({"order": order})

    def _act(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        action = match.group("action")
        now = self._format(self._now())
        if action == "cancel":
            if order.get("cancelled_at"):
                return _error(
                    422, {"base": ["Cannot cancel an order that has already been cancelled"]}
                )
            if order.get("fulfillment_status") in ("fulfilled", "partial"):
                return _error(422, {"base": ["Cannot cancel a fulfilled order"]})
            body = request.json() if request.body else {}
            reason = body.get("reason") or "other"
            if reason not in CANCEL_REASONS:
                return _error(422, {"reason": ["is not included in the list"]})
            order["cancelled_at"] = now
            order["cancel_reason"] = reason
            order["closed_at"] = order.get("closed_at") or now
            if body.get("email") is True:
                self.emails.append(
                    {"to": "customer", "template": "order_cancelled", "order_id": order["id"]}
                )
        elif action == "close":
            order["closed_at"] = now
        else:
            order["closed_at"] = None
        self._touch(order)
        return _json({"order": order})

    # --- fulfillments -----------------------------------------------------------------

    def _location_of(self, line: dict[str, Any]) -> int:
        return self.line_locations.get(str(line["id"]), DEFAULT_LOCATION)

    def _fulfilled(self, order: dict[str, Any]) -> dict[str, int]:
        """Quantities of each line item in the order's standing fulfillments."""
        done: dict[str, int] = {}
        for fulfillment in order.get("fulfillments") or []:
            if fulfillment.get("status") in ("cancelled", "error", "failure"):
                continue
            for item in fulfillment.get("line_items") or []:
                done[str(item["id"])] = done.get(str(item["id"]), 0) + int(item["quantity"])
        return done

    def fulfillment_orders(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        """The order's fulfillment orders as Shopify derives them: one per location holding
        its lines, each line's fulfillable quantity what its fulfillments leave."""
        done = self._fulfilled(order)
        locations = sorted({self._location_of(line) for line in order.get("line_items", [])})
        found = []
        for index, location in enumerate(locations):
            fo_id = int(order["id"]) + 1 + index
            items = []
            for line in order.get("line_items", []):
                if self._location_of(line) != location:
                    continue
                quantity = int(line.get("current_quantity", line["quantity"]))
                items.append(
                    {
                        "id": int(line["id"]) + 1,
                        "shop_id": self.shop["id"],
                        "fulfillment_order_id": fo_id,
                        "line_item_id": line["id"],
                        "inventory_item_id": line.get("variant_id"),
                        "quantity": quantity,
                        "fulfillable_quantity": max(0, quantity - done.get(str(line["id"]), 0)),
                        "variant_id": line.get("variant_id"),
                    }
                )
            left = sum(item["fulfillable_quantity"] for item in items)
            total = sum(item["quantity"] for item in items)
            if order.get("cancelled_at"):
                status = "cancelled"
            elif left == 0:
                status = "closed"
            else:
                status = "in_progress" if left < total else "open"
            found.append(
                {
                    "id": fo_id,
                    "shop_id": self.shop["id"],
                    "order_id": order["id"],
                    "assigned_location_id": location,
                    "request_status": "unsubmitted",
                    "status": status,
                    "supported_actions": (
                        ["create_fulfillment"] if status in ("open", "in_progress") else []
                    ),
                    "line_items": items,
                }
            )
        return found

    def _get_fulfillment_orders(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        return _json({"fulfillment_orders": self.fulfillment_orders(order)})

    def _get_fulfillments(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        return _json({"fulfillments": order.get("fulfillments") or []})

    def _follow_fulfillments(self, order: dict[str, Any]) -> None:
        """Line and order fulfillment statuses after a fulfillment changed; updated_at moves."""
        done = self._fulfilled(order)
        shipped = 0
        total = 0
        for line in order.get("line_items", []):
            quantity = int(line.get("current_quantity", line["quantity"]))
            fulfilled = min(quantity, done.get(str(line["id"]), 0))
            line["fulfillable_quantity"] = quantity - fulfilled
            line["fulfillment_status"] = (
                None if not fulfilled else "fulfilled" if fulfilled == quantity else "partial"
            )
            shipped += fulfilled
            total += quantity
        order["fulfillment_status"] = (
            None if not shipped else "fulfilled" if shipped == total else "partial"
        )
        self._touch(order)

    def _fulfil(
        self, lines_by_fo: Any, tracking: dict[str, Any], notify: bool
    ) -> dict[str, Any] | dict[str, list[str]]:
        """Create a fulfillment from [{fulfillment_order_id, fulfillment_order_line_items:
        [{id, quantity}]}] (no line items: all that remains of that fulfillment order).

        Returns the fulfillment, or {field: [errors]} as Shopify refuses (422).
        """
        if not isinstance(lines_by_fo, list) or not lines_by_fo:
            return {"line_items_by_fulfillment_order": ["can't be blank"]}
        owners = [
            (order, fo) for order in self.orders.values() for fo in self.fulfillment_orders(order)
        ]
        by_id = {str(fo["id"]): (order, fo) for order, fo in owners}
        chosen: list[tuple[dict[str, Any], int]] = []
        orders = set()
        locations = set()
        for entry in lines_by_fo:
            pair = by_id.get(str(entry.get("fulfillment_order_id")))
            if pair is None:
                return {"fulfillment_order_id": ["not found"]}
            order, fo = pair
            if fo["status"] not in ("open", "in_progress"):
                return {"base": [f"Fulfillment order {fo['id']} has an unfulfillable status"]}
            orders.add(str(order["id"]))
            locations.add(fo["assigned_location_id"])
            items = {str(item["id"]): item for item in fo["line_items"]}
            wanted = entry.get("fulfillment_order_line_items")
            if wanted is None:
                wanted = [
                    {"id": item["id"], "quantity": item["fulfillable_quantity"]}
                    for item in fo["line_items"]
                    if item["fulfillable_quantity"]
                ]
            for request_item in wanted:
                item = items.get(str(request_item.get("id")))
                quantity = request_item.get("quantity")
                if item is None:
                    return {"fulfillment_order_line_items": ["not in this fulfillment order"]}
                if (
                    not isinstance(quantity, int)
                    or not 0 < quantity <= item["fulfillable_quantity"]
                ):
                    return {"base": ["Invalid fulfillment order line item quantity requested."]}
                chosen.append((item, quantity))
        if len(orders) != 1 or len(locations) != 1:
            return {
                "base": [
                    "All fulfillment orders must belong to the same order and be assigned "
                    "to the same location."
                ]
            }
        order = self.orders[orders.pop()]
        numbers = [str(n) for n in tracking.get("numbers") or [] if n]
        urls = [str(u) for u in tracking.get("urls") or [] if u]
        if tracking.get("number"):
            numbers = [str(tracking["number"])]
            urls = [str(tracking["url"])] if tracking.get("url") else []
        fulfillment_id = next(self._ids)
        now = self._format(self._now())
        by_line = {str(line["id"]): line for line in order["line_items"]}
        fulfillment = {
            "id": fulfillment_id,
            "admin_graphql_api_id": f"gid://shopify/Fulfillment/{fulfillment_id}",
            "order_id": order["id"],
            "name": f"{order.get('name', '#')}.{len(order.get('fulfillments') or []) + 1}",
            "status": "success",
            "service": "manual",
            "shipment_status": None,
            "location_id": locations.pop(),
            "created_at": now,
            "updated_at": now,
            "notify_customer": notify,
            "tracking_company": tracking.get("company"),
            "tracking_number": numbers[0] if numbers else None,
            "tracking_numbers": numbers,
            "tracking_url": urls[0] if urls else None,
            "tracking_urls": urls,
            "line_items": [
                {**copy.deepcopy(by_line[str(item["line_item_id"])]), "quantity": quantity}
                for item, quantity in chosen
            ],
        }
        order.setdefault("fulfillments", []).append(fulfillment)
        self._follow_fulfillments(order)
        if notify:
            self.emails.append(
                {
                    "to": "customer",
                    "template": "shipping_confirmation",
                    "order_id": order["id"],
                    "tracking": list(numbers),
                }
            )
        return fulfillment

    def _find_fulfillment(
        self, fulfillment_id: str
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        for order in self.orders.values():
            for fulfillment in order.get("fulfillments") or []:
                if str(fulfillment["id"]) == str(fulfillment_id):
                    return order, fulfillment
        return None

    def _set_tracking(
        self, fulfillment_id: str, tracking: dict[str, Any], notify: bool
    ) -> dict[str, Any] | None:
        found = self._find_fulfillment(fulfillment_id)
        if found is None:
            return None
        order, fulfillment = found
        numbers = [str(n) for n in tracking.get("numbers") or [] if n]
        urls = [str(u) for u in tracking.get("urls") or [] if u]
        if tracking.get("number"):
            numbers = [str(tracking["number"])]
            urls = [str(tracking["url"])] if tracking.get("url") else []
        fulfillment["tracking_numbers"] = numbers
        fulfillment["tracking_number"] = numbers[0] if numbers else None
        fulfillment["tracking_urls"] = urls
        fulfillment["tracking_url"] = urls[0] if urls else None
        if tracking.get("company"):
            fulfillment["tracking_company"] = tracking["company"]
        fulfillment["updated_at"] = self._format(self._now())
        self._touch(order)
        if notify:
            self.emails.append(
                {
                    "to": "customer",
                    "template": "shipping_update",
                    "order_id": order["id"],
                    "tracking": list(numbers),
                }
            )
        return fulfillment

    def _post_fulfillment(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        """POST fulfillments.json. REST tracking_info holds one number: `number`, `url`,
        `company`; other keys (numbers, urls) are not REST fields and are dropped."""
        payload = (request.json() or {}).get("fulfillment") or {}
        info = payload.get("tracking_info") or {}
        tracking = {k: info[k] for k in ("number", "url", "company") if info.get(k)}
        made = self._fulfil(
            payload.get("line_items_by_fulfillment_order"),
            tracking,
            bool(payload.get("notify_customer", False)),
        )
        if "id" not in made:
            return _error(422, made)
        return _json({"fulfillment": made}, 201)

    def _post_update_tracking(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        payload = (request.json() or {}).get("fulfillment") or {}
        info = payload.get("tracking_info") or {}
        tracking = {k: info[k] for k in ("number", "url", "company") if info.get(k)}
        found = self._find_fulfillment(match.group("id"))
        if found is None:
            return _error(404, "Not Found")
        if found[1]["status"] == "cancelled":
            return _error(422, {"base": ["Cannot update tracking of a cancelled fulfillment"]})
        updated = self._set_tracking(
            match.group("id"), tracking, bool(payload.get("notify_customer", False))
        )
        return _json({"fulfillment": updated})

    def _post_cancel_fulfillment(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        found = self._find_fulfillment(match.group("id"))
        if found is None:
            return _error(404, "Not Found")
        order, fulfillment = found
        if fulfillment["status"] == "cancelled":
            return _error(422, {"base": ["Fulfillment is already cancelled"]})
        fulfillment["status"] = "cancelled"
        fulfillment["updated_at"] = self._format(self._now())
        self._follow_fulfillments(order)
        return _json({"fulfillment": fulfillment})

    def _graphql(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        """POST graphql.json: the fulfillment mutations Comptoir sends (fulfillmentCreate,
        fulfillmentTrackingInfoUpdate), read from the query's name and its variables."""
        body = request.json() or {}
        query = str(body.get("query") or "")
        variables = body.get("variables") or {}
        if re.search(r"\bfulfillmentCreate\s*\(", query):
            given = variables.get("fulfillment") or {}
            lines = [
                {
                    "fulfillment_order_id": _legacy(entry.get("fulfillmentOrderId")),
                    **(
                        {
                            "fulfillment_order_line_items": [
                                {"id": _legacy(item.get("id")), "quantity": item.get("quantity")}
                                for item in entry["fulfillmentOrderLineItems"]
                            ]
                        }
                        if entry.get("fulfillmentOrderLineItems") is not None
                        else {}
                    ),
                }
                for entry in given.get("lineItemsByFulfillmentOrder") or []
            ]
            made = self._fulfil(
                lines, given.get("trackingInfo") or {}, bool(given.get("notifyCustomer", False))
            )
            return _json({"data": {"fulfillmentCreate": _mutation_payload(made)}})
        if re.search(r"\bfulfillmentTrackingInfoUpdate\s*\(", query):
            fulfillment_id = _legacy(variables.get("fulfillmentId"))
            found = self._find_fulfillment(fulfillment_id)
            if found is None or found[1]["status"] == "cancelled":
                refusal = {"fulfillmentId": ["Fulfillment does not exist or is cancelled."]}
                return _json(
                    {"data": {"fulfillmentTrackingInfoUpdate": _mutation_payload(refusal)}}
                )
            updated = self._set_tracking(
                fulfillment_id,
                variables.get("trackingInfoInput") or {},
                bool(variables.get("notifyCustomer", False)),
            )
            assert updated is not None
            return _json({"data": {"fulfillmentTrackingInfoUpdate": _mutation_payload(updated)}})
        return _json(
            {"errors": [{"message": "this emulator answers the fulfillment mutations only"}]}
        )

    # --- transactions -----------------------------------------------------------------

    def _get_transactions(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        order = self._order_or_404(match.group("id"))
        if isinstance(order, Reply):
            return order
        order_id = match.group("id")
        if order_id not in self.transactions:
            self.transactions[order_id] = self._default_transactions(order)
        return _json({"transactions": self.transactions[order_id]})

    def _transaction(
        self, order: dict[str, Any], kind: str, amount: Any, status: str = "success", **extra: Any
    ) -> dict[str, Any]:
        when = order.get("processed_at") or order["created_at"]
        gateways = order.get("payment_gateway_names") or [order.get("gateway") or "manual"]
        transaction_id = next(self._ids)
        return {
            "id": transaction_id,
            "admin_graphql_api_id": f"gid://shopify/OrderTransaction/{transaction_id}",
            "amount": str(amount),
            "authorization": f"AUTH-{transaction_id}",
            "created_at": when,
            "currency": order.get("currency", "EUR"),
            "device_id": None,
            "error_code": None,
            "gateway": gateways[0],
            "kind": kind,
            "location_id": None,
            "message": None,
            "order_id": order["id"],
            "parent_id": None,
            "payment_id": f"{order.get('name', '#')}.1",
            "processed_at": when,
            "receipt": {},
            "source_name": "web",
            "status": status,
            "test": False,
            "user_id": None,
            **extra,
        }

    def _default_transactions(self, order: dict[str, Any]) -> list[dict[str, Any]]:
        total = order.get("total_price", "0.00")
        status = order.get("financial_status")
        if status == "pending":
            return []
        if status in ("authorized", "expired"):
            return [self._transaction(order, "authorization", total)]
        if status == "voided":
            auth = self._transaction(order, "authorization", total)
            return [auth, self._transaction(order, "void", total, parent_id=auth["id"])]
        if status == "partially_paid":
            half = (Decimal(str(total)) / 2).quantize(Decimal("0.01"))
            return [self._transaction(order, "sale", half)]
        sale = self._transaction(order, "sale", total)
        refunds = [
            tx for refund in order.get("refunds") or [] for tx in refund.get("transactions") or []
        ]
        if status == "refunded" and not refunds:
            refunds = [self._transaction(order, "refund", total, parent_id=sale["id"])]
        return [sale, *copy.deepcopy(refunds)]

    def _synthetic_refund(self, order: dict[str, Any]) -> dict[str, Any]:
        refund_id = next(self._ids)
        now = self._format(self._now())
        return {
            "id": refund_id,
            "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
            "created_at": now,
            "note": None,
            "order_id": order["id"],
            "processed_at": now,
            "restock": False,
            "user_id": None,
            "order_adjustments": [],
            "transactions": [],
            "refund_line_items": [],
            "duties": [],
        }

    # --- webhooks subscriptions ---------------------------------------------------------

    def _list_webhooks(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        topic = request.arg("topic")
        hooks = [h for h in self.webhooks if topic is None or h["topic"] == topic]
        return _json({"webhooks": hooks})

    def _create_webhook(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        payload = (request.json() or {}).get("webhook") or {}
        topic, address = payload.get("topic"), payload.get("address")
        if not topic or not address:
            return _error(
                422, {"topic": ["can't be blank"]} if not topic else {"address": ["can't be blank"]}
            )
        if any(h["topic"] == topic and h["address"] == address for h in self.webhooks):
            return _error(422, {"address": ["for this topic has already been taken"]})
        now = self._format(self._now())
        hook_id = next(self._ids)
        hook = {
            "id": hook_id,
            "address": address,
            "topic": topic,
            "created_at": now,
            "updated_at": now,
            "format": payload.get("format", "json"),
            "fields": payload.get("fields", []),
            "metafield_namespaces": [],
            "api_version": self.api_version,
            "private_metafield_namespaces": [],
            "admin_graphql_api_id": f"gid://shopify/WebhookSubscription/{hook_id}",
        }
        self.webhooks.append(hook)
        return _json({"webhook": hook}, 201)

    def _delete_webhook(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        before = len(self.webhooks)
        self.webhooks = [h for h in self.webhooks if str(h["id"]) != match.group("id")]
        return _json({}) if len(self.webhooks) < before else _error(404, "Not Found")

    # --- catalogue defaults -------------------------------------------------------------

    def _default_shop(self) -> dict[str, Any]:
        return {
            "id": 88546247565,
            "name": "Maison Lumière",
            "email": "contact@maison-lumiere.fr",
            "domain": "maison-lumiere.fr",
            "province": None,
            "country": "FR",
            "address1": "14 rue des Artisans",
            "zip": "69003",
            "city": "Lyon",
            "phone": "+33478000000",
            "primary_locale": "fr",
            "created_at": "2024-09-12T10:21:03+02:00",
            "updated_at": "2025-02-28T16:40:11+01:00",
            "country_code": "FR",
            "country_name": "France",
            "currency": "EUR",
            "customer_email": "contact@maison-lumiere.fr",
            "timezone": "(GMT+01:00) Europe/Paris",
            "iana_timezone": "Europe/Paris",
            "shop_owner": "Claire Morel",
            "money_format": "{{amount_with_comma_separator}} €",
            "money_with_currency_format": "{{amount_with_comma_separator}} € EUR",
            "weight_unit": "kg",
            "taxes_included": True,
            "tax_shipping": None,
            "plan_display_name": "Basic",
            "plan_name": "basic",
            "myshopify_domain": self.shop_domain,
            "enabled_presentment_currencies": ["EUR"],
        }

    def _default_shipping_zones(self) -> list[dict[str, Any]]:
        return [
            {
                "id": 452618404161,
                "name": "France",
                "profile_id": "gid://shopify/DeliveryProfile/100894163265",
                "location_group_id": "gid://shopify/DeliveryLocationGroup/101856526657",
                "admin_graphql_api_id": "gid://shopify/DeliveryZone/452618404161",
                "countries": [
                    {
                        "id": 548735959361,
                        "name": "France",
                        "tax": 0.2,
                        "code": "FR",
                        "tax_name": "FR TVA",
                        "shipping_zone_id": 452618404161,
                        "provinces": [],
                    }
                ],
                "weight_based_shipping_rates": [
                    {
                        "id": 559853813569,
                        "name": "Colissimo Domicile - sans signature",
                        "price": "6.90",
                        "shipping_zone_id": 452618404161,
                        "weight_low": 0.0,
                        "weight_high": 30.0,
                    },
                    {
                        "id": 559853846337,
                        "name": "Chronopost - Livraison express à domicile",
                        "price": "9.90",
                        "shipping_zone_id": 452618404161,
                        "weight_low": 0.0,
                        "weight_high": 30.0,
                    },
                ],
                "price_based_shipping_rates": [
                    {
                        "id": 559853879105,
                        "name": "Mondial Relay - Point Relais",
                        "price": "4.90",
                        "shipping_zone_id": 452618404161,
                        "min_order_subtotal": None,
                        "max_order_subtotal": None,
                    }
                ],
                "carrier_shipping_rate_providers": [],
            },
            {
                "id": 452618436929,
                "name": "Union européenne",
                "profile_id": "gid://shopify/DeliveryProfile/100894163265",
                "location_group_id": "gid://shopify/DeliveryLocationGroup/101856526657",
                "admin_graphql_api_id": "gid://shopify/DeliveryZone/452618436929",
                "countries": [
                    {
                        "id": 548735992129,
                        "name": "Belgium",
                        "tax": 0.21,
                        "code": "BE",
                        "tax_name": "BE TVA",
                        "shipping_zone_id": 452618436929,
                        "provinces": [],
                    }
                ],
                "weight_based_shipping_rates": [
                    {
                        "id": 559853911873,
                        "name": "Colissimo International",
                        "price": "14.50",
                        "shipping_zone_id": 452618436929,
                        "weight_low": 0.0,
                        "weight_high": 30.0,
                    }
                ],
                "price_based_shipping_rates": [
                    {
                        "id": 559853944641,
                        "name": "Mondial Relay - Point Relais",
                        "price": "6.90",
                        "shipping_zone_id": 452618436929,
                        "min_order_subtotal": None,
                        "max_order_subtotal": None,
                    }
                ],
                "carrier_shipping_rate_providers": [],
            },
        ]
