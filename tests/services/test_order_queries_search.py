"""The desk's search through its index (web/search_index.py), and the list's capped count."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_line, make_order, make_shop
from web.models import Customer, Parcel, Shipment
from web.models.orders import Order, OrderLine
from web.services import order_queries
from web.services.order_queries import OrderFilters, search_orders


def found(session: Session, q: str) -> set[str]:
    session.flush()
    page = search_orders(session, OrderFilters(q=q, per_page=100))
    return {order.number for order in page.items}


def ship(session: Session, order: Order, tracking: str) -> Parcel:
    shipment = Shipment(order=order, number=f"EXP-{order.number}")
    parcel = Parcel(shipment=shipment, tracking_number=tracking)
    session.add_all([shipment, parcel])
    session.flush()
    return parcel


@pytest.fixture()
def orders(db_session: Session) -> dict[str, Order]:
    shop = make_shop(db_session)
    elodie = make_customer(db_session, "elodie.m@example.test", "Élodie", "Mérand")
    other = make_customer(db_session, "paul@example.test", "Paul", "Lefèvre")
    named = make_order(
        db_session,
        shop,
        [make_line("CONF-ABR-340")],
        customer=elodie,
        number="#2001",
        external_id="880011",
        billing_address={"first_name": "Élodie", "last_name": "Mérand", "company": "Cœur SARL"},
    )
    # The customer's record is searched when the billing address names nobody.
    by_customer = make_order(
        db_session, shop, [make_line("THE-VERT")], customer=other, number="#2002"
    )
    by_customer.billing_address = {}
    plain = make_order(db_session, shop, [make_line("MIEL-50%_X")], number="#2003")
    ship(db_session, plain, "6A12345678901")
    return {"named": named, "by_customer": by_customer, "plain": plain}


def test_each_searched_field_finds_its_order_by_part_of_it(
    db_session: Session, orders: dict[str, Order]
) -> None:
    assert found(db_session, "2001") == {"#2001"}  # number
    assert found(db_session, "8800") == {"#2001"}  # the shop's id
    assert found(db_session, "elodie.m@") == {"#2001"}  # e-mail
    assert found(db_session, "mera") == {"#2001"}  # billing last name
    assert found(db_session, "coeur") == {"#2001"}  # billing company, ligature spelled out
    assert found(db_session, "lefev") == {"#2002"}  # customer's name
    assert found(db_session, "paul@exa") == {"#2002"}  # customer's e-mail
    assert found(db_session, "abr-34") == {"#2001"}  # SKU
    assert found(db_session, "2345678") == {"#2003"}  # tracking number
    assert found(db_session, "zzqx") == set()


def test_search_ignores_case_and_accents_both_ways(
    db_session: Session, orders: dict[str, Order]
) -> None:
    assert found(db_session, "ÉLODIE") == {"#2001"}
    assert found(db_session, "elodie") == {"#2001"}
    assert found(db_session, "LEFÈVRE") == {"#2002"}
    assert found(db_session, "CŒUR") == {"#2001"}
    assert found(db_session, "conf-abr") == {"#2001"}


def test_every_term_must_match_somewhere_short_terms_and_punctuation_ignored(
    db_session: Session, orders: dict[str, Order]
) -> None:
    everything = {"#2001", "#2002", "#2003"}
    assert found(db_session, "elodie conf") == {"#2001"}  # a name and a SKU: one order
    assert found(db_session, "elodie vert") == set()
    assert found(db_session, "#2") == everything  # two characters
    assert found(db_session, "a") >= {"#2001", "#2003"}  # one character
    # Joining punctuation is ignored in the texts and the terms: a SKU with or without dashes.
    assert found(db_session, "confabr340") == {"#2001"}
    assert found(db_session, "CONF.ABR/340") == {"#2001"}
    assert found(db_session, "miel50%x") == {"#2003"}
    assert found(db_session, "L-50%_") == {"#2003"}
    assert found(db_session, "mi.el") == {"#2003"}
    # Other signs are searched as they are, and "%" and "_" are never wildcards: "mi_l"
    # would find MIEL, "m%l" Mérand's order.
    assert found(db_session, "%") == {"#2003"}
    assert found(db_session, "#2001") == {"#2001"}
    # An order number's "#" is kept: "#123" is no number here, though a tracking number has 123.
    assert found(db_session, "123") == {"#2003"}
    assert found(db_session, "#123") == set()
    assert found(db_session, "mi_l") == set()
    assert found(db_session, "m%l") == set()
    assert found(db_session, '"') == set()
    # A term of joining punctuation alone asks for nothing.
    assert found(db_session, "_ - /") == everything


def test_a_whole_address_finds_that_buyer_s_orders_only(
    db_session: Session, orders: dict[str, Order]
) -> None:
    shop = orders["named"].shop
    jean = make_customer(db_session, "jean@example.test", "Jean", "Ober")
    make_order(db_session, shop, [make_line("THE-NOIR")], customer=jean, number="#2004")
    assert found(db_session, "Elodie.M@Example.test") == {"#2001"}  # the order's own address
    assert found(db_session, "paul@example.test") == {"#2002"}  # its customer's
    assert found(db_session, "jean@example.test") == {"#2004"}
    assert found(db_session, "ean@example.test") == set()  # an address, not a piece of jean's
    assert found(db_session, "ean@example") == {"#2004"}  # a piece is still a piece
    assert found(db_session, "lodie.m@example.test") == set()
    assert found(db_session, "paul@example.test the-vert") == {"#2002"}
    assert found(db_session, "paul@example.test miel") == set()


def test_the_index_follows_inserts_updates_and_deletes(
    db_session: Session, orders: dict[str, Order]
) -> None:
    named, plain = orders["named"], orders["plain"]
    named.email = "nouvelle.adresse@example.test"
    named.billing_address = {"first_name": "Zoé", "last_name": "Quintal"}
    assert found(db_session, "nouvelle.adr") == {"#2001"}
    assert found(db_session, "quintal") == {"#2001"}
    assert found(db_session, "coeur") == set()  # the old company, in no other field

    db_session.execute(update(OrderLine).where(OrderLine.order_id == named.id).values(sku="BIS-9"))
    assert found(db_session, "conf-abr") == set()
    assert found(db_session, "bis-9") == {"#2001"}
    named.lines.append(make_line("NOUGAT-1"))
    assert found(db_session, "nougat") == {"#2001"}
    db_session.execute(delete(OrderLine).where(OrderLine.sku == "NOUGAT-1"))
    assert found(db_session, "nougat") == set()

    db_session.execute(
        update(Customer).where(Customer.email == "paul@example.test").values(last_name="Rivière")
    )
    assert found(db_session, "riviere") == {"#2002"}
    assert found(db_session, "lefevre") == set()

    parcel = ship(db_session, named, "XY998877")
    assert found(db_session, "998877") == {"#2001"}
    parcel.tracking_number = "XY112233"
    assert found(db_session, "998877") == set()
    assert found(db_session, "112233") == {"#2001"}
    db_session.delete(parcel)
    assert found(db_session, "112233") == set()

    plain.number = "#7777"
    assert found(db_session, "7777") == {"#7777"}
    for shipment in db_session.query(Shipment).filter_by(order_id=plain.id):
        db_session.delete(shipment)
    db_session.flush()
    db_session.delete(plain)
    assert found(db_session, "7777") == set()
    assert found(db_session, "miel") == set()


def test_the_count_stops_at_the_cap_and_pages_go_on_while_orders_remain(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(order_queries, "COUNT_CAP", 3)
    shop = make_shop(db_session)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    made = [
        make_order(db_session, shop, placed_at=start + dt.timedelta(hours=hour)).number
        for hour in range(5)
    ]

    first = search_orders(db_session, OrderFilters(per_page=2))
    assert (first.total, first.capped, first.has_next) == (3, True, True)
    third = search_orders(db_session, OrderFilters(per_page=2, page=3))
    assert [order.number for order in third.items] == [made[0]]
    assert (third.page, third.has_next, third.has_prev) == (3, False, True)
    # Past the end of a capped list: the orders are counted once, and it is the last page.
    past = search_orders(db_session, OrderFilters(per_page=2, page=9))
    assert [order.number for order in past.items] == [made[0]]
    assert (past.page, past.total, past.capped, past.has_next) == (3, 3, True, False)

    # A filtered list is counted by its query, past the cap too.
    past = search_orders(db_session, OrderFilters(per_page=2, page=9, shop=shop.key))
    assert [order.number for order in past.items] == [made[0]]
    assert (past.page, past.has_next) == (3, False)

    # Pages in the back half are read from the end, in the list's order all the same.
    for sort in ("placed_at", "-placed_at"):
        pages = [
            [
                o.number
                for o in search_orders(
                    db_session, OrderFilters(per_page=2, page=n, sort=sort)
                ).items
            ]
            for n in (1, 2, 3)
        ]
        assert sum(pages, []) == (made if sort == "placed_at" else made[::-1]), sort

    few = search_orders(db_session, OrderFilters(per_page=2, number=made[0]))
    assert (few.total, few.capped, few.has_next, few.pages) == (1, False, False, 1)


def test_a_search_s_first_page_and_count_in_every_sort(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = make_shop(db_session)
    start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    made = [
        make_order(
            db_session,
            shop,
            [make_line("VASE-M" if n % 2 == 0 else "BOL-S")],
            number=f"#{5000 + n}",
            placed_at=start + dt.timedelta(hours=n),
        )
        for n in range(7)
    ]
    db_session.flush()
    vases = [order for order in made if order.lines[0].sku == "VASE-M"]  # 4 of the 7

    def first_page(sort: str) -> tuple[int, bool, bool, list[str]]:
        page = search_orders(db_session, OrderFilters(q="vase-m", per_page=3, sort=sort))
        numbers = [order.number for order in page.items]
        return page.total, page.capped, page.has_next, numbers

    newest = [o.number for o in sorted(vases, key=lambda o: o.placed_at, reverse=True)]
    assert first_page("-placed_at") == (4, False, True, newest[:3])
    assert first_page("placed_at") == (4, False, True, newest[::-1][:3])
    assert first_page("-number") == (4, False, True, ["#5006", "#5004", "#5002"])
    # Shop and customer come loaded with the page, as on the list.
    assert search_orders(db_session, OrderFilters(q="vase-m")).items[0].shop.name == shop.name

    monkeypatch.setattr(order_queries, "COUNT_CAP", 3)
    # More than the cap: "more than 3", and the first page is still the newest orders.
    assert first_page("-placed_at") == (3, True, True, newest[:3])
    assert first_page("number") == (3, True, True, ["#5000", "#5002", "#5004"])
