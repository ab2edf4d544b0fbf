"""Invoices, credit notes and delivery notes, and their gapless number series."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, enum_column, utcnow
from web.models.enums import DocumentKind, DocumentState

if TYPE_CHECKING:
    from web.models.orders import Order
    from web.models.shipping import Shipment


class NumberSeries(Base):
    """One counter row per series (FA-2026, AV-2026, BL-2026), locked while numbering."""

    __tablename__ = "number_series"
    __table_args__ = (CheckConstraint("last_number >= 0", name="last_number_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40), unique=True)
    kind: Mapped[DocumentKind] = enum_column(DocumentKind, name="series_kind")
    last_number: Mapped[int] = mapped_column(default=0, server_default="0")
    last_issue_date: Mapped[dt.date | None]


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        UniqueConstraint("series", "number"),
        # An issued document always carries its number; a draft never does.
        CheckConstraint(
            "(state = 'draft' AND number IS NULL) OR (state = 'issued' AND number IS NOT NULL)",
            name="number_iff_issued",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[DocumentKind] = enum_column(DocumentKind, name="document_kind")
    state: Mapped[DocumentState] = enum_column(
        DocumentState, name="document_state", default=DocumentState.DRAFT
    )
    series: Mapped[str | None] = mapped_column(String(40))
    number: Mapped[int | None]
    reference: Mapped[str | None] = mapped_column(String(60), unique=True)
    issue_date: Mapped[dt.date | None]
    due_date: Mapped[dt.date | None]
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    total_net: Mapped[Decimal | None]
    total_tax: Mapped[Decimal | None]
    total_gross: Mapped[Decimal | None]
    snapshot: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    pdf_storage_key: Mapped[str | None] = mapped_column(String(500))
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"))
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[dt.datetime | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    order: Mapped[Order] = relationship(back_populates="documents")
    corrects: Mapped[Document | None] = relationship(remote_side=[id])
    shipment: Mapped[Shipment | None] = relationship()
