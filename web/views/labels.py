"""Translated labels for the domain's closed vocabularies.

The state, role and kind labels are msgids, translated where shown (the `label` filter, the
timeline): a list page shows hundreds of them, and a lazy string looks its catalogue up anew
each time.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from web.i18n import N_

STATE_LABELS = {
    # commercial
    "new": N_("New"),
    "validated": N_("Validated"),
    "closed": N_("Closed"),
    "cancelled": N_("Cancelled"),
    # fulfilment
    "unfulfilled": N_("Not shipped"),
    "in_preparation": N_("In preparation"),
    "partially_shipped": N_("Partially shipped"),
    "shipped": N_("Shipped"),
    "delivered": N_("Delivered"),
    # payment
    "unpaid": N_("Unpaid"),
    "partially_paid": N_("Partially paid"),
    "paid": N_("Paid"),
    "partially_refunded": N_("Partially refunded"),
    "refunded": N_("Refunded"),
    # milestones
    "processing": N_("Processing"),
    "completed": N_("Completed"),
    # shipments and documents
    "draft": N_("Draft"),
    "packed": N_("Packed"),
    "issued": N_("Issued"),
    # inbox / outbox
    "pending": N_("Pending"),
    "processed": N_("Processed"),
    "ignored": N_("Ignored"),
    "parked": N_("Parked"),
    "failed": N_("Failed"),
    "rejected": N_("Rejected"),
    "sent": N_("Sent"),
    "dead": N_("Dead"),
    # what a shop status means
    "awaiting_payment": N_("Awaiting payment"),
    "on_hold": N_("On hold"),
    "ignore": N_("Ignore the order"),
    # background jobs
    "queued": N_("Queued"),
    "running": N_("Running"),
    "done": N_("Done"),
}

ROLE_LABELS = {
    "admin": N_("Administrator"),
    "manager": N_("Manager"),
    "warehouse": N_("Warehouse"),
    "viewer": N_("Viewer"),
}

KIND_LABELS = {
    "product": N_("Product"),
    "fee": N_("Fee"),
    "gift_wrap": N_("Gift wrap"),
    "authorization": N_("Authorization"),
    "capture": N_("Capture"),
    "sale": N_("Sale"),
    "refund": N_("Refund"),
    "void": N_("Void"),
    "invoice": N_("Invoice"),
    "credit_note": N_("Credit note"),
    "delivery_note": N_("Delivery note"),
    "internal": N_("Internal"),
    "customer": N_("Visible to the buyer"),
    "shop": N_("Shop"),
    "bank_transfer": N_("Bank transfer"),
    "cheque": N_("Cheque"),
    "cash": N_("Cash"),
    "other": N_("Other"),
    "user": N_("User"),
    "system": N_("Comptoir"),
    "success": N_("Succeeded"),
    "failure": N_("Failed"),
    # platforms (brand names)
    "shopify": "Shopify",
    "woocommerce": "WooCommerce",
    "prestashop": "PrestaShop",
    "magento": "Magento 2",
    # inbox follow-ups: what a delivery lacked, read from the shop afterwards
    "fetch/transactions": N_("Payments read from the shop after the delivery"),
    "fetch/order": N_("Order read from the shop after a delivery about it"),
    # invoicing policy of a shop
    "manual": N_("By hand"),
    "on_payment": N_("When paid"),
    "on_shipment": N_("When shipped"),
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
