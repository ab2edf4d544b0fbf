"""My account page: reached from the header by every role; my password, my language."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD, csrf_from
from web.models import AuditEvent, User
from web.models.enums import Role
from web.services import users


@pytest.mark.parametrize("role", list(Role))
def test_every_role_reaches_its_account_page_from_the_header(
    client: FlaskClient, login_as: Callable[..., User], role: Role
) -> None:
    user = login_as(role)
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/account"' in home
    page = client.get("/account").get_data(as_text=True)
    assert user.email in page
    for action in ("/account/password", "/account/sessions/end", "/language"):
        assert f'action="{action}"' in page


@pytest.mark.parametrize(
    ("current", "new", "repeated", "message"),
    [
        ("not my password", "a long new password", "a long new password", "mot de passe actuel"),
        (TEST_PASSWORD, "short", "short", "10 caractères"),
        (TEST_PASSWORD, "a long new password", "a long new passw0rd", "diffèrent"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    current: str,
    new: str,
    repeated: str,
    message: str,
) -> None:
    user = login_as(Role.WAREHOUSE)
    page = client.get("/account").get_data(as_text=True)
    response = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_from(page),
            "current_password": current,
            "new_password": new,
            "repeat_password": repeated,
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert message in html and 'aria-invalid="true"' in html
    assert new not in html and current not in html  # passwords are never echoed back
    db_session.expire_all()
    assert users.authenticate(db_session, user.email, TEST_PASSWORD) is not None
    assert client.get("/account").status_code == 200  # still logged in
    assert db_session.scalars(select(AuditEvent)).all() == []


def test_my_language_is_chosen_on_my_account_page(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    user = login_as(Role.VIEWER)
    page = client.get("/account").get_data(as_text=True)
    response = client.post(
        "/language", data={"csrf_token": csrf_from(page), "lang": "en", "next": "/account"}
    )
    assert response.headers["Location"] == "/account"
    assert "Change my password" in client.get("/account").get_data(as_text=True)
    db_session.refresh(user)
    assert user.locale == "en"


def test_guessing_the_current_password_is_throttled_like_a_login(
    app: Flask, client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    """A stolen session cannot brute-force the password through the account page: the
    guesses count for the account, and past the free ones the form refuses unheard."""
    frozen = dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC)  # time stands still: no wait expires
    app.extensions["comptoir.clock"] = lambda: frozen
    user = login_as(Role.MANAGER)
    before = user.password_hash
    statuses = []
    for guess in range(8):
        page = client.get("/account").get_data(as_text=True)
        response = client.post(
            "/account/password",
            data={
                "csrf_token": csrf_from(page),
                "current_password": f"guess number {guess}",
                "new_password": "a long new password",
                "repeat_password": "a long new password",
            },
        )
        statuses.append(response.status_code)
    assert statuses[:5] == [422] * 5
    assert 429 in statuses[5:]
    refused = response.get_data(as_text=True)
    assert "Trop de tentatives" in refused
    # Even the right password is not heard during the wait.
    page = client.get("/account").get_data(as_text=True)
    response = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_from(page),
            "current_password": TEST_PASSWORD,
            "new_password": "a long new password",
            "repeat_password": "a long new password",
        },
    )
    assert response.status_code == 429
    db_session.refresh(user)
    assert user.password_hash == before
