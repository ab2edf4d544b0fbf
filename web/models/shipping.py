"""Shipments of an order, their lines, and the parcels that carry them."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, Quantity, enum_column, utcnow
from web.models.enums import ShipmentOrigin, ShipmentState
from web.models.shops import ShippingMode

# Room for a shipment's shop ids as one comma-separated list (35 Shopify fulfillment ids).
EXTERNAL_IDS_WIDTH = 500

if TYPE_CHECKING:
    from web.models.orders import Order, OrderLine


class Shipment(Base):
    __tablename__ = "shipments"
    __table_args__ = (
        # A shipment made in the shop arrives once, whatever the route (webhook, poll).
        UniqueConstraint("order_id", "external_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    number: Mapped[str] = mapped_column(String(40), unique=True)
    state: Mapped[ShipmentState] = enum_column(
        ShipmentState, name="shipment_state", default=ShipmentState.DRAFT
    )
    shipping_mode_id: Mapped[int | None] = mapped_column(ForeignKey("shipping_modes.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    shipped_at: Mapped[dt.datetime | None]
    delivered_at: Mapped[dt.datetime | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    origin: Mapped[ShipmentOrigin] = enum_column(
        ShipmentOrigin, name="shipment_origin", default=ShipmentOrigin.COMPTOIR
    )
    # The shop's own id for it (Shopify fulfillment, Magento shipment, …), once known; a
    # comma-separated list when the shop made several (Shopify: one fulfillment per location).
    external_id: Mapped[str | None] = mapped_column(String(EXTERNAL_IDS_WIDTH))
    # A client's retry of the same "create" (API Idempotency-Key, the pack screen's confirm)
    # finds this shipment instead of making a second one.
    idempotency_key: Mapped[str | None] = mapped_column(String(120), unique=True)
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    pushed_at: Mapped[dt.datetime | None]

    order: Mapped[Order] = relationship(back_populates="shipments")
    shipping_mode: Mapped[ShippingMode | None] = relationship()
    lines: Mapped[list[ShipmentLine]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan"
    )
    parcels: Mapped[list[Parcel]] = relationship(
        back_populates="shipment", cascade="all, delete-orphan", order_by="Parcel.id"
    )


class ShipmentLine(Base):
    __tablename__ = "shipment_lines"
    __table_args__ = (
        UniqueConstraint("shipment_id", "order_line_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    order_line_id: Mapped[int] = mapped_column(ForeignKey("order_lines.id"), index=True)
    quantity: Mapped[int]

    shipment: Mapped[Shipment] = relationship(back_populates="lines")
    order_line: Mapped[OrderLine] = relationship()


class Parcel(Base):
    __tablename__ = "parcels"

    id: Mapped[int] = mapped_column(primary_key=True)
    shipment_id: Mapped[int] = mapped_column(
        ForeignKey("shipments.id", ondelete="CASCADE"), index=True
    )
    tracking_number: Mapped[str] = mapped_column(String(80), default="", index=True)
    tracking_url: Mapped[str] = mapped_column(String(500), default="")
    weight_kg: Mapped[Decimal | None] = mapped_column(Quantity)
    # The shop's id for this tracking entry (WooCommerce tracking item, Magento track).
    external_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    shipment: Mapped[Shipment] = relationship(back_populates="parcels")


class WarehouseBin(Base):
    """Where the warehouse keeps a SKU: shown on pick lists, filled by import."""

    __tablename__ = "warehouse_bins"

    id: Mapped[int] = mapped_column(primary_key=True)
    sku: Mapped[str] = mapped_column(String(120), unique=True)
    location: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
