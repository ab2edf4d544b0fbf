"""The table gunicorn's workers share to spread kept-alive connections (web/gunicorn_worker.py).

tests/deploy/test_gunicorn_worker.py checks the worker itself on a real server."""

from __future__ import annotations

import os
import runpy
import time
from pathlib import Path
from unittest.mock import patch

from gunicorn.config import Config

from web.gunicorn_worker import RECHECK, SLOTS, STALE, BalancedThreadWorker, Board

ROOT = Path(__file__).resolve().parents[2]


def test_the_documented_limits() -> None:
    assert (SLOTS, STALE, RECHECK) == (64, 2.0, 0.01)


def test_each_worker_gets_a_slot_of_its_own_and_a_released_one_is_reused() -> None:
    board = Board()
    first, second = board.reserve(100.0), board.reserve(100.0)
    assert (first, second) == (0, 1)
    board.release(first)
    assert board.reserve(100.5) == first
    assert board.reserve(100.5) == 2


def test_a_slot_not_heard_from_lately_goes_to_the_next_worker() -> None:
    board = Board()
    slot = board.reserve(100.0)
    board.publish(slot, 4242, 3, 100.0)
    assert board.reserve(100.0 + STALE) == 1  # still within STALE: kept
    assert board.reserve(100.0 + STALE + 0.01) == slot
    # A slot reserved for a worker still booting stays its own, however long the boot.
    assert board.reserve(200.0) == 2


def test_past_the_table_a_worker_gets_no_slot_rather_than_anothers() -> None:
    board = Board()
    assert [board.reserve(100.0) for _ in range(SLOTS)] == list(range(SLOTS))
    assert board.reserve(100.0) is None


def test_fewer_elsewhere_counts_only_other_live_started_workers() -> None:
    board = Board()
    mine, other, booting = board.reserve(10.0), board.reserve(10.0), board.reserve(10.0)
    board.publish(mine, 1001, 4, 10.0)
    board.publish(other, 1002, 4, 10.0)
    assert not board.fewer_elsewhere(mine, 4, 10.0)  # as many: no one has fewer
    assert board.fewer_elsewhere(mine, 5, 10.0)  # the other has fewer than 5
    assert not board.fewer_elsewhere(other, 4, 10.0)
    # The reserved slot (a worker still booting, count 0) is not someone with fewer.
    assert booting is not None
    assert not board.fewer_elsewhere(mine, 1, 10.0)
    board.publish(other, 1002, 0, 10.0)
    assert board.fewer_elsewhere(mine, 1, 10.0 + STALE)
    # Not heard from for longer than STALE: left out, whatever it last said.
    assert not board.fewer_elsewhere(mine, 1, 10.0 + STALE + 0.01)
    # Its own slot never counts, however few it published.
    board.publish(mine, 1001, 0, 10.0)
    board.release(other)
    assert not board.fewer_elsewhere(mine, 9, 10.0)


def test_a_forked_child_writes_where_its_parent_reads() -> None:
    board = Board()
    parent, child = board.reserve(50.0), board.reserve(50.0)
    board.publish(parent, os.getpid(), 6, 50.0)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        board.publish(child, os.getpid(), 2, 50.0)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert board.fewer_elsewhere(parent, 6, 50.0)
    assert not board.fewer_elsewhere(parent, 2, 50.0)


def arbiters_worker(threads: int = 2) -> BalancedThreadWorker:
    """A worker object as gunicorn's arbiter builds it before forking."""
    cfg = Config()
    cfg.set("threads", threads)
    return BalancedThreadWorker(1, os.getpid(), [], None, 30, cfg, None)


def test_the_worker_holds_back_past_its_threads_only_while_another_has_fewer() -> None:
    worker = arbiters_worker(threads=2)
    shared, worker.board = worker.board, Board()
    shared.release(worker.slot)
    worker.slot = worker.board.reserve(time.monotonic())
    other = worker.board.reserve(time.monotonic())
    assert other is not None
    worker.pid = 4000
    worker.board.publish(other, 4001, 1, time.monotonic())
    worker.nr_conns = 1  # fewer than its threads: accepts whatever the others hold
    assert worker.worker_connections == 1000
    worker.nr_conns = 2  # as many as its threads, and the other has 1: holds back
    assert worker.worker_connections == 2
    worker.board.publish(other, 4001, 2, time.monotonic())  # the other as many: accepts
    assert worker.worker_connections == 1000
    worker.board.publish(other, 4001, 0, time.monotonic() - STALE - 1)  # silent: accepts
    assert worker.worker_connections == 1000
    worker.slot = None  # no slot left for it in the table: plain gthread
    worker.board.publish(other, 4001, 0, time.monotonic())
    assert worker.worker_connections == 1000


def test_the_arbiter_frees_a_dead_workers_slot_through_child_exit() -> None:
    worker = arbiters_worker()
    assert worker.slot is not None
    worker.pid = 4100
    worker.publish()
    sibling = arbiters_worker()
    assert sibling.slot is not None and sibling.slot != worker.slot
    sibling.nr_conns, sibling.pid = 5, 4101
    assert worker.board.fewer_elsewhere(sibling.slot, 5, time.monotonic())
    with patch.dict(os.environ):  # the settings file sets defaults in the environment
        child_exit = runpy.run_path(str(ROOT / "gunicorn.conf.py"))["child_exit"]
    child_exit(None, worker)  # killed: no heartbeat for STALE, but no wait either
    assert not worker.board.fewer_elsewhere(sibling.slot, 5, time.monotonic())
    child_exit(None, sibling)
