"""The login throttle, attacked as a password sprayer would, through the real login form.

Time is moved with the app's clock (`comptoir.clock`), never slept: the first failures on an
account are free, then each doubles the wait (1 s, 2 s, 4 s … capped at 15 minutes), and
during the wait the login answers 429 without checking the password.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_PASSWORD, csrf_from, csrf_token
from web.app import create_app
from web.models import AuditEvent, LoginThrottle, User
from web.services import login_throttle

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)
WRONG = "not the password at all"


class Clock:
    """The app's idea of now, moved by the test."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> dt.datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


@pytest.fixture()
def clock(app: Flask) -> Clock:
    clock = Clock()
    app.extensions["comptoir.clock"] = clock
    return clock


def attempt(
    client: FlaskClient, email: str, password: str = WRONG, address: str = "192.0.2.1", **kw: Any
) -> Any:
    """One login POST from `address`, as the browser sends it (token from the page)."""
    environ = {"REMOTE_ADDR": address}
    page = client.get("/login", environ_base=environ).get_data(as_text=True)
    token = page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": token},
        environ_base=environ,
        **kw,
    )


def spray(client: FlaskClient, email: str, count: int, first: int = 1) -> list[int]:
    """`count` wrong passwords at one account, each from a different address."""
    return [
        attempt(client, email, address=f"198.51.100.{first + n}").status_code for n in range(count)
    ]


def throttle_events(session: Session) -> list[AuditEvent]:
    session.expire_all()
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.kind == "login.throttled").order_by(AuditEvent.id)
        )
    )


def test_spraying_one_account_from_many_addresses_is_slowed_down_then_its_owner_gets_in(
    client: FlaskClient,
    clock: Clock,
    make_user: Callable[..., User],
    db_session: Session,
) -> None:
    user = make_user(email="owner@example.com")
    # Five free failures, the sixth makes the next attempt wait one second.
    assert spray(client, user.email, 6) == [400] * 6
    refused = attempt(client, user.email, TEST_PASSWORD, address="198.51.100.50")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    # The right password during the wait is not even checked: no login, no session.
    assert "Trop de tentatives" in refused.get_data(as_text=True)
    assert client.get("/").status_code == 302

    # Each failure heard doubles the wait; the cap is 15 minutes.
    waits = []
    for n in range(11):
        clock.move(seconds=int(refused.headers["Retry-After"]))
        assert attempt(client, user.email, address=f"203.0.113.{n}").status_code == 400
        refused = attempt(client, user.email, address=f"203.0.113.{n + 100}")
        assert refused.status_code == 429
        waits.append(int(refused.headers["Retry-After"]))
    assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]

    # One second before the end of the wait, still refused; at the end, the owner gets in.
    clock.move(seconds=899)
    assert attempt(client, user.email, TEST_PASSWORD, address="192.0.2.77").status_code == 429
    clock.move(seconds=1)
    welcome = attempt(client, user.email, TEST_PASSWORD, address="192.0.2.77")
    assert welcome.status_code == 303
    assert client.get("/", environ_base={"REMOTE_ADDR": "192.0.2.77"}).status_code == 200
    # A success clears the account's count: a later typo is only a typo.
    db_session.expire_all()
    accounts = select(LoginThrottle).where(LoginThrottle.scope == "account")
    assert db_session.scalars(accounts).all() == []

    # One audit entry per escalation (each failure past the free five), none per refusal.
    events = throttle_events(db_session)
    assert [e.params["wait_seconds"] for e in events] == [1, *waits[:-1], 900]
    assert [e.params["failures"] for e in events] == list(range(6, 18))
    assert {(e.params["scope"], e.params["email"], e.subject_user_id) for e in events} == {
        ("account", "owner@example.com", user.id)
    }
    assert events[0].address == "198.51.100.6"


def test_many_accounts_from_one_address_are_slowed_down_per_address(
    client: FlaskClient, clock: Clock, make_user: Callable[..., User], db_session: Session
) -> None:
    user = make_user(email="clerk@example.com")
    statuses = [
        attempt(client, f"guess{n}@example.com", address="203.0.113.9").status_code
        for n in range(21)
    ]
    assert statuses == [400] * 21  # twenty free (an office behind one address), one heard
    refused = attempt(client, "guess99@example.com", address="203.0.113.9")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    # The real user behind that address waits too (no known device here) …
    assert attempt(client, user.email, TEST_PASSWORD, address="203.0.113.9").status_code == 429
    # … while another address is heard.
    assert attempt(client, user.email, TEST_PASSWORD, address="203.0.113.10").status_code == 303

    (event,) = throttle_events(db_session)
    assert event.params == {
        "email": "guess20@example.com",
        "failures": 21,
        "wait_seconds": 1,
        "scope": "address",
        "address": "203.0.113.9",
    }
    assert event.address == "203.0.113.9" and event.subject_user_id is None


def test_an_ipv6_sprayer_is_counted_by_its_64(client: FlaskClient, clock: Clock) -> None:
    for n in range(21):
        address = f"2001:db8:1:2::{n:x}"
        assert attempt(client, f"x{n}@example.com", address=address).status_code == 400
    assert attempt(client, "y@example.com", address="2001:db8:1:2:ffff::1").status_code == 429
    assert attempt(client, "y@example.com", address="2001:db8:1:3::1").status_code == 400


def test_unknown_and_known_e_mails_get_the_same_answers(
    client: FlaskClient, clock: Clock, make_user: Callable[..., User]
) -> None:
    known = make_user(email="real@example.com").email

    def answers(email: str, first: int) -> list[tuple[int, str | None, str]]:
        seen = []
        for n in range(8):
            response = attempt(client, email, address=f"198.51.100.{first + n}")
            text = response.get_data(as_text=True).replace(email, "EMAIL")
            text = text.replace(csrf_from(text), "TOKEN")
            seen.append((response.status_code, response.headers.get("Retry-After"), text))
        return seen

    assert answers(known, 1) == answers("nobody@example.com", 101)


def test_a_known_device_is_not_locked_out_by_someone_spraying_its_account(
    app: Flask, client: FlaskClient, clock: Clock, make_user: Callable[..., User]
) -> None:
    owner = make_user(email="boss@example.com")
    assert attempt(client, owner.email, TEST_PASSWORD).status_code == 303
    client.delete_cookie("comptoir_session")  # the browser closed; the device cookie stays
    cookie = client.get_cookie("comptoir_device", path="/login")
    assert cookie is not None and "boss" not in cookie.value and cookie.http_only

    attacker = app.test_client()
    assert spray(attacker, owner.email, 7) == [400] * 6 + [429]
    assert attempt(attacker, owner.email, TEST_PASSWORD).status_code == 429
    # The owner's own browser is heard at once, from any address.
    assert attempt(client, owner.email, TEST_PASSWORD, address="198.51.100.7").status_code == 303


def test_a_stolen_device_cookie_has_its_own_growing_wait(
    app: Flask, client: FlaskClient, clock: Clock, make_user: Callable[..., User]
) -> None:
    owner = make_user(email="clerk2@example.com")
    assert attempt(client, owner.email, TEST_PASSWORD).status_code == 303
    client.delete_cookie("comptoir_session")
    # Whoever holds the cookie still guesses at the same pace as anyone else.
    assert spray(client, owner.email, 7) == [400] * 6 + [429]
    # And another account typed in that browser is not a known device's.
    assert spray(client, "other@example.com", 7, first=50) == [400] * 6 + [429]


def test_the_wait_is_told_in_the_readers_language(
    client: FlaskClient, clock: Clock, make_user: Callable[..., User]
) -> None:
    spray(client, "someone@example.com", 6)
    french = attempt(client, "someone@example.com").get_data(as_text=True)
    assert "Trop de tentatives infructueuses. Réessayez dans 1\u00a0seconde." in french
    client.post("/language", data={"lang": "en", "csrf_token": csrf_token(client)})
    english = attempt(client, "someone@example.com").get_data(as_text=True)
    assert "Too many failed attempts. Try again in 1 second." in english


@pytest.mark.parametrize("hops", [0, 1])
def test_behind_the_proxy_the_forwarded_address_is_counted_and_only_then(
    app_overrides: dict[str, Any], session_factory: sessionmaker[Session], hops: int
) -> None:
    app = create_app({**app_overrides, "PROXY_HOPS": hops})
    app.extensions["comptoir.sessions"] = session_factory
    app.extensions["comptoir.clock"] = Clock()
    client = app.test_client()

    def through_proxy(email: str, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return attempt(client, email, address="127.0.0.1", headers=headers).status_code

    for n in range(21):
        assert through_proxy(f"z{n}@example.com", "198.51.100.1") == 400
    # Behind a proxy (1 hop), another client is another address; without one, the header is
    # the client's own word, so changing it escapes nothing.
    assert through_proxy("w@example.com", "198.51.100.2") == (400 if hops else 429)
    assert through_proxy("w@example.com", "198.51.100.1") == 429


def test_address_keys() -> None:
    key = login_throttle.address_key
    assert key("192.0.2.1") == "192.0.2.1"
    assert key("::ffff:192.0.2.1") == "192.0.2.1"
    assert key("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert key("not an address") == "not an address"
    assert login_throttle.account_key("  Owner@Example.COM ") == "owner@example.com"


def test_a_day_without_failures_starts_the_count_over(
    client: FlaskClient, clock: Clock, db_session: Session
) -> None:
    assert spray(client, "typo@example.com", 5) == [400] * 5
    clock.move(hours=25)
    # Five free failures again, and the sixth, not the first, makes the next one wait.
    assert spray(client, "typo@example.com", 6, first=20) == [400] * 6
    assert attempt(client, "typo@example.com").headers["Retry-After"] == "1"
    # Counts quiet for a day and no longer waiting are deleted, not kept for ever.
    clock.move(hours=25)
    attempt(client, "someone-else@example.com", address="192.0.2.200")
    db_session.expire_all()
    keys = {row.key for row in db_session.scalars(select(LoginThrottle))}
    assert "typo@example.com" not in keys and "someone-else@example.com" in keys
