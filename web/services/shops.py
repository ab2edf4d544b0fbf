"""Shops: creation with suggested mappings, lookup, connectors, mapping suggestions."""

from __future__ import annotations

import datetime as dt
import re
import secrets

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, load_only

from web.connectors import addresses
from web.connectors.base import Connector, ShopSettings
from web.connectors.registry import make_connector
from web.i18n import N_
from web.models import (
    MilestoneMapping,
    PaymentMethodMapping,
    ShippingMode,
    Shop,
    StatusMapping,
)
from web.models.enums import Milestone, Platform, ShopStatusMeaning
from web.services.errors import NotFound, ValidationFailed
from web.services.pacing import pacer_for
from web.services.shipping_modes import ensure_default_shipping_modes

M = ShopStatusMeaning

# What each platform's stock statuses mean; a shop's own extra statuses park orders
# ("needs mapping") until a person says what they mean.
DEFAULT_STATUS_MEANINGS: dict[Platform, dict[str, ShopStatusMeaning]] = {
    Platform.SHOPIFY: {
        "pending": M.AWAITING_PAYMENT,
        "authorized": M.AWAITING_PAYMENT,
        "partially_paid": M.AWAITING_PAYMENT,
        "paid": M.PAID,
        "partially_refunded": M.PAID,
        "refunded": M.REFUNDED,
        "voided": M.CANCELLED,
        "expired": M.AWAITING_PAYMENT,
        "cancelled": M.CANCELLED,
    },
    Platform.WOOCOMMERCE: {
        "pending": M.AWAITING_PAYMENT,
        "on-hold": M.AWAITING_PAYMENT,
        "processing": M.PAID,
        "completed": M.COMPLETED,
        "cancelled": M.CANCELLED,
        "refunded": M.REFUNDED,
        "failed": M.AWAITING_PAYMENT,
        "checkout-draft": M.IGNORE,
    },
    # Ids of a fresh PrestaShop install; the settings page refreshes them from the shop.
    Platform.PRESTASHOP: {
        "1": M.AWAITING_PAYMENT,
        "2": M.PAID,
        "3": M.PROCESSING,
        "4": M.SHIPPED,
        "5": M.COMPLETED,
        "6": M.CANCELLED,
        "7": M.REFUNDED,
        "8": M.AWAITING_PAYMENT,
        "9": M.PAID,
        "10": M.AWAITING_PAYMENT,
        "11": M.PAID,
        "12": M.AWAITING_PAYMENT,
        "13": M.AWAITING_PAYMENT,
    },
    Platform.MAGENTO: {
        "pending": M.AWAITING_PAYMENT,
        "pending_payment": M.AWAITING_PAYMENT,
        "processing": M.PAID,
        "fraud": M.ON_HOLD,
        "payment_review": M.ON_HOLD,
        "holded": M.ON_HOLD,
        "complete": M.COMPLETED,
        "closed": M.REFUNDED,
        "canceled": M.CANCELLED,
    },
}

# Which shop status each milestone is pushed as, and whether that push is on by default.
DEFAULT_MILESTONES: dict[Platform, dict[Milestone, tuple[str, bool]]] = {
    Platform.SHOPIFY: {  # Shopify has no free statuses: actions instead
        Milestone.CANCELLED: ("cancel", True),
        Milestone.COMPLETED: ("close", False),
    },
    Platform.WOOCOMMERCE: {
        Milestone.VALIDATED: ("processing", False),
        Milestone.PROCESSING: ("processing", True),
        Milestone.PARTIALLY_SHIPPED: ("processing", False),
        Milestone.COMPLETED: ("completed", True),
        Milestone.CANCELLED: ("cancelled", True),
    },
    Platform.PRESTASHOP: {
        Milestone.VALIDATED: ("2", False),
        Milestone.PROCESSING: ("3", True),
        Milestone.PARTIALLY_SHIPPED: ("3", False),
        Milestone.COMPLETED: ("4", True),
        Milestone.CANCELLED: ("6", True),
    },
    Platform.MAGENTO: {
        Milestone.VALIDATED: ("processing", False),
        Milestone.PROCESSING: ("processing", True),
        Milestone.COMPLETED: ("complete", True),
        Milestone.CANCELLED: ("canceled", True),
    },
}

# Payment methods common on each platform; all count as payment once money is recorded.
DEFAULT_PAYMENT_METHODS: dict[Platform, dict[str, str]] = {
    Platform.SHOPIFY: {
        "shopify_payments": "Shopify Payments",
        "paypal": "PayPal",
        "manual": "Paiement manuel",
        "bogus": "Bogus (test)",
    },
    Platform.WOOCOMMERCE: {
        "bacs": "Virement bancaire",
        "cheque": "Chèque",
        "cod": "Paiement à la livraison",
        "paypal": "PayPal",
        "ppcp-gateway": "PayPal",
        "stripe": "Carte bancaire (Stripe)",
    },
    Platform.PRESTASHOP: {
        "ps_wirepayment": "Virement bancaire",
        "ps_checkpayment": "Chèque",
        "ps_cashondelivery": "Paiement à la livraison",
        "ps_checkout": "PrestaShop Checkout",
        "paypal": "PayPal",
        "stripe_official": "Carte bancaire (Stripe)",
        "payplug": "Carte bancaire (PayPlug)",
    },
    Platform.MAGENTO: {
        "checkmo": "Chèque / mandat",
        "banktransfer": "Virement bancaire",
        "cashondelivery": "Paiement à la livraison",
        "purchaseorder": "Bon de commande",
        "free": "Gratuit",
        "paypal_express": "PayPal",
        "braintree": "Carte bancaire (Braintree)",
    },
}

KEY_LENGTH = 32  # Shop.key
KEY_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{2,31}$")


def new_shop_key(platform: Platform) -> str:
    """A public, unguessable key for the shop's webhook URL."""
    return f"{platform.value[:4]}-{secrets.token_hex(6)}"


def clean_base_url(url: object) -> str:
    """The shop's URL without its trailing slash, if Comptoir may connect to it.

    ValueError (a message id) otherwise: an https:// URL of a shop on the public internet,
    or anything http(s) with APP_ALLOW_PRIVATE_SHOP_URLS=1 (see web/connectors/addresses.py).
    """
    try:
        return addresses.check_shop_url(url)
    except addresses.RefusedAddress as exc:
        raise ValueError(str(exc)) from exc


def _validate_url(url: str) -> str:
    try:
        return clean_base_url(url)
    except ValueError as exc:
        raise ValidationFailed(str(exc), {"url": str(exc)}) from exc


# Platforms whose shops send Comptoir's change notifications through its module, and are
# probed for changes every PROBE_INTERVAL_SECONDS by default (docs/NOTIFICATIONS.md).
NOTIFYING_PLATFORMS = (Platform.PRESTASHOP, Platform.MAGENTO)
# Platforms signing with a secret Comptoir makes up (the merchant pastes it into the shop).
OUR_SECRET_PLATFORMS = (Platform.WOOCOMMERCE, *NOTIFYING_PLATFORMS)
PROBE_INTERVAL_SECONDS = 30
# The reconciliation poll behind Shopify's and WooCommerce's webhooks.
POLL_INTERVAL_SECONDS = 300


def create_shop(
    session: Session,
    platform: Platform | str,
    name: str,
    base_url: str,
    *,
    webhook_secret: str | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
    import_from: dt.date | None = None,
    key: str | None = None,
) -> Shop:
    """Create a shop with the platform's suggested status, milestone and payment mappings."""
    try:
        platform = Platform(platform)
    except ValueError as exc:
        raise ValidationFailed(
            N_("Unknown platform."), {"platform": N_("Unknown platform.")}
        ) from exc
    if not name.strip():
        raise ValidationFailed(N_("The shop needs a name."), {"name": N_("Required.")})
    if key is not None and not KEY_PATTERN.match(key):
        raise ValidationFailed(N_("Invalid shop key."), {"key": N_("Invalid shop key.")})
    if key is not None and find_by_key(session, key) is not None:
        raise ValidationFailed(
            N_("A shop with this key already exists."),
            {"key": N_("A shop with this key already exists.")},
        )
    shop = Shop(
        key=key or new_shop_key(platform),
        platform=platform,
        name=name.strip(),
        base_url=_validate_url(base_url),
        webhook_secret=webhook_secret
        or (secrets.token_urlsafe(32) if platform in OUR_SECRET_PLATFORMS else None),
        api_key=api_key or None,
        api_secret=api_secret or None,
        import_from=import_from,
        poll_interval_seconds=(
            PROBE_INTERVAL_SECONDS if platform in NOTIFYING_PLATFORMS else POLL_INTERVAL_SECONDS
        ),
    )
    session.add(shop)
    ensure_default_shipping_modes(session)
    for status, meaning in DEFAULT_STATUS_MEANINGS[platform].items():
        shop.status_mappings.append(StatusMapping(shop_status=status, meaning=meaning))
    for milestone, (status, enabled) in DEFAULT_MILESTONES[platform].items():
        shop.milestone_mappings.append(
            MilestoneMapping(milestone=milestone, shop_status=status, enabled=enabled)
        )
    for method, label in DEFAULT_PAYMENT_METHODS[platform].items():
        shop.payment_mappings.append(
            PaymentMethodMapping(shop_method=method, label=label, counts_as_payment=True)
        )
    session.flush()
    return shop


def find_by_key(session: Session, key: str) -> Shop | None:
    """The shop with this public key, or None."""
    return session.scalar(select(Shop).where(Shop.key == key))


# Built once: a webhook pays for a compiled-cache hit, not for building the options.
_WEBHOOK_SHOP = (
    select(Shop)
    .where(Shop.key == bindparam("key"))
    .options(
        load_only(
            Shop.id,
            Shop.key,
            Shop.platform,
            Shop.base_url,
            Shop.webhook_secret,
            Shop.is_active,
            raiseload=True,
        )
    )
)


def find_for_webhook(session: Session, key: str) -> Shop | None:
    """The shop with this public key, with only what checking a delivery needs, or None.

    One indexed row: no mappings, and no API credentials decrypted (only the webhook
    secret); reading any other attribute of the returned shop raises. A key no shop can
    have (a NUL character, which PostgreSQL refuses in a query, or too long) finds none
    without asking the database.
    """
    if "\x00" in key or len(key) > KEY_LENGTH:
        return None
    return session.scalar(_WEBHOOK_SHOP, {"key": key})


def get_by_key(session: Session, key: str) -> Shop:
    """The shop with this public key; NotFound otherwise."""
    shop = find_by_key(session, key)
    if shop is None:
        raise NotFound(f"no shop with key {key!r}")
    return shop


def list_shops(session: Session) -> list[Shop]:
    """Every shop, by name."""
    return list(session.scalars(select(Shop).order_by(Shop.name)))


def webhook_url(base_url: str, shop: Shop) -> str:
    """The URL to paste into the shop's webhook settings."""
    return f"{base_url.rstrip('/')}/hooks/{shop.platform.value}/{shop.key}"


def settings_for(shop: Shop) -> ShopSettings:
    """Connection settings of a shop, secrets decrypted, its calls paced with every process's."""
    return ShopSettings(
        base_url=shop.base_url,
        api_key=shop.api_key or "",
        api_secret=shop.api_secret or "",
        webhook_secret=shop.webhook_secret or "",
        pacer=pacer_for(shop),
    )


def connector_for(shop: Shop) -> Connector:
    """The connector that talks to this shop, paced (see web.services.pacing)."""
    return make_connector(shop.platform, settings_for(shop))


def webhook_connector(shop: Shop) -> Connector:
    """A connector that can check and read this shop's deliveries, without its API keys."""
    return make_connector(
        shop.platform,
        ShopSettings(base_url=shop.base_url, webhook_secret=shop.webhook_secret or ""),
    )


_CARRIER_WORDS = (
    ("mondial", "mondial_relay"),
    ("chrono", "chronopost"),
    ("colissimo relais", "colissimo_relais"),
    ("point retrait", "colissimo_relais"),
    ("relais colissimo", "colissimo_relais"),
    ("colissimo", "colissimo"),
    ("la poste", "colissimo"),
    ("dpd", "dpd"),
    ("gls", "gls"),
    ("ups", "ups"),
)


def suggest_shipping_mode(label: str, modes: list[ShippingMode]) -> ShippingMode | None:
    """Guess the shipping mode a shop's shipping label means (a suggestion, never applied)."""
    folded = label.lower()
    by_code = {mode.code: mode for mode in modes}
    for word, code in _CARRIER_WORDS:
        if word in folded and code in by_code:
            return by_code[code]
    for mode in modes:
        if mode.name.lower() in folded or mode.carrier.lower() in folded:
            return mode
    return None
