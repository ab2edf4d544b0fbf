"""APP_OUTBOX_LEASE_SECONDS: how long a dispatcher's claim on a message holds (the reliability
drills shorten it; tests/reliability/test_worker_killed.py shows a shortened lease at work)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from web.app import create_app
from web.config import from_environment
from web.services import outbox


def test_the_setting_sets_the_lease_and_its_default_is_the_documented_one(
    app_overrides: dict[str, Any],
) -> None:
    try:
        setting = from_environment({"APP_OUTBOX_LEASE_SECONDS": "3"})
        create_app({**app_overrides, **setting})
        assert outbox.lease() == dt.timedelta(seconds=3)
        create_app(app_overrides)
        assert outbox.lease() == outbox.LEASE == dt.timedelta(minutes=2)
    finally:
        outbox.configure(outbox.LEASE)


def test_a_lease_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        outbox.configure(dt.timedelta(0))
    assert outbox.lease() == outbox.LEASE
