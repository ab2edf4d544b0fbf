"""A change notification from the shop's module, end to end: the hook stores the change, the
worker reads the order from the shop (the emulator, over loopback), and the order is on the
desk and in the API. Only the connector reads the shop; the notification never carries data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_from
from tests.connectors.test_notifications import body, post
from tests.emulators.magento import MagentoEmulator
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.sync.test_magento_e2e import fixture as magento_fixture
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED
from web.models import InboxEvent, Order, Shop, User
from web.models.enums import InboxState, Role
from web.services import shops, users
from web.services.sync import process_pending


@pytest.fixture()
def presta(db_session: Session) -> Iterator[tuple[PrestaShopEmulator, Shop]]:
    with PrestaShopEmulator() as emulator:
        for name in RELATED:
            emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        emulator.add_order((FIXTURES / "fr-order-101.xml").read_bytes())  # type: ignore[attr-defined]
        shop = shops.create_shop(
            db_session, "prestashop", "Maison Lumière", emulator.base_url, api_key=DEFAULT_KEY
        )
        db_session.commit()
        yield emulator, shop  # type: ignore[misc]


def magento_shop(db_session: Session, emulator: MagentoEmulator) -> Shop:
    shop = shops.create_shop(
        db_session, "magento", "Papeterie", emulator.base_url, api_key=emulator.token
    )
    db_session.commit()
    return shop


def reads_of(emulator: Any, path: str) -> int:
    return sum(1 for request in emulator.requests if request.path == path)


def order_of(db_session: Session, shop: Shop, external_id: str) -> Order | None:
    db_session.expire_all()
    query = select(Order).where(Order.shop_id == shop.id, Order.external_id == external_id)
    return db_session.scalars(query).one_or_none()


def test_a_notified_order_is_read_from_the_shop_once_and_shown_in_the_api(
    client: FlaskClient,
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
    make_user: Callable[..., User],
) -> None:
    emulator, shop = presta
    stamp = emulator.get("orders", 101)["date_upd"]
    emulator.requests.clear()
    # Two hooks of one change (a state change fires both): one read of the order.
    assert post(client, shop, body(order_id="101", date_upd=stamp)).get_json() == {
        "status": "stored"
    }
    again = body(event="order.updated", order_id="101", date_upd=stamp)
    assert post(client, shop, again).get_json() == {"status": "duplicate"}
    assert emulator.requests == []  # the hook itself never calls the shop
    process_pending(session_factory, shop.id)
    assert reads_of(emulator, "/api/orders/101") == 1
    order = order_of(db_session, shop, "101")
    assert order is not None
    token = users.create_api_token(db_session, make_user(Role.MANAGER), "tests")
    db_session.commit()
    listed = client.get("/api/v1/orders", headers={"Authorization": f"Bearer {token}"})
    assert [found["number"] for found in listed.get_json()["orders"]] == [order.number]

    # The same date_upd notified again without a change id: the order row answers it.
    earlier = body(event="order.updated", order_id="101", date_upd="2001-01-01 00:00:00")
    assert post(client, shop, earlier).get_json() == {"status": "stored"}
    process_pending(session_factory, shop.id)
    assert reads_of(emulator, "/api/orders/101") == 1
    # A change that does not move date_upd (a message) is read all the same.
    message = body(
        event="order.message_added", order_id="101", date_upd=stamp, change_id="message:77"
    )
    assert post(client, shop, message).get_json() == {"status": "stored"}
    process_pending(session_factory, shop.id)
    assert reads_of(emulator, "/api/orders/101") == 2
    states = [event.state for event in db_session.scalars(select(InboxEvent))]
    assert states == [InboxState.PROCESSED] * 3


def test_a_notification_of_an_order_the_shop_does_not_have_parks_with_its_cause(
    client: FlaskClient,
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    _, shop = presta
    assert post(client, shop, body(order_id="999")).get_json() == {"status": "stored"}
    process_pending(session_factory, shop.id)
    db_session.expire_all()
    event = db_session.scalars(select(InboxEvent)).one()
    assert event.state == InboxState.PARKED and event.cause_kind == "not_found_at_shop"
    assert order_of(db_session, shop, "999") is None


def test_the_module_test_shows_on_the_settings_page_as_the_last_notification(
    client: FlaskClient,
    presta: tuple[PrestaShopEmulator, Shop],
    login_as: Callable[..., User],
) -> None:
    _, shop = presta
    login_as(Role.ADMIN)
    page = client.get(f"/shops/{shop.key}").get_data(as_text=True)
    assert "Notifications en temps réel" in page and "Aucune reçue pour l’instant" in page
    assert shop.webhook_secret and shop.webhook_secret in page
    assert f"/hooks/prestashop/{shop.key}" in page
    ping = body(event="test", order_id="", date_upd="")
    assert post(client, shop, ping).get_json() == {"status": "ping"}
    page = client.get(f"/shops/{shop.key}").get_data(as_text=True)
    assert "Aucune reçue" not in page
    assert '<span class="mono">test</span>' in page
    assert '<dd id="notifications-today">1</dd>' in page
    assert "Installing the PrestaShop module" in page


def test_a_magento_notification_reads_the_order_from_the_store(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    with MagentoEmulator() as emulator:
        stored = emulator.add_order(magento_fixture("fr-order-relay-coupon.json"))  # type: ignore[attr-defined]
        shop = magento_shop(db_session, emulator)  # type: ignore[arg-type]
        order_id = str(stored["entity_id"])
        raw = body(order_id=order_id, date_upd=stored["updated_at"])
        assert post(client, shop, raw).get_json() == {"status": "stored"}
        process_pending(session_factory, shop.id)
        reads = reads_of(emulator, f"/rest/V1/orders/{order_id}")
    order = order_of(db_session, shop, order_id)
    assert order is not None and order.number == "000001042"
    assert reads >= 1


def test_a_shop_from_before_the_module_gets_its_secret_from_the_settings_page(
    client: FlaskClient,
    presta: tuple[PrestaShopEmulator, Shop],
    db_session: Session,
    login_as: Callable[..., User],
) -> None:
    _, shop = presta
    shop.webhook_secret = None  # created when PrestaShop shops had none
    db_session.commit()
    login_as(Role.ADMIN)
    page = client.get(f"/shops/{shop.key}").get_data(as_text=True)
    assert "Pas encore de secret de webhook" in page
    refused = post(client, shop, body(), secret="")
    assert refused.status_code == 401
    client.post(f"/shops/{shop.key}/webhook-secret", data={"csrf_token": csrf_from(page)})
    db_session.refresh(shop)
    assert shop.webhook_secret and len(shop.webhook_secret) >= 32
    assert post(client, shop, body()).get_json() == {"status": "stored"}
