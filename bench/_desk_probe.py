"""Time the order desk's queries on a grown database (a helper's tool, not a benchmark).

    .venv/bin/python bench/_desk_probe.py --database-url URL [--repeat 9] [--only WORD]

Prints, per case, the median and the slowest of --repeat runs and the ratio of the median to
a baseline measured in the same run (25 orders fetched by id).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import _desk_grow  # noqa: E402

from web import crypto  # noqa: E402
from web.db import make_engine, make_session_factory  # noqa: E402
from web.models import Order, Parcel  # noqa: E402
from web.services import dashboard, order_queries, warehouse  # noqa: E402


def timings(func: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return sorted(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--only", default="", help="run the cases whose name holds this")
    parser.add_argument("--skip", default="", help="skip the cases whose name holds this")
    args = parser.parse_args()
    crypto.configure(_desk_grow.KEY, Path(tempfile.mkdtemp()))
    sessions = make_session_factory(make_engine(args.database_url))
    session: Session = sessions()
    total = session.scalar(select(Order.id).order_by(Order.id.desc()).limit(1)) or 0
    sample = session.get(Order, total // 3)
    assert sample is not None
    number, email = sample.number, sample.email
    tracking = session.scalar(
        select(Parcel.tracking_number).where(Parcel.tracking_number != "").offset(500).limit(1)
    )
    some_ids = list(session.scalars(select(Order.id).where(Order.id > total // 2).limit(25)))

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

    def by_cursor(sort: str) -> Callable[[], object]:
        """Page 2000 of the sort reached by cursor (the next link of page 1999)."""
        filters = order_queries.OrderFilters(sort=sort, page=1999)
        before = order_queries.search_orders(session, filters)
        session.rollback()
        return listing(sort=sort, after=before.after or "")

    cases: dict[str, Callable[[], object]] = {
        "list page 1": listing(),
        "list page 20": listing(page="20"),
        "list page 2000": listing(page="2000"),
        "list page 2000 by cursor": by_cursor("-placed_at"),
        "sort number page 2000": listing(sort="number", page="2000"),
        "sort number page 2000 by cursor": by_cursor("number"),
        "sort -total page 2000": listing(sort="-total", page="2000"),
        "sort -total page 2000 by cursor": by_cursor("-total"),
        "sort customer page 2000 by cursor": by_cursor("customer"),
        "filter paid+unfulfilled": listing(payment="paid", fulfilment="unfulfilled"),
        "filter ready": listing(ready="1"),
        "filter on hold": listing(on_hold="1"),
        "filter shop": listing(shop="demo-shopify"),
        "filter dates": listing(date_from="2025-01-01", date_to="2025-01-31"),
        "sort number": listing(sort="number"),
        "sort -total": listing(sort="-total"),
        "sort customer": listing(sort="customer"),
        "sort -customer": listing(sort="-customer"),
        f"search number {number}": listing(q=number),
        f"search email {email}": listing(q=email),
        "search name martin": listing(q="martin"),
        "search name élodie": listing(q="élodie"),
        "search SKU CONF-": listing(q="CONF-"),
        "search two terms": listing(q="martin lyon"),
        f"search tracking {tracking}": listing(q=tracking or "none"),
        "search nothing zzqx": listing(q="zzqx"),
        "count_newer": lambda: order_queries.count_newer(
            session, order_queries.OrderFilters(), total - 5
        ),
        "order page": lambda: order_queries.get_order(session, total // 3),
        "dashboard state counts": lambda: dashboard.state_counts(session),
        "dashboard 30 days": lambda: dashboard.orders_per_day(session, 30),
        "dashboard needs attention": lambda: dashboard.needs_attention(session),
        "warehouse queue": lambda: warehouse.queue_page(session, None),
        "warehouse mode counts": lambda: warehouse.mode_counts(session),
    }
    base = timings(baseline, args.repeat)
    print(f"{total} orders; baseline median {statistics.median(base):.2f} ms", flush=True)
    print(f"{'case':<44} {'median ms':>10} {'max ms':>9} {'x base':>7}")
    for name, func in cases.items():
        if (args.only and args.only not in name) or (args.skip and args.skip in name):
            continue
        func()
        samples = timings(func, args.repeat)
        median = statistics.median(samples)
        ratio = median / statistics.median(base)
        print(f"{name:<44} {median:>10.1f} {samples[-1]:>9.1f} {ratio:>7.1f}", flush=True)
        session.rollback()
    session.close()


if __name__ == "__main__":
    main()
