"""Hostile input to the public pages: the login form, the language switch, the buyer's links.

Through the Flask test client, never logged in. No answer is a 5xx; nobody is logged in with
a password that is not theirs; a refused form says why (its field errors, a CSRF refusal);
nothing is stored but the failed-login counts and their audit lines, which are the design.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import example, given
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session

from tests.conftest import TEST_PASSWORD, csrf_token
from tests.documents.conftest import complete_company, relay_order
from tests.reliability.hostile import ANY_TEXT, HOSTILE_TEXT, added, fuzz_settings, row_counts
from web.documents import invoices, links
from web.models import Document, User, utcnow
from web.services.timeline import Actor

# What a refused login may leave behind: the failure counted, and its escalation audited.
LOGIN_TRACES = {"login_throttles", "audit_events"}


def assert_login_refused(response: object, before: dict[str, int], after: dict[str, int]) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    body = response.get_data(as_text=True)  # type: ignore[attr-defined]
    assert status in (200, 400, 429), (status, body[:300])
    assert "field-error" in body or "flash-error" in body or "CSRF" in body, body[:500]
    assert set(added(before, after)) <= LOGIN_TRACES, added(before, after)


def test_hostile_login_forms_never_log_in_nor_fail(
    app: Flask, client: FlaskClient, db_session: Session, make_user: Callable[..., User]
) -> None:
    user = make_user()
    token = csrf_token(client)
    fields = st.sampled_from(["email", "password", "csrf_token", "next", "remember", "x"])

    @fuzz_settings(reduced=30, full=1_200)
    @given(
        email=st.sampled_from([user.email, user.email.upper(), ""]) | HOSTILE_TEXT,
        password=st.sampled_from([TEST_PASSWORD + "\x00", TEST_PASSWORD[:-1], ""]) | HOSTILE_TEXT,
        csrf=st.sampled_from([token, "", token[:-2]]) | ANY_TEXT | st.none(),
        extra=st.dictionaries(fields, HOSTILE_TEXT, max_size=2),
    )
    @example(email=user.email, password="x", csrf=None, extra={})  # no CSRF token at all
    @example(email="\x00", password="\x00", csrf=token, extra={})
    @example(email=user.email + "\x00", password=TEST_PASSWORD, csrf=token, extra={})
    @example(email=user.email, password="p" * 5_000, csrf=token, extra={})
    def attempt(email: str, password: str, csrf: str | None, extra: dict[str, str]) -> None:
        form = {**extra, "email": email, "password": password}
        if csrf is not None:
            form["csrf_token"] = csrf
        before = row_counts(db_session)
        response = client.post("/login", data=form)
        assert_login_refused(response, before, row_counts(db_session))
        with client.session_transaction() as session:
            assert "_user_id" not in session

    attempt()


def test_the_language_switch_redirects_home_whatever_it_is_sent(
    client: FlaskClient, db_session: Session
) -> None:
    token = csrf_token(client)

    @fuzz_settings(reduced=10, full=300)
    @given(lang=st.sampled_from(["fr", "en"]) | HOSTILE_TEXT, target=HOSTILE_TEXT)
    @example(lang="en", target="//evil.example/")
    @example(lang="en\x00", target="/\x00")
    def switch(lang: str, target: str) -> None:
        before = row_counts(db_session)
        form = {"lang": lang, "next": target, "csrf_token": token}
        response = client.post("/language", data=form)
        assert response.status_code == 303, response.status_code
        location = response.headers["Location"]
        assert location.startswith("/") and not location.startswith("//"), location
        assert added(before, row_counts(db_session)) == {}

    switch()


@pytest.fixture()
def invoice(app: Flask, db_session: Session) -> Document:
    complete_company(db_session)
    document = invoices.issue_invoice(db_session, relay_order(db_session), Actor.system("fuzz"))
    db_session.commit()
    return document


def test_forged_truncated_altered_and_expired_links_are_one_and_the_same_404(
    client: FlaskClient, db_session: Session, invoice: Document
) -> None:
    good = links.token_for(invoice)
    assert client.get(f"/d/{good}").status_code == 200
    unknown = client.get("/d/no-such-link").get_data()
    expired = links.token_for(invoice, now=utcnow() - dt.timedelta(days=links.DEFAULT_DAYS + 1))
    other_key = URLSafeTimedSerializer("another-key", salt=links.SALT).dumps([invoice.id, "0"])

    def token_changes(token: str) -> st.SearchStrategy[str]:
        cut = st.integers(0, len(token) - 1).map(lambda end: token[:end])
        flipped = st.tuples(st.integers(0, len(token) - 1), ANY_TEXT).map(
            lambda change: token[: change[0]] + change[1] + token[change[0] + 1 :]
        )
        return cut | flipped.filter(lambda changed: changed != token)

    @fuzz_settings(reduced=20, full=1_000)
    @given(token=HOSTILE_TEXT | token_changes(good) | st.sampled_from([expired, other_key]))
    @example(token=expired)
    @example(token=other_key)
    @example(token=good + "\x00")
    @example(token=good * 4)
    def open_link(token: str) -> None:
        before = row_counts(db_session)
        response = client.get("/d/" + quote(token, safe="/", errors="surrogatepass"))
        if not token.strip("/"):  # /d/ alone is no link route: the app's own 404
            assert response.status_code == 404
        elif response.status_code != 404:  # slashes Werkzeug tidies up first
            assert response.status_code in (301, 308), response.status_code
        else:
            assert response.get_data() == unknown
        assert added(before, row_counts(db_session)) == {}

    open_link()
