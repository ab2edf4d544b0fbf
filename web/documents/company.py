"""The company that sells: who every document names as the seller, and whether it may invoice.

French law lists what an invoice must say of its seller (CGI annexe II art. 242 nonies A,
Code de commerce L441-9): legal name, registered address, SIREN/SIRET, the registry (RCS and
its city) for traders, legal form and share capital for companies, the VAT number unless the
VAT franchise applies, and the payment terms. Issuing an invoice or a credit note is refused
while one of them is missing; delivery notes only print what is there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from web.models import CompanySettings, Order
from web.models.enums import VatRegime
from web.services.errors import InvalidTransition

FRANCHISE_MENTION = "TVA non applicable, art. 293 B du CGI"

# Legal forms of individual entrepreneurs: no share capital, no RCS when they are not traders.
SOLE_TRADER_FORMS = frozenset(
    {
        "ei",
        "eirl",
        "micro-entreprise",
        "micro-entrepreneur",
        "auto-entrepreneur",
        "entrepreneur individuel",
    }
)


class CompanyIncomplete(InvalidTransition):
    """Issuing needs company settings that are not filled in; `fields` names them (keys)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__(
            "issue a document", f"the company settings are incomplete: {', '.join(fields)}"
        )
        self.fields = fields


def company_settings(session: Session) -> CompanySettings:
    """The settings row, or empty settings (not added to the session) when none exist yet."""
    return session.get(CompanySettings, 1) or CompanySettings(id=1)


def is_sole_trader(company: CompanySettings) -> bool:
    return company.legal_form.strip().lower() in SOLE_TRADER_FORMS


def missing_fields(company: CompanySettings) -> list[str]:
    """The settings keys an invoice needs and that are still empty, in the CLI's names."""
    required = ["legal_name", "address", "postcode", "city", "country", "siren", "siret"]
    required += ["legal_form", "payment_terms"]
    if company.vat_regime != VatRegime.FRANCHISE:
        required.append("vat_number")
    if company.legal_form and not is_sole_trader(company):
        required += ["rcs_city", "share_capital"]
    missing = []
    for key in required:
        value = getattr(company, key)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(key)
    return missing


def require_complete(session: Session) -> CompanySettings:
    """The settings, if an invoice or credit note may be issued with them."""
    company = company_settings(session)
    missing = missing_fields(company)
    if missing:
        raise CompanyIncomplete(missing)
    return company


def seller(company: CompanySettings, order: Order | None = None) -> dict[str, Any]:
    """The seller as a document prints it, frozen into the document's snapshot.

    Without a legal name (settings not filled in yet), the shop's name and site stand in:
    a delivery note may be printed before the company is set up; an invoice may not.
    """
    if not company.legal_name and order is not None:
        site = urlsplit(order.shop.base_url).hostname or ""
        return {
            "name": order.shop.name,
            "address_lines": [site] if site else [],
            "email": "",
            "phone": "",
        }
    street_lines = [line.strip() for line in company.address.splitlines() if line.strip()]
    city_line = f"{company.postcode} {company.city}".strip()
    return {
        "name": company.trade_name or company.legal_name,
        "legal_name": company.legal_name,
        "trade_name": company.trade_name,
        "address_lines": street_lines + ([city_line] if city_line else []),
        "street_lines": street_lines,
        "postcode": company.postcode,
        "city": company.city,
        "country": company.country,
        "email": company.email,
        "phone": company.phone,
        "website": company.website,
        "siren": company.siren,
        "siret": company.siret,
        "rcs_city": company.rcs_city,
        "legal_form": company.legal_form,
        "share_capital": None if company.share_capital is None else str(company.share_capital),
        "vat_number": company.vat_number,
        "vat_regime": company.vat_regime.value,
        "iban": company.iban,
        "bic": company.bic,
        "has_logo": company.logo is not None,
    }
