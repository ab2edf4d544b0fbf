"""The company settings: the seller's identity and terms, checked field by field, audited.

Identifiers are checked with python-stdnum (check digits, not a registry lookup): SIREN,
SIRET (whose first nine digits are the SIREN), the VAT number (a French one embeds the
SIREN), IBAN and BIC. A change is all or nothing: one refused field refuses the whole change,
and ValidationFailed names every refused field. Every change goes to the audit log; the legal
identity and the bank details with their old and new values, since an invoice printed with
someone else's SIREN or IBAN is the costly mistake (or the fraud) to trace.

The logo is stored in the row and inlined into the PDFs; it is checked by its content (PNG,
JPEG or an SVG that references nothing outside itself), never by its name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import defusedxml.ElementTree as SafeXml
from babel import Locale
from defusedxml import DefusedXmlException
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.orm import Session
from stdnum import bic, iban
from stdnum.eu import vat
from stdnum.exceptions import ValidationError
from stdnum.fr import siren, siret

from web.documents.render import wkhtmltopdf_binary
from web.i18n import N_
from web.models import CompanySettings, User
from web.models.enums import VatRegime
from web.services.audit import record_audit
from web.services.errors import ValidationFailed

# The keys of `flask company set` and of the settings form, in the form's order.
IDENTITY_KEYS = (
    "legal_name",
    "trade_name",
    "legal_form",
    "address",
    "postcode",
    "city",
    "country",
    "siren",
    "siret",
    "rcs_city",
    "share_capital",
    "vat_number",
    "vat_regime",
)
BANK_KEYS = ("iban", "bic")
OTHER_KEYS = (
    "email",
    "phone",
    "website",
    "payment_terms",
    "payment_days",
    "early_payment",
    "late_penalty",
    "recovery_indemnity",
    "invoice_prefix",
    "credit_note_prefix",
    "delivery_note_prefix",
    "pdf_engine",
    "link_days",
)
KEYS = IDENTITY_KEYS + BANK_KEYS + OTHER_KEYS
# Changing these changes who the documents say sold: audited with old and new values.
AUDITED_VALUES = frozenset(IDENTITY_KEYS + BANK_KEYS)

DEFAULTS = {
    "payment_terms": "Paiement à réception de facture",
    "early_payment": "Pas d'escompte pour paiement anticipé",
    "late_penalty": (
        "En cas de retard de paiement, pénalités au taux de la BCE majoré de 10 points"
    ),
    "recovery_indemnity": (
        "Indemnité forfaitaire pour frais de recouvrement : 40 € (art. D441-5 du Code de commerce)"
    ),
}

ENGINES = ("weasyprint", "wkhtmltopdf")
# Code de commerce L441-10: agreed payment terms may not exceed 60 days from the invoice.
MAX_PAYMENT_DAYS = 60
MAX_LINK_DAYS = 3650
MAX_SHARE_CAPITAL = Decimal("999999999999.99")  # Money: 14 digits, 2 after the point
MAX_LOGO_BYTES = 512 * 1024
PREFIX = re.compile(r"[A-Za-z0-9]{1,10}")
# CLDR territories that are not countries (EU, the euro zone, the UN, test codes).
NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "XA", "XB", "ZZ"})
LOGO_TYPES = ("image/png", "image/jpeg", "image/svg+xml")


def ensure_company(session: Session) -> CompanySettings:
    """The settings row, created with the usual French payment wording when there is none."""
    company = session.get(CompanySettings, 1)
    if company is None:
        company = CompanySettings(id=1, **DEFAULTS)
        session.add(company)
        session.flush()
    return company


def company_or_defaults(session: Session) -> CompanySettings:
    """The settings row, or (not added to the session) what a new one would hold."""
    company = session.get(CompanySettings, 1)
    if company is not None:
        return company
    values: dict[str, Any] = {}
    for column in CompanySettings.__table__.columns:
        default = column.default
        if default is not None and default.is_scalar:
            values[column.key] = default.arg
    return CompanySettings(**{**values, **DEFAULTS})


def engine_choices() -> list[str]:
    """The PDF engines this machine can use (wkhtmltopdf only when its binary is installed)."""
    return [name for name in ENGINES if name != "wkhtmltopdf" or wkhtmltopdf_binary()]


# --- Checking one value ----------------------------------------------------------------------


def _length(key: str) -> int | None:
    return getattr(CompanySettings.__table__.c[key].type, "length", None)


def _text(key: str, value: str) -> str:
    limit = _length(key)
    if limit is not None and len(value) > limit:
        raise ValueError(N_("This text is too long."))
    if "\n" in value and key != "address" and _length(key) is not None:
        raise ValueError(N_("Keep this on one line."))
    return value


def _siren(value: str) -> str:
    try:
        return str(siren.validate(value))
    except ValidationError as exc:
        raise ValueError(N_("This is not a valid SIREN (9 digits with a check digit).")) from exc


def _siret(value: str) -> str:
    try:
        return str(siret.validate(value))
    except ValidationError as exc:
        raise ValueError(N_("This is not a valid SIRET (14 digits with a check digit).")) from exc


def _vat_number(value: str) -> str:
    try:
        return str(vat.validate(value))
    except ValidationError as exc:
        raise ValueError(
            N_("This is not a valid EU VAT number (country code, then the number).")
        ) from exc


def _iban(value: str) -> str:
    try:
        return str(iban.validate(value))
    except ValidationError as exc:
        raise ValueError(N_("This is not a valid IBAN.")) from exc


def _bic(value: str) -> str:
    try:
        return str(bic.validate(value))
    except ValidationError as exc:
        raise ValueError(N_("This is not a valid BIC (8 or 11 letters and digits).")) from exc


def _country(value: str) -> str:
    code = value.upper()
    territories = Locale.parse("en").territories
    if len(code) != 2 or not code.isalpha() or code not in territories or code in NOT_COUNTRIES:
        raise ValueError(N_("Enter the country's two-letter ISO code, such as FR."))
    return code


def _share_capital(value: str) -> Decimal | None:
    if not value:
        return None
    text = value.replace("\u202f", "").replace("\xa0", "").replace(" ", "").replace(",", ".")
    text = text.removesuffix("€").removeprefix("€")
    try:
        amount = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(N_("Enter an amount in euros, such as 10000 or 7500.50.")) from exc
    if not amount.is_finite() or amount < 0:
        raise ValueError(N_("The share capital cannot be negative."))
    if amount != amount.quantize(Decimal("0.01")) or amount > MAX_SHARE_CAPITAL:
        raise ValueError(N_("Enter an amount in euros, such as 10000 or 7500.50."))
    return amount.quantize(Decimal("0.01"))


def _vat_regime(value: str) -> VatRegime:
    try:
        return VatRegime(value.lower())
    except ValueError as exc:
        raise ValueError(N_("Choose normal or franchise.")) from exc


def _whole(value: str, low: int, high: int, message: str) -> int:
    if not re.fullmatch(r"\d{1,6}", value) or not low <= int(value) <= high:
        raise ValueError(message)
    return int(value)


def _payment_days(value: str) -> int:
    return _whole(
        value, 0, MAX_PAYMENT_DAYS, N_("Enter a number of days from 0 to 60 (art. L441-10).")
    )


def _link_days(value: str) -> int:
    return _whole(value, 1, MAX_LINK_DAYS, N_("Enter a number of days from 1 to 3650."))


def _prefix(value: str) -> str:
    if not PREFIX.fullmatch(value):
        raise ValueError(N_("Use 1 to 10 letters or digits."))
    return value.upper()


def _pdf_engine(value: str) -> str:
    if value not in ENGINES:
        raise ValueError(N_("Choose weasyprint or wkhtmltopdf."))
    if value not in engine_choices():
        raise ValueError(N_("wkhtmltopdf is not installed on this server."))
    return value


def _email(value: str) -> str:
    if not value:
        return ""
    try:
        return str(validate_email(value, check_deliverability=False).normalized)
    except EmailNotValidError as exc:
        raise ValueError(N_("This is not a valid e-mail address.")) from exc


def _website(value: str) -> str:
    if value and not re.fullmatch(r"https?://[^\s/]+\.[^\s]+", value, flags=re.IGNORECASE):
        raise ValueError(N_("Enter the site's address, starting with https://."))
    return _text("website", value)


# Fields that may be empty (clearing them) go through their checker only when filled.
_CHECKS = {
    "siren": _siren,
    "siret": _siret,
    "vat_number": _vat_number,
    "iban": _iban,
    "bic": _bic,
    "country": _country,
    "email": _email,
    "website": _website,
}
# Fields that always have a value.
_REQUIRED_CHECKS = {
    "share_capital": _share_capital,
    "vat_regime": _vat_regime,
    "payment_days": _payment_days,
    "link_days": _link_days,
    "invoice_prefix": _prefix,
    "credit_note_prefix": _prefix,
    "delivery_note_prefix": _prefix,
    "pdf_engine": _pdf_engine,
}


def _clean_one(key: str, raw: Any) -> Any:
    value = "" if raw is None else str(raw).replace("\r\n", "\n").strip()
    if key == "address":
        value = "\n".join(line.strip() for line in value.splitlines() if line.strip())
    if key in _REQUIRED_CHECKS:
        return _REQUIRED_CHECKS[key](value)
    if key in _CHECKS and value:
        return _CHECKS[key](value)
    return _text(key, value)


def clean_fields(fields: Mapping[str, Any], company: CompanySettings) -> dict[str, Any]:
    """Check every field and the rules between them; ValidationFailed names each refused one."""
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for key, raw in fields.items():
        if key not in KEYS:
            errors[key] = N_("No such setting.")
            continue
        try:
            values[key] = _clean_one(key, raw)
        except ValueError as exc:
            errors[key] = str(exc)
    _check_identifiers(values, errors, company)
    if errors:
        raise ValidationFailed(N_("Some fields need fixing."), errors)
    return values


def _check_identifiers(
    values: dict[str, Any], errors: dict[str, str], company: CompanySettings
) -> None:
    """SIRET = SIREN + establishment number; a French VAT number = key + SIREN."""
    if {"siren", "siret", "vat_number"} & errors.keys():
        return
    siren_value = values.get("siren", company.siren)
    siret_value = values.get("siret", company.siret)
    if siret_value and not siren_value:
        values["siren"] = siren_value = siret_value[:9]
    if siren_value and siret_value and siret_value[:9] != siren_value:
        key = "siret" if "siret" in values else "siren"
        errors[key] = N_("The SIRET must begin with the SIREN.")
    vat_value = values.get("vat_number", company.vat_number)
    if siren_value and vat_value.startswith("FR") and vat_value[4:] != siren_value:
        key = "vat_number" if "vat_number" in values else "siren"
        errors[key] = N_("A French VAT number ends with the SIREN: this one does not.")


# --- Changing the settings -------------------------------------------------------------------


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return str(getattr(value, "value", value))


def update_company(
    session: Session,
    fields: Mapping[str, Any],
    *,
    actor: User | None = None,
    address: str = "",
) -> CompanySettings:
    """Change the given settings, all or none, and audit the change."""
    company = ensure_company(session)
    values = clean_fields(fields, company)
    changed = {key: value for key, value in values.items() if getattr(company, key) != value}
    if not changed:
        return company
    identity = [
        {"field": key, "old": _shown(getattr(company, key)), "new": _shown(value)}
        for key, value in changed.items()
        if key in AUDITED_VALUES
    ]
    others = sorted(key for key in changed if key not in AUDITED_VALUES)
    if identity:
        record_audit(
            session,
            "company.identity_changed",
            actor=actor,
            address=address,
            params={"changes": identity},
        )
    if others:
        record_audit(
            session,
            "company.settings_changed",
            actor=actor,
            address=address,
            params={"fields": others},
        )
    for key, value in changed.items():
        setattr(company, key, value)
    session.flush()
    return company


def logo_type(data: bytes) -> str:
    """The logo's MIME type read from its content; ValueError when it is no logo we print."""
    if len(data) > MAX_LOGO_BYTES:
        raise ValueError(N_("The logo must weigh 512 KB or less."))
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if _is_self_contained_svg(data):
        return "image/svg+xml"
    raise ValueError(
        N_("Choose a PNG, JPEG or SVG image (an SVG may not load anything from elsewhere).")
    )


# Attributes that make a renderer load something (links to elsewhere in the same file, #id,
# and data: URIs are allowed).
_URL_ATTRIBUTES = ("href", "src")
_CSS_URL = re.compile(r"""url\(\s*['"]?\s*([^'")\s]*)|@import""", re.IGNORECASE)


def _is_self_contained_svg(data: bytes) -> bool:
    try:
        root = SafeXml.fromstring(data, forbid_dtd=True)
    except (SafeXml.ParseError, DefusedXmlException, ValueError):
        return False
    if root.tag not in ("{http://www.w3.org/2000/svg}svg", "svg"):
        return False
    for element in root.iter():
        name = str(element.tag).rsplit("}", 1)[-1].lower()
        if name in ("script", "foreignobject"):
            return False
        for attribute, value in element.attrib.items():
            local = attribute.rsplit("}", 1)[-1].lower()
            if local.startswith("on"):
                return False
            if local in _URL_ATTRIBUTES and not _embedded(value):
                return False
            if not _css_is_embedded(value):
                return False
        if name == "style" and not _css_is_embedded(element.text or ""):
            return False
    return True


def _embedded(url: str) -> bool:
    url = url.strip()
    return url.startswith("#") or url.lower().startswith("data:")


def _css_is_embedded(text: str) -> bool:
    for match in _CSS_URL.finditer(text):
        if match[0].lower() == "@import" or not _embedded(match[1]):
            return False
    return True


def set_logo(
    session: Session, data: bytes, *, actor: User | None = None, address: str = ""
) -> CompanySettings:
    """Store the logo printed on documents, after checking what it is."""
    try:
        mime_type = logo_type(data)
    except ValueError as exc:
        raise ValidationFailed(N_("Some fields need fixing."), {"logo": str(exc)}) from exc
    company = ensure_company(session)
    company.logo = data
    company.logo_mime_type = mime_type
    record_audit(
        session,
        "company.logo_changed",
        actor=actor,
        address=address,
        params={"mime_type": mime_type, "size": len(data)},
    )
    session.flush()
    return company


def remove_logo(
    session: Session, *, actor: User | None = None, address: str = ""
) -> CompanySettings:
    """Print documents without the company's logo."""
    company = ensure_company(session)
    if company.logo is not None:
        company.logo = None
        company.logo_mime_type = ""
        record_audit(session, "company.logo_removed", actor=actor, address=address)
        session.flush()
    return company


def settings_values(company: CompanySettings) -> dict[str, str]:
    """Every key with its value as `flask company show` and the form print it."""
    return {key: _shown(getattr(company, key)) for key in KEYS}
