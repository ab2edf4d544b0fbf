"""Delivery notes (bons de livraison): one per shipment, numbered BL-{year}-NNNNNN.

Issuing is one unit of work in the caller's transaction: take the next number of the year's
series (its row stays locked until commit), freeze a snapshot of what the note says, print
it, store the PDF write-once with its SHA-256, write the document row and the order's event.
A reprint is the stored file, never a new rendering.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.documents import parties
from web.documents.numbering import next_number
from web.documents.render import Renderer, configured_renderer
from web.documents.storage import DocumentStorage, KeyExists, configured, sha256
from web.models import Document, Shipment, utcnow
from web.models.enums import DocumentKind, DocumentState, LineKind, ShipmentState
from web.services.errors import InvalidTransition
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor, record_event

TEMPLATE = "delivery_note.html"
EVENT = "delivery_note.issued"


def find_delivery_note(session: Session, shipment_id: int) -> Document | None:
    """The shipment's delivery note, if one was issued."""
    query = select(Document).where(
        Document.shipment_id == shipment_id, Document.kind == DocumentKind.DELIVERY_NOTE
    )
    return session.scalars(query).first()


def issue_delivery_note(
    session: Session,
    shipment: Shipment,
    actor: Actor,
    with_prices: bool = False,
    *,
    locale: str = "fr",
    storage: DocumentStorage | None = None,
    renderer: Renderer | None = None,
) -> Document:
    """Issue the shipment's delivery note, or return the one it has.

    Never commits: the caller's commit releases the series' lock. `with_prices` adds unit
    prices and amounts (without it, a delivery note shows none).
    """
    session.flush()  # a shipment built in this unit of work gets its id
    # Two issuers of the same shipment: the second waits here, then finds the first's note.
    locked = select(Shipment).where(Shipment.id == shipment.id).with_for_update()
    shipment = session.scalars(locked).one()
    existing = find_delivery_note(session, shipment.id)
    if existing is not None:
        return existing
    if shipment.state == ShipmentState.CANCELLED:
        raise InvalidTransition("issue a delivery note", "the shipment is cancelled")
    storage = storage or configured()
    renderer = renderer or configured_renderer(session)

    issue_date = utcnow().astimezone(DESK_TZ).date()
    number = next_number(session, DocumentKind.DELIVERY_NOTE, issue_date)
    snapshot = delivery_note_snapshot(shipment, number.reference, issue_date, with_prices, locale)
    pdf = renderer.render(TEMPLATE, {"doc": snapshot}, locale)
    digest = sha256(pdf)
    # Named by content: a rolled-back issue leaves a file no row points to, and the next
    # issue under the same number prints other bytes (another date or content), other key.
    key = f"delivery_note/{issue_date.year}/{number.reference}-{digest[:16]}.pdf"
    try:
        storage.put(key, pdf)
    except KeyExists:
        pass  # the same name holds the same bytes: the name carries their hash

    order = shipment.order
    document = Document(
        order=order,
        kind=DocumentKind.DELIVERY_NOTE,
        state=DocumentState.ISSUED,
        series=number.series,
        number=number.number,
        reference=number.reference,
        issue_date=issue_date,
        currency=order.currency,
        snapshot=snapshot,
        pdf_storage_key=key,
        pdf_sha256=digest,
        shipment_id=shipment.id,
        # As on invoices: the documents list filters on it without reading snapshots.
        buyer_name=str(snapshot["buyer"]["name"])[:200],
        issued_at=utcnow(),
        issued_by_id=actor.user_id,
    )
    session.add(document)
    record_event(
        session, order, actor, EVENT, {"reference": number.reference, "shipment": shipment.number}
    )
    session.flush()
    return document


def delivery_note_snapshot(
    shipment: Shipment, reference: str, issue_date: dt.date, with_prices: bool, locale: str
) -> dict[str, Any]:
    """What the note says, as plain JSON data frozen in the document row."""
    order = shipment.order
    mode = shipment.shipping_mode or order.shipping_mode
    billing = order.billing_address or order.shipping_address or {}
    lines = _lines(shipment, with_prices)
    snapshot: dict[str, Any] = {
        "kind": DocumentKind.DELIVERY_NOTE.value,
        "reference": reference,
        "issue_date": issue_date.isoformat(),
        "locale": locale,
        "currency": order.currency,
        "with_prices": with_prices,
        "prices_include_tax": order.prices_include_tax,
        "seller": parties.seller_party(order, locale),
        "buyer": parties.party(billing, locale, email=order.email),
        "delivery": parties.delivery_party(order, locale),
        "order": {
            "number": order.number,
            "placed_on": order.placed_at.astimezone(DESK_TZ).date().isoformat(),
            "marketplace_ref": order.marketplace_ref,
        },
        "shipment": {
            "number": shipment.number,
            "shipped_on": (
                shipment.shipped_at.astimezone(DESK_TZ).date().isoformat()
                if shipment.shipped_at
                else None
            ),
        },
        "shipping_mode": {
            "name": mode.name if mode else order.shipping_label,
            "carrier": mode.carrier if mode else "",
            "service": mode.service if mode else "",
        },
        "parcels": [
            {
                "tracking_number": parcel.tracking_number,
                "tracking_url": parcel.tracking_url,
                "weight_kg": str(parcel.weight_kg) if parcel.weight_kg is not None else None,
            }
            for parcel in shipment.parcels
        ],
        "lines": lines,
    }
    if with_prices:
        snapshot["shipped_total"] = str(sum((Decimal(line["amount"]) for line in lines), Decimal()))
    return snapshot


def _lines(shipment: Shipment, with_prices: bool) -> list[dict[str, Any]]:
    """Each line to ship: ordered, in this shipment, and what remains after it.

    What remains counts this shipment and the order's earlier ones, cancelled ones left out.
    """
    order = shipment.order
    in_this = {line.order_line_id: line.quantity for line in shipment.lines}
    through_this: dict[int, int] = {}
    for other in order.shipments:
        if other.state == ShipmentState.CANCELLED or other.id > shipment.id:
            continue
        for shipped_line in other.lines:
            line_id = shipped_line.order_line_id
            through_this[line_id] = through_this.get(line_id, 0) + shipped_line.quantity
    result = []
    for line in order.lines:
        if line.id not in in_this and not (line.needs_shipping and line.kind == LineKind.PRODUCT):
            continue
        shipped = in_this.get(line.id, 0)
        row: dict[str, Any] = {
            "line_id": line.id,
            "sku": line.sku,
            "ean": line.ean,
            "name": line.name,
            "options": line.options,
            "ordered": line.quantity,
            "shipped": shipped,
            "remaining": max(line.quantity - through_this.get(line.id, 0), 0),
        }
        if with_prices:
            row["unit_price"] = str(line.unit_price)
            row["amount"] = str(line.unit_price * shipped)
        result.append(row)
    return result
