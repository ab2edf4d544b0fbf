"""SQLAlchemy models of the whole domain (no Flask here)."""

from web.models.activity import Comment, OrderEvent
from web.models.base import Base, utcnow
from web.models.customers import Customer, CustomerShopLink
from web.models.documents import CompanySettings, Document, DocumentLine, NumberSeries
from web.models.orders import Order, OrderLine, OrderStateCount, Transaction
from web.models.shipping import Parcel, Shipment, ShipmentLine, WarehouseBin
from web.models.shops import (
    CarrierMapping,
    MilestoneMapping,
    PaymentMethodMapping,
    ShippingMode,
    Shop,
    StatusMapping,
)
from web.models.sync import DeadLetter, InboxEvent, Job, OutboxMessage, ShopPacing, SyncCursor
from web.models.users import ApiToken, AuditEvent, LoginThrottle, User

__all__ = [
    "DeadLetter",
    "ApiToken",
    "AuditEvent",
    "Base",
    "CarrierMapping",
    "Comment",
    "Customer",
    "CustomerShopLink",
    "CompanySettings",
    "Document",
    "DocumentLine",
    "InboxEvent",
    "Job",
    "LoginThrottle",
    "MilestoneMapping",
    "NumberSeries",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OrderStateCount",
    "OutboxMessage",
    "Parcel",
    "PaymentMethodMapping",
    "Shipment",
    "ShipmentLine",
    "WarehouseBin",
    "ShippingMode",
    "Shop",
    "ShopPacing",
    "StatusMapping",
    "SyncCursor",
    "Transaction",
    "User",
    "utcnow",
]
