"""The migrations build exactly the schema the models describe, on both databases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.conftest import reset_schema, separate_database_url
from web import search_index
from web.db import make_engine
from web.migrate import downgrade, upgrade
from web.models import Base, Document, InboxEvent, Order, OrderEvent, OutboxMessage, Shop
from web.models.enums import DocumentKind, DocumentState, Platform
from web.models.orders import sort_names
from web.services.dashboard import state_counts as dashboard_state_counts
from web.services.order_queries import OrderFilters, search_orders


# SQLite's reflection skips web/search_index.py's index on length(number), with this warning.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_models_and_migrations_agree(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_as_batch": True,
                # The search index is raw SQL (web/search_index.py), not the models'.
                "include_name": lambda name, kind, parent: not search_index.is_search_object(name),
            },
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


# --- 0007: events carry a kind and parameters ---------------------------------------------------


def _insert(connection: Any, table_name: str, **values: Any) -> int:
    """Insert a row at an old revision, filling required columns the test does not care about."""
    table = sa.Table(table_name, sa.MetaData(), autoload_with=connection)
    row = dict(values)
    for column in table.columns:
        if column.name in row or column.nullable or column.server_default is not None:
            continue
        if column.primary_key:
            continue
        python_type = column.type.python_type if not isinstance(column.type, sa.JSON) else dict
        filler: Any = {
            str: "x",
            int: 0,
            bool: False,
            Decimal: Decimal("0"),
            dt.datetime: dt.datetime(2026, 3, 2, 10, tzinfo=dt.UTC),
            dict: {},
            bytes: b"{}",
        }[python_type]
        row[column.name] = filler
    return int(connection.execute(table.insert().values(**row)).inserted_primary_key[0])


OLD_EVENTS = [
    # (kind, summary, details) as the code wrote them up to revision 0005
    ("order.received", "Order #1042 received from Boutique Lumière.", {"shop_status": "paid"}),
    ("order.validated", "Order validated automatically (total is zero).", {"automatic": True}),
    (
        "order.held",
        "Order put on hold: Adresse à vérifier",
        {"reason": "Adresse à vérifier"},
    ),
    (
        "order.needs_mapping",
        "Needs mapping: unknown shop status “Expédition partielle” (wc-partial); "
        "unknown shipping method “Drone”.",
        {"issues": ["unknown shop status …", "unknown shipping method “Drone”"]},
    ),
    (
        "order.edited_at_shop",
        "Edited in the shop: lines, total 24.00 → 30.50.",
        {"changes": ["lines", "total 24.00 → 30.50"]},
    ),
    ("payment.capture", "Capture of 24.00 EUR (success).", {"external_id": "T-1"}),
    (
        "payment.recorded",
        "Payment of 24.00 EUR by bank transfer entered by hand (ref. VIR-77).",
        {"transaction_id": 4, "amount": "24.00", "source": "bank_transfer", "reference": "VIR-77"},
    ),
    ("payment.captured", "Payment of 24.00 EUR captured (Carte bancaire).", {"amount": "24.00"}),
    (
        "payment.state_changed",
        "Payment state changed from partially paid to paid.",
        {"from": "partially_paid", "to": "paid"},
    ),
    (
        "outbox.failed",
        "Status “wc-completed” failed (attempt 2), retrying at 10:00:05 UTC: "
        "PlatformUnavailable: HTTP 503",
        {"message_id": 9, "kind": "status", "attempts": 2},
    ),
    (
        "inbox.parked",
        "A delivery from the shop could not be applied: AuthFailed: GET /x: HTTP 401 ''",
        {"inbox_event_id": 3, "topic": "orders/updated"},
    ),
    ("comment.internal", "Appeler avant 18 h.", {"comment_id": 1, "notify": False}),
    ("order.imported", "Imported from the legacy tool.", {}),
    ("order.held", "Mis en attente (ancien format)", {}),
]


def test_0007_reads_old_sentences_back_into_parameters_and_loses_nothing(
    tmp_path: Path,
) -> None:
    url = separate_database_url(tmp_path, "mig0007")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0005")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(
            connection,
            "orders",
            shop_id=shop_id,
            external_id="42",
            number="#1042",
            currency="EUR",
            needs_mapping=True,
            mapping_issue="unknown shop status “Expédition partielle” (wc-partial); "
            "unknown payment method “crypto”",
        )
        demo_id = _insert(
            connection,
            "orders",
            shop_id=shop_id,
            external_id="43",
            number="#1043",
            currency="EUR",
            mapping_issue="Unknown shipping label « Drone »: map it to a shipping mode in the "
            "shop's carrier settings.",
        )
        event_ids = [
            _insert(
                connection,
                "order_events",
                order_id=order_id,
                actor_type="system",
                kind=kind,
                summary=summary,
                details=details,
            )
            for kind, summary, details in OLD_EVENTS
        ]
        inbox_ids = [
            _insert(
                connection,
                "inbox_events",
                shop_id=shop_id,
                topic="orders/create",
                dedupe_key=f"k{n}",
                raw_body=b"{}",
                state=state,
                attempts=attempts,
                error=error,
            )
            for n, (state, attempts, error) in enumerate(
                [
                    ("failed", 2, "RateLimited: GET /x: HTTP 429 ''"),
                    ("parked", 8, "PlatformUnavailable: GET /x: HTTP 502 'bad gateway'"),
                    ("rejected", 0, "the body is not JSON"),
                    ("parked", 1, "unknown shop status “X” (x)"),
                    ("processed", 1, ""),
                ]
            )
        ]
    upgrade(url)

    with Session(engine) as session:
        events = {e.id: e for e in session.scalars(sa.select(OrderEvent))}
        params = [events[event_id].details for event_id in event_ids]
        assert params == [
            {"shop_status": "paid", "number": "#1042", "shop": "Boutique Lumière"},
            {"automatic": True, "why": "free"},
            {"reason": "Adresse à vérifier"},
            {
                "issues": [
                    {"kind": "status", "value": "wc-partial", "label": "Expédition partielle"},
                    {"kind": "carrier", "value": "Drone", "label": ""},
                ]
            },
            {
                "changes": ["lines", "total"],
                "total_was": "24.00",
                "total_now": "30.50",
                "currency": "EUR",
            },
            {"external_id": "T-1", "amount": "24.00", "currency": "EUR", "status": "success"},
            {
                "transaction_id": 4,
                "amount": "24.00",
                "currency": "EUR",
                "source": "bank_transfer",
                "reference": "VIR-77",
            },
            {"amount": "24.00", "currency": "EUR", "method_label": "Carte bancaire"},
            {"from": "partially_paid", "to": "paid"},
            {
                "message_id": 9,
                "kind": "status",
                "attempts": 2,
                "status": "wc-completed",
                "error": "PlatformUnavailable: HTTP 503",
            },
            {
                "inbox_event_id": 3,
                "topic": "orders/updated",
                "cause": "auth_failed",
                "cause_params": {"detail": "AuthFailed: GET /x: HTTP 401 ''", "status": 401},
            },
            {"comment_id": 1, "notify": False, "excerpt": "Appeler avant 18 h."},
            {"text": "Imported from the legacy tool."},
            {"text": "Mis en attente (ancien format)"},
        ]
        orders = {o.id: o for o in session.scalars(sa.select(Order))}
        assert orders[order_id].mapping_issues == [
            {"kind": "status", "value": "wc-partial", "label": "Expédition partielle"},
            {"kind": "payment_method", "value": "crypto", "label": ""},
        ]
        assert orders[demo_id].mapping_issues == [
            {"kind": "carrier", "value": "Drone", "label": ""}
        ]
        inbox = {e.id: e for e in session.scalars(sa.select(InboxEvent))}
        assert [(inbox[i].cause_kind, inbox[i].cause_params) for i in inbox_ids] == [
            ("rate_limited", {"detail": "RateLimited: GET /x: HTTP 429 ''", "retry_after": None}),
            (
                "gave_up",
                {
                    "attempts": 8,
                    "cause": "shop_unavailable",
                    "detail": "PlatformUnavailable: GET /x: HTTP 502 'bad gateway'",
                    "status": 502,
                },
            ),
            ("unreadable", {"detail": "the body is not JSON"}),
            (
                "needs_mapping",
                {"issues": [{"kind": "status", "value": "x", "label": "X"}]},
            ),
            ("", {}),
        ]
        # The technical text stays where it was.
        assert inbox[inbox_ids[0]].error == "RateLimited: GET /x: HTTP 429 ''"
    columns = {c["name"] for c in inspect(engine).get_columns("order_events")}
    assert "summary" not in columns and "details" in columns
    assert "mapping_issue" not in {c["name"] for c in inspect(engine).get_columns("orders")}
    engine.dispose()


def test_upgrading_a_database_with_orders_keeps_everything_that_hangs_off_them(
    tmp_path: Path,
) -> None:
    """On SQLite a batch rebuild drops the old table: no cascade may reach the children."""
    url = separate_database_url(tmp_path, "migkeep")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0004")
    tables = ("orders", "order_lines", "shipments", "shipment_lines", "order_events")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(connection, "orders", shop_id=shop_id, external_id="1", number="#1")
        line_id = _insert(
            connection, "order_lines", order_id=order_id, kind="product", name="Mug", quantity=2
        )
        _insert(
            connection,
            "order_lines",
            order_id=order_id,
            kind="product",
            name="Anse",
            quantity=2,
            parent_line_id=line_id,
        )
        shipment_id = _insert(connection, "shipments", order_id=order_id, state="shipped")
        _insert(
            connection, "shipment_lines", shipment_id=shipment_id, order_line_id=line_id, quantity=2
        )
        _insert(
            connection,
            "order_events",
            order_id=order_id,
            actor_type="system",
            kind="order.closed",
            summary="Order closed.",
            details={},
        )
    upgrade(url)
    with engine.connect() as connection:
        counts = [connection.execute(text(f"SELECT count(*) FROM {t}")).scalar() for t in tables]
    assert counts == [1, 2, 1, 1, 1]
    engine.dispose()


# --- 0008: security ------------------------------------------------------------------------------


def test_0008_keeps_users_and_what_hangs_off_them_and_starts_every_session_version_at_0(
    tmp_path: Path,
) -> None:
    """The users table is rebuilt on SQLite: its tokens, comments and events must survive."""
    url = separate_database_url(tmp_path, "mig0008")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0007")
    with engine.begin() as connection:
        user_id = _insert(
            connection, "users", email="ana@example.test", password_hash="h", role="admin"
        )
        _insert(connection, "api_tokens", user_id=user_id, token_hash="a" * 64)
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(connection, "orders", shop_id=shop_id, external_id="1", number="#1")
        _insert(connection, "comments", order_id=order_id, author_id=user_id, text="Fragile")
        _insert(
            connection,
            "inbox_events",
            shop_id=shop_id,
            topic="orders/create",
            dedupe_key="w-1",
            raw_body=b"{}",
        )
    upgrade(url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT session_version FROM users")).scalars().all()
        kept = [
            connection.execute(text(f"SELECT count(*) FROM {t}")).scalar()
            for t in ("api_tokens", "comments", "inbox_events")
        ]
        content_keys = connection.execute(text("SELECT content_key FROM inbox_events")).all()
    assert versions == [0]
    assert kept == [1, 1, 1]
    assert content_keys == [(None,)]
    engine.dispose()


def test_inbox_content_key_is_unique_per_shop_but_may_be_absent(db_session: Session) -> None:
    shop = _shop(db_session)
    for n in (1, 2):
        db_session.add(
            InboxEvent(shop=shop, topic="t", dedupe_key=f"n{n}", raw_body=b"{}", content_key=None)
        )
    db_session.add(
        InboxEvent(shop=shop, topic="t", dedupe_key="a", raw_body=b"{}", content_key="o:1")
    )
    db_session.flush()
    db_session.add(
        InboxEvent(shop=shop, topic="t", dedupe_key="b", raw_body=b"{}", content_key="o:1")
    )
    with pytest.raises(IntegrityError):
        db_session.flush()


# --- 0009: shipments -----------------------------------------------------------------------------


def test_0009_keeps_shipments_and_allows_the_cancelled_state_both_ways(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0009")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0008")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(connection, "orders", shop_id=shop_id, external_id="1", number="#1")
        _insert(connection, "shipments", order_id=order_id, number="EXP-1", state="shipped")
    upgrade(url)
    with engine.begin() as connection:
        row = connection.execute(text("SELECT state, origin, cancel_reason FROM shipments")).one()
        assert tuple(row) == ("shipped", "comptoir", "")
        connection.execute(text("UPDATE shipments SET state = 'cancelled'"))
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(text("UPDATE shipments SET state = 'lost'"))
    downgrade(url, "0008")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT state FROM shipments")).scalar() == "draft"
    engine.dispose()


# --- 0016: the customer sort's names kept on each order -------------------------------------

# (billing first name, billing last name, customer's first and last name or None, e-mail)
SORT_CASES = [
    ("Émile", "Zola", ("Émile", "Zola"), "emile@x.test"),
    ("paul", "adam", None, "paul@x.test"),
    ("", "", ("Jean", "Dupont"), "jean@x.test"),
    ("", "", ("Jeanne", "DUPONT"), "jeanne@x.test"),
    ("", "", None, "anonyme@x.test"),
    ("Æsa", "", ("Ignored", "Œuvre"), "oeuvre@x.test"),
    ("", "Ängström", ("Karl", "Other"), "karl@x.test"),
    ("", "", ("", ""), "blank@x.test"),
    ("Claire", "Zola", None, ""),
]


def _old_customer_sort(connection: Any) -> list[int]:
    """The order ids sorted as the list sorted them up to 0015, on every read."""
    orders = sa.Table("orders", sa.MetaData(), autoload_with=connection)
    customers = sa.Table("customers", sa.MetaData(), autoload_with=connection)

    def billing(key: str) -> Any:
        return sa.func.nullif(sa.func.coalesce(orders.c.billing_address[key].as_string(), ""), "")

    last = sa.func.coalesce(billing("last_name"), customers.c.last_name, orders.c.email)
    first = sa.func.coalesce(billing("first_name"), customers.c.first_name, "")
    statement = (
        sa.select(orders.c.id)
        .select_from(orders.outerjoin(customers, orders.c.customer_id == customers.c.id))
        .order_by(search_index.folded(last), search_index.folded(first), orders.c.id)
    )
    return list(connection.scalars(statement))


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_0016_backfills_the_sort_names_in_the_old_expressions_order(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0016")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0015")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        for index, (first, last, customer, email) in enumerate(SORT_CASES):
            customer_id = None
            if customer is not None:
                customer_id = _insert(
                    connection,
                    "customers",
                    email=f"c{index}@x.test",
                    first_name=customer[0],
                    last_name=customer[1],
                )
            billing = {"first_name": first, "last_name": last} if first or last else {}
            _insert(
                connection,
                "orders",
                shop_id=shop_id,
                external_id=str(index),
                number=f"#{index}",
                customer_id=customer_id,
                email=email,
                billing_address=billing,
            )
        before = _old_customer_sort(connection)
    upgrade(url)
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT id, external_id, sort_last, sort_first FROM orders"
                " ORDER BY sort_last, sort_first, id"
            )
        ).all()
    assert [row.id for row in rows] == before
    # What the flush events write for a new order is what the migration wrote.
    for row in rows:
        first, last, customer, email = SORT_CASES[int(row.external_id)]
        billing = {"first_name": first, "last_name": last} if first or last else {}
        assert (row.sort_last, row.sort_first) == sort_names(billing, customer, email)
    downgrade(url, "0015")
    with engine.connect() as connection:
        assert "sort_last" not in {c["name"] for c in inspect(connection).get_columns("orders")}
    engine.dispose()


# --- 0017: change notifications and the 30-second change probe ------------------------------

INTERVALS = {  # key: (platform, interval before, interval after 0017)
    "presta": ("prestashop", 300, 30),
    "mage": ("magento", 300, 30),
    "slow": ("prestashop", 900, 900),  # chosen by the merchant: kept
    "shopify": ("shopify", 300, 300),
    "woo": ("woocommerce", 300, 300),
}


def test_0017_probes_prestashop_and_magento_every_30_seconds_and_back(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0017")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0016")
    with engine.begin() as connection:
        for key, (platform, before, _) in INTERVALS.items():
            _insert(
                connection,
                "shops",
                key=key,
                platform=platform,
                name=key,
                poll_interval_seconds=before,
            )
    upgrade(url)
    query = text("SELECT key, poll_interval_seconds FROM shops")
    with engine.begin() as connection:
        assert {key: seconds for key, seconds in connection.execute(query)} == {
            key: after for key, (_, _, after) in INTERVALS.items()
        }
        counts = connection.execute(text("SELECT notified_count, notified_event FROM shops"))
        assert {tuple(row) for row in counts} == {(0, "")}
        assert "reconciled_at" in {
            c["name"] for c in inspect(connection).get_columns("sync_cursors")
        }
    downgrade(url, "0016")
    with engine.connect() as connection:
        assert {key: seconds for key, seconds in connection.execute(query)} == {
            key: before for key, (_, before, _) in INTERVALS.items()
        }
        assert "notified_at" not in {c["name"] for c in inspect(connection).get_columns("shops")}
        columns = {c["name"] for c in inspect(connection).get_columns("sync_cursors")}
        assert "reconciled_at" not in columns
    engine.dispose()


# --- 0018: the search's document per order on PostgreSQL -------------------------------------


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_0018_finds_existing_orders_by_every_source_and_back(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0018")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0017")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        customer_id = _insert(
            connection, "customers", email="c@x.test", first_name="Anaïs", last_name="Ducœur"
        )
        order_id = _insert(
            connection,
            "orders",
            shop_id=shop_id,
            external_id="5501",
            number="#5501",
            customer_id=customer_id,
            email="buyer@x.test",
            billing_address={"last_name": "Quéméneur"},
        )
        _insert(connection, "orders", shop_id=shop_id, external_id="5502", number="#5502")
        _insert(connection, "order_lines", order_id=order_id, sku="TISANE-VERVEINE", quantity=1)
        shipment_id = _insert(connection, "shipments", order_id=order_id, number="EXP-1")
        _insert(connection, "parcels", shipment_id=shipment_id, tracking_number="6A99887766")

    def found(q: str) -> set[str]:
        with Session(engine) as session:
            page = search_orders(session, OrderFilters(q=q))
            return {order.number for order in page.items}

    upgrade(url)
    for term in ("5501", "buyer@", "quemeneur", "anais", "duco", "verveine", "99887"):
        assert found(term) == {"#5501"}, term
    assert found("#550") == {"#5501", "#5502"}
    with engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("orders")}
    assert (search_index.DOCUMENT in columns) == (engine.dialect.name == "postgresql")
    downgrade(url, "0017")
    # Back to one index per source on PostgreSQL (SQLite's FTS5 tables never changed).
    with engine.connect() as connection:
        assert search_index.DOCUMENT not in {
            c["name"] for c in inspect(connection).get_columns("orders")
        }
        if engine.dialect.name == "postgresql":
            indexes = {i["name"] for i in inspect(connection).get_indexes("order_lines")}
            assert "order_lines_search" in indexes
    engine.dispose()


# --- 0019: the dashboard's state counts kept by triggers -------------------------------------


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_0019_counts_the_orders_already_there_then_follows_them_and_back(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0019")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0018")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        for index, (commercial, on_hold) in enumerate(
            [("new", False), ("new", False), ("validated", True), ("closed", False)]
        ):
            _insert(
                connection,
                "orders",
                shop_id=shop_id,
                external_id=str(index),
                number=f"#{index}",
                commercial_state=commercial,
                on_hold=on_hold,
            )
    upgrade(url, "0019")
    with Session(engine) as session:
        counts = dashboard_state_counts(session)
        assert counts["commercial"] == {"new": 2, "validated": 1, "closed": 1, "cancelled": 0}
        assert (counts["total"], counts["on_hold"]) == (4, 1)
        cancel = "UPDATE orders SET commercial_state = 'cancelled' WHERE number = '#0'"
        session.execute(text(cancel))
        counts = dashboard_state_counts(session)
        assert (counts["commercial"]["new"], counts["commercial"]["cancelled"]) == (1, 1)
        session.commit()
    downgrade(url, "0018")
    with engine.begin() as connection:
        assert "order_state_counts" not in inspect(connection).get_table_names()
        # No trigger is left writing into the table that is gone.
        connection.execute(text("UPDATE orders SET on_hold = NOT on_hold"))
    engine.dispose()


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_0020_keeps_five_fulfillment_ids_whole_and_back(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0020")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0019")
    five = ",".join(str(5801234567890 + n) for n in range(5))  # 69 characters
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(
            connection, "orders", shop_id=shop_id, external_id="5501", number="#5501"
        )
        shipment_id = _insert(
            connection, "shipments", order_id=order_id, number="EXP-1", external_id=five[:55]
        )
        _insert(connection, "parcels", shipment_id=shipment_id, tracking_number="6A99887766")
    upgrade(url)

    def found(q: str) -> set[str]:
        with Session(engine) as session:
            return {order.number for order in search_orders(session, OrderFilters(q=q)).items}

    with engine.begin() as connection:
        connection.execute(text("UPDATE shipments SET external_id = :ids"), {"ids": five})
    with engine.connect() as connection:
        assert connection.execute(text("SELECT external_id FROM shipments")).scalar() == five
    # The table kept its parcels and the order is still found by its tracking number.
    assert found("99887") == {"#5501"}
    downgrade(url, "0019")
    with engine.connect() as connection:
        kept = connection.execute(text("SELECT external_id FROM shipments")).scalar()
    assert kept == ",".join(five.split(",")[:4])  # the whole ids that fit in 64 characters
    assert found("99887") == {"#5501"}
    engine.dispose()


# --- 0022: the search ignores punctuation -----------------------------------------------------


def _searched_texts(connection: Any) -> set[str]:
    """What the search compares the terms with: PostgreSQL's documents, SQLite's FTS5 rows."""
    if connection.dialect.name == "postgresql":
        query = f"SELECT {search_index.DOCUMENT} FROM orders"
    else:
        query = "SELECT body FROM orders_search UNION ALL SELECT body FROM order_lines_search"
    return set(connection.execute(text(query)).scalars())


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
def test_0022_finds_a_sku_with_or_without_its_dashes_and_back(tmp_path: Path) -> None:
    url = separate_database_url(tmp_path, "mig0022")
    engine = make_engine(url)
    reset_schema(engine)
    upgrade(url, "0021")
    with engine.begin() as connection:
        shop_id = _insert(connection, "shops", key="lumiere", platform="shopify", name="Lumière")
        order_id = _insert(
            connection,
            "orders",
            shop_id=shop_id,
            external_id="5501",
            number="#5501",
            email="jean.dupont@x.test",
        )
        _insert(connection, "orders", shop_id=shop_id, external_id="5502", number="#5502")
        _insert(connection, "order_lines", order_id=order_id, sku="MT-VASE-M", quantity=1)
        assert any("mt-vase-m" in searched for searched in _searched_texts(connection))

    def found(q: str) -> set[str]:
        with Session(engine) as session:
            return {order.number for order in search_orders(session, OrderFilters(q=q)).items}

    upgrade(url)
    for term in ("MT-VASE-M", "mtvasem", "mt.vase", "vase-m", "jean.dupont@x", "jeandupont"):
        assert found(term) == {"#5501"}, term
    assert found("#550") == {"#5501", "#5502"}
    with engine.connect() as connection:
        assert not any("-" in searched for searched in _searched_texts(connection))
    # The triggers write the new form too.
    with engine.begin() as connection:
        _insert(connection, "order_lines", order_id=order_id, sku="LU-BOUGIE/2", quantity=1)
    assert found("bougie2") == {"#5501"}
    downgrade(url, "0021")
    with engine.connect() as connection:
        texts = _searched_texts(connection)
    assert any("mt-vase-m" in searched for searched in texts)
    assert any("lu-bougie/2" in searched for searched in texts)
    engine.dispose()
