"""The database does not answer: every caller gets 503 with Retry-After, never a 500, and a
login survives the outage.

"Down" is a real one: the app's sessions are pointed at a PostgreSQL port where nothing
listens, so the driver itself fails to connect (tests/reliability/test_database_outage.py
stops a real server in the middle of intake).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token
from web.db import make_engine
from web.models import User

NOWHERE = "postgresql+psycopg://comptoir@127.0.0.1:1/comptoir"


@pytest.fixture()
def take_database_down(app: Flask) -> Iterator[Callable[[], Callable[[], None]]]:
    """Point the app at a database that refuses connections; returns how to bring it back."""
    working = app.extensions["comptoir.sessions"]
    dead = make_engine(NOWHERE, connect_args={"connect_timeout": 2})

    def down() -> Callable[[], None]:
        app.extensions["comptoir.sessions"] = sessionmaker(dead)

        def back() -> None:
            app.extensions["comptoir.sessions"] = working

        return back

    yield down
    app.extensions["comptoir.sessions"] = working
    dead.dispose()


def _unavailable(response: object) -> None:
    status = response.status_code
    headers = response.headers
    assert status == 503, response.get_data(as_text=True)[:500]
    assert int(headers["Retry-After"]) > 0


def test_a_webhook_gets_503_with_retry_after_so_the_shop_sends_it_again(
    client: FlaskClient, take_database_down: Callable[[], Callable[[], None]]
) -> None:
    take_database_down()
    response = client.post(
        "/hooks/woocommerce/any-shop",
        data=b'{"id": 1}',
        headers={"Content-Type": "application/json", "X-WC-Webhook-Topic": "order.created"},
    )
    _unavailable(response)
    assert response.is_json and "database unavailable" in response.get_json()["error"]


def test_healthz_answers_503_with_retry_after(
    client: FlaskClient, take_database_down: Callable[[], Callable[[], None]]
) -> None:
    assert client.get("/healthz").status_code == 200
    back = take_database_down()
    response = client.get("/healthz")
    _unavailable(response)
    assert response.get_json() == {"status": "error", "database": "unreachable"}
    back()
    assert client.get("/healthz").status_code == 200


def test_the_api_answers_503_in_json(
    client: FlaskClient, take_database_down: Callable[[], Callable[[], None]]
) -> None:
    take_database_down()
    response = client.get("/api/v1/orders", headers={"Authorization": "Bearer some-token"})
    _unavailable(response)
    assert response.is_json


def test_a_logged_in_user_gets_a_503_page_and_stays_logged_in(
    client: FlaskClient,
    login_as: Callable[..., User],
    take_database_down: Callable[[], Callable[[], None]],
) -> None:
    login_as("manager")
    assert client.get("/orders/").status_code == 200
    back = take_database_down()
    for path in ("/orders/", "/"):
        response = client.get(path)
        _unavailable(response)
        assert "La base de données ne répond pas" in response.get_data(as_text=True)
    fragment = client.get("/orders/", headers={"HX-Request": "true"})
    _unavailable(fragment)
    assert "<html" not in fragment.get_data(as_text=True)
    back()
    # The outage neither accepted nor ended the login.
    response = client.get("/orders/")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"


def test_logging_in_during_the_outage_gets_503(
    client: FlaskClient,
    make_user: Callable[..., User],
    db_session: Session,
    take_database_down: Callable[[], Callable[[], None]],
) -> None:
    user = make_user("viewer")
    token = csrf_token(client)
    take_database_down()
    response = client.post(
        "/login", data={"email": user.email, "password": "whatever", "csrf_token": token}
    )
    _unavailable(response)
    assert client.get("/login").status_code == 200  # the login page itself needs no database
