"""bench/datagen.py writes rows the app reads as its own: a small load on this run's database,
then the desk's list, search and order page and the JSON API read them back."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bench import datagen
from tests.conftest import TEST_PASSWORD, log_in, reset_schema, separate_database_url
from web.app import create_app
from web.db import make_engine
from web.models import Customer, Document, NumberSeries, Order, OrderLine, Parcel, Shipment
from web.models.enums import FulfilmentState, Role
from web.services.users import create_api_token, create_user

pytestmark = pytest.mark.server

ORDERS = 150
END = dt.date(2026, 11, 30)
CENT = Decimal("0.01")


def fresh(tmp_path: Path, name: str) -> str:
    folder = tmp_path / name  # the app makes the database's folder private
    folder.mkdir()
    url = separate_database_url(folder, name)
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, datagen.LoadResult]:
    url = fresh(tmp_path_factory.mktemp("datagen"), "datagen")
    return url, datagen.load(url, ORDERS, seed=7, end=END, batch_orders=100)


def test_counts_per_table_match_what_the_generator_wrote(
    loaded: tuple[str, datagen.LoadResult],
) -> None:
    url, result = loaded
    assert result.rows["orders"] == ORDERS
    engine = make_engine(url)
    with engine.connect() as conn:
        for table, written in result.rows.items():
            assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == written, table
        shops = conn.execute(text("SELECT platform FROM shops ORDER BY id")).scalars().all()
    engine.dispose()
    assert sorted(shops) == ["magento", "prestashop", "shopify", "woocommerce"]
    # Every kind of row is there, more lines than orders (1 to 10 each).
    assert all(result.rows[table] for table in datagen.TABLES)
    assert ORDERS < result.rows["order_lines"] <= 10 * ORDERS


def test_the_data_is_coherent(loaded: tuple[str, datagen.LoadResult]) -> None:
    url, _result = loaded
    engine = make_engine(url)
    with Session(engine) as session:
        first, last = session.execute(
            select(func.min(Order.placed_at), func.max(Order.placed_at))
        ).one()
        assert dt.datetime(2023, 11, 30, tzinfo=dt.UTC) <= first
        assert last <= dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
        assert last - first > dt.timedelta(days=3 * 365 - 30)
        states = session.scalars(select(Order.commercial_state).distinct()).all()
        assert len(states) >= 3, states
        lines = (
            select(
                OrderLine.order_id,
                func.count().label("count"),
                func.sum(OrderLine.total_gross).label("gross"),
            )
            .group_by(OrderLine.order_id)
            .subquery()
        )
        totals = session.execute(
            select(Order.grand_total, Order.shipping_total, lines.c.count, lines.c.gross).join(
                lines, lines.c.order_id == Order.id
            )
        ).all()
        assert len(totals) == ORDERS
        for grand_total, shipping, count, gross in totals:
            assert 1 <= count <= 10
            assert Decimal(str(gross)).quantize(CENT) + shipping == grand_total
        for net, tax, gross in session.execute(
            select(OrderLine.total_net, OrderLine.tax_amount, OrderLine.total_gross)
        ):
            assert net + tax == gross
        # The invoice series continue where the generator left them.
        series = session.scalars(select(NumberSeries)).all()
        assert series
        for one in series:
            highest = session.scalar(
                select(func.max(Document.number)).where(Document.series == one.name)
            )
            assert one.last_number == highest


def desk(url: str, tmp_path: Path, encryption_key: str) -> tuple[FlaskClient, str]:
    app = create_app(
        {
            "TESTING": True,
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(tmp_path / "instance"),
            "SECRET_KEY": "test-secret-key",
            "ENCRYPTION_KEY": encryption_key,
            "BASE_URL": "http://comptoir.test",
        }
    )
    with Session(app.extensions["comptoir.engine"]) as session, session.begin():
        email = f"admin-{tmp_path.name}@example.com"
        user, _ = create_user(session, email, Role.ADMIN, TEST_PASSWORD)
        token = create_api_token(session, user, "datagen test")
    client = app.test_client()
    log_in(client, email)
    return client, token


def page(client: FlaskClient, path: str, **headers: Any) -> str:
    answer = client.get(path, headers=headers)
    assert answer.status_code == 200, path
    return answer.get_data(as_text=True)


def test_the_desk_lists_searches_and_shows_the_generated_orders(
    loaded: tuple[str, datagen.LoadResult], tmp_path: Path, encryption_key: str
) -> None:
    url, _result = loaded
    client, token = desk(url, tmp_path, encryption_key)
    engine = make_engine(url)
    with Session(engine) as session:
        newest = session.scalars(select(Order).order_by(Order.placed_at.desc())).first()
        shipped = session.scalars(
            select(Order)
            .where(
                Order.fulfilment_state == FulfilmentState.DELIVERED,
                Order.customer_id.is_not(None),
            )
            .order_by(Order.id)
        ).first()
        assert newest is not None and shipped is not None
        customer = session.get(Customer, shipped.customer_id)
        assert customer is not None and customer.email
        own_orders = session.scalar(
            select(func.count()).select_from(Order).where(Order.customer_id == customer.id)
        )
        tracking = session.scalars(
            select(Parcel.tracking_number).join(Shipment).where(Shipment.order_id == shipped.id)
        ).first()
        sku = session.scalars(select(OrderLine.sku).where(OrderLine.order_id == shipped.id)).first()
        invoice = session.scalars(
            select(Document.reference).where(Document.order_id == shipped.id)
        ).first()
    engine.dispose()

    listing = page(client, "/orders/")
    assert newest.number in listing

    detail = page(client, f"/orders/{shipped.id}")
    assert shipped.number in detail
    assert tracking and tracking in detail
    assert sku and sku in detail
    assert invoice and invoice in detail
    assert customer.email in detail

    searched = page(client, f"/orders/?q={quote(customer.email)}")
    assert shipped.number in searched
    found = client.get(
        f"/api/v1/orders?q={quote(customer.email)}", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert found["total"] == own_orders
    assert shipped.number in {order["number"] for order in found["orders"]}
    assert page(client, f"/orders/?q={quote(sku)}").count("/orders/") > 1
    page(client, "/")
    page(client, "/warehouse/")
    everything = client.get(
        "/api/v1/orders?per_page=1", headers={"Authorization": f"Bearer {token}"}
    ).get_json()
    assert everything["total"] == ORDERS


def generated(seed: int, batch_orders: int) -> list[dict[str, list[tuple[Any, ...]]]]:
    codes = sorted({carrier[0] for shop in datagen.SHOPS for carrier in shop.carriers})
    modes = {code: number for number, code in enumerate(codes, 1)}
    templates = dict.fromkeys(codes, "https://suivi.example.com/{tracking}")
    end = dt.datetime.combine(END, dt.time(), tzinfo=dt.UTC)
    generator = datagen.Generator(
        random.Random(seed), datagen.contexts([1, 2, 3, 4], modes, templates), ORDERS, end
    )
    return [batch.rows for batch in datagen.batches(generator, batch_orders)]


def flat(batches: list[dict[str, list[tuple[Any, ...]]]]) -> dict[str, list[tuple[Any, ...]]]:
    return {table: [row for rows in batches for row in rows[table]] for table in datagen.TABLES}


def test_the_same_seed_draws_the_same_rows_and_another_seed_others() -> None:
    once = flat(generated(7, 100))
    assert flat(generated(7, 33)) == once  # other batches, the same rows
    other = flat(generated(8, 100))
    assert other["orders"] != once["orders"]
    assert other["order_lines"] != once["order_lines"]


def test_the_database_holds_the_rows_the_seed_draws(loaded: tuple[str, datagen.LoadResult]) -> None:
    url, _result = loaded
    drawn = flat(generated(7, 100))
    engine = make_engine(url)
    with engine.connect() as conn:
        columns = datagen.COLUMNS["order_lines"]
        stored = conn.execute(text(f"SELECT {', '.join(columns)} FROM order_lines ORDER BY id"))
        skus = [(row.id, row.order_id, row.sku, row.quantity) for row in stored]
    engine.dispose()
    assert skus == [(row[0], row[1], row[5], row[9]) for row in drawn["order_lines"]]
