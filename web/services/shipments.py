"""Shipments: what leaves the warehouse, in which parcels, and how the order follows.

What ships: the order's own product lines that need shipping. A bundle ships as its parent
line (its components, `parent_line_id` set, are what the warehouse picks for it, not
separate items to count), and lines that need no shipping (virtual, downloadable, gift
cards) or that are not goods (fees, gift wrapping) never wait for a shipment.

What remains of a line is its ordered quantity less what non-cancelled shipments (draft,
packed, shipped, delivered) already hold. The line model records no cancelled or refunded
quantity of its own: a shop's edit rewrites the ordered quantities while the order is
untouched, and a refund is money (transactions), so the ordered quantity is the one to
count down from.

States: draft → packed → shipped → delivered, and cancelled. A shipped shipment may be
cancelled while nothing was pushed to the shop, or later with a reason. After each change
the order's fulfilment state is derived from the shipped quantities (partially shipped,
shipped, delivered once every shipped shipment is delivered) through `order_state`.

Telling the shop: a change the shop must learn (shipped, cancelled after leaving, a tracking
number added or corrected) empties `pushed_at` and queues an outbox "shipment" message, then
the order's milestone; the outbox reads the shipment when it sends, and sets `pushed_at` and
the shop's ids. Shipments made in the shop (`origin` shop) arrive through intake
(`record_shop_shipments`) and are never sent back. Every function mutates and leaves the
commit to the caller.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.connectors.base import ShopShipment
from web.i18n import N_
from web.models import ShippingMode
from web.models.base import utcnow
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    LineKind,
    ShipmentOrigin,
    ShipmentState,
)
from web.models.orders import Order, OrderLine
from web.models.shipping import Parcel, Shipment, ShipmentLine
from web.services import invoicing, order_state, outbox
from web.services.errors import InvalidTransition, NotFound, ValidationFailed
from web.services.timeline import Actor, record_event

ACTIVE_STATES = frozenset(
    {ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED, ShipmentState.DELIVERED}
)
SENT_STATES = frozenset({ShipmentState.SHIPPED, ShipmentState.DELIVERED})
ACTIONS = ("pack", "ship", "deliver", "cancel")

TRACKING_MAX_LENGTH = 80
REASON_MAX_LENGTH = 500
KEY_MAX_LENGTH = 120
MAX_WEIGHT_KG = Decimal("1000")
MAX_PARCELS = 50

NUMBER_PREFIX = "EXP"


@dataclass(frozen=True)
class ParcelInput:
    """One parcel as typed or sent: its tracking number and weight, both optional."""

    tracking_number: str = ""
    weight_kg: Decimal | str | int | None = None


# --- Quantities ------------------------------------------------------------------------------


def is_shippable(line: OrderLine) -> bool:
    """Tell whether the line is counted and shipped on its own."""
    return line.needs_shipping and line.parent_line_id is None and line.kind == LineKind.PRODUCT


def shippable_lines(order: Order) -> list[OrderLine]:
    """The order's lines that shipments count, in the order's own order."""
    return [line for line in order.lines if is_shippable(line)]


def _quantities(order: Order, states: frozenset[ShipmentState]) -> dict[int, int]:
    totals = {line.id: 0 for line in shippable_lines(order)}
    for shipment in order.shipments:
        if shipment.state not in states:
            continue
        for item in shipment.lines:
            totals[item.order_line_id] = totals.get(item.order_line_id, 0) + item.quantity
    return totals


def shipped_quantities(order: Order) -> dict[int, int]:
    """Per shippable line, the quantity in shipments that left (shipped or delivered)."""
    return _quantities(order, SENT_STATES)


def remaining_quantities(order: Order) -> dict[int, int]:
    """Per shippable line, what no non-cancelled shipment holds yet (never below zero)."""
    held = _quantities(order, ACTIVE_STATES)
    return {
        line.id: max(line.quantity - held.get(line.id, 0), 0) for line in shippable_lines(order)
    }


def fulfilment_from_quantities(order: Order) -> FulfilmentState | None:
    """The fulfilment state the shipped quantities mean; None for "nothing shipped".

    Nothing shipped leaves the choice between unfulfilled and in preparation to the
    preparation action.
    """
    lines = shippable_lines(order)
    shipped = shipped_quantities(order)
    if not lines or not any(shipped.values()):
        return None
    if any(shipped[line.id] < line.quantity for line in lines):
        return FulfilmentState.PARTIALLY_SHIPPED
    sent = [s for s in order.shipments if s.state in SENT_STATES and s.lines]
    if all(s.state == ShipmentState.DELIVERED for s in sent):
        return FulfilmentState.DELIVERED
    return FulfilmentState.SHIPPED


def _follow_fulfilment(session: Session, order: Order, actor: Actor) -> None:
    session.flush()
    target = fulfilment_from_quantities(order)
    if target is None:
        if order.fulfilment_state in order_state.ANY_SHIPPED_STATES:
            order_state.withdraw_fulfilment(session, order, actor, FulfilmentState.IN_PREPARATION)
        return
    if order_state.FULFILMENT_RANK[target] < order_state.FULFILMENT_RANK[order.fulfilment_state]:
        order_state.withdraw_fulfilment(session, order, actor, target)
        return
    # Forward one move at a time: an order shipped in full goes through "shipped" before
    # "delivered", each move with its event.
    if target == FulfilmentState.DELIVERED and order.fulfilment_state != FulfilmentState.SHIPPED:
        order_state.apply_fulfilment(session, order, actor, FulfilmentState.SHIPPED)
    order_state.apply_fulfilment(session, order, actor, target)


def _shop_must_learn(session: Session, shipment: Shipment, actor: Actor) -> None:
    """Queue the shipment for its shop, then the order's milestone (in that order)."""
    if shipment.origin == ShipmentOrigin.SHOP:
        return
    shipment.pushed_at = None
    outbox.queue_shipment(session, shipment)
    outbox.queue_milestone(session, shipment.order, actor)


# --- Refusals --------------------------------------------------------------------------------


def order_refusal(order: Order) -> str | None:
    if order.commercial_state == CommercialState.CANCELLED:
        return N_("the order is cancelled")
    if order.commercial_state == CommercialState.CLOSED:
        return N_("the order is closed")
    if order.commercial_state == CommercialState.NEW:
        return N_("the order is not validated yet")
    if order.on_hold:
        return N_("the order is on hold")
    return None


def _ensure_order_allows(action: str, order: Order) -> None:
    reason = order_refusal(order)
    if reason is not None:
        raise InvalidTransition(action, reason)


def _refuse(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, {field: message})


def _clean_tracking(value: str, field: str = "tracking_number") -> str:
    text = " ".join(str(value or "").split())
    if len(text) > TRACKING_MAX_LENGTH:
        raise _refuse(field, N_("Keep a tracking number under 80 characters."))
    return text


def _clean_weight(
    value: Decimal | str | int | float | None, field: str = "weight_kg"
) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool | float):
        raise _refuse(field, N_("Give the weight in kilograms, such as 1.25."))
    try:
        weight = Decimal(str(value).strip().replace(",", "."))
    except (InvalidOperation, ValueError):
        raise _refuse(field, N_("Give the weight in kilograms, such as 1.25.")) from None
    if not weight.is_finite() or weight <= 0 or weight > MAX_WEIGHT_KG:
        raise _refuse(field, N_("Give a weight above 0 and up to 1000 kg."))
    if weight != weight.quantize(Decimal("0.001")):
        raise _refuse(field, N_("Give the weight to the gram at most (three decimals)."))
    return weight.quantize(Decimal("0.001"))


def _clean_reason(reason: str, *, required: bool) -> str:
    cleaned = (reason or "").strip()
    if required and not cleaned:
        raise _refuse("reason", N_("Say why the shipment is cancelled: the shop already has it."))
    if len(cleaned) > REASON_MAX_LENGTH:
        raise _refuse("reason", N_("Keep the reason under 500 characters."))
    return cleaned


# --- Creating --------------------------------------------------------------------------------


def shipment_for_key(session: Session, key: str) -> Shipment | None:
    """The shipment an earlier request with this idempotency key created, if any."""
    if not key:
        return None
    return session.scalar(select(Shipment).where(Shipment.idempotency_key == key))


def _mode_for(order: Order, shipping_mode: ShippingMode | None) -> ShippingMode:
    if shipping_mode is not None:
        if not shipping_mode.is_active and shipping_mode.id != order.shipping_mode_id:
            raise _refuse("shipping_mode", N_("This shipping mode is switched off."))
        return shipping_mode
    if order.shipping_mode is None:
        if order.shipping_label:
            raise InvalidTransition(
                "ship", N_("the order's shipping method is not mapped to a shipping mode")
            )
        raise InvalidTransition("ship", N_("the order has no shipping mode: choose one"))
    return order.shipping_mode


def _chosen_quantities(
    order: Order, lines: Mapping[int, int] | None, remaining: Mapping[int, int]
) -> dict[int, int]:
    if lines is None:
        chosen = {line_id: quantity for line_id, quantity in remaining.items() if quantity > 0}
        if not chosen:
            raise InvalidTransition("ship", N_("nothing remains to ship"))
        return chosen
    known = {line.id: line for line in order.lines}
    chosen = {}
    for line_id, quantity in lines.items():
        line = known.get(line_id)
        if line is None:
            raise _refuse("lines", N_("A line does not belong to this order."))
        if not is_shippable(line):
            raise _refuse("lines", N_("A line that needs no shipping of its own was chosen."))
        if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 0:
            raise _refuse("lines", N_("Give each quantity as a whole number, 0 or more."))
        if quantity > remaining.get(line_id, 0):
            raise InvalidTransition("ship", N_("more is asked than remains to ship"))
        if quantity:
            chosen[line_id] = quantity
    if not chosen:
        raise _refuse("lines", N_("Choose at least one item to ship."))
    return chosen


def _clean_parcels(parcels: Sequence[ParcelInput]) -> list[tuple[str, Decimal | None]]:
    if len(parcels) > MAX_PARCELS:
        raise _refuse("parcels", N_("A shipment holds at most 50 parcels."))
    cleaned = []
    for parcel in parcels:
        tracking = _clean_tracking(parcel.tracking_number)
        weight = _clean_weight(parcel.weight_kg)
        if tracking or weight is not None:
            cleaned.append((tracking, weight))
    return cleaned


def _postcode(order: Order) -> str:
    address = order.shipping_address or order.billing_address or {}
    return str(address.get("postcode") or "")


def _parcel(shipment: Shipment, order: Order, tracking: str, weight: Decimal | None) -> Parcel:
    mode = shipment.shipping_mode
    url = mode.tracking_url(tracking, _postcode(order)) if mode and tracking else ""
    return Parcel(tracking_number=tracking, weight_kg=weight, tracking_url=url[:500])


def _next_number(order: Order) -> str:
    # Cancelled shipments keep their numbers: a number is never given twice.
    return f"{NUMBER_PREFIX}-{order.id}-{len(order.shipments) + 1}"


def create_shipment(
    session: Session,
    order: Order,
    actor: Actor,
    lines: Mapping[int, int] | None = None,
    parcels: Sequence[ParcelInput] = (),
    shipping_mode: ShippingMode | None = None,
    *,
    ship: bool = False,
    idempotency_key: str | None = None,
) -> Shipment:
    """Create a shipment of the chosen quantities (all that remains when None), shipped or not.

    Raises InvalidTransition when the order refuses it (cancelled, closed, not validated,
    on hold), when more is asked than remains, or when no shipping mode is given and the
    order's is not mapped; ValidationFailed for input that makes no sense. The same
    idempotency key returns the shipment it created, whatever else is sent.
    """
    key = (idempotency_key or "").strip()
    if len(key) > KEY_MAX_LENGTH:
        raise _refuse("idempotency_key", N_("Keep the idempotency key under 120 characters."))
    existing = shipment_for_key(session, key)
    if existing is not None:
        if existing.order_id != order.id:
            raise _refuse("idempotency_key", N_("This idempotency key was used for another order."))
        return existing
    _ensure_order_allows("ship", order)
    mode = _mode_for(order, shipping_mode)
    chosen = _chosen_quantities(order, lines, remaining_quantities(order))
    cleaned = _clean_parcels(parcels)
    shipment = Shipment(
        order=order,
        number=_next_number(order),
        state=ShipmentState.DRAFT,
        shipping_mode=mode,
        created_by_id=actor.user_id,
        idempotency_key=key or None,
    )
    shipment.lines = [
        ShipmentLine(order_line_id=line_id, quantity=quantity)
        for line_id, quantity in chosen.items()
    ]
    shipment.parcels = [_parcel(shipment, order, tracking, weight) for tracking, weight in cleaned]
    session.add(shipment)
    session.flush()
    if order.fulfilment_state == FulfilmentState.UNFULFILLED:
        # The warehouse now holds these lines: a shop's edit must no longer rewrite them
        # (intake applies edits to unfulfilled orders only, else asks for a review).
        order.fulfilment_state = FulfilmentState.IN_PREPARATION
        record_event(session, order, actor, "order.preparation_started")
    record_event(
        session,
        order,
        actor,
        "shipment.created",
        {
            "shipment": shipment.number,
            "shipment_id": shipment.id,
            "items": sum(chosen.values()),
            "carrier": mode.name,
        },
    )
    if ship:
        ship_shipment(session, shipment, actor)
    return shipment


def ship_everything(
    session: Session,
    order: Order,
    actor: Actor,
    tracking_number: str | None = None,
    weight: Decimal | str | None = None,
    *,
    idempotency_key: str | None = None,
) -> Shipment:
    """Ship everything that remains in one parcel with the order's own shipping mode."""
    parcel = ParcelInput(tracking_number or "", weight)
    return create_shipment(
        session, order, actor, None, [parcel], ship=True, idempotency_key=idempotency_key
    )


# --- Moving a shipment -----------------------------------------------------------------------


def _ensure_state(action: str, shipment: Shipment, allowed: Iterable[ShipmentState]) -> None:
    if shipment.state in allowed:
        return
    reasons = {
        ShipmentState.DRAFT: N_("the shipment is not shipped yet"),
        ShipmentState.PACKED: N_("the shipment is already packed"),
        ShipmentState.SHIPPED: N_("the shipment is already shipped"),
        ShipmentState.DELIVERED: N_("the shipment is already delivered"),
        ShipmentState.CANCELLED: N_("the shipment is cancelled"),
    }
    raise InvalidTransition(action, reasons[shipment.state])


def _event(session: Session, shipment: Shipment, actor: Actor, kind: str, **params: object) -> None:
    details = {"shipment": shipment.number, "shipment_id": shipment.id, **params}
    record_event(session, shipment.order, actor, kind, details)


def pack(session: Session, shipment: Shipment, actor: Actor) -> None:
    """Mark a draft shipment as packed."""
    _ensure_state("pack", shipment, {ShipmentState.DRAFT})
    _ensure_order_allows("pack", shipment.order)
    shipment.state = ShipmentState.PACKED
    _event(session, shipment, actor, "shipment.packed")


def ship_shipment(session: Session, shipment: Shipment, actor: Actor) -> None:
    """Hand the shipment to the carrier; the order's fulfilment state follows."""
    _ensure_state("ship", shipment, {ShipmentState.DRAFT, ShipmentState.PACKED})
    _ensure_order_allows("ship", shipment.order)
    shipment.state = ShipmentState.SHIPPED
    shipment.shipped_at = utcnow()
    mode = shipment.shipping_mode
    _event(
        session,
        shipment,
        actor,
        "shipment.shipped",
        carrier=mode.name if mode else "",
        tracking=[p.tracking_number for p in shipment.parcels if p.tracking_number],
    )
    _follow_fulfilment(session, shipment.order, actor)
    _shop_must_learn(session, shipment, actor)
    invoicing.queue_when_shipped(session, shipment)


def deliver(session: Session, shipment: Shipment, actor: Actor) -> None:
    """Record that the buyer received the shipment."""
    _ensure_state("deliver", shipment, {ShipmentState.SHIPPED})
    if shipment.order.commercial_state == CommercialState.CANCELLED:
        raise InvalidTransition("deliver", N_("the order is cancelled"))
    shipment.state = ShipmentState.DELIVERED
    shipment.delivered_at = utcnow()
    _event(session, shipment, actor, "shipment.delivered")
    _follow_fulfilment(session, shipment.order, actor)
    outbox.queue_milestone(session, shipment.order, actor)


def cancel(session: Session, shipment: Shipment, actor: Actor, reason: str = "") -> None:
    """Cancel a shipment; one the shop already knows needs a reason."""
    allowed = {ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED}
    _ensure_state("cancel", shipment, allowed)
    was = shipment.state
    reason = _clean_reason(reason, required=shipment.pushed_at is not None)
    shipment.state = ShipmentState.CANCELLED
    shipment.cancelled_at = utcnow()
    shipment.cancel_reason = reason
    _event(session, shipment, actor, "shipment.cancelled", reason=reason, was=was.value)
    if was == ShipmentState.SHIPPED:
        _follow_fulfilment(session, shipment.order, actor)
        _shop_must_learn(session, shipment, actor)


def deliver_order(session: Session, order: Order, actor: Actor) -> int:
    """Mark every shipped shipment of the order delivered; return how many."""
    on_their_way = [s for s in order.shipments if s.state == ShipmentState.SHIPPED]
    if not on_their_way:
        raise InvalidTransition("deliver", N_("no shipment of the order is on its way"))
    for shipment in on_their_way:
        deliver(session, shipment, actor)
    return len(on_their_way)


def perform(
    session: Session, shipment: Shipment, action: str, actor: Actor, *, reason: str = ""
) -> None:
    """Run one action by name (pack, ship, deliver, cancel) on the shipment."""
    if action == "pack":
        pack(session, shipment, actor)
    elif action == "ship":
        ship_shipment(session, shipment, actor)
    elif action == "deliver":
        deliver(session, shipment, actor)
    elif action == "cancel":
        cancel(session, shipment, actor, reason)
    else:
        raise _refuse("action", N_("Unknown shipment action."))


def allowed_actions(shipment: Shipment) -> set[str]:
    """The actions the shipment allows right now."""
    order_ok = order_refusal(shipment.order) is None
    state = shipment.state
    allowed = set()
    if state == ShipmentState.DRAFT and order_ok:
        allowed.add("pack")
    if state in (ShipmentState.DRAFT, ShipmentState.PACKED) and order_ok:
        allowed.add("ship")
    if (
        state == ShipmentState.SHIPPED
        and shipment.order.commercial_state != CommercialState.CANCELLED
    ):
        allowed.add("deliver")
    if state in (ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED):
        allowed.add("cancel")
    return allowed


# --- Parcels and tracking --------------------------------------------------------------------


def add_parcel(
    session: Session,
    shipment: Shipment,
    actor: Actor,
    tracking_number: str = "",
    weight_kg: Decimal | str | int | None = None,
) -> Parcel:
    """Add a parcel (a tracking number, a weight) to a shipment, shipped or not."""
    _ensure_state(
        "add_parcel",
        shipment,
        {ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED, ShipmentState.DELIVERED},
    )
    if len(shipment.parcels) >= MAX_PARCELS:
        raise _refuse("parcels", N_("A shipment holds at most 50 parcels."))
    tracking = _clean_tracking(tracking_number)
    weight = _clean_weight(weight_kg)
    if not tracking and weight is None:
        raise _refuse("tracking_number", N_("Give a tracking number or a weight."))
    parcel = _parcel(shipment, shipment.order, tracking, weight)
    shipment.parcels.append(parcel)
    session.flush()
    _event(session, shipment, actor, "shipment.parcel_added", tracking=tracking)
    if shipment.state in SENT_STATES:
        _shop_must_learn(session, shipment, actor)
    return parcel


def correct_tracking(session: Session, parcel: Parcel, actor: Actor, tracking_number: str) -> None:
    """Replace a parcel's tracking number (and its link); the shop must learn it again."""
    shipment = parcel.shipment
    _ensure_state(
        "correct_tracking",
        shipment,
        {ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED, ShipmentState.DELIVERED},
    )
    tracking = _clean_tracking(tracking_number)
    if not tracking:
        raise _refuse("tracking_number", N_("Give the tracking number."))
    previous = parcel.tracking_number
    if tracking == previous:
        return
    mode = shipment.shipping_mode
    parcel.tracking_number = tracking
    parcel.tracking_url = (mode.tracking_url(tracking, _postcode(shipment.order)) if mode else "")[
        :500
    ]
    _event(
        session, shipment, actor, "shipment.tracking_changed", tracking=tracking, previous=previous
    )
    if shipment.state in SENT_STATES:
        _shop_must_learn(session, shipment, actor)


# --- Shipments made in the shop --------------------------------------------------------------

SHOP_CANCEL_REASON = N_("Cancelled in the shop")


def _tracking_numbers(shipment: Shipment) -> set[str]:
    return {p.tracking_number for p in shipment.parcels if p.tracking_number}


def _known(order: Order, incoming: ShopShipment) -> Shipment | None:
    """The shipment of the order this copy from the shop is, by the shop's ids.

    A shipment the shop took as several (Shopify: one fulfillment per location) keeps
    their ids joined by ",". A parcel's id stands for its shipment only on platforms whose
    shipments are tracking entries (no lines): elsewhere tracks have their own ids, which a
    shipment id may equal (Magento counts shipments and tracks in separate tables).
    """
    for shipment in order.shipments:
        if shipment.external_id and incoming.external_id in shipment.external_id.split(","):
            return shipment
    if incoming.lines is not None:
        return None
    for shipment in order.shipments:
        refs = {p.external_id for p in shipment.parcels if p.external_id}
        if incoming.external_id in refs:
            return shipment
    return None


def _ours_unconfirmed(order: Order, incoming: ShopShipment) -> Shipment | None:
    """A shipment Comptoir sent whose answer was lost: same tracking numbers (whatever
    shop id it already has), or, without tracking numbers on either side and no shop id,
    the same lines and quantities."""
    numbers = {p.tracking_number for p in incoming.parcels if p.tracking_number}
    sent_ones = [
        s
        for s in order.shipments
        if s.origin == ShipmentOrigin.COMPTOIR and s.shipped_at is not None
    ]
    # Tracking numbers Comptoir holds are its own, even when the shipment already has a
    # shop id: platforms that keep one entry per parcel (WooCommerce) answer per parcel.
    for shipment in sent_ones:
        if numbers and numbers <= _tracking_numbers(shipment):
            return shipment
    candidates = [s for s in sent_ones if not s.external_id]
    if numbers or incoming.lines is None:
        return None
    wanted = dict(incoming.lines)
    for shipment in candidates:
        if not _tracking_numbers(shipment):
            sent = {i.order_line.external_id: i.quantity for i in shipment.lines}
            if sent == wanted:
                return shipment
    return None


def _learn_parcel_ids(shipment: Shipment, incoming: ShopShipment) -> None:
    """Our parcels take the shop's ids of their tracking numbers (an answer that was lost),
    so the shop's other entries for this shipment are recognised as ours too."""
    ids = {p.tracking_number: p.external_id or incoming.external_id for p in incoming.parcels}
    for parcel in shipment.parcels:
        found = ids.get(parcel.tracking_number)
        if found and not parcel.external_id:
            parcel.external_id = found[:64]


def _shop_quantities(order: Order, incoming: ShopShipment) -> dict[int, int]:
    """What of the order the shop's shipment holds, within what remains to ship."""
    remaining = remaining_quantities(order)
    if incoming.lines is None:
        return {line_id: qty for line_id, qty in remaining.items() if qty > 0}
    by_external = {line.external_id: line for line in shippable_lines(order)}
    chosen: dict[int, int] = {}
    for external_id, quantity in incoming.lines:
        line = by_external.get(external_id)
        if line is None:
            continue
        take = min(quantity, remaining.get(line.id, 0) - chosen.get(line.id, 0))
        if take > 0:
            chosen[line.id] = chosen.get(line.id, 0) + take
    return chosen


def _add_shop_parcels(shipment: Shipment, incoming: ShopShipment) -> list[str]:
    have = _tracking_numbers(shipment)
    added = []
    for parcel in incoming.parcels:
        number = parcel.tracking_number[:TRACKING_MAX_LENGTH]
        if not number or number in have:
            continue
        made = _parcel(shipment, shipment.order, number, None)
        if parcel.tracking_url.startswith(("https://", "http://")) and not made.tracking_url:
            made.tracking_url = parcel.tracking_url[:500]
        made.external_id = (parcel.external_id or incoming.external_id)[:64] or None
        shipment.parcels.append(made)
        have.add(number)
        added.append(number)
    return added


def _update_from_shop(
    session: Session, shipment: Shipment, incoming: ShopShipment, actor: Actor
) -> bool:
    if shipment.origin == ShipmentOrigin.COMPTOIR:
        return False  # our own, as the shop shows it: Comptoir's copy leads
    changed = False
    added = _add_shop_parcels(shipment, incoming)
    if added:
        session.flush()
        _event(session, shipment, actor, "shipment.tracking_from_shop", tracking=added)
        changed = True
    if incoming.cancelled and shipment.state != ShipmentState.CANCELLED:
        shipment.state = ShipmentState.CANCELLED
        shipment.cancelled_at = utcnow()
        shipment.cancel_reason = SHOP_CANCEL_REASON
        _event(session, shipment, actor, "shipment.cancelled_in_shop")
        _follow_fulfilment(session, shipment.order, actor)
        changed = True
    return changed


def _create_from_shop(
    session: Session, order: Order, incoming: ShopShipment, actor: Actor
) -> Shipment | None:
    chosen = _shop_quantities(order, incoming)
    if not chosen:
        if incoming.lines is None:
            # A platform without line-level shipments: more tracking for what left already.
            made_in_shop = [
                s
                for s in order.shipments
                if s.origin == ShipmentOrigin.SHOP and s.state in SENT_STATES
            ]
            if made_in_shop and _update_from_shop(session, made_in_shop[-1], incoming, actor):
                return made_in_shop[-1]
        record_event(
            session,
            order,
            actor,
            "shipment.shop_extra",
            {"external_id": incoming.external_id, "reason": N_("nothing remains to ship")},
        )
        return None
    now = utcnow()
    shipment = Shipment(
        order=order,
        number=_next_number(order),
        state=ShipmentState.SHIPPED,
        origin=ShipmentOrigin.SHOP,
        shipping_mode=order.shipping_mode,
        external_id=incoming.external_id[:64] or None,
        shipped_at=incoming.shipped_at or now,
        pushed_at=now,
    )
    shipment.lines = [
        ShipmentLine(order_line_id=line_id, quantity=quantity)
        for line_id, quantity in chosen.items()
    ]
    session.add(shipment)
    _add_shop_parcels(shipment, incoming)
    session.flush()
    if order.fulfilment_state == FulfilmentState.UNFULFILLED:
        order.fulfilment_state = FulfilmentState.IN_PREPARATION
    _event(
        session,
        shipment,
        actor,
        "shipment.received_from_shop",
        items=sum(chosen.values()),
        tracking=sorted(_tracking_numbers(shipment)),
        carrier=incoming.carrier[:80],
    )
    _follow_fulfilment(session, order, actor)
    # The shop made it: it knows the order left, so that milestone is not sent back.
    target = order_state.milestone_to_push(order)
    if target is not None:
        order_state.mark_milestone_pushed(order, target)
    invoicing.queue_when_shipped(session, shipment)
    return shipment


def record_shop_shipments(
    session: Session, order: Order, incoming: Sequence[ShopShipment], actor: Actor
) -> int:
    """Take in the shipments the shop holds for the order; return how many changed.

    A shipment Comptoir already has (by the shop's id) is completed with new tracking
    numbers or cancelled when the shop cancelled it; one Comptoir made and sent is left as
    Comptoir has it, even when its answer was lost (then it is recognised by its tracking
    numbers, or lines, and takes the shop's id). Any other is created as made in the shop,
    shipped, never more than remains to ship, and never sent back. Running it again with
    the same copy changes nothing.
    """
    changed = 0
    for shop_shipment in incoming:
        known = _known(order, shop_shipment)
        if known is not None:
            changed += _update_from_shop(session, known, shop_shipment, actor)
            continue
        if shop_shipment.cancelled:
            continue
        ours = _ours_unconfirmed(order, shop_shipment)
        if ours is not None:
            before = (ours.external_id, [p.external_id for p in ours.parcels])
            ours.external_id = ours.external_id or shop_shipment.external_id[:64] or None
            _learn_parcel_ids(ours, shop_shipment)
            changed += before != (ours.external_id, [p.external_id for p in ours.parcels])
            continue
        changed += _create_from_shop(session, order, shop_shipment, actor) is not None
    return changed


# --- Finding ---------------------------------------------------------------------------------


def lock_shipment(session: Session, shipment_id: int) -> Shipment:
    """Load a shipment for a change, its order's row locked first (PostgreSQL)."""
    order_id = session.scalar(select(Shipment.order_id).where(Shipment.id == shipment_id))
    if order_id is None:
        raise NotFound(f"shipment {shipment_id} does not exist")
    session.scalar(
        select(Order)
        .where(Order.id == order_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    shipment = session.get(Shipment, shipment_id, populate_existing=True)
    if shipment is None:
        raise NotFound(f"shipment {shipment_id} does not exist")
    return shipment
