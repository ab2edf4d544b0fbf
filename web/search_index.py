"""The desk's search index: the one definition the migration and the queries share.

A search term matches an order when it is a substring of one of the order's searched texts,
folded (lower case, accents stripped): its number, external id, e-mail and billing name or
company; its customer's name and e-mail; one of its lines' SKU; one of its parcels' tracking
number. Each source's text is one SQL expression (`_SOURCES`), compiled per database:

- PostgreSQL: a GIN trigram index (`pg_trgm`) on the expression; the query repeats the
  expression verbatim, so `LIKE '%term%'` is served by the index.
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
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from web.models import Base
from web.textfold import ACCENT_FOLDS, LIGATURES, SQLITE_FOLD_FUNCTION

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


def _joined(*parts: SQLColumnExpression[Any]) -> ColumnElement[str]:
    # Fields joined by a space: terms never contain one, so no term matches across two fields.
    text: Any = func.coalesce(parts[0], "")
    for part in parts[1:]:
        text = text + " " + func.coalesce(part, "")
    return folded(text)


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

    def sql(self, dialect: Dialect, row: str | None = None) -> str:
        """The folded text as SQL for this database; of the trigger's row when named."""
        statement = self.text(_tables()[self.table])
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
    _Source("order_lines", ("sku",), lambda lines: folded(lines.c.sku), _order_ids_of_lines),
    _Source(
        "parcels",
        ("tracking_number",),
        lambda parcels: folded(parcels.c.tracking_number),
        _order_ids_of_parcels,
    ),
)


# --- Schema ----------------------------------------------------------------------------------


SORT_BY_NUMBER = "ix_orders_sort_number"
"""The order list sorted by number (shorter first: "#999" before "#1000"), an expression index
the models cannot describe, made here with the search's."""


def create(connection: Connection) -> None:
    """Create the index of every source and fill it from the rows already there."""
    dialect = connection.dialect
    connection.exec_driver_sql(
        f"CREATE INDEX IF NOT EXISTS {SORT_BY_NUMBER} ON orders (length(number), number, id)"
    )
    if dialect.name == "postgresql":
        connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for source in _SOURCES:
            connection.exec_driver_sql(
                f"CREATE INDEX IF NOT EXISTS {source.name} ON {source.table} "
                f"USING gin (({source.sql(dialect)}) gin_trgm_ops)"
            )
        return
    for source in _SOURCES:
        name, base = source.name, source.table
        connection.exec_driver_sql(
            f"CREATE VIRTUAL TABLE IF NOT EXISTS {name} USING fts5(body, tokenize='trigram')"
        )
        connection.exec_driver_sql(f"DELETE FROM {name}")
        connection.exec_driver_sql(
            f"INSERT INTO {name} (rowid, body) SELECT id, {source.sql(dialect)} FROM {base}"
        )
        new_text = source.sql(dialect, "NEW")
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
    for source in _SOURCES:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {source.name}")
            continue
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
    """The ids of the orders one of whose searched texts contains the folded term."""
    selects = [source.order_ids(_matching_rows(source, dialect, term)) for source in _SOURCES]
    union = selects[0].union(*selects[1:])
    return select(union.subquery().c[0])


def is_search_object(name: str | None) -> bool:
    """Whether a table or index is this module's (FTS5 tables and their shadow tables
    included), for schema comparisons that know only the models."""
    names = {source.name for source in _SOURCES}
    return name is not None and (
        name in names or name.rsplit("_", 1)[0] in names or name == SORT_BY_NUMBER
    )
