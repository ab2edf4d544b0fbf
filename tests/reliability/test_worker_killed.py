"""Drill 8: the worker process killed with SIGKILL, again and again, while it applies the inbox
and pushes the outbox; after the last restart every inbox event is applied once and every
outbox message reaches the shop once.

The worker is the `flask --app web.wsgi worker` command that `make run` starts beside gunicorn
(bin/comptoir-run), on a database of its own, each time in a new process: forked from one that
imported the app once (forked_workers.py, as gunicorn's --preload does), so a restart costs
milliseconds rather than seconds of imports (tests/deploy/test_worker.py starts it cold). The
shop is the WooCommerce emulator over loopback HTTP. Each customer note is held a moment by
the shop, so many kills land while a push waits for its answer: the shop writes the note all
the same, and the next worker must find it there instead of writing it again. The lease of a
claimed message is shortened through APP_OUTBOX_LEASE_SECONDS so the next worker takes the dead
one's messages over in a second.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url, wait_until
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.reliability.conftest import drill_size
from tests.reliability.woocommerce import Applied, add_orders, applied, create_shop, receive
from web.db import make_engine
from web.models import (
    Comment,
    InboxEvent,
    Order,
    OrderEvent,
    OrderLine,
    OutboxMessage,
    Transaction,
)
from web.models.enums import CommentVisibility, InboxState, OutboxState
from web.services import comments, sync
from web.services.timeline import Actor

ROOT = Path(__file__).resolve().parents[2]

KILLS = drill_size(3, 30)
# Orders already on the desk (each gets customer notes to push) and orders still in the inbox.
DESK_ORDERS = drill_size(4, 60)
INBOX_ORDERS = drill_size(8, 150)
NOTES_PER_ORDER = 2
# How long the shop holds each new note before writing it and answering.
NOTE_HOLD_SECONDS = 0.25
LEASE_SECONDS = 1
# A kill comes this long after the worker said it started.
KILL_AFTER = (0.1, 1.2)
DRAIN_SECONDS = drill_size(60, 900)
SEED = int(os.environ.get("DRILL_SEED") or random.randrange(1_000_000))


@dataclass
class Backlog:
    events: int
    messages: int


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[str]:
    url = separate_database_url(tmp_path, "killed")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


def _backlog(sessions: sessionmaker[Session]) -> Backlog:
    open_events = (InboxState.PENDING, InboxState.FAILED)
    open_messages = (OutboxState.PENDING, OutboxState.FAILED)
    with sessions() as session:
        events = session.scalar(select(func.count()).where(InboxEvent.state.in_(open_events)))
        messages = session.scalar(
            select(func.count()).where(OutboxMessage.state.in_(open_messages))
        )
    return Backlog(int(events or 0), int(messages or 0))


def _posted(emulator: WooCommerceEmulator) -> int:
    """Notes the shop was asked to write so far (the held ones included)."""
    return len(emulator.requests_to("POST", "/notes"))


def _started(log: Path) -> None:
    wait_until(
        lambda: log.exists() and "worker: started" in log.read_text(), 60, "the worker to start"
    )


class ForkedWorkers:
    """Worker processes forked from one that imported the app once (forked_workers.py)."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.forked_workers"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _ask(self, line: str) -> str:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def ready(self) -> None:
        assert self.process.stdout is not None
        assert self.process.stdout.readline().strip() == "ready"

    def start(self, log: Path) -> int:
        pid = int(self._ask(f"start {log}"))
        _started(log)
        return pid

    def kill(self, pid: int) -> int:
        """SIGKILL the worker; the signal that ended it."""
        os.kill(pid, signal.SIGKILL)
        status = int(self._ask(f"wait {pid}"))
        return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0

    def stop(self, pid: int) -> int:
        """SIGTERM the worker, as bin/comptoir-run does; its exit code."""
        os.kill(pid, signal.SIGTERM)
        return os.waitstatus_to_exitcode(int(self._ask(f"wait {pid}")))

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _worker_env(database: str, encryption_key: str, tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("APP_") and key not in ("DATABASE_URL", "TEST_DATABASE_URL")
    }
    env.update(
        DATABASE_URL=database,
        APP_ENCRYPTION_KEY=encryption_key,
        APP_SECRET_KEY="drill-8",
        APP_INSTANCE_PATH=str(tmp_path / "instance"),
        APP_ALLOW_PRIVATE_SHOP_URLS="1",
        APP_OUTBOX_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    return env


@pytest.fixture()
def forks(database: str, encryption_key: str, tmp_path: Path) -> Iterator[ForkedWorkers]:
    """Importing the app takes seconds: it does so while the test prepares its data."""
    workers = ForkedWorkers(_worker_env(database, encryption_key, tmp_path))
    try:
        yield workers
    finally:
        workers.close()


def test_a_worker_killed_again_and_again_applies_and_delivers_everything_once(
    database: str, encryption_key: str, tmp_path: Path, forks: ForkedWorkers
) -> None:
    rng = random.Random(SEED)
    engine = make_engine(database)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    with WooCommerceEmulator() as emulator:
        desk_ids = add_orders(emulator, 7000, DESK_ORDERS)
        inbox_ids = add_orders(emulator, 8000, INBOX_ORDERS)
        create_shop(sessions, emulator)
        # The desk's orders, applied here; their reference lines and payments.
        receive(sessions, emulator, desk_ids)
        sync.process_pending(sessions)
        with sessions.begin() as session:
            for order in session.scalars(select(Order)):
                for n in range(NOTES_PER_ORDER):
                    comments.add_comment(
                        session,
                        order,
                        Actor.system("drill"),
                        f"Drill note {n} for order {order.external_id}",
                        CommentVisibility.CUSTOMER,
                    )
            expected_lines = session.scalar(
                select(func.count(OrderLine.id)).join(Order).where(Order.external_id == desk_ids[0])
            )
            expected_payments = session.scalar(
                select(func.count(Transaction.id))
                .join(Order)
                .where(Order.external_id == desk_ids[0])
            )
        receive(sessions, emulator, inbox_ids)
        notes = DESK_ORDERS * NOTES_PER_ORDER
        for _ in range(notes):
            emulator.slow_next(NOTE_HOLD_SECONDS, path_contains="/notes", method="POST")
        assert _backlog(sessions) == Backlog(INBOX_ORDERS, notes)

        # What each kill cut into: (inbox events, outbox messages) still open at that moment.
        cut: list[Backlog] = []
        started = time.monotonic()
        forks.ready()
        for run in range(KILLS):
            posted = _posted(emulator)
            pid = forks.start(tmp_path / f"worker-{run}.log")
            if run % 2:
                # Every other kill lands while the shop holds a note: the write happens, its
                # answer is lost, and the next worker must find the note instead of writing it.
                wait_until(lambda seen=posted: _posted(emulator) > seen, 30, "a push")
            else:
                time.sleep(rng.uniform(*KILL_AFTER))
            assert forks.kill(pid) == signal.SIGKILL
            cut.append(_backlog(sessions))
        # The shop finishes the writes the dead workers were waiting for.
        emulator.wait_idle(15)
        # The last restart: this one is left to finish the work.
        worker = forks.start(tmp_path / "worker-last.log")
        try:
            # Reduced: far less than the default lease of two minutes, so the setting must hold.
            wait_until(lambda: _backlog(sessions) == Backlog(0, 0), DRAIN_SECONDS, "the drain")
        finally:
            assert forks.stop(worker) == 0
        elapsed = time.monotonic() - started

        with sessions() as session:
            states = Counter(session.scalars(select(InboxEvent.state)))
            inbox = applied(session, desk_ids + inbox_ids, expected_lines, expected_payments)
            messages = Counter(session.scalars(select(OutboxMessage.state)))
            # Pushes whose answer a kill lost: the next worker found the note at the shop.
            found_at_shop = sum(
                1
                for details in session.scalars(
                    select(OrderEvent.details).where(OrderEvent.kind == "outbox.sent")
                )
                if details.get("written") is False
            )
            texts = list(session.execute(select(Order.external_id, Comment.text).join(Order)))
    engine.dispose()

    at_shop = Counter(
        (order_id, note["note"]) for order_id, found in emulator.notes.items() for note in found
    )
    lost_notes = sum(1 for key in texts if at_shop[key] == 0)
    duplicated_notes = sum(max(0, count - 1) for count in at_shop.values())
    kills_in_pushes = sum(1 for backlog in cut if backlog.messages)
    kills_in_inbox = sum(1 for backlog in cut if backlog.events)
    print(
        f"\ndrill 8 (seed {SEED}): {KILLS} SIGKILLs ({kills_in_pushes} with pushes open, "
        f"{kills_in_inbox} with inbox events open) in {elapsed:.1f} s; "
        f"{DESK_ORDERS + INBOX_ORDERS} orders ({INBOX_ORDERS} through the worker's inbox), "
        f"{len(texts)} notes pushed ({found_at_shop} found at the shop after a kill); "
        f"inbox: lost {inbox.lost}, duplicated {inbox.duplicated}, "
        f"half-written {inbox.half_written}; "
        f"outbox: lost {lost_notes}, duplicated {duplicated_notes}"
    )
    output = "".join(p.read_text() for p in sorted(tmp_path.glob("worker-*.log")))
    assert "Traceback" not in output, output
    assert len(texts) == DESK_ORDERS * NOTES_PER_ORDER
    assert set(states) == {InboxState.PROCESSED}, states
    assert set(messages) == {OutboxState.SENT}, messages
    assert inbox == Applied(lost=0, duplicated=0, half_written=0)
    assert (lost_notes, duplicated_notes) == (0, 0)
    assert sum(at_shop.values()) == len(texts)
    # The drill is only a drill if the kills cut into work under way.
    assert kills_in_pushes + kills_in_inbox >= 1
