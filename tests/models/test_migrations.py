"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.models import Base, Document, InboxEvent, Order, OutboxMessage, Shop
from web.models.enums import DocumentKind, DocumentState, Platform


def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ: {diff}"


def test_every_model_table_exists(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(Base.metadata.tables) <= tables


def _shop(session: Session, key: str = "s1") -> Shop:
    shop = Shop(key=key, platform=Platform.SHOPIFY, name="Boutique", base_url="https://x.test")
    session.add(shop)
    session.flush()
    return shop


def _order(shop: Shop, external_id: str) -> Order:
    now = dt.datetime.now(dt.UTC)
    return Order(
        shop=shop, external_id=external_id, number="#1001", placed_at=now, shop_updated_at=now
    )


def test_order_is_unique_per_shop_and_external_id(db_session: Session) -> None:
    shop = _shop(db_session)
    db_session.add(_order(shop, "5678901234567890123"))
    db_session.flush()
    db_session.add(_order(shop, "5678901234567890123"))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_same_external_id_in_two_shops_is_two_orders(db_session: Session) -> None:
    db_session.add_all([_order(_shop(db_session, "a"), "42"), _order(_shop(db_session, "b"), "42")])
    db_session.flush()


def test_inbox_dedupe_key_is_unique_per_shop(db_session: Session) -> None:
    shop = _shop(db_session)
    for _ in range(2):
        db_session.add(
            InboxEvent(shop=shop, topic="orders/create", dedupe_key="wh-1", raw_body=b"{}")
        )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_outbox_idempotency_key_is_unique(db_session: Session) -> None:
    shop = _shop(db_session)
    for _ in range(2):
        db_session.add(OutboxMessage(shop=shop, kind="status", idempotency_key="o1:validated"))
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_document_number_is_unique_per_series(db_session: Session) -> None:
    shop = _shop(db_session)
    order = _order(shop, "1")
    db_session.add(order)
    for _ in range(2):
        db_session.add(
            Document(
                order=order,
                kind=DocumentKind.INVOICE,
                state=DocumentState.ISSUED,
                series="FA-2026",
                number=1,
            )
        )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_a_draft_document_cannot_carry_a_number(db_session: Session) -> None:
    order = _order(_shop(db_session), "1")
    db_session.add(
        Document(
            order=order,
            kind=DocumentKind.INVOICE,
            state=DocumentState.DRAFT,
            series="FA-2026",
            number=7,
        )
    )
    with pytest.raises(IntegrityError):
        db_session.flush()


def test_state_columns_refuse_unknown_values(db_session: Session) -> None:
    order = _order(_shop(db_session), "1")
    db_session.add(order)
    db_session.flush()
    # Raw SQL: the database itself must refuse, not only the Python enum.
    with pytest.raises(IntegrityError):
        db_session.execute(text("UPDATE orders SET commercial_state = 'shipped_to_mars'"))


def test_money_round_trips_as_decimal_and_times_as_aware_utc(db_session: Session) -> None:
    order = _order(_shop(db_session), "1")
    order.grand_total = Decimal("1234567.89")
    order.placed_at = dt.datetime(2026, 3, 29, 2, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    db_session.add(order)
    db_session.flush()
    db_session.expire_all()
    loaded = db_session.get(Order, order.id)
    assert loaded is not None
    assert loaded.grand_total == Decimal("1234567.89")
    assert isinstance(loaded.grand_total, Decimal)
    assert loaded.placed_at == dt.datetime(2026, 3, 29, 0, 30, tzinfo=dt.UTC)
    assert loaded.placed_at.tzinfo is not None


def test_naive_timestamps_are_refused(db_session: Session) -> None:
    order = _order(_shop(db_session), "1")
    order.placed_at = dt.datetime(2026, 1, 1)
    db_session.add(order)
    with pytest.raises(Exception, match="naive datetime"):
        db_session.flush()
