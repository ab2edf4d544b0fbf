"""Shipping modes: the seeded French and international carriers (reference/carriers.md),
and the rules an admin's additions and changes must pass.

Tracking URL templates. A template is empty (the mode has no tracking page) or an absolute
`https://` or `http://` address with a fixed host, holding `{tracking}` once or more and
optionally `{postcode}`; no other placeholder, brace, space or control character, no
`user@` part. The host may not hold a placeholder: a tracking number never chooses where the
buyer is sent. When a link is made (ShippingMode.tracking_url), each value is stripped and
URL-encoded with nothing kept safe, so `/`, `?`, `&` or `#` in a tracking number stay data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from web.i18n import N_
from web.models import CarrierMapping, Shipment, ShippingMode, User
from web.services.audit import record_audit
from web.services.errors import NotFound, ValidationFailed


@dataclass(frozen=True)
class _ModeSpec:
    code: str
    name: str
    carrier: str
    service: str
    relay: bool
    template: str
    codes: dict[str, str]


def prestashop_url(template: str) -> str:
    """PrestaShop's carrier `url` for a template: `@` is the tracking number, no postcode."""
    parts = urlsplit(template)
    query = "&".join(item for item in parts.query.split("&") if item and "{postcode}" not in item)
    url = urlunsplit(parts._replace(query=query))
    return url.replace("{postcode}", "").replace("{tracking}", "@")


def _codes(shopify: str, woocommerce: str, prestashop_url_: str, magento: str) -> dict[str, str]:
    # carriers.md table B: Shopify `tracking_info.company`; WooCommerce Shipment Tracking
    # provider (built-in name/slug, else the custom provider name); PrestaShop carrier `url`
    # (`@` = tracking number, no postcode possible); Magento `carrier_code`.
    prestashop = prestashop_url(prestashop_url_)
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


# --- Rules for the modes an admin adds or changes --------------------------------------------

PLACEHOLDERS = ("tracking", "postcode")
PLATFORMS = ("shopify", "woocommerce", "prestashop", "magento")
TEMPLATE_MAX_LENGTH = 500  # ShippingMode.tracking_url_template
CODE_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAGENTO_CODE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
PLATFORM_CODE_MAX_LENGTH = 200
# What the settings page fills an example link with: a tracking number an attacker would
# like to see break out of its place, and a Paris postcode.
EXAMPLE_TRACKING = "6A12345678901"
EXAMPLE_POSTCODE = "75011"
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


def template_error(template: str) -> str | None:
    """Why a tracking URL template is refused (a msgid), or None when it is sound."""
    if not template:
        return None
    if len(template) > TEMPLATE_MAX_LENGTH:
        return N_("This value is too long.")
    if _UNSAFE.search(template):
        return N_("A tracking link holds no space or control character.")
    parts = urlsplit(template)
    if parts.scheme.lower() not in ("http", "https") or not template.lower().startswith(
        ("https://", "http://")
    ):
        return N_("The tracking link must start with https:// (or http://).")
    if not parts.hostname or "{" in parts.netloc or "}" in parts.netloc or "@" in parts.netloc:
        return N_("The tracking link needs a fixed host name, with no placeholder or user name.")
    names = _PLACEHOLDER.findall(template)
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    if unknown:
        return N_("Only the {tracking} and {postcode} placeholders are known.")
    if template.count("{") != len(names) or template.count("}") != len(names):
        return N_("Braces only surround {tracking} or {postcode}.")
    if "tracking" not in names:
        return N_("The tracking link must contain {tracking}, where the tracking number goes.")
    return None


def example_url(template: str) -> str:
    """The link a template makes for an example parcel ("" when refused or empty)."""
    if template_error(template):
        return ""
    return ShippingMode(tracking_url_template=template).tracking_url(
        EXAMPLE_TRACKING, EXAMPLE_POSTCODE
    )


def _text(fields: Mapping[str, Any], name: str, errors: dict[str, str], limit: int) -> str:
    value = str(fields.get(name) or "").strip()
    if "\x00" in value:
        errors[name] = N_("This value holds a character that cannot be stored.")
    elif len(value) > limit:
        errors[name] = N_("This value is too long.")
    return value


def _clean_codes(
    fields: Mapping[str, Any], template: str, errors: dict[str, str]
) -> dict[str, str]:
    """Each platform's carrier code; PrestaShop's link defaults to the tracking template's."""
    codes = {
        platform: _text(fields, f"code_{platform}", errors, PLATFORM_CODE_MAX_LENGTH)
        for platform in PLATFORMS
    }
    magento, prestashop = codes["magento"], codes["prestashop"]
    if magento and not MAGENTO_CODE.match(magento) and "code_magento" not in errors:
        errors["code_magento"] = N_("Lowercase letters, digits and _ only (custom, ups, dhl…).")
    if not prestashop:
        codes["prestashop"] = prestashop_url(template) if template else ""
    elif "code_prestashop" not in errors:
        parts = urlsplit(prestashop)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or _UNSAFE.search(prestashop)
        ):
            errors["code_prestashop"] = N_(
                "PrestaShop needs the carrier's https:// link, with @ where the number goes."
            )
    return codes


def clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check a mode's form (except its code); return the values to store or raise."""
    errors: dict[str, str] = {}
    name = _text(fields, "name", errors, 120)
    carrier = _text(fields, "carrier", errors, 80)
    service = _text(fields, "service", errors, 80)
    template = _text(fields, "tracking_url_template", errors, TEMPLATE_MAX_LENGTH)
    for required, value in (("name", name), ("carrier", carrier)):
        if not value and required not in errors:
            errors[required] = N_("Required.")
    problem = template_error(template)
    if problem and "tracking_url_template" not in errors:
        errors["tracking_url_template"] = problem
    codes = _clean_codes(fields, template if not problem else "", errors)
    if errors:
        raise ValidationFailed(N_("Check the highlighted fields."), errors)
    return {
        "name": name,
        "carrier": carrier,
        "service": service,
        "is_relay_point": bool(fields.get("is_relay_point")),
        "tracking_url_template": template,
        "carrier_codes": {platform: code for platform, code in codes.items() if code},
    }


def _clean_code(session: Session, value: Any) -> str:
    code = str(value or "").strip()
    message = None
    if not CODE_PATTERN.match(code):
        message = N_("Lowercase letters, digits, - and _ only, 40 at most (e.g. colissimo_relais).")
    elif session.scalar(select(ShippingMode.id).where(ShippingMode.code == code)) is not None:
        message = N_("Another shipping mode already has this code.")
    if message:
        raise ValidationFailed(message, {"code": message})
    return code


def create_mode(session: Session, fields: Mapping[str, Any]) -> ShippingMode:
    """Add an active shipping mode; its code never changes afterwards."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    try:
        values["code"] = _clean_code(session, fields.get("code"))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        values.update(clean_fields(fields))
    except ValidationFailed as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationFailed(N_("Check the highlighted fields."), errors)
    mode = ShippingMode(is_active=True, **values)
    session.add(mode)
    session.flush()
    return mode


def update_mode(
    session: Session,
    mode: ShippingMode,
    fields: Mapping[str, Any],
    *,
    actor: User | None = None,
    address: str = "",
) -> ShippingMode:
    """Change a mode's name, carrier, service, relay flag, tracking link and platform codes.

    A new tracking link goes to the audit log: it decides where every buyer is sent.
    """
    values = clean_fields(fields)
    if values["tracking_url_template"] != mode.tracking_url_template:
        record_audit(
            session,
            "shipping_mode.tracking_url_changed",
            actor=actor,
            address=address,
            params={
                "mode": mode.code,
                "old_url": mode.tracking_url_template,
                "new_url": values["tracking_url_template"],
            },
        )
    for name, value in values.items():
        setattr(mode, name, value)
    session.flush()
    return mode


def set_active(session: Session, mode: ShippingMode, active: bool) -> None:
    """Deactivate a mode (it leaves every choice, its history stays) or bring it back."""
    mode.is_active = active
    session.flush()


def get_mode(session: Session, mode_id: int) -> ShippingMode:
    mode = session.get(ShippingMode, mode_id)
    if mode is None:
        raise NotFound(f"no shipping mode {mode_id}")
    return mode


def active_mode(session: Session, code: str) -> ShippingMode | None:
    """The active mode with this code, or None (an inactive mode is no longer a choice)."""
    return session.scalar(
        select(ShippingMode).where(ShippingMode.code == code, ShippingMode.is_active.is_(True))
    )


def active_modes(session: Session) -> list[ShippingMode]:
    """The modes people may choose now, by name."""
    return list(
        session.scalars(
            select(ShippingMode)
            .where(ShippingMode.is_active.is_(True))
            .order_by(ShippingMode.name, ShippingMode.id)
        )
    )


STATUSES = ("all", "active", "inactive")


@dataclass(frozen=True)
class ModeRow:
    """A mode on the settings page, with how many mappings and shipments use it."""

    mode: ShippingMode
    mappings: int
    shipments: int


def list_modes(session: Session, status: str = "all") -> list[ModeRow]:
    """The modes, active first then by name, with their use; status filters them."""
    mappings = (
        select(func.count(CarrierMapping.id))
        .where(CarrierMapping.shipping_mode_id == ShippingMode.id)
        .scalar_subquery()
    )
    shipments = (
        select(func.count(Shipment.id))
        .where(Shipment.shipping_mode_id == ShippingMode.id)
        .scalar_subquery()
    )
    query = select(ShippingMode, mappings, shipments).order_by(
        case((ShippingMode.is_active.is_(True), 0), else_=1), ShippingMode.name, ShippingMode.id
    )
    if status == "active":
        query = query.where(ShippingMode.is_active.is_(True))
    elif status == "inactive":
        query = query.where(ShippingMode.is_active.is_(False))
    return [ModeRow(mode, used, shipped) for mode, used, shipped in session.execute(query)]


def form_values(mode: ShippingMode) -> dict[str, Any]:
    """A mode as its edit form's fields."""
    codes = mode.carrier_codes or {}
    return {
        "code": mode.code,
        "name": mode.name,
        "carrier": mode.carrier,
        "service": mode.service,
        "is_relay_point": mode.is_relay_point,
        "tracking_url_template": mode.tracking_url_template,
        **{f"code_{platform}": str(codes.get(platform, "")) for platform in PLATFORMS},
    }
