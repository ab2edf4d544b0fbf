"""The JSON API for integrations, /api/v1, described by /api/v1/openapi.json.

Authenticated by `Authorization: Bearer <token>` (services.users.create_api_token), not by
the login session nor CSRF: a token acts with its user's role. Every answer is JSON, errors
included, whatever the input; messages are English. Field names are those of
`flask orders export --format json`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import force_locale, gettext
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from web.db import read_only
from web.documents import credit_notes, invoices, issued
from web.documents.company import CompanyIncomplete
from web.models import Comment, Document, DocumentLine, OrderEvent, ShippingMode, User
from web.models.enums import DocumentKind, DocumentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import (
    comments,
    export,
    order_actions,
    order_queries,
    order_state,
    paging,
    payments,
    shipments,
    shipping_modes,
    shops,
    users,
)
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.services.timeline import Actor
from web.views import api_schema, documents
from web.views.base import DESK_ROLES, EDITOR_ROLES, WAREHOUSE_ROLES, db
from web.views.events import render_event

bp = Blueprint("api", __name__, url_prefix="/api/v1")
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_TOKEN_LENGTH = 200
ORDER_ID = "<id:order_id>"
ACTION = f"<any({', '.join(order_actions.ACTIONS)}):action>"
SHIPMENT_ID = "<id:shipment_id>"
SHIPMENT_ACTION = f"<any({', '.join(shipments.ACTIONS)}):action>"
# The warehouse ships: these writes take its role too (it reads no order).
SHIPPING_ENDPOINTS = {"api.shipment_create", "api.parcel_create", "api.shipment_action"}
# What the warehouse may read: the shipping modes it ships with (not the orders).
WAREHOUSE_READS = {"api.shipping_mode_list"}
READ_METHODS = ("GET", "HEAD")
# Reachable without a token: the API's description, and the JSON 404/405 for unknown routes.
OPEN_ENDPOINTS = {"api.openapi", "api.unknown"}


class ApiError(Exception):
    """An answer other than success, with its status and what to tell the client."""

    def __init__(
        self,
        status: int,
        message: str,
        fields: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})


def _error(
    status: int, message: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> Response:
    session = g.get("db_session")
    if session is not None:
        session.rollback()
    response = jsonify(error=message, **{key: value for key, value in extra.items() if value})
    response.status_code = status
    response.headers.update(headers or {})
    return response


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Response:
    return _error(exc.status, str(exc), exc.headers, fields=exc.fields)


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> Response:
    return _error(404, str(exc))


@bp.errorhandler(ValidationFailed)
def _refused(exc: ValidationFailed) -> Response:
    return _error(422, str(exc), fields=exc.errors)


@bp.errorhandler(InvalidTransition)
def _conflict(exc: InvalidTransition) -> Response:
    return _error(409, f"cannot {exc.action} the order: {exc.reason}", reason=exc.reason)


@bp.errorhandler(413)  # by code, so the app's HTML page for 413 does not take it
@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Response:
    status = exc.code or 500
    message = (exc.name or "error").lower()
    if status == 413:
        message = f"the body is larger than {MAX_BODY_BYTES} bytes"
    return _error(status, message)


@bp.errorhandler(500)
def _server_error(exc: Exception) -> Response:
    log.error("unhandled API error", exc_info=exc)
    return _error(500, "internal error; it was logged and nothing was saved")


# --- Authentication ------------------------------------------------------------------------


def _bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def _token_user() -> User | None:
    token = _bearer_token()
    if token is None:
        return None
    sessions = current_app.extensions["comptoir.sessions"]
    # Own short transactions, before the request's: the last-use stamp must be saved even
    # when the request only reads (GET never commits) or its change is refused.
    with sessions() as session:
        read_only(session)
        api_token = users.find_api_token(session, token)
        if api_token is None:
            return None
        token_id, user_id = api_token.id, api_token.user_id
        stale = users.token_use_is_stale(api_token)
    if stale:
        with sessions() as session:
            users.record_token_use(session, token_id)
            session.commit()
    return db().get(User, user_id)


@bp.before_request
def _authenticate() -> None:
    if request.endpoint in OPEN_ENDPOINTS or request.method == "OPTIONS":
        return
    user = _token_user()
    if user is None:
        challenge = 'Bearer realm="comptoir"'
        if "Authorization" in request.headers:
            challenge += ', error="invalid_token"'
        raise ApiError(
            401,
            "send a valid API token: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": challenge},
        )
    reading = request.method in READ_METHODS
    writers = WAREHOUSE_ROLES if request.endpoint in SHIPPING_ENDPOINTS else EDITOR_ROLES
    readers = (*DESK_ROLES, *WAREHOUSE_ROLES) if request.endpoint in WAREHOUSE_READS else DESK_ROLES
    if user.role not in (readers if reading else writers):
        what = "read orders" if reading else "change orders"
        raise ApiError(403, f"the {user.role.value} role cannot {what}")
    g.api_user = user


@bp.after_request
def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


def _actor() -> Actor:
    return Actor.for_user(g.api_user)


# --- Reading input -------------------------------------------------------------------------


def _is_text(value: str) -> bool:
    """Refuse what no database column can hold: NUL characters and lone surrogates."""
    if "\x00" in value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _list_filters(args: Mapping[str, str]) -> order_queries.OrderFilters:
    filters, errors = order_queries.parse_filters(args)
    # The desk brings a page out of range back into it; an integration is told.
    for name, high in (("page", paging.MAX_PAGE), ("per_page", order_queries.MAX_PER_PAGE)):
        value = (args.get(name) or "").strip()
        if value and name not in errors and paging.whole_number(value, 1, high) is None:
            errors[name] = f"expected a whole number from 1 to {high}, got {value[:20]!r}"
    for name in ("shop", "number", "q"):
        if not _is_text(args.get(name) or ""):
            errors[name] = "NUL characters are not allowed"
    if filters.shop and "shop" not in errors and shops.find_by_key(db(), filters.shop) is None:
        errors["shop"] = f"no shop has the key {filters.shop!r}"
    if errors:
        details = "; ".join(f"{name}: {message}" for name, message in sorted(errors.items()))
        raise ApiError(400, f"invalid query parameter {details}", fields=errors)
    return filters


def _json_body(allowed: frozenset[str], *, optional: bool = False) -> dict[str, Any]:
    """Read the JSON object sent; decimals stay Decimal, never float."""
    request.max_content_length = MAX_BODY_BYTES
    raw = request.get_data(cache=False)
    if not raw.strip():
        if optional:
            return {}
        raise ApiError(400, "send a JSON object as the body")
    if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
        raise ApiError(415, "send the body as application/json")
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    unknown = {name: "unknown field" for name in body if name not in allowed}
    if unknown:
        raise ApiError(422, "unknown field: " + ", ".join(sorted(unknown)), fields=unknown)
    return body


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


class _Fields:
    """Typed reads of a JSON object's fields, collecting every refusal before answering."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.errors: dict[str, str] = {}

    def text(self, name: str, default: str | None = None) -> str:
        value = self.body.get(name)
        if value is None and default is not None:
            return default
        if value is None:
            self.errors[name] = "required"
        elif not isinstance(value, str):
            self.errors[name] = "expected a string"
        elif not _is_text(value):
            self.errors[name] = "NUL characters and lone surrogates are not allowed"
        else:
            return value
        return ""

    def flag(self, name: str, default: bool) -> bool:
        value = self.body.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.errors[name] = "expected true or false"
            return default
        return value

    def amount(self, name: str) -> object:
        value = self.body.get(name)
        if value is None:
            self.errors[name] = "required"
        elif isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            self.errors[name] = 'expected an amount as a string ("12.50") or a number'
        elif isinstance(value, str) and not _is_text(value):
            self.errors[name] = "NUL characters and lone surrogates are not allowed"
        return value

    def moment(self, name: str) -> dt.date | dt.datetime | None:
        text = self.text(name, default="").strip()
        if not text or name in self.errors:
            return None
        try:
            if len(text) == 10:
                return dt.date.fromisoformat(text)
            moment = dt.datetime.fromisoformat(text)
            if moment.tzinfo is None:
                return moment.replace(tzinfo=dt.UTC)
            return moment.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            self.errors[name] = "expected YYYY-MM-DD or an ISO 8601 date-time"
            return None

    def check(self) -> None:
        if self.errors:
            names = ", ".join(sorted(self.errors))
            raise ApiError(422, f"invalid field: {names}", fields=self.errors)


def _locked_order(order_id: int) -> Order:
    order = order_actions.lock_order(db(), order_id)
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


# --- Answers -------------------------------------------------------------------------------


def _reader_locale() -> str:
    """The token user's language, else the app's default (the first of LANGUAGES)."""
    languages = tuple(current_app.config["LANGUAGES"])
    user = g.get("api_user")
    locale = user.locale if user is not None else None
    return str(locale) if locale in languages else languages[0]


def _summary(order: Order) -> dict[str, Any]:
    with force_locale(_reader_locale()):
        summary = export.order_summary(order, gettext)
    return {**summary, "allowed_actions": _allowed_actions(order)}


def _allowed_actions(order: Order) -> list[str]:
    allowed = order_state.allowed_actions(order)
    return [action for action in order_actions.ACTIONS if action in allowed]


def _comment(comment: Comment) -> dict[str, Any]:
    return {
        "id": comment.id,
        "text": comment.text,
        "visibility": comment.visibility.value,
        "notify": comment.notify_customer,
        "author": comment.author.name if comment.author else None,
        "created_at": export.when(comment.created_at),
        "updated_at": export.when(comment.updated_at),
        "pushed_at": export.when(comment.pushed_at),
    }


def _event(event: OrderEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "occurred_at": export.when(event.occurred_at),
        "actor_type": event.actor_type.value,
        "actor": event.actor_user.name if event.actor_user else None,
        "kind": event.kind,
        "params": event.details or {},
        "text": render_event(event.kind, event.details).full,
    }


def _detail(order: Order) -> dict[str, Any]:
    """The export's record of the order, with its allowed actions, comments and timeline."""
    with force_locale(_reader_locale()):
        return {
            **export.order_record(order, gettext),
            "allowed_actions": _allowed_actions(order),
            "documents": [_document(document) for document in order.documents],
            "comments": [_comment(comment) for comment in order.comments],
            "events": [_event(event) for event in order.events],
        }


# --- Routes --------------------------------------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    return jsonify(api_schema.document())


@bp.get("/shipping-modes")
def shipping_mode_list() -> ResponseReturnValue:
    """The active shipping modes, by name: the codes integrations may send."""
    modes = shipping_modes.active_modes(db())
    return jsonify(
        shipping_modes=[
            {
                "code": mode.code,
                "name": mode.name,
                "carrier": mode.carrier,
                "relay": mode.is_relay_point,
            }
            for mode in modes
        ]
    )


@bp.get("/orders")
def order_list() -> ResponseReturnValue:
    filters = _list_filters(request.args)
    found = order_queries.search_orders(db(), filters)
    # The desk shows the last page for a page past the end; a client paging on wants none.
    orders = found.items if filters.cursor or filters.page == found.page else []
    page = found.page if filters.cursor else filters.page
    return jsonify(
        orders=[_summary(order) for order in orders],
        page=page,
        per_page=found.per_page,
        total=found.total,
        total_capped=found.capped,
        next_page=page + 1 if orders and found.has_next else None,
        next_cursor=found.after if orders else None,
        prev_cursor=found.before if orders else None,
    )


@bp.get(f"/orders/{ORDER_ID}")
def order_detail(order_id: int) -> ResponseReturnValue:
    return jsonify(_detail(order_queries.get_order(db(), order_id)))


@bp.post(f"/orders/{ORDER_ID}/comments")
def comment_create(order_id: int) -> ResponseReturnValue:
    fields = _Fields(_json_body(frozenset({"text", "visibility", "notify"})))
    text = fields.text("text")
    visibility = fields.text("visibility", default="internal")
    notify = fields.flag("notify", default=False)
    fields.check()
    order = _locked_order(order_id)
    comment = comments.add_comment(db(), order, _actor(), text, visibility, notify=notify)
    db().commit()
    return jsonify(_comment(comment)), 201


@bp.post(f"/orders/{ORDER_ID}/actions/{ACTION}")
def order_action(order_id: int, action: str) -> ResponseReturnValue:
    fields = _Fields(_json_body(frozenset({"reason", "notify"}), optional=True))
    reason = fields.text("reason", default="")
    notify = fields.flag("notify", default=True)
    fields.check()
    order = _locked_order(order_id)
    order_actions.perform(db(), order, action, _actor(), reason=reason, notify=notify)
    db().commit()
    return jsonify(_summary(order))


@bp.post(f"/orders/{ORDER_ID}/transactions")
def transaction_create(order_id: int) -> ResponseReturnValue:
    body = _json_body(frozenset({"kind", "source", "amount", "occurred_at", "reference"}))
    fields = _Fields(body)
    kind, source = fields.text("kind"), fields.text("source")
    amount, occurred_at = fields.amount("amount"), fields.moment("occurred_at")
    reference = fields.text("reference", default="")
    fields.check()
    order = _locked_order(order_id)
    transaction = payments.record_manual(
        db(),
        order,
        _actor(),
        kind=kind,
        source=source,
        amount=amount,
        occurred_at=occurred_at,
        reference=reference,
    )
    db().commit()
    return jsonify(transaction=export.transaction_record(transaction), order=_summary(order)), 201


# --- Shipments -------------------------------------------------------------------------------


def _shipment(shipment: Shipment) -> dict[str, Any]:
    allowed = shipments.allowed_actions(shipment)
    return {
        **export.shipment_record(shipment),
        "allowed_actions": [action for action in shipments.ACTIONS if action in allowed],
        "order": _summary(shipment.order),
    }


def _shipment_refused(exc: InvalidTransition) -> Response:
    return _error(409, f"cannot {exc.action} the shipment: {exc.reason}", reason=exc.reason)


def _whole_number(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chosen_lines(fields: _Fields) -> dict[int, int] | None:
    """`lines` as {line id: quantity} (shipments, invoices, credit notes); None when absent."""
    raw = fields.body.get("lines")
    if raw is None:
        return None
    chosen: dict[int, int] = {}
    if not isinstance(raw, list):
        fields.errors["lines"] = "expected a list of {line_id, quantity}"
        return None
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"line_id", "quantity"}:
            fields.errors["lines"] = "each line is {line_id, quantity}, nothing else"
        elif not (_whole_number(item["line_id"]) and _whole_number(item["quantity"])):
            fields.errors["lines"] = "line_id and quantity are whole numbers"
        elif item["quantity"] < 1:
            fields.errors["lines"] = "a quantity is 1 or more"
        elif item["line_id"] in chosen:
            fields.errors["lines"] = f"line {item['line_id']} is named twice"
        else:
            chosen[item["line_id"]] = item["quantity"]
    return chosen


def _parcel_input(fields: _Fields, item: Any, name: str) -> shipments.ParcelInput | None:
    if not isinstance(item, dict) or not set(item) <= {"tracking_number", "weight_kg"}:
        fields.errors[name] = "a parcel is {tracking_number, weight_kg}, nothing else"
        return None
    tracking = item.get("tracking_number", "")
    weight = item.get("weight_kg")
    if not isinstance(tracking, str) or not _is_text(tracking):
        fields.errors[name] = "tracking_number is text"
        return None
    if weight is not None and (
        isinstance(weight, bool)
        or not isinstance(weight, str | int | Decimal)
        or (isinstance(weight, str) and not _is_text(weight))
    ):
        fields.errors[name] = 'weight_kg is text ("1.2") or a number'
        return None
    return shipments.ParcelInput(tracking, weight)


def _shipment_parcels(fields: _Fields) -> list[shipments.ParcelInput]:
    raw = fields.body.get("parcels")
    if raw is None:
        return []
    if not isinstance(raw, list):
        fields.errors["parcels"] = "expected a list of {tracking_number, weight_kg}"
        return []
    parcels = [_parcel_input(fields, item, "parcels") for item in raw]
    return [parcel for parcel in parcels if parcel is not None]


def _shipping_mode(fields: _Fields) -> ShippingMode | None:
    code = fields.text("shipping_mode", default="").strip()
    if not code or "shipping_mode" in fields.errors:
        return None
    mode = db().scalar(select(ShippingMode).where(ShippingMode.code == code[:40]))
    if mode is None:
        fields.errors["shipping_mode"] = f"no shipping mode has the code {code[:40]!r}"
    return mode


@bp.post(f"/orders/{ORDER_ID}/shipments")
def shipment_create(order_id: int) -> ResponseReturnValue:
    """Create a shipment; the same Idempotency-Key answers the first one again (200)."""
    body = _json_body(frozenset({"shipping_mode", "lines", "parcels", "ship"}), optional=True)
    fields = _Fields(body)
    mode = _shipping_mode(fields)
    lines = _chosen_lines(fields)
    parcels = _shipment_parcels(fields)
    ship = fields.flag("ship", default=False)
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > shipments.KEY_MAX_LENGTH or not _is_text(key):
        fields.errors["Idempotency-Key"] = f"at most {shipments.KEY_MAX_LENGTH} characters"
    fields.check()
    order = _locked_order(order_id)
    existing = shipments.shipment_for_key(db(), key)
    # A refusal here is the order's: "cannot ship the order: nothing remains to ship".
    shipment = shipments.create_shipment(
        db(), order, _actor(), lines, parcels, mode, ship=ship, idempotency_key=key
    )
    db().commit()
    return jsonify(_shipment(shipment)), 200 if existing is not None else 201


def _locked_shipment(shipment_id: int) -> Shipment:
    return shipments.lock_shipment(db(), shipment_id)


@bp.post(f"/shipments/{SHIPMENT_ID}/parcels")
def parcel_create(shipment_id: int) -> ResponseReturnValue:
    """Add a parcel to a shipment; the shop is told again once that is built."""
    fields = _Fields(_json_body(frozenset({"tracking_number", "weight_kg"})))
    parcel = _parcel_input(fields, fields.body, "parcel")
    fields.check()
    assert parcel is not None
    shipment = _locked_shipment(shipment_id)
    try:
        shipments.add_parcel(db(), shipment, _actor(), parcel.tracking_number, parcel.weight_kg)
    except InvalidTransition as exc:
        return _shipment_refused(exc)
    db().commit()
    return jsonify(_shipment(shipment)), 201


@bp.post(f"/shipments/{SHIPMENT_ID}/actions/{SHIPMENT_ACTION}")
def shipment_action(shipment_id: int, action: str) -> ResponseReturnValue:
    """Pack, ship, deliver or cancel a shipment."""
    fields = _Fields(_json_body(frozenset({"reason"}), optional=True))
    reason = fields.text("reason", default="")
    fields.check()
    shipment = _locked_shipment(shipment_id)
    try:
        shipments.perform(db(), shipment, action, _actor(), reason=reason)
    except InvalidTransition as exc:
        return _shipment_refused(exc)
    db().commit()
    return jsonify(_shipment(shipment))


# --- Documents: invoices and credit notes ----------------------------------------------------


def _document(document: Document) -> dict[str, Any]:
    """A document as the order lists it: what it is, its number, date and totals."""
    has_pdf = document.state == DocumentState.ISSUED and bool(document.pdf_storage_key)
    return {
        "id": document.id,
        "kind": document.kind.value,
        "reference": document.reference,
        "issue_date": document.issue_date.isoformat() if document.issue_date else None,
        "currency": document.currency,
        "total_net": _money(document.total_net),
        "total_tax": _money(document.total_tax),
        "total_gross": _money(document.total_gross),
        "corrects_id": document.corrects_id,
        "pdf_url": url_for("api.document_pdf", document_id=document.id) if has_pdf else None,
    }


def _money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _listed_document(document: Document) -> dict[str, Any]:
    return {**_document(document), "order_id": document.order_id, "buyer_name": document.buyer_name}


def _document_detail(document: Document) -> dict[str, Any]:
    """The document with its lines: a credit note by lines names them by their id."""
    return {
        **_listed_document(document),
        "reason": document.reason,
        "cancels_invoice": document.cancels_invoice,
        "lines": [_document_line(line) for line in document.lines],
    }


def _document_line(line: DocumentLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "position": line.position,
        "kind": line.kind,
        "order_line_id": line.order_line_id,
        "sku": line.sku,
        "name": line.name,
        "quantity": format(Decimal(line.quantity).normalize(), "f"),
        "unit_price_net": format(Decimal(line.unit_price_net).normalize(), "f"),
        "tax_rate": str(Decimal(line.tax_rate).quantize(Decimal("0.01"))),
        "tax_category": line.tax_category,
        "total_net": str(line.total_net),
        "tax_amount": str(line.tax_amount),
        "total_gross": str(line.total_gross),
    }


def _document_refused(exc: InvalidTransition) -> Response:
    """409: nothing left to invoice or credit, or the company settings lack fields."""
    if isinstance(exc, CompanyIncomplete):
        missing = {name: "missing from the company settings" for name in exc.fields}
        return _error(409, f"cannot {exc.action}: {exc.reason}", reason=exc.reason, fields=missing)
    return _error(409, f"cannot {exc.action}: {exc.reason}", reason=exc.reason)


def _idempotency_key(fields: _Fields) -> str:
    key = request.headers.get("Idempotency-Key", "").strip()
    if len(key) > shipments.KEY_MAX_LENGTH or not _is_text(key):
        fields.errors["Idempotency-Key"] = f"at most {shipments.KEY_MAX_LENGTH} characters"
    return key


def _replayed(
    key: str, kind: DocumentKind, order_id: int, corrects_id: int | None
) -> Document | None:
    """The document an earlier request with this key issued, if it was this same request."""
    if not key:
        return None
    earlier = db().scalar(select(Document).where(Document.idempotency_key == key))
    if earlier is None:
        return None
    if (earlier.kind, earlier.order_id, earlier.corrects_id) != (kind, order_id, corrects_id):
        message = "this key was used for another document request"
        raise ApiError(422, message, fields={"Idempotency-Key": message})
    return earlier


@bp.post(f"/orders/{ORDER_ID}/invoices")
def invoice_create(order_id: int) -> ResponseReturnValue:
    """Invoice what remains of the order, or the lines asked; the same key answers again."""
    fields = _Fields(_json_body(frozenset({"lines"}), optional=True))
    chosen = _chosen_lines(fields)
    if chosen == {} and "lines" not in fields.errors:
        fields.errors["lines"] = "name at least one line, or send no lines to invoice all"
    key = _idempotency_key(fields)
    fields.check()
    order = _locked_order(order_id)
    earlier = _replayed(key, DocumentKind.INVOICE, order.id, None)
    if earlier is not None:
        return jsonify(_document_detail(earlier)), 200
    quantities = None if chosen is None else {k: Decimal(q) for k, q in chosen.items()}
    try:
        invoice = invoices.issue_invoice(
            db(), order, _actor(), quantities, idempotency_key=key or None
        )
    except InvalidTransition as exc:
        return _document_refused(exc)
    db().commit()
    return jsonify(_document_detail(invoice)), 201


@bp.post("/documents/<id:document_id>/credit-notes")
def credit_note_create(document_id: int) -> ResponseReturnValue:
    """Credit an invoice: all that is left (or cancel it), some lines, or an amount."""
    fields = _Fields(_json_body(frozenset({"lines", "amount", "reason", "cancel"})))
    reason = fields.text("reason")
    chosen = _chosen_lines(fields)
    if chosen == {} and "lines" not in fields.errors:
        fields.errors["lines"] = "name at least one line, or send no lines to credit all"
    amount = _credit_amount(fields)
    cancel = fields.flag("cancel", default=False)
    if cancel and (chosen is not None or amount is not None):
        fields.errors["cancel"] = "cancelling an invoice credits all of it: no lines nor amount"
    if chosen is not None and amount is not None:
        fields.errors["amount"] = "credit either lines or an amount, not both"
    key = _idempotency_key(fields)
    fields.check()
    invoice = _locked_invoice(document_id)
    earlier = _replayed(key, DocumentKind.CREDIT_NOTE, invoice.order_id, invoice.id)
    if earlier is not None:
        return jsonify(_document_detail(earlier)), 200
    quantities = None if chosen is None else {k: Decimal(q) for k, q in chosen.items()}
    try:
        credit_note = credit_notes.issue_credit_note(
            db(),
            invoice,
            _actor(),
            lines=quantities,
            amount=amount,
            reason=reason,
            cancels_invoice=cancel,
            idempotency_key=key or None,
        )
    except InvalidTransition as exc:
        return _document_refused(exc)
    db().commit()
    return jsonify(_document_detail(credit_note)), 201


def _credit_amount(fields: _Fields) -> Decimal | None:
    if fields.body.get("amount") is None:
        return None
    value = fields.amount("amount")
    if "amount" in fields.errors:
        return None
    try:
        return payments.parse_amount(value)
    except ValidationFailed as exc:
        fields.errors["amount"] = exc.errors.get("amount", str(exc))
        return None


def _locked_invoice(document_id: int) -> Document:
    """The document to credit, its order locked: two credits of one invoice take turns."""
    document = db().get(Document, document_id)
    if document is None or document.state != DocumentState.ISSUED:
        raise NotFound(f"document {document_id} does not exist")
    _locked_order(document.order_id)
    return document


def _document_filters(
    args: Mapping[str, str], errors: dict[str, str]
) -> tuple[DocumentKind | None, dt.date | None, dt.date | None]:
    kind = None
    if args.get("kind"):
        try:
            kind = DocumentKind(args["kind"])
        except ValueError:
            errors["kind"] = "expected one of " + ", ".join(k.value for k in DocumentKind)
    dates: dict[str, dt.date | None] = {"from": None, "to": None}
    for name in dates:
        text = (args.get(name) or "").strip()
        if not text:
            continue
        try:
            dates[name] = dt.date.fromisoformat(text) if len(text) == 10 else None
        except ValueError:
            pass
        if dates[name] is None:
            errors[name] = f"expected a date YYYY-MM-DD, got {text[:20]!r}"
    return kind, dates["from"], dates["to"]


@bp.get("/documents")
def document_list() -> ResponseReturnValue:
    """Issued documents, oldest first, by kind and issue dates, one page at a time."""
    errors: dict[str, str] = {}
    kind, issued_from, issued_to = _document_filters(request.args, errors)
    page, per_page = _page_arguments(errors)
    if errors:
        details = "; ".join(f"{name}: {message}" for name, message in sorted(errors.items()))
        raise ApiError(400, f"invalid query parameter {details}", fields=errors)
    found = issued.issued_documents(
        db(), kind, issued_from, issued_to, page=page, per_page=per_page
    )
    return jsonify(
        documents=[_listed_document(document) for document in found.items],
        page=page,
        per_page=per_page,
        total=found.total,
        next_page=page + 1 if page < found.pages else None,
    )


def _page_arguments(errors: dict[str, str]) -> tuple[int, int]:
    bounds = {
        "page": (paging.MAX_PAGE, 1),
        "per_page": (order_queries.MAX_PER_PAGE, order_queries.DEFAULT_PER_PAGE),
    }
    values = {}
    for name, (high, default) in bounds.items():
        text = (request.args.get(name) or "").strip()
        value = paging.whole_number(text, 1, high) if text else default
        if value is None:
            errors[name] = f"expected a whole number from 1 to {high}, got {text[:20]!r}"
        values[name] = value or default
    return values["page"], values["per_page"]


@bp.get("/documents/<id:document_id>")
def document_detail(document_id: int) -> ResponseReturnValue:
    document = db().get(Document, document_id)
    if document is None or document.state != DocumentState.ISSUED:
        raise NotFound(f"document {document_id} does not exist")
    return jsonify(_document_detail(document))


@bp.get("/documents/<id:document_id>/pdf")
def document_pdf(document_id: int) -> ResponseReturnValue:
    return documents.stored_pdf_response(issued.document_with_pdf(db(), document_id))


ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


@bp.route("/", defaults={"path": ""}, methods=ANY_METHOD, endpoint="unknown")
@bp.route("/<path:path>", methods=ANY_METHOD, endpoint="unknown")
def unknown(path: str) -> ResponseReturnValue:
    """Answer JSON, not the HTML error page, for a route or method the API does not have."""
    adapter = current_app.create_url_adapter(request)
    assert adapter is not None
    allowed = []
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        try:
            rule, _ = adapter.match(request.path, method=method, return_rule=True)
        except HTTPException:
            continue
        if rule.endpoint != "api.unknown":
            allowed.append(method)
    if allowed:
        raise ApiError(
            405, f"{request.method} is not allowed here", headers={"Allow": ", ".join(allowed)}
        )
    raise ApiError(404, f"no such API route: {request.path}")
