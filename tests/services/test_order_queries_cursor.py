"""Keyset pagination of the order list: pages reached by cursor are the pages OFFSET gives."""

from __future__ import annotations

import base64
import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_line, make_order, make_shop
from web.models.orders import Order
from web.services.order_queries import (
    SORTS,
    Cursor,
    OrderFilters,
    encode_cursor,
    parse_filters,
    search_orders,
)
from web.services.paging import MAX_ID, MAX_PAGE

UTC = dt.UTC
PER_PAGE = 3


@pytest.fixture()
def crowded(db_session: Session) -> list[Order]:
    """Orders tying on every sort key but the id, with names missing in each way they can."""
    shop = make_shop(db_session)
    noon = dt.datetime(2026, 3, 2, 12, tzinfo=UTC)
    nameless = make_customer(db_session, "zed@example.test", first_name="", last_name="")
    curie = make_customer(db_session, "marie@example.test", "Marie", "Curie")
    specs: list[tuple[str, str, dict[str, str], dt.datetime]] = [
        ("#999", "20.00", {"first_name": "A", "last_name": "Martin"}, noon),
        ("#1000", "20.00", {"first_name": "A", "last_name": "Martin"}, noon),
        ("#1001", "20.00", {"first_name": "B", "last_name": "martin"}, noon),
        ("#12", "5.00", {"first_name": "", "last_name": ""}, noon),
        ("#1003", "5.00", {}, noon - dt.timedelta(days=1)),
        ("#1004", "99.90", {"last_name": "Élodie"}, noon + dt.timedelta(days=1)),
        ("#1005", "20.00", {"first_name": "A", "last_name": "Martin"}, noon),
        ("#10000", "0.00", {"company": "Acme"}, noon),
    ]
    orders = [
        make_order(
            db_session,
            shop,
            number=number,
            lines=[make_line(unit_price=total)],
            billing_address=billing,
            placed_at=placed_at,
        )
        for number, total, billing, placed_at in specs
    ]
    # No billing name: the customer record's name, or its e-mail when that is empty too.
    orders.append(make_order(db_session, shop, customer=curie, billing_address={}))
    orders.append(make_order(db_session, shop, customer=nameless, billing_address={}))
    orders.append(make_order(db_session, shop, customer=curie, billing_address={}))
    return orders


def offset_pages(session: Session, sort: str) -> list[list[int]]:
    pages: list[list[int]] = []
    number = 1
    while True:
        page = search_orders(session, filters(sort=sort, page=str(number)))
        pages.append([order.id for order in page.items])
        if not page.has_next:
            return pages
        number += 1


def filters(**args: str) -> OrderFilters:
    parsed, errors = parse_filters({"per_page": str(PER_PAGE), **args})
    assert not errors, errors
    return parsed


@pytest.mark.parametrize("sort", SORTS)
def test_walking_by_cursor_gives_the_offset_pages(
    db_session: Session, crowded: list[Order], sort: str
) -> None:
    expected = offset_pages(db_session, sort)
    assert len(expected) == 4
    assert sorted(sum(expected, [])) == sorted(order.id for order in crowded)

    forward: list[list[int]] = []
    page = search_orders(db_session, filters(sort=sort))
    forward.append([order.id for order in page.items])
    while page.has_next:
        assert page.after is not None
        page = search_orders(db_session, filters(sort=sort, after=page.after))
        forward.append([order.id for order in page.items])
        assert page.page == len(forward)
        assert page.has_prev
    assert forward == expected
    assert page.after is None

    backward: list[list[int]] = [[order.id for order in page.items]]
    while page.has_prev:
        assert page.before is not None
        page = search_orders(db_session, filters(sort=sort, before=page.before))
        backward.insert(0, [order.id for order in page.items])
        assert page.has_next
    assert backward == expected
    assert (page.page, page.before) == (1, None)


def _tampered(cursor: str, change: object) -> str:
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload[2][0] = change
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "",
        "%%%",
        "x" * 2000,
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'"not a list"').decode(),
        encode_cursor(Cursor("number", (4, "#999", 1), 2)),  # another sort's cursor
        _tampered(encode_cursor(Cursor("-placed_at", ("2026-03-02T12:00:00+00:00", 1), 2)), 5),
        _tampered(encode_cursor(Cursor("-placed_at", ("x", 1), 2)), "2026-03-02T12:00:00"),
        _tampered(encode_cursor(Cursor("-placed_at", ("x", 1), 2)), "2026-13-45T00:00:00Z"),
        _tampered(encode_cursor(Cursor("-placed_at", ("x", 1), 2)), "a\x00b"),
        _tampered(encode_cursor(Cursor("-placed_at", ("x", 1), 2)), "0001-01-01T00:00:00+01:00"),
    ],
)
def test_a_tampered_cursor_is_reported_and_the_first_page_shown(
    db_session: Session, crowded: list[Order], cursor: str
) -> None:
    for name in ("after", "before"):
        parsed, errors = parse_filters({name: cursor})
        if cursor:
            assert list(errors) == [name]
        assert parsed.cursor is None
        first = search_orders(db_session, parsed)
        assert first.page == 1


@pytest.mark.parametrize(
    ("sort", "key"),
    [
        ("total", ("NaN", 1)),
        ("total", ("1e40", 1)),
        ("number", (-1, "#1", 1)),
        ("number", (True, "#1", 1)),
        ("customer", ("a", "b", 2**40)),
        ("customer", ("a", 5, 1)),
    ],
)
def test_out_of_range_cursor_values_are_refused(sort: str, key: tuple[object, ...]) -> None:
    parsed, errors = parse_filters({"sort": sort, "after": encode_cursor(Cursor(sort, key, 2))})
    assert (list(errors), parsed.cursor) == (["after"], None)


@pytest.mark.parametrize(
    "cursor",
    [
        Cursor("-placed_at", (dt.datetime(2026, 3, 2, 12, tzinfo=UTC), MAX_ID), 1, forward=False),
        Cursor("number", (MAX_ID, "#1", 1), MAX_PAGE),
        Cursor("-total", (Decimal("12.50"), 7), 1, forward=False),
        Cursor("customer", ("dupont", "anne", 7), 2),
    ],
)
def test_a_cursor_reads_back_as_written_up_to_the_edges(cursor: Cursor) -> None:
    # The highest id and the first page (going back from page 2) are a cursor's own values.
    name = "after" if cursor.forward else "before"
    parsed, errors = parse_filters({"sort": cursor.sort, name: encode_cursor(cursor)})
    assert (errors, parsed.cursor) == ({}, cursor)


def test_giving_both_cursors_is_refused() -> None:
    cursor = encode_cursor(Cursor("-placed_at", ("2026-03-02T12:00:00+00:00", 1), 2))
    _, errors = parse_filters({"after": cursor, "before": cursor})
    assert list(errors) == ["before"]
