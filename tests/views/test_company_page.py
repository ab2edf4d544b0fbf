"""The company settings page as an administrator and a manager use it: sections, inline
errors, what is missing before invoicing, the logo, who may change what."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from web.models import AuditEvent, CompanySettings, User
from web.models.enums import Role

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
URL = "/admin/company"

COMPLETE = {
    "legal_name": "Comptoir du Thé SAS",
    "trade_name": "La Boutique du Thé",
    "legal_form": "SAS",
    "share_capital": "10000",
    "address": "12 rue des Lilas",
    "postcode": "69003",
    "city": "Lyon",
    "country": "FR",
    "email": "",
    "phone": "",
    "website": "",
    "siren": "732829320",
    "siret": "73282932000074",
    "rcs_city": "Lyon",
    "vat_regime": "normal",
    "vat_number": "FR44732829320",
    "payment_terms": "Paiement à réception de facture",
    "payment_days": "0",
    "early_payment": "Pas d'escompte",
    "late_penalty": "BCE + 10 points",
    "recovery_indemnity": "40 €",
    "iban": "FR1420041010050500013M02606",
    "bic": "PSSTFRPPLIL",
    "invoice_prefix": "FA",
    "credit_note_prefix": "AV",
    "delivery_note_prefix": "BL",
    "pdf_engine": "weasyprint",
    "link_days": "90",
}


def text(response: Any) -> str:
    return str(response.get_data(as_text=True))


def _company(db_session: Session) -> CompanySettings | None:
    db_session.expire_all()
    return db_session.get(CompanySettings, 1)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (31, 78, 121)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture()
def admin(client: FlaskClient, login_as: Callable[..., User]) -> FlaskClient:
    login_as(Role.ADMIN)
    return client


def test_the_page_shows_every_section_and_what_is_missing(admin: FlaskClient) -> None:
    response = admin.get(URL)
    assert response.status_code == 200
    page = text(response)
    for legend in (
        "Identité",
        "Immatriculation",
        "TVA",
        "Paiement et pénalités",
        "Banque",
        "Numérotation et impression",
        "Logo",
    ):
        assert f"<legend>{legend}</legend>" in page or f">{legend}</h2>" in page, legend
    assert "Avant de pouvoir émettre des factures" in page
    assert '<a href="#field-legal_name">Raison sociale</a>' in page
    assert '<a href="#field-siren">SIREN</a>' in page
    # The default wording of a new company is offered, and the note on invoice printing.
    assert "Paiement à réception de facture" in page
    assert "toujours imprimés par WeasyPrint" in page
    assert f'href="{URL}" aria-current="page">Entreprise</a>' in page  # in the navigation


def test_saving_complete_settings_clears_the_missing_list(
    admin: FlaskClient, db_session: Session
) -> None:
    token = csrf_token(admin, URL)
    response = admin.post(URL, data={**COMPLETE, "csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == URL
    company = _company(db_session)
    assert company is not None and company.siren == "732829320"
    page = text(admin.get(URL))
    assert "Réglages de l’entreprise enregistrés." in page
    assert "Prêt à facturer" in page and "Avant de pouvoir émettre" not in page
    kinds = db_session.scalars(select(AuditEvent.kind)).all()
    assert "company.identity_changed" in kinds


def test_htmx_gets_the_form_back_with_inline_errors_and_nothing_is_saved(
    admin: FlaskClient, db_session: Session
) -> None:
    token = csrf_token(admin, URL)
    data = {**COMPLETE, "siret": "55210055400013", "iban": "FR00 1234", "payment_days": "90"}
    response = admin.post(URL, data=data, headers={**PARTIAL, "X-CSRFToken": token})
    assert response.status_code == 422
    fragment = text(response)
    assert "<html" not in fragment and 'id="company-form"' in fragment
    assert "Rien n’a été enregistré" in fragment
    assert "Le SIRET doit commencer par le SIREN." in fragment
    assert "Cet IBAN n’est pas valide." in fragment
    assert "Indiquez un nombre de jours de 0 à 60 (art. L441-10)." in fragment
    assert 'id="field-iban" type="text" name="iban" value="FR00 1234" aria-invalid="true"' in (
        fragment
    )
    assert 'value="Comptoir du Thé SAS"' in fragment  # what was typed stays
    company = _company(db_session)
    assert company is None or company.legal_name == ""


def test_without_htmx_a_refusal_is_the_whole_page(admin: FlaskClient) -> None:
    token = csrf_token(admin, URL)
    response = admin.post(URL, data={**COMPLETE, "siren": "123", "csrf_token": token})
    assert response.status_code == 422
    assert "<html" in text(response) and "Ce SIREN n’est pas valide" in text(response)
    # A boosted visit, and the visit htmx makes after a save (HX-Location), get the page.
    for headers in (BOOSTED, PARTIAL):
        assert "<html" in text(admin.get(URL, headers=headers))


def test_a_post_without_the_csrf_token_is_refused(admin: FlaskClient, db_session: Session) -> None:
    response = admin.post(URL, data=COMPLETE)
    assert response.status_code == 400
    assert _company(db_session) is None


def test_a_manager_reads_but_cannot_change(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    login_as(Role.MANAGER)
    page = text(client.get(URL))
    assert "Seuls les administrateurs peuvent modifier ces réglages." in page
    assert '<fieldset class="company-section" disabled>' in page
    assert "Enregistrer les réglages de l’entreprise" not in page
    token = csrf_token(client, URL)
    response = client.post(URL, data={**COMPLETE, "csrf_token": token})
    assert response.status_code == 403
    upload = client.post(
        f"{URL}/logo",
        data={"logo": (io.BytesIO(_png()), "logo.png"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert upload.status_code == 403
    assert _company(db_session) is None


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE])
def test_other_roles_cannot_see_the_page(
    client: FlaskClient, login_as: Callable[..., User], role: Role
) -> None:
    login_as(role)
    assert client.get(URL).status_code == 403
    assert f'href="{URL}"' not in text(client.get("/account"))


def test_the_logo_is_uploaded_checked_shown_inline_and_removed(
    admin: FlaskClient, db_session: Session
) -> None:
    token = csrf_token(admin, URL)
    refused = admin.post(
        f"{URL}/logo",
        data={
            "logo": (io.BytesIO(b"<svg><script>x</script></svg>"), "logo.png"),
            "csrf_token": token,
        },
        content_type="multipart/form-data",
    )
    assert refused.status_code == 422
    assert "Choisissez une image PNG, JPEG ou SVG" in text(refused)
    empty = admin.post(f"{URL}/logo", data={"csrf_token": token})
    assert empty.status_code == 422 and "Choisissez un fichier image." in text(empty)

    png = _png()
    stored = admin.post(
        f"{URL}/logo",
        data={"logo": (io.BytesIO(png), "anything.svg"), "csrf_token": token},
        content_type="multipart/form-data",
    )
    assert stored.status_code == 303
    company = _company(db_session)
    assert company is not None and company.logo == png and company.logo_mime_type == "image/png"
    page = text(admin.get(URL))
    assert 'src="data:image/png;base64,' in page  # inline: no URL serves it
    removed = admin.post(f"{URL}/logo/remove", data={"csrf_token": token})
    assert removed.status_code == 303
    assert _company(db_session).logo is None  # type: ignore[union-attr]
    kinds = db_session.scalars(select(AuditEvent.kind).order_by(AuditEvent.id)).all()
    assert kinds[-2:] == ["company.logo_changed", "company.logo_removed"]


def test_the_audit_log_tells_what_changed(admin: FlaskClient) -> None:
    token = csrf_token(admin, URL)
    admin.post(URL, data={**COMPLETE, "csrf_token": token})
    admin.post(URL, data={**COMPLETE, "iban": "DE89370400440532013000", "csrf_token": token})
    page = text(admin.get("/admin/audit/"))
    assert (
        "Identité ou coordonnées bancaires de l’entreprise modifiées : IBAN "
        "FR1420041010050500013M02606 → DE89370400440532013000." in page
    )


def test_the_page_in_english(admin: FlaskClient) -> None:
    admin.post("/language", data={"lang": "en", "csrf_token": csrf_token(admin, URL)})
    token = csrf_token(admin, URL)
    response = admin.post(URL, data={**COMPLETE, "bic": "X", "csrf_token": token}, headers=PARTIAL)
    fragment = text(response)
    assert "<legend>Registration</legend>" in fragment
    assert "This is not a valid BIC (8 or 11 letters and digits)." in fragment
    page = text(admin.get(URL))
    assert "Before invoices can be issued" in page
    assert '<a href="#field-legal_name">Legal name</a>' in page
