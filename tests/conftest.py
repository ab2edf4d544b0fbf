"""Shared fixtures: a migrated database (SQLite or PostgreSQL), sessions rolled back per test."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from web.db import make_engine

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _fresh_database_url(tmp_root: Path) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_root / 'comptoir-test.sqlite'}"


def reset_schema(engine: Engine) -> None:
    """Drop everything so the migrations run on an empty database."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


def migrate(url: str) -> None:
    from web.migrate import upgrade

    upgrade(url)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="comptoir-test-") as tmp:
        url = _fresh_database_url(Path(tmp))
        engine = make_engine(url)
        reset_schema(engine)
        engine.dispose()
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def db_session(engine: Engine) -> Iterator[Session]:
    """A session inside an outer transaction; commits become savepoints, all rolled back."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )
    try:
        yield session
    finally:
        session.close()
        outer.rollback()
        connection.close()
