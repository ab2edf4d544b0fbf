"""Two processes guessing the same account in parallel: the second waits for the first's
outcome (PostgreSQL row locks), so parallel guesses cannot slip in before a failure counts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url
from web.db import make_engine, make_session_factory
from web.models import AuditEvent, LoginThrottle
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


def test_a_failure_past_the_free_ones_returns_and_audits_the_wait(db_session: Session) -> None:
    attempt = Attempt("Someone@Example.com ", "")
    for _ in range(login_throttle.FREE_FAILURES[login_throttle.ACCOUNT]):
        assert login_throttle.record_failure(db_session, attempt, NOW) == []

    escalations = login_throttle.record_failure(db_session, attempt, NOW)

    assert escalations == [
        login_throttle.Throttled(login_throttle.ACCOUNT, NOW + dt.timedelta(seconds=1), NOW)
    ]
    assert escalations[0].wait_seconds == 1
    assert login_throttle.check(db_session, attempt, NOW) == escalations[0]
    audit = db_session.scalars(select(AuditEvent).where(AuditEvent.kind == "login.throttled")).one()
    assert audit.params == {
        "email": "someone@example.com",
        "failures": 6,
        "wait_seconds": 1,
        "scope": login_throttle.ACCOUNT,
    }
    # A client without an address is counted under one name rather than not at all.
    keys = db_session.scalars(
        select(LoginThrottle.key).where(LoginThrottle.scope == login_throttle.ADDRESS)
    ).all()
    assert keys == ["unknown"]


def test_a_count_exactly_a_quiet_day_old_still_counts(db_session: Session) -> None:
    owner = Attempt("owner@example.com", "192.0.2.1")
    for _ in range(login_throttle.FREE_FAILURES[login_throttle.ACCOUNT]):
        login_throttle.record_failure(db_session, owner, NOW)
    later = NOW + login_throttle.QUIET_RESET
    # Someone else fails at that very moment: counts quiet for longer than a day are dropped.
    login_throttle.record_failure(db_session, Attempt("other@example.com", "192.0.2.2"), later)

    escalations = login_throttle.record_failure(db_session, owner, later)

    assert [e.scope for e in escalations] == [login_throttle.ACCOUNT]
