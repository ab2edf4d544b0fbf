"""The shipping modes of common French carriers, with tracking links and per-platform codes
(reference/carriers.md), created once per deployment."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import ShippingMode


@dataclass(frozen=True)
class _ModeSpec:
    code: str
    name: str
    carrier: str
    service: str
    relay: bool
    template: str
    codes: dict[str, str]


def _codes(shopify: str, woocommerce: str, prestashop_url: str, magento: str) -> dict[str, str]:
    # carriers.md table B: Shopify `tracking_info.company`; WooCommerce Shipment Tracking
    # provider (built-in name/slug, else the custom provider name); PrestaShop carrier `url`
    # (`@` = tracking number, no postcode possible); Magento `carrier_code`.
    prestashop = prestashop_url.replace("{tracking}", "@").replace("&codePostal={postcode}", "")
    return {
        "shopify": shopify,
        "woocommerce": woocommerce,
        "prestashop": prestashop,
        "magento": magento,
    }


# Tables below are data, kept one record per line.
# fmt: off
_LAPOSTE = "https://www.laposte.fr/outils/suivre-vos-envois?code={tracking}"
_CHRONO = "https://www.chronopost.fr/tracking-no-cms/suivi-page?listeNumerosLT={tracking}&langue=fr"
_MONDIAL = ("https://www.mondialrelay.fr/suivi-de-colis?numeroExpedition={tracking}"
            "&codePostal={postcode}")
_DPD = "https://trace.dpd.fr/fr/trace/{tracking}"
_GLS = "https://gls-group.com/FR/fr/suivi-colis?match={tracking}"
_UPS = "https://www.ups.com/track?loc=fr_FR&tracknum={tracking}"

SHIPPING_MODES: tuple[_ModeSpec, ...] = (
    _ModeSpec("colissimo", "Colissimo Domicile", "Colissimo", "Domicile sans signature", False,
              _LAPOSTE, _codes("Colissimo", "colissimo", _LAPOSTE, "custom")),
    _ModeSpec("colissimo_relais", "Colissimo Point Retrait", "Colissimo", "Point Retrait", True,
              _LAPOSTE, _codes("Colissimo", "colissimo", _LAPOSTE, "custom")),
    _ModeSpec("mondial_relay", "Mondial Relay Point Relais", "Mondial Relay", "Point Relais",
              True, _MONDIAL, _codes("Mondial Relay", "Mondial Relay", _MONDIAL, "custom")),
    _ModeSpec("chronopost", "Chronopost Chrono 13", "Chronopost", "Chrono 13", False,
              _CHRONO, _codes("Chronopost", "Chronopost", _CHRONO, "custom")),
    _ModeSpec("dpd", "DPD Predict", "DPD France", "Predict", False,
              _DPD, _codes("DPD", "DPD France", _DPD, "custom")),
    _ModeSpec("gls", "GLS Chez vous", "GLS", "Chez vous +", False,
              _GLS, _codes("GLS", "GLS", _GLS, "custom")),
    _ModeSpec("ups", "UPS Standard", "UPS", "Standard", False,
              _UPS, _codes("UPS", "ups", _UPS, "ups")),
)
# fmt: on


def ensure_default_shipping_modes(session: Session) -> dict[str, ShippingMode]:
    """Create the standard shipping modes that do not exist yet; return all of them by code."""
    codes = [spec.code for spec in SHIPPING_MODES]
    existing = {
        mode.code: mode
        for mode in session.scalars(select(ShippingMode).where(ShippingMode.code.in_(codes)))
    }
    for spec in SHIPPING_MODES:
        if spec.code not in existing:
            mode = ShippingMode(
                code=spec.code,
                name=spec.name,
                carrier=spec.carrier,
                service=spec.service,
                is_relay_point=spec.relay,
                tracking_url_template=spec.template,
                carrier_codes=dict(spec.codes),
                is_active=True,
            )
            session.add(mode)
            existing[spec.code] = mode
    session.flush()
    return existing
