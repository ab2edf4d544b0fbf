"""The dashboard: counts that link to the list, the 30-day chart, what needs attention."""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_order, make_shop
from web.models import InboxEvent, OutboxMessage, User, utcnow
from web.models.enums import (
    CommercialState,
    FulfilmentState,
    InboxState,
    OutboxState,
    PaymentState,
)


def tile(html: str, label: str) -> str:
    match = re.search(
        r'<span class="tile-count">(\d+)</span>\s*<span class="tile-label">' + label, html
    )
    assert match, label
    return match.group(1)


def state_count(html: str, state_label: str) -> str:
    match = re.search(
        state_label + r'</span><span class="state-count(?: muted)?">(\d+)</span>', html
    )
    assert match, state_label
    return match.group(1)


def seed(session: Session) -> None:
    shop = make_shop(session, name="Boutique Lyon")
    now = utcnow()
    make_order(
        session,
        shop,
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        placed_at=now,
    )
    make_order(
        session,
        shop,
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        placed_at=now,
    )
    make_order(session, shop, on_hold=True, hold_reason="Adresse incomplète", placed_at=now)
    make_order(
        session,
        shop,
        needs_mapping=True,
        mapping_issues=[{"kind": "carrier", "value": "Drone", "label": ""}],
        commercial_state=CommercialState.CANCELLED,
        placed_at=now,
    )
    make_order(
        session,
        shop,
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        fulfilment_state=FulfilmentState.SHIPPED,
        placed_at=now,
    )
    session.add(
        InboxEvent(
            shop=shop,
            topic="orders/updated",
            dedupe_key="evt-1",
            raw_body=b"{}",
            state=InboxState.PARKED,
            error="Unknown status 'wc-custom'",
        )
    )
    session.add(
        OutboxMessage(
            shop_id=shop.id,
            kind="tracking.push",
            idempotency_key="out-1",
            state=OutboxState.DEAD,
            last_error="HTTP 500 from the shop",
        )
    )
    session.commit()


def test_dashboard_counts_link_to_the_filtered_list(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    seed(db_session)
    login_as("viewer")
    html = client.get("/").get_data(as_text=True)
    assert "<h1>Tableau de bord</h1>" in html
    assert tile(html, "Prête à préparer") == "2"
    assert tile(html, "En attente") == "1"
    assert tile(html, "Correspondance manquante") == "1"
    assert tile(html, "Toutes les commandes") == "5"
    assert state_count(html, "Validée") == "3"
    assert state_count(html, "Annulée") == "1"
    assert state_count(html, "Payée") == "3"
    assert state_count(html, "Expédiée") == "1"
    assert 'href="/orders/?ready=1"' in html
    assert 'href="/orders/?payment=paid"' in html
    assert 'href="/orders/?commercial=cancelled"' in html


def test_chart_has_thirty_accessible_bars(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    seed(db_session)
    login_as("manager")
    html = client.get("/").get_data(as_text=True)
    assert len(re.findall(r'<rect class="chart-bar', html)) == 30
    assert len(re.findall(r'<g class="chart-day">', html)) == 30
    assert 'role="img"' in html and 'aria-labelledby="chart-title chart-desc"' in html
    assert '<title id="chart-title">Commandes par jour, 30 derniers jours</title>' in html
    assert "5 commandes en 30 jours" in html
    # today's bar says how many orders and how much they brought (cancelled left out)
    assert re.search(r"<title>[^<]+ — 5 commandes, 40,00\xa0€</title>", html)
    # the hidden table reads out every day
    table = html[html.index('<div class="visually-hidden">') :]
    assert table.count('<th scope="row">') == 30
    assert 'class="chart-weekend"' in html


def test_needs_attention_lists_orders_and_stuck_sync(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    seed(db_session)
    login_as("manager")
    html = client.get("/").get_data(as_text=True)
    attention = html[html.index('id="attention-heading"') :]
    assert "Adresse incomplète" in attention
    assert "mode de livraison inconnu « Drone »" in attention
    assert "orders/updated" in attention and "Événement entrant bloqué" in attention
    assert "tracking.push" in attention and "Envoi à la boutique en échec" in attention
    assert re.search(r'<a href="/orders/\d+">Commande #100\d</a>', attention)


def test_needs_attention_lists_orders_whose_totals_do_not_add_up(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, grand_total=Decimal("32.62"), computed_total=Decimal("32.61"))
    make_order(db_session, shop)
    db_session.commit()
    login_as("manager")
    html = client.get("/").get_data(as_text=True)
    attention = html[html.index('id="attention-heading"') :]
    assert attention.count("Les totaux ne concordent pas") == 1
    assert "32.61 ≠ 32.62 EUR" in attention


def test_empty_dashboard(client: FlaskClient, login_as: Callable[..., User]) -> None:
    login_as("admin")
    html = client.get("/").get_data(as_text=True)
    assert tile(html, "Toutes les commandes") == "0"
    assert "Rien à traiter" in html
    assert len(re.findall(r'<rect class="chart-bar', html)) == 30


def test_dashboard_in_english(
    db_session: Session, client: FlaskClient, login_as: Callable[..., User]
) -> None:
    seed(db_session)
    login_as("viewer")
    token = csrf_token(client, "/")
    client.post("/language", data={"lang": "en", "next": "/", "csrf_token": token})
    html = client.get("/").get_data(as_text=True)
    assert "Orders per day, last 30 days" in html
    assert tile(html, "Ready to prepare") == "2"
    assert "Needs attention" in html


def test_warehouse_staff_opening_home_land_on_their_queue(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login_as("warehouse")
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/warehouse/"
    followed = client.get("/", follow_redirects=True)
    assert followed.status_code == 200
    assert followed.request.path == "/warehouse/"
    html = followed.get_data(as_text=True)
    assert "Votre rôle ne donne pas accès" not in html
    # The dashboard's own figures stay out of reach.
    assert "Needs attention" not in html and "À traiter" not in html
