"""The order timeline: who did what, how it came, and when."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_order
from web.models import Shop, utcnow
from web.models.enums import ActorType, Role
from web.services import comments, shops
from web.services.timeline import Actor, excerpt, record_event
from web.services.users import create_user


@pytest.fixture()
def shop(db_session: Session) -> Shop:
    shop = shops.create_shop(db_session, "woocommerce", "Thés", "https://thes.example.com")
    db_session.flush()
    return shop


def test_the_shop_or_comptoir_say_how_a_change_came_and_a_person_is_known_by_id(
    db_session: Session, shop: Shop
) -> None:
    order = make_order(db_session, shop)
    user, _ = create_user(db_session, "lea@example.com", Role.MANAGER, "x" * 12, "Léa")
    by_webhook = record_event(db_session, order, Actor.shop("orders/updated"), "order.updated")
    by_poll = record_event(db_session, order, Actor.system("poll"), "order.updated")
    by_shop = record_event(db_session, order, Actor.shop(), "order.updated", {"state": "paid"})
    by_job = record_event(db_session, order, Actor.system(), "order.updated")
    by_person = record_event(db_session, order, Actor.for_user(user), "order.held", {"x": "1"})
    db_session.flush()

    assert (by_webhook.actor_type, by_webhook.details) == (
        ActorType.SHOP,
        {"via": "orders/updated"},
    )
    assert (by_poll.actor_type, by_poll.details) == (ActorType.SYSTEM, {"via": "poll"})
    # No label, no "via": the timeline does not make one up.
    assert (by_shop.actor_type, by_shop.details) == (ActorType.SHOP, {"state": "paid"})
    assert (by_job.actor_type, by_job.details) == (ActorType.SYSTEM, {})
    assert by_job.actor_user_id is None
    assert (by_person.actor_type, by_person.actor_user_id) == (ActorType.USER, user.id)
    assert by_person.details == {"x": "1"}


def test_an_event_is_dated_when_it_is_recorded_not_when_the_work_is_written(
    db_session: Session, shop: Shop
) -> None:
    order = make_order(db_session, shop)
    db_session.flush()
    before = utcnow()
    event = record_event(db_session, order, Actor.system(), "order.updated")
    recorded = utcnow()
    db_session.flush()
    assert before <= event.occurred_at <= recorded


def test_excerpts_keep_short_texts_whole_and_cut_long_ones_with_an_ellipsis() -> None:
    assert excerpt("a" * 10, 10) == "a" * 10
    assert excerpt("a" * 9 + "bc", 10) == "a" * 9 + "…"
    assert excerpt("x" * 500) == "x" * 500
    assert excerpt("x" * 501) == "x" * 499 + "…"


def test_a_long_comment_shows_in_the_timeline_as_its_first_words(
    db_session: Session, shop: Shop
) -> None:
    order = make_order(db_session, shop)
    user, _ = create_user(db_session, "lea@example.com", Role.MANAGER, "x" * 12, "Léa")
    exact = comments.add_comment(db_session, order, Actor.for_user(user), "é" * 200)
    longer = comments.add_comment(db_session, order, Actor.for_user(user), "é" * 199 + "fin")
    db_session.flush()
    excerpts = {e.details["comment_id"]: e.details["excerpt"] for e in order.events}
    assert excerpts[exact.id] == "é" * 200
    assert excerpts[longer.id] == "é" * 199 + "…"
