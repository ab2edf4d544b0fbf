"""The sync log as a manager sees it: filters that keep their URL, a delivery's payload,
replay and ignore, and each shop's flow in red when it is late."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_event, make_order, make_shop
from web.models import OrderEvent, Shop, SyncCursor, User, utcnow
from web.models.enums import InboxState, Role

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


def listed_ids(html: str) -> list[int]:
    return [int(found) for found in re.findall(r'<tr id="event-(\d+)"', html)]


@pytest.fixture()
def manager(client: FlaskClient, login_as: Callable[..., User]) -> FlaskClient:
    login_as(Role.MANAGER)
    return client


@pytest.fixture()
def shops(db_session: Session) -> tuple[Shop, Shop]:
    return (
        make_shop(db_session, "lyon", name="Boutique Lyon"),
        make_shop(db_session, "paris", name="Atelier Paris", platform="woocommerce"),
    )


def test_filters_swap_the_results_and_the_same_url_loads_as_a_page(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    lyon, paris = shops
    parked = make_event(db_session, lyon, state=InboxState.PARKED, error="unknown status")
    done = make_event(db_session, lyon, topic="orders/paid")
    other = make_event(db_session, paris, topic="order.updated", state=InboxState.PARKED)
    db_session.commit()

    page = text(manager.get("/sync/"))
    assert listed_ids(page) == sorted([parked.id, done.id, other.id], reverse=True)
    assert "3 réceptions" in page and 'hx-push-url="true"' in page

    url = "/sync/?shop=lyon&state=parked"
    fragment = text(manager.get(url, headers=PARTIAL))
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="results"')
    assert listed_ids(fragment) == [parked.id]
    assert "En attente de correspondance" in fragment and "unknown status" in fragment

    full = text(manager.get(url))
    assert "<html" in full and listed_ids(full) == [parked.id]
    assert '<option value="lyon" selected>' in full
    assert "<html" in text(manager.get(url, headers=BOOSTED))

    assert listed_ids(text(manager.get("/sync/?topic=order.updated"))) == [other.id]
    refused = text(manager.get("/sync/?state=exploded"))
    assert "Certains filtres n’ont pas été compris" in refused
    assert len(listed_ids(refused)) == 3


def test_the_results_are_paged(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    for minutes in range(55):
        make_event(db_session, shops[0], minutes_ago=minutes)
    db_session.commit()
    first = text(manager.get("/sync/"))
    assert len(listed_ids(first)) == 50 and "Page 1 sur 2" in first
    assert 'href="/sync/?page=2"' in first
    assert len(listed_ids(text(manager.get("/sync/?page=2", headers=PARTIAL)))) == 5


def test_the_detail_shows_the_payload_pretty_and_the_order(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    event = make_event(
        db_session,
        shops[0],
        body=b'{"id":5001,"note":"Livrer \\u00e0 la voisine <b>"}',
        external_order_id=order.external_id,
        state=InboxState.FAILED,
        error="PlatformUnavailable: GET /orders/5001.json: timed out",
    )
    db_session.commit()
    page = text(manager.get(f"/sync/events/{event.id}"))
    assert (
        "{\n  &#34;id&#34;: 5001,\n  &#34;note&#34;: &#34;Livrer à la voisine &lt;b&gt;&#34;\n}"
        in page
    )
    assert f'href="/orders/{order.id}"' in page
    assert "PlatformUnavailable: GET /orders/5001.json: timed out" in page
    assert "x-shopify-topic" in page
    assert "Rejouer" in page and "Ignorer" in page
    assert manager.get("/sync/events/999999").status_code == 404


def test_an_xml_payload_is_shown_as_text(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    body = b"<prestashop><order><id>12</id></order></prestashop>"
    event = make_event(db_session, shops[0], topic="poll/order", body=body)
    db_session.commit()
    page = text(manager.get(f"/sync/events/{event.id}"))
    assert "&lt;prestashop&gt;&lt;order&gt;&lt;id&gt;12&lt;/id&gt;" in page
    assert "XML" in page


def test_replay_from_the_list_changes_the_row_in_place(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    order = make_order(db_session, shops[0])
    event = make_event(
        db_session, shops[0], state=InboxState.PARKED, external_order_id=order.external_id
    )
    db_session.commit()
    token = csrf_token(manager, "/sync/")
    response = manager.post(
        f"/sync/events/{event.id}/replay", data={"csrf_token": token}, headers=PARTIAL
    )
    fragment = text(response)
    assert response.status_code == 200
    assert fragment.lstrip().startswith(f'<tr id="event-{event.id}"')
    assert "En attente" in fragment and "Remise en file" in fragment
    db_session.expire_all()
    assert event.state == InboxState.PENDING and event.attempts == 0
    note = db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "inbox.replayed")).one()
    assert note.order_id == order.id


def test_ignore_without_htmx_redirects_to_the_detail_with_the_new_state(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    event = make_event(db_session, shops[0], state=InboxState.FAILED)
    applied = make_event(db_session, shops[0], state=InboxState.PROCESSED)
    db_session.commit()
    token = csrf_token(manager, "/sync/")
    response = manager.post(f"/sync/events/{event.id}/ignore", data={"csrf_token": token})
    assert response.status_code == 303
    page = text(manager.get(response.headers["Location"]))
    assert "Mise de côté" in page and 'class="badge muted">Ignoré<' in page
    assert ">Ignorer</button>" not in page  # nothing left to ignore

    response = manager.post(f"/sync/events/{applied.id}/ignore", data={"csrf_token": token})
    assert response.status_code == 303
    assert "déjà été appliquée" in text(manager.get(response.headers["Location"]))
    db_session.expire_all()
    assert applied.state == InboxState.PROCESSED


def test_a_late_flow_shows_in_red_and_a_fresh_one_does_not(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    lyon, paris = shops
    now = utcnow()
    db_session.add_all(
        [
            SyncCursor(shop=lyon, flow="orders", last_success_at=now - dt.timedelta(hours=1)),
            SyncCursor(shop=paris, flow="orders", last_success_at=now - dt.timedelta(minutes=2)),
        ]
    )
    db_session.commit()
    page = text(manager.get("/sync/"))
    table = page[page.index('class="table cursor-table"') : page.index("</table>")]
    rows = {
        re.search(r'data-label="Boutique">([^<]+)<', row).group(1): row  # type: ignore[union-attr]
        for row in table.split("<tr")[2:]
    }
    assert rows["Boutique Lyon"].startswith(' class="cursor-late"')
    assert "en retard" in rows["Boutique Lyon"]
    assert "cursor-late" not in rows["Atelier Paris"] and "en retard" not in rows["Atelier Paris"]
    assert "À l’heure" in rows["Atelier Paris"]


def test_the_nav_counts_parked_and_failed_deliveries(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    assert 'class="nav-count"' not in text(manager.get("/sync/"))
    make_event(db_session, shops[0], state=InboxState.PARKED)
    make_event(db_session, shops[0], state=InboxState.FAILED)
    make_event(db_session, shops[0], state=InboxState.PROCESSED)
    db_session.commit()
    page = text(manager.get("/"))
    assert re.search(r'<span class="nav-count" title="2 réceptions [^"]*">2</span>', page)


@pytest.mark.parametrize("page", ["²", "0", "-1", "1" * 5000, "2000000"])
def test_a_page_that_is_no_page_number_shows_the_first_page(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop], page: str
) -> None:
    event = make_event(db_session, shops[0])
    db_session.commit()
    response = manager.get(f"/sync/?page={page}")
    html = text(response)
    assert response.status_code == 200 and listed_ids(html) == [event.id]
    assert "Certains filtres n’ont pas été compris et ont été ignorés." in html


@pytest.mark.parametrize("event_id", ["2147483648", "99999999999999999999", "0", "²"])
def test_ids_no_delivery_can_have_are_404(manager: FlaskClient, event_id: str) -> None:
    token = csrf_token(manager, "/sync/")
    assert manager.get(f"/sync/events/{event_id}").status_code == 404
    for action in ("replay", "ignore"):
        url = f"/sync/events/{event_id}/{action}"
        assert manager.post(url, data={"csrf_token": token}).status_code == 404, url
    # The largest id a row can have is looked up, and not found.
    assert manager.get("/sync/events/2147483647").status_code == 404


def test_a_delivery_applied_with_a_totals_notice_shows_both_figures(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    event = make_event(db_session, shops[0], topic="orders/create")
    event.cause_kind = "totals_mismatch"
    event.cause_params = {
        "computed": "100.89",
        "stated": "100.90",
        "difference": "-0.01",
        "currency": "EUR",
    }
    plain = make_event(db_session, shops[0], topic="orders/paid")
    db_session.commit()

    page = text(manager.get("/sync/"))
    row = page[page.index(f'id="event-{event.id}"') :]
    row = row[: row.index("</tr>")]
    notice = "Appliquée, avec un avertissement : les lignes, la livraison et les remises font"
    assert notice in row
    assert "100,89\xa0€ mais le total de la boutique est de 100,90\xa0€" in row
    assert ">Traité<" in row  # applied: the notice does not make it an error
    other = page[page.index(f'id="event-{plain.id}"') :]
    assert "avertissement" not in other[: other.index("</tr>")]

    detail = text(manager.get(f"/sync/events/{event.id}"))
    assert notice in detail
    assert "100,89\xa0€" in detail and "100,90\xa0€" in detail
