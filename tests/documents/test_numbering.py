"""Delivery note numbers: one series per year, gapless and unique even when issued at once."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.documents.conftest import relay_order, ship
from web.db import make_engine, make_session_factory
from web.documents import delivery_notes
from web.documents.numbering import format_reference, next_number
from web.documents.storage import LocalStorage
from web.models import Document, NumberSeries, Shipment
from web.models.enums import DocumentKind
from web.services.timeline import Actor

ISSUERS = 12
ROLLED_BACK = {3, 7}  # these issuers give their number back


def test_numbers_count_per_kind_and_year(db_session: Session) -> None:
    day = dt.date(2026, 3, 2)
    taken = [next_number(db_session, DocumentKind.DELIVERY_NOTE, day) for _ in range(3)]
    assert [n.reference for n in taken] == ["BL-2026-000001", "BL-2026-000002", "BL-2026-000003"]
    assert next_number(db_session, DocumentKind.DELIVERY_NOTE, dt.date(2027, 1, 1)).reference == (
        "BL-2027-000001"
    )
    assert next_number(db_session, DocumentKind.INVOICE, day).reference == "FA-2026-000001"
    series = db_session.scalars(select(NumberSeries).where(NumberSeries.name == "BL-2026")).one()
    assert (series.last_number, series.last_issue_date) == (3, day)


def test_a_rolled_back_number_is_given_again(db_session: Session) -> None:
    day = dt.date(2026, 3, 2)
    next_number(db_session, DocumentKind.DELIVERY_NOTE, day)
    savepoint = db_session.begin_nested()
    assert next_number(db_session, DocumentKind.DELIVERY_NOTE, day).number == 2
    savepoint.rollback()
    assert next_number(db_session, DocumentKind.DELIVERY_NOTE, day).number == 2


def test_a_reference_has_six_digits() -> None:
    assert format_reference("BL-2026", 42) == "BL-2026-000042"
    assert format_reference("BL-2026", 1234567) == "BL-2026-1234567"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = separate_database_url(tmp_path_factory.mktemp("numbering"), "numbering")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


def test_issuers_at_once_get_gapless_unique_numbers(database: str, tmp_path: Path) -> None:
    """Twelve threads, each its own connection, issue at the same moment; two roll back.

    PostgreSQL: the series row is locked FOR UPDATE. SQLite: the write lock (BEGIN IMMEDIATE).
    """
    engine = make_engine(database, pool_size=ISSUERS, max_overflow=0)
    sessions = make_session_factory(engine)
    storage = LocalStorage(tmp_path / "documents")
    with sessions.begin() as session:
        order = relay_order(session)
        shipment_ids = [ship(session, order, {"MUG-BLEU": 1}).id for _ in range(ISSUERS)]
    start = threading.Barrier(ISSUERS)
    errors: list[BaseException] = []

    def issue(index: int, shipment_id: int) -> None:
        try:
            # Before the session: on SQLite a unit of work holds the write lock from its start.
            start.wait(timeout=30)
            with sessions() as session:
                shipment = session.get(Shipment, shipment_id)
                assert shipment is not None
                delivery_notes.issue_delivery_note(
                    session, shipment, Actor.system("test"), storage=storage
                )
                if index in ROLLED_BACK:
                    session.rollback()
                else:
                    session.commit()
        except BaseException as exc:  # reported below, with the thread's name
            errors.append(exc)

    threads = [
        threading.Thread(target=issue, args=(index, shipment_id), name=f"issuer-{index}")
        for index, shipment_id in enumerate(shipment_ids)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with sessions() as session:
        numbers = session.scalars(
            select(Document.number).where(Document.kind == DocumentKind.DELIVERY_NOTE)
        ).all()
        last = session.scalars(select(NumberSeries.last_number)).one()
    issued = ISSUERS - len(ROLLED_BACK)
    assert sorted(n for n in numbers if n is not None) == list(range(1, issued + 1))
    assert last == issued
    engine.dispose()
