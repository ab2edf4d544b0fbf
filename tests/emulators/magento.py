"""A Magento 2 store on loopback: the REST API V1 as an admin or integration token reads it,
with Magento's searchCriteria filtering, sorting and paging, `fields=` trimming, bearer auth
and its error bodies.

Orders are kept as the JSON objects Magento answers (ids and money as JSON numbers, times as
UTC "YYYY-MM-DD HH:MM:SS", shipping address under extension_attributes.shipping_assignments).
Paths are accepted with or without a store code (/rest/V1/…, /rest/default/V1/…).
Read endpoints:
- GET orders?searchCriteria… (filter_groups AND-ed, filters inside a group OR-ed, the
  condition types eq neq gt gteq lt lteq like nlike in nin null notnull from to; several
  sortOrders; pageSize and currentPage, where a page past the end answers the last page
  again as Magento's collections do; snake_case or camelCase keys), orders/{id},
  orders/{id}/comments;
- store/storeConfigs, store/storeViews.
Magento has no REST catalogue of statuses, carriers or payment methods, and Open Source sends
no webhooks: the connector reads those from orders, so this emulator has no webhook().
Shipments: GET shipments?searchCriteria… (the same filtering, sorting, paging and
`fields=`), GET shipment/{id}; POST order/{id}/ship creates one (Magento's ShipOrder: the
items asked, else everything left; 400 when the order cannot be shipped, an item is not the
order's or asks more than remains to ship; one track per `tracks` entry, the comment kept)
and raises the items' qty_shipped (a configurable's or bundle's children with them); POST
shipment/track adds a track to a shipment of the order (answers the track), DELETE
shipment/track/{id} removes one (404 when there is none). Shipment and track ids count
from 1 each, as in their own tables. `add_shop_shipment()` is a shipment made in the
store's admin (no request recorded).
Writes that exist today: orders/{id}/comments, orders/{id}/cancel|hold|unhold|emails,
order/{id}/ship, order/{id}/invoice, shipment/track (POST), shipment/track/{id} (DELETE),
each visible in later reads (status, updated_at, status_histories, item quantities,
shipments); `writes()` lists them:
- comments: comment, is_customer_notified, is_visible_on_front and parent_id are required
  (400 otherwise); the entry, dated by `clock` (created_at), goes first in status_histories
  and its status becomes the order's status (Order::addStatusHistory), so an entry without
  a status clears the order's;
- cancel answers false, changing nothing, when Order::canCancel would refuse (on hold, in
  payment review, complete, closed, canceled, or nothing left to invoice); otherwise the
  order is canceled and every item's quantity left to invoice becomes qty_canceled;
- invoice raises the items' qty_invoiced (those asked, else everything left).
Any other POST/PUT is answered 200 with the posted body, so later issues can add behaviour
by appending to `routes`.
"""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import json
import re
import threading
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.emulators.base import Emulator, RecordedRequest, Reply

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
NOT_AUTHORIZED = "The consumer isn't authorized to access %resources."
NO_ENTITY = "The entity that was requested doesn't exist. Verify the entity and try again."
NO_ROUTE = "Request does not match any route."
SHIP_REFUSED = "Shipment Document Validation Error(s):\n"
CAMEL = {
    "filterGroups": "filter_groups",
    "conditionType": "condition_type",
    "sortOrders": "sort_orders",
    "pageSize": "page_size",
    "currentPage": "current_page",
}
CONDITIONS = (
    "eq",
    "neq",
    "gt",
    "gteq",
    "lt",
    "lteq",
    "like",
    "nlike",
    "in",
    "nin",
    "null",
    "notnull",
    "from",
    "to",
)

Handler = Callable[[RecordedRequest, "re.Match[str]"], Reply]


class BadRequest(Exception):
    """An input Magento refuses with 400 and a message (with %placeholders)."""

    def __init__(self, message: str, **parameters: str) -> None:
        super().__init__(message)
        self.message = message
        self.parameters = parameters


def _json(data: Any, status: int = 200) -> Reply:
    # PHP's json_encode escapes non-ASCII characters and slashes: so does this.
    body = json.dumps(data).replace("/", "\\/").encode()
    return Reply(status, body, {"Content-Type": "application/json; charset=utf-8"})


def _error(status: int, message: str, **parameters: str) -> Reply:
    data: dict[str, Any] = {"message": message}
    if parameters:
        data["parameters"] = parameters
    return _json(data, status)


def _comparable(value: Any) -> tuple[int, Any]:
    """Numbers compare as numbers, everything else (timestamps included) as text."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int | float | Decimal):
        return (0, Decimal(str(value)))
    text = "" if value is None else str(value)
    try:
        return (0, Decimal(text)) if re.fullmatch(r"-?\d+(\.\d+)?", text) else (1, text)
    except InvalidOperation:
        return (1, text)


def _qty_to_invoice(item: dict[str, Any]) -> Decimal:
    """What is left to invoice on an order item (ordered - invoiced - canceled)."""
    return sum(
        (
            sign * Decimal(str(item.get(name) or 0))
            for sign, name in ((1, "qty_ordered"), (-1, "qty_invoiced"), (-1, "qty_canceled"))
        ),
        Decimal(0),
    )


def _qty_to_ship(item: dict[str, Any]) -> Decimal:
    """What is left to ship on an order item (ordered - shipped - refunded - canceled)."""
    names = ("qty_ordered", "qty_shipped", "qty_refunded", "qty_canceled")
    ordered, shipped, refunded, canceled = (Decimal(str(item.get(n) or 0)) for n in names)
    return ordered - shipped - refunded - canceled


def _number(value: Decimal) -> int | float:
    """A quantity as Magento's JSON writes it (whole numbers as integers)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _like(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in pattern.split("%")), re.I | re.S)


def _parse_fields(spec: str) -> dict[str, Any]:
    """Read `a,b[c,d[e]]` into {"a": None, "b": {"c": None, "d": {"e": None}}}."""
    position = 0

    def group() -> dict[str, Any]:
        nonlocal position
        result: dict[str, Any] = {}
        name = ""
        while position < len(spec):
            char = spec[position]
            position += 1
            if char == ",":
                if name.strip():
                    result[name.strip()] = None
                name = ""
            elif char == "[":
                result[name.strip()] = group()
                name = ""
            elif char == "]":
                break
            else:
                name += char
        if name.strip():
            result[name.strip()] = None
        return result

    return group()


def _pick(data: Any, spec: dict[str, Any]) -> Any:
    if isinstance(data, list):
        return [_pick(item, spec) for item in data]
    if isinstance(data, dict):
        return {
            key: data[key] if sub is None else _pick(data[key], sub)
            for key, sub in spec.items()
            if key in data
        }
    return data


class MagentoEmulator(Emulator):
    """An in-memory Magento store; tests add orders, change them and read what was written."""

    def __init__(
        self,
        *,
        token: str = "3q0k8x2m5v7n1b4c6z9l0p2o4i6u8y1t",
        store_codes: tuple[str, ...] = ("default",),
        currency: str = "EUR",
        timezone: str = "Europe/Paris",
        locale: str = "fr_FR",
    ) -> None:
        super().__init__()
        self.token = token
        self.store_codes = store_codes
        self.currency = currency
        self.timezone = timezone
        self.locale = locale
        self.orders: dict[int, dict[str, Any]] = {}
        # What "now" is for the store; its stamps still move forward a second at least.
        self.clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)
        self.shipments: list[dict[str, Any]] = []
        self.invoices: list[dict[str, Any]] = []
        self._state = threading.RLock()
        self._document_ids = itertools.count(1)
        self._shipment_ids = itertools.count(1)
        self._track_ids = itertools.count(1)
        self._shipment_item_ids = itertools.count(1)
        self._history_ids = itertools.count(5001)
        self._last_stamp: dt.datetime | None = None
        order = r"orders/(?P<id>\d+)"
        self.routes: list[tuple[str, re.Pattern[str], str, Handler]] = [
            ("GET", re.compile(r"orders"), "Magento_Sales::actions_view", self._search_orders),
            ("GET", re.compile(order), "Magento_Sales::actions_view", self._get_order),
            ("GET", re.compile(order + "/comments"), "Magento_Sales::actions_view", self._comments),
            ("POST", re.compile(order + "/comments"), "Magento_Sales::comment", self._add_comment),
            (
                "POST",
                re.compile(order + "/(?P<action>cancel|hold|unhold|emails)"),
                "Magento_Sales::actions_edit",
                self._act,
            ),
            ("POST", re.compile(r"order/(?P<id>\d+)/ship"), "Magento_Sales::ship", self._ship),
            ("GET", re.compile(r"shipments"), "Magento_Sales::shipment", self._search_shipments),
            (
                "GET",
                re.compile(r"shipment/(?P<id>\d+)"),
                "Magento_Sales::shipment",
                self._get_shipment,
            ),
            ("POST", re.compile(r"shipment/track"), "Magento_Sales::ship", self._add_track),
            (
                "DELETE",
                re.compile(r"shipment/track/(?P<id>\d+)"),
                "Magento_Sales::ship",
                self._delete_track,
            ),
            (
                "POST",
                re.compile(r"order/(?P<id>\d+)/invoice"),
                "Magento_Sales::sales_invoice",
                self._invoice,
            ),
            ("GET", re.compile(r"store/storeConfigs"), "Magento_Backend::store", self._configs),
            ("GET", re.compile(r"store/storeViews"), "Magento_Backend::store", self._views),
        ]

    # --- test-facing API --------------------------------------------------------------

    def add_order(self, payload: dict[str, Any] | bytes | str) -> dict[str, Any]:
        """Store an order as GET /V1/orders/{id} answers it; return the stored copy.

        Missing entity_id / increment_id / created_at / updated_at are filled in.
        """
        data = json.loads(payload) if isinstance(payload, bytes | str) else copy.deepcopy(payload)
        with self._state:
            if "entity_id" not in data:
                data["entity_id"] = max(self.orders, default=0) + 1
            data.setdefault("increment_id", f"{data['entity_id']:09d}")
            if "created_at" not in data:
                data["created_at"] = self._format(self._tick())
            data.setdefault("updated_at", data["created_at"])
            self._remember(data["updated_at"])
            self.orders[int(data["entity_id"])] = data
        return data

    def update_order(self, order_id: int | str, **changes: Any) -> dict[str, Any]:
        """Change top-level fields of an order and bump its updated_at (strictly later,
        to the second as Magento keeps it) unless updated_at is among the changes."""
        with self._state:
            order = self.orders[int(order_id)]
            order.update(copy.deepcopy(changes))
            if "updated_at" in changes:
                self._remember(order["updated_at"])
            else:
                self._touch(order)
            return order

    def add_shop_shipment(
        self,
        order_id: int | str,
        items: dict[int, int] | None = None,
        tracks: Sequence[tuple[str, str, str]] = (),
    ) -> dict[str, Any]:
        """A shipment made in the store's admin: the items (order_item_id → qty, None for
        everything left) and tracks as (track_number, title, carrier_code). Nothing is
        recorded as a request; the shipment is read like any other."""
        body: dict[str, Any] = {
            "tracks": [
                {"track_number": number, "title": title, "carrier_code": code}
                for number, title, code in tracks
            ]
        }
        if items is not None:
            body["items"] = [{"order_item_id": ref, "qty": qty} for ref, qty in items.items()]
        with self._state:
            return self._create_shipment(self.orders[int(order_id)], body)

    def reset(self) -> None:
        """Forget orders, documents, recorded requests and pending faults; real time again
        (server kept running)."""
        self.wait_idle()
        with self._state, self._lock:
            self.orders.clear()
            self.shipments.clear()
            self.invoices.clear()
            self.requests.clear()
            self._faults.clear()
            self._outage = []
            self._last_stamp = None
            self.clock = lambda: dt.datetime.now(dt.UTC)

    # --- time -------------------------------------------------------------------------

    @staticmethod
    def _format(value: dt.datetime) -> str:
        return value.astimezone(dt.UTC).strftime(TIME_FORMAT)

    def _remember(self, stamp: str) -> None:
        value = dt.datetime.strptime(stamp, TIME_FORMAT).replace(tzinfo=dt.UTC)
        if self._last_stamp is None or value > self._last_stamp:
            self._last_stamp = value

    def _tick(self) -> dt.datetime:
        now = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + dt.timedelta(seconds=1)
        self._last_stamp = now
        return now

    def _touch(self, order: dict[str, Any]) -> str:
        order["updated_at"] = self._format(self._tick())
        return str(order["updated_at"])

    # --- routing ----------------------------------------------------------------------

    def route(self, request: RecordedRequest) -> Reply:
        match = re.fullmatch(r"/rest(?:/(?P<store>[a-z0-9_]+))?/V1/(?P<rest>.+)", request.path)
        if match is None:
            return _error(404, NO_ROUTE)
        store = match.group("store")
        if store is not None and store not in (*self.store_codes, "all"):
            return _error(404, NO_ROUTE)
        resource = match.group("rest").rstrip("/")
        for method, pattern, acl, handler in self.routes:
            found = pattern.fullmatch(resource)
            if method == request.method and found is not None:
                if request.headers.get("authorization", "") != f"Bearer {self.token}":
                    return _error(401, NOT_AUTHORIZED, resources=acl)
                try:
                    with self._state:
                        reply = handler(request, found)
                except BadRequest as exc:
                    return _error(400, exc.message, **exc.parameters)
                return self._trim(request, reply)
        if request.method in ("POST", "PUT"):
            if request.headers.get("authorization", "") != f"Bearer {self.token}":
                return _error(401, NOT_AUTHORIZED, resources="Magento_Backend::admin")
            return self._echo_write(request)
        return _error(404, NO_ROUTE)

    def _trim(self, request: RecordedRequest, reply: Reply) -> Reply:
        spec = request.arg("fields")
        if not spec or reply.status != 200:
            return reply
        return _json(_pick(json.loads(reply.body), _parse_fields(spec)))

    def _order(self, match: re.Match[str]) -> dict[str, Any]:
        order = self.orders.get(int(match.group("id")))
        if order is None:
            raise LookupError
        return order

    @staticmethod
    def _payload(request: RecordedRequest) -> Any:
        return json.loads(request.body) if request.body else None

    def _echo_write(self, request: RecordedRequest) -> Reply:
        try:
            body = self._payload(request)
        except ValueError:
            return _error(400, "Decoding error.")
        return _json(body if body is not None else True)

    # --- reads ------------------------------------------------------------------------

    def _search_orders(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return self._search(request, list(self.orders.values()))

    def _search_shipments(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        return self._search(request, self.shipments)

    def _get_shipment(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        found = self._shipment_by_id(int(match.group("id")))
        return _json(found) if found is not None else _error(404, NO_ENTITY)

    def _shipment_by_id(self, shipment_id: int) -> dict[str, Any] | None:
        return next((s for s in self.shipments if s["entity_id"] == shipment_id), None)

    def _search(self, request: RecordedRequest, records: list[dict[str, Any]]) -> Reply:
        criteria = self._criteria(request)
        orders = [
            record
            for record in sorted(records, key=lambda o: int(o["entity_id"]))
            if self._selected(record, criteria.get("filter_groups", []))
        ]
        for sort in reversed(criteria.get("sort_orders", [])):
            field = sort.get("field", "")
            descending = str(sort.get("direction", "ASC")).upper() == "DESC"

            def key(order: dict[str, Any], field: str = field) -> tuple[int, Any]:
                return _comparable(order.get(field))

            orders.sort(key=key, reverse=descending)
        return _json(self._page(orders, criteria))

    def _get_order(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            return _json(self._order(match))
        except LookupError:
            return _error(404, NO_ENTITY)

    def _comments(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            order = self._order(match)
        except LookupError:
            return _error(404, NO_ENTITY)
        items = list(order.get("status_histories") or [])
        return _json({"items": items, "search_criteria": {}, "total_count": len(items)})

    def _configs(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        base = f"{self.base_url}/"
        return _json(
            [
                {
                    "id": index,
                    "code": code,
                    "website_id": 1,
                    "locale": self.locale,
                    "base_currency_code": self.currency,
                    "default_display_currency_code": self.currency,
                    "timezone": self.timezone,
                    "weight_unit": "kgs",
                    "base_url": base,
                    "base_link_url": base,
                    "base_static_url": f"{base}static/version1741090000/",
                    "base_media_url": f"{base}media/",
                    "secure_base_url": base,
                    "secure_base_link_url": base,
                    "secure_base_static_url": f"{base}static/version1741090000/",
                    "secure_base_media_url": f"{base}media/",
                }
                for index, code in enumerate(self.store_codes, start=1)
            ]
        )

    def _views(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        views = [{"id": 0, "code": "admin", "name": "Admin", "website_id": 0, "store_group_id": 0}]
        views += [
            {"id": index, "code": code, "name": code.title(), "website_id": 1, "store_group_id": 1}
            for index, code in enumerate(self.store_codes, start=1)
        ]
        return _json([{**view, "is_active": 1} for view in views])

    # --- searchCriteria ---------------------------------------------------------------

    @staticmethod
    def _criteria(request: RecordedRequest) -> dict[str, Any]:
        """searchCriteria[a][0][b]=v arguments as nested dicts and lists, keys in snake_case."""
        tree: dict[str, Any] = {}
        seen = False
        for key, value in request.query:
            head = re.match(r"searchCriteria((?:\[[^\]]*\])*)$", key)
            if head is None:
                continue
            seen = True
            parts = [CAMEL.get(part, part) for part in re.findall(r"\[([^\]]*)\]", head.group(1))]
            if not parts:
                continue
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise BadRequest("Invalid searchCriteria argument %key.", key=key)
            node[parts[-1]] = value
        if not seen:
            raise BadRequest(
                '"%fieldName" is required. Enter and try again.', fieldName="searchCriteria"
            )

        def as_list(node: Any) -> list[Any]:
            if not isinstance(node, dict):
                return []
            return [node[k] for k in sorted(node, key=lambda k: int(k) if k.isdigit() else 0)]

        criteria: dict[str, Any] = {}
        if "filter_groups" in tree:
            criteria["filter_groups"] = [
                {"filters": [f for f in as_list(group.get("filters")) if isinstance(f, dict)]}
                for group in as_list(tree["filter_groups"])
                if isinstance(group, dict)
            ]
        if "sort_orders" in tree:
            criteria["sort_orders"] = [
                s for s in as_list(tree["sort_orders"]) if isinstance(s, dict)
            ]
        for name in ("page_size", "current_page"):
            if name in tree:
                try:
                    criteria[name] = int(tree[name])
                except (TypeError, ValueError) as exc:
                    raise BadRequest(
                        f"Invalid value of {tree[name]!r} provided for {name}."
                    ) from exc
        return criteria

    def _selected(self, order: dict[str, Any], groups: list[dict[str, Any]]) -> bool:
        return all(
            not group["filters"] or any(self._matches(order, f) for f in group["filters"])
            for group in groups
        )

    @staticmethod
    def _matches(order: dict[str, Any], flt: dict[str, Any]) -> bool:
        field = flt.get("field", "")
        condition = flt.get("condition_type") or "eq"
        if condition not in CONDITIONS:
            raise BadRequest("Invalid condition type %1.", **{"1": condition})
        if field not in order and not re.fullmatch(r"[a-z_]+", field):
            raise BadRequest("Invalid field name %1.", **{"1": field})
        actual = order.get(field)
        value = flt.get("value", "")
        if condition == "null":
            return actual is None
        if condition == "notnull":
            return actual is not None
        if condition in ("in", "nin"):
            wanted = {_comparable(part.strip()) for part in str(value).split(",")}
            return (_comparable(actual) in wanted) == (condition == "in")
        if condition in ("like", "nlike"):
            hit = actual is not None and _like(str(value)).fullmatch(str(actual)) is not None
            return hit == (condition == "like")
        if actual is None:
            return False
        left, right = _comparable(actual), _comparable(value)
        if left[0] != right[0]:
            left, right = (1, str(actual)), (1, str(value))
        return {
            "eq": left == right,
            "neq": left != right,
            "gt": left > right,
            "gteq": left >= right,
            "from": left >= right,
            "lt": left < right,
            "lteq": left <= right,
            "to": left <= right,
        }[condition]

    @staticmethod
    def _page(orders: list[dict[str, Any]], criteria: dict[str, Any]) -> dict[str, Any]:
        total = len(orders)
        size = criteria.get("page_size") or 0
        if size > 0:
            requested = criteria.get("current_page") or 1
            last_page = max(1, -(-total // size))
            # Magento's collections clamp the page: past the end comes the last page again.
            current = min(max(requested, 1), last_page)
            orders = orders[(current - 1) * size : current * size]
        return {"items": orders, "search_criteria": criteria, "total_count": total}

    # --- writes -----------------------------------------------------------------------

    def _add_comment(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            order = self._order(match)
        except LookupError:
            return _error(404, NO_ENTITY)
        body = self._payload(request) or {}
        history = dict(body.get("statusHistory") or {})
        for name in ("comment", "is_customer_notified", "is_visible_on_front", "parent_id"):
            if name not in history:
                raise BadRequest('"%fieldName" is required. Enter and try again.', fieldName=name)
        history.setdefault("status", None)
        history.update(
            entity_id=next(self._history_ids),
            entity_name="order",
            created_at=self._touch(order),
        )
        order.setdefault("status_histories", []).insert(0, history)
        order["status"] = history["status"]
        return _json(True)

    def _act(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            order = self._order(match)
        except LookupError:
            return _error(404, NO_ENTITY)
        action = match.group("action")
        if action == "cancel":
            if not self._can_cancel(order):
                return _json(False)
            order["state"] = order["status"] = "canceled"
            for item in order.get("items") or []:
                canceled = Decimal(str(item.get("qty_canceled") or 0))
                item["qty_canceled"] = _number(canceled + _qty_to_invoice(item))
        elif action == "hold":
            order["hold_before_state"] = order.get("state")
            order["hold_before_status"] = order.get("status")
            order["state"] = order["status"] = "holded"
        elif action == "unhold":
            order["state"] = order.pop("hold_before_state", None) or "processing"
            order["status"] = order.pop("hold_before_status", None) or order["state"]
        if action != "emails":
            self._touch(order)
        return _json(True)

    @staticmethod
    def _can_cancel(order: dict[str, Any]) -> bool:
        """Order::canCancel: not on hold or in payment review, something left to invoice,
        and not already complete, closed or canceled."""
        if order.get("state") in ("holded", "payment_review", "complete", "closed", "canceled"):
            return False
        return any(_qty_to_invoice(item) > 0 for item in order.get("items") or [])

    def _ship(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            order = self._order(match)
        except LookupError:
            return _error(404, NO_ENTITY)
        body = self._payload(request) or {}
        return _json(self._create_shipment(order, body)["entity_id"])

    def _create_shipment(self, order: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        """ShipOrder: validate everything, then register the items and save the shipment."""
        items = {int(item["item_id"]): item for item in order.get("items") or []}
        if order.get("state") in ("holded", "payment_review", "canceled", "complete", "closed"):
            raise BadRequest(SHIP_REFUSED + "The order does not allow a shipment to be created.")
        asked: dict[int, Decimal] = {}
        for entry in body.get("items") or []:
            try:
                ref, qty = int(entry["order_item_id"]), Decimal(str(entry["qty"]))
            except (KeyError, TypeError, ValueError, InvalidOperation) as exc:
                raise BadRequest("Decoding error.") from exc
            if ref not in items or items[ref].get("parent_item_id"):
                raise BadRequest(
                    SHIP_REFUSED + "The order does not allow a shipment to be created."
                )
            asked[ref] = asked.get(ref, Decimal(0)) + qty
        if not body.get("items"):
            asked = {
                ref: _qty_to_ship(item)
                for ref, item in items.items()
                if not item.get("parent_item_id") and _qty_to_ship(item) > 0
            }
        if any(qty > _qty_to_ship(items[ref]) or qty < 0 for ref, qty in asked.items()):
            raise BadRequest(SHIP_REFUSED + "The order does not allow a shipment to be created.")
        if not any(qty > 0 for qty in asked.values()):
            raise BadRequest(SHIP_REFUSED + "You can't create a shipment without products.")
        for track in body.get("tracks") or []:
            for name in ("track_number", "title", "carrier_code"):
                if not str(track.get(name) or "").strip():
                    raise BadRequest(
                        '"%fieldName" is required. Enter and try again.', fieldName=name
                    )
        shipment_id = next(self._shipment_ids)
        stamp = self._touch(order)
        shipment: dict[str, Any] = {
            "entity_id": shipment_id,
            "increment_id": f"{shipment_id:09d}",
            "order_id": int(order["entity_id"]),
            "store_id": 1,
            "created_at": stamp,
            "updated_at": stamp,
            "email_sent": 1 if body.get("notify") else None,
            "total_qty": _number(sum(asked.values(), Decimal(0))),
            "items": [],
            "tracks": [],
            "comments": [],
            "packages": list(body.get("packages") or []),
        }
        for ref, qty in asked.items():
            if qty <= 0:
                continue
            item = items[ref]
            self._register(item, qty)
            shipment["items"].append(
                {
                    "entity_id": next(self._shipment_item_ids),
                    "parent_id": shipment_id,
                    "order_item_id": ref,
                    "qty": _number(qty),
                    "sku": item.get("sku"),
                    "name": item.get("name"),
                    "price": item.get("price"),
                    "product_id": item.get("product_id"),
                    "weight": item.get("weight"),
                }
            )
            ordered = Decimal(str(item.get("qty_ordered") or 0))
            for child in items.values():
                if child.get("parent_item_id") and int(child["parent_item_id"]) == ref:
                    share = Decimal(str(child.get("qty_ordered") or 0)) / ordered if ordered else 1
                    self._register(child, qty * share)
        for track in body.get("tracks") or []:
            shipment["tracks"].append(self._track(shipment, track, stamp))
        comment = body.get("comment") or {}
        if isinstance(comment, dict) and str(comment.get("comment") or "").strip():
            shipment["comments"].append(
                {
                    "entity_id": next(self._history_ids),
                    "parent_id": shipment_id,
                    "comment": comment["comment"],
                    "is_visible_on_front": int(comment.get("is_visible_on_front") or 0),
                    "is_customer_notified": 1
                    if body.get("notify") and body.get("appendComment")
                    else 0,
                    "created_at": stamp,
                }
            )
        if order.get("state") == "new":
            order["state"] = order["status"] = "processing"
        done = all(_qty_to_ship(item) <= 0 for item in items.values())
        invoiced = all(_qty_to_invoice(item) <= 0 for item in items.values())
        if done and invoiced:
            order["state"] = order["status"] = "complete"
        self.shipments.append(shipment)
        return shipment

    @staticmethod
    def _register(item: dict[str, Any], qty: Decimal) -> None:
        shipped = Decimal(str(item.get("qty_shipped") or 0))
        item["qty_shipped"] = _number(shipped + qty)

    def _track(self, shipment: dict[str, Any], track: dict[str, Any], stamp: str) -> dict[str, Any]:
        return {
            "entity_id": next(self._track_ids),
            "parent_id": shipment["entity_id"],
            "order_id": shipment["order_id"],
            "track_number": str(track.get("track_number")),
            "title": track.get("title"),
            "carrier_code": track.get("carrier_code"),
            "weight": track.get("weight"),
            "qty": track.get("qty"),
            "description": track.get("description"),
            "created_at": stamp,
            "updated_at": stamp,
        }

    def _add_track(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        entity = (self._payload(request) or {}).get("entity")
        if not isinstance(entity, dict):
            raise BadRequest('"%fieldName" is required. Enter and try again.', fieldName="entity")
        for name in ("order_id", "parent_id", "track_number", "carrier_code"):
            if entity.get(name) in (None, ""):
                raise BadRequest('"%fieldName" is required. Enter and try again.', fieldName=name)
        shipment = self._shipment_by_id(int(entity["parent_id"]))
        if shipment is None or shipment["order_id"] != int(entity["order_id"]):
            raise BadRequest("Could not save the shipment tracking.")
        order = self.orders[shipment["order_id"]]
        stamp = self._touch(order)
        track = self._track(shipment, entity, stamp)
        shipment["tracks"].append(track)
        shipment["updated_at"] = stamp
        return _json(track)

    def _delete_track(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        track_id = int(match.group("id"))
        for shipment in self.shipments:
            for track in shipment["tracks"]:
                if track["entity_id"] == track_id:
                    shipment["tracks"].remove(track)
                    shipment["updated_at"] = self._touch(self.orders[shipment["order_id"]])
                    return _json(True)
        return _error(404, NO_ENTITY)

    def _invoice(self, request: RecordedRequest, match: re.Match[str]) -> Reply:
        try:
            order = self._order(match)
        except LookupError:
            return _error(404, NO_ENTITY)
        body = self._payload(request) or {}
        invoice_id = next(self._document_ids)
        self.invoices.append({"entity_id": invoice_id, "order_id": order["entity_id"], **body})
        asked = {
            int(item["order_item_id"]): Decimal(str(item["qty"]))
            for item in body.get("items") or []
        }
        for item in order.get("items") or []:
            qty = asked.get(int(item["item_id"]), _qty_to_invoice(item) if not asked else 0)
            invoiced = Decimal(str(item.get("qty_invoiced") or 0))
            item["qty_invoiced"] = _number(invoiced + qty)
        order["total_invoiced"] = order.get("grand_total")
        if body.get("capture"):
            order["total_paid"] = order.get("grand_total")
            order["total_due"] = 0
        if order.get("state") == "new":
            order["state"] = order["status"] = "processing"
        self._touch(order)
        return _json(invoice_id)
