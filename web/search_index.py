"""The desk's search index: the one definition the migration and the queries share.

A search term matches an order when it is a substring of one of the order's searched texts,
both folded (lower case, accents stripped) and without the punctuation that joins the parts
of a reference (web.textfold.search_fold, since migration 0022: "mt-vase-m" is the one word
"mtvasem" for the trigram index, whose recheck of 24,530 candidates for 8,860 matches at 1 M
orders became 8,860): its number,
external id, e-mail and billing name or company; its customer's name and e-mail; one of its
lines' SKU; one of its parcels' tracking number. Each source's text is one SQL expression
(`_SOURCES`), compiled per database:

- PostgreSQL: every source's text of one order joined into one column, `orders.search_text`,
  kept by triggers (the order's own row before it is written; its lines, parcels and customer
  after theirs change), with a GIN trigram index (`pg_trgm`): a term is `search_text LIKE
  '%term%'` on the orders table itself, so the planner weighs it against the sort's index (a
  broad term walks the list in order and stops at the page; a rare one reads the index), and
  the index's recheck compares a stored text instead of folding each source again. Measured at
  200,000 orders: a name matching 4,780 orders went from 390 ms to 2 ms for the page.
- SQLite: an FTS5 table with the `trigram` tokenizer per source holding the folded text under
  the source row's id, kept in step by triggers; a term of three characters or more is a
  phrase MATCH (a substring search served by the index), a shorter one a LIKE over it.

The SQLite triggers call the fold function that `web.db` registers on every connection: a
connection opened elsewhere (the sqlite3 shell) cannot write these tables. A migration that
rebuilds one of them in batch mode drops its triggers: call `create()` again after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Dialect,
    Select,
    SQLColumnExpression,
    String,
    Table,
    column,
    func,
    literal_column,
    select,
    table,
    true,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from web.models import Base
from web.textfold import (
    ACCENT_FOLDS,
    LIGATURES,
    SEARCH_IGNORED,
    SQLITE_FOLD_FUNCTION,
    SQLITE_SEARCH_FOLD_FUNCTION,
    search_fold,
)

TRIGRAM = 3
"""The shortest term an index serves; shorter ones are read from every row."""


class folded(FunctionElement[str]):
    """SQL lower() that also strips accents, the same on SQLite and PostgreSQL."""

    type = String()
    name = "folded"
    inherit_cache = True


@compiles(folded)
def _compile_folded(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    argument = compiler.process(element.clauses, **kw)
    # Upper-case letters are listed too: lower() under a C locale leaves non-ASCII ones alone.
    accented = "".join(ACCENT_FOLDS.values())
    plain = "".join(base * len(letters) for base, letters in ACCENT_FOLDS.items())
    sql = f"translate(lower({argument}), '{accented}{accented.upper()}', '{plain}{plain}')"
    for ligature, spelled in LIGATURES.items():
        for char in (ligature, ligature.upper()):
            sql = f"replace({sql}, '{char}', '{spelled}')"
    return sql


@compiles(folded, "sqlite")
def _compile_folded_sqlite(element: folded, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"


class searchable(FunctionElement[str]):
    """folded() without the punctuation the search ignores (web.textfold.search_fold)."""

    type = String()
    name = "searchable"
    inherit_cache = True


@compiles(searchable)
def _compile_searchable(element: searchable, compiler: SQLCompiler, **kw: Any) -> str:
    argument = compiler.process(folded(*element.clauses), **kw)
    ignored = SEARCH_IGNORED.replace("'", "''")
    return f"translate({argument}, '{ignored}', '')"


@compiles(searchable, "sqlite")
def _compile_searchable_sqlite(element: searchable, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_SEARCH_FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"


def _fold(text: SQLColumnExpression[Any], *, punctuation: bool) -> ColumnElement[str]:
    """The searched form of a text: with its punctuation as before migration 0022, or not."""
    return folded(text) if punctuation else searchable(text)


def _joined(*parts: SQLColumnExpression[Any]) -> ColumnElement[str]:
    # Fields joined by a space: terms never contain one, so no term matches across two fields.
    text: Any = func.coalesce(parts[0], "")
    for part in parts[1:]:
        text = text + " " + func.coalesce(part, "")
    return text


def _orders_text(orders: Table) -> ColumnElement[str]:
    billing = orders.c.billing_address
    return _joined(
        orders.c.number,
        orders.c.external_id,
        orders.c.email,
        billing["first_name"].as_string(),
        billing["last_name"].as_string(),
        billing["company"].as_string(),
    )


def _customers_text(customers: Table) -> ColumnElement[str]:
    return _joined(customers.c.first_name, customers.c.last_name, customers.c.email)


def _tables() -> dict[str, Table]:
    return dict(Base.metadata.tables)


def _order_ids_of_orders(ids: Select[Any]) -> Select[Any]:
    return ids


def _order_ids_of_customers(ids: Select[Any]) -> Select[Any]:
    orders = _tables()["orders"]
    return select(orders.c.id).where(orders.c.customer_id.in_(ids))


def _order_ids_of_lines(ids: Select[Any]) -> Select[Any]:
    lines = _tables()["order_lines"]
    return select(lines.c.order_id).where(lines.c.id.in_(ids))


def _order_ids_of_parcels(ids: Select[Any]) -> Select[Any]:
    shipments, parcels = _tables()["shipments"], _tables()["parcels"]
    return (
        select(shipments.c.order_id)
        .join(parcels, parcels.c.shipment_id == shipments.c.id)
        .where(parcels.c.id.in_(ids))
    )


@dataclass(frozen=True)
class _Source:
    table: str
    columns: tuple[str, ...]
    text: Callable[[Table], ColumnElement[str]]
    order_ids: Callable[[Select[Any]], Select[Any]]

    @property
    def name(self) -> str:
        """The FTS5 table on SQLite, the index on PostgreSQL."""
        return f"{self.table}_search"

    def sql(self, dialect: Dialect, row: str | None = None, *, punctuation: bool = False) -> str:
        """The searched text as SQL for this database; of the trigger's row when named; with
        its punctuation kept as before migration 0022 when asked."""
        statement = _fold(self.text(_tables()[self.table]), punctuation=punctuation)
        sql = str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        return sql.replace(f"{self.table}.", f"{row}.") if row else sql


_SOURCES = (
    _Source(
        "orders",
        ("number", "external_id", "email", "billing_address"),
        _orders_text,
        _order_ids_of_orders,
    ),
    _Source(
        "customers",
        ("first_name", "last_name", "email"),
        _customers_text,
        _order_ids_of_customers,
    ),
    _Source("order_lines", ("sku",), lambda lines: lines.c.sku, _order_ids_of_lines),
    _Source(
        "parcels",
        ("tracking_number",),
        lambda parcels: parcels.c.tracking_number,
        _order_ids_of_parcels,
    ),
)


# --- Schema ----------------------------------------------------------------------------------


SORT_BY_NUMBER = "ix_orders_sort_number"
"""The order list sorted by number (shorter first: "#999" before "#1000"), an expression index
the models cannot describe, made here with the search's."""


DOCUMENT = "search_text"
"""PostgreSQL: the column of `orders` holding the folded text of every source of the order."""
DOCUMENT_INDEX = "ix_orders_search_text"
_DOCUMENT_OF = "comptoir_order_search_text"
"""PostgreSQL: the function computing an order's document from its row and related rows."""


def _fold_sql(dialect: Dialect, argument: str, *, punctuation: bool) -> str:
    statement = _fold(literal_column(argument, String()), punctuation=punctuation)
    return str(statement.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def _document_sql(dialect: Dialect, *, punctuation: bool) -> str:
    """The body of the document function: the order's own fields, then its customer's, its
    lines' SKUs and its parcels' tracking numbers, joined by spaces (terms never contain one),
    the same texts as the sources' on SQLite."""
    billing = ", ".join(
        f"o.billing_address ->> '{key}'" for key in ("first_name", "last_name", "company")
    )
    joined = (
        f"concat_ws(' ', o.number, o.external_id, o.email, {billing}, "
        "(SELECT concat_ws(' ', c.first_name, c.last_name, c.email) "
        "FROM customers c WHERE c.id = o.customer_id), "
        "(SELECT string_agg(l.sku, ' ' ORDER BY l.id) "
        "FROM order_lines l WHERE l.order_id = o.id), "
        "(SELECT string_agg(p.tracking_number, ' ' ORDER BY p.id) "
        "FROM shipments s JOIN parcels p ON p.shipment_id = s.id WHERE s.order_id = o.id))"
    )
    return f"SELECT {_fold_sql(dialect, joined, punctuation=punctuation)}"


def refresh_sql(where: str) -> str:
    """PostgreSQL: compute again the documents of the orders `o` the condition selects."""
    return f"UPDATE orders o SET {DOCUMENT} = {_DOCUMENT_OF}(o) WHERE {where}"


_REFRESH = refresh_sql("o.id IN")

# (trigger, table, timing and events, function); each function is created with its trigger.
# Statement triggers see the rows a statement wrote as `changed` (one UPDATE of the orders an
# INSERT of 3 lines touched, not 3); an UPDATE trigger cannot both name columns and see its
# rows as a table, so updates are per row and only when a searched column changed.
_TRIGGERS: tuple[tuple[str, str, str, str], ...] = (
    (
        "orders_search_text",
        "orders",
        "BEFORE INSERT OR UPDATE OF number, external_id, email, billing_address, customer_id "
        "ON orders FOR EACH ROW",
        f"BEGIN NEW.{DOCUMENT} := {_DOCUMENT_OF}(NEW); RETURN NEW; END",
    ),
    (
        "order_lines_search_insert",
        "order_lines",
        "AFTER INSERT ON order_lines REFERENCING NEW TABLE AS changed FOR EACH STATEMENT",
        f"BEGIN {_REFRESH} (SELECT order_id FROM changed); RETURN NULL; END",
    ),
    (
        "order_lines_search_delete",
        "order_lines",
        "AFTER DELETE ON order_lines REFERENCING OLD TABLE AS changed FOR EACH STATEMENT",
        f"BEGIN {_REFRESH} (SELECT order_id FROM changed); RETURN NULL; END",
    ),
    (
        "order_lines_search_update",
        "order_lines",
        "AFTER UPDATE OF sku, order_id ON order_lines FOR EACH ROW "
        "WHEN (OLD.sku IS DISTINCT FROM NEW.sku OR OLD.order_id <> NEW.order_id)",
        f"BEGIN {_REFRESH} (OLD.order_id, NEW.order_id); RETURN NULL; END",
    ),
    (
        "parcels_search_insert",
        "parcels",
        "AFTER INSERT ON parcels REFERENCING NEW TABLE AS changed FOR EACH STATEMENT",
        f"BEGIN {_REFRESH} (SELECT s.order_id FROM shipments s "
        "WHERE s.id IN (SELECT shipment_id FROM changed)); RETURN NULL; END",
    ),
    (
        "parcels_search_delete",
        "parcels",
        "AFTER DELETE ON parcels REFERENCING OLD TABLE AS changed FOR EACH STATEMENT",
        f"BEGIN {_REFRESH} (SELECT s.order_id FROM shipments s "
        "WHERE s.id IN (SELECT shipment_id FROM changed)); RETURN NULL; END",
    ),
    (
        "parcels_search_update",
        "parcels",
        "AFTER UPDATE OF tracking_number, shipment_id ON parcels FOR EACH ROW WHEN "
        "(OLD.tracking_number IS DISTINCT FROM NEW.tracking_number "
        "OR OLD.shipment_id <> NEW.shipment_id)",
        f"BEGIN {_REFRESH} (SELECT s.order_id FROM shipments s "
        "WHERE s.id IN (OLD.shipment_id, NEW.shipment_id)); RETURN NULL; END",
    ),
    (
        # A shipment deleted with its parcels: they are gone from the join before their own
        # trigger could find the order through it.
        "shipments_search_delete",
        "shipments",
        "AFTER DELETE ON shipments REFERENCING OLD TABLE AS changed FOR EACH STATEMENT",
        f"BEGIN {_REFRESH} (SELECT order_id FROM changed); RETURN NULL; END",
    ),
    (
        "customers_search_update",
        "customers",
        "AFTER UPDATE OF first_name, last_name, email ON customers FOR EACH ROW WHEN "
        "(OLD.first_name IS DISTINCT FROM NEW.first_name "
        "OR OLD.last_name IS DISTINCT FROM NEW.last_name OR OLD.email IS DISTINCT FROM NEW.email)",
        f"BEGIN {_REFRESH} (SELECT id FROM orders WHERE customer_id = NEW.id); RETURN NULL; END",
    ),
)


def _create_document(connection: Connection, *, punctuation: bool) -> None:
    """PostgreSQL: the document column, its function, triggers and index, filled."""
    run = connection.exec_driver_sql
    run("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    run(f"ALTER TABLE orders ADD COLUMN IF NOT EXISTS {DOCUMENT} text")
    run(
        f"CREATE OR REPLACE FUNCTION {_DOCUMENT_OF}(o orders) RETURNS text "
        f"LANGUAGE sql STABLE AS $$ {_document_sql(connection.dialect, punctuation=punctuation)} $$"
    )
    for trigger, table_name, when, body in _TRIGGERS:
        run(
            f"CREATE OR REPLACE FUNCTION {trigger}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ {body} $$"
        )
        run(f"DROP TRIGGER IF EXISTS {trigger} ON {table_name}")
        run(f"CREATE TRIGGER {trigger} {when} EXECUTE FUNCTION {trigger}()")
    run(refresh_sql("true"))
    run(
        f"CREATE INDEX IF NOT EXISTS {DOCUMENT_INDEX} ON orders USING gin ({DOCUMENT} gin_trgm_ops)"
    )


def drop_document(connection: Connection) -> None:
    """PostgreSQL: remove what _create_document() made."""
    run = connection.exec_driver_sql
    for trigger, table_name, _when, _body in _TRIGGERS:
        run(f"DROP TRIGGER IF EXISTS {trigger} ON {table_name}")
        run(f"DROP FUNCTION IF EXISTS {trigger}()")
    run(f"DROP INDEX IF EXISTS {DOCUMENT_INDEX}")
    run(f"DROP FUNCTION IF EXISTS {_DOCUMENT_OF}(orders)")
    run(f"ALTER TABLE orders DROP COLUMN IF EXISTS {DOCUMENT}")


def create_source_indexes(connection: Connection) -> None:
    """PostgreSQL before migration 0018: one trigram index per source's expression, which the
    query repeated (the index's recheck folded the source again for every candidate row)."""
    connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for source in _SOURCES:
        text = source.sql(connection.dialect, punctuation=True)
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {source.name} ON {source.table} "
            f"USING gin (({text}) gin_trgm_ops)"
        )


def drop_source_indexes(connection: Connection) -> None:
    for source in _SOURCES:
        connection.exec_driver_sql(f"DROP INDEX IF EXISTS {source.name}")


def create(
    connection: Connection, *, postgresql_document: bool = True, punctuation: bool = False
) -> None:
    """Create the index of every source and fill it from the rows already there.

    `postgresql_document=False` makes what migration 0015 made on PostgreSQL, one index per
    source, which 0018 replaced by the document; `punctuation=True` keeps the punctuation in
    the searched texts, as they were before migration 0022.
    """
    dialect = connection.dialect
    connection.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {SORT_BY_NUMBER} ON orders (length(number), number, id)"
    )
    if dialect.name == "postgresql":
        if postgresql_document:
            _create_document(connection, punctuation=punctuation)
        else:
            create_source_indexes(connection)
        return
    for source in _SOURCES:
        name, base = source.name, source.table
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(body, tokenize='trigram')"
        )
        connection.exec_driver_sql(f"DELETE FROM {name}")
        connection.exec_driver_sql(
            f"INSERT INTO {name} (rowid, body) "
            f"SELECT id, {source.sql(dialect, punctuation=punctuation)} FROM {base}"
        )
        new_text = source.sql(dialect, "NEW", punctuation=punctuation)
        connection.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {base} BEGIN "
            f"INSERT INTO {name} (rowid, body) VALUES (NEW.id, {new_text}); END"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {name}_update "
            f"AFTER UPDATE OF id, {', '.join(source.columns)} ON {base} BEGIN "
            f"DELETE FROM {name} WHERE rowid = OLD.id; "
            f"INSERT INTO {name} (rowid, body) VALUES (NEW.id, {new_text}); END"
        )
        connection.exec_driver_sql(
            f"CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {base} BEGIN "
            f"DELETE FROM {name} WHERE rowid = OLD.id; END"
        )


def drop(connection: Connection) -> None:
    """Remove what create() made (the pg_trgm extension stays: others may use it)."""
    connection.exec_driver_sql(f"DROP INDEX IF EXISTS {SORT_BY_NUMBER}")
    if connection.dialect.name == "postgresql":
        drop_document(connection)
        drop_source_indexes(connection)
        return
    for source in _SOURCES:
        for event in ("insert", "update", "delete"):
            connection.exec_driver_sql(f"DROP TRIGGER IF EXISTS {source.name}_{event}")
        connection.exec_driver_sql(f"DROP TABLE IF EXISTS {source.name}")


# --- Queries ---------------------------------------------------------------------------------


def _like_pattern(term: str) -> str:
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _matching_rows(source: _Source, dialect: Dialect, term: str) -> Select[Any]:
    if dialect.name == "postgresql":
        base = _tables()[source.table]
        text = literal_column(source.sql(dialect), String())
        return select(base.c.id).where(text.like(_like_pattern(term), escape="/"))
    fts = table(source.name, column("rowid"), column("body", String()))
    if len(term) >= TRIGRAM:
        phrase = '"' + term.replace('"', '""') + '"'
        return select(fts.c.rowid).where(fts.c.body.op("MATCH")(phrase))
    return select(fts.c.rowid).where(fts.c.body.like(_like_pattern(term), escape="/"))


def order_ids_matching(dialect: Dialect, term: str) -> Select[Any]:
    """The ids of the orders one of whose searched texts contains the term (SQLite)."""
    term = search_fold(term)
    selects = [source.order_ids(_matching_rows(source, dialect, term)) for source in _SOURCES]
    union = selects[0].union(*selects[1:])
    return select(union.subquery().c[0])


def order_matches(
    dialect: Dialect, order_id: SQLColumnExpression[int], term: str
) -> ColumnElement[bool]:
    """Whether the order of `order_id` (a column of `orders`) has the term in one of its
    searched texts, both folded and without their joining punctuation: its document on
    PostgreSQL, the sources' indexes on SQLite. A term of joining punctuation only ("-", "/")
    asks for nothing."""
    term = search_fold(term)
    if not term:
        return true()
    if dialect.name == "postgresql":
        document = literal_column(f"orders.{DOCUMENT}", String())
        return document.like(_like_pattern(term), escape="/")
    return order_id.in_(order_ids_matching(dialect, term))


def is_search_object(name: str | None) -> bool:
    """Whether a table or index is this module's (FTS5 tables and their shadow tables
    included), for schema comparisons that know only the models."""
    names = {source.name for source in _SOURCES}
    return name is not None and (
        name in names
        or name.rsplit("_", 1)[0] in names
        or name in (SORT_BY_NUMBER, DOCUMENT, DOCUMENT_INDEX)
    )
