"""The OpenAPI 3.0 document of /api/v1, written by hand next to the views it describes.

Field names follow `flask orders export --format json` (web/services/export.py) so that
integrators meet one vocabulary; tests/api checks that answers match this document.
"""

from __future__ import annotations

from typing import Any

from web.documents import credit_notes
from web.models.enums import (
    ActorType,
    CommentVisibility,
    CommercialState,
    DocumentKind,
    FulfilmentState,
    LineKind,
    PaymentState,
    ShipmentOrigin,
    ShipmentState,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.services import (
    comments,
    order_actions,
    order_queries,
    order_state,
    paging,
    payments,
    shipments,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _enum(values: Any) -> dict[str, Any]:
    return {"type": "string", "enum": [str(value) for value in values]}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An answer object: every property is always present unless named optional."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING: dict[str, Any] = {"type": "string"}
BOOLEAN: dict[str, Any] = {"type": "boolean"}
INTEGER: dict[str, Any] = {"type": "integer"}
TIMESTAMP: dict[str, Any] = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601, UTC",
    "example": "2026-03-02T10:00:00+00:00",
}
MONEY: dict[str, Any] = {
    "type": "string",
    "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
    "description": "A decimal amount as text, in the currency of its order",
    "example": "12.50",
}
ADDRESS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": True,
    "description": "Address snapshot as the shop sent it (first_name, last_name, company, ...)",
}

ORDER_SUMMARY = _object(
    {
        "id": INTEGER,
        "shop": {**STRING, "description": "The shop's key"},
        "external_id": {**STRING, "description": "The order's id in the shop"},
        "number": {**STRING, "description": "The order number the shop shows"},
        "placed_at": TIMESTAMP,
        "shop_updated_at": TIMESTAMP,
        "currency": {**STRING, "example": "EUR"},
        "email": STRING,
        "customer": {**STRING, "description": "The buyer's name"},
        "commercial_state": _enum(CommercialState),
        "fulfilment_state": _enum(FulfilmentState),
        "payment_state": _enum(PaymentState),
        "on_hold": BOOLEAN,
        "hold_reason": STRING,
        "cancel_reason": STRING,
        "needs_mapping": BOOLEAN,
        "mapping_issue": {
            **STRING,
            "description": "The mapping issues in words, in the token user's language",
        },
        "mapping_issues": {
            "type": "array",
            "description": "What the shop sent that its settings do not map yet",
            "items": _object(
                {
                    "kind": {**STRING, "enum": ["status", "carrier", "payment_method"]},
                    "value": {**STRING, "description": "The shop's code"},
                    "label": {**STRING, "description": "The shop's wording, when it has one"},
                }
            ),
        },
        "shop_status": STRING,
        "payment_method": STRING,
        "grand_total": MONEY,
        "allowed_actions": {
            "type": "array",
            "items": _enum(order_actions.ACTIONS),
            "description": "The actions POST /orders/{order_id}/actions/{action} accepts now",
        },
    }
)

LINE = _object(
    {
        "id": INTEGER,
        "sku": STRING,
        "ean": STRING,
        "name": STRING,
        "options": STRING,
        "kind": _enum(LineKind),
        "quantity": INTEGER,
        "unit_price": {
            **MONEY,
            "description": "One unit before the line's discount, at the shop's precision "
            "(up to six decimals), tax included when the order's prices include it",
            "example": "3.225",
        },
        "tax_rate": {**MONEY, "description": "In percent", "example": "20"},
        "discount_amount": MONEY,
        "total_net": MONEY,
        "tax_amount": MONEY,
        "total_gross": MONEY,
        "needs_shipping": {
            **BOOLEAN,
            "description": "False for virtual, downloadable and gift-card lines",
        },
        "parent_line_id": _nullable(
            {
                **INTEGER,
                "description": "A bundle component: the line it belongs to. Components "
                "carry quantities to pick and no money (it is in the parent's amounts)",
            }
        ),
    }
)

DISCOUNT = _object(
    {
        "code": {**STRING, "description": "The code the buyer typed; empty when automatic"},
        "label": {**STRING, "description": "The shop's name for the discount"},
        "amount": _nullable(
            {
                **MONEY,
                "description": "Tax included; null for orders imported before amounts were kept",
            }
        ),
    }
)

TRANSACTION = _object(
    {
        "id": INTEGER,
        "external_id": _nullable(STRING),
        "kind": _enum(TransactionKind),
        "status": _enum(TransactionStatus),
        "source": _enum(TransactionSource),
        "method": STRING,
        "amount": MONEY,
        "currency": STRING,
        "occurred_at": TIMESTAMP,
        "reference": STRING,
    }
)

PARCEL = _object(
    {
        "id": INTEGER,
        "tracking_number": STRING,
        "tracking_url": STRING,
        "weight_kg": _nullable(MONEY),
    }
)

SHIPMENT = _object(
    {
        "id": INTEGER,
        "order_id": INTEGER,
        "number": {**STRING, "description": "Unique, EXP-{order id}-{n}", "example": "EXP-42-1"},
        "state": _enum(ShipmentState),
        "shipping_mode": _nullable({**STRING, "description": "Shipping mode code"}),
        "origin": {
            **_enum(ShipmentOrigin),
            "description": "comptoir: made here and pushed to the shop; shop: made in the shop",
        },
        "created_at": TIMESTAMP,
        "shipped_at": _nullable(TIMESTAMP),
        "delivered_at": _nullable(TIMESTAMP),
        "cancelled_at": _nullable(TIMESTAMP),
        "cancel_reason": STRING,
        "pushed_at": _nullable(
            {**TIMESTAMP, "description": "When the shop last received it; null until then"}
        ),
        "lines": {
            "type": "array",
            "items": _object(
                {
                    "line_id": {**INTEGER, "description": "The order line (lines[].id)"},
                    "order_line_id": {**INTEGER, "description": "Same as line_id (older name)"},
                    "quantity": {**INTEGER, "minimum": 1},
                }
            ),
        },
        "parcels": {"type": "array", "items": _ref("Parcel")},
        "delivery_note": _nullable(
            _object({"id": INTEGER, "reference": _nullable(STRING)})
            | {"description": "The shipment's delivery note, once issued"}
        ),
    }
)

SHIPMENT_ANSWER: dict[str, Any] = {
    "allOf": [
        _ref("Shipment"),
        _object(
            {
                "allowed_actions": {
                    "type": "array",
                    "items": _enum(shipments.ACTIONS),
                    "description": "What POST /shipments/{shipment_id}/actions/{action} "
                    "accepts now",
                },
                "order": _ref("OrderSummary"),
            }
        ),
    ]
}

DATE: dict[str, Any] = {"type": "string", "format": "date", "example": "2026-03-02"}

DOCUMENT = _object(
    {
        "id": INTEGER,
        "kind": _enum(DocumentKind),
        "reference": _nullable(
            {**STRING, "description": "Its number; null for a draft", "example": "FA-2026-000042"}
        ),
        "issue_date": _nullable({**DATE, "description": "Null for a draft"}),
        "currency": {**STRING, "example": "EUR"},
        "total_net": _nullable({**MONEY, "description": "Excluding VAT (HT)"}),
        "total_tax": _nullable({**MONEY, "description": "The VAT"}),
        "total_gross": _nullable({**MONEY, "description": "Including VAT (TTC)"}),
        "corrects_id": _nullable(
            {**INTEGER, "description": "A credit note: the invoice it credits"}
        ),
        "pdf_url": _nullable(
            {
                **STRING,
                "description": "Where to download the PDF stored at issue (same token)",
                "example": "/api/v1/documents/42/pdf",
            }
        ),
    }
)

LISTED_DOCUMENT: dict[str, Any] = {
    "allOf": [
        _ref("Document"),
        _object(
            {
                "order_id": INTEGER,
                "buyer_name": {**STRING, "description": "The buyer as printed: company or person"},
            }
        ),
    ]
}

DOCUMENT_LINE = _object(
    {
        "id": {**INTEGER, "description": "Name it to credit this line (line_id)"},
        "position": INTEGER,
        "kind": {**STRING, "enum": ["product", "fee", "shipping", "discount", "amount"]},
        "order_line_id": _nullable({**INTEGER, "description": "The order line (lines[].id)"}),
        "sku": STRING,
        "name": STRING,
        "quantity": {**MONEY, "example": "2"},
        "unit_price_net": {**MONEY, "description": "Excluding VAT, before discount"},
        "tax_rate": {**MONEY, "description": "In percent", "example": "20.00"},
        "tax_category": {
            **STRING,
            "enum": ["S", "E", "Z"],
            "description": "EN 16931: S standard, E exempt (VAT franchise), Z zero rate",
        },
        "total_net": {**MONEY, "description": "Negative on a discount line of an invoice"},
        "tax_amount": MONEY,
        "total_gross": MONEY,
    }
)

DOCUMENT_DETAIL: dict[str, Any] = {
    "allOf": [
        _ref("ListedDocument"),
        _object(
            {
                "reason": {**STRING, "description": "A credit note: why, as typed"},
                "cancels_invoice": {
                    **BOOLEAN,
                    "description": "A credit note that cancels its whole invoice",
                },
                "lines": {
                    "type": "array",
                    "items": _ref("DocumentLine"),
                    "description": "A credit note's lines are positive amounts",
                },
            }
        ),
    ]
}

DOCUMENT_PAGE = _object(
    {
        "documents": {"type": "array", "items": _ref("ListedDocument")},
        "page": {**INTEGER, "minimum": 1},
        "per_page": {**INTEGER, "minimum": 1, "maximum": order_queries.MAX_PER_PAGE},
        "total": {**INTEGER, "minimum": 0, "description": "Documents matching the filters"},
        "next_page": _nullable({**INTEGER, "description": "null on the last page"}),
    }
)

CHOSEN_LINES: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 500,
    "items": {
        "type": "object",
        "additionalProperties": False,
        "required": ["line_id", "quantity"],
        "properties": {
            "line_id": {**INTEGER, "minimum": 1, "maximum": paging.MAX_ID},
            "quantity": {**INTEGER, "minimum": 1, "maximum": 100000},
        },
    },
}

INVOICE_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "lines": {
            **CHOSEN_LINES,
            "description": "Part of the order: order lines (lines[].id of the order) and "
            "quantities, each at most what remains to invoice. Default (no body, or no "
            "lines): everything not invoiced yet, shipping and discounts included",
        },
    },
}

COMMENT = _object(
    {
        "id": INTEGER,
        "text": STRING,
        "visibility": _enum(CommentVisibility),
        "notify": {**BOOLEAN, "description": "Whether the shop was asked to notify the buyer"},
        "author": _nullable(STRING),
        "created_at": TIMESTAMP,
        "updated_at": _nullable(TIMESTAMP),
        "pushed_at": _nullable({**TIMESTAMP, "description": "When the shop received it"}),
    }
)

EVENT = _object(
    {
        "id": INTEGER,
        "occurred_at": TIMESTAMP,
        "actor_type": _enum(ActorType),
        "actor": _nullable({**STRING, "description": "The person, for actor_type user"}),
        "kind": {**STRING, "example": "order.validated"},
        "params": {
            "type": "object",
            "additionalProperties": True,
            "description": "What the event carries: amounts (strings) with their currency, "
            "states, labels, reasons as typed; its keys depend on the kind",
        },
        "text": {
            **STRING,
            "description": "The event in words, in the token user's language (else French)",
        },
    }
)

ORDER_DETAIL: dict[str, Any] = {
    "allOf": [
        _ref("OrderSummary"),
        _object(
            {
                "shipping_label": STRING,
                "shipping_mode": _nullable({**STRING, "description": "Shipping mode code"}),
                "subtotal": MONEY,
                "discount_total": MONEY,
                "discount_codes": {"type": "array", "items": {}},
                "discounts": {"type": "array", "items": _ref("Discount")},
                "computed_total": _nullable(
                    {
                        **MONEY,
                        "description": "What the lines, shipping and discounts add up to, "
                        "when that is not grand_total (the order is flagged); null when "
                        "it adds up",
                    }
                ),
                "shipping_total": MONEY,
                "shipping_tax": MONEY,
                "tax_total": MONEY,
                "billing_address": ADDRESS,
                "shipping_address": ADDRESS,
                "buyer_note": STRING,
                "lines": {"type": "array", "items": _ref("Line")},
                "transactions": {"type": "array", "items": _ref("Transaction")},
                "shipments": {"type": "array", "items": _ref("Shipment")},
                "documents": {
                    "type": "array",
                    "items": _ref("Document"),
                    "description": "Its delivery notes, invoices and credit notes, oldest first",
                },
                "comments": {"type": "array", "items": _ref("Comment")},
                "events": {
                    "type": "array",
                    "items": _ref("Event"),
                    "description": "The order's timeline, oldest first",
                },
            }
        ),
    ]
}

ORDER_PAGE = _object(
    {
        "orders": {"type": "array", "items": _ref("OrderSummary")},
        "page": {**INTEGER, "minimum": 1},
        "per_page": {**INTEGER, "minimum": 1, "maximum": order_queries.MAX_PER_PAGE},
        "total": {
            **INTEGER,
            "minimum": 0,
            "maximum": order_queries.COUNT_CAP,
            "description": "Orders matching the filters, counted up to "
            f"{order_queries.COUNT_CAP:,}; past it, total_capped is true",
        },
        "total_capped": {
            "type": "boolean",
            "description": "More orders match than total says: page on until next_page is null",
        },
        "next_page": _nullable({**INTEGER, "description": "null on the last page"}),
        "next_cursor": _nullable(
            {
                **STRING,
                "description": "Pass as after= for the next page (faster than next_page on deep "
                "pages); null on the last page",
            }
        ),
        "prev_cursor": _nullable(
            {**STRING, "description": "Pass as before= for the previous page; null on the first"}
        ),
    }
)

ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {**STRING, "description": "What went wrong, in English"},
        "fields": {
            "type": "object",
            "additionalProperties": STRING,
            "description": "Per field or query parameter: why its value was refused",
        },
        "reason": {**STRING, "description": "Why the order's state refuses the action (409)"},
    },
}

COMMENT_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["text"],
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": comments.TEXT_MAX_LENGTH},
        "visibility": {
            **_enum(CommentVisibility),
            "default": "internal",
            "description": "customer comments are sent to the shop",
        },
        "notify": {
            **BOOLEAN,
            "default": False,
            "description": "Ask the shop to e-mail the buyer (customer comments only)",
        },
    },
}

ACTION_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {
            "type": "string",
            "maxLength": order_state.REASON_MAX_LENGTH,
            "description": "Required by hold and cancel",
        },
        "notify": {
            **BOOLEAN,
            "default": True,
            "description": "Let the shop tell the buyer about the new status",
        },
    },
}

TRANSACTION_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["kind", "source", "amount"],
    "properties": {
        "kind": _enum(payments.MANUAL_KINDS),
        "source": _enum(payments.MANUAL_SOURCES),
        "amount": {
            "description": "Above zero, at most two decimals; text or a JSON number",
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,2})?$", "example": "12.50"},
                {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "maximum": 999999999.99,
                },
            ],
        },
        "occurred_at": {
            "type": "string",
            "description": "YYYY-MM-DD (noon in Paris; now for today) or an ISO 8601 "
            "date-time (UTC when no offset); not in the future, not before 2000; default now",
            "example": "2026-03-02",
        },
        "reference": {"type": "string", "maxLength": payments.REFERENCE_MAX_LENGTH},
    },
}

WEIGHT: dict[str, Any] = {
    "description": "Kilograms, above 0 and up to 1000, to the gram; text or a JSON number",
    "oneOf": [
        {"type": "string", "pattern": r"^[0-9]{1,4}(\.[0-9]{1,3})?$", "example": "1.2"},
        {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 1000},
    ],
}

PARCEL_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "tracking_number": {"type": "string", "maxLength": shipments.TRACKING_MAX_LENGTH},
        "weight_kg": WEIGHT,
    },
    "description": "A tracking number, a weight, or both",
}

SHIPMENT_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "shipping_mode": {
            "type": "string",
            "maxLength": 40,
            "description": "A shipping mode code (GET /shipping-modes); default: the mode the "
            "order's shipping method is mapped to (409 when it is not mapped)",
        },
        "lines": {
            "type": "array",
            "maxItems": 500,
            "description": "What to ship; default: everything that remains. Only product "
            "lines that need shipping and are not bundle components can be chosen",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["line_id", "quantity"],
                "properties": {
                    "line_id": {**INTEGER, "minimum": 1, "maximum": paging.MAX_ID},
                    "quantity": {**INTEGER, "minimum": 1, "maximum": 100000},
                },
            },
        },
        "parcels": {
            "type": "array",
            "maxItems": shipments.MAX_PARCELS,
            "items": _ref("ParcelCreate"),
        },
        "ship": {
            **BOOLEAN,
            "default": False,
            "description": "Ship it now (else it is created as a draft)",
        },
    },
}

SHIPMENT_ACTION_REQUEST: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "reason": {
            "type": "string",
            "maxLength": shipments.REASON_MAX_LENGTH,
            "description": "Why it is cancelled; required to cancel a shipment the shop has",
        },
    },
}

TRANSACTION_CREATED = _object({"transaction": _ref("Transaction"), "order": _ref("OrderSummary")})


CREDIT_NOTE_CREATE: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["reason"],
    "description": "Without lines nor amount: everything left to credit. At most one of "
    "lines, amount and cancel",
    "properties": {
        "reason": {
            "type": "string",
            "minLength": 1,
            "maxLength": credit_notes.REASON_MAX_LENGTH,
            "description": "Why the invoice is credited; printed on the credit note",
        },
        "lines": {
            **CHOSEN_LINES,
            "description": "Part of the invoice: its document lines (lines[].id of the "
            "invoice, not the order's) and quantities; a product's discount follows it",
        },
        "amount": {
            "description": "An amount with tax (a refund), split over the invoice's VAT "
            "rates in proportion to what is left at each; text or a JSON number",
            "oneOf": [
                {"type": "string", "pattern": r"^[0-9]{1,9}(\.[0-9]{1,2})?$", "example": "12.50"},
                {
                    "type": "number",
                    "exclusiveMinimum": True,
                    "minimum": 0,
                    "maximum": 999999999.99,
                },
            ],
        },
        "cancel": {
            **BOOLEAN,
            "default": False,
            "description": "Cancel the invoice: credit all that is left, and free its "
            "quantities for a corrected invoice",
        },
    },
}


def _error(description: str, *, bearer: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if bearer:
        response["headers"] = {
            "WWW-Authenticate": {"schema": STRING, "description": "Bearer challenge"}
        }
    return response


def _answer(description: str, schema: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _errors(*codes: int) -> dict[str, Any]:
    descriptions = {
        400: "Malformed request: a bad query parameter or unreadable JSON",
        401: "Missing, unknown or revoked token",
        403: "The token's role does not allow this",
        404: "No such order, shipment or document",
        409: "The order's or the shipment's current state refuses the action; for a "
        "document, nothing is left to invoice or credit, or the company settings lack "
        "fields (`fields` names them)",
        413: "Body larger than 64 KiB",
        415: "Body not sent as application/json",
        422: "A field was refused; `fields` says which and why",
    }
    return {str(code): _error(descriptions[code], bearer=code == 401) for code in codes}


ORDER_ID = {
    "name": "order_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": paging.MAX_ID},
}


SHIPMENT_ID = {
    "name": "shipment_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1, "maximum": paging.MAX_ID},
}

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "maxLength": shipments.KEY_MAX_LENGTH, "pattern": "^[!-~]+$"},
    "description": "Sent again with a retry, returns the shipment the first request created "
    "(200) instead of creating another (201)",
}


def _idempotency_key(what: str) -> dict[str, Any]:
    return {
        **IDEMPOTENCY_KEY,
        "description": f"Sent again with a retry, returns the {what} the first request "
        "issued (200) instead of issuing another (201); a key used for another request is "
        "a 422",
    }


DOCUMENT_ID = {**ORDER_ID, "name": "document_id"}


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


LIST_PARAMETERS = [
    _query("shop", {"type": "string", "maxLength": 32}, "Shop key; unknown keys are refused"),
    _query(
        "number", {"type": "string", "maxLength": 64}, "Exact order number as the shop shows it"
    ),
    _query("commercial", _enum(CommercialState), "Commercial state"),
    _query("fulfilment", _enum(FulfilmentState), "Fulfilment state"),
    _query("payment", _enum(PaymentState), "Payment state"),
    _query("on_hold", BOOLEAN, "On hold or not"),
    _query("needs_mapping", BOOLEAN, "Waiting for a shop mapping or not"),
    _query("ready", BOOLEAN, "Ready to prepare (validated, paid, not on hold, not shipped)"),
    _query("date_from", {"type": "string", "format": "date"}, "Placed on or after (Paris time)"),
    _query("date_to", {"type": "string", "format": "date"}, "Placed on or before (Paris time)"),
    _query(
        "q",
        {"type": "string", "maxLength": order_queries.MAX_QUERY_LENGTH},
        "Words to find in number, customer, e-mail, company, SKU or tracking number",
    ),
    _query("sort", _enum(order_queries.SORTS), "Sort order; '-' means descending"),
    _query(
        "page", {"type": "integer", "minimum": 1, "maximum": paging.MAX_PAGE, "default": 1}, "Page"
    ),
    _query(
        "per_page",
        {
            "type": "integer",
            "minimum": 1,
            "maximum": order_queries.MAX_PER_PAGE,
            "default": order_queries.DEFAULT_PER_PAGE,
        },
        "Orders per page",
    ),
    _query(
        "after",
        {"type": "string", "maxLength": order_queries.MAX_CURSOR_LENGTH},
        "A next_cursor from a previous answer, with the same filters and sort: the page after "
        "it, found from the sort's index however deep (page ignored)",
    ),
    _query(
        "before",
        {"type": "string", "maxLength": order_queries.MAX_CURSOR_LENGTH},
        "A prev_cursor from a previous answer: the page before it (page ignored)",
    ),
]


def _json_body(schema: str, *, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": _ref(schema)}}}


SHIPPING_MODE_LIST = _object(
    {
        "shipping_modes": {
            "type": "array",
            "description": "The active shipping modes, by name",
            "items": _object(
                {
                    "code": {**STRING, "description": "Stable code", "example": "colissimo"},
                    "name": STRING,
                    "carrier": STRING,
                    "relay": {**BOOLEAN, "description": "Delivered to a relay point"},
                }
            ),
        }
    }
)

PATHS: dict[str, Any] = {
    "/openapi.json": {
        "get": {
            "operationId": "getOpenApi",
            "summary": "This document",
            "security": [],
            "responses": {
                "200": {
                    "description": "OpenAPI document",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
    "/shipping-modes": {
        "get": {
            "operationId": "listShippingModes",
            "summary": "The shipping modes an order can be shipped with",
            "description": "Readable by every role, the warehouse included.",
            "responses": {
                "200": _answer("The active shipping modes", "ShippingModeList"),
                **_errors(401, 403),
            },
        }
    },
    "/documents/{document_id}/pdf": {
        "get": {
            "operationId": "getDocumentPdf",
            "summary": "An issued document's PDF, the bytes stored at issue (same SHA-256)",
            "parameters": [DOCUMENT_ID],
            "responses": {
                "200": {
                    "description": "The PDF",
                    "content": {
                        "application/pdf": {"schema": {"type": "string", "format": "binary"}}
                    },
                },
                **_errors(401, 403),
                "404": _error("No such document, or it has no PDF"),
            },
        }
    },
    "/documents": {
        "get": {
            "operationId": "listDocuments",
            "summary": "Issued documents in the order they were issued, one page at a time",
            "description": "Oldest first: new documents only ever join the end, so a client "
            "paging through never skips one.",
            "parameters": [
                _query("kind", _enum(DocumentKind), "Invoices, credit notes or delivery notes"),
                _query("from", DATE, "Issued on or after"),
                _query("to", DATE, "Issued on or before"),
                _query(
                    "page",
                    {"type": "integer", "minimum": 1, "maximum": paging.MAX_PAGE, "default": 1},
                    "Page",
                ),
                _query(
                    "per_page",
                    {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": order_queries.MAX_PER_PAGE,
                        "default": order_queries.DEFAULT_PER_PAGE,
                    },
                    "Documents per page",
                ),
            ],
            "responses": {
                "200": _answer("One page of documents", "DocumentPage"),
                **_errors(400, 401, 403),
            },
        }
    },
    "/documents/{document_id}": {
        "get": {
            "operationId": "getDocument",
            "summary": "An issued document with its lines",
            "parameters": [DOCUMENT_ID],
            "responses": {
                "200": _answer("The document", "DocumentDetail"),
                **_errors(401, 403, 404),
            },
        }
    },
    "/orders": {
        "get": {
            "operationId": "listOrders",
            "summary": "Orders matching the order desk's filters, one page at a time",
            "parameters": LIST_PARAMETERS,
            "responses": {
                "200": _answer("One page of orders", "OrderPage"),
                **_errors(400, 401, 403),
            },
        }
    },
    "/orders/{order_id}": {
        "get": {
            "operationId": "getOrder",
            "summary": "One order with lines, transactions, shipments, comments and timeline",
            "parameters": [ORDER_ID],
            "responses": {
                "200": _answer("The order", "OrderDetail"),
                **_errors(401, 403, 404),
            },
        }
    },
    "/orders/{order_id}/comments": {
        "post": {
            "operationId": "addComment",
            "summary": "Write a comment; a customer comment is sent to the shop",
            "parameters": [ORDER_ID],
            "requestBody": _json_body("CommentCreate"),
            "responses": {
                "201": _answer("The comment written", "Comment"),
                **_errors(400, 401, 403, 404, 413, 415, 422),
            },
        }
    },
    "/orders/{order_id}/actions/{action}": {
        "post": {
            "operationId": "performAction",
            "summary": "Validate, hold, release, prepare, cancel or close the order",
            "description": "hold and cancel need a reason. The shop is told the resulting "
            "status. The answer lists the actions allowed afterwards.",
            "parameters": [
                ORDER_ID,
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": _enum(order_actions.ACTIONS),
                },
            ],
            "requestBody": _json_body("ActionRequest", required=False),
            "responses": {
                "200": _answer("The order after the action", "OrderSummary"),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
    "/orders/{order_id}/transactions": {
        "post": {
            "operationId": "recordTransaction",
            "summary": "Record a payment or refund received outside the shop",
            "description": "A refund cannot exceed the money received and not yet refunded. "
            "The order's payment state is derived again; a paid order is validated.",
            "parameters": [ORDER_ID],
            "requestBody": _json_body("TransactionCreate"),
            "responses": {
                "201": _answer("The transaction and the order after it", "TransactionCreated"),
                **_errors(400, 401, 403, 404, 413, 415, 422),
            },
        }
    },
    "/orders/{order_id}/shipments": {
        "post": {
            "operationId": "createShipment",
            "summary": "Ship some or all of what remains of the order, in one or more parcels",
            "description": "Each parcel's tracking URL is computed from the shipping mode and "
            "the delivery postcode. More than remains to ship, a cancelled, closed, "
            "unvalidated or held order, or no shipping mode: 409 with the reason.",
            "parameters": [ORDER_ID, IDEMPOTENCY_KEY],
            "requestBody": _json_body("ShipmentCreate", required=False),
            "responses": {
                "201": _answer("The shipment created", "ShipmentAnswer"),
                "200": _answer(
                    "The shipment an earlier request with the same Idempotency-Key created",
                    "ShipmentAnswer",
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
    "/orders/{order_id}/invoices": {
        "post": {
            "operationId": "issueInvoice",
            "summary": "Issue an invoice of what remains to invoice, or of some lines",
            "description": "Numbered in the gapless FA series, frozen and stored as PDF at "
            "once; it can never be changed (a credit note corrects it). The shop's issue "
            "policy governs automatic issuing only. Nothing left to invoice, or company "
            "settings incomplete (`fields` names them): 409. A line not of the order or "
            "more than remains: 422, `fields` per line.",
            "parameters": [ORDER_ID, _idempotency_key("invoice")],
            "requestBody": _json_body("InvoiceCreate", required=False),
            "responses": {
                "201": _answer("The invoice issued", "DocumentDetail"),
                "200": _answer(
                    "The invoice an earlier request with the same Idempotency-Key issued",
                    "DocumentDetail",
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
    "/documents/{document_id}/credit-notes": {
        "post": {
            "operationId": "issueCreditNote",
            "summary": "Issue a credit note of an invoice: in full, by lines, or an amount",
            "description": "Numbered in its own gapless AV series, citing the invoice's "
            "number and date. Never more than is left to credit, per line, per VAT rate and "
            "in total (422 naming what is left). Not an invoice, or nothing left: 409.",
            "parameters": [DOCUMENT_ID, _idempotency_key("credit note")],
            "requestBody": _json_body("CreditNoteCreate"),
            "responses": {
                "201": _answer("The credit note issued", "DocumentDetail"),
                "200": _answer(
                    "The credit note an earlier request with the same Idempotency-Key issued",
                    "DocumentDetail",
                ),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
    "/shipments/{shipment_id}/parcels": {
        "post": {
            "operationId": "addParcel",
            "summary": "Add a parcel (tracking number, weight) to a shipment, shipped or not",
            "parameters": [SHIPMENT_ID],
            "requestBody": _json_body("ParcelCreate"),
            "responses": {
                "201": _answer("The shipment with its new parcel", "ShipmentAnswer"),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
    "/shipments/{shipment_id}/actions/{action}": {
        "post": {
            "operationId": "shipmentAction",
            "summary": "Pack, ship, deliver or cancel a shipment",
            "description": "The order's shipping state follows the shipped quantities. "
            "Cancelling a shipment the shop already has needs a reason.",
            "parameters": [
                SHIPMENT_ID,
                {
                    "name": "action",
                    "in": "path",
                    "required": True,
                    "schema": _enum(shipments.ACTIONS),
                },
            ],
            "requestBody": _json_body("ShipmentActionRequest", required=False),
            "responses": {
                "200": _answer("The shipment after the action", "ShipmentAnswer"),
                **_errors(400, 401, 403, 404, 409, 413, 415, 422),
            },
        }
    },
}


def document() -> dict[str, Any]:
    """Return the OpenAPI document of /api/v1."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Comptoir API",
            "version": "1.0.0",
            "description": "Orders for integrations. Authenticate with "
            "`Authorization: Bearer <token>` (`flask users token --email E`, or Users in the "
            "admin screens). Readers: admin, manager, viewer; writers: admin, manager; "
            "shipments (create, parcels, actions) also warehouse. Invoices and credit notes: "
            "issued by admin and manager tokens, read by the readers. "
            'Every error is JSON `{"error": "..."}`. Money is text, never a float.',
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "cpt_…"}
            },
            "schemas": {
                "Error": ERROR,
                "OrderSummary": ORDER_SUMMARY,
                "OrderDetail": ORDER_DETAIL,
                "OrderPage": ORDER_PAGE,
                "Line": LINE,
                "Discount": DISCOUNT,
                "Transaction": TRANSACTION,
                "Shipment": SHIPMENT,
                "Parcel": PARCEL,
                "Comment": COMMENT,
                "Event": EVENT,
                "CommentCreate": COMMENT_CREATE,
                "ActionRequest": ACTION_REQUEST,
                "TransactionCreate": TRANSACTION_CREATE,
                "TransactionCreated": TRANSACTION_CREATED,
                "ShippingModeList": SHIPPING_MODE_LIST,
                "ShipmentAnswer": SHIPMENT_ANSWER,
                "ShipmentCreate": SHIPMENT_CREATE,
                "ShipmentActionRequest": SHIPMENT_ACTION_REQUEST,
                "ParcelCreate": PARCEL_CREATE,
                "Document": DOCUMENT,
                "ListedDocument": LISTED_DOCUMENT,
                "DocumentDetail": DOCUMENT_DETAIL,
                "DocumentLine": DOCUMENT_LINE,
                "DocumentPage": DOCUMENT_PAGE,
                "InvoiceCreate": INVOICE_CREATE,
                "CreditNoteCreate": CREDIT_NOTE_CREATE,
            },
        },
    }
