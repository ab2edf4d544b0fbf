"""An administrator pointing a shop at this server, the private network or a cloud metadata
service, as a production instance runs (APP_ALLOW_PRIVATE_SHOP_URLS unset): refused in the
settings form and in `flask shops add`, and at connection time whatever was saved before."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.connectors.test_addresses import Listener, resolve_as
from tests.factories import make_shop
from web.connectors import addresses
from web.models import Shop, User
from web.models.enums import Role
from web.services import shop_settings

PARTIAL = {"HX-Request": "true"}
LOOPBACK = "Cette adresse mène au serveur de Comptoir lui-même (boucle locale)."
PRIVATE = "Cette adresse mène à un réseau privé."
LINK_LOCAL = "Cette adresse est une adresse de lien local"
MULTICAST = "Cette adresse est une adresse de multidiffusion."
RESERVED = "Cette adresse est réservée ou non spécifiée."
NUMERIC = "Écrivez une adresse IP sous la forme de quatre nombres de 0 à 255"
HTTPS_ONLY = "Utilisez une adresse en https:// : Comptoir n’envoie les identifiants"
USERINFO = "Retirez le nom d’utilisateur et le mot de passe de l’adresse"
REFUSED = "Comptoir ne se connecte pas à cette adresse"

# Each way the penetration test (and its usual lists) spells a forbidden address.
HOSTILE_URLS = [
    ("https://127.0.0.1:8443/", LOOPBACK),
    ("http://127.0.0.1:5000/admin", LOOPBACK),
    ("https://127.1/", LOOPBACK),
    ("https://2130706433/", LOOPBACK),
    ("https://0x7f.0.0.1/", LOOPBACK),
    ("https://localhost:8080/", LOOPBACK),
    ("https://LOCALHOST./", LOOPBACK),
    ("https://shop.localhost/", LOOPBACK),
    ("https://[::1]/", LOOPBACK),
    ("https://[::ffff:127.0.0.1]/", LOOPBACK),
    ("http://169.254.169.254/latest/meta-data/", LINK_LOCAL),
    ("https://[::ffff:a9fe:a9fe]/", LINK_LOCAL),
    ("https://[::ffff:169.254.169.254]/", LINK_LOCAL),
    ("http://0xa9fea9fe/", LINK_LOCAL),
    ("https://2852039166/", LINK_LOCAL),
    ("https://0251.0376.0251.0376/", LINK_LOCAL),
    ("https://[fe80::1]/", LINK_LOCAL),
    ("https://[64:ff9b::a9fe:a9fe]/", LINK_LOCAL),
    ("https://[2002:a9fe:a9fe::]/", LINK_LOCAL),
    ("https://10.0.0.7/", PRIVATE),
    ("https://172.16.5.4/", PRIVATE),
    ("https://192.168.1.1/", PRIVATE),
    ("https://100.64.0.1/", PRIVATE),
    ("https://[fd00::1]/", PRIVATE),
    ("https://224.0.0.1/", MULTICAST),
    ("https://[ff02::1]/", MULTICAST),
    ("https://0.0.0.0/", RESERVED),
    ("https://255.255.255.255/", RESERVED),
    ("https://[::]/", RESERVED),
    ("https://0x08080808/", NUMERIC),
    ("https://1.2.3.4.5/", NUMERIC),
    ("http://8.8.8.8/", HTTPS_ONLY),
    ("https://admin:hunter2@8.8.8.8/", USERINFO),
]


@pytest.fixture()
def app_overrides(app_overrides: dict[str, Any]) -> dict[str, Any]:
    return {**app_overrides, "ALLOW_PRIVATE_SHOP_URLS": False}


@pytest.fixture()
def admin(client: FlaskClient, login_as: Callable[..., User]) -> FlaskClient:
    login_as(Role.ADMIN)
    return client


@pytest.fixture()
def token(admin: FlaskClient) -> str:
    return csrf_token(admin, "/shops/")


@pytest.fixture()
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.close()


def saved_while_allowed(session: Session, url: str) -> Shop:
    """A shop saved before the policy (or on an instance that allowed private addresses)."""
    addresses.configure(allow_private=True)
    shop = shop_settings.add_shop(
        session, "woocommerce", name="Atelier", base_url=url, api_key="ck_k", api_secret="cs_s"
    )
    session.commit()
    addresses.configure(allow_private=False)
    return shop


@pytest.mark.parametrize(("url", "message"), HOSTILE_URLS)
def test_the_settings_form_refuses_each_private_address(
    admin: FlaskClient, token: str, db_session: Session, url: str, message: str
) -> None:
    form = {"csrf_token": token, "platform": "woocommerce", "name": "Piège", "base_url": url}
    response = admin.post("/shops/", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert message in page and 'id="err-base_url"' in page
    assert db_session.scalars(select(Shop)).all() == []


@pytest.mark.parametrize(
    ("url", "message"),
    [
        case
        for case in HOSTILE_URLS
        if case[0]
        in (
            "https://127.0.0.1:8443/",
            "https://localhost:8080/",
            "http://169.254.169.254/latest/meta-data/",
            "https://[::ffff:a9fe:a9fe]/",
            "http://0xa9fea9fe/",
            "https://10.0.0.7/",
            "https://100.64.0.1/",
            "http://8.8.8.8/",
        )
    ],
)
def test_editing_a_shop_to_a_private_address_is_refused_and_changes_nothing(
    admin: FlaskClient, token: str, db_session: Session, url: str, message: str
) -> None:
    shop = shop_settings.add_shop(
        db_session,
        "woocommerce",
        name="Atelier",
        base_url="https://8.8.4.4",
        api_key="ck_k",
        api_secret="cs_s",
    )
    db_session.commit()
    form = {
        "csrf_token": token,
        "name": "Atelier",
        "base_url": url,
        "poll_interval_seconds": "300",
        "invoice_policy": "manual",
    }
    response = admin.post(f"/shops/{shop.key}", data=form)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    db_session.expire_all()
    assert (shop.base_url, shop.api_key, shop.api_secret) == ("https://8.8.4.4", "ck_k", "cs_s")


@pytest.mark.parametrize(("url", "message"), HOSTILE_URLS)
def test_flask_shops_add_refuses_each_private_address(
    app: Flask, db_session: Session, url: str, message: str
) -> None:
    result = app.test_cli_runner().invoke(
        args=["shops", "add", "--platform", "shopify", "--name", "Piège", "--url", url]
    )
    assert result.exit_code != 0
    english = {
        LOOPBACK: addresses.LOOPBACK,
        PRIVATE: addresses.PRIVATE,
        LINK_LOCAL: addresses.LINK_LOCAL,
        MULTICAST: addresses.MULTICAST,
        RESERVED: addresses.RESERVED,
        NUMERIC: addresses.NUMERIC,
        HTTPS_ONLY: addresses.HTTPS_ONLY,
        USERINFO: addresses.USERINFO,
    }[message]
    assert english in result.output
    assert db_session.scalars(select(Shop)).all() == []


def test_a_public_https_address_is_still_accepted(
    admin: FlaskClient, token: str, db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"atelier.example.fr": ["93.184.215.14", "2606:2800:21f::1"]})
    form = {
        "csrf_token": token,
        "platform": "woocommerce",
        "name": "Atelier",
        "base_url": "https://atelier.example.fr/",
    }
    assert admin.post("/shops/", data=form).status_code == 303
    assert db_session.scalars(select(Shop.base_url)).one() == "https://atelier.example.fr"


def test_a_name_resolving_to_a_private_address_is_refused_when_saved(
    admin: FlaskClient, token: str, db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"metadata.internal.test": ["169.254.169.254"]})
    form = {
        "csrf_token": token,
        "platform": "shopify",
        "name": "Piège",
        "base_url": "https://metadata.internal.test/computeMetadata/v1/",
    }
    response = admin.post("/shops/", data=form)
    assert response.status_code == 422
    assert LINK_LOCAL in response.get_data(as_text=True)


def test_a_shop_saved_while_allowed_is_refused_at_connection_time(
    admin: FlaskClient, token: str, db_session: Session, listener: Listener
) -> None:
    shop = saved_while_allowed(db_session, f"https://localhost:{listener.port}")
    for headers in (PARTIAL, {}):
        response = admin.post(
            f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=headers
        )
        page = response.get_data(as_text=True)
        if not headers:
            page = admin.get(response.headers["Location"]).get_data(as_text=True)
        assert REFUSED in page
    fragment = admin.get(f"/shops/{shop.key}/mappings/shop-lists", headers=PARTIAL)
    assert REFUSED in fragment.get_data(as_text=True)
    assert listener.accepted == 0  # not even a connection reached the address


def test_a_name_rebound_to_the_metadata_address_after_saving_is_refused(
    admin: FlaskClient, token: str, db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolve_as(monkeypatch, {"shop.rebinding.test": ["93.184.215.14"]})
    form = {
        "csrf_token": token,
        "platform": "woocommerce",
        "name": "Rebond",
        "base_url": "https://shop.rebinding.test",
        "api_key": "ck_k",
        "api_secret": "cs_s",
    }
    assert admin.post("/shops/", data=form).status_code == 303
    shop = db_session.scalars(select(Shop)).one()

    resolve_as(monkeypatch, {"shop.rebinding.test": ["169.254.169.254"]})
    response = admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
    assert REFUSED in response.get_data(as_text=True)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_open_and_closed_ports_on_a_refused_address_answer_alike(
    admin: FlaskClient, token: str, db_session: Session, listener: Listener
) -> None:
    answers = []
    for port in (listener.port, closed_port()):
        shop = saved_while_allowed(db_session, f"https://127.0.0.1:{port}")
        response = admin.post(
            f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL
        )
        answers.append(response.get_data(as_text=True))
    assert REFUSED in answers[0] and answers[0] == answers[1]
    assert listener.accepted == 0


@pytest.mark.parametrize(
    "url", [url for url, message in HOSTILE_URLS if message != USERINFO], ids=lambda url: url
)
def test_the_connection_test_refuses_each_private_address_saved_before(
    admin: FlaskClient, token: str, db_session: Session, url: str
) -> None:
    shop = make_shop(
        db_session, "legacy", "woocommerce", base_url=url, api_key="ck", api_secret="cs"
    )
    db_session.commit()
    response = admin.post(f"/shops/{shop.key}/test", data={"csrf_token": token}, headers=PARTIAL)
    fragment = response.get_data(as_text=True)
    assert REFUSED in fragment and "HTTP" not in fragment
