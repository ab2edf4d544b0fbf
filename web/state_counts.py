"""Order counts per combination of states, kept as they change instead of counted on each read.

The dashboard shows how many orders are in each commercial, fulfilment and payment state and
how many are flagged. Counting them reads every order (an index of a million entries: about
100 ms at 200,000 orders on PostgreSQL, growing with the years of orders). Instead, triggers on
`orders` write one row of `order_state_counts` per change: +1 for the combination of states an
order takes (inserted, or one of the six columns changed), -1 for the one it leaves (updated
away, or deleted). A read adds the rows up per combination; `compact()` folds them into one row
per combination, run by the worker's sync pass (`compact_if_needed`) and by maintenance.

Both databases run the same triggers in their own dialect. SQLite drops a table's triggers when
a migration rebuilds it in batch mode: call `create()` again after such a migration.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session, sessionmaker

from web.db import read_only
from web.models import OrderStateCount

STATES = (
    "commercial_state",
    "fulfilment_state",
    "payment_state",
    "on_hold",
    "needs_mapping",
    "needs_review",
)
"""The columns of `orders` counted, in the order of `order_state_counts`' own."""

COMPACT_AT = 500
"""The sync pass folds the rows once there are more than this many (a read adds them all)."""

_TRACK = "order_state_counts_track"
_COLUMNS = ", ".join(STATES)
_CHANGED = " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in STATES)


def _values(row: str, delta: int) -> str:
    values = ", ".join(f"{row}.{name}" for name in STATES)
    return f"INSERT INTO order_state_counts ({_COLUMNS}, delta) VALUES ({values}, {delta});"


def create(connection: Connection) -> None:
    """Create the triggers and count the orders already there."""
    run = connection.exec_driver_sql
    if connection.dialect.name == "postgresql":
        run(
            f"CREATE OR REPLACE FUNCTION {_TRACK}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN IF TG_OP <> 'INSERT' THEN {_values('OLD', -1)} END IF; "
            f"IF TG_OP <> 'DELETE' THEN {_values('NEW', 1)} END IF; RETURN NULL; END $$"
        )
        run("DROP TRIGGER IF EXISTS order_state_counts_insert_delete ON orders")
        run(
            "CREATE TRIGGER order_state_counts_insert_delete AFTER INSERT OR DELETE ON orders "
            f"FOR EACH ROW EXECUTE FUNCTION {_TRACK}()"
        )
        run("DROP TRIGGER IF EXISTS order_state_counts_update ON orders")
        run(
            f"CREATE TRIGGER order_state_counts_update AFTER UPDATE OF {_COLUMNS} ON orders "
            f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION {_TRACK}()"
        )
    else:
        changed = _CHANGED.replace("IS DISTINCT FROM", "IS NOT")
        for name, event, body in (
            ("insert", "AFTER INSERT ON orders", _values("NEW", 1)),
            ("delete", "AFTER DELETE ON orders", _values("OLD", -1)),
            (
                "update",
                f"AFTER UPDATE OF {_COLUMNS} ON orders WHEN {changed}",
                _values("OLD", -1) + " " + _values("NEW", 1),
            ),
        ):
            run(f"DROP TRIGGER IF EXISTS order_state_counts_{name}")
            run(f"CREATE TRIGGER order_state_counts_{name} {event} BEGIN {body} END")
    rebuild(connection)


def drop(connection: Connection) -> None:
    """Remove the triggers (the table is the models')."""
    run = connection.exec_driver_sql
    if connection.dialect.name == "postgresql":
        run("DROP TRIGGER IF EXISTS order_state_counts_insert_delete ON orders")
        run("DROP TRIGGER IF EXISTS order_state_counts_update ON orders")
        run(f"DROP FUNCTION IF EXISTS {_TRACK}()")
        return
    for name in ("insert", "delete", "update"):
        run(f"DROP TRIGGER IF EXISTS order_state_counts_{name}")


def rebuild(connection: Connection) -> None:
    """Count every order again, one row per combination: after a load that skipped the
    triggers (bench/datagen.py), or to repair. Takes a lock on `orders` against writers."""
    run = connection.exec_driver_sql
    if connection.dialect.name == "postgresql":
        run("LOCK TABLE orders IN SHARE MODE")
    run("DELETE FROM order_state_counts")
    run(
        f"INSERT INTO order_state_counts ({_COLUMNS}, delta) "
        f"SELECT {_COLUMNS}, count(*) FROM orders GROUP BY {_COLUMNS}"
    )


def compact(connection: Connection) -> None:
    """Fold the rows into one per combination (none for a combination no order has)."""
    fold = (
        f"INSERT INTO order_state_counts ({_COLUMNS}, delta) SELECT {_COLUMNS}, sum(delta) "
        "FROM {rows} GROUP BY " + _COLUMNS + " HAVING sum(delta) <> 0"
    )
    if connection.dialect.name == "postgresql":
        # One statement: a row committed meanwhile is either folded and deleted, or neither.
        connection.exec_driver_sql(
            "WITH gone AS (DELETE FROM order_state_counts RETURNING *) " + fold.format(rows="gone")
        )
        return
    # SQLite: the transaction holds the write lock, nobody adds a row in between.
    top = connection.scalar(select(func.max(OrderStateCount.id))) or 0
    connection.exec_driver_sql(fold.format(rows="order_state_counts WHERE id <= ?"), (top,))
    connection.exec_driver_sql("DELETE FROM order_state_counts WHERE id <= ?", (top,))


def compact_if_needed(sessions: sessionmaker[Session]) -> bool:
    """Compact when the rows passed COMPACT_AT; whether it did."""
    with sessions() as session:
        rows = read_only(session).scalar(select(func.count()).select_from(OrderStateCount)) or 0
    if rows <= COMPACT_AT:
        return False
    with sessions.begin() as session:
        compact(session.connection())
    return True


def read(session: Session) -> list[tuple[Any, ...]]:
    """Each combination of states some orders have, with their number, as the triggers left
    them: (commercial, fulfilment, payment, on hold, needs mapping, needs review, count)."""
    states = [getattr(OrderStateCount, name) for name in STATES]
    total = func.sum(OrderStateCount.delta)
    rows = session.execute(select(*states, total).group_by(*states).having(total != 0))
    return [tuple(row) for row in rows]


def total(session: Session) -> int:
    """How many orders there are, from the kept counts (a few dozen rows, not every order)."""
    return session.scalar(select(func.coalesce(func.sum(OrderStateCount.delta), 0))) or 0
