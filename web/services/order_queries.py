"""The order desk's queries: filters from the query string, search, sorting and pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Select,
    SQLColumnExpression,
    and_,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.orm.interfaces import ORMOption

from web import search_index, state_counts
from web.models import Comment, Customer, OrderEvent, Shipment, Shop
from web.models.enums import CommercialState, FulfilmentState, PaymentState
from web.models.orders import Order
from web.services import paging
from web.services.errors import NotFound
from web.services.order_state import ready_to_prepare_clause
from web.services.paging import Page
from web.textfold import fold_text

DESK_TZ = ZoneInfo("Europe/Paris")
DEFAULT_SORT = "-placed_at"
SORTS = ("placed_at", "-placed_at", "number", "-number", "total", "-total", "customer", "-customer")
DEFAULT_PER_PAGE = 25
MAX_PER_PAGE = 100
MAX_QUERY_LENGTH = 200
COUNT_CAP = 10_000
"""The list counts its orders up to this many; past it, it says "more than"."""
NUMBERED_PAGES = 5
"""The list's first pages are linked by number; past them, by a cursor (keyset pagination):
OFFSET reads and drops every row before the page, a cursor starts at its place in the index."""
MAX_CURSOR_LENGTH = 1_000

_E = TypeVar("_E", bound=StrEnum)

_TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
_FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass
class OrderFilters:
    """What the order desk shows: filters, search text, sort order and page."""

    shop: str | None = None
    commercial: CommercialState | None = None
    fulfilment: FulfilmentState | None = None
    payment: PaymentState | None = None
    on_hold: bool | None = None
    needs_mapping: bool | None = None
    ready: bool | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str | None = None
    number: str | None = None
    sort: str = DEFAULT_SORT
    page: int = 1
    per_page: int = DEFAULT_PER_PAGE
    cursor: Cursor | None = None


@dataclass(frozen=True)
class Cursor:
    """Where a page reached by cursor starts: just after (or, going back, just before) the
    order whose sort key, id last, is `key`. `page` is the page's number, for display."""

    sort: str
    key: tuple[Any, ...]
    page: int
    forward: bool = True


# --- Cursors ---------------------------------------------------------------------------------


def _cursor_int(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= paging.MAX_ID:
        raise ValueError(value)
    return value


def _cursor_text(value: Any) -> str:
    if not isinstance(value, str) or "\x00" in value or len(value) > MAX_CURSOR_LENGTH:
        raise ValueError(value)
    value.encode("utf-8")  # lone surrogates: UnicodeEncodeError, a ValueError
    return value


def _cursor_amount(value: Any) -> Decimal:
    amount = Decimal(_cursor_text(value))
    if not amount.is_finite() or abs(amount) >= 10**12:
        raise ValueError(value)
    return amount


def _cursor_time(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(_cursor_text(value))
    if moment.tzinfo is None:
        raise ValueError(value)
    try:
        return moment.astimezone(dt.UTC)  # as it is bound: the year 1 east of UTC overflows
    except OverflowError:
        raise ValueError(value) from None


_KEY_READERS: dict[str, tuple[Callable[[Any], Any], ...]] = {
    "placed_at": (_cursor_time,),
    "number": (_cursor_int, _cursor_text),
    "total": (_cursor_amount,),
    "customer": (_cursor_text, _cursor_text),
}
"""How each sort's key is read back from a cursor, the order id after it."""


def _key_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def encode_cursor(cursor: Cursor) -> str:
    """Write a cursor as opaque URL-safe text."""
    payload = [cursor.sort, cursor.page, [_key_value(value) for value in cursor.key]]
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(text).decode().rstrip("=")


def decode_cursor(text: str, sort: str, *, forward: bool) -> Cursor | None:
    """Read a cursor written by `encode_cursor` for this sort; None for anything else."""
    if len(text) > MAX_CURSOR_LENGTH:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        cursor_sort, page, values = payload
        readers = (*_KEY_READERS[sort.lstrip("-")], _cursor_int)
        if cursor_sort != sort or not isinstance(values, list) or len(values) != len(readers):
            return None
        key = tuple(read(value) for read, value in zip(readers, values, strict=True))
        page = min(max(_cursor_int(page), 1), paging.MAX_PAGE)
    except (ValueError, TypeError, binascii.Error, InvalidOperation):
        # json.JSONDecodeError and UnicodeError are ValueErrors.
        return None
    return Cursor(sort, key, page, forward)


# --- Query string ----------------------------------------------------------------------------


def _text(args: Mapping[str, str], name: str) -> str | None:
    value = (args.get(name) or "").strip()
    return value or None


def _enum(args: Mapping[str, str], name: str, enum: type[_E], errors: dict[str, str]) -> _E | None:
    value = _text(args, name)
    if value is None:
        return None
    try:
        return enum(value.lower())
    except ValueError:
        errors[name] = f"unknown value {value!r}; expected one of: " + ", ".join(enum)
        return None


def _flag(args: Mapping[str, str], name: str, errors: dict[str, str]) -> bool | None:
    value = _text(args, name)
    if value is None:
        return None
    if value.lower() in _TRUE_WORDS:
        return True
    if value.lower() in _FALSE_WORDS:
        return False
    errors[name] = f"expected yes or no, got {value!r}"
    return None


EARLIEST_DAY = dt.date(1970, 1, 1)
LATEST_DAY = dt.date(9000, 12, 31)


def _date(args: Mapping[str, str], name: str, errors: dict[str, str]) -> dt.date | None:
    value = _text(args, name)
    if value is None:
        return None
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        errors[name] = f"expected a date as YYYY-MM-DD, got {value!r}"
        return None
    # Orders live between these years; the edges would overflow the time-zone arithmetic.
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        errors[name] = f"expected a date between {EARLIEST_DAY} and {LATEST_DAY}, got {value!r}"
        return None
    return day


def _int(
    args: Mapping[str, str], name: str, default: int, low: int, high: int, errors: dict[str, str]
) -> int:
    value = _text(args, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        errors[name] = f"expected a whole number, got {value!r}"
        return default
    return min(max(number, low), high)


def parse_filters(args: Mapping[str, str]) -> tuple[OrderFilters, dict[str, str]]:
    """Read desk filters from query-string values, ignoring and reporting the bad ones."""
    errors: dict[str, str] = {}
    filters = OrderFilters(
        shop=_text(args, "shop"),
        commercial=_enum(args, "commercial", CommercialState, errors),
        fulfilment=_enum(args, "fulfilment", FulfilmentState, errors),
        payment=_enum(args, "payment", PaymentState, errors),
        on_hold=_flag(args, "on_hold", errors),
        needs_mapping=_flag(args, "needs_mapping", errors),
        ready=_flag(args, "ready", errors),
        date_from=_date(args, "date_from", errors),
        date_to=_date(args, "date_to", errors),
        q=(_text(args, "q") or "")[:MAX_QUERY_LENGTH] or None,
        number=_text(args, "number"),
        page=_int(args, "page", 1, 1, paging.MAX_PAGE, errors),
        per_page=_int(args, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE, errors),
    )
    sort = _text(args, "sort")
    if sort is not None:
        if sort in SORTS:
            filters.sort = sort
        else:
            errors["sort"] = f"unknown sort {sort!r}; expected one of: " + ", ".join(SORTS)
    after, before = _text(args, "after"), _text(args, "before")
    if after and before:
        errors["before"] = "give after or before, not both"
    elif after or before:
        name = "after" if after else "before"
        filters.cursor = decode_cursor(after or before or "", filters.sort, forward=bool(after))
        if filters.cursor is None:
            errors[name] = "not a cursor this list gave for this sort; start from the first page"
    if filters.date_from and filters.date_to and filters.date_to < filters.date_from:
        errors["date_to"] = "the end date is before the start date"
        filters.date_to = None
    return filters, errors


def filters_to_args(filters: OrderFilters) -> dict[str, str]:
    """Turn filters back into query-string values, leaving defaults out."""
    args: dict[str, str] = {}
    for name in ("shop", "q", "number"):
        value = getattr(filters, name)
        if value:
            args[name] = value
    for name in ("commercial", "fulfilment", "payment"):
        state = getattr(filters, name)
        if state is not None:
            args[name] = state.value
    for name in ("on_hold", "needs_mapping", "ready"):
        flag = getattr(filters, name)
        if flag is not None:
            args[name] = "1" if flag else "0"
    for name in ("date_from", "date_to"):
        day = getattr(filters, name)
        if day is not None:
            args[name] = day.isoformat()
    if filters.sort != DEFAULT_SORT:
        args["sort"] = filters.sort
    if filters.page != 1:
        args["page"] = str(filters.page)
    if filters.per_page != DEFAULT_PER_PAGE:
        args["per_page"] = str(filters.per_page)
    return args


# --- Search ----------------------------------------------------------------------------------


# A whole e-mail address, as intake stores them (lower case, ASCII).
WHOLE_EMAIL = re.compile(r"[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9-]+(\.[a-z0-9-]+)+")


def _search_clause(dialect: Dialect, q: str) -> ColumnElement[bool] | None:
    terms = q.split()
    if not terms:
        return None
    # Each term in one of the order's searched texts (web/search_index.py), from its index.
    return and_(*(_term_clause(dialect, term) for term in terms))


def _term_clause(dialect: Dialect, term: str) -> ColumnElement[bool]:
    address = term.lower()
    if WHOLE_EMAIL.fullmatch(address):
        # A whole address is the buyer's: looked up by equality (one index entry) rather than
        # as a piece of text, whose common pieces ("@gmail.com") a million orders share.
        buyer = select(Customer.id).where(Customer.email == address).scalar_subquery()
        return or_(Order.email == address, Order.customer_id == buyer)
    return search_index.order_matches(dialect, Order.id, fold_text(term))


def _local_day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=DESK_TZ).astimezone(dt.UTC)


def _where(filters: OrderFilters, dialect: Dialect) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    if filters.shop:
        clauses.append(Order.shop.has(Shop.key == filters.shop))
    if filters.commercial is not None:
        clauses.append(Order.commercial_state == filters.commercial)
    if filters.fulfilment is not None:
        clauses.append(Order.fulfilment_state == filters.fulfilment)
    if filters.payment is not None:
        clauses.append(Order.payment_state == filters.payment)
    if filters.on_hold is not None:
        clauses.append(Order.on_hold.is_(filters.on_hold))
    if filters.needs_mapping is not None:
        clauses.append(Order.needs_mapping.is_(filters.needs_mapping))
    if filters.ready is not None:
        ready = ready_to_prepare_clause()
        # Plain NOT is exact here: none of the columns in the clause is nullable.
        clauses.append(ready if filters.ready else ~ready)
    if filters.date_from is not None:
        clauses.append(Order.placed_at >= _local_day_start(filters.date_from))
    if filters.date_to is not None:
        next_day = filters.date_to + dt.timedelta(days=1)
        clauses.append(Order.placed_at < _local_day_start(next_day))
    if filters.number:
        clauses.append(Order.number == filters.number)
    if filters.q:
        search = _search_clause(dialect, filters.q)
        if search is not None:
            clauses.append(search)
    return clauses


def _sort_key(sort: str) -> list[SQLColumnExpression[Any]]:
    """The columns the list is sorted on, the order id last: none of them is ever NULL."""
    key = sort.lstrip("-")
    columns: list[SQLColumnExpression[Any]]
    if key == "number":
        # Shop numbers are text: shorter first keeps "#999" before "#1000".
        columns = [func.length(Order.number), Order.number]
    elif key == "total":
        columns = [Order.grand_total]
    elif key == "customer":
        # Folded billing name, else the customer record's, else the e-mail: kept on the order
        # (web.models.orders.sort_names) for ix_orders_sort_customer.
        columns = [Order.sort_last, Order.sort_first]
    else:
        columns = [Order.placed_at]
    columns.append(Order.id)
    return columns


def _order_by(sort: str, *, reverse: bool = False) -> list[ColumnElement[Any]]:
    descending = sort.startswith("-") != reverse
    return [column.desc() if descending else column.asc() for column in _sort_key(sort)]


def _sort_of(filters: OrderFilters) -> str:
    return filters.sort if filters.sort in SORTS else DEFAULT_SORT


def _statement(session: Session, filters: OrderFilters) -> Select[Order]:
    where = _where(filters, session.get_bind().dialect)
    return select(Order).where(*where).order_by(*_order_by(_sort_of(filters)))


def _past_cursor(sort: str, cursor: Cursor) -> ColumnElement[bool]:
    """The rows after the cursor in the direction it walks, as one row-value comparison: both
    databases serve it from the sort's index (no NULLs in the key, one direction throughout)."""
    columns = _sort_key(sort)
    key = tuple_(*columns)
    # Bound with the columns' types: a time is compared as the database stores it.
    values = tuple_(
        *(
            literal(value, getattr(column, "type", None))
            for value, column in zip(cursor.key, columns, strict=True)
        )
    )
    smaller = sort.startswith("-") == cursor.forward
    # The first column's bound repeated alone: SQLite seeks an expression index with it (the
    # row value alone scans it from the start), PostgreSQL takes either.
    first, start = columns[0], values.clauses[0]
    if smaller:
        return and_(first <= start, key < values)
    return and_(first >= start, key > values)


def _keyset_rows(
    session: Session, statement: Select[Order], filters: OrderFilters, cursor: Cursor
) -> tuple[list[Order], list[tuple[Any, ...]], bool]:
    """The page's orders and their sort keys in list order, and whether more lie beyond."""
    sort = _sort_of(filters)
    statement = statement.where(_past_cursor(sort, cursor))
    if not cursor.forward:
        statement = statement.order_by(None).order_by(*_order_by(sort, reverse=True))
    rows = session.execute(statement.add_columns(*_sort_key(sort)).limit(filters.per_page + 1))
    found = [(row[0], tuple(row[1:])) for row in rows]
    beyond = len(found) > filters.per_page
    found = found[: filters.per_page]
    if not cursor.forward:
        found.reverse()
    return [order for order, _ in found], [key for _, key in found], beyond


def _count(statement: Select[Order], cap: int | None = None) -> Select[int]:
    matching = statement.with_only_columns(Order.id).order_by(None).limit(cap).subquery()
    return select(func.count()).select_from(matching)


def _offset_rows(
    session: Session,
    statement: Select[Order],
    sort: str,
    offset: int,
    limit: int,
    *,
    reverse: bool = False,
) -> list[tuple[Order, tuple[Any, ...]]]:
    """`limit` orders from `offset` on, with their sort keys; counted from the end when
    `reverse`, in list order either way."""
    if reverse:
        statement = statement.order_by(None).order_by(*_order_by(sort, reverse=True))
    rows = session.execute(
        statement.add_columns(*_sort_key(sort)).limit(limit).offset(offset)
    ).all()
    found = [(row[0], tuple(row[1:])) for row in rows]
    if reverse:
        found.reverse()
    return found


def search_orders(
    session: Session, filters: OrderFilters, *, with_lines: bool = False, shops_loaded: bool = False
) -> Page[Order]:
    """Return one page of the orders matching the filters, with shop and customer loaded.

    `shops_loaded`: the caller holds every shop in `session` (the list's filter offers them
    all), so each order finds its shop there rather than by a query of its own."""
    statement = _statement(session, filters)
    per_page = min(max(filters.per_page, 1), MAX_PER_PAGE)
    filters = replace(filters, per_page=per_page)
    sort = _sort_of(filters)

    def listed_with(customer: ORMOption) -> Select[Order]:
        return statement.options(
            *([] if shops_loaded else [selectinload(Order.shop)]),
            customer,
            *([selectinload(Order.lines)] if with_lines else []),
        )

    # The customer joined: one query fewer. Not past an OFFSET: the join would be made for
    # every order skipped (page 200 of a million: 10 → 21 ms).
    listed = listed_with(joinedload(Order.customer))
    cursor = filters.cursor
    more: bool | None = None
    searched = _searched_first_page(session, statement, listed, filters)
    if searched is not None:
        total, found = searched
        page = 1
        if total > COUNT_CAP:
            # The first 10,001 found are not the first page's: that is read in order.
            found = _offset_rows(session, listed, sort, 0, per_page)
            more = True
    elif cursor is None and filters.page <= 1:
        # The first page read first: when it is not full it is the whole list, and is not
        # read a second time to count it.
        found = _offset_rows(session, listed, sort, 0, per_page + 1)
        total = len(found)
        if total > per_page:
            total = _capped_count(session, statement)
            more = True
        page, found = 1, found[:per_page]
    else:
        # Counting a million rows on every page is what made the desk slow: past COUNT_CAP
        # the list says "more than" and pages on while a next page has orders.
        total = _capped_count(session, statement)
        if cursor is not None:
            items, keys, beyond = _keyset_rows(session, listed, filters, cursor)
            found = list(zip(items, keys, strict=True))
            # Going back, the first page is where no order lies before; going on, a page follows.
            page = max(cursor.page, 2) if cursor.forward or beyond else 1
            more = beyond if cursor.forward else True
        else:
            offset_listed = listed_with(selectinload(Order.customer))
            page, found, more = _numbered_page(session, statement, offset_listed, filters, total)
    capped = total > COUNT_CAP
    if cursor is None and not capped:
        more = None  # the count is exact: the page number says whether another follows
    items = [order for order, _ in found]
    result = Page(items, min(total, COUNT_CAP), page, per_page, more=more, capped=capped)
    if items and result.has_next:
        result.after = encode_cursor(Cursor(sort, found[-1][1], page + 1))
    if items and result.has_prev:
        result.before = encode_cursor(Cursor(sort, found[0][1], page - 1, forward=False))
    return result


def _searched_first_page(
    session: Session, statement: Select[Order], listed: Select[Order], filters: OrderFilters
) -> tuple[int, list[tuple[Order, tuple[Any, ...]]]] | None:
    """A search's first page and how many orders it finds (as far as COUNT_CAP + 1, and
    then no page), from one read of its matches; None when it is not a search's first page.

    The trigram index only gives candidates, each checked on the order's row: a search that
    finds thousands of orders paid that twice, once to count and once for the page."""
    if not filters.q or filters.cursor is not None or filters.page > 1:
        return None
    sort = _sort_of(filters)
    keys: list[ColumnElement[Any]] = [
        column.label(f"key_{n}") for n, column in enumerate(_sort_key(sort))
    ]
    matches = statement.with_only_columns(*keys).order_by(None).limit(COUNT_CAP + 1).cte("matches")
    counted = select(func.count()).select_from(matches).scalar_subquery()
    descending = sort.startswith("-")
    ordering = [column.desc() if descending else column.asc() for column in matches.c]
    rows = session.execute(
        select(counted, *matches.c).order_by(*ordering).limit(filters.per_page)
    ).all()
    if not rows:
        return 0, []
    total: int = rows[0][0]
    if total > COUNT_CAP:
        return total, []
    keys_by_id = {row[-1]: tuple(row[1:]) for row in rows}
    orders = session.scalars(listed.where(Order.id.in_(keys_by_id))).all()
    return total, [(order, keys_by_id[order.id]) for order in orders]


def _capped_count(session: Session, statement: Select[Order]) -> int:
    """How many orders match, counted as far as COUNT_CAP + 1."""
    return session.scalar(_count(statement, COUNT_CAP + 1)) or 0


def _numbered_page(
    session: Session,
    statement: Select[Order],
    listed: Select[Order],
    filters: OrderFilters,
    total: int,
) -> tuple[int, list[tuple[Order, tuple[Any, ...]]], bool]:
    """A page asked for by its number: its number (a page past the end is the last page), its
    orders with their sort keys, and whether a page follows."""
    per_page, sort = filters.per_page, _sort_of(filters)
    if total > COUNT_CAP and (filters.page - 1) * per_page >= COUNT_CAP:
        # Past what the capped count saw: OFFSET would read every order before the page, so
        # count them all once and read a page in the back half from the end instead. All
        # orders, unfiltered, are counted by the triggers already (web/state_counts.py).
        unfiltered = replace(filters, sort=DEFAULT_SORT, page=1, per_page=DEFAULT_PER_PAGE)
        if unfiltered == OrderFilters():
            total = state_counts.total(session)
        else:
            total = session.scalar(_count(statement)) or 0
    pages = paging.page_count(total, per_page)
    page = min(max(filters.page, 1), pages)
    offset = (page - 1) * per_page
    if total > COUNT_CAP and offset < COUNT_CAP:
        found = _offset_rows(session, listed, sort, offset, per_page + 1)
        return page, found[:per_page], len(found) > per_page
    size = max(min(per_page, total - offset), 0)
    from_end = total - offset - size
    if from_end < offset:
        found = _offset_rows(session, listed, sort, from_end, size, reverse=True)
    else:
        found = _offset_rows(session, listed, sort, offset, size)
    return page, found, page < pages


def get_order(session: Session, order_id: int) -> Order:
    """Load one order with everything its detail page shows, or raise NotFound."""
    statement = (
        select(Order)
        .where(Order.id == order_id)
        .options(
            joinedload(Order.shop),
            joinedload(Order.customer),
            joinedload(Order.shipping_mode),
            selectinload(Order.lines),
            selectinload(Order.transactions),
            selectinload(Order.shipments).selectinload(Shipment.parcels),
            selectinload(Order.shipments).selectinload(Shipment.lines),
            selectinload(Order.documents),
            selectinload(Order.comments).joinedload(Comment.author),
            selectinload(Order.events).joinedload(OrderEvent.actor_user),
        )
    )
    order = session.scalars(statement).unique().one_or_none()
    if order is None:
        raise NotFound(f"order {order_id} does not exist")
    return order


# --- Ids only: bulk work on the list, new-order awareness ----------------------------------


def matching_ids(session: Session, filters: OrderFilters, upto: int | None = None) -> list[int]:
    """Return the ids of every order matching the filters (all pages), in the list's order.

    With `upto`, only the orders up to that id: those the list showed when it was read.
    """
    statement = _statement(session, filters)
    if upto is not None:
        statement = statement.where(Order.id <= upto)
    return list(session.scalars(statement.with_only_columns(Order.id)))


def count_matching(session: Session, filters: OrderFilters, upto: int) -> int:
    """Count the orders matching the filters whose id is at most `upto`."""
    return session.scalar(_count(_statement(session, filters).where(Order.id <= upto))) or 0


def newest_order_id(session: Session) -> int:
    """Return the highest order id, 0 when there is no order: the list's watermark."""
    return session.scalar(select(func.max(Order.id))) or 0


def count_newer(session: Session, filters: OrderFilters, after_id: int) -> int:
    """Count the orders matching the filters whose id is above the watermark."""
    return session.scalar(_count(_statement(session, filters).where(Order.id > after_id))) or 0
