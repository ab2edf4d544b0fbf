"""Closed vocabularies of the domain, stored as strings with CHECK constraints."""

from __future__ import annotations

from enum import StrEnum


class Platform(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    PRESTASHOP = "prestashop"
    MAGENTO = "magento"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    WAREHOUSE = "warehouse"
    VIEWER = "viewer"


class CommercialState(StrEnum):
    NEW = "new"
    VALIDATED = "validated"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class FulfilmentState(StrEnum):
    UNFULFILLED = "unfulfilled"
    IN_PREPARATION = "in_preparation"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class PaymentState(StrEnum):
    UNPAID = "unpaid"
    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"


class Milestone(StrEnum):
    """What the shop is told, from lowest to highest precedence."""

    PARTIALLY_PAID = "partially_paid"
    PAID = "paid"
    VALIDATED = "validated"
    PROCESSING = "processing"
    PARTIALLY_SHIPPED = "partially_shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class LineKind(StrEnum):
    PRODUCT = "product"
    FEE = "fee"
    GIFT_WRAP = "gift_wrap"


class TransactionKind(StrEnum):
    AUTHORIZATION = "authorization"
    CAPTURE = "capture"
    SALE = "sale"
    REFUND = "refund"
    VOID = "void"


class TransactionStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILURE = "failure"


class TransactionSource(StrEnum):
    SHOP = "shop"
    BANK_TRANSFER = "bank_transfer"
    CHEQUE = "cheque"
    CASH = "cash"
    OTHER = "other"


class ShipmentState(StrEnum):
    DRAFT = "draft"
    PACKED = "packed"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class ShipmentOrigin(StrEnum):
    """Who made the shipment: Comptoir (pushed to the shop) or the shop (never pushed back)."""

    COMPTOIR = "comptoir"
    SHOP = "shop"


class DocumentKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"
    DELIVERY_NOTE = "delivery_note"


class DocumentState(StrEnum):
    DRAFT = "draft"
    ISSUED = "issued"


class VatRegime(StrEnum):
    """How the company charges VAT: normally, or not at all under the franchise (art. 293 B)."""

    NORMAL = "normal"
    FRANCHISE = "franchise"


class IssuePolicy(StrEnum):
    MANUAL = "manual"
    ON_PAYMENT = "on_payment"
    ON_SHIPMENT = "on_shipment"


class CommentVisibility(StrEnum):
    INTERNAL = "internal"
    CUSTOMER = "customer"


class ActorType(StrEnum):
    USER = "user"
    SHOP = "shop"
    SYSTEM = "system"


class InboxState(StrEnum):
    PENDING = "pending"
    PROCESSED = "processed"
    IGNORED = "ignored"
    PARKED = "parked"
    FAILED = "failed"
    REJECTED = "rejected"


class OutboxState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    DEAD = "dead"
    IGNORED = "ignored"


class ShopStatusMeaning(StrEnum):
    """What a shop's own order status means to Comptoir when it arrives."""

    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    ON_HOLD = "on_hold"
    IGNORE = "ignore"


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
