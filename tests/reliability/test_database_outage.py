"""Drill 10: PostgreSQL stopped and started again in the middle of intake.

Comptoir runs as in production: gunicorn (2 processes, 2 threads each) and the queue worker
beside it, on a PostgreSQL cluster of this test's own (started like tests/tools/postgres.sh,
so stopping it touches nobody else). Senders POST signed WooCommerce order.created
deliveries over loopback HTTP and, as a shop does, send a refused delivery again, unchanged.
Midway the cluster is stopped (`pg_ctl stop -m fast`), left down while deliveries keep
coming, then started again. Every answer is counted: during the outage 503 with
Retry-After, never a 500; afterwards every delivery is applied once, no order lacks its
lines or payments, no event is marked applied without its order, and the same gunicorn and
worker processes did it all (nothing was restarted).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import TEST_DATABASE_URL, migrate, wait_until
from tests.deploy.conftest import children_of, free_port, server_env, stop, wait_for_healthz
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import drill_size
from tests.reliability.woocommerce import Applied, add_orders, applied, create_shop
from web.db import make_engine
from web.models import InboxEvent, Order
from web.models.enums import InboxState

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_SH = ROOT / "tests" / "tools" / "postgres.sh"

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL,
    reason="PostgreSQL only: SQLite is a file inside the app's own processes, no server to stop",
)

DELIVERIES = drill_size(24, 400)
SENDERS = 4
WAIT_SECONDS = drill_size(120, 900)
# The outage lasts at least this long, and until this many deliveries were refused.
OUTAGE_SECONDS = 1.5
REFUSED_DURING_OUTAGE = 4
# A shop waits Retry-After (5 s) between tries; the senders come back sooner so the drill
# stays short, which asks more of the app, not less.
RETRY_PAUSE = 0.1


class Cluster:
    """A throwaway PostgreSQL cluster on a free loopback port, owned by the postgres user."""

    def __init__(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="comptoir-outage-"))
        self.workdir.chmod(0o755)  # the postgres user must reach its data folder
        self.data = self.workdir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/comptoir_test"

    def start(self) -> None:
        done = subprocess.run(
            [str(POSTGRES_SH), "start", str(self.data), str(self.port)],
            capture_output=True,
            text=True,
            check=True,
        )
        assert done.stdout.strip() == self.url

    def stop_fast(self) -> None:
        """Stop as an operator would for a restart: sessions ended, transactions rolled back."""
        pg_ctl = self._bin() / "pg_ctl"
        command = [str(pg_ctl), "-D", str(self.data), "-m", "fast", "-w", "stop"]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, capture_output=True, check=True)

    def remove(self) -> None:
        subprocess.run([str(POSTGRES_SH), "stop", str(self.data)], capture_output=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        Path(f"{self.data}.initdb.log").unlink(missing_ok=True)

    @staticmethod
    def _bin() -> Path:
        return sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))[
            -1
        ]


@pytest.fixture()
def cluster() -> Iterator[Cluster]:
    """Not started yet: the test starts it (and again after stopping it)."""
    cluster = Cluster()
    try:
        yield cluster
    finally:
        cluster.remove()


class Senders:
    """Threads POSTing deliveries, each sent again after a refusal until it is accepted.

    Deliveries come in batches (`feed`); the threads wait for more until `close`, so the
    drill decides which deliveries arrive before the outage and which during it.
    """

    def __init__(self, url: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> None:
        self.url = url
        self.pending = list(reversed(deliveries))
        self.closed = False
        self.answers: Counter[int] = Counter()
        self.refused_without_retry_after = 0
        self.accepted = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(SENDERS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def join(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "deliveries still refused"

    def feed(self, deliveries: list[tuple[bytes, dict[str, str]]]) -> None:
        with self.lock:
            self.pending[:0] = reversed(deliveries)

    def close(self) -> None:
        """No more batches: each thread stops once the pending deliveries are accepted."""
        with self.lock:
            self.closed = True

    def _next(self) -> tuple[bytes, dict[str, str]] | None:
        while True:
            with self.lock:
                if self.pending:
                    return self.pending.pop()
                if self.closed:
                    return None
            time.sleep(0.01)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while (delivery := self._next()) is not None:
                body, headers = delivery
                while True:
                    try:
                        response = client.post(self.url, content=body, headers=headers)
                    except httpx.HTTPError as exc:
                        with self.lock:
                            self.errors.append(repr(exc))
                        time.sleep(RETRY_PAUSE)
                        continue
                    with self.lock:
                        self.answers[response.status_code] += 1
                        if response.status_code == 503 and not response.headers.get("Retry-After"):
                            self.refused_without_retry_after += 1
                    if response.status_code == 200:
                        with self.lock:
                            self.accepted += 1
                        break
                    if response.status_code != 503:
                        with self.lock:
                            self.errors.append(f"{response.status_code}: {response.text[:300]}")
                        break
                    time.sleep(RETRY_PAUSE)


def test_postgresql_stopped_and_started_during_intake_loses_and_duplicates_nothing(
    cluster: Cluster, encryption_key: str, tmp_path: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = server_env(cluster.url, tmp_path, encryption_key, APP_LOG_FORMAT="text")
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("web", "worker")}
    gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"]
    launched = time.monotonic()
    # gunicorn imports the app while the cluster starts: it needs the database only to answer.
    web = subprocess.Popen(
        [*gunicorn, "--bind", f"127.0.0.1:{port}", "web.wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=logs["web"],
        stderr=subprocess.STDOUT,
    )
    worker: subprocess.Popen[bytes] | None = None
    with WooCommerceEmulator() as emulator:
        try:
            cluster.start()
            migrate(cluster.url)
            engine = make_engine(cluster.url)
            sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
            ids = add_orders(emulator, 5000, DELIVERIES)
            shop_key = create_shop(sessions, emulator)
            deliveries = [emulator.webhook("order.created", external_id) for external_id in ids]
            engine.dispose()  # the test's own connections must not outlive the server either
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "web.wsgi", "worker"],
                cwd=ROOT,
                env=env,
                stdout=logs["worker"],
                stderr=subprocess.STDOUT,
            )
            wait_for_healthz(base_url, web)
            startup = time.monotonic() - launched
            web_processes = sorted(children_of(web.pid))
            # A third arrives before the outage, the rest once the cluster is down: sent all
            # at once, the senders could finish while the cluster is still stopping, and
            # nothing would be refused.
            before = DELIVERIES // 3
            senders = Senders(f"{base_url}/hooks/woocommerce/{shop_key}", deliveries[:before])
            senders.start()
            wait_until(lambda: senders.accepted >= before, 60, "a third accepted")

            cluster.stop_fast()
            outage_started = time.monotonic()
            senders.feed(deliveries[before:])
            senders.close()
            health = httpx.get(f"{base_url}/healthz", timeout=10)
            wait_until(
                lambda: (
                    senders.errors
                    or senders.answers[503] >= REFUSED_DURING_OUTAGE
                    and time.monotonic() - outage_started >= OUTAGE_SECONDS
                ),
                30,
                "deliveries refused during the outage",
            )
            assert senders.errors == []
            accepted_during_outage = senders.accepted
            refused = senders.answers[503]
            cluster.start()
            outage = time.monotonic() - outage_started

            senders.join(WAIT_SECONDS)
            wait_until(lambda: _open_events(cluster.url) == 0, WAIT_SECONDS, "all applied")
            run = time.monotonic() - launched - startup
            assert httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200
            # The same processes served before, during and after: nothing was restarted.
            assert web.poll() is None and worker.poll() is None
            assert sorted(children_of(web.pid)) == web_processes
        finally:
            stop(web)
            if worker is not None:
                stop(worker)
            for log in logs.values():
                log.close()

    engine = make_engine(cluster.url)
    with Session(engine) as session:
        states = Counter(session.scalars(select(InboxEvent.state)))
        events = session.scalar(
            select(func.count(InboxEvent.id)).where(InboxEvent.topic == "order.created")
        )
        orphans = session.scalar(
            select(func.count(InboxEvent.id))
            .outerjoin(Order, Order.id == InboxEvent.order_id)
            .where(InboxEvent.state == InboxState.PROCESSED, Order.id.is_(None))
        )
        reference = session.scalars(select(Order).where(Order.external_id == ids[0])).one()
        inbox = applied(session, ids, len(reference.lines), len(reference.transactions))
    engine.dispose()

    print(
        f"\ndrill 10: cluster, schema and gunicorn ready in {startup:.1f} s; "
        f"{DELIVERIES} deliveries by {SENDERS} senders, applied in {run:.1f} s, "
        f"PostgreSQL down {outage:.1f} s of it; "
        f"answers {dict(sorted(senders.answers.items()))} "
        f"({refused} refused with 503 while down, {accepted_during_outage} accepted before); "
        f"lost {inbox.lost}, duplicated {inbox.duplicated}, "
        f"half-written {inbox.half_written}, events applied without their order {orphans}"
    )
    assert health.status_code == 503 and health.headers.get("Retry-After")
    assert senders.errors == []
    assert set(senders.answers) <= {200, 503}, senders.answers
    assert senders.refused_without_retry_after == 0
    assert refused >= REFUSED_DURING_OUTAGE
    assert senders.accepted == DELIVERIES
    assert events == DELIVERIES and set(states) == {InboxState.PROCESSED}, states
    assert orphans == 0
    assert inbox == Applied(lost=0, duplicated=0, half_written=0)
    assert len(reference.lines) > 0


def _open_events(url: str) -> int:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return int(
                session.scalar(
                    select(func.count(InboxEvent.id)).where(
                        InboxEvent.state.in_((InboxState.PENDING, InboxState.FAILED))
                    )
                )
                or 0
            )
    finally:
        engine.dispose()
