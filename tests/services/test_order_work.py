"""Working an order: actions, comments and payments, each with what the shop must learn."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_line, make_order
from web.models import Comment, OrderEvent, OutboxMessage, Shop, Transaction, User
from web.models.enums import (
    ActorType,
    CommentVisibility,
    CommercialState,
    FulfilmentState,
    Milestone,
    OutboxState,
    PaymentState,
    Role,
    TransactionKind,
    TransactionSource,
)
from web.models.orders import Order
from web.services import comments, order_actions, order_state, outbox, payments, shops
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor
from web.services.users import create_user


@pytest.fixture()
def woo(db_session: Session) -> Shop:
    shop = shops.create_shop(db_session, "woocommerce", "Thés", "https://thes.example.com")
    db_session.flush()
    return shop


@pytest.fixture()
def manager(db_session: Session) -> User:
    user, _ = create_user(db_session, "boss@example.com", Role.MANAGER, "x" * 12, "Boss")
    return user


@pytest.fixture()
def actor(manager: User) -> Actor:
    return Actor.for_user(manager)


def paid_order(session: Session, shop: Shop, **overrides: object) -> Order:
    values: dict[str, object] = {
        "commercial_state": CommercialState.VALIDATED,
        "payment_state": PaymentState.PAID,
        "shop_status": "processing",
    }
    values.update(overrides)
    return make_order(session, shop, **values)


def messages(session: Session, order: Order) -> list[OutboxMessage]:
    session.flush()
    return list(
        session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.order_id == order.id)
            .order_by(OutboxMessage.id)
        )
    )


def kinds(session: Session, order: Order) -> list[str]:
    session.flush()
    return list(
        session.scalars(
            select(OrderEvent.kind).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    )


# --- Actions -------------------------------------------------------------------------------


def test_cancelling_queues_the_cancelled_status_with_the_reason(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = paid_order(db_session, woo)
    order_actions.perform(db_session, order, "cancel", actor, reason="Rupture de stock")
    assert order.commercial_state == CommercialState.CANCELLED
    [message] = messages(db_session, order)
    assert message.kind == "status"
    assert message.payload == {
        "milestone": "cancelled",
        "status": "cancelled",
        "notify": True,
        "reason": "Rupture de stock",
    }
    assert message.idempotency_key == f"status:{order.id}:cancelled"
    assert message.state == OutboxState.PENDING
    cancelled = db_session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "order.cancelled"
        )
    )
    assert cancelled is not None and cancelled.actor_user_id == manager.id
    assert "outbox.queued" in kinds(db_session, order)


def test_preparation_pushes_processing_only_when_the_shop_shows_something_else(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    already = paid_order(db_session, woo, shop_status="processing")
    order_actions.perform(db_session, already, "prepare", actor)
    assert messages(db_session, already) == []
    assert already.last_pushed_milestone == Milestone.PROCESSING

    on_hold_at_shop = paid_order(db_session, woo, shop_status="on-hold")
    order_actions.perform(db_session, on_hold_at_shop, "prepare", actor)
    [message] = messages(db_session, on_hold_at_shop)
    assert message.payload["status"] == "processing"


def test_a_milestone_is_never_queued_twice_nor_backwards(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo, shop_status="on-hold")
    order_actions.perform(db_session, order, "prepare", actor)
    order_actions.perform(db_session, order, "hold", actor, reason="Adresse à vérifier")
    order_actions.perform(db_session, order, "release", actor)
    assert [m.payload["milestone"] for m in messages(db_session, order)] == ["processing"]
    order_actions.perform(db_session, order, "cancel", actor, reason="Client injoignable")
    assert [m.payload["milestone"] for m in messages(db_session, order)] == [
        "processing",
        "cancelled",
    ]


def test_switched_off_statuses_or_a_disabled_row_queue_nothing(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    woo.push_statuses = False
    order = paid_order(db_session, woo, shop_status="on-hold")
    order_actions.perform(db_session, order, "prepare", actor)
    assert messages(db_session, order) == []

    woo.push_statuses = True
    for mapping in woo.milestone_mappings:
        if mapping.milestone == Milestone.CANCELLED:
            mapping.enabled = False
    other = paid_order(db_session, woo, shop_status="on-hold")
    order_actions.perform(db_session, other, "cancel", actor, reason="Doublon")
    assert messages(db_session, other) == []


@pytest.mark.parametrize(
    ("action", "setup", "reason"),
    [
        ("validate", {"commercial_state": CommercialState.VALIDATED}, "already validated"),
        ("hold", {"on_hold": True}, "already on hold"),
        ("release", {}, "not on hold"),
        ("prepare", {"payment_state": PaymentState.UNPAID}, "not paid yet"),
        ("cancel", {"fulfilment_state": FulfilmentState.SHIPPED}, "already shipped"),
        ("close", {}, "not fully shipped yet"),
    ],
)
def test_refused_actions_change_nothing_and_queue_nothing(
    db_session: Session, woo: Shop, actor: Actor, action: str, setup: dict, reason: str
) -> None:
    order = paid_order(db_session, woo, shop_status="on-hold", **setup)
    before = (order.commercial_state, order.fulfilment_state, order.on_hold)
    with pytest.raises(InvalidTransition) as refused:
        order_actions.perform(db_session, order, action, actor, reason="Une raison")
    assert reason in refused.value.reason
    assert (order.commercial_state, order.fulfilment_state, order.on_hold) == before
    assert messages(db_session, order) == []


def test_hold_and_cancel_need_a_reason_and_unknown_actions_are_refused(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo)
    for action in ("hold", "cancel"):
        with pytest.raises(ValidationFailed) as missing:
            order_actions.perform(db_session, order, action, actor, reason="   ")
        assert "reason" in missing.value.errors
    with pytest.raises(ValidationFailed) as unknown:
        order_actions.perform(db_session, order, "ship-it", actor)
    expected = (
        "Unknown action “ship-it”; expected one of validate, hold, release, prepare, cancel, close."
    )
    assert str(unknown.value) == expected
    assert unknown.value.errors == {"action": expected}
    assert order.commercial_state == CommercialState.VALIDATED and not order.on_hold


def test_an_unknown_action_is_quoted_cut_to_forty_characters(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo)
    with pytest.raises(ValidationFailed) as unknown:
        order_actions.perform(db_session, order, "a" * 40 + "bcdef", actor)
    assert unknown.value.errors["action"].startswith(f"Unknown action “{'a' * 40}”;")


def test_locking_an_order_reads_what_another_person_just_committed(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo)
    db_session.commit()
    assert not order.on_hold
    with session_factory() as other:
        order_actions.perform(
            other, other.get_one(Order, order.id), "hold", actor, reason="Adresse à vérifier"
        )
        other.commit()
    locked = order_actions.lock_order(db_session, order.id)
    assert locked is order
    assert locked.on_hold and locked.hold_reason == "Adresse à vérifier"


def test_a_failing_commit_leaves_neither_the_change_nor_its_message(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo, shop_status="on-hold")
    db_session.commit()
    order_actions.perform(db_session, order, "cancel", actor, reason="Fraude")
    # Something else in the same unit of work breaks a constraint at commit time.
    db_session.add(
        Transaction(
            order=order, kind=TransactionKind.SALE, amount=Decimal("-1"), external_id="broken"
        )
    )
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()
    db_session.expire_all()
    assert db_session.get_one(Order, order.id).commercial_state == CommercialState.VALIDATED
    assert db_session.scalar(select(func.count()).select_from(OutboxMessage)) == 0
    assert "order.cancelled" not in kinds(db_session, order)


def test_a_cancellation_coming_from_the_shop_is_not_sent_back(
    db_session: Session, actor: Actor
) -> None:
    shopify = shops.create_shop(db_session, "shopify", "Boutique", "https://b.example.com")
    order = paid_order(db_session, shopify, commercial_state=CommercialState.CANCELLED)
    assert outbox.queue_milestone(db_session, order, Actor.shop("Boutique")) is None
    assert order.last_pushed_milestone == Milestone.CANCELLED
    other = paid_order(db_session, shopify)
    order_actions.perform(db_session, other, "cancel", actor, reason="Erreur de prix")
    [message] = messages(db_session, other)
    assert message.payload["status"] == "cancel"


# --- Comments ------------------------------------------------------------------------------


def test_a_customer_comment_is_queued_an_internal_one_stays_home(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo)
    note = comments.add_comment(
        db_session, order, actor, "  Colis fragile  ", "internal", notify=True
    )
    assert note.text == "Colis fragile" and note.notify_customer is False
    assert messages(db_session, order) == []
    public = comments.add_comment(
        db_session, order, actor, "Votre colis part demain.", "customer", notify=True
    )
    [message] = messages(db_session, order)
    assert message.kind == "comment"
    assert message.idempotency_key == f"comment:{public.id}"
    assert message.payload == {
        "comment_id": public.id,
        "text": "Votre colis part demain.",
        "customer_visible": True,
        "notify": True,
    }
    assert kinds(db_session, order).count("comment.internal") == 1
    assert kinds(db_session, order).count("comment.customer") == 1


def test_comments_are_not_queued_when_the_shop_takes_none(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    woo.push_comments = False
    order = paid_order(db_session, woo)
    comments.add_comment(db_session, order, actor, "Bonjour", CommentVisibility.CUSTOMER)
    assert messages(db_session, order) == []


def test_only_internal_unpushed_comments_change_and_only_by_their_author_or_an_admin(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = paid_order(db_session, woo)
    note = comments.add_comment(db_session, order, actor, "Appeler le client", "internal")
    comments.edit_comment(db_session, note, actor, "Appeler le client demain", manager)
    assert note.text == "Appeler le client demain" and note.updated_at is not None

    colleague, _ = create_user(db_session, "colleague@example.com", Role.MANAGER, "y" * 12, "C")
    with pytest.raises(InvalidTransition):
        comments.edit_comment(db_session, note, Actor.for_user(colleague), "Non", colleague)
    admin, _ = create_user(db_session, "root@example.com", Role.ADMIN, "z" * 12, "Root")
    assert comments.can_change(note, admin)

    public = comments.add_comment(db_session, order, actor, "Merci !", "customer")
    with pytest.raises(InvalidTransition):
        comments.edit_comment(db_session, public, actor, "Merci beaucoup !", manager)
    with pytest.raises(InvalidTransition):
        comments.delete_comment(db_session, public, actor, manager)

    comments.delete_comment(db_session, note, actor, manager)
    db_session.flush()
    assert db_session.get(Comment, note.id) is None
    deleted = db_session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "comment.deleted"
        )
    )
    assert deleted is not None and deleted.details["text"] == "Appeler le client demain"


def test_empty_or_huge_comments_are_refused(db_session: Session, woo: Shop, actor: Actor) -> None:
    order = paid_order(db_session, woo)
    for text in ("", "   ", "x" * (comments.TEXT_MAX_LENGTH + 1)):
        with pytest.raises(ValidationFailed) as refused:
            comments.add_comment(db_session, order, actor, text)
        assert "text" in refused.value.errors
    with pytest.raises(ValidationFailed):
        comments.add_comment(db_session, order, actor, "Bonjour", "everyone")


def test_a_comment_may_be_4000_characters_and_refusals_say_what_to_do(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = paid_order(db_session, woo)
    longest = comments.add_comment(db_session, order, actor, "x" * comments.TEXT_MAX_LENGTH)
    assert len(longest.text) == 4000
    with pytest.raises(ValidationFailed) as too_long:
        comments.add_comment(db_session, order, actor, "x" * 4001)
    assert too_long.value.errors == {"text": "Keep the comment under 4,000 characters."}
    with pytest.raises(ValidationFailed) as empty:
        comments.add_comment(db_session, order, actor, "  ")
    assert empty.value.errors == {"text": "Write the comment first."}
    assert str(empty.value) == "Write the comment first."


def test_a_refused_change_names_the_comment_and_why(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = paid_order(db_session, woo)
    note = comments.add_comment(db_session, order, actor, "Appeler le client", "internal")
    colleague, _ = create_user(db_session, "colleague@example.com", Role.MANAGER, "y" * 12, "C")
    with pytest.raises(InvalidTransition) as refused:
        comments.delete_comment(db_session, note, Actor.for_user(colleague), colleague)
    assert str(refused.value) == "comment: only its author or an admin can change it"


def test_edits_and_deletions_keep_what_the_comment_said_in_the_timeline(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = paid_order(db_session, woo)
    first, second = "Appeler le client. " + "a" * 300, "Rappeler le client. " + "b" * 300
    note = comments.add_comment(db_session, order, actor, first, "internal")
    comments.edit_comment(db_session, note, actor, second, manager)
    note_id = note.id
    comments.delete_comment(db_session, note, actor, manager)
    db_session.flush()
    details = {
        event.kind: event.details
        for event in db_session.scalars(select(OrderEvent).where(OrderEvent.order_id == order.id))
    }
    assert details["comment.edited"] == {
        "comment_id": note_id,
        "previous": first,
        "excerpt": second[:199] + "…",
    }
    assert details["comment.deleted"] == {
        "comment_id": note_id,
        "text": second,
        "excerpt": second[:199] + "…",
    }


# --- Payments ------------------------------------------------------------------------------


def new_order(session: Session, shop: Shop, total: str = "100.00") -> Order:
    return make_order(session, shop, lines=[make_line(unit_price=total)], shop_status="on-hold")


def test_a_bank_transfer_pays_validates_and_queues_the_shop_update(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = new_order(db_session, woo)
    payments.record_manual(
        db_session,
        order,
        actor,
        kind="payment",
        source="bank_transfer",
        amount="60,00",
        reference="VIR 123",
    )
    assert order.payment_state == PaymentState.PARTIALLY_PAID
    assert order.commercial_state == CommercialState.NEW
    transaction = payments.record_manual(
        db_session,
        order,
        actor,
        kind="payment",
        source="cheque",
        amount=Decimal("40"),
        occurred_at=dt.date(2026, 3, 3),
    )
    assert transaction.source == TransactionSource.CHEQUE
    assert transaction.occurred_at == dt.datetime(2026, 3, 3, 11, tzinfo=dt.UTC)  # noon in Paris
    assert order.payment_state == PaymentState.PAID
    assert order.commercial_state == CommercialState.VALIDATED
    assert "payment.recorded" in kinds(db_session, order)
    # Validated maps to "processing" on WooCommerce, but that row is off by default.
    assert order.last_pushed_milestone == Milestone.VALIDATED


def test_refunds_cannot_exceed_what_was_received(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = new_order(db_session, woo, "50.00")
    with pytest.raises(ValidationFailed) as refused:
        payments.record_manual(
            db_session, order, actor, kind="refund", source="cash", amount="1.00"
        )
    assert "amount" in refused.value.errors
    payments.record_manual(db_session, order, actor, kind="payment", source="cash", amount="70")
    assert order_state_overpaid(order) == Decimal("20.00")
    payments.record_manual(db_session, order, actor, kind="refund", source="cash", amount="20")
    assert order.payment_state == PaymentState.PARTIALLY_REFUNDED
    with pytest.raises(ValidationFailed):
        payments.record_manual(
            db_session, order, actor, kind="refund", source="cash", amount="50.01"
        )
    payments.record_manual(db_session, order, actor, kind="refund", source="cash", amount="50")
    assert order.payment_state == PaymentState.REFUNDED


def order_state_overpaid(order: Order) -> Decimal:
    return order_state.overpaid_amount(order.grand_total, order.transactions)


@pytest.mark.parametrize(
    ("amount", "field"),
    [
        ("", "amount"),
        ("abc", "amount"),
        ("0", "amount"),
        ("-5", "amount"),
        ("1.005", "amount"),
        ("NaN", "amount"),
        ("Infinity", "amount"),
        ("1e12", "amount"),
        (True, "amount"),
    ],
)
def test_unreadable_amounts_are_refused(
    db_session: Session, woo: Shop, actor: Actor, amount: object, field: str
) -> None:
    order = new_order(db_session, woo)
    with pytest.raises(ValidationFailed) as refused:
        payments.record_manual(
            db_session, order, actor, kind="payment", source="cash", amount=amount
        )
    assert field in refused.value.errors
    assert order.transactions == []


def test_manual_entries_need_a_manual_source_a_kind_and_a_past_date(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = new_order(db_session, woo)
    for kind, source, day, field in (
        ("payment", "shop", None, "source"),
        ("payment", "bitcoin", None, "source"),
        ("gift", "cash", None, "kind"),
        ("payment", "cash", dt.date.today() + dt.timedelta(days=2), "occurred_at"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            payments.record_manual(
                db_session, order, actor, kind=kind, source=source, amount="1", occurred_at=day
            )
        assert field in refused.value.errors
    assert order.transactions == []


def test_a_user_actor_is_recorded_on_manual_money(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = new_order(db_session, woo)
    transaction = payments.record_manual(
        db_session, order, actor, kind="payment", source="other", amount="100"
    )
    assert transaction.created_by_id == manager.id
    event = db_session.scalar(
        select(OrderEvent).where(
            OrderEvent.order_id == order.id, OrderEvent.kind == "payment.recorded"
        )
    )
    assert event is not None and event.actor_type == ActorType.USER


def test_internal_comments_go_to_the_shop_as_private_notes_only_when_asked(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    order = paid_order(db_session, woo)
    kept = comments.add_comment(db_session, order, actor, "Reste chez nous", "internal")
    assert messages(db_session, order) == []
    assert comments.can_change(kept, manager)

    woo.push_internal_comments = True
    copied = comments.add_comment(db_session, order, actor, "Client VIP", "internal", notify=True)
    [message] = messages(db_session, order)
    assert message.payload == {
        "comment_id": copied.id,
        "text": "Client VIP",
        "customer_visible": False,
        "notify": False,
    }
    # On its way to the shop: no longer editable, even by its author.
    assert not comments.can_change(copied, manager, outbox.comment_message(db_session, copied))
    assert outbox.comment_messages(db_session, order) == {copied.id: message}
    elsewhere = paid_order(db_session, woo)
    comments.add_comment(db_session, elsewhere, actor, "Autre commande", "internal")
    assert outbox.comment_messages(db_session, order) == {copied.id: message}
    with pytest.raises(InvalidTransition):
        comments.edit_comment(db_session, copied, actor, "Client très VIP", manager)
    assert comments.can_change(kept, manager)


def test_a_given_up_comment_follows_its_edits_and_a_deleted_one_is_never_sent(
    db_session: Session, woo: Shop, actor: Actor, manager: User
) -> None:
    woo.push_internal_comments = True
    order = paid_order(db_session, woo)
    note = comments.add_comment(db_session, order, actor, "Appeler avant 10 h", "internal")
    [message] = messages(db_session, order)
    message.state = OutboxState.DEAD  # the shop was down; a person will decide
    assert comments.can_change(note, manager, message)

    comments.edit_comment(db_session, note, actor, "Appeler avant 11 h", manager)
    assert message.payload["text"] == "Appeler avant 11 h"  # a retry sends what it says now

    comments.delete_comment(db_session, note, actor, manager)
    db_session.flush()
    assert message.state == OutboxState.IGNORED
    assert message.last_error == "The comment was deleted."  # what the sync page says
    with pytest.raises(InvalidTransition) as refused:
        outbox.retry(db_session, message, actor)
    assert refused.value.reason == "its comment was deleted"


def test_a_refund_counts_only_money_the_shop_mappings_count_as_received(
    db_session: Session, woo: Shop, actor: Actor
) -> None:
    order = new_order(db_session, woo, "50.00")
    order.payment_method = "cod"
    for mapping in woo.payment_mappings:
        if mapping.shop_method == "cod":
            mapping.counts_as_payment = False
    db_session.add(
        Transaction(
            order=order,
            kind=TransactionKind.SALE,
            amount=Decimal("50.00"),
            external_id="cod-1",
            method="cod",
        )
    )
    db_session.flush()
    with pytest.raises(ValidationFailed) as refused:
        payments.record_manual(db_session, order, actor, kind="refund", source="cash", amount="50")
    assert "amount" in refused.value.errors


def test_payment_days_are_the_merchants_days(db_session: Session, woo: Shop, actor: Actor) -> None:
    order = new_order(db_session, woo)
    today = payments.today()
    entered = payments.record_manual(
        db_session, order, actor, kind="payment", source="cash", amount="10", occurred_at=today
    )
    assert entered.occurred_at.astimezone(DESK_TZ).date() == today
    earlier = payments.record_manual(
        db_session,
        order,
        actor,
        kind="payment",
        source="cash",
        amount="10",
        occurred_at=today - dt.timedelta(days=3),
    )
    assert earlier.occurred_at.astimezone(DESK_TZ).time() == dt.time(12)
    with pytest.raises(ValidationFailed):
        payments.record_manual(
            db_session,
            order,
            actor,
            kind="payment",
            source="cash",
            amount="10",
            occurred_at=today + dt.timedelta(days=1),
        )
