"""`flask company set` and `flask company show` as an operator types them."""

from __future__ import annotations

import io
from pathlib import Path

from flask import Flask
from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from web.models import AuditEvent, CompanySettings

COMPLETE = [
    "legal_name=Comptoir du Thé SAS",
    "trade_name=La Boutique du Thé",
    "address=12 rue des Lilas\\nBâtiment B",
    "postcode=69003",
    "city=Lyon",
    "country=FR",
    "siren=732829320",
    "siret=73282932000074",
    "vat_number=FR44732829320",
    "rcs_city=Lyon",
    "legal_form=SAS",
    "share_capital=10000",
    "vat_regime=normal",
    "iban=FR14 2004 1010 0505 0001 3M02 606",
    "bic=PSSTFRPPLIL",
    "payment_terms=Paiement à réception de facture",
]


def _company(db_session: Session) -> CompanySettings | None:
    db_session.expire_all()
    return db_session.get(CompanySettings, 1)


def test_set_every_documented_key_then_show_them(app: Flask, db_session: Session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["company", "set", *COMPLETE])
    assert result.exit_code == 0, result.output
    company = _company(db_session)
    assert company is not None
    assert company.address == "12 rue des Lilas\nBâtiment B"
    assert company.iban == "FR1420041010050500013M02606"
    assert "still missing" not in result.output

    shown = runner.invoke(args=["company", "show"])
    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    for assignment in COMPLETE:
        key = assignment.partition("=")[0]
        assert any(line.split(maxsplit=1)[0] == key for line in lines), key
    assert any(line.split() == ["siren", "732829320"] for line in lines)
    assert any(line.split() == ["share_capital", "10000.00"] for line in lines)
    assert "Bâtiment B" in shown.output
    assert "complete: invoices can be issued" in shown.output
    # payment_terms was typed as the default wording it already had: no change to record.
    assert db_session.scalars(select(AuditEvent.kind)).all() == ["company.identity_changed"]


def test_show_names_what_is_missing(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["company", "show"])
    assert result.exit_code == 0, result.output
    assert "missing before invoices can be issued: legal_name, address" in result.output


def test_set_is_all_or_nothing_and_names_each_bad_key(app: Flask, db_session: Session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "company",
            "set",
            "legal_name=Nouveau nom",
            "siren=123456789",
            "iban=FR00 0000",
            "payment_days=90",
            "favourite_colour=blue",
        ]
    )
    assert result.exit_code != 0
    for key in ("siren", "iban", "payment_days", "favourite_colour"):
        assert f"{key}: " in result.output, key
    assert "legal_name:" not in result.output
    company = _company(db_session)
    assert company is None or company.legal_name == ""  # the good key was not applied


def test_a_word_without_equals_is_refused(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["company", "set", "siren"])
    assert result.exit_code != 0
    assert "KEY=VALUE" in result.output


def test_the_logo_is_read_from_a_file_and_checked(
    app: Flask, db_session: Session, tmp_path: Path
) -> None:
    runner = app.test_cli_runner()
    png = tmp_path / "logo.png"
    out = io.BytesIO()
    Image.new("RGB", (32, 32), (31, 78, 121)).save(out, "PNG")
    png.write_bytes(out.getvalue())
    fake = tmp_path / "logo.svg"
    fake.write_text("<html><script>alert(1)</script></html>")

    refused = runner.invoke(args=["company", "set", "city=Lyon", f"logo={fake}"])
    assert refused.exit_code != 0 and "logo: " in refused.output
    missing = runner.invoke(args=["company", "set", f"logo={tmp_path / 'nowhere.png'}"])
    assert missing.exit_code != 0 and "logo: cannot read" in missing.output
    assert (company := _company(db_session)) is None or company.city == ""

    stored = runner.invoke(args=["company", "set", f"logo={png}"])
    assert stored.exit_code == 0, stored.output
    company = _company(db_session)
    assert company is not None and company.logo == png.read_bytes()
    assert company.logo_mime_type == "image/png"
    assert "image/png" in runner.invoke(args=["company", "show"]).output
    cleared = runner.invoke(args=["company", "set", "logo="])
    assert cleared.exit_code == 0
    assert _company(db_session).logo is None  # type: ignore[union-attr]
