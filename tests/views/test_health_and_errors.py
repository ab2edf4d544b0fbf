"""Health check, error pages and the htmx fragment/full-page rule."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient

from web.models import User
from web.models.enums import Role


def test_healthz_answers_without_login(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_gone(app_overrides, tmp_path) -> None:
    from web.app import create_app

    missing = tmp_path / "no-such-dir" / "db.sqlite"
    app = create_app({**app_overrides, "DATABASE_URL": f"sqlite:///{missing}"})
    missing.parent.rmdir()  # the factory created the folder; take it away again
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "unreachable"


def test_unknown_page_is_a_full_404_page(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    response = client.get("/no/such/page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" in html and "Page introuvable" in html


def test_unknown_page_for_htmx_is_a_fragment(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    response = client.get("/no/such/page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "<html" not in html and "Page introuvable" in html
    assert {"HX-Request", "HX-Boosted"} <= set(response.vary)


def test_boosted_navigation_gets_the_full_page(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.MANAGER)
    response = client.get("/no/such/page", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in response.get_data(as_text=True)


def test_server_error_page_rolls_back_and_says_nothing_was_saved(
    app: Flask, login_as: Callable[..., User], client: FlaskClient
) -> None:
    @app.get("/boom")
    def boom() -> str:
        raise RuntimeError("kaboom")

    app.testing = False  # let the 500 handler answer instead of re-raising
    app.config["PROPAGATE_EXCEPTIONS"] = False
    login_as(Role.MANAGER)
    response = client.get("/boom")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Rien n'a été enregistré" in html or "Rien n&#39;a été enregistré" in html
    assert "kaboom" not in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_static_htmx_is_served_locally_without_login(client: FlaskClient) -> None:
    response = client.get("/static/js/htmx-2.0.11.min.js")
    assert response.status_code == 200
    assert b"htmx" in response.data[:200]


def test_pages_load_no_script_from_a_cdn(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    assert "<script" in html
    assert "https://" not in html.split("<body")[0]


def test_pages_carry_security_headers(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as(Role.VIEWER)
    response = client.get("/")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
