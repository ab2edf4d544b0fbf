"""The sync issues page as a manager sees it: every problem with its cause and order, filters
that keep their URL, retry and ignore that re-render the row and refresh the nav badge,
and the page closed to the other roles.

The tests read the page in English so they do not depend on the French catalog."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_event, make_message, make_order, make_shop
from web.models import OrderEvent, Shop, User, utcnow
from web.models.enums import ActorType, InboxState, OutboxState, Role
from web.models.orders import Order
from web.services import outbox

PARTIAL = {"HX-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}
PAGE = "/sync/issues/"


def text(response: object) -> str:
    return response.get_data(as_text=True)  # type: ignore[attr-defined]


def listed(html: str) -> list[str]:
    return re.findall(r'<tr id="((?:outbox|inbox)-\d+)"', html)


def nav_count(html: str) -> int | None:
    """The number in the navigation's red badge; None when it shows none."""
    found = re.findall(r'<span class="nav-count" title="[^"]+">(\d+)</span>', html)
    assert len(found) <= 1, "one badge at most"
    return int(found[0]) if found else None


def badge_fragment(client: FlaskClient) -> str:
    """What the badge's own poll gets."""
    response = client.get("/sync/issues/count", headers=PARTIAL)
    assert response.status_code == 200
    html = text(response)
    assert html.startswith('<span id="sync-issues-count"') and "<html" not in html
    return html


def row(html: str, row_id: str) -> str:
    start = html.index(f'<tr id="{row_id}"')
    return html[start : html.index("</tr>", start)]


def in_english(client: FlaskClient) -> FlaskClient:
    token = csrf_token(client, "/orders/")
    response = client.post("/language", data={"lang": "en", "csrf_token": token, "next": "/"})
    assert response.status_code == 303
    return client


@pytest.fixture()
def manager_user(client: FlaskClient, login_as: Callable[..., User]) -> User:
    user = login_as(Role.MANAGER)
    in_english(client)
    return user


@pytest.fixture()
def manager(client: FlaskClient, manager_user: User) -> FlaskClient:
    return client


@pytest.fixture()
def shops(db_session: Session) -> tuple[Shop, Shop]:
    return (
        make_shop(db_session, "lyon", name="Boutique Lyon"),
        make_shop(db_session, "paris", name="Atelier Paris", platform="woocommerce"),
    )


@pytest.fixture()
def order(db_session: Session, shops: tuple[Shop, Shop]) -> Order:
    return make_order(db_session, shops[0])


def test_each_issue_shows_its_shop_order_content_cause_and_actions(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop], order: Order
) -> None:
    dead = make_message(db_session, order, minutes_ago=30, error="PlatformUnavailable: 503")
    failing = make_message(
        db_session, order, state=OutboxState.FAILED, attempts=3, minutes_ago=20, error="timeout"
    )
    parked = make_event(
        db_session,
        shops[1],
        state=InboxState.PARKED,
        external_order_id="777",
        topic="order.updated",
        error="unknown status 'wc-gift'",
        minutes_ago=10,
    )
    rejected = make_event(db_session, shops[1], state=InboxState.REJECTED, error="bad signature")
    db_session.commit()

    page = text(manager.get(PAGE))

    assert listed(page) == [
        f"inbox-{rejected.id}",
        f"inbox-{parked.id}",
        f"outbox-{failing.id}",
        f"outbox-{dead.id}",
    ]
    assert "4 issues" in page and "Latest issue:" in page
    gone = row(page, f"outbox-{dead.id}")
    assert "Boutique Lyon" in gone and f'href="/orders/{order.id}">{order.number}</a>' in gone
    assert "Status “completed”" in gone and "PlatformUnavailable: 503" in gone
    assert ">Dead</span>" in gone and f"given up after {outbox.MAX_ATTEMPTS} attempts" in gone
    assert "Retry now" in gone and ">Ignore</button>" in gone
    retrying = row(page, f"outbox-{failing.id}")
    assert (
        f"attempt 3 of {outbox.MAX_ATTEMPTS}" in retrying
        and "next at" in retrying
        and "timeout" in retrying
    )
    waiting = row(page, f"inbox-{parked.id}")
    assert "Atelier Paris" in waiting and "order.updated" in waiting and ">777<" in waiting
    assert "unknown status &#39;wc-gift&#39;" in waiting
    assert ">Replay</button>" in waiting and ">Ignore</button>" in waiting
    refused = row(page, f"inbox-{rejected.id}")
    assert "bad signature" in refused and "Replay" not in refused and ">Ignore</button>" in refused
    # The page asks for its list again on its own.
    assert re.search(r'<div id="issues"[^>]*hx-trigger="every 20s', page)


def test_filters_swap_the_list_and_the_same_url_loads_as_a_page(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop], order: Order
) -> None:
    message = make_message(db_session, order)
    lyon_event = make_event(db_session, shops[0], state=InboxState.FAILED)
    paris_event = make_event(db_session, shops[1], state=InboxState.PARKED, minutes_ago=5)
    db_session.commit()

    url = f"{PAGE}?shop=lyon&kind=inbox"
    fragment = text(manager.get(url, headers=PARTIAL))
    assert "<html" not in fragment and fragment.lstrip().startswith('<div id="issues"')
    assert listed(fragment) == [f"inbox-{lyon_event.id}"]
    # The list's own poll keeps the filters.
    assert 'hx-get="/sync/issues/?shop=lyon&amp;kind=inbox"' in fragment
    # A partial answer also refreshes the nav badge, which counts every shop.
    assert re.search(r'id="sync-issues-count"[^>]*hx-swap-oob="true"', fragment)
    assert nav_count(fragment) == 3

    full = text(manager.get(url))
    assert "<html" in full and listed(full) == [f"inbox-{lyon_event.id}"]
    assert '<option value="lyon" selected>' in full and '<option value="inbox" selected>' in full
    assert "hx-swap-oob" not in full
    assert "<html" in text(manager.get(url, headers=BOOSTED))

    assert listed(text(manager.get(f"{PAGE}?kind=outbox"))) == [f"outbox-{message.id}"]
    assert listed(text(manager.get(f"{PAGE}?shop=paris"))) == [f"inbox-{paris_event.id}"]
    odd = text(manager.get(f"{PAGE}?kind=sideways"))
    assert "Some filters were not understood" in odd and len(listed(odd)) == 3


def test_the_list_is_paged(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop]
) -> None:
    for minutes in range(27):
        make_event(db_session, shops[0], state=InboxState.PARKED, minutes_ago=minutes)
    db_session.commit()
    first = text(manager.get(PAGE))
    assert len(listed(first)) == 25 and "Page 1 of 2" in first
    assert 'href="/sync/issues/?page=2"' in first
    second = text(manager.get(f"{PAGE}?page=2", headers=PARTIAL))
    assert len(listed(second)) == 2 and 'hx-get="/sync/issues/?page=2"' in second


def test_nothing_wrong_says_all_is_well(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    make_message(db_session, order, state=OutboxState.SENT)
    db_session.commit()
    page = text(manager.get(PAGE))
    assert listed(page) == [] and "All is well." in page and "0 issues" in page
    filtered = text(manager.get(f"{PAGE}?shop=paris"))
    assert "No issue matches these filters." in filtered and "All is well." not in filtered


def test_retry_now_resets_the_message_rerenders_the_row_and_refreshes_the_badge(
    manager: FlaskClient, manager_user: User, db_session: Session, order: Order
) -> None:
    dead = make_message(db_session, order)
    db_session.commit()
    token = csrf_token(manager, PAGE)

    response = manager.post(
        f"/sync/issues/outbox/{dead.id}/retry", data={"csrf_token": token}, headers=PARTIAL
    )

    fragment = text(response)
    assert response.status_code == 200
    assert "sync-issues-changed" in response.headers["HX-Trigger"]
    assert fragment.lstrip().startswith(f'<tr id="outbox-{dead.id}"') and "<html" not in fragment
    assert 'data-state="pending"' in fragment and "Sending again now." in fragment
    # The row asks for its state until the worker is done with it.
    assert f'hx-get="/sync/issues/outbox/{dead.id}?checks=1"' in fragment
    db_session.expire_all()
    assert dead.state == OutboxState.PENDING and dead.attempts == 0
    note = db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "outbox.retried")).one()
    assert note.order_id == order.id and note.actor_type == ActorType.USER
    assert note.actor_user_id == manager_user.id
    assert nav_count(badge_fragment(manager)) is None

    # The worker delivered it: the row's next check shows it sent and stops asking.
    dead.state, dead.sent_at = OutboxState.SENT, utcnow()
    db_session.commit()
    checked = text(manager.get(f"/sync/issues/outbox/{dead.id}?checks=1", headers=PARTIAL))
    assert 'data-state="sent"' in checked and ">Sent</span>" in checked
    assert "hx-get" not in checked and "Retry now" not in checked


def test_a_row_stops_asking_after_enough_checks(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    pending = make_message(db_session, order, state=OutboxState.PENDING, attempts=0)
    db_session.commit()
    url = f"/sync/issues/outbox/{pending.id}"
    assert "hx-get" in text(manager.get(f"{url}?checks=29", headers=PARTIAL))
    assert "hx-get" not in text(manager.get(f"{url}?checks=30", headers=PARTIAL))
    # Outside htmx the row's URL leads to the page.
    assert manager.get(url).headers["Location"] == PAGE


def test_retry_without_htmx_redirects_to_the_page_with_a_message(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    failing = make_message(db_session, order, state=OutboxState.FAILED, attempts=2)
    db_session.commit()
    token = csrf_token(manager, PAGE)
    response = manager.post(f"/sync/issues/outbox/{failing.id}/retry", data={"csrf_token": token})
    assert response.status_code == 303 and response.headers["Location"] == PAGE
    page = text(manager.get(PAGE))
    assert "Sending again now." in page and listed(page) == []


def test_ignore_sets_the_message_aside_and_offers_to_send_it_after_all(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    dead = make_message(db_session, order)
    db_session.commit()
    token = csrf_token(manager, PAGE)
    response = manager.post(
        f"/sync/issues/outbox/{dead.id}/ignore", headers={**PARTIAL, "X-CSRFToken": token}
    )
    fragment = text(response)
    assert response.status_code == 200 and "sync-issues-changed" in response.headers["HX-Trigger"]
    assert 'data-state="ignored"' in fragment and "Retry now" in fragment
    assert ">Ignore</button>" not in fragment
    db_session.expire_all()
    assert dead.state == OutboxState.IGNORED
    assert db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "outbox.ignored")).one()
    assert listed(text(manager.get(PAGE))) == []


def test_replay_and_ignore_a_delivery_and_a_refused_replay_says_why(
    manager: FlaskClient, db_session: Session, shops: tuple[Shop, Shop], order: Order
) -> None:
    parked = make_event(
        db_session, shops[0], state=InboxState.PARKED, external_order_id=order.external_id
    )
    failed = make_event(db_session, shops[0], state=InboxState.FAILED)
    rejected = make_event(db_session, shops[0], state=InboxState.REJECTED)
    db_session.commit()
    headers = {**PARTIAL, "X-CSRFToken": csrf_token(manager, PAGE)}

    replayed = manager.post(f"/sync/issues/inbox/{parked.id}/replay", headers=headers)
    assert replayed.status_code == 200 and 'data-state="pending"' in text(replayed)
    assert "sync-issues-changed" in replayed.headers["HX-Trigger"]
    ignored = manager.post(f"/sync/issues/inbox/{failed.id}/ignore", headers=headers)
    assert 'data-state="ignored"' in text(ignored)
    refused = manager.post(f"/sync/issues/inbox/{rejected.id}/replay", headers=headers)
    assert refused.status_code == 422 and "HX-Trigger" not in refused.headers
    assert 'data-state="rejected"' in text(refused) and 'role="alert"' in text(refused)

    db_session.expire_all()
    assert (parked.state, failed.state) == (InboxState.PENDING, InboxState.IGNORED)
    assert rejected.state == InboxState.REJECTED
    assert db_session.scalars(select(OrderEvent).where(OrderEvent.kind == "inbox.replayed")).one()
    assert listed(text(manager.get(PAGE))) == [f"inbox-{rejected.id}"]


def test_unknown_items_are_404(manager: FlaskClient) -> None:
    token = csrf_token(manager, PAGE)
    assert (
        manager.post("/sync/issues/outbox/999999/retry", data={"csrf_token": token}).status_code
        == 404
    )
    assert manager.get("/sync/issues/inbox/999999", headers=PARTIAL).status_code == 404


def test_a_post_without_csrf_token_is_refused(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    dead = make_message(db_session, order)
    db_session.commit()
    response = manager.post(f"/sync/issues/outbox/{dead.id}/retry", headers=PARTIAL)
    assert response.status_code == 400
    db_session.expire_all()
    assert dead.state == OutboxState.DEAD


@pytest.mark.parametrize("role", [Role.VIEWER, Role.WAREHOUSE])
def test_viewers_and_warehouse_staff_are_refused(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    order: Order,
    role: Role,
) -> None:
    dead = make_message(db_session, order)
    db_session.commit()
    login_as(role)
    home = "/warehouse/" if role == Role.WAREHOUSE else "/orders/"
    page = text(client.get(home))
    assert 'id="sync-issues-count"' not in page and 'href="/sync/issues/"' not in page
    token = csrf_token(client, home)
    assert client.get(PAGE).status_code == 403
    assert client.get("/sync/issues/count").status_code == 403
    retry = client.post(f"/sync/issues/outbox/{dead.id}/retry", data={"csrf_token": token})
    assert retry.status_code == 403
    db_session.expire_all()
    assert dead.state == OutboxState.DEAD


def test_the_nav_counts_failed_and_dead_messages_and_stuck_deliveries(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    shops: tuple[Shop, Shop],
    order: Order,
) -> None:
    login_as(Role.ADMIN)
    in_english(client)
    calm = text(client.get("/"))
    assert 'id="sync-issues-count"' in calm and nav_count(calm) is None
    make_message(db_session, order)
    make_message(db_session, order, state=OutboxState.FAILED)
    make_message(db_session, order, state=OutboxState.SENT)
    make_event(db_session, shops[0], state=InboxState.PARKED)
    make_event(db_session, shops[1], state=InboxState.REJECTED)
    make_event(db_session, shops[1], state=InboxState.PROCESSED)
    db_session.commit()

    page = text(client.get("/"))
    badge = re.search(r'<span class="nav-count" title="([^"]+)">(\d+)</span>', page)
    assert badge is not None and badge.group(2) == "4"
    assert badge.group(1) == "2 deliveries parked or failing · 2 changes not delivered to the shops"
    # One count only: the sync log link carries none.
    assert page.count('class="nav-count"') == 1
    link = page[
        page.index('href="/sync/issues/"') : page.index("</a>", page.index('href="/sync/issues/"'))
    ]
    assert "nav-count" in link
    # The badge refreshes itself from a tiny fragment.
    assert re.search(
        r'id="sync-issues-count" hx-get="/sync/issues/count" hx-trigger="every 30s', page
    )
    assert nav_count(badge_fragment(client)) == 4


def test_the_page_is_in_french_by_default(
    client: FlaskClient, login_as: Callable[..., User], db_session: Session, order: Order
) -> None:
    login_as(Role.MANAGER)
    calm = text(client.get(PAGE))
    assert "<h1>Incidents de synchro</h1>" in calm and "Tout va bien." in calm
    dead = make_message(db_session, order)
    db_session.commit()
    page = text(client.get(PAGE))
    assert "1 incident" in page and "Dernier incident :" in page
    gone = row(page, f"outbox-{dead.id}")
    assert ">Abandonné</span>" in gone and ">Réessayer maintenant</button>" in gone


def test_a_refused_retry_says_why_in_the_row(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    dead = make_message(db_session, order, status="processing", minutes_ago=10)
    make_message(db_session, order, state=OutboxState.SENT, status="completed")
    db_session.commit()
    token = csrf_token(manager, PAGE)

    response = manager.post(
        f"/sync/issues/outbox/{dead.id}/retry", headers={**PARTIAL, "X-CSRFToken": token}
    )

    fragment = text(response)
    assert response.status_code == 409 and "HX-Trigger" not in response.headers
    assert fragment.lstrip().startswith(f'<tr id="outbox-{dead.id}"')
    assert 'data-state="dead"' in fragment
    assert re.search(r'role="alert">a newer status was already sent to the shop<', fragment)
    db_session.expire_all()
    assert dead.state == OutboxState.DEAD
    # Without htmx: back to the page, which says why.
    plain = manager.post(f"/sync/issues/outbox/{dead.id}/retry", data={"csrf_token": token})
    assert plain.status_code == 303 and plain.headers["Location"] == PAGE
    assert "a newer status was already sent to the shop" in text(manager.get(PAGE))


@pytest.mark.parametrize("page", ["²", "0", "-1", "1" * 5000, "2000000"])
def test_a_page_that_is_no_page_number_shows_the_first_page(
    manager: FlaskClient, db_session: Session, order: Order, page: str
) -> None:
    make_message(db_session, order)
    db_session.commit()
    response = manager.get(f"{PAGE}?page={page}")
    html = text(response)
    assert response.status_code == 200
    assert "Some filters were not understood" in html and len(listed(html)) == 1


def test_a_row_check_count_that_is_no_number_starts_again(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    pending = make_message(db_session, order, state=OutboxState.PENDING, attempts=0)
    db_session.commit()
    url = f"/sync/issues/outbox/{pending.id}"
    for checks in ("²", "-1", "x", "9" * 5000):
        response = manager.get(f"{url}?checks={checks}", headers=PARTIAL)
        assert response.status_code == 200
        assert f'hx-get="{url}?checks=1"' in text(response)


@pytest.mark.parametrize("item_id", ["2147483648", "99999999999999999999", "0", "²"])
def test_ids_no_row_can_have_are_404(manager: FlaskClient, item_id: str) -> None:
    token = csrf_token(manager, PAGE)
    assert manager.get(f"/sync/issues/outbox/{item_id}", headers=PARTIAL).status_code == 404
    assert manager.get(f"/sync/issues/inbox/{item_id}", headers=PARTIAL).status_code == 404
    for action in ("outbox/{}/retry", "outbox/{}/ignore", "inbox/{}/replay", "inbox/{}/ignore"):
        url = "/sync/issues/" + action.format(item_id)
        assert manager.post(url, data={"csrf_token": token}).status_code == 404, url


def test_the_largest_id_reaches_the_database_and_is_not_found(manager: FlaskClient) -> None:
    assert manager.get("/sync/issues/outbox/2147483647", headers=PARTIAL).status_code == 404
    assert manager.get("/sync/issues/inbox/2147483647", headers=PARTIAL).status_code == 404


def test_the_page_counts_the_issues_once_for_its_list_and_the_nav(
    manager: FlaskClient,
    db_session: Session,
    engine: Engine,
    shops: tuple[Shop, Shop],
    order: Order,
) -> None:
    make_message(db_session, order)
    make_event(db_session, shops[0], state=InboxState.PARKED)
    db_session.commit()
    statements: list[str] = []

    def seen(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.lower())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        full = text(manager.get(PAGE))
        partial = text(manager.get(PAGE, headers=PARTIAL))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert nav_count(full) == 2 and nav_count(partial) == 2
    counts = [s for s in statements if "count(" in s and "from outbox_messages" in s]
    assert len(counts) == 2, "one count of the outbox per request"


def test_a_shipment_that_did_not_reach_the_shop_is_named_and_can_be_retried(
    manager: FlaskClient, db_session: Session, order: Order
) -> None:
    message = make_message(db_session, order, error="PermanentError: HTTP 422")
    message.kind = outbox.SHIPMENT
    message.payload = {"shipment_id": 999, "number": "EXP-7-1"}
    db_session.commit()
    shown = row(text(manager.get(PAGE)), f"outbox-{message.id}")
    assert "Shipment EXP-7-1" in shown and "HTTP 422" in shown
    # Its shipment is gone: retrying says why instead of sending nothing.
    token = csrf_token(manager, PAGE)
    answer = manager.post(
        f"/sync/issues/outbox/{message.id}/retry", data={"csrf_token": token}, headers=PARTIAL
    )
    assert "its shipment no longer exists" in text(answer)
