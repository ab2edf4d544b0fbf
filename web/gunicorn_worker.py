"""gunicorn's gthread worker, with kept-alive connections shared out between the workers.

Every gthread worker polls the one listening socket and accepts whatever arrives while it has
room (`worker_connections`, 1,000). A kept-alive connection then stays with the worker that
accepted it, so connections opened together (a shop's burst of webhooks, the browsers of a
team arriving in the morning) mostly land on whichever worker woke first: measured under
bench/webhook_intake.py, one of two workers answered 1,778 of 2,032 deliveries, one core
doing the Python of both. Four alternated runs on PostgreSQL: 247–446 deliveries/s and p99
32–50 ms under gthread, depending on how its workers happened to split the connections;
455–485/s and 30–34 ms here.

`BalancedThreadWorker` holds back from accepting while it has at least as many connections as
threads and another worker has fewer: that worker, polling the same socket, takes the next.
Each worker writes its count and a heartbeat into a small table in memory shared through
fork (made by the arbiter, which builds every worker object before forking it). A worker not
heard from for `STALE` seconds (stuck) is left out, so a lost worker never keeps the others
from accepting; nor does a worker still booting, which has not written yet; a killed one's
slot the arbiter frees at once (gunicorn.conf.py's `child_exit`). While
it holds back, a worker looks again every `RECHECK` seconds (gthread otherwise sleeps up to a
second when nothing happens), so the connection waits for at most that long if the other
worker's count changed meanwhile.

gunicorn.conf.py names it as `worker_class`. It relies on gthread's loop as of gunicorn 27
(`nr_conns`, `worker_connections` read on each turn, `wait_for_and_dispatch_events`), hence
the pin in pyproject.toml; tests/deploy/test_gunicorn_worker.py checks it on a real server.
"""

from __future__ import annotations

import mmap
import struct
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

SLOTS = 64  # workers of one server at once, restarting ones included
STALE = 2.0  # seconds without a heartbeat after which a worker is left out
RECHECK = 0.01  # seconds between looks while holding back

_ENTRY = struct.Struct("=iid")  # pid (0 free, -1 reserved for a worker not started), count, beat
_RESERVED = -1


class Board:
    """How many connections each worker holds, in memory its forked children share."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, SLOTS * _ENTRY.size)

    def _read(self, slot: int) -> tuple[int, int, float]:
        pid, count, beat = _ENTRY.unpack_from(self._memory, slot * _ENTRY.size)
        return pid, count, beat

    def _write(self, slot: int, pid: int, count: int, beat: float) -> None:
        _ENTRY.pack_into(self._memory, slot * _ENTRY.size, pid, count, beat)

    def reserve(self, now: float) -> int | None:
        """A slot for a worker about to be forked: a free one, or one whose worker was not
        heard from lately; None when all SLOTS are taken (that worker then accepts as plain
        gthread does). Not one reserved for a worker still booting, however long it takes:
        should it die, the arbiter frees its slot (`child_exit`).

        Called by the arbiter only, one worker object after another, so two workers never
        take the same slot."""
        for slot in range(SLOTS):
            pid, _, beat = self._read(slot)
            if pid == 0 or (pid > 0 and now - beat > STALE):
                self._write(slot, _RESERVED, 0, now)
                return slot
        return None

    def publish(self, slot: int, pid: int, count: int, now: float) -> None:
        self._write(slot, pid, count, now)

    def release(self, slot: int) -> None:
        self._write(slot, 0, 0, 0.0)

    def fewer_elsewhere(self, slot: int, count: int, now: float) -> bool:
        """Whether another live worker holds fewer connections than `count`."""
        for other in range(SLOTS):
            if other == slot:
                continue
            pid, held, beat = self._read(other)
            if pid > 0 and now - beat <= STALE and held < count:
                return True
        return False


_board: Board | None = None


def shared_board() -> Board:
    """The arbiter's table, made on its first worker and inherited by every fork."""
    global _board
    if _board is None:
        _board = Board()
    return _board


class BalancedThreadWorker(ThreadWorker):
    """gthread, accepting only while no other worker has fewer connections (past its threads)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # in the arbiter, before the fork
        self.board = shared_board()
        self.slot = self.board.reserve(time.monotonic())

    @property
    def worker_connections(self) -> int:
        """The connections this worker may hold now: its own count when it holds back.

        gthread's loop accepts while `nr_conns < worker_connections`."""
        limit: int = self.cfg.worker_connections
        if self.slot is None:
            return limit
        if self.nr_conns >= self.cfg.threads and self.board.fewer_elsewhere(
            self.slot, self.nr_conns, time.monotonic()
        ):
            return min(limit, self.nr_conns)
        return limit

    @worker_connections.setter
    def worker_connections(self, _value: int) -> None:
        """gthread's __init__ sets it from the settings; the property reads them instead."""

    def publish(self) -> None:
        if self.slot is not None:
            self.board.publish(self.slot, self.pid, self.nr_conns, time.monotonic())

    def accept(self, listener: Any) -> None:
        super().accept(listener)
        self.publish()  # at once: the other worker may be choosing whether to accept too

    def wait_for_and_dispatch_events(self, timeout: float) -> None:
        self.publish()  # each turn of the loop: a heartbeat, and connections closed meanwhile
        if not self._accepting:
            timeout = min(timeout, RECHECK)
        super().wait_for_and_dispatch_events(timeout)

    def release_slot(self) -> None:
        """Free the worker's slot: as it stops, or in the arbiter once it has died
        (gunicorn.conf.py's `child_exit`), so a killed worker is not waited for until STALE."""
        if self.slot is not None:
            self.board.release(self.slot)

    def run(self) -> None:
        try:
            super().run()
        finally:
            self.release_slot()
