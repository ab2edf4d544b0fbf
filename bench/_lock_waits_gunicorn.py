"""A gunicorn config for bench/webhook_intake.py --config: where SQLite's write time goes.

    .venv/bin/python bench/webhook_intake.py --config bench/lock_waits_gunicorn.py

Each gunicorn worker times, on its database connections, the statements that begin a write
transaction (waiting for SQLite's single write lock: `BEGIN IMMEDIATE`) and every other
statement, and prints count / total / p99 of each when it exits (after the run).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from sqlalchemy import event

_timings: dict[str, list[float]] = {}
_lock = threading.Lock()


def _kind(statement: str) -> str:
    return statement.split(None, 2)[0].upper() + (
        " IMMEDIATE" if "IMMEDIATE" in statement.upper() else ""
    )


def post_worker_init(worker: Any) -> None:
    engine = worker.wsgi.extensions["comptoir.engine"]

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def _after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        elapsed = time.perf_counter() - conn.info.pop("bench_started", time.perf_counter())
        with _lock:
            _timings.setdefault(_kind(statement), []).append(elapsed)


def worker_exit(_server: Any, worker: Any) -> None:
    lines = [f"worker {worker.pid}:"]
    for kind, samples in sorted(_timings.items()):
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        lines.append(
            f"  {kind:<18} {len(samples):>6} x  total {sum(samples):7.2f} s  "
            f"mean {1000 * sum(samples) / len(samples):6.2f} ms  p99 {1000 * p99:7.2f} ms"
        )
    print("\n".join(lines), flush=True)
