"""One-time secrets (API tokens, generated passwords) never travel in the session cookie.

The cookie is signed, not encrypted: whoever sees it (a proxy log, the browser's storage,
a shoulder) reads its payload with base64. Each flow below decodes the payload of every
Set-Cookie of every response, the follow-up page included, and looks for the secret; the
secret must be in the body of the answer that creates it, and nowhere afterwards.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import base64_decode
from sqlalchemy.orm import Session
from werkzeug.test import TestResponse

from tests.conftest import TEST_PASSWORD, csrf_from
from web.models import User
from web.models.enums import Role
from web.services import users

HTMX = {"HX-Request": "true"}


def cookie_payloads(set_cookies: list[str]) -> list[str]:
    """What anyone can read in these Set-Cookie headers, without the key."""
    payloads = []
    for header in set_cookies:
        value = header.split(";", 1)[0].split("=", 1)[1]
        compressed = value.startswith(".")
        data = base64_decode(value.lstrip(".").split(".", 1)[0]) if value else b""
        payloads.append(header + (zlib.decompress(data) if compressed else data).decode())
    return payloads


def assert_not_in_cookies(secret: str, *responses: TestResponse) -> None:
    for response in responses:
        for payload in cookie_payloads(response.headers.getlist("Set-Cookie")):
            assert secret not in payload


def test_the_decoder_reads_a_flashed_secret_as_the_attack_did(app: Flask) -> None:
    # The finding: a flashed message is readable in the cookie, short (plain base64) or
    # long (zlib, then base64). The checks below would see a secret there.
    for secret in ("cpt_short", "cpt_" + "long" * 200):
        client = app.test_client()
        with client.session_transaction() as stored:
            stored["_flashes"] = [("success", f"Your token: {secret}")]
        cookie = client.get_cookie("comptoir_session")
        assert cookie is not None and secret not in cookie.value
        written = [f"comptoir_session={cookie.value}; HttpOnly; Path=/"]
        assert any(secret in payload for payload in cookie_payloads(written))


def test_a_new_api_token_is_in_the_fragment_and_never_in_a_cookie(
    client: FlaskClient, login_as: Callable[..., User], make_user: Callable[..., User]
) -> None:
    login_as(Role.ADMIN)
    erp = make_user(Role.MANAGER)
    page = client.get("/admin/users").get_data(as_text=True)
    created = client.post(
        "/admin/tokens",
        data={"user_id": erp.id, "label": "ERP", "csrf_token": csrf_from(page)},
        headers=HTMX,
    )
    token = re.search(r"cpt_[A-Za-z0-9_-]+", created.get_data(as_text=True)).group(0)
    assert "Copiez-le maintenant" in created.get_data(as_text=True)
    after = client.get("/admin/users")
    assert token not in after.get_data(as_text=True)
    assert_not_in_cookies(token, created, after)


def test_a_new_api_token_without_htmx_is_in_the_page_and_never_in_a_cookie(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    admin = login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    created = client.post(
        "/admin/tokens", data={"user_id": admin.id, "label": "", "csrf_token": csrf_from(page)}
    )
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    token = re.search(r"cpt_[A-Za-z0-9_-]+", created.get_data(as_text=True)).group(0)
    after = client.get("/admin/users")
    assert token not in after.get_data(as_text=True)
    assert_not_in_cookies(token, created, after)


def test_a_generated_password_is_in_the_page_and_never_in_a_cookie(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session
) -> None:
    login_as(Role.ADMIN)
    page = client.get("/admin/users").get_data(as_text=True)
    created = client.post(
        "/admin/users",
        data={"email": "nadia@example.com", "role": "warehouse", "csrf_token": csrf_from(page)},
    )
    assert created.status_code == 201 and created.headers["Cache-Control"] == "no-store"
    html = created.get_data(as_text=True)
    password = re.search(r'<code class="token-once">([^<]+)</code>', html).group(1)
    assert users.authenticate(db_session, "nadia@example.com", password) is not None
    after = client.get("/admin/users")
    assert password not in after.get_data(as_text=True)
    assert_not_in_cookies(password, created, after)


def test_a_reset_password_is_in_the_page_and_never_in_a_cookie(
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
) -> None:
    login_as(Role.ADMIN)
    nadia = make_user(Role.WAREHOUSE)
    page = client.get("/admin/users").get_data(as_text=True)
    reset = client.post(f"/admin/users/{nadia.id}/password", data={"csrf_token": csrf_from(page)})
    assert reset.status_code == 200 and reset.headers["Cache-Control"] == "no-store"
    html = reset.get_data(as_text=True)
    password = re.search(r'<code class="token-once">([^<]+)</code>', html).group(1)
    db_session.expire_all()
    assert users.authenticate(db_session, nadia.email, password) is not None
    assert users.authenticate(db_session, nadia.email, TEST_PASSWORD) is None
    after = client.get("/admin/users")
    assert password not in after.get_data(as_text=True)
    assert_not_in_cookies(password, reset, after)


def test_my_new_password_is_never_in_a_cookie(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.VIEWER)
    page = client.get("/account").get_data(as_text=True)
    new = "my very own new password"
    changed = client.post(
        "/account/password",
        data={
            "csrf_token": csrf_from(page),
            "current_password": TEST_PASSWORD,
            "new_password": new,
            "repeat_password": new,
        },
    )
    assert changed.status_code == 303
    after = client.get("/account")
    assert_not_in_cookies(new, changed, after)
    assert_not_in_cookies(TEST_PASSWORD, changed, after)
