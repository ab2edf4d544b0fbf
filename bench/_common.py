"""What several bench scripts share: percentiles, medians, a free port, and the databases.

Both databases: a script measures SQLite (a temporary file) and, when BENCH_DATABASE_URL
names a PostgreSQL server (bench/run_all.py starts a throwaway one and sets it), PostgreSQL
in a fresh database next to that URL's, dropped after the run.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from web.db import make_engine  # noqa: E402


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def median_ms(func: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def postgres_server_url() -> str:
    """The PostgreSQL server the benches may use (BENCH_DATABASE_URL), or ""."""
    return os.environ.get("BENCH_DATABASE_URL", "")


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A PostgreSQL cluster on loopback for this run, as tests/tools/run-suite.sh starts one."""
    workdir = tempfile.mkdtemp(prefix="comptoir-bench-pg.")
    os.chmod(workdir, 0o755)
    script = str(ROOT / "tests" / "tools" / "postgres.sh")
    data = f"{workdir}/data"
    try:
        url = subprocess.run(
            [script, "start", data, str(free_port())], check=True, capture_output=True, text=True
        ).stdout.strip()
        yield url
    finally:
        subprocess.run([script, "stop", data], check=False)
        subprocess.run(["rm", "-rf", workdir, f"{data}.initdb.log"], check=False)


@contextmanager
def fresh_postgres_database(url: str) -> Iterator[str]:
    """A new database next to the one named by `url`, dropped after the run."""
    sa_url = make_url(url)
    name = f"{sa_url.database}_bench_{os.getpid()}_{time.monotonic_ns() % 1_000_000}"
    admin = make_engine(str(sa_url.set(database="postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield sa_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextmanager
def bench_database(kind: str, tmp: str) -> Iterator[str]:
    """A fresh database of `kind` ("sqlite" or "postgresql") for one measurement."""
    if kind == "sqlite":
        folder = Path(tmp) / f"sqlite-{time.monotonic_ns()}"
        folder.mkdir()
        yield f"sqlite:///{folder}/bench.sqlite"
    else:
        with fresh_postgres_database(postgres_server_url()) as url:
            yield url


def database_kinds() -> list[str]:
    """SQLite always; PostgreSQL when BENCH_DATABASE_URL names a server."""
    return ["sqlite", "postgresql"] if postgres_server_url() else ["sqlite"]


# --- documents: the same HTML through the engines alone -----------------------------------


def bare_engines(assets: Mapping[str, Any]) -> dict[str, Callable[[str], bytes]]:
    """Print an HTML page (our assets inlined as data: URIs) with each engine alone: WeasyPrint
    with its defaults (no URL fetcher of ours, no PDF/A), and wkhtmltopdf through pdfkit when
    the program is installed — the baselines of the document benches."""
    import weasyprint

    from web.documents.render import inline_assets, wkhtmltopdf_binary

    engines: dict[str, Callable[[str], bytes]] = {
        "WeasyPrint alone": lambda page: weasyprint.HTML(
            string=inline_assets(page, assets)
        ).write_pdf()
    }
    binary = wkhtmltopdf_binary()
    if binary:
        import pdfkit

        config = pdfkit.configuration(wkhtmltopdf=binary)
        options = {"encoding": "UTF-8", "page-size": "A4", "quiet": ""}
        engines["wkhtmltopdf (pdfkit)"] = lambda page: pdfkit.from_string(
            inline_assets(page, assets), False, configuration=config, options=options
        )
    return engines


def deliver_woocommerce_orders(
    sessions: Any, shop_id: int, emulator: Any, ids: range, fixture: Path
) -> None:
    """Signed `order.created` deliveries of copies of `fixture` (one per id, also added to the
    shop emulator) through the webhook service into the inbox, 50 per transaction."""
    from web.models import Shop
    from web.services import intake

    payload = json.loads(fixture.read_text())
    batch: list[tuple[bytes, dict[str, str]]] = []
    for order_id in ids:
        order = copy.deepcopy(payload)
        order["id"] = order_id
        order["number"] = str(order_id)
        emulator.add_order(order)
        batch.append(emulator.webhook("order.created", order_id))
        if len(batch) == 50 or order_id == ids[-1]:
            with sessions.begin() as session:
                shop = session.get_one(Shop, shop_id)
                for body, headers in batch:
                    received = intake.receive_webhook(session, shop, body, headers)
                    assert received.event_id is not None and not received.duplicate
            batch.clear()


def measured_databases(
    report: Any, sqlite_only: bool = False
) -> Iterator[tuple[str, str, str, str]]:
    """Each database to measure, new and migrated, one after another: (kind, URL, a temporary
    folder, the encryption key configured); notes in `report` when PostgreSQL is not measured."""
    from cryptography.fernet import Fernet

    from web import crypto
    from web.migrate import upgrade

    kinds = ["sqlite"] if sqlite_only else database_kinds()
    if "postgresql" not in kinds:
        report.note("PostgreSQL not measured (no BENCH_DATABASE_URL)")
    with tempfile.TemporaryDirectory() as tmp:
        key = Fernet.generate_key().decode()
        crypto.configure(key, tmp)
        for kind in kinds:
            with bench_database(kind, tmp) as url:
                upgrade(url)
                yield kind, url, tmp, key
