"""The outbox's retry policy, pinned to what its comments and the README promise: 5 s doubling
with jitter, capped at an hour, never before a shop's Retry-After, 12 attempts, a 2-minute lease.

Delivery tests (tests/sync/test_outbox_delivery.py) read these values from the module, so a
changed constant would pass them; these tests say what the values are."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator

import pytest

from web.services import outbox

SECOND = dt.timedelta(seconds=1)
# The ceiling of the wait after each failed attempt: 5 s doubling, an hour at most.
CEILINGS = [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]


@pytest.fixture()
def seeded() -> Iterator[None]:
    """A fixed jitter sequence, the process's random state put back after."""
    state = random.getstate()
    random.seed(20261203)
    yield
    random.setstate(state)


def test_the_documented_limits() -> None:
    assert outbox.MAX_ATTEMPTS == 12
    assert outbox.BASE_DELAY == 5 * SECOND
    assert outbox.MAX_DELAY == dt.timedelta(hours=1)
    assert outbox.LEASE == dt.timedelta(minutes=2)
    assert outbox.PUSH_TIMEOUT == 10.0


@pytest.mark.usefixtures("seeded")
def test_each_wait_is_between_half_its_ceiling_and_its_ceiling() -> None:
    for attempts, ceiling in enumerate(CEILINGS, start=1):
        for _ in range(50):
            wait = outbox.backoff(attempts)
            assert ceiling * SECOND / 2 <= wait <= ceiling * SECOND, (attempts, wait)


@pytest.mark.usefixtures("seeded")
def test_the_jitter_spreads_the_waits_over_their_range() -> None:
    # Shops recovering from an outage must not get every retry in the same second.
    waits = [outbox.backoff(3).total_seconds() for _ in range(200)]
    assert min(waits) < 12 and max(waits) > 18  # ceiling 20 s: 10 to 20 s
    assert len({round(w, 3) for w in waits}) > 150


def test_a_shops_retry_after_is_honoured_up_to_the_hour() -> None:
    assert outbox.backoff(1, retry_after=120) == 120 * SECOND
    assert outbox.backoff(11, retry_after=1.5) >= 1800 * SECOND  # the backoff is longer
    assert outbox.backoff(1, retry_after=7200) == dt.timedelta(hours=1)


@pytest.mark.usefixtures("seeded")
def test_a_shop_down_for_good_is_given_up_on_after_one_to_two_and_a_half_hours() -> None:
    # The waits between the 12 attempts: 11 of them, each half its ceiling at least.
    shortest = sum(CEILINGS[:-1]) / 2
    longest = sum(CEILINGS[:-1])
    assert (shortest, longest) == (4357.5, 8715)
    total = sum((outbox.backoff(n) for n in range(1, outbox.MAX_ATTEMPTS)), dt.timedelta())
    assert shortest * SECOND <= total <= longest * SECOND


def test_a_list_of_shop_ids_too_long_for_its_column_keeps_only_whole_ids() -> None:
    ids = ",".join(str(5801234567890 + n) for n in range(40))  # 559 characters
    kept = outbox._whole_ids(ids, 500)
    assert kept.split(",") == ids.split(",")[:35]
    assert outbox._whole_ids(ids[:69], 500) == ids[:69]
    assert outbox._whole_ids("1234,5678", 9) == "1234,5678"
    assert outbox._whole_ids("1234,5678", 8) == "1234"
    assert outbox._whole_ids("123456789", 5) == "12345"  # one id longer than the column
