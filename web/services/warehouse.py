"""The warehouse on the phone: the queue by shipping mode, pick lists, bins, packing.

The queue is the orders ready to prepare (`order_state.ready_to_prepare_clause`), oldest
first, narrowed to one shipping mode or to the orders no mode is mapped for. What to pick
and what to pack is what remains to ship (`shipments.remaining_quantities`): a line part of
which left in an earlier shipment asks only for the rest. Packing ends in one unit of work:
the shipment, shipped, of what was scanned (checked again here against what remains) and
its delivery note; the shipments service queues the shop's update. Nothing here commits.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from web.documents import delivery_notes
from web.i18n import N_
from web.models import Document, ShippingMode
from web.models.orders import Order, OrderLine
from web.models.shipping import Shipment, WarehouseBin
from web.services import order_state, paging, shipments
from web.services.errors import ValidationFailed
from web.services.timeline import Actor

NO_MODE = "none"
"""The queue filter for orders whose shipping method is mapped to no mode."""

PER_PAGE = 50
MAX_PICK_ORDERS = 100
LOCATION_MAX_LENGTH = 40
SKU_MAX_LENGTH = 120
MAX_BIN_ROWS = 100_000


# --- The queue -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModeCount:
    """One shipping mode of the queue and how many ready orders wait for it."""

    code: str
    name: str
    count: int


def _ready() -> Select[Order]:
    return select(Order).where(order_state.ready_to_prepare_clause())


def _mode_clause(statement: Select[Order], mode: str | None) -> Select[Order]:
    if not mode:
        return statement
    if mode == NO_MODE:
        return statement.where(Order.shipping_mode_id.is_(None))
    # The mode's id first: the queue's index (ix_orders_warehouse_mode) starts with it.
    mode_id = select(ShippingMode.id).where(ShippingMode.code == mode).scalar_subquery()
    return statement.where(Order.shipping_mode_id == mode_id)


def mode_counts(session: Session) -> list[ModeCount]:
    """The ready orders per shipping mode, the busiest first; orders without one last."""
    rows = session.execute(
        select(ShippingMode.code, ShippingMode.name, func.count(Order.id))
        .select_from(Order)
        .outerjoin(ShippingMode, Order.shipping_mode_id == ShippingMode.id)
        .where(order_state.ready_to_prepare_clause())
        .group_by(ShippingMode.code, ShippingMode.name)
    ).all()
    counts = [ModeCount(code, name, count) for code, name, count in rows if code is not None]
    counts.sort(key=lambda item: (-item.count, item.name))
    unmapped = sum(count for code, _name, count in rows if code is None)
    if unmapped:
        counts.append(ModeCount(NO_MODE, "", unmapped))
    return counts


def queue_page(session: Session, mode: str | None, page: int = 1) -> paging.Page[Order]:
    """One page of the ready orders (of one mode when given), oldest first, lines loaded."""
    statement = _mode_clause(_ready(), mode)
    total = (
        session.scalar(
            select(func.count()).select_from(
                statement.with_only_columns(Order.id).order_by(None).subquery()
            )
        )
        or 0
    )
    page = min(max(page, 1), paging.page_count(total, PER_PAGE))
    items = session.scalars(
        statement.options(
            selectinload(Order.shop), selectinload(Order.lines), selectinload(Order.shipping_mode)
        )
        .order_by(Order.placed_at, Order.id)
        .limit(PER_PAGE)
        .offset((page - 1) * PER_PAGE)
    ).all()
    return paging.Page(list(items), total, page, PER_PAGE)


def next_order(session: Session, mode: str | None, after: int | None = None) -> Order | None:
    """The oldest ready order of the queue (of the mode when given), other than `after`."""
    statement = _mode_clause(_ready(), mode)
    if after is not None:
        statement = statement.where(Order.id != after)
    return session.scalars(statement.order_by(Order.placed_at, Order.id).limit(1)).first()


# --- Bins ------------------------------------------------------------------------------------


def bins_for(session: Session, skus: Iterable[str]) -> dict[str, str]:
    """Where each of these SKUs is kept, for those a bin is known of."""
    wanted = sorted({sku for sku in skus if sku})
    if not wanted:
        return {}
    rows = session.execute(
        select(WarehouseBin.sku, WarehouseBin.location).where(WarehouseBin.sku.in_(wanted))
    )
    return {sku: location for sku, location in rows}


@dataclass
class BinImport:
    """What a bins file changed, and the rows it refused with their reason."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # Excel's "CSV" on a French Windows


def _dialect(text: str) -> str:
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {separator: first.count(separator) for separator in (";", ",", "\t")}
    return max(counts, key=lambda separator: counts[separator]) if any(counts.values()) else ";"


def _cell(value: str) -> str:
    text = value.strip()
    # A cell Comptoir wrote (web/services/csvsafe.py) may carry the quote that kept a formula
    # from running: the value is what follows it.
    if text.startswith("'") and len(text) > 1 and text[1] in "=+-@":
        text = text[1:]
    return text


def read_bins(data: bytes) -> list[tuple[int, str, str]]:
    """The (line number, SKU, location) rows of a bins CSV; a header row is skipped.

    `;`, `,` or tab separated, UTF-8 (with or without BOM) or Windows-1252, blank lines
    ignored.
    """
    text = _decode(data)
    rows = []
    reader = csv.reader(io.StringIO(text), delimiter=_dialect(text))
    for number, row in enumerate(reader, start=1):
        cells = [_cell(cell) for cell in row]
        if not any(cells):
            continue
        if number == 1 and [c.lower() for c in cells[:2]] in (["sku", "location"], ["sku", "bin"]):
            continue
        rows.append((number, cells[0] if cells else "", cells[1] if len(cells) > 1 else ""))
        if len(rows) > MAX_BIN_ROWS:
            raise ValidationFailed(N_("The file holds too many rows."))
    return rows


def import_bins(session: Session, rows: Sequence[tuple[int, str, str]]) -> BinImport:
    """Set each SKU's bin; an empty location forgets it. The same file twice changes nothing."""
    result = BinImport()
    known = {b.sku: b for b in session.scalars(select(WarehouseBin))}
    for number, sku, location in rows:
        if not sku:
            result.refused.append((number, "no SKU"))
            continue
        if len(sku) > SKU_MAX_LENGTH:
            result.refused.append((number, f"SKU over {SKU_MAX_LENGTH} characters"))
            continue
        if len(location) > LOCATION_MAX_LENGTH:
            result.refused.append((number, f"location over {LOCATION_MAX_LENGTH} characters"))
            continue
        current = known.get(sku)
        if not location:
            if current is not None:
                session.delete(current)
                del known[sku]
                result.updated += 1
            else:
                result.unchanged += 1
            continue
        if current is None:
            known[sku] = WarehouseBin(sku=sku, location=location)
            session.add(known[sku])
            result.created += 1
        elif current.location != location:
            current.location = location
            result.updated += 1
        else:
            result.unchanged += 1
    session.flush()
    return result


# --- Pick lists ------------------------------------------------------------------------------


@dataclass
class PickRow:
    """One SKU to pick: how many in all, where, and for which orders (number, quantity)."""

    sku: str
    name: str
    ean: str
    location: str | None
    quantity: int = 0
    orders: list[tuple[str, int]] = field(default_factory=list)


def _components(order: Order) -> dict[int, list[OrderLine]]:
    children: dict[int, list[OrderLine]] = {}
    for line in order.lines:
        if line.parent_line_id is not None:
            children.setdefault(line.parent_line_id, []).append(line)
    return children


def _to_pick(order: Order) -> list[tuple[OrderLine, int]]:
    """What remains to ship of the order, as the lines to take from the shelves.

    A bundle is picked as its components, in the share of the bundle that remains.
    """
    remaining = shipments.remaining_quantities(order)
    children = _components(order)
    picked = []
    for line in shipments.shippable_lines(order):
        left = remaining.get(line.id, 0)
        if left <= 0:
            continue
        parts = children.get(line.id)
        if not parts:
            picked.append((line, left))
            continue
        for part in parts:
            # Ceiling: a component quantity that does not divide evenly is picked in full.
            picked.append((part, -(-part.quantity * left // line.quantity)))
    return picked


def orders_to_pick(session: Session, order_ids: Sequence[int]) -> list[Order]:
    """The orders of these ids ready to prepare that something remains to ship of, oldest first.

    One held, cancelled or not yet paid since it was ticked is left out.
    """
    ids = list(dict.fromkeys(order_ids))[:MAX_PICK_ORDERS]
    if not ids:
        return []
    found = session.scalars(
        _ready()
        .where(Order.id.in_(ids))
        .options(selectinload(Order.lines), selectinload(Order.shipments))
        .order_by(Order.placed_at, Order.id)
    ).all()
    return [order for order in found if any(shipments.remaining_quantities(order).values())]


def pick_list(session: Session, orders: Sequence[Order]) -> list[PickRow]:
    """The SKUs to pick for these orders, grouped, in the order of their bins.

    SKUs with a known bin come first, by bin, so one walk through the aisles picks them;
    the others follow by SKU. A line without SKU is grouped by its name.
    """
    rows: dict[tuple[str, str], PickRow] = {}
    for order in orders:
        for line, quantity in _to_pick(order):
            key = (line.sku, "") if line.sku else ("", line.name)
            row = rows.get(key)
            if row is None:
                row = rows[key] = PickRow(line.sku, line.name, line.ean, None)
            row.quantity += quantity
            row.ean = row.ean or line.ean
            if row.orders and row.orders[-1][0] == order.number:
                row.orders[-1] = (order.number, row.orders[-1][1] + quantity)
            else:
                row.orders.append((order.number, quantity))
    bins = bins_for(session, (row.sku for row in rows.values()))
    for row in rows.values():
        row.location = bins.get(row.sku)
    return sorted(
        rows.values(),
        key=lambda row: (row.location is None, row.location or "", row.sku, row.name),
    )


# --- Packing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PackLine:
    """One line of the order to pack: what identifies it at the scanner, and how many."""

    line_id: int
    sku: str
    ean: str
    name: str
    options: str
    quantity: int
    location: str | None


def pack_lines(session: Session, order: Order) -> list[PackLine]:
    """The order's lines with what remains of each to pack, in the order's own order."""
    remaining = shipments.remaining_quantities(order)
    lines = [line for line in shipments.shippable_lines(order) if remaining.get(line.id, 0) > 0]
    bins = bins_for(session, (line.sku for line in lines))
    return [
        PackLine(
            line.id,
            line.sku,
            line.ean,
            line.name,
            line.options,
            remaining[line.id],
            bins.get(line.sku),
        )
        for line in lines
    ]


@dataclass(frozen=True)
class Packed:
    """A confirmed pack: its shipment, its delivery note, and whether this request made them."""

    shipment: Shipment
    delivery_note: Document
    created: bool


def confirm_pack(
    session: Session,
    order: Order,
    actor: Actor,
    quantities: Mapping[int, int],
    parcels: Sequence[shipments.ParcelInput],
    shipping_mode: ShippingMode | None,
    idempotency_key: str,
    *,
    locale: str = "fr",
) -> Packed:
    """Ship what was scanned and issue the delivery note, once per idempotency key.

    The quantities are checked against what remains to ship like any other shipment's
    (InvalidTransition beyond it), so a page that counted wrong, or twice, ships nothing
    more. The same key answers the shipment it made, with its note, whatever else is sent.
    """
    key = idempotency_key.strip()
    if not key:
        raise ValidationFailed(
            N_("The page sent no idempotency key."), {"key": N_("The page sent no key.")}
        )
    earlier = shipments.shipment_for_key(session, key)
    shipment = shipments.create_shipment(
        session,
        order,
        actor,
        dict(quantities),
        parcels,
        shipping_mode,
        ship=True,
        idempotency_key=key,
    )
    note = delivery_notes.issue_delivery_note(session, shipment, actor, locale=locale)
    return Packed(shipment, note, created=earlier is None)


def missing_item(line: OrderLine, comment: str) -> str:
    """The missing item as the hold reason names it: SKU, name, and the packer's comment."""
    item = f"{line.sku} — {line.name}" if line.sku else line.name
    comment = " ".join(comment.split())[:200]
    return item + (f" ({comment})" if comment else "")
