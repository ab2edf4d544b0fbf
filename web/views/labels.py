"""Translated labels for the domain's closed vocabularies."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

STATE_LABELS = {
    # commercial
    "new": _l("New"),
    "validated": _l("Validated"),
    "closed": _l("Closed"),
    "cancelled": _l("Cancelled"),
    # fulfilment
    "unfulfilled": _l("Not shipped"),
    "in_preparation": _l("In preparation"),
    "partially_shipped": _l("Partially shipped"),
    "shipped": _l("Shipped"),
    "delivered": _l("Delivered"),
    # payment
    "unpaid": _l("Unpaid"),
    "partially_paid": _l("Partially paid"),
    "paid": _l("Paid"),
    "partially_refunded": _l("Partially refunded"),
    "refunded": _l("Refunded"),
    # milestones
    "processing": _l("Processing"),
    "completed": _l("Completed"),
    # shipments and documents
    "draft": _l("Draft"),
    "packed": _l("Packed"),
    "issued": _l("Issued"),
    # inbox / outbox
    "pending": _l("Pending"),
    "processed": _l("Processed"),
    "ignored": _l("Ignored"),
    "parked": _l("Parked"),
    "failed": _l("Failed"),
    "rejected": _l("Rejected"),
    "sent": _l("Sent"),
    "dead": _l("Dead"),
    # what a shop status means
    "awaiting_payment": _l("Awaiting payment"),
    "on_hold": _l("On hold"),
    "ignore": _l("Ignore the order"),
    # background jobs
    "queued": _l("Queued"),
    "running": _l("Running"),
    "done": _l("Done"),
}

ROLE_LABELS = {
    "admin": _l("Administrator"),
    "manager": _l("Manager"),
    "warehouse": _l("Warehouse"),
    "viewer": _l("Viewer"),
}

KIND_LABELS = {
    "product": _l("Product"),
    "fee": _l("Fee"),
    "gift_wrap": _l("Gift wrap"),
    "authorization": _l("Authorization"),
    "capture": _l("Capture"),
    "sale": _l("Sale"),
    "refund": _l("Refund"),
    "void": _l("Void"),
    "invoice": _l("Invoice"),
    "credit_note": _l("Credit note"),
    "delivery_note": _l("Delivery note"),
    "internal": _l("Internal"),
    "customer": _l("Visible to the buyer"),
    "shop": _l("Shop"),
    "bank_transfer": _l("Bank transfer"),
    "cheque": _l("Cheque"),
    "cash": _l("Cash"),
    "other": _l("Other"),
    "user": _l("User"),
    "system": _l("Comptoir"),
    "success": _l("Succeeded"),
    "failure": _l("Failed"),
    # platforms (brand names)
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "prestashop": "PrestaShop",
    "magento": "Magento 2",
    # inbox follow-ups: what a delivery lacked, read from the shop afterwards
    "fetch/transactions": _l("Payments read from the shop after the delivery"),
    "fetch/order": _l("Order read from the shop after a delivery about it"),
    # invoicing policy of a shop
    "manual": _l("By hand"),
    "on_payment": _l("When paid"),
    "on_shipment": _l("When shipped"),
}

# The company settings (web/services/company.py), by key: the form's labels and the audit log's.
COMPANY_FIELD_LABELS = {
    "legal_name": _l("Legal name"),
    "trade_name": _l("Trade name"),
    "legal_form": _l("Legal form"),
    "address": _l("Registered address"),
    "postcode": _l("Postcode"),
    "city": _l("City"),
    "country": _l("Country"),
    "email": _l("E-mail"),
    "phone": _l("Phone"),
    "website": _l("Website"),
    "siren": _l("SIREN"),
    "siret": _l("SIRET"),
    "rcs_city": _l("RCS city"),
    "share_capital": _l("Share capital (€)"),
    "vat_number": _l("VAT number"),
    "vat_regime": _l("VAT regime"),
    "iban": _l("IBAN"),
    "bic": _l("BIC"),
    "payment_terms": _l("Payment terms"),
    "payment_days": _l("Payment due after (days)"),
    "early_payment": _l("Early payment discount"),
    "late_penalty": _l("Late payment penalties"),
    "recovery_indemnity": _l("Recovery indemnity"),
    "invoice_prefix": _l("Invoice prefix"),
    "credit_note_prefix": _l("Credit note prefix"),
    "delivery_note_prefix": _l("Delivery note prefix"),
    "pdf_engine": _l("PDF engine"),
    "link_days": _l("Buyer's links valid for (days)"),
    "logo": _l("Logo"),
}
