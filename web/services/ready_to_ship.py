"""The orders ready to ship, as a CSV of addresses for label software.

Boxtal, Colissimo ColiShip, MyFlying Box and the like import a file of recipients and map
its columns once: one row per order that is ready to prepare (validated, paid, not on
hold, not shipped) and still has something to ship, with the delivery address, phone,
e-mail, relay point, shipping mode and the number of items left to ship. The file uses
`;` and UTF-8 with a BOM, as Excel in French opens it. Order lines carry no weight, so
the weight column is left empty for the label tool or the packer to fill.
"""

from __future__ import annotations

import codecs
import io
from collections.abc import Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from web.i18n import N_
from web.models import ShippingMode
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import order_state, shipments
from web.services.csvsafe import csv_writer
from web.services.errors import ValidationFailed

HEADER = (
    "order_number", "order_reference", "shop", "shipping_mode", "carrier", "service",
    "relay_point_id", "last_name", "first_name", "company", "address_1", "address_2",
    "postcode", "city", "region", "country_code", "phone", "email", "item_count", "weight_kg",
)  # fmt: skip
BATCH = 200

UNKNOWN_MODE = N_("No shipping mode has this code.")


def mode_by_code(session: Session, code: str) -> ShippingMode | None:
    """The shipping mode a filter names; None for no filter, ValidationFailed if unknown."""
    code = (code or "").strip().lower()
    if not code:
        return None
    mode = session.scalar(select(ShippingMode).where(ShippingMode.code == code))
    if mode is None:
        raise ValidationFailed(UNKNOWN_MODE, {"mode": UNKNOWN_MODE})
    return mode


def ready_orders(session: Session, mode: ShippingMode | None = None) -> Iterator[Order]:
    """The orders ready to prepare with something left to ship, the oldest first."""
    query = (
        select(Order)
        .where(order_state.ready_to_prepare_clause())
        .order_by(Order.placed_at, Order.id)
        .options(
            selectinload(Order.shop),
            selectinload(Order.customer),
            selectinload(Order.shipping_mode),
            selectinload(Order.lines),
            selectinload(Order.shipments).selectinload(Shipment.lines),
        )
        .execution_options(yield_per=BATCH)
    )
    if mode is not None:
        query = query.where(Order.shipping_mode_id == mode.id)
    for order in session.scalars(query):
        if any(shipments.remaining_quantities(order).values()):
            yield order


def _row(order: Order) -> list[Any]:
    delivery = order.shipping_address or order.billing_address or {}
    billing = order.billing_address or {}
    customer = order.customer
    mode = order.shipping_mode
    phone = delivery.get("phone") or billing.get("phone") or (customer.phone if customer else "")
    return [
        order.number,
        order.external_id,
        order.shop.name,
        mode.code if mode else order.shipping_label,
        mode.carrier if mode else "",
        mode.service if mode else "",
        delivery.get("relay_point_id", ""),
        delivery.get("last_name", ""),
        delivery.get("first_name", ""),
        delivery.get("company", ""),
        delivery.get("line1", ""),
        delivery.get("line2", ""),
        delivery.get("postcode", ""),
        delivery.get("city", ""),
        delivery.get("region", ""),
        delivery.get("country_code", ""),
        phone,
        order.email or delivery.get("email", ""),
        sum(shipments.remaining_quantities(order).values()),
        "",  # order lines carry no weight
    ]


def write_ready(out: Any, session: Session, mode: ShippingMode | None = None) -> int:
    """Write the ready-to-ship CSV (header, then one row per order); return the rows."""
    writer = csv_writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)
    count = 0
    for order in ready_orders(session, mode):
        writer.writerow(_row(order))
        count += 1
    return count


def ready_csv(session: Session, mode: ShippingMode | None = None) -> tuple[bytes, int]:
    """The ready-to-ship CSV as UTF-8 bytes with a BOM (so Excel reads the accents)."""
    out = io.StringIO()
    count = write_ready(out, session, mode)
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8"), count
