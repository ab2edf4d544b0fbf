"""The exports page: managers download each export; the form names what is wrong."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.services.test_accounting_exports import DAY_1, DAY_2, fec_rows, issue_period
from web.documents.storage import LocalStorage
from web.models import User
from web.models.enums import Role
from web.services.accounting_exports import FEC_COLUMNS

RANGE = {"from": DAY_1.isoformat(), "to": DAY_2.isoformat()}


@pytest.fixture()
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "instance" / "documents")


def test_the_page_offers_the_three_formats_for_last_month(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    page = client.get("/documents/exports")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for value in ("csv", "fec", "ereporting"):
        assert f'name="format" value="{value}"' in html
    assert 'action="/documents/exports/download"' in html
    assert 'type="date" name="from"' in html and 'type="date" name="to"' in html


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE])
def test_only_managers_and_admins_export(
    client: FlaskClient, login_as: Callable[..., User], role: Role
) -> None:
    login_as(role)
    assert client.get("/documents/exports").status_code == 403
    assert (
        client.get(
            "/documents/exports/download", query_string={"format": "csv", **RANGE}
        ).status_code
        == 403
    )


def test_a_stranger_is_sent_to_log_in(client: FlaskClient) -> None:
    response = client.get("/documents/exports/download", query_string={"format": "csv", **RANGE})
    assert response.status_code in (302, 303) and "/login" in response.headers["Location"]


def test_a_manager_downloads_each_export(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    storage: LocalStorage,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    period = issue_period(db_session, storage, monkeypatch)
    db_session.commit()
    login_as(Role.ADMIN)
    got = client.get("/documents/exports/download", query_string={"format": "csv", **RANGE})
    assert got.status_code == 200
    assert got.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert got.headers["Content-Disposition"] == (
        'attachment; filename="documents-2026-03-02-2026-03-03.csv"'
    )
    assert got.headers["Cache-Control"] == "private, no-store"
    rows = list(csv.DictReader(io.StringIO(got.get_data().decode("utf-8-sig"))))
    assert rows[2]["reference"] == period.credit.reference and rows[2]["total_ttc"] == "-12.00"

    fec = client.get("/documents/exports/download", query_string={"format": "fec", **RANGE})
    assert fec.status_code == 200
    assert fec.headers["Content-Type"] == "text/plain; charset=iso-8859-15"
    assert 'filename="732829320FEC20260303.txt"' in fec.headers["Content-Disposition"]
    assert fec_rows(fec.get_data())[0] == list(FEC_COLUMNS)

    summary = client.get(
        "/documents/exports/download", query_string={"format": "ereporting", **RANGE}
    )
    assert summary.status_code == 200
    assert (
        'filename="e-reporting-2026-03-02-2026-03-03.csv"' in summary.headers["Content-Disposition"]
    )


def test_the_form_names_what_is_wrong(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as(Role.MANAGER)
    backwards = client.get(
        "/documents/exports/download",
        query_string={"format": "csv", "from": "2026-03-02", "to": "2026-03-01"},
    )
    assert backwards.status_code == 422
    html = backwards.get_data(as_text=True)
    assert "La date de fin est antérieure à la date de début." in html
    assert 'aria-describedby="to-error"' in html and 'value="2026-03-02"' in html
    unknown = client.get("/documents/exports/download", query_string={"format": "xls", **RANGE})
    assert unknown.status_code == 422
    assert "Choisissez un format : CSV, FEC ou e-reporting." in unknown.get_data(as_text=True)
    empty = client.get("/documents/exports/download")
    assert empty.status_code == 422
    html = empty.get_data(as_text=True)
    assert "Saisissez une date au format AAAA-MM-JJ." in html and "Choisissez un format" in html


def test_the_fec_refused_without_a_siren_says_so(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    login_as(Role.MANAGER)
    response = client.get("/documents/exports/download", query_string={"format": "fec", **RANGE})
    assert response.status_code == 422
    assert "SIREN" in response.get_data(as_text=True)


def test_the_page_speaks_english_to_whoever_chose_it(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    french = client.get("/documents/exports").get_data(as_text=True)
    assert "<h1>Exports pour l'expert-comptable</h1>" in french
    client.post("/language", data={"lang": "en", "csrf_token": csrf_token(client, "/")})
    english = client.get(
        "/documents/exports/download", query_string={"format": "fec", "from": "x", "to": ""}
    ).get_data(as_text=True)
    assert "Exports for the accountant" in english
    assert "Sales journal (FEC)" in english
    assert english.count("Enter a date as YYYY-MM-DD.") == 2
