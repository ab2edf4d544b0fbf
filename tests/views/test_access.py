"""Who may reach what: every page needs a login, and each role sees only its part."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from tests.conftest import csrf_token
from web.models import User
from web.models.enums import Role

# (method, path) -> roles allowed; everyone else gets 403. (`/` sends warehouse staff to
# their queue instead: tests/views/test_dashboard.py.)
MATRIX = [
    ("GET", "/", {Role.ADMIN, Role.MANAGER, Role.VIEWER, Role.WAREHOUSE}),
    ("GET", "/orders/", {Role.ADMIN, Role.MANAGER, Role.VIEWER}),
    ("GET", "/warehouse/", {Role.ADMIN, Role.MANAGER, Role.WAREHOUSE}),
    ("GET", "/admin/users", {Role.ADMIN}),
    ("POST", "/admin/users", {Role.ADMIN}),
    ("POST", "/admin/users/{own_id}/active", {Role.ADMIN}),
    ("POST", "/admin/users/{own_id}/password", {Role.ADMIN}),
    ("POST", "/admin/users/{own_id}/sessions/end", {Role.ADMIN}),
    ("GET", "/account", {Role.ADMIN, Role.MANAGER, Role.VIEWER, Role.WAREHOUSE}),
    ("POST", "/account/password", {Role.ADMIN, Role.MANAGER, Role.VIEWER, Role.WAREHOUSE}),
    ("GET", "/shops/", {Role.ADMIN}),
    ("GET", "/shops/new", {Role.ADMIN}),
    ("POST", "/shops/", {Role.ADMIN}),
    ("GET", "/admin/shipping-modes/", {Role.ADMIN}),
    ("GET", "/admin/shipping-modes/new", {Role.ADMIN}),
    ("POST", "/admin/shipping-modes/", {Role.ADMIN}),
    ("GET", "/admin/company", {Role.ADMIN, Role.MANAGER}),
    ("POST", "/admin/company", {Role.ADMIN}),
    ("POST", "/admin/company/logo", {Role.ADMIN}),
    ("POST", "/admin/company/logo/remove", {Role.ADMIN}),
    ("GET", "/sync/", {Role.ADMIN, Role.MANAGER}),
    ("GET", "/sync/issues/", {Role.ADMIN, Role.MANAGER}),
    ("GET", "/sync/issues/count", {Role.ADMIN, Role.MANAGER}),
    ("POST", "/sync/issues/outbox/999999/retry", {Role.ADMIN, Role.MANAGER}),
    ("POST", "/sync/issues/inbox/999999/ignore", {Role.ADMIN, Role.MANAGER}),
    ("POST", "/shipments/999999/actions/ship", {Role.ADMIN, Role.MANAGER, Role.WAREHOUSE}),
    ("POST", "/orders/999999/shipments/everything", {Role.ADMIN, Role.MANAGER, Role.WAREHOUSE}),
]


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize(("method", "path", "allowed"), MATRIX)
def test_role_matrix(
    client: FlaskClient,
    login_as: Callable[..., User],
    role: Role,
    method: str,
    path: str,
    allowed: set[Role],
) -> None:
    user = login_as(role)
    path = path.format(own_id=user.id)
    if method == "GET":
        response = client.get(path)
    else:
        # A valid token, so a refusal can only come from the role check.
        token = csrf_token(client, "/warehouse/" if role == Role.WAREHOUSE else "/orders/")
        response = client.post(
            path, data={"csrf_token": token, "email": "new@example.com", "role": "viewer"}
        )
    if role in allowed:
        # Reaching the view is what counts here: 422 is the form refusing our dummy input.
        # `/` redirects warehouse staff to their queue.
        reached = (302,) if (path, role) == ("/", Role.WAREHOUSE) else (200, 201, 303, 404, 422)
        assert response.status_code in reached, (role, path, response.status_code)
    else:
        assert response.status_code == 403, (role, path)
        assert "Votre rôle ne donne pas accès" in response.get_data(as_text=True)


def test_admin_creates_a_user_who_can_then_log_in(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.ADMIN)
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "Nadia@Example.com",
            "role": "warehouse",
            "password": "long enough password",
        },
    )
    assert response.status_code == 303
    assert "nadia@example.com" in client.get("/admin/users").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": token})
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "email": "nadia@example.com",
            "password": "long enough password",
        },
    )
    assert response.headers["Location"] == "/warehouse/"


def test_user_form_errors_are_shown_inline(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    admin = login_as(Role.ADMIN)
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": admin.email,
            "role": "boss",
            "password": "short",
        },
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "existe déjà" in html and "Rôle inconnu" in html and "10 caractères" in html


def test_admin_cannot_deactivate_themselves(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    admin = login_as(Role.ADMIN)
    token = csrf_token(client, "/admin/users")
    client.post(f"/admin/users/{admin.id}/active", data={"csrf_token": token, "active": "0"})
    assert client.get("/admin/users").status_code == 200


def test_deactivated_user_is_logged_out_on_next_request(
    client: FlaskClient, login_as: Callable[..., User], db_session
) -> None:
    user = login_as(Role.MANAGER)
    assert client.get("/").status_code == 200
    user.is_active = False
    db_session.commit()
    assert client.get("/").status_code == 302


def test_post_without_csrf_token_is_refused_even_when_logged_in(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.ADMIN)
    response = client.post("/admin/users", data={"email": "x@example.com", "role": "viewer"})
    assert response.status_code == 400


def test_htmx_post_with_token_in_header_is_accepted(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as(Role.ADMIN)
    token = csrf_token(client, "/admin/users")
    response = client.post(
        "/admin/users",
        data={"email": "hx@example.com", "role": "viewer", "password": "long enough password"},
        headers={"X-CSRFToken": token, "HX-Request": "true"},
    )
    assert response.status_code == 204
    assert response.headers["HX-Location"] == "/admin/users"
