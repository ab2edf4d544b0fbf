"""Time the order desk's queries on a seeded database and print figures.

    .venv/bin/python bench/order_desk.py [--orders 3000] [--database-url URL]

Each figure is the median of several runs, with its ratio to a baseline measured in the
same run (fetching 25 orders by primary key), so machines of different speed compare.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet
from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.migrate import upgrade  # noqa: E402
from web.models import Order  # noqa: E402
from web.services import dashboard, order_queries  # noqa: E402
from web.services.demo import seed_demo  # noqa: E402


def median_ms(func: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=3000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.sqlite"
        crypto.configure(Fernet.generate_key().decode(), tmp)
        upgrade(url)
        sessions = make_session_factory(make_engine(url))
        started = time.perf_counter()
        with sessions.begin() as session:
            seed_demo(session, orders=args.orders)
        print(f"seeded {args.orders} orders in {time.perf_counter() - started:.1f} s ({url})")

        session: Session = sessions()
        some_ids = list(session.scalars(select(Order.id).limit(25)))

        def baseline() -> object:
            session.expunge_all()
            return list(session.scalars(select(Order).where(Order.id.in_(some_ids))))

        def listing(**filters: str) -> Callable[[], object]:
            parsed, errors = order_queries.parse_filters(filters)
            assert not errors, errors

            def run() -> object:
                session.expunge_all()
                return order_queries.search_orders(session, parsed)

            return run

        cases: dict[str, Callable[[], object]] = {
            "baseline: 25 orders by id": baseline,
            "list page 1 (newest first)": listing(),
            "list page 20": listing(page="20"),
            "search customer name": listing(q="martin"),
            "search SKU": listing(q="CONF-"),
            "filter paid + unfulfilled": listing(payment="paid", fulfilment="unfulfilled"),
            "filter ready to prepare": listing(ready="1"),
            "sort by total": listing(sort="-total"),
            "dashboard state counts": lambda: dashboard.state_counts(session),
            "dashboard 30 days": lambda: dashboard.orders_per_day(session, 30),
            "dashboard needs attention": lambda: dashboard.needs_attention(session),
        }
        base = median_ms(baseline, args.repeat)
        print(f"{'case':<32} {'median ms':>10} {'x baseline':>11}")
        for name, func in cases.items():
            value = median_ms(func, args.repeat)
            print(f"{name:<32} {value:>10.2f} {value / base:>11.1f}")
        session.close()


if __name__ == "__main__":
    main()
