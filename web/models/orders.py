"""Orders, their lines, and the payments recorded against them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Connection,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    event,
    false,
    inspect,
    select,
    true,
)
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from web.models.base import Base, Rate, UnitPrice, enum_column, utcnow
from web.models.customers import Customer
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    LineKind,
    Milestone,
    PaymentState,
    TransactionKind,
    TransactionSource,
    TransactionStatus,
)
from web.models.shops import ShippingMode, Shop
from web.textfold import fold_text

if TYPE_CHECKING:
    from web.models.activity import Comment, OrderEvent
    from web.models.documents import Document
    from web.models.shipping import Shipment

ZERO = Decimal("0.00")
SORT_NAME_LENGTH = 200
"""The customer sort reads this many folded characters of each name (an index row stays small)."""


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        Index("ix_orders_placed_at", "placed_at"),
        CheckConstraint("grand_total >= 0", name="grand_total_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id"))
    # Shop ids can exceed 2**53 (Shopify): always text, never a float.
    external_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64), index=True)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), default="", index=True)

    placed_at: Mapped[dt.datetime]
    shop_updated_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    prices_include_tax: Mapped[bool] = mapped_column(default=True, server_default=true())
    billing_address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    shipping_label: Mapped[str] = mapped_column(String(200), default="")
    shipping_mode_id: Mapped[int | None] = mapped_column(ForeignKey("shipping_modes.id"))
    payment_method: Mapped[str] = mapped_column(String(120), default="")
    # The codes the buyer typed, searchable; `discounts` holds every discount with its
    # amount: [{"code": "", "label": "", "amount": "5.00"}], amounts as strings.
    discount_codes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    discounts: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")

    subtotal: Mapped[Decimal] = mapped_column(default=ZERO)
    discount_total: Mapped[Decimal] = mapped_column(default=ZERO)
    shipping_total: Mapped[Decimal] = mapped_column(default=ZERO)
    shipping_tax: Mapped[Decimal] = mapped_column(default=ZERO)
    tax_total: Mapped[Decimal] = mapped_column(default=ZERO)
    grand_total: Mapped[Decimal] = mapped_column(default=ZERO)
    # What lines, shipping and discounts add up to when that differs from grand_total;
    # None when the order reconciles to the cent.
    computed_total: Mapped[Decimal | None]
    # The order came from a webhook body whose payments must still be read from the shop.
    payment_details_pending: Mapped[bool] = mapped_column(default=False, server_default=false())

    buyer_note: Mapped[str] = mapped_column(Text, default="")
    marketplace_ref: Mapped[str] = mapped_column(String(120), default="")
    shop_status: Mapped[str] = mapped_column(String(120), default="")

    on_hold: Mapped[bool] = mapped_column(default=False, server_default=false())
    hold_reason: Mapped[str] = mapped_column(String(500), default="")
    needs_mapping: Mapped[bool] = mapped_column(default=False, server_default=false())
    # [{"kind": "status" | "carrier" | "payment_method", "value": "...", "label": "..."}]
    mapping_issues: Mapped[list[Any]] = mapped_column(JSON, default=list, server_default="[]")
    needs_review: Mapped[bool] = mapped_column(default=False, server_default=false())

    commercial_state: Mapped[CommercialState] = enum_column(
        CommercialState, name="order_commercial_state", default=CommercialState.NEW
    )
    fulfilment_state: Mapped[FulfilmentState] = enum_column(
        FulfilmentState, name="order_fulfilment_state", default=FulfilmentState.UNFULFILLED
    )
    payment_state: Mapped[PaymentState] = enum_column(
        PaymentState, name="order_payment_state", default=PaymentState.UNPAID
    )
    last_pushed_milestone: Mapped[Milestone | None] = enum_column(
        Milestone, name="order_last_pushed_milestone", nullable=True
    )
    validated_at: Mapped[dt.datetime | None]
    closed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    # The customer sort's key, folded: the billing name, else the customer record's, else the
    # e-mail (sort_names()); kept by the flush events below so that an index serves the sort.
    sort_last: Mapped[str] = mapped_column(String(SORT_NAME_LENGTH), default="", server_default="")
    sort_first: Mapped[str] = mapped_column(String(SORT_NAME_LENGTH), default="", server_default="")

    shop: Mapped[Shop] = relationship()
    customer: Mapped[Customer | None] = relationship()
    shipping_mode: Mapped[ShippingMode | None] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="OrderLine.position"
    )
    transactions: Mapped[list[Transaction]] = relationship(
        back_populates="order", cascade="all, delete-orphan", order_by="Transaction.occurred_at"
    )
    shipments: Mapped[list[Shipment]] = relationship(back_populates="order", order_by="Shipment.id")
    documents: Mapped[list[Document]] = relationship(back_populates="order", order_by="Document.id")
    comments: Mapped[list[Comment]] = relationship(
        back_populates="order", order_by="Comment.created_at"
    )
    events: Mapped[list[OrderEvent]] = relationship(
        back_populates="order", order_by="OrderEvent.occurred_at"
    )

    @property
    def customer_name(self) -> str:
        address = self.billing_address or {}
        name = f"{address.get('first_name', '')} {address.get('last_name', '')}".strip()
        if name:
            return name
        return self.customer.full_name if self.customer else self.email

    def __repr__(self) -> str:
        return f"<Order {self.number} shop={self.shop_id}>"


def _name_part(address: dict[str, Any], key: str) -> str | None:
    value = address.get(key)
    return None if value is None or value == "" else str(value)


def sort_names(
    billing: dict[str, Any] | None, customer: tuple[str, str] | None, email: str
) -> tuple[str, str]:
    """The order's customer sort key (last name, first name), folded: the billing name's
    parts, each else the customer record's (`customer`: its first and last name), the last
    name else the order's e-mail."""
    address = billing or {}
    last = _name_part(address, "last_name")
    if last is None:
        last = customer[1] if customer is not None else email
    first = _name_part(address, "first_name")
    if first is None:
        first = customer[0] if customer is not None else ""
    return fold_text(last or "")[:SORT_NAME_LENGTH], fold_text(first or "")[:SORT_NAME_LENGTH]


_SORT_SOURCES = ("billing_address", "customer_id", "customer", "email")


@event.listens_for(Order, "before_insert")
@event.listens_for(Order, "before_update")
def _keep_sort_names(_mapper: Mapper[Order], connection: Connection, order: Order) -> None:
    state = inspect(order)
    if state.persistent and not any(
        state.attrs[name].history.has_changes() for name in _SORT_SOURCES
    ):
        return
    customer: tuple[str, str] | None = None
    if order.customer_id is not None:
        loaded = state.dict.get("customer")  # never a lazy load inside the flush
        if loaded is not None and loaded.id == order.customer_id:
            customer = (loaded.first_name or "", loaded.last_name or "")
        else:  # the id set alone: read the record on the flush's connection
            row = connection.execute(
                select(Customer.first_name, Customer.last_name).where(
                    Customer.id == order.customer_id
                )
            ).one_or_none()
            customer = None if row is None else (row[0] or "", row[1] or "")
    order.sort_last, order.sort_first = sort_names(
        order.billing_address, customer, order.email or ""
    )


# The warehouse's queue (order_state.ready_to_prepare_clause implies this), oldest first.
WAREHOUSE_STATES = (
    FulfilmentState.UNFULFILLED,
    FulfilmentState.IN_PREPARATION,
    FulfilmentState.PARTIALLY_SHIPPED,
)
_waiting = and_(
    Order.commercial_state == CommercialState.VALIDATED,
    Order.on_hold.is_(false()),
    Order.fulfilment_state.in_(WAREHOUSE_STATES),
)
Index(
    "ix_orders_warehouse_queue",
    Order.placed_at,
    Order.id,
    Order.payment_state,
    Order.grand_total,
    postgresql_where=_waiting,
    sqlite_where=_waiting,
)
Index(
    "ix_orders_warehouse_mode",
    Order.shipping_mode_id,
    Order.placed_at,
    Order.id,
    Order.payment_state,
    Order.grand_total,
    postgresql_where=_waiting,
    sqlite_where=_waiting,
)
# The dashboard: counts per state read from an index only, orders per day over a date range,
# and each "needs attention" list newest first.
Index(
    "ix_orders_state_counts",
    Order.commercial_state,
    Order.fulfilment_state,
    Order.payment_state,
    Order.on_hold,
    Order.needs_mapping,
    Order.needs_review,
)
Index("ix_orders_placed_day", Order.placed_at, Order.commercial_state, Order.grand_total)
# The list sorted by total, by customer (by number: web/search_index.py).
Index("ix_orders_sort_total", Order.grand_total, Order.id)
Index("ix_orders_sort_customer", Order.sort_last, Order.sort_first, Order.id)
for _name, _flag in (
    ("on_hold", Order.on_hold.is_(True)),
    ("needs_mapping", Order.needs_mapping.is_(True)),
    ("needs_review", Order.needs_review.is_(True)),
    ("totals_mismatch", Order.computed_total.is_not(None)),
):
    Index(
        f"ix_orders_{_name}_updated",
        Order.updated_at,
        Order.id,
        postgresql_where=_flag,
        sqlite_where=_flag,
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    external_id: Mapped[str] = mapped_column(String(64), default="")
    kind: Mapped[LineKind] = enum_column(LineKind, name="line_kind", default=LineKind.PRODUCT)
    parent_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("order_lines.id", ondelete="CASCADE")
    )
    sku: Mapped[str] = mapped_column(String(120), default="", index=True)
    ean: Mapped[str] = mapped_column(String(20), default="")
    name: Mapped[str] = mapped_column(String(500))
    options: Mapped[str] = mapped_column(String(500), default="")
    quantity: Mapped[int]
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice())
    tax_rate: Mapped[Decimal] = mapped_column(Rate, default=Decimal("0"))
    discount_amount: Mapped[Decimal] = mapped_column(default=ZERO)
    total_net: Mapped[Decimal] = mapped_column(default=ZERO)
    tax_amount: Mapped[Decimal] = mapped_column(default=ZERO)
    total_gross: Mapped[Decimal] = mapped_column(default=ZERO)
    # Virtual, downloadable and gift-card lines never wait for a shipment.
    needs_shipping: Mapped[bool] = mapped_column(default=True, server_default=true())

    order: Mapped[Order] = relationship(back_populates="lines")
    parent: Mapped[OrderLine | None] = relationship(remote_side=[id])


class Transaction(Base):
    """A payment event: from the shop, or entered by hand (transfer, cheque, cash)."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("order_id", "external_id"),
        CheckConstraint("amount >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str | None] = mapped_column(String(120))
    method: Mapped[str] = mapped_column(String(120), default="")
    kind: Mapped[TransactionKind] = enum_column(TransactionKind, name="transaction_kind")
    status: Mapped[TransactionStatus] = enum_column(
        TransactionStatus, name="transaction_status", default=TransactionStatus.SUCCESS
    )
    source: Mapped[TransactionSource] = enum_column(
        TransactionSource, name="transaction_source", default=TransactionSource.SHOP
    )
    amount: Mapped[Decimal]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    reference: Mapped[str] = mapped_column(String(200), default="")
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    order: Mapped[Order] = relationship(back_populates="transactions")


class OrderStateCount(Base):
    """A change in the number of orders with one combination of states: +1 when an order
    takes it, -1 when it leaves it, written by triggers on `orders` (web/state_counts.py).
    The dashboard adds them up per combination instead of counting a million orders; the rows
    are folded into one per combination from time to time."""

    __tablename__ = "order_state_counts"

    id: Mapped[int] = mapped_column(primary_key=True)
    commercial_state: Mapped[str] = mapped_column(String(32))
    fulfilment_state: Mapped[str] = mapped_column(String(32))
    payment_state: Mapped[str] = mapped_column(String(32))
    on_hold: Mapped[bool]
    needs_mapping: Mapped[bool]
    needs_review: Mapped[bool]
    delta: Mapped[int]
