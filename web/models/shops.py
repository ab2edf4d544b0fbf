"""Shops, their mappings to Comptoir's vocabulary, and shipping modes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import JSON, ForeignKey, Numeric, String, UniqueConstraint, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.crypto import EncryptedText
from web.models.base import Base, enum_column, utcnow
from web.models.enums import IssuePolicy, Milestone, Platform, ShopStatusMeaning


class Shop(Base):
    __tablename__ = "shops"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(32), unique=True)
    platform: Mapped[Platform] = enum_column(Platform, name="shop_platform")
    name: Mapped[str] = mapped_column(String(120))
    base_url: Mapped[str] = mapped_column(String(500))
    api_key: Mapped[str | None] = mapped_column(EncryptedText())
    api_secret: Mapped[str | None] = mapped_column(EncryptedText())
    webhook_secret: Mapped[str | None] = mapped_column(EncryptedText())
    import_from: Mapped[dt.date | None]
    poll_interval_seconds: Mapped[int] = mapped_column(default=300, server_default="300")
    # Requests per second the shop's API allows Comptoir (Shopify's leak rate: 2 on
    # standard plans, 20 on Shopify Plus); None: the platform's default.
    api_calls_per_second: Mapped[Decimal | None] = mapped_column(Numeric(7, 2))
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    push_statuses: Mapped[bool] = mapped_column(default=True, server_default=true())
    push_tracking: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Whether the shop e-mails the buyer when a shipment reaches it (where the platform lets
    # the caller choose: Shopify's notify_customer, Magento's notify).
    notify_shipments: Mapped[bool] = mapped_column(default=True, server_default=true())
    push_comments: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Internal comments copied to the shop as private notes (staff only), when asked.
    push_internal_comments: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Unused since issue 11: show_documents_in_account both shows documents and sends their
    # links to the shop (one setting, not two that could disagree).
    push_documents: Mapped[bool] = mapped_column(default=False, server_default=false())
    show_documents_in_account: Mapped[bool] = mapped_column(default=False, server_default=false())
    invoice_policy: Mapped[IssuePolicy] = enum_column(
        IssuePolicy, name="shop_invoice_policy", default=IssuePolicy.MANUAL
    )
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Change notifications from Comptoir's PrestaShop/Magento module (docs/NOTIFICATIONS.md):
    # the last one verified, its event, and how many came on `notified_day` (Paris).
    notified_at: Mapped[dt.datetime | None]
    notified_event: Mapped[str] = mapped_column(String(40), default="", server_default="")
    notified_day: Mapped[dt.date | None]
    notified_count: Mapped[int] = mapped_column(default=0, server_default="0")

    status_mappings: Mapped[list[StatusMapping]] = relationship(
        back_populates="shop", cascade="all, delete-orphan"
    )
    carrier_mappings: Mapped[list[CarrierMapping]] = relationship(
        back_populates="shop", cascade="all, delete-orphan"
    )
    payment_mappings: Mapped[list[PaymentMethodMapping]] = relationship(
        back_populates="shop", cascade="all, delete-orphan"
    )
    milestone_mappings: Mapped[list[MilestoneMapping]] = relationship(
        back_populates="shop", cascade="all, delete-orphan"
    )

    def __repr__(self) -> str:
        return f"<Shop {self.key} {self.platform}>"


class StatusMapping(Base):
    """What one of the shop's own order statuses means when it arrives."""

    __tablename__ = "status_mappings"
    __table_args__ = (UniqueConstraint("shop_id", "shop_status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shop_status: Mapped[str] = mapped_column(String(120))
    label: Mapped[str] = mapped_column(String(120), default="")
    meaning: Mapped[ShopStatusMeaning] = enum_column(ShopStatusMeaning, name="status_meaning")

    shop: Mapped[Shop] = relationship(back_populates="status_mappings")


class MilestoneMapping(Base):
    """Which shop status a milestone is pushed as, and whether it is pushed at all."""

    __tablename__ = "milestone_mappings"
    __table_args__ = (UniqueConstraint("shop_id", "milestone"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    milestone: Mapped[Milestone] = enum_column(Milestone, name="milestone_mapping_milestone")
    shop_status: Mapped[str] = mapped_column(String(120))
    enabled: Mapped[bool] = mapped_column(default=True, server_default=true())

    shop: Mapped[Shop] = relationship(back_populates="milestone_mappings")


class ShippingMode(Base):
    """A way of shipping: carrier, service, tracking link and per-platform carrier codes."""

    __tablename__ = "shipping_modes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    carrier: Mapped[str] = mapped_column(String(80))
    service: Mapped[str] = mapped_column(String(80), default="")
    is_relay_point: Mapped[bool] = mapped_column(default=False, server_default=false())
    tracking_url_template: Mapped[str] = mapped_column(String(500), default="")
    carrier_codes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())

    def tracking_url(self, tracking: str, postcode: str = "") -> str:
        """Fill the tracking URL template for one parcel ("" without a number or a template).

        Each value is URL-encoded whole, so a tracking number like `A/../?x=1#y` stays data
        and never changes the link's host, path or query. A template that is not an http(s)
        address with a fixed host (web/services/shipping_modes.py refuses those) makes none.
        """
        template = self.tracking_url_template or ""
        tracking = tracking.strip()
        parts = urlsplit(template)
        if (
            not tracking
            or not template.lower().startswith(("https://", "http://"))
            or any(char.isspace() or ord(char) < 32 or ord(char) == 127 for char in template)
            or not parts.hostname
            or any(char in parts.netloc for char in "{}@")
        ):
            return ""
        return template.replace("{tracking}", quote(tracking, safe="")).replace(
            "{postcode}", quote(postcode.strip(), safe="")
        )


class CarrierMapping(Base):
    """The shipping mode that a shop's shipping label resolves to."""

    __tablename__ = "carrier_mappings"
    __table_args__ = (UniqueConstraint("shop_id", "shop_label"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shop_label: Mapped[str] = mapped_column(String(200))
    shipping_mode_id: Mapped[int] = mapped_column(ForeignKey("shipping_modes.id"))

    shop: Mapped[Shop] = relationship(back_populates="carrier_mappings")
    shipping_mode: Mapped[ShippingMode] = relationship()


class PaymentMethodMapping(Base):
    """A shop payment method, and whether its transactions count as payment."""

    __tablename__ = "payment_method_mappings"
    __table_args__ = (UniqueConstraint("shop_id", "shop_method"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    shop_id: Mapped[int] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    shop_method: Mapped[str] = mapped_column(String(120))
    label: Mapped[str] = mapped_column(String(120), default="")
    counts_as_payment: Mapped[bool] = mapped_column(default=True, server_default=true())

    shop: Mapped[Shop] = relationship(back_populates="payment_mappings")
