"""Shops: creation with the platform's suggested mappings, keys, lookups and suggestions."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.connectors.woocommerce import WooCommerceConnector
from web.models import ShippingMode
from web.models.enums import Milestone, Platform, ShopStatusMeaning
from web.services import shops
from web.services.errors import NotFound, ValidationFailed
from web.services.shipping_modes import ensure_default_shipping_modes


def test_a_new_woocommerce_shop_comes_with_its_key_secret_and_suggested_mappings(
    db_session: Session,
) -> None:
    shop = shops.create_shop(
        db_session, "woocommerce", "  Thés  ", "https://thes.example.com/", api_key=""
    )
    assert re.fullmatch(r"wooc-[0-9a-f]{12}", shop.key)
    assert shop.platform == Platform.WOOCOMMERCE
    assert (shop.name, shop.base_url) == ("Thés", "https://thes.example.com")
    assert shop.webhook_secret is not None and len(shop.webhook_secret) == 43
    assert (shop.api_key, shop.api_secret) == (None, None)
    assert shop.poll_interval_seconds == 300
    assert {m.shop_status: m.meaning for m in shop.status_mappings} == {
        "pending": ShopStatusMeaning.AWAITING_PAYMENT,
        "on-hold": ShopStatusMeaning.AWAITING_PAYMENT,
        "processing": ShopStatusMeaning.PAID,
        "completed": ShopStatusMeaning.COMPLETED,
        "cancelled": ShopStatusMeaning.CANCELLED,
        "refunded": ShopStatusMeaning.REFUNDED,
        "failed": ShopStatusMeaning.AWAITING_PAYMENT,
        "checkout-draft": ShopStatusMeaning.IGNORE,
    }
    assert {m.milestone: (m.shop_status, m.enabled) for m in shop.milestone_mappings} == {
        Milestone.VALIDATED: ("processing", False),
        Milestone.PROCESSING: ("processing", True),
        Milestone.PARTIALLY_SHIPPED: ("processing", False),
        Milestone.COMPLETED: ("completed", True),
        Milestone.CANCELLED: ("cancelled", True),
    }
    payments = {m.shop_method: (m.label, m.counts_as_payment) for m in shop.payment_mappings}
    assert payments["bacs"] == ("Virement bancaire", True)
    assert len(payments) == 6 and all(counts for _, counts in payments.values())
    assert set(db_session.scalars(select(ShippingMode.code))) >= {"colissimo", "ups"}


def test_shopify_signs_with_its_own_secret_and_notifying_platforms_are_probed_often(
    db_session: Session,
) -> None:
    shopify = shops.create_shop(
        db_session, "shopify", "Boutique", "https://b.example.com", api_key="k", api_secret="s"
    )
    assert re.fullmatch(r"shop-[0-9a-f]{12}", shopify.key)
    assert shopify.webhook_secret is None
    assert (shopify.api_key, shopify.api_secret) == ("k", "s")
    assert shopify.poll_interval_seconds == 300
    given = shops.create_shop(
        db_session, "shopify", "B2", "https://b2.example.com", webhook_secret="shpss_given"
    )
    assert given.webhook_secret == "shpss_given"
    presta = shops.create_shop(db_session, Platform.PRESTASHOP, "P", "https://p.example.com")
    assert presta.webhook_secret and presta.poll_interval_seconds == 30
    magento = shops.create_shop(
        db_session,
        "magento",
        "M",
        "https://m.example.com",
        key="mon-magento",
        import_from=dt.date(2026, 1, 1),
    )
    assert magento.key == "mon-magento" and magento.poll_interval_seconds == 30
    assert magento.import_from == dt.date(2026, 1, 1) and presta.import_from is None


@pytest.mark.parametrize(
    ("platform", "name", "url", "key", "field", "message"),
    [
        ("etsy", "Thés", "https://t.example.com", None, "platform", "Unknown platform."),
        ("woocommerce", "   ", "https://t.example.com", None, "name", "Required."),
        ("woocommerce", "Thés", "https://t.example.com", "Thés", "key", "Invalid shop key."),
        ("woocommerce", "Thés", "https://t.example.com", "ab", "key", "Invalid shop key."),
        ("woocommerce", "Thés", "ftp://t.example.com", None, "url", None),
    ],
)
def test_a_shop_is_refused_with_the_field_to_fix(
    db_session: Session,
    platform: str,
    name: str,
    url: str,
    key: str | None,
    field: str,
    message: str | None,
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        shops.create_shop(db_session, platform, name, url, key=key)
    assert list(refused.value.errors) == [field]
    if message is not None:
        assert refused.value.errors[field] == message


def test_a_key_is_taken_once_and_refusals_say_so(db_session: Session) -> None:
    shops.create_shop(db_session, "woocommerce", "Thés", "https://t.example.com", key="thes")
    with pytest.raises(ValidationFailed) as refused:
        shops.create_shop(db_session, "woocommerce", "Thés 2", "https://t2.example.com", key="thes")
    assert str(refused.value) == "A shop with this key already exists."
    assert refused.value.errors == {"key": "A shop with this key already exists."}
    with pytest.raises(ValidationFailed) as unnamed:
        shops.create_shop(db_session, "woocommerce", "", "https://t.example.com")
    assert str(unnamed.value) == "The shop needs a name."
    with pytest.raises(ValidationFailed) as unknown:
        shops.create_shop(db_session, "etsy", "Thés", "https://t.example.com")
    assert str(unknown.value) == "Unknown platform."
    with pytest.raises(ValidationFailed) as invalid:
        shops.create_shop(db_session, "woocommerce", "Thés", "https://t.example.com", key="-x")
    assert str(invalid.value) == "Invalid shop key."


def test_shops_are_found_by_key_listed_by_name_and_a_missing_one_is_named(
    db_session: Session,
) -> None:
    longest = "a" * 32
    zen = shops.create_shop(db_session, "woocommerce", "Zen", "https://z.example.com", key=longest)
    alpha = shops.create_shop(db_session, "shopify", "Alpha", "https://a.example.com")
    assert shops.find_for_webhook(db_session, longest) is zen
    assert shops.find_for_webhook(db_session, longest + "a") is None
    assert shops.find_for_webhook(db_session, "ab\x00c") is None
    assert shops.get_by_key(db_session, alpha.key) is alpha
    with pytest.raises(NotFound) as missing:
        shops.get_by_key(db_session, "nope")
    assert str(missing.value) == "no shop with key 'nope'"
    assert [shop.name for shop in shops.list_shops(db_session)] == ["Alpha", "Zen"]


def test_the_webhook_url_and_the_connectors_of_a_shop(db_session: Session) -> None:
    shop = shops.create_shop(
        db_session,
        "woocommerce",
        "Thés",
        "https://thes.example.com",
        key="thes",
        api_key="ck_1",
        api_secret="cs_2",
    )
    assert (
        shops.webhook_url("https://comptoir.example.com/", shop)
        == "https://comptoir.example.com/hooks/woocommerce/thes"
    )
    # Comptoir served under a path of its own: only the trailing slash goes.
    assert (
        shops.webhook_url("https://example.com/COMPTOIRX/", shop)
        == "https://example.com/COMPTOIRX/hooks/woocommerce/thes"
    )
    settings = shops.settings_for(shop)
    assert (settings.base_url, settings.api_key, settings.api_secret) == (
        "https://thes.example.com",
        "ck_1",
        "cs_2",
    )
    assert settings.webhook_secret == shop.webhook_secret and settings.pacer is not None
    connector = shops.connector_for(shop)
    assert isinstance(connector, WooCommerceConnector) and connector.settings.api_key == "ck_1"
    hooks = shops.webhook_connector(shop)
    assert isinstance(hooks, WooCommerceConnector)
    assert (hooks.settings.base_url, hooks.settings.webhook_secret) == (
        "https://thes.example.com",
        shop.webhook_secret,
    )
    assert (hooks.settings.api_key, hooks.settings.api_secret) == ("", "")

    bare = shops.create_shop(db_session, "shopify", "Nu", "https://nu.example.com")
    unset = shops.settings_for(bare)
    assert (unset.api_key, unset.api_secret, unset.webhook_secret) == ("", "", "")
    assert shops.webhook_connector(bare).settings.webhook_secret == ""


@pytest.mark.parametrize(
    ("label", "code"),
    [
        ("MONDIAL RELAY - Point Relais", "mondial_relay"),
        ("Chronopost 13h", "chronopost"),
        ("Colissimo relais", "colissimo_relais"),
        ("Livraison en point retrait", "colissimo_relais"),
        ("Relais Colissimo", "colissimo_relais"),
        ("Colissimo suivi", "colissimo"),
        ("La Poste lettre suivie", "colissimo"),
        ("DPD Predict", "dpd"),
        ("GLS express", "gls"),
        ("Livraison UPS", "ups"),
        ("Coursier à vélo", None),
    ],
)
def test_a_shipping_label_suggests_the_carrier_it_names(
    db_session: Session, label: str, code: str | None
) -> None:
    modes = list(ensure_default_shipping_modes(db_session).values())
    suggested = shops.suggest_shipping_mode(label, modes)
    assert (suggested.code if suggested else None) == code


def test_a_label_naming_a_mode_or_its_carrier_suggests_that_mode(db_session: Session) -> None:
    courier = ShippingMode(code="coursier", name="Coursier Paris", carrier="Stuart")
    ups = ShippingMode(code="ups_custom", name="Express", carrier="UPS")
    assert shops.suggest_shipping_mode("Le coursier paris", [courier, ups]) is courier
    assert shops.suggest_shipping_mode("Envoi STUART", [ups, courier]) is courier
    # "ups" is a known word but no mode has the code: the carrier's name finds it.
    assert shops.suggest_shipping_mode("Livraison UPS", [courier, ups]) is ups
