from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import event
from sqlalchemy.orm import Session

from tests.factories import make_customer, make_line, make_order, make_shop
from web.models import Comment, Document, OrderEvent, Parcel, Shipment, ShipmentLine, Transaction
from web.models.enums import (
    ActorType,
    CommercialState,
    DocumentKind,
    FulfilmentState,
    PaymentState,
    Platform,
    TransactionKind,
)
from web.models.orders import Order
from web.services.errors import NotFound
from web.services.order_queries import (
    OrderFilters,
    filters_to_args,
    fold_text,
    get_order,
    parse_filters,
    search_orders,
)

UTC = dt.UTC


def numbers(session: Session, **filters: object) -> list[str]:
    page = search_orders(session, OrderFilters(per_page=100, **filters))  # type: ignore[arg-type]
    return [order.number for order in page.items]


def ids(session: Session, **filters: object) -> list[int]:
    page = search_orders(session, OrderFilters(per_page=100, **filters))  # type: ignore[arg-type]
    return [order.id for order in page.items]


class CountStatements:
    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self.count = 0

    def _count(self, *_args: object) -> None:
        self.count += 1

    def __enter__(self) -> CountStatements:
        event.listen(self.connection, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *_exc: object) -> None:
        event.remove(self.connection, "before_cursor_execute", self._count)


# --- Filters ---------------------------------------------------------------------------------


def test_no_filter_lists_every_order_newest_first(db_session: Session) -> None:
    shop = make_shop(db_session)
    old = make_order(db_session, shop, placed_at=dt.datetime(2026, 1, 1, tzinfo=UTC))
    new = make_order(db_session, shop, placed_at=dt.datetime(2026, 2, 1, tzinfo=UTC))

    assert ids(db_session) == [new.id, old.id]


def test_shop_filter_uses_the_shop_key(db_session: Session) -> None:
    shopify = make_shop(db_session, key="boutique")
    woo = make_shop(db_session, key="atelier", platform=Platform.WOOCOMMERCE)
    mine = make_order(db_session, shopify)
    make_order(db_session, woo)

    assert ids(db_session, shop="boutique") == [mine.id]
    assert ids(db_session, shop="unknown") == []


@pytest.mark.parametrize(
    ("field", "column", "wanted", "other"),
    [
        ("commercial", "commercial_state", CommercialState.CANCELLED, CommercialState.NEW),
        ("fulfilment", "fulfilment_state", FulfilmentState.SHIPPED, FulfilmentState.UNFULFILLED),
        ("payment", "payment_state", PaymentState.REFUNDED, PaymentState.PAID),
    ],
)
def test_state_filters(
    db_session: Session, field: str, column: str, wanted: object, other: object
) -> None:
    shop = make_shop(db_session)
    match = make_order(db_session, shop, **{column: wanted})
    make_order(db_session, shop, **{column: other})

    assert ids(db_session, **{field: wanted}) == [match.id]


@pytest.mark.parametrize("flag", ["on_hold", "needs_mapping"])
def test_flag_filters_both_ways(db_session: Session, flag: str) -> None:
    shop = make_shop(db_session)
    flagged = make_order(db_session, shop, **{flag: True})
    plain = make_order(db_session, shop)

    assert ids(db_session, **{flag: True}) == [flagged.id]
    assert ids(db_session, **{flag: False}) == [plain.id]


def test_ready_to_prepare_filter(db_session: Session) -> None:
    shop = make_shop(db_session)
    validated = {"commercial_state": CommercialState.VALIDATED}
    paid = make_order(db_session, shop, payment_state=PaymentState.PAID, **validated)
    free = make_order(db_session, shop, lines=[make_line(unit_price="0.00")], **validated)
    in_prep = make_order(
        db_session,
        shop,
        payment_state=PaymentState.PAID,
        fulfilment_state=FulfilmentState.IN_PREPARATION,
        **validated,
    )
    unpaid = make_order(db_session, shop, **validated)
    held = make_order(db_session, shop, payment_state=PaymentState.PAID, on_hold=True, **validated)
    shipped = make_order(
        db_session,
        shop,
        payment_state=PaymentState.PAID,
        fulfilment_state=FulfilmentState.SHIPPED,
        **validated,
    )
    new = make_order(db_session, shop, payment_state=PaymentState.PAID)

    assert sorted(ids(db_session, ready=True)) == sorted([paid.id, free.id, in_prep.id])
    assert sorted(ids(db_session, ready=False)) == sorted([unpaid.id, held.id, shipped.id, new.id])


def test_date_range_is_inclusive_in_paris_local_days(db_session: Session) -> None:
    shop = make_shop(db_session)
    # 23:30 UTC on 1 March is 00:30 on 2 March in Paris (UTC+1 in winter).
    late = make_order(db_session, shop, placed_at=dt.datetime(2026, 3, 1, 23, 30, tzinfo=UTC))
    first = make_order(db_session, shop, placed_at=dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    # 21:59 UTC on 3 March is 22:59 in Paris, still the 3rd.
    third = make_order(db_session, shop, placed_at=dt.datetime(2026, 3, 3, 21, 59, tzinfo=UTC))
    # 23:00 UTC on 3 March is midnight on the 4th in Paris.
    fourth = make_order(db_session, shop, placed_at=dt.datetime(2026, 3, 3, 23, 0, tzinfo=UTC))

    day = dt.date(2026, 3, 2)
    assert ids(db_session, date_from=day, date_to=day) == [late.id]
    assert ids(db_session, date_to=dt.date(2026, 3, 1)) == [first.id]
    assert ids(db_session, date_from=dt.date(2026, 3, 2), date_to=dt.date(2026, 3, 3)) == [
        third.id,
        late.id,
    ]
    assert ids(db_session, date_from=dt.date(2026, 3, 4)) == [fourth.id]


def test_summer_time_day_boundary(db_session: Session) -> None:
    shop = make_shop(db_session)
    # Paris is UTC+2 in July: 22:30 UTC on the 9th is 00:30 on the 10th.
    order = make_order(db_session, shop, placed_at=dt.datetime(2026, 7, 9, 22, 30, tzinfo=UTC))

    assert ids(db_session, date_from=dt.date(2026, 7, 10), date_to=dt.date(2026, 7, 10)) == [
        order.id
    ]
    assert ids(db_session, date_to=dt.date(2026, 7, 9)) == []


def test_number_filter_is_exact(db_session: Session) -> None:
    shop = make_shop(db_session)
    make_order(db_session, shop, number="#1001")
    wanted = make_order(db_session, shop, number="#100")

    assert ids(db_session, number="#100") == [wanted.id]


def test_combined_filters_all_apply(db_session: Session) -> None:
    shop = make_shop(db_session, key="boutique")
    other_shop = make_shop(db_session, key="atelier")
    dupont = make_customer(db_session, first_name="Jean", last_name="Dupont")
    hit = make_order(
        db_session, shop, customer=dupont, payment_state=PaymentState.PAID, on_hold=True
    )
    make_order(db_session, shop, customer=dupont, payment_state=PaymentState.PAID)
    make_order(db_session, shop, customer=dupont, on_hold=True)
    make_order(
        db_session, other_shop, customer=dupont, payment_state=PaymentState.PAID, on_hold=True
    )
    make_order(db_session, shop, payment_state=PaymentState.PAID, on_hold=True)

    assert ids(
        db_session, shop="boutique", payment=PaymentState.PAID, on_hold=True, q="dupont"
    ) == [hit.id]


# --- Search ----------------------------------------------------------------------------------


@pytest.fixture()
def searchable(db_session: Session) -> dict[str, Order]:
    shop = make_shop(db_session)
    jean = make_customer(
        db_session, email="jean.dupont@example.test", first_name="Jean", last_name="Dupont"
    )
    elodie = make_customer(
        db_session, email="e.lefevre@example.test", first_name="Élodie", last_name="Lefèvre"
    )
    orders = {
        "jean": make_order(
            db_session,
            shop,
            customer=jean,
            number="#2001",
            external_id="820001",
            lines=[make_line(sku="TSHIRT-BLUE-M"), make_line(sku="MUG-01")],
        ),
        "elodie": make_order(
            db_session,
            shop,
            customer=elodie,
            number="#2002",
            external_id="820002",
            email="commandes@acme.test",
            billing_address={"first_name": "Élodie", "last_name": "Lefèvre", "company": "ACME"},
            lines=[make_line(sku="PROMO-50%")],
        ),
        "jeanne": make_order(
            db_session,
            shop,
            number="#3003",
            external_id="830003",
            email="jeanne@example.test",
            billing_address={"first_name": "Jeanne", "last_name": "Martin"},
            lines=[make_line(sku="A_B-1")],
        ),
    }
    return orders


def found(session: Session, q: str) -> set[str]:
    page = search_orders(session, OrderFilters(q=q, per_page=100))
    return {order.number for order in page.items}


def test_search_by_number_and_external_id(
    db_session: Session, searchable: dict[str, Order]
) -> None:
    assert found(db_session, "#2001") == {"#2001"}
    assert found(db_session, "200") == {"#2001", "#2002"}
    assert found(db_session, "830003") == {"#3003"}


def test_search_by_first_and_last_name_in_any_order(
    db_session: Session, searchable: dict[str, Order]
) -> None:
    assert found(db_session, "jean dupont") == {"#2001"}
    assert found(db_session, "  DUPONT   Jean ") == {"#2001"}
    assert found(db_session, "jean") == {"#2001", "#3003"}
    assert found(db_session, "jean lefèvre") == set()


def test_search_by_order_and_customer_email(
    db_session: Session, searchable: dict[str, Order]
) -> None:
    assert found(db_session, "commandes@acme") == {"#2002"}
    # The customer's own e-mail, different from the one on the order.
    assert found(db_session, "e.lefevre@") == {"#2002"}
    assert found(db_session, "JEANNE@EXAMPLE.TEST") == {"#3003"}


def test_search_by_billing_company(db_session: Session, searchable: dict[str, Order]) -> None:
    assert found(db_session, "acme") == {"#2002"}


def test_search_by_line_sku(db_session: Session, searchable: dict[str, Order]) -> None:
    assert found(db_session, "mug-01") == {"#2001"}
    assert found(db_session, "tshirt blue") == {"#2001"}


@pytest.mark.parametrize(
    "q", ["Élodie", "élodie", "ÉLODIE", "elodie", "ELODIE", "lefevre", "LEFÈVRE", "LeFèVrE"]
)
def test_search_ignores_case_and_accents(
    db_session: Session, searchable: dict[str, Order], q: str
) -> None:
    assert found(db_session, q) == {"#2002"}


def test_search_ignores_punctuation_and_reads_no_wildcard(
    db_session: Session, searchable: dict[str, Order]
) -> None:
    assert found(db_session, "50%") == {"#2002"}
    assert found(db_session, "a_b") == {"#3003"}
    assert found(db_session, "ab1") == {"#3003"}
    assert found(db_session, "mug_01") == {"#2001"}  # MUG-01, its dash ignored
    # "_" would match any character and "%" anything if they were wildcards.
    assert found(db_session, "tshirt_lue") == set()
    assert found(db_session, "j%n") == set()
    assert found(db_session, "%") == {"#2002"}  # searched as it is
    assert len(found(db_session, "- _")) == 3  # joining punctuation alone: nothing to search


def test_blank_search_matches_everything(db_session: Session, searchable: dict[str, Order]) -> None:
    assert len(found(db_session, "   ")) == 3


def test_fold_text_matches_what_the_database_folds() -> None:
    assert fold_text("ÉLODIE Lefèvre Œuvre") == "elodie lefevre oeuvre"


# --- Sorting ---------------------------------------------------------------------------------


@pytest.fixture()
def sortable(db_session: Session) -> list[Order]:
    shop = make_shop(db_session)
    specs = [
        ("#999", "30.00", "Bernard", dt.datetime(2026, 3, 3, tzinfo=UTC)),
        ("#1000", "10.00", "dupont", dt.datetime(2026, 3, 1, tzinfo=UTC)),
        ("#1001", "20.00", "Émile", dt.datetime(2026, 3, 2, tzinfo=UTC)),
        ("#1002", "20.00", "Fabre", dt.datetime(2026, 3, 2, tzinfo=UTC)),
    ]
    return [
        make_order(
            db_session,
            shop,
            number=number,
            lines=[make_line(unit_price=total)],
            billing_address={"first_name": "A", "last_name": last_name},
            placed_at=placed_at,
        )
        for number, total, last_name, placed_at in specs
    ]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        # Ties (same time, same total) fall back to the id, in the sort's direction.
        ("placed_at", ["#1000", "#1001", "#1002", "#999"]),
        ("-placed_at", ["#999", "#1002", "#1001", "#1000"]),
        ("number", ["#999", "#1000", "#1001", "#1002"]),
        ("-number", ["#1002", "#1001", "#1000", "#999"]),
        ("total", ["#1000", "#1001", "#1002", "#999"]),
        ("-total", ["#999", "#1002", "#1001", "#1000"]),
        ("customer", ["#999", "#1000", "#1001", "#1002"]),
        ("-customer", ["#1002", "#1001", "#1000", "#999"]),
    ],
)
def test_sorting_both_directions(
    db_session: Session, sortable: list[Order], sort: str, expected: list[str]
) -> None:
    assert numbers(db_session, sort=sort) == expected


def test_customer_sort_falls_back_to_customer_record(db_session: Session) -> None:
    shop = make_shop(db_session)
    zola = make_customer(db_session, first_name="Émile", last_name="Zola")
    adam = make_customer(db_session, first_name="Paul", last_name="Adam")
    by_zola = make_order(db_session, shop, customer=zola, billing_address={})
    by_adam = make_order(db_session, shop, customer=adam, billing_address={})

    assert ids(db_session, sort="customer") == [by_adam.id, by_zola.id]


def test_renaming_the_billing_name_or_changing_the_customer_moves_the_order(
    db_session: Session,
) -> None:
    shop = make_shop(db_session)
    martin = make_customer(db_session, first_name="Luc", last_name="Martin")
    zola = make_customer(db_session, first_name="Émile", last_name="Zola")
    moving = make_order(db_session, shop, customer=martin)
    middle = make_order(db_session, shop, billing_address={"last_name": "Moreau"})
    assert ids(db_session, sort="customer") == [moving.id, middle.id]

    moving.billing_address = {"first_name": "Luc", "last_name": "Roux"}
    db_session.flush()
    assert ids(db_session, sort="customer") == [middle.id, moving.id]

    # No billing name: the customer record's name, then another customer's.
    moving.billing_address = {}
    db_session.flush()
    assert ids(db_session, sort="customer") == [moving.id, middle.id]
    moving.customer = zola
    db_session.flush()
    assert ids(db_session, sort="customer") == [middle.id, moving.id]
    # The customer's id set alone, the record not loaded with it.
    moving.customer_id = martin.id
    db_session.flush()
    assert ids(db_session, sort="customer") == [moving.id, middle.id]


# --- Pages -----------------------------------------------------------------------------------


def test_pages_split_the_results_and_count_them(db_session: Session) -> None:
    shop = make_shop(db_session)
    for day in range(1, 6):
        make_order(db_session, shop, placed_at=dt.datetime(2026, 3, day, tzinfo=UTC))

    first = search_orders(db_session, OrderFilters(per_page=2, sort="placed_at"))
    last = search_orders(db_session, OrderFilters(per_page=2, page=3, sort="placed_at"))

    assert (first.total, first.pages, first.page) == (5, 3, 1)
    assert (first.has_prev, first.has_next) == (False, True)
    assert [order.placed_at.day for order in first.items] == [1, 2]
    assert (last.total, last.pages, last.page) == (5, 3, 3)
    assert (last.has_prev, last.has_next) == (True, False)
    assert [order.placed_at.day for order in last.items] == [5]


def test_page_past_the_end_shows_the_last_page(db_session: Session) -> None:
    shop = make_shop(db_session)
    for _ in range(4):
        make_order(db_session, shop)

    page = search_orders(db_session, OrderFilters(per_page=2, page=9))

    assert (page.page, page.pages, len(page.items), page.has_next) == (2, 2, 2, False)


def test_exact_multiple_of_page_size_has_no_empty_page(db_session: Session) -> None:
    shop = make_shop(db_session)
    for _ in range(4):
        make_order(db_session, shop)

    page = search_orders(db_session, OrderFilters(per_page=2, page=2))

    assert (page.pages, len(page.items), page.has_next) == (2, 2, False)


def test_no_match_is_one_empty_page(db_session: Session) -> None:
    page = search_orders(db_session, OrderFilters(q="nothing-like-this"))

    assert (page.total, page.pages, page.page, page.items) == (0, 1, 1, [])
    assert (page.has_prev, page.has_next) == (False, False)


def test_total_counts_matches_beyond_the_page(db_session: Session) -> None:
    shop = make_shop(db_session)
    for _ in range(3):
        make_order(db_session, shop, on_hold=True)
    make_order(db_session, shop)

    page = search_orders(db_session, OrderFilters(on_hold=True, per_page=1))

    assert (page.total, len(page.items), page.pages) == (3, 1, 3)


def test_page_loads_shop_and_customer_without_more_queries(db_session: Session) -> None:
    shop = make_shop(db_session)
    for index in range(5):
        customer = make_customer(db_session, last_name=f"Name{index}")
        make_order(db_session, shop, customer=customer)
    db_session.expunge_all()

    page = search_orders(db_session, OrderFilters())
    with CountStatements(db_session) as counter:
        names = [(order.shop.name, order.customer and order.customer.email) for order in page.items]

    assert len(names) == 5
    assert counter.count == 0


# --- Query string ----------------------------------------------------------------------------


def test_parse_filters_reads_every_field() -> None:
    args = {
        "shop": "boutique",
        "commercial": "validated",
        "fulfilment": "in_preparation",
        "payment": "PAID",
        "on_hold": "0",
        "needs_mapping": "yes",
        "ready": "true",
        "date_from": "2026-03-01",
        "date_to": "2026-03-31",
        "q": "  jean dupont ",
        "number": "#1001",
        "sort": "-total",
        "page": "3",
        "per_page": "50",
    }

    filters, errors = parse_filters(args)

    assert errors == {}
    assert filters == OrderFilters(
        shop="boutique",
        commercial=CommercialState.VALIDATED,
        fulfilment=FulfilmentState.IN_PREPARATION,
        payment=PaymentState.PAID,
        on_hold=False,
        needs_mapping=True,
        ready=True,
        date_from=dt.date(2026, 3, 1),
        date_to=dt.date(2026, 3, 31),
        q="jean dupont",
        number="#1001",
        sort="-total",
        page=3,
        per_page=50,
    )


def test_parse_filters_treats_empty_values_as_absent() -> None:
    filters, errors = parse_filters({name: "" for name in ("shop", "commercial", "q", "page")})

    assert errors == {}
    assert filters == OrderFilters()


def test_parse_filters_reports_bad_values_and_ignores_them() -> None:
    filters, errors = parse_filters(
        {
            "commercial": "shipped",
            "payment": "free",
            "on_hold": "maybe",
            "date_from": "2026-02-30",
            "date_to": "yesterday",
            "sort": "price",
            "page": "two",
            "per_page": "lots",
            "shop": "boutique",
        }
    )

    assert set(errors) == {
        "commercial",
        "payment",
        "on_hold",
        "date_from",
        "date_to",
        "sort",
        "page",
        "per_page",
    }
    assert "shipped" in errors["commercial"]
    assert filters == OrderFilters(shop="boutique")


def test_parse_filters_clamps_page_and_page_size() -> None:
    filters, errors = parse_filters({"page": "0", "per_page": "500"})
    assert errors == {}
    assert (filters.page, filters.per_page) == (1, 100)

    filters, errors = parse_filters({"page": "-4", "per_page": "0"})
    assert errors == {}
    assert (filters.page, filters.per_page) == (1, 1)


def test_parse_filters_reports_an_end_before_the_start() -> None:
    filters, errors = parse_filters({"date_from": "2026-03-10", "date_to": "2026-03-01"})

    assert "date_to" in errors
    assert (filters.date_from, filters.date_to) == (dt.date(2026, 3, 10), None)


def test_filters_to_args_leaves_defaults_out_and_round_trips() -> None:
    assert filters_to_args(OrderFilters()) == {}

    filters = OrderFilters(
        shop="boutique",
        payment=PaymentState.PARTIALLY_PAID,
        on_hold=False,
        ready=True,
        date_from=dt.date(2026, 3, 1),
        q="jean",
        sort="customer",
        page=2,
        per_page=50,
    )
    args = filters_to_args(filters)

    assert args == {
        "shop": "boutique",
        "payment": "partially_paid",
        "on_hold": "0",
        "ready": "1",
        "date_from": "2026-03-01",
        "q": "jean",
        "sort": "customer",
        "page": "2",
        "per_page": "50",
    }
    assert parse_filters(args) == (filters, {})


# --- One order -------------------------------------------------------------------------------


def test_get_order_loads_everything_the_detail_page_shows(db_session: Session) -> None:
    shop = make_shop(db_session)
    customer = make_customer(db_session)
    order = make_order(db_session, shop, customer=customer)
    db_session.add(Transaction(order=order, kind=TransactionKind.SALE, amount=Decimal("10.00")))
    shipment = Shipment(order=order, number="EXP-1")
    shipment.parcels.append(Parcel(tracking_number="6A123"))
    shipment.lines.append(ShipmentLine(order_line=order.lines[0], quantity=1))
    db_session.add(shipment)
    db_session.add(Document(order=order, kind=DocumentKind.INVOICE))
    db_session.add(Comment(order=order, text="Fragile"))
    db_session.add(OrderEvent(order=order, actor_type=ActorType.SYSTEM, kind="created"))
    db_session.flush()
    order_id = order.id
    db_session.expunge_all()

    loaded = get_order(db_session, order_id)
    with CountStatements(db_session) as counter:
        seen = (
            loaded.shop.key,
            loaded.customer and loaded.customer.email,
            loaded.shipping_mode,
            [line.sku for line in loaded.lines],
            [tx.amount for tx in loaded.transactions],
            [[p.tracking_number for p in s.parcels] for s in loaded.shipments],
            [[line.quantity for line in s.lines] for s in loaded.shipments],
            [doc.kind for doc in loaded.documents],
            [(c.text, c.author) for c in loaded.comments],
            [(e.kind, e.actor_user) for e in loaded.events],
        )

    assert counter.count == 0
    assert seen[0] == shop.key
    assert seen[3] == ["SKU-1"]
    assert len(loaded.shipments[0].parcels) == 1


def test_get_order_raises_not_found(db_session: Session) -> None:
    with pytest.raises(NotFound):
        get_order(db_session, 999_999)
