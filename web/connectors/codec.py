"""ShopOrder to JSON and back, so polled orders travel through the inbox like webhooks."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from decimal import Decimal
from typing import Any

from web.connectors.base import (
    BadPayload,
    PaymentSummary,
    ShopAddress,
    ShopCustomer,
    ShopDiscount,
    ShopLine,
    ShopOrder,
    ShopParcel,
    ShopShipment,
    ShopTransaction,
)
from web.models.enums import LineKind, TransactionKind, TransactionStatus


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__}")


def encode_order(order: ShopOrder) -> bytes:
    """Serialize a ShopOrder (amounts as strings, times as ISO 8601 with offset)."""
    return json.dumps(dataclasses.asdict(order), default=_default, ensure_ascii=False).encode()


def _time(value: str | None) -> dt.datetime | None:
    return None if value is None else dt.datetime.fromisoformat(value)


def _summary(data: dict[str, Any]) -> PaymentSummary:
    amounts = ("paid", "refunded", "authorized")
    return PaymentSummary(**{**data, **{name: Decimal(data[name]) for name in amounts}})


def _shipment(data: dict[str, Any]) -> ShopShipment:
    lines = data["lines"]
    return ShopShipment(
        **{
            **data,
            "parcels": tuple(ShopParcel(**parcel) for parcel in data["parcels"]),
            "lines": None if lines is None else tuple((str(r), int(q)) for r, q in lines),
            "shipped_at": _time(data["shipped_at"]),
        }
    )


def decode_order(body: bytes) -> ShopOrder:
    """Read back what encode_order wrote (older bodies lack discounts and needs_shipping)."""
    try:
        data = json.loads(body)
        lines = tuple(
            ShopLine(
                **{
                    **line,
                    "unit_price": Decimal(line["unit_price"]),
                    "tax_rate": Decimal(line["tax_rate"]),
                    "discount_amount": Decimal(line["discount_amount"]),
                    "total_net": Decimal(line["total_net"]),
                    "tax_amount": Decimal(line["tax_amount"]),
                    "total_gross": Decimal(line["total_gross"]),
                    "kind": LineKind(line["kind"]),
                }
            )
            for line in data.pop("lines")
        )
        raw_transactions = data.pop("transactions")
        transactions = (
            None
            if raw_transactions is None
            else tuple(
                ShopTransaction(
                    **{
                        **tx,
                        "kind": TransactionKind(tx["kind"]),
                        "status": TransactionStatus(tx["status"]),
                        "amount": Decimal(tx["amount"]),
                        "occurred_at": dt.datetime.fromisoformat(tx["occurred_at"]),
                    }
                )
                for tx in raw_transactions
            )
        )
        shipping = data.pop("shipping")
        summary = data.pop("payment_summary", None)
        # None: the copy did not say (and bodies encoded before shipments were read).
        raw_shipments = data.pop("shipments", None)
        # Bodies encoded before discounts carried amounts have no "discounts" key.
        discounts = tuple(
            ShopDiscount(**{**item, "amount": Decimal(item["amount"])})
            for item in data.pop("discounts", [])
        )
        money_fields = (
            "grand_total",
            "subtotal",
            "discount_total",
            "shipping_total",
            "shipping_tax",
            "tax_total",
        )
        return ShopOrder(
            **{
                **data,
                **{name: Decimal(data[name]) for name in money_fields},
                "placed_at": dt.datetime.fromisoformat(data["placed_at"]),
                "updated_at": dt.datetime.fromisoformat(data["updated_at"]),
                "cancelled_at": _time(data["cancelled_at"]),
                "customer": ShopCustomer(**data["customer"]),
                "billing": ShopAddress(**data["billing"]),
                "shipping": None if shipping is None else ShopAddress(**shipping),
                "discount_codes": tuple(data["discount_codes"]),
                "discounts": discounts,
                "lines": lines,
                "transactions": transactions,
                "payment_summary": None if summary is None else _summary(summary),
                "shipments": None
                if raw_shipments is None
                else tuple(_shipment(item) for item in raw_shipments),
            }
        )
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        raise BadPayload(f"stored order snapshot is unreadable: {exc}") from exc
