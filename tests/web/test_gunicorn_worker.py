"""The table gunicorn's workers share to spread kept-alive connections (web/gunicorn_worker.py).

tests/deploy/test_gunicorn_worker.py checks the worker itself on a real server."""

from __future__ import annotations

import os

import pytest

from web.gunicorn_worker import RECHECK, SLOTS, STALE, Board


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


def test_a_full_table_is_an_error_rather_than_two_workers_on_one_slot() -> None:
    board = Board()
    for _ in range(SLOTS):
        board.reserve(100.0)
    with pytest.raises(RuntimeError, match="more than 64 gunicorn workers"):
        board.reserve(100.0)


def test_fewer_elsewhere_counts_only_other_live_started_workers() -> None:
    board = Board()
    mine, other, booting = board.reserve(10.0), board.reserve(10.0), board.reserve(10.0)
    board.publish(mine, 1001, 4, 10.0)
    board.publish(other, 1002, 4, 10.0)
    assert not board.fewer_elsewhere(mine, 4, 10.0)  # as many: no one has fewer
    assert board.fewer_elsewhere(mine, 5, 10.0)  # the other has fewer than 5
    assert not board.fewer_elsewhere(other, 4, 10.0)
    # A reserved slot (a worker still booting, count 0) is not someone with fewer.
    assert booting not in (mine, other)
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
