"""Orders out as CSV or JSON, with lines, transactions, shipments and parcels."""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from web.connectors.base import price
from web.models import Order, OrderLine, Shipment, Shop, Transaction
from web.models.enums import DocumentKind
from web.services import mapping_issues
from web.services.csvsafe import csv_writer

Translate = Callable[[str], str]

BATCH = 200


# What a writer is told as it goes: how many orders it has written so far.
Progress = Callable[[int], object]


def _orders(
    session: Session, shop_key: str | None, order_ids: Sequence[int] | None = None
) -> Iterator[Order]:
    query = (
        select(Order)
        .order_by(Order.placed_at, Order.id)
        .options(
            selectinload(Order.shop),
            selectinload(Order.customer),
            selectinload(Order.shipping_mode),
            selectinload(Order.lines),
            selectinload(Order.transactions),
            selectinload(Order.shipments).selectinload(Shipment.parcels),
            selectinload(Order.shipments).selectinload(Shipment.lines),
            selectinload(Order.shipments).selectinload(Shipment.shipping_mode),
            selectinload(Order.documents),
        )
        .execution_options(yield_per=BATCH)
    )
    if shop_key:
        query = query.join(Order.shop).where(Shop.key == shop_key)
    if order_ids is None:
        yield from session.scalars(query)
        return
    # A chosen set is read batch by batch (bounded IN lists), the batches cut from the ids
    # sorted as the whole export is, so the output follows the same order as without a choice.
    for batch in _batches(_in_placed_order(session, order_ids)):
        yield from session.scalars(query.where(Order.id.in_(batch)))


def _batches(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _in_placed_order(session: Session, order_ids: Sequence[int]) -> list[int]:
    keys: list[tuple[Any, int]] = []
    unique = list(dict.fromkeys(order_ids))
    for batch in _batches(unique):
        rows = session.execute(select(Order.placed_at, Order.id).where(Order.id.in_(batch)))
        keys.extend((placed_at, order_id) for placed_at, order_id in rows)
    return [order_id for _placed_at, order_id in sorted(keys)]


def _tell(progress: Progress | None, count: int) -> None:
    if progress is not None and count % BATCH == 0:
        progress(count)


def _same(message: str) -> str:
    return message


def when(moment: dt.datetime | None) -> str | None:
    """Write a moment as ISO 8601 in UTC; None stays None."""
    return moment.astimezone(dt.UTC).isoformat() if moment is not None else None


def order_summary(order: Order, gettext: Translate | None = None) -> dict[str, Any]:
    """The order's own fields as plain data: who, when, its states and what it comes to.

    `mapping_issue` is the issues in words, translated by `gettext` when one is given (the
    API, in its user's language); `mapping_issues` holds them as data.
    """
    issues = list(order.mapping_issues or [])
    return {
        "id": order.id,
        "shop": order.shop.key,
        "external_id": order.external_id,
        "number": order.number,
        "placed_at": when(order.placed_at),
        "shop_updated_at": when(order.shop_updated_at),
        "currency": order.currency,
        "email": order.email,
        "customer": order.customer_name,
        "commercial_state": order.commercial_state.value,
        "fulfilment_state": order.fulfilment_state.value,
        "payment_state": order.payment_state.value,
        "on_hold": order.on_hold,
        "hold_reason": order.hold_reason,
        "cancel_reason": order.cancel_reason,
        "needs_mapping": order.needs_mapping,
        "mapping_issue": mapping_issues.describe(issues, gettext or _same),
        "mapping_issues": issues,
        "shop_status": order.shop_status,
        "payment_method": order.payment_method,
        "grand_total": str(order.grand_total),
    }


def transaction_record(tx: Transaction) -> dict[str, Any]:
    """One payment, capture or refund as plain data."""
    return {
        "id": tx.id,
        "external_id": tx.external_id,
        "kind": tx.kind.value,
        "status": tx.status.value,
        "source": tx.source.value,
        "method": tx.method,
        "amount": str(tx.amount),
        "currency": tx.currency,
        "occurred_at": when(tx.occurred_at),
        "reference": tx.reference,
    }


def _line_record(line: OrderLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "sku": line.sku,
        "ean": line.ean,
        "name": line.name,
        "options": line.options,
        "kind": line.kind.value,
        "quantity": line.quantity,
        # At the shop's precision: "3.225", "12.50" (never "12.500000").
        "unit_price": str(price(line.unit_price)),
        # Plain notation: Decimal("20.0000").normalize() alone would print as "2E+1".
        "tax_rate": f"{line.tax_rate.normalize():f}",
        "discount_amount": str(line.discount_amount),
        "total_net": str(line.total_net),
        "tax_amount": str(line.tax_amount),
        "total_gross": str(line.total_gross),
        "needs_shipping": line.needs_shipping,
        # A component of a bundle: the line it belongs to (its money is in that line's).
        "parent_line_id": line.parent_line_id,
    }


def _delivery_note(shipment: Shipment) -> dict[str, Any] | None:
    for document in shipment.order.documents:
        if document.kind == DocumentKind.DELIVERY_NOTE and document.shipment_id == shipment.id:
            return {"id": document.id, "reference": document.reference}
    return None


def shipment_record(shipment: Shipment) -> dict[str, Any]:
    """One shipment as plain data: state, mode, lines, parcels and its delivery note."""
    return {
        "id": shipment.id,
        "order_id": shipment.order_id,
        "number": shipment.number,
        "state": shipment.state.value,
        "shipping_mode": shipment.shipping_mode.code if shipment.shipping_mode else None,
        "origin": shipment.origin.value,
        "created_at": when(shipment.created_at),
        "shipped_at": when(shipment.shipped_at),
        "delivered_at": when(shipment.delivered_at),
        "cancelled_at": when(shipment.cancelled_at),
        "cancel_reason": shipment.cancel_reason,
        "pushed_at": when(shipment.pushed_at),
        # line_id is the name the API takes; order_line_id stays for older readers.
        "lines": [
            {
                "line_id": sl.order_line_id,
                "order_line_id": sl.order_line_id,
                "quantity": sl.quantity,
            }
            for sl in shipment.lines
        ],
        "parcels": [
            {
                "id": parcel.id,
                "tracking_number": parcel.tracking_number,
                "tracking_url": parcel.tracking_url,
                "weight_kg": str(parcel.weight_kg) if parcel.weight_kg else None,
            }
            for parcel in shipment.parcels
        ],
        "delivery_note": _delivery_note(shipment),
    }


def order_record(order: Order, gettext: Translate | None = None) -> dict[str, Any]:
    """One order as plain data with its lines, transactions, shipments and parcels."""
    return {
        **order_summary(order, gettext),
        "shipping_label": order.shipping_label,
        "shipping_mode": order.shipping_mode.code if order.shipping_mode else None,
        "subtotal": str(order.subtotal),
        "discount_total": str(order.discount_total),
        "discount_codes": list(order.discount_codes or []),
        "discounts": [
            {
                "code": item.get("code", ""),
                "label": item.get("label", ""),
                "amount": item.get("amount"),
            }
            for item in order.discounts or []
        ],
        # What lines, shipping and discounts add up to when it is not grand_total.
        "computed_total": None if order.computed_total is None else str(order.computed_total),
        "shipping_total": str(order.shipping_total),
        "shipping_tax": str(order.shipping_tax),
        "tax_total": str(order.tax_total),
        "billing_address": order.billing_address,
        "shipping_address": order.shipping_address,
        "buyer_note": order.buyer_note,
        "lines": [_line_record(line) for line in order.lines],
        "transactions": [transaction_record(tx) for tx in order.transactions],
        "shipments": [shipment_record(shipment) for shipment in order.shipments],
        "documents": [
            {"id": document.id, "kind": document.kind.value, "reference": document.reference}
            for document in order.documents
        ],
    }


def export_json(
    session: Session,
    out: io.TextIOBase | Any,
    shop_key: str | None = None,
    *,
    order_ids: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write a JSON array of orders (all, or only `order_ids`); return how many."""
    count = 0
    out.write("[")
    for order in _orders(session, shop_key, order_ids):
        out.write(",\n" if count else "\n")
        out.write(json.dumps(order_record(order), ensure_ascii=False))
        count += 1
        _tell(progress, count)
    out.write("\n]\n")
    return count


CSV_COLUMNS = (
    "shop",
    "number",
    "external_id",
    "placed_at",
    "currency",
    "customer",
    "email",
    "commercial_state",
    "fulfilment_state",
    "payment_state",
    "payment_method",
    "shipping_mode",
    "grand_total",
    "tax_total",
    "shipping_total",
    "discount_total",
    "line_sku",
    "line_ean",
    "line_name",
    "line_options",
    "line_quantity",
    "line_unit_price",
    "line_tax_rate",
    "line_total_gross",
    "transactions",
    "shipments",
    "tracking_numbers",
)


def _money_list(order: Order) -> str:
    return "; ".join(
        f"{tx.kind.value} {tx.amount} {tx.currency} {tx.status.value}" for tx in order.transactions
    )


def export_csv(
    session: Session,
    out: io.TextIOBase | Any,
    shop_key: str | None = None,
    *,
    order_ids: Sequence[int] | None = None,
    progress: Progress | None = None,
) -> int:
    """Write one CSV row per order line (order columns repeated); return how many orders."""
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for order in _orders(session, shop_key, order_ids):
        record = order_record(order)
        head = [
            record["shop"],
            record["number"],
            record["external_id"],
            record["placed_at"],
            record["currency"],
            record["customer"],
            record["email"],
            record["commercial_state"],
            record["fulfilment_state"],
            record["payment_state"],
            record["payment_method"],
            record["shipping_mode"] or "",
            # Amounts as numbers, so a negative one stays a number in the spreadsheet.
            order.grand_total,
            order.tax_total,
            order.shipping_total,
            order.discount_total,
        ]
        tail = [
            _money_list(order),
            "; ".join(f"{s.number} {s.state.value}" for s in order.shipments),
            "; ".join(p.tracking_number for s in order.shipments for p in s.parcels),
        ]
        if not order.lines:
            writer.writerow(head + [""] * 8 + tail)
        for line in order.lines:
            cells = [
                line.sku,
                line.ean,
                line.name,
                line.options,
                line.quantity,
                price(line.unit_price),
                line.tax_rate.normalize(),
                line.total_gross,
            ]
            writer.writerow(head + cells + tail)
        count += 1
        _tell(progress, count)
    return count
