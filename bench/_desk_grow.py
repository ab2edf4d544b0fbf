"""Grow a desk database by cloning demo orders (a helper's tool, not a benchmark).

    .venv/bin/python bench/_desk_grow.py --database-url URL [--orders 200000] [--seed 2000]
        [--revision head]

Migrates to --revision, seeds --seed demo orders, then clones them with INSERT … SELECT
(lines, shipments and parcels with them) until --orders exist: each copy is shifted a week
back in time and gets its own number, external id and tracking numbers. Rerun with
`--revision head --orders 0` to migrate the grown database further.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import Connection, Table, func, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import Base, Order  # noqa: E402
from web.services.demo import seed_demo  # noqa: E402

KEY = "ZGVzay1wcm9iZS1rZXktZGVzay1wcm9iZS1rZXktMDA="
"""A fixed Fernet key, so that bench/_desk_probe.py reads the shops' secrets."""


def _shifted(conn: Connection, column: str, days: int) -> str:
    if conn.dialect.name == "postgresql":
        return f"{column} - interval '{days} days'"
    return f"datetime({column}, '-{days} days')"


def _clone(conn: Connection, table: Table, top: int, rewrite: dict[str, str]) -> None:
    names = [column.name for column in table.columns]
    values = [rewrite.get(name, name) for name in names]
    conn.execute(
        text(
            f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"SELECT {', '.join(values)} FROM {table.name} WHERE id <= {top}"
        )
    )


def grow(url: str, orders: int) -> None:
    engine = make_engine(url)
    tables = Base.metadata.tables
    with engine.begin() as conn:
        top = {
            name: conn.scalar(select(func.max(tables[name].c.id))) or 0
            for name in ("orders", "order_lines", "shipments", "parcels")
        }
    have = top["orders"]
    copy = 1
    while have < orders:
        started = time.perf_counter()
        with engine.begin() as conn:
            days = 7 * copy
            suffix = f"'-{copy}'"
            concat = "||"
            _clone(
                conn,
                tables["orders"],
                top["orders"],
                {
                    "id": f"id + {top['orders'] * copy}",
                    "number": f"number {concat} {suffix}",
                    "external_id": f"external_id {concat} {suffix}",
                    "placed_at": _shifted(conn, "placed_at", days),
                    "created_at": _shifted(conn, "created_at", days),
                    "updated_at": _shifted(conn, "updated_at", days),
                    "shop_updated_at": _shifted(conn, "shop_updated_at", days),
                },
            )
            _clone(
                conn,
                tables["order_lines"],
                top["order_lines"],
                {
                    "id": f"id + {top['order_lines'] * copy}",
                    "order_id": f"order_id + {top['orders'] * copy}",
                    "parent_line_id": f"parent_line_id + {top['order_lines'] * copy}",
                },
            )
            _clone(
                conn,
                tables["shipments"],
                top["shipments"],
                {
                    "id": f"id + {top['shipments'] * copy}",
                    "order_id": f"order_id + {top['orders'] * copy}",
                    "number": f"number {concat} {suffix}",
                    "idempotency_key": f"idempotency_key {concat} {suffix}",
                },
            )
            _clone(
                conn,
                tables["parcels"],
                top["parcels"],
                {
                    "id": f"id + {top['parcels'] * copy}",
                    "shipment_id": f"shipment_id + {top['shipments'] * copy}",
                    "tracking_number": f"tracking_number {concat} {suffix}",
                },
            )
        have += top["orders"]
        print(f"copy {copy}: {have} orders ({time.perf_counter() - started:.1f} s)", flush=True)
        copy += 1
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            for name in ("orders", "order_lines", "shipments", "parcels"):
                conn.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM too on PostgreSQL, as autovacuum would: index-only scans need it.
        conn.execute(text("VACUUM ANALYZE" if conn.dialect.name == "postgresql" else "ANALYZE"))
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--orders", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=2000)
    parser.add_argument("--revision", default="head")
    args = parser.parse_args()
    crypto.configure(KEY, Path(tempfile.mkdtemp()))
    upgrade(args.database_url, args.revision)
    engine = make_engine(args.database_url)
    sessions = make_session_factory(engine)
    with sessions.begin() as session:
        if not session.scalar(select(func.count()).select_from(Order)):
            started = time.perf_counter()
            seed_demo(session, orders=args.seed)
            print(f"seeded {args.seed} demo orders in {time.perf_counter() - started:.1f} s")
    engine.dispose()
    grow(args.database_url, args.orders)


if __name__ == "__main__":
    main()
