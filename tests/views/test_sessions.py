"""A session cookie copied before logout (and the like) is refused after it: the attack.

Each test logs the victim in, copies the session cookie as a thief would (from a shared
computer, a proxy log, a stolen laptop), shows that the copy works, then ends the sessions
in one of the ways a user or an admin can and replays the copy: reading and writing must
both be refused, and nothing must change.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD, csrf_from, csrf_token, log_in
from web.models import AuditEvent, User
from web.models.enums import Role
from web.services import users
from web.views import sessions

COOKIE = "comptoir_session"
NEW_PASSWORD = "a brand new password"
HTMX = {"HX-Request": "true"}


def logged_in(app: Flask, user: User, password: str = TEST_PASSWORD) -> FlaskClient:
    """A browser of its own, logged in as the user."""
    client = app.test_client()
    log_in(client, user.email, password)
    return client


Stolen = tuple[str, str]


def copy_of(client: FlaskClient, csrf: str = "") -> Stolen:
    """The session cookie as a thief would copy it, and the CSRF token its pages carry."""
    csrf = csrf or csrf_token(client, "/account")
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value, csrf


def carrying(app: Flask, cookie: str) -> FlaskClient:
    """A browser of its own carrying the copied cookie."""
    client = app.test_client()
    client.set_cookie(COOKIE, cookie)
    return client


def assert_sent_to_login(response) -> None:
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"].startswith("/login")


def assert_refused(app: Flask, stolen: Stolen, db_session: Session) -> None:
    """The cookie reads nothing and writes nothing: its password change is refused.

    Each attempt starts from the cookie as copied: a refusal clears the session of the
    browser that made it, and a thief would simply replay the copy.
    """
    cookie, csrf = stolen
    before = db_session.scalars(select(User.password_hash)).all()
    assert_sent_to_login(carrying(app, cookie).get("/account"))
    response = carrying(app, cookie).get("/account", headers=HTMX)
    assert response.status_code == 401
    assert response.headers["HX-Redirect"].startswith("/login")
    response = carrying(app, cookie).post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": TEST_PASSWORD,
            "new_password": "the thief's password",
            "repeat_password": "the thief's password",
        },
    )
    # A redirect to the login page, not a CSRF refusal (400): the token was good.
    assert_sent_to_login(response)
    db_session.expire_all()
    assert db_session.scalars(select(User.password_hash)).all() == before


def test_a_copied_cookie_works_until_logout_and_never_after(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.MANAGER)
    browser = logged_in(app, victim)
    stolen = copy_of(browser)
    assert carrying(app, stolen[0]).get("/account").status_code == 200  # the copy works
    assert browser.post("/logout", data={"csrf_token": stolen[1]}).status_code == 303
    assert_refused(app, stolen, db_session)


def test_a_refused_cookie_is_cleared(app: Flask, make_user: Callable[..., User]) -> None:
    browser = logged_in(app, make_user())
    cookie, csrf = copy_of(browser)
    browser.post("/logout", data={"csrf_token": csrf})
    thief = carrying(app, cookie)
    thief.get("/account")
    with thief.session_transaction() as stored:
        assert "_user_id" not in stored and sessions.VERSION not in stored


def test_logout_ends_the_other_sessions_of_the_user_too(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.WAREHOUSE)
    desk, phone = logged_in(app, victim), logged_in(app, victim)
    stolen = copy_of(phone)
    desk.post("/logout", data={"csrf_token": csrf_token(desk, "/account")})
    assert_refused(app, stolen, db_session)


def test_a_new_login_after_logout_works(app: Flask, make_user: Callable[..., User]) -> None:
    victim = make_user()
    browser = logged_in(app, victim)
    browser.post("/logout", data={"csrf_token": csrf_token(browser, "/account")})
    log_in(browser, victim.email)
    assert browser.get("/account").status_code == 200


def test_changing_my_password_ends_my_other_sessions_and_keeps_this_one(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.VIEWER)
    browser, other = logged_in(app, victim), logged_in(app, victim)
    csrf = csrf_token(browser, "/account")
    copies = [copy_of(browser, csrf), copy_of(other)]
    response = browser.post(
        "/account/password",
        data={
            "csrf_token": csrf,
            "current_password": TEST_PASSWORD,
            "new_password": NEW_PASSWORD,
            "repeat_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 303
    assert browser.get("/account").status_code == 200
    for stolen in copies:
        assert_refused(app, stolen, db_session)
    # The new password is the one that logs in; the old one no longer does.
    assert users.authenticate(db_session, victim.email, NEW_PASSWORD) is not None
    assert users.authenticate(db_session, victim.email, TEST_PASSWORD) is None
    event = db_session.scalars(select(AuditEvent).where(AuditEvent.kind == "password.changed"))
    assert event.one().params == {"email": victim.email}


def test_log_out_everywhere_from_my_account_page_ends_this_session_too(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.WAREHOUSE)
    browser, other = logged_in(app, victim), logged_in(app, victim)
    page = browser.get("/account").get_data(as_text=True)
    assert 'action="/account/sessions/end"' in page
    csrf = csrf_from(page)
    copies = [copy_of(browser, csrf), copy_of(other)]
    response = browser.post("/account/sessions/end", data={"csrf_token": csrf})
    assert response.status_code == 303 and response.headers["Location"] == "/login"
    assert_sent_to_login(browser.get("/account"))
    for stolen in copies:
        assert_refused(app, stolen, db_session)
    kinds = db_session.scalars(select(AuditEvent.kind)).all()
    assert kinds == ["session.ended_everywhere"]


@pytest.mark.parametrize("action", ["sessions/end", "password", "active"])
def test_an_admin_ends_every_session_of_a_user(
    app: Flask, make_user: Callable[..., User], db_session: Session, action: str
) -> None:
    victim = make_user(Role.MANAGER)
    browser, other = logged_in(app, victim), logged_in(app, victim)
    copies = [copy_of(browser), copy_of(other)]
    admin = logged_in(app, make_user(Role.ADMIN))
    page = admin.get("/admin/users").get_data(as_text=True)
    url = f"/admin/users/{victim.id}/{action}"
    assert f'action="{url}"' in page
    response = admin.post(url, data={"csrf_token": csrf_from(page), "active": "0"})
    assert response.status_code in (200, 303)
    for stolen in copies:
        assert_refused(app, stolen, db_session)
    assert admin.get("/admin/users").status_code == 200  # the admin's own session goes on
    expected = {
        "sessions/end": "session.ended_everywhere",
        "password": "password.changed",
        "active": "user.deactivated",
    }[action]
    event = db_session.scalars(select(AuditEvent)).one()
    assert (event.kind, event.params, event.subject_user_id) == (
        expected,
        {"email": victim.email},
        victim.id,
    )


def test_reactivating_a_user_does_not_revive_their_old_cookies(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.MANAGER)
    stolen = copy_of(logged_in(app, victim))
    admin = logged_in(app, make_user(Role.ADMIN))
    for active in ("0", "1"):
        page = admin.get("/admin/users").get_data(as_text=True)
        admin.post(
            f"/admin/users/{victim.id}/active",
            data={"csrf_token": csrf_from(page), "active": active},
        )
    db_session.expire_all()
    assert db_session.get(User, victim.id).is_active
    assert_refused(app, stolen, db_session)
    assert logged_in(app, victim).get("/account").status_code == 200


def test_an_admin_who_logs_themselves_out_everywhere_lands_on_the_login_page(
    app: Flask, make_user: Callable[..., User]
) -> None:
    admin = make_user(Role.ADMIN)
    browser, other = logged_in(app, admin), logged_in(app, admin)
    page = browser.get("/admin/users").get_data(as_text=True)
    response = browser.post(
        f"/admin/users/{admin.id}/sessions/end", data={"csrf_token": csrf_from(page)}
    )
    assert response.headers["Location"] == "/login"
    for client in (browser, other):
        assert_sent_to_login(client.get("/admin/users"))


def test_deactivation_refuses_the_users_api_tokens_as_well(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user(Role.VIEWER)
    token = users.create_api_token(db_session, victim, "ERP")
    db_session.commit()
    bearer = {"Authorization": f"Bearer {token}"}
    api = app.test_client()
    assert api.get("/api/v1/orders", headers=bearer).status_code == 200
    admin = logged_in(app, make_user(Role.ADMIN))
    page = admin.get("/admin/users").get_data(as_text=True)
    admin.post(
        f"/admin/users/{victim.id}/active", data={"csrf_token": csrf_from(page), "active": "0"}
    )
    assert api.get("/api/v1/orders", headers=bearer).status_code == 401


# --- Inactivity and the absolute lifetime ------------------------------------------------


def move_back(client: FlaskClient, key: str, seconds: int) -> None:
    """Pretend the stamp was written `seconds` earlier (the clock moved on)."""
    with client.session_transaction() as stored:
        stored[key] -= seconds


def test_a_session_idle_past_the_limit_is_refused(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    victim = make_user()
    browser = logged_in(app, victim)
    csrf = csrf_token(browser, "/account")
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    move_back(browser, sessions.SEEN, idle - 60)  # a minute before the limit: still good
    response = browser.get("/account")
    assert response.status_code == 200
    assert "Set-Cookie" in response.headers  # seen again: the stamp moves on
    move_back(browser, sessions.SEEN, idle + 60)  # a minute past it
    assert_refused(app, copy_of(browser, csrf), db_session)


def test_the_last_seen_stamp_is_rewritten_at_most_once_a_minute(
    app: Flask, make_user: Callable[..., User]
) -> None:
    browser = logged_in(app, make_user())
    browser.get("/account")
    assert "Set-Cookie" not in browser.get("/account").headers
    move_back(browser, sessions.SEEN, sessions.SEEN_REFRESH_SECONDS)
    assert "Set-Cookie" in browser.get("/account").headers


def test_background_polls_do_not_keep_an_idle_session_alive(
    app: Flask, make_user: Callable[..., User]
) -> None:
    browser = logged_in(app, make_user(Role.MANAGER))
    idle = app.config["SESSION_IDLE_MINUTES"] * 60
    move_back(browser, sessions.SEEN, idle - 60)
    poll = browser.get("/sync/issues/count", headers={**HTMX, "HX-Trigger": "sync-issues-count"})
    assert poll.status_code == 200 and "Set-Cookie" not in poll.headers
    move_back(browser, sessions.SEEN, 120)
    poll = browser.get("/sync/issues/count", headers=HTMX)
    assert poll.status_code == 401 and poll.headers["HX-Redirect"].startswith("/login")


def test_a_session_older_than_its_lifetime_is_refused_even_when_in_use(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    browser = logged_in(app, make_user())
    csrf = csrf_token(browser, "/account")
    lifetime = int(app.permanent_session_lifetime.total_seconds())
    move_back(browser, sessions.STARTED, lifetime - 60)
    assert browser.get("/account").status_code == 200
    move_back(browser, sessions.STARTED, 120)
    assert_refused(app, copy_of(browser, csrf), db_session)


def test_a_cookie_from_before_these_checks_is_refused(
    app: Flask, make_user: Callable[..., User], db_session: Session
) -> None:
    browser = logged_in(app, make_user())
    csrf = csrf_token(browser, "/account")
    with browser.session_transaction() as stored:
        for key in (sessions.VERSION, sessions.STARTED, sessions.SEEN):
            del stored[key]
    assert_refused(app, copy_of(browser, csrf), db_session)


def test_an_htmx_request_without_a_session_is_sent_to_the_login_page(
    client: FlaskClient,
) -> None:
    response = client.get(
        "/orders/", headers={**HTMX, "HX-Current-URL": "http://localhost/orders/?page=2"}
    )
    assert response.status_code == 401
    assert response.headers["HX-Redirect"] == "/login?next=/orders/?page%3D2"
    assert "<form" not in response.get_data(as_text=True)
