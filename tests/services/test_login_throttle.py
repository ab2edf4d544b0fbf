"""Two processes guessing the same account in parallel: the second waits for the first's
outcome (PostgreSQL row locks), so parallel guesses cannot slip in before a failure counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url
from web.db import make_engine, make_session_factory
from web.services import login_throttle
from web.services.login_throttle import Attempt

NOW = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = separate_database_url(tmp_path_factory.mktemp("throttle"), "throttle")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


@pytest.fixture()
def processes(database: str) -> Iterator[tuple[sessionmaker[Session], sessionmaker[Session]]]:
    engines = [make_engine(database), make_engine(database)]
    if engines[0].dialect.name == "sqlite":
        pytest.skip("SQLite has no row locks: one writer at a time, the burst is documented")
    yield make_session_factory(engines[0]), make_session_factory(engines[1])
    for engine in engines:
        engine.dispose()


def test_a_parallel_attempt_on_the_same_account_waits_for_the_first_ones_outcome(
    processes: tuple[sessionmaker[Session], sessionmaker[Session]],
) -> None:
    first, second = processes
    guess = Attempt("target@example.com", "198.51.100.1")
    other = Attempt("target@example.com", "198.51.100.2")
    with first.begin() as session:
        login_throttle.record_failure(session, guess, NOW)  # the account's row now exists

    with first() as holding:
        assert login_throttle.check(holding, guess, NOW) is None  # locks the account's row
        with second() as parallel:
            parallel.execute(text("SET LOCAL lock_timeout = '100ms'"))
            with pytest.raises(OperationalError, match="lock timeout"):
                login_throttle.check(parallel, other, NOW)
        # A different account from another address is not held up.
        with second() as unrelated:
            unrelated.execute(text("SET LOCAL lock_timeout = '100ms'"))
            assert (
                login_throttle.check(unrelated, Attempt("x@example.com", "192.0.2.9"), NOW) is None
            )
        for _ in range(5):
            login_throttle.record_failure(holding, guess, NOW)
        holding.commit()

    # Once the first attempts' failures are counted, the parallel one is refused unheard.
    with second() as parallel:
        wait = login_throttle.check(parallel, other, NOW)
        assert wait is not None and wait.scope == "account" and wait.wait_seconds == 1
