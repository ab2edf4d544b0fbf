"""The warehouse queue: ready-to-prepare orders, oldest first, big cards for phones."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_line, make_order, make_shop
from web.models import User, utcnow
from web.models.enums import CommercialState, FulfilmentState, PaymentState

READY = {"commercial_state": CommercialState.VALIDATED, "payment_state": PaymentState.PAID}


def queue_numbers(html: str) -> list[str]:
    return re.findall(r'class="queue-number"[^>]*>([^<]+)<', html)


def test_queue_lists_only_ready_orders_oldest_first(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    shop = make_shop(db_session)
    anne = make_customer(db_session, "anne@example.test", "Anne", "Roux")
    now = utcnow()
    box = make_line("BOX", 1)
    make_order(
        db_session,
        shop,
        [
            make_line("A", 2),
            make_line("B", 1),
            make_line("FEE", 1, kind="fee"),
            box,
            make_line("BOX-CUP", 2, parent=box),
        ],
        customer=anne,
        shipping_address={"city": "Rennes", "postcode": "35000"},
        shipping_label="Colissimo Domicile",
        placed_at=now - dt.timedelta(days=3),
        **READY,
    )  # #1001, late
    make_order(db_session, shop, placed_at=now - dt.timedelta(days=5))  # #1002 not paid
    make_order(db_session, shop, placed_at=now - dt.timedelta(hours=2), **READY)  # #1003
    make_order(db_session, shop, on_hold=True, placed_at=now - dt.timedelta(days=9), **READY)
    make_order(
        db_session,
        shop,
        fulfilment_state=FulfilmentState.SHIPPED,
        placed_at=now - dt.timedelta(days=8),
        **READY,
    )
    make_order(
        db_session,
        shop,
        fulfilment_state=FulfilmentState.IN_PREPARATION,
        placed_at=now - dt.timedelta(days=1),
        **READY,
    )  # #1006
    db_session.commit()
    login_as("warehouse")
    response = client.get("/warehouse/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert queue_numbers(html) == ["#1001", "#1006", "#1003"]
    assert "3 commandes" in html
    assert "Anne Roux" in html and "Rennes" in html and "Colissimo Domicile" in html
    # Products only: the fee is not an item, a bundle counts once (not its two cups again).
    assert "<dt>Articles</dt><dd>4</dd>" in html
    assert "il y a 3 jours" in html
    assert 'class="queue-card late"' in html
    assert "Emballer" in html and "Liste de prélèvement" in html
    # warehouse staff cannot open the desk's order page, so no link to it
    assert 'href="/orders/' not in html.split('<ol class="queue">')[1]


def test_managers_get_links_to_the_order(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    order = make_order(db_session, make_shop(db_session), **READY)
    db_session.commit()
    login_as("manager")
    html = client.get("/warehouse/").get_data(as_text=True)
    assert f'<a class="queue-number" href="/orders/{order.id}">#1001</a>' in html


def test_empty_queue(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as("warehouse")
    html = client.get("/warehouse/").get_data(as_text=True)
    assert "Rien à préparer" in html


def test_viewer_cannot_see_the_queue(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as("viewer")
    assert client.get("/warehouse/").status_code == 403
