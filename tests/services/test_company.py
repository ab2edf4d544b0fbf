"""Company settings as an admin or an operator types them: checked identifiers, all or nothing,
the audit trail, the logo checked by its content."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.documents.company import missing_fields
from web.models import AuditEvent, CompanySettings
from web.models.enums import Role, VatRegime
from web.services import company as settings
from web.services.errors import ValidationFailed

COMPLETE = {
    "legal_name": "Comptoir du Thé SAS",
    "trade_name": "La Boutique du Thé",
    "legal_form": "SAS",
    "address": "12 rue des Lilas\n  Bâtiment B  ",
    "postcode": "69003",
    "city": "Lyon",
    "country": "fr",
    "siren": "732 829 320",
    "siret": "732 829 320 00074",
    "rcs_city": "Lyon",
    "share_capital": "10 000,50",
    "vat_number": "fr 44 732829320",
    "vat_regime": "normal",
    "iban": "FR14 2004 1010 0505 0001 3M02 606",
    "bic": "psstfrpplil",
    "payment_terms": "Paiement à 30 jours\r\npar virement",  # a browser's textarea
    "payment_days": "30",
}


def _image(kind: str, size: int = 40) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (31, 78, 121)).save(out, kind)
    return out.getvalue()


def _audit(session: Session) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def test_a_new_company_gets_the_usual_french_payment_wording(db_session: Session) -> None:
    company = settings.ensure_company(db_session)
    assert company.payment_terms == "Paiement à réception de facture"
    assert company.early_payment == "Pas d'escompte pour paiement anticipé"
    assert "BCE majoré de 10 points" in company.late_penalty
    assert "40 €" in company.recovery_indemnity and "D441-5" in company.recovery_indemnity
    assert settings.ensure_company(db_session) is company  # one row


def test_complete_settings_are_stored_compact_and_allow_invoicing(db_session: Session) -> None:
    company = settings.update_company(db_session, COMPLETE)
    assert company.siren == "732829320"
    assert company.siret == "73282932000074"
    assert company.vat_number == "FR44732829320"
    assert company.iban == "FR1420041010050500013M02606"
    assert company.bic == "PSSTFRPPLIL"
    assert company.country == "FR"
    assert company.share_capital == Decimal("10000.50")
    assert company.payment_days == 30
    assert company.address == "12 rue des Lilas\nBâtiment B"
    assert company.payment_terms == "Paiement à 30 jours\npar virement"
    assert missing_fields(company) == []


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("siren", "732829321"),  # wrong check digit
        ("siren", "73282932"),
        ("siret", "73282932000075"),
        ("vat_number", "FR45732829320"),  # wrong key
        ("vat_number", "732829320"),  # no country
        ("iban", "FR1420041010050500013M02607"),
        ("bic", "PSST"),
        ("country", "France"),
        ("country", "EU"),
        ("country", "QQ"),
        ("share_capital", "-1"),
        ("share_capital", "dix mille"),
        ("share_capital", "10.001"),
        ("share_capital", "NaN"),
        ("vat_regime", "reduced"),
        ("payment_days", "61"),  # L441-10: 60 days at most
        ("payment_days", "-1"),
        ("payment_days", "thirty"),
        ("link_days", "0"),
        ("link_days", "3651"),
        ("invoice_prefix", "F-A"),
        ("invoice_prefix", ""),
        ("credit_note_prefix", "ABCDEFGHIJK"),
        ("delivery_note_prefix", "B L"),
        ("pdf_engine", "chrome"),
        ("email", "not an address"),
        ("website", "javascript:alert(1)"),
        ("legal_name", "x" * 201),
        ("city", "Lyon\nParis"),
    ],
)
def test_a_bad_value_is_refused_naming_its_field_and_nothing_changes(
    db_session: Session, key: str, value: str
) -> None:
    company = settings.update_company(db_session, COMPLETE)
    before = settings.settings_values(company)
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {"legal_name": "Autre SARL", key: value})
    assert list(refused.value.errors) == [key]
    assert settings.settings_values(company) == before  # the good field was not applied either


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("siren", "732829321", "This is not a valid SIREN (9 digits with a check digit)."),
        ("vat_number", "XX1", "This is not a valid EU VAT number (country code, then the number)."),
        ("vat_regime", "exempt", "Choose normal or franchise."),
        ("invoice_prefix", "FA-2026", "Use 1 to 10 letters or digits."),
    ],
)
def test_a_refusal_says_what_is_wrong_with_the_field(
    db_session: Session, key: str, value: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {key: value})
    assert str(refused.value) == "Some fields need fixing."
    assert refused.value.errors == {key: message}


def test_a_siren_changed_alone_must_still_begin_the_siret(db_session: Session) -> None:
    settings.update_company(db_session, {"siren": "732829320", "siret": "73282932000074"})
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {"siren": "552100554"})
    assert refused.value.errors == {"siren": "The SIRET must begin with the SIREN."}


def test_a_field_sent_as_null_is_stored_empty(db_session: Session) -> None:
    company = settings.update_company(db_session, {"trade_name": "La Boutique"})
    settings.update_company(db_session, {"trade_name": None})
    assert company.trade_name == ""


def test_every_bad_field_is_named_at_once(db_session: Session) -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(
            db_session, {"siren": "1", "iban": "FR00", "payment_days": "90", "colour": "red"}
        )
    assert set(refused.value.errors) == {"siren", "iban", "payment_days", "colour"}


def test_the_siret_begins_with_the_siren(db_session: Session) -> None:
    settings.update_company(db_session, {"siren": "732829320"})
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {"siret": "55210055400013"})  # valid, another firm
    assert refused.value.errors == {"siret": "The SIRET must begin with the SIREN."}
    # Both changed together, consistently: accepted.
    company = settings.update_company(
        db_session, {"siren": "552100554", "siret": "55210055400013", "vat_number": ""}
    )
    assert (company.siren, company.siret) == ("552100554", "55210055400013")


def test_the_siren_is_filled_from_the_siret(db_session: Session) -> None:
    company = settings.update_company(db_session, {"siret": "73282932000074"})
    assert company.siren == "732829320"


def test_a_french_vat_number_embeds_the_siren(db_session: Session) -> None:
    settings.update_company(db_session, {"siren": "732829320"})
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {"vat_number": "FR96552100554"})  # valid, another
    assert set(refused.value.errors) == {"vat_number"}
    # A VAT number of another member state is checked on its own.
    company = settings.update_company(db_session, {"vat_number": "DE136695976"})
    assert company.vat_number == "DE136695976"


def test_the_franchise_regime_needs_no_vat_number(db_session: Session) -> None:
    company = settings.update_company(db_session, {**COMPLETE, "vat_number": ""})
    assert missing_fields(company) == ["vat_number"]
    settings.update_company(db_session, {"vat_regime": "franchise"})
    assert company.vat_regime == VatRegime.FRANCHISE
    assert missing_fields(company) == []


def test_prefixes_and_limits(db_session: Session) -> None:
    company = settings.update_company(
        db_session,
        {"invoice_prefix": "fact", "payment_days": "60", "link_days": "3650", "share_capital": ""},
    )
    assert (company.invoice_prefix, company.payment_days, company.link_days) == ("FACT", 60, 3650)
    assert company.share_capital is None


def test_wkhtmltopdf_can_be_chosen_only_where_it_is_installed(
    db_session: Session, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no wkhtmltopdf on the PATH
    assert settings.engine_choices() == ["weasyprint"]
    with pytest.raises(ValidationFailed) as refused:
        settings.update_company(db_session, {"pdf_engine": "wkhtmltopdf"})
    assert refused.value.errors == {"pdf_engine": "wkhtmltopdf is not installed on this server."}


def test_identity_changes_are_audited_with_old_and_new_values(
    db_session: Session, make_user: Any
) -> None:
    admin = make_user(Role.ADMIN)
    settings.update_company(db_session, COMPLETE, actor=admin, address="192.0.2.1")
    before = len(_audit(db_session))
    settings.update_company(
        db_session,
        {"iban": "DE89370400440532013000", "payment_days": "45", "bic": "PSSTFRPPLIL"},
        actor=admin,
        address="192.0.2.1",
    )
    entries = _audit(db_session)[before:]
    assert [entry.kind for entry in entries] == [
        "company.identity_changed",
        "company.settings_changed",
    ]
    identity, other = entries
    assert identity.actor_user_id == admin.id and identity.address == "192.0.2.1"
    assert identity.params == {
        "changes": [
            {
                "field": "iban",
                "old": "FR1420041010050500013M02606",
                "new": "DE89370400440532013000",
            }
        ]
    }  # the BIC did not change: not listed
    assert other.params == {"fields": ["payment_days"]}
    # Saving the same values again records nothing.
    settings.update_company(db_session, {"payment_days": "45"}, actor=admin)
    assert len(_audit(db_session)) == before + 2


@pytest.mark.parametrize(("kind", "mime_type"), [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_a_raster_logo_is_stored_with_its_type(
    db_session: Session, kind: str, mime_type: str
) -> None:
    company = settings.set_logo(db_session, _image(kind))
    assert company.logo_mime_type == mime_type
    assert _audit(db_session)[-1].kind == "company.logo_changed"
    settings.remove_logo(db_session)
    assert company.logo is None and _audit(db_session)[-1].kind == "company.logo_removed"


def test_an_svg_logo_that_embeds_everything_is_accepted(db_session: Session) -> None:
    svg = (
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
        b'viewBox="0 0 10 10"><defs><linearGradient id="g"/></defs>'
        b'<rect width="10" height="10" fill="url(#g)"/>'
        b'<image xlink:href="data:image/png;base64,AAAA" width="1" height="1"/></svg>'
    )
    assert settings.set_logo(db_session, svg).logo_mime_type == "image/svg+xml"


@pytest.mark.parametrize(
    "data",
    [
        b"GIF89a\x01\x00\x01\x00",  # a GIF: not printed
        b"%PDF-1.7",
        b"<html><body>logo</body></html>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><image href="https://example.com/a.png"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink">'
        b'<use xlink:href="file:///etc/passwd#x"/></svg>',
        b'<svg xmlns="http://www.w3.org/2000/svg"><style>@import "https://x.example/a.css";'
        b"</style></svg>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><rect style="fill: url(http://x.example/p)"/>'
        b"</svg>",
        b'<svg xmlns="http://www.w3.org/2000/svg"><foreignObject><p>x</p></foreignObject></svg>',
        b'<!DOCTYPE svg [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg"><text>&e;</text></svg>',
        b"\x89PNG\r\n\x1a\n" + b"\0" * (512 * 1024),  # over 512 KB
    ],
)
def test_a_logo_that_is_not_a_self_contained_image_is_refused(
    db_session: Session, data: bytes
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        settings.set_logo(db_session, data)
    assert list(refused.value.errors) == ["logo"]
    assert str(refused.value) == "Some fields need fixing."
    if len(data) > 512 * 1024:
        assert refused.value.errors["logo"] == "The logo must weigh 512 KB or less."
    assert db_session.get(CompanySettings, 1) is None or not db_session.get(CompanySettings, 1).logo  # type: ignore[union-attr]
