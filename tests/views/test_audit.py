"""The audit log page: admins only, newest first, in the reader's language, filtered and
paged through htmx with every pushed URL loading in full."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD, csrf_token, log_in
from web.models import AuditEvent, User
from web.models.enums import Role
from web.services.audit import record_audit

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def at(session: Session, event: AuditEvent, minutes: int) -> AuditEvent:
    event.occurred_at = START + dt.timedelta(minutes=minutes)
    session.flush()
    return event


@pytest.fixture()
def admin(client: FlaskClient, login_as: Callable[..., User]) -> User:
    return login_as(Role.ADMIN)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr id="audit-\d+" class="audit-row">(.*?)</tr>', html, re.S)


def test_only_admins_reach_the_audit_log(
    app: Flask, client: FlaskClient, make_user: Callable[..., User]
) -> None:
    assert client.get("/admin/audit/").status_code == 302  # to the login
    for role, expected in (
        (Role.MANAGER, 403),
        (Role.VIEWER, 403),
        (Role.WAREHOUSE, 403),
        (Role.ADMIN, 200),
    ):
        with app.test_client() as each:
            log_in(each, make_user(role).email)
            assert each.get("/admin/audit/").status_code == expected, role
    with app.test_client() as each:
        log_in(each, make_user(Role.ADMIN).email)
        assert 'href="/admin/audit/"' in each.get("/admin/users").get_data(as_text=True)


def test_entries_newest_first_with_who_whom_where_and_when_in_french_then_english(
    client: FlaskClient, admin: User, make_user: Callable[..., User], db_session: Session
) -> None:
    clerk = make_user(Role.MANAGER, email="clerk@example.com")
    at(
        db_session,
        record_audit(
            db_session,
            "login.throttled",
            subject=clerk,
            address="198.51.100.7",
            params={"email": clerk.email, "failures": 6, "wait_seconds": 1, "scope": "account"},
        ),
        0,
    )
    at(
        db_session,
        record_audit(
            db_session,
            "user.deactivated",
            actor=admin,
            subject=clerk,
            address="192.0.2.1",
            params={"email": clerk.email},
        ),
        5,
    )
    db_session.commit()

    html = client.get("/admin/audit/").get_data(as_text=True)
    newest, oldest = rows(html)
    assert "clerk@example.com désactivé" in newest
    assert admin.email in newest and "192.0.2.1" in newest
    assert "Connexions à clerk@example.com ralenties après 6 échecs" in oldest
    assert "198.51.100.7" in oldest and admin.email not in oldest
    assert "2 entrées" in html

    client.post("/language", data={"lang": "en", "csrf_token": csrf_token(client, "/")})
    english = client.get("/admin/audit/").get_data(as_text=True)
    assert "Logins to clerk@example.com slowed down after 6 failed attempts" in english


def test_a_real_throttled_login_shows_up_with_its_address(
    client: FlaskClient, admin: User, app: Flask, make_user: Callable[..., User]
) -> None:
    target = make_user(Role.VIEWER)
    with app.test_client() as sprayer:
        for n in range(6):
            token = csrf_token(sprayer)
            sprayer.post(
                "/login",
                data={"email": target.email, "password": "guess " * 3, "csrf_token": token},
                environ_base={"REMOTE_ADDR": f"203.0.113.{n}"},
            )
    (row,) = rows(client.get("/admin/audit/?kind=login.throttled").get_data(as_text=True))
    assert target.email in row and "203.0.113.5" in row
    assert TEST_PASSWORD not in row


def test_filter_and_pages_swap_the_results_and_push_urls_that_load_in_full(
    client: FlaskClient, admin: User, db_session: Session
) -> None:
    for n in range(55):
        at(
            db_session,
            record_audit(
                db_session, "api_token.created", params={"label": f"t{n}", "email": admin.email}
            ),
            n,
        )
    at(db_session, record_audit(db_session, "password.changed", params={"email": admin.email}), 100)
    db_session.commit()

    fragment = client.get("/admin/audit/?kind=api_token.created", headers=PARTIAL)
    html = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in html
    assert 'id="audit-results"' in html and 'hx-push-url="true"' in html
    assert "HX-Request" in fragment.headers["Vary"]
    assert len(rows(html)) == 50 and "t54" in rows(html)[0]
    assert 'href="/admin/audit/?kind=api_token.created&amp;page=2"' in html

    page_two = client.get("/admin/audit/?kind=api_token.created&page=2")
    full = page_two.get_data(as_text=True)
    assert "<html" in full and 'id="filter-kind"' in full
    assert '<option value="api_token.created" selected>' in full
    labels = [re.findall(r"\bt\d+\b", row) for row in rows(full)]
    assert labels == [["t4"], ["t3"], ["t2"], ["t1"], ["t0"]]
    assert "Mot de passe" not in "".join(rows(full))

    boosted = client.get("/admin/audit/?page=2", headers=BOOSTED).get_data(as_text=True)
    assert "<html" in boosted and len(rows(boosted)) == 6


def test_hostile_parameters_are_shown_as_text(
    client: FlaskClient, admin: User, db_session: Session
) -> None:
    record_audit(
        db_session,
        "api_token.created",
        address="<b>x</b>",
        params={"label": "<script>alert(1)</script>", "email": "<img src=x onerror=alert(1)>"},
    )
    record_audit(db_session, "<svg onload=alert(1)>", params={"text": "<i>odd</i>"})
    db_session.commit()
    html = client.get("/admin/audit/").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<svg onload" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_a_bad_filter_is_ignored_with_a_note(client: FlaskClient, admin: User) -> None:
    response = client.get("/admin/audit/?page=abc&kind=" + "x" * 200)
    assert response.status_code == 200
    assert "Certains filtres n’ont pas été compris" in response.get_data(as_text=True)
