"""Login, logout, sessions, CSRF and the rate limit, through the real HTTP layer."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD, csrf_token, log_in
from web.models import User, utcnow
from web.models.enums import Role
from web.services import login_throttle, users


def test_pages_redirect_to_login_when_logged_out(client: FlaskClient) -> None:
    for path in ("/", "/orders/", "/warehouse/", "/admin/users"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert "/login" in response.headers["Location"]


def test_login_page_is_french_by_default(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="fr">' in html
    assert "Se connecter" in html


def test_login_with_the_right_password_lands_on_the_dashboard(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.MANAGER)
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email.upper(), "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 303
    assert response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_warehouse_staff_land_on_their_queue(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user(Role.WAREHOUSE)
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.headers["Location"] == "/warehouse/"


def test_wrong_password_is_refused_with_a_message(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": "nope nope nope", "csrf_token": token}
    )
    assert response.status_code == 400
    assert "Identifiant ou mot de passe incorrect" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


@pytest.mark.parametrize(
    ("email", "password"),
    [("\x00", "x"), ("{email}\x00", TEST_PASSWORD), ("{email}", TEST_PASSWORD + "\x00")],
)
def test_a_nul_character_in_the_login_form_is_refused_with_its_reason(
    client: FlaskClient, make_user: Callable[..., User], email: str, password: str
) -> None:
    user = make_user()
    token = csrf_token(client)
    data = {"email": email.format(email=user.email), "password": password, "csrf_token": token}
    response = client.post("/login", data=data)
    assert response.status_code == 400
    assert "ne peut pas contenir de caractère NUL" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_services_behind_the_login_take_a_nul_without_asking_the_database(
    db_session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    assert users.find_by_email(db_session, user.email + "\x00") is None
    assert users.authenticate(db_session, user.email + "\x00", TEST_PASSWORD) is None
    attempt = login_throttle.Attempt("a\x00b@example.com", "192.0.2.1\x00")
    assert login_throttle.check(db_session, attempt, utcnow()) is None
    login_throttle.record_failure(db_session, attempt, utcnow())
    db_session.flush()
    assert login_throttle.account_key(attempt.email) == "a\ufffdb@example.com"


def test_inactive_user_cannot_log_in(
    client: FlaskClient, make_user: Callable[..., User], db_session
) -> None:
    user = make_user()
    user.is_active = False
    db_session.commit()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    assert response.status_code == 400


def test_login_without_csrf_token_is_refused(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    client.get("/login")
    response = client.post("/login", data={"email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_login_redirects_only_to_local_next(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={
            "email": user.email,
            "password": TEST_PASSWORD,
            "csrf_token": token,
            "next": "https://evil.example/steal",
        },
    )
    assert response.headers["Location"] == "/"


def test_login_gives_a_new_session_and_logout_ends_it(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    client.get("/login")
    before = client.get_cookie("comptoir_session")
    log_in(client, user.email)
    after = client.get_cookie("comptoir_session")
    assert before is not None and after is not None and before.value != after.value
    token = csrf_token(client, "/")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 303
    assert client.get("/").status_code == 302


def test_session_cookie_is_httponly_and_lax(
    client: FlaskClient, make_user: Callable[..., User]
) -> None:
    user = make_user()
    token = csrf_token(client)
    response = client.post(
        "/login", data={"email": user.email, "password": TEST_PASSWORD, "csrf_token": token}
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # http://comptoir.test is local development


def test_session_cookie_is_secure_behind_https(app_overrides, session_factory) -> None:
    from web.app import create_app

    app = create_app({**app_overrides, "BASE_URL": "https://comptoir.example.fr"})
    assert app.config["SESSION_COOKIE_SECURE"] is True


def test_language_switch_to_english_and_back(client: FlaskClient) -> None:
    token = csrf_token(client)
    response = client.post("/language", data={"lang": "en", "next": "/login", "csrf_token": token})
    assert response.status_code == 303
    html = client.get("/login").get_data(as_text=True)
    assert '<html lang="en">' in html and "Log in" in html
    client.post("/language", data={"lang": "fr", "next": "/login", "csrf_token": token})
    assert "Se connecter" in client.get("/login").get_data(as_text=True)


def test_the_login_notice_after_a_redirect_is_in_the_readers_language(
    client: FlaskClient,
) -> None:
    page = client.get("/orders/", follow_redirects=True).get_data(as_text=True)
    assert "Veuillez vous connecter pour accéder à cette page." in page
    assert "Please log in" not in page
