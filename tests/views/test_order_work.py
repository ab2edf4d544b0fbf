"""Working an order from its page: actions, payments and comments, as a manager sees them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import csrf_token, log_in
from tests.factories import make_line, make_order
from web.models import Comment, OrderEvent, OutboxMessage, Shop, User
from web.models.enums import (
    CommentVisibility,
    CommercialState,
    FulfilmentState,
    PaymentState,
    Role,
)
from web.models.orders import Order
from web.services import comments, order_actions, shops
from web.services.timeline import Actor


@pytest.fixture()
def shop(db_session: Session) -> Shop:
    shop = shops.create_shop(db_session, "woocommerce", "Thés", "https://thes.example.com")
    db_session.commit()
    return shop


@pytest.fixture()
def order(db_session: Session, shop: Shop) -> Order:
    order = make_order(
        db_session,
        shop,
        lines=[make_line(unit_price="80.00")],
        commercial_state=CommercialState.VALIDATED,
        payment_state=PaymentState.PAID,
        shop_status="on-hold",
    )
    db_session.commit()
    return order


def post(client: FlaskClient, order: Order, path: str, **form: str) -> tuple[int, str]:
    token = csrf_token(client, f"/orders/{order.id}")
    response = client.post(f"/orders/{order.id}{path}", data={"csrf_token": token, **form})
    return response.status_code, response.get_data(as_text=True)


def test_the_page_offers_only_the_allowed_actions(
    client: FlaskClient, login_as: Callable[..., User], order: Order
) -> None:
    login_as(Role.MANAGER)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    for allowed in ("hold", "prepare", "cancel"):
        assert f'/orders/{order.id}/actions/{allowed}"' in html
    for refused in ("validate", "release", "close"):
        assert f'/orders/{order.id}/actions/{refused}"' not in html


def test_viewers_see_no_forms_and_cannot_post(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.VIEWER)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "/actions/" not in html and '/comments"' not in html
    token = csrf_token(client, f"/orders/{order.id}")
    for path in ("/actions/cancel", "/comments", "/transactions"):
        response = client.post(
            f"/orders/{order.id}{path}",
            data={"csrf_token": token, "reason": "x", "text": "x", "amount": "1"},
        )
        assert response.status_code == 403
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).commercial_state == CommercialState.VALIDATED


def test_warehouse_staff_cannot_reach_the_order_desk(
    client: FlaskClient, login_as: Callable[..., User], order: Order
) -> None:
    login_as(Role.WAREHOUSE)
    assert client.get(f"/orders/{order.id}").status_code == 403


def test_cancel_with_a_reason_redirects_and_queues_the_shop_update(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    user = login_as(Role.MANAGER)
    status, _ = post(client, order, "/actions/cancel", reason="Rupture de stock", notify="off")
    assert status == 303
    db_session.expire_all()
    fresh = db_session.get_one(Order, order.id)
    assert fresh.commercial_state == CommercialState.CANCELLED
    assert fresh.cancel_reason == "Rupture de stock"
    event = db_session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "order.cancelled"
        )
    )
    assert event is not None and event.actor_user_id == user.id
    [message] = db_session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    assert message.payload["notify"] is False
    page = client.get(f"/orders/{order.id}").get_data(as_text=True)
    flashes = page.split('class="flashes"', 1)[1].split("</div>", 1)[0]
    assert "Commande annulée." in flashes
    assert "Rupture de stock" in page


def test_cancel_without_a_reason_is_a_form_error(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    status, html = post(client, order, "/actions/cancel", reason="  ")
    assert status == 422
    assert 'class="field-error"' in html
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).commercial_state == CommercialState.VALIDATED


def test_a_refused_action_says_why_and_changes_nothing(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    order.fulfilment_state = FulfilmentState.SHIPPED
    db_session.commit()
    status, html = post(client, order, "/actions/cancel", reason="Trop tard")
    assert status == 409
    assert "Action « Annuler la commande » impossible : la commande est déjà expédiée." in html
    assert db_session.scalars(select(OutboxMessage)).all() == []
    assert post(client, order, "/actions/teleport")[0] == 404


def test_a_payment_entered_by_hand_updates_the_money_shown(
    client: FlaskClient, login_as: Callable[..., User], shop: Shop, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    unpaid = make_order(db_session, shop, lines=[make_line(unit_price="80.00")])
    db_session.commit()
    status, _ = post(
        client,
        unpaid,
        "/transactions",
        kind="payment",
        source="cheque",
        amount="100,00",
        occurred_at="2026-03-03",
        reference="CHQ 42",
    )
    assert status == 303
    db_session.expire_all()
    fresh = db_session.get_one(Order, unpaid.id)
    assert fresh.payment_state == PaymentState.PAID
    assert fresh.commercial_state == CommercialState.VALIDATED
    html = client.get(f"/orders/{unpaid.id}").get_data(as_text=True)
    assert "CHQ 42" in html
    assert "20,00" in html  # overpaid by 20 € is shown


def test_a_bad_amount_is_a_form_error_and_keeps_what_was_typed(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    status, html = post(
        client, order, "/transactions", kind="payment", source="cash", amount="12.345"
    )
    assert status == 422
    assert 'value="12.345"' in html
    status, html = post(
        client,
        order,
        "/transactions",
        kind="payment",
        source="cash",
        amount="5",
        occurred_at="hier",
    )
    assert status == 422
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).transactions == []


def test_comments_internal_and_for_the_buyer(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    assert post(client, order, "/comments", text="Note interne", visibility="internal")[0] == 303
    status, _ = post(
        client, order, "/comments", text="Votre colis part", visibility="customer", notify="on"
    )
    assert status == 303
    saved = db_session.scalars(select(Comment).where(Comment.order_id == order.id)).all()
    assert {(c.text, c.visibility, c.notify_customer) for c in saved} == {
        ("Note interne", CommentVisibility.INTERNAL, False),
        ("Votre colis part", CommentVisibility.CUSTOMER, True),
    }
    [message] = db_session.scalars(select(OutboxMessage).where(OutboxMessage.order_id == order.id))
    assert message.kind == "comment"
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    # What WooCommerce does with a comment for the buyer is said next to the form.
    note = html.split('comment-form"', 1)[1].split("</form>", 1)[0]
    assert "WooCommerce" in note
    assert post(client, order, "/comments", text="   ")[0] == 422


def test_only_the_author_edits_or_deletes_an_internal_comment(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    order: Order,
    db_session: Session,
) -> None:
    author = make_user(Role.MANAGER)
    note = comments.add_comment(db_session, order, Actor.for_user(author), "À rappeler")
    public = comments.add_comment(db_session, order, Actor.for_user(author), "Merci", "customer")
    db_session.commit()

    login_as(Role.MANAGER)  # a colleague
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f"/comments/{note.id}/edit" not in html
    assert post(client, order, f"/comments/{note.id}/edit", text="Non")[0] == 409

    client = app.test_client()
    log_in(client, author.email)
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert f"/comments/{note.id}/edit" in html
    assert f"/comments/{public.id}/edit" not in html
    assert post(client, order, f"/comments/{note.id}/edit", text="À rappeler lundi")[0] == 303
    db_session.expire_all()
    assert db_session.get_one(Comment, note.id).text == "À rappeler lundi"
    assert post(client, order, f"/comments/{public.id}/delete")[0] == 409
    note_id = note.id
    assert post(client, order, f"/comments/{note_id}/delete")[0] == 303
    assert db_session.scalar(select(Comment).where(Comment.id == note_id)) is None
    assert post(client, order, "/comments/999999/delete")[0] == 404


def test_state_changes_need_a_csrf_token(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    login_as(Role.MANAGER)
    response = client.post(f"/orders/{order.id}/actions/hold", data={"reason": "Sans jeton"})
    assert response.status_code == 400
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).on_hold is False


def test_a_refusal_keeps_the_address_of_the_order_page_for_htmx(
    client: FlaskClient, login_as: Callable[..., User], order: Order
) -> None:
    login_as(Role.MANAGER)
    token = csrf_token(client, f"/orders/{order.id}")
    response = client.post(
        f"/orders/{order.id}/actions/hold",
        data={"csrf_token": token, "reason": ""},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert response.status_code == 422
    assert response.headers["HX-Replace-Url"] == f"/orders/{order.id}"
    ok = client.post(
        f"/orders/{order.id}/actions/hold",
        data={"csrf_token": token, "reason": "Adresse"},
        headers={"HX-Request": "true", "HX-Boosted": "true"},
    )
    assert ok.status_code == 204 and ok.headers["HX-Location"] == f"/orders/{order.id}"


def test_updates_for_a_switched_off_shop_say_they_wait(
    client: FlaskClient,
    login_as: Callable[..., User],
    shop: Shop,
    order: Order,
    db_session: Session,
) -> None:
    user = login_as(Role.MANAGER)
    comments.add_comment(db_session, order, Actor.for_user(user), "Bonjour", "customer")
    shop.is_active = False
    db_session.commit()
    html = client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "Cette boutique est désactivée" in html
    assert "en attente : la boutique est désactivée" in html


def test_the_timeline_filters_by_who_did_it(
    client: FlaskClient, login_as: Callable[..., User], order: Order, db_session: Session
) -> None:
    user = login_as(Role.MANAGER)
    order_actions.perform(db_session, order, "hold", Actor.for_user(user), reason="Vérifier")
    comments.add_comment(db_session, order, Actor.shop("orders/updated"), "Note de la boutique")
    db_session.commit()
    everything = client.get(f"/orders/{order.id}/timeline", headers={"HX-Request": "true"})
    html = everything.get_data(as_text=True)
    assert 'name="who" value="user"' in html and 'name="who" value="shop"' in html
    assert "event-user" in html and "event-shop" in html

    people = client.get(f"/orders/{order.id}/timeline?who=user", headers={"HX-Request": "true"})
    html = people.get_data(as_text=True)
    assert "event-user" in html and "event-shop" not in html and "event-system" not in html
    assert 'value="user" checked' in html
    shop = client.get(f"/orders/{order.id}/timeline?who=shop&who=bogus").get_data(as_text=True)
    assert "event-shop" in shop and "event-user" not in shop
    assert "orders/updated" in shop  # how the shop's change came


@pytest.mark.parametrize(
    "path",
    ["/orders/2147483648", "/orders/99999999999999999999/timeline", "/orders/0"],
)
def test_order_ids_beyond_the_database_are_not_found(
    client: FlaskClient, login_as: Callable[..., User], path: str
) -> None:
    login_as(Role.MANAGER)
    assert client.get(path).status_code == 404
