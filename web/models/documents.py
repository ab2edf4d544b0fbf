"""Invoices, credit notes and delivery notes, and their gapless number series."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, Money, Rate, UnitPrice, enum_column, utcnow
from web.models.enums import DocumentKind, DocumentState, VatRegime

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
    corrects_id: Mapped[int | None] = mapped_column(ForeignKey("documents.id"), index=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id"), index=True)
    # Who the document is for, as printed (a company or a person): the documents list
    # filters on it without reading snapshots.
    buyer_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # A credit note's reason, as the person who issued it wrote it.
    reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # A full credit note that cancels its invoice: the quantities it credits may be
    # invoiced again (a corrected invoice). A partial one (a refund) frees nothing.
    cancels_invoice: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The API caller's Idempotency-Key: the same key answers the first document again.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    issued_at: Mapped[dt.datetime | None]
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    order: Mapped[Order] = relationship(back_populates="documents")
    corrects: Mapped[Document | None] = relationship(remote_side=[id])
    shipment: Mapped[Shipment | None] = relationship()
    lines: Mapped[list[DocumentLine]] = relationship(
        back_populates="document", order_by="DocumentLine.position"
    )


class DocumentLine(Base):
    """One line of an invoice or credit note as issued: what the accountant's exports sum.

    Amounts excluding tax (`total_net`), the tax on them and the total with tax, each
    rounded to the cent on the line; a document's totals are the sums of its lines. A
    credit note's lines are positive amounts: the document's kind says they are credited.
    """

    __tablename__ = "document_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    # product, fee, shipping, discount (a negative amount), amount (a credit by amount)
    kind: Mapped[str] = mapped_column(String(20))
    order_line_id: Mapped[int | None] = mapped_column(ForeignKey("order_lines.id"), index=True)
    sku: Mapped[str] = mapped_column(String(120), default="")
    name: Mapped[str] = mapped_column(String(500))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 3))
    unit_price_net: Mapped[Decimal] = mapped_column(UnitPrice())
    tax_rate: Mapped[Decimal] = mapped_column(Rate)
    # EN 16931 VAT category: S standard, E exempt (franchise), Z zero rate.
    tax_category: Mapped[str] = mapped_column(String(2), default="S")
    total_net: Mapped[Decimal] = mapped_column(Money)
    tax_amount: Mapped[Decimal] = mapped_column(Money)
    total_gross: Mapped[Decimal] = mapped_column(Money)

    document: Mapped[Document] = relationship(back_populates="lines")


class CompanySettings(Base):
    """The seller printed on every document: one row (id 1), edited by admins.

    Issued documents keep their own copy (their snapshot): editing these settings never
    changes a document already issued.
    """

    __tablename__ = "company_settings"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True, default=1)
    legal_name: Mapped[str] = mapped_column(String(200), default="")
    trade_name: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str] = mapped_column(Text, default="")
    postcode: Mapped[str] = mapped_column(String(20), default="")
    city: Mapped[str] = mapped_column(String(120), default="")
    country: Mapped[str] = mapped_column(String(2), default="FR")
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    website: Mapped[str] = mapped_column(String(200), default="")
    siren: Mapped[str] = mapped_column(String(9), default="")
    siret: Mapped[str] = mapped_column(String(14), default="")
    rcs_city: Mapped[str] = mapped_column(String(120), default="")
    legal_form: Mapped[str] = mapped_column(String(80), default="")
    share_capital: Mapped[Decimal | None] = mapped_column(Money)
    vat_number: Mapped[str] = mapped_column(String(20), default="")
    vat_regime: Mapped[VatRegime] = enum_column(
        VatRegime, name="vat_regime", default=VatRegime.NORMAL
    )
    iban: Mapped[str] = mapped_column(String(34), default="")
    bic: Mapped[str] = mapped_column(String(11), default="")
    # Printed as written ("Paiement à réception de facture"); the due date is the issue
    # date plus payment_days.
    payment_terms: Mapped[str] = mapped_column(Text, default="")
    payment_days: Mapped[int] = mapped_column(default=0)
    early_payment: Mapped[str] = mapped_column(Text, default="")
    late_penalty: Mapped[str] = mapped_column(Text, default="")
    recovery_indemnity: Mapped[str] = mapped_column(Text, default="")
    logo: Mapped[bytes | None] = mapped_column(LargeBinary)
    logo_mime_type: Mapped[str] = mapped_column(String(40), default="")
    invoice_prefix: Mapped[str] = mapped_column(String(10), default="FA")
    credit_note_prefix: Mapped[str] = mapped_column(String(10), default="AV")
    delivery_note_prefix: Mapped[str] = mapped_column(String(10), default="BL")
    # weasyprint, or wkhtmltopdf for delivery notes and other prints without Factur-X.
    pdf_engine: Mapped[str] = mapped_column(String(20), default="weasyprint")
    # How long a buyer's link to a document stays valid.
    link_days: Mapped[int] = mapped_column(default=90)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
