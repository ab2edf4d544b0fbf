"""Invoice numbers under load: 200 issues at once take 1..200, and a failed issue takes none.

The race runs on PostgreSQL only, with threads holding their own connections on a database
of the module's own (SQLite's write transactions never interleave: there is no race). The
failures run on both databases.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.documents.conftest import complete_company
from tests.factories import make_line, make_order, make_shop
from web.db import make_engine, make_session_factory
from web.documents import invoices
from web.documents.render import Asset, Renderer, ResourceRefused, WeasyPrintEngine
from web.documents.storage import LocalStorage, StorageError
from web.models import Document, NumberSeries, Order
from web.models.enums import DocumentKind
from web.services.timeline import Actor

ACTOR = Actor.system("test")
ISSUES = 200
THREADS = 8
FAIL_EVERY = 11  # one storage write in 11 fails during the race: 220 attempts, 200 invoices


class PrintedOnce:
    """WeasyPrint's PDF/A-3b of the first invoice, then the same pages for every other: the
    race is about numbers, not layout (200 prints would take minutes on a shared machine;
    the failure tests below and tests/documents/test_invoices.py print each one). The
    pages are a real PDF, so whatever is embedded in them afterwards (Factur-X) still is."""

    name = "weasyprint-once"

    def __init__(self) -> None:
        self.engine = WeasyPrintEngine(pdf_variant="pdf/a-3b")
        self.lock = threading.Lock()
        self.printed: bytes | None = None

    def pdf(self, html: str, assets: Mapping[str, Asset]) -> bytes:
        with self.lock:
            if self.printed is None:
                self.printed = self.engine.pdf(html, assets)
            return self.printed


class BrokenEngine:
    """An engine that fails mid-print, as WeasyPrint does when a template asks for a URL."""

    name = "broken"

    def pdf(self, html: str, assets: Mapping[str, Asset]) -> bytes:
        raise ResourceRefused("https://tracker.example/pixel.png")


class FailingStorage(LocalStorage):
    """A storage whose writes fail (a full disk, S3 down) — every one, or one in `every`."""

    def __init__(self, root: Path, every: int = 1) -> None:
        super().__init__(root)
        self.every = every
        self.calls = itertools.count(1)
        self.lock = threading.Lock()
        self.failed = 0

    def put(self, key: str, data: bytes) -> None:
        with self.lock:
            fail = next(self.calls) % self.every == 0
            self.failed += fail
        if fail:
            raise StorageError(f"could not write {key}")
        super().put(key, data)


@pytest.fixture()
def parallel_sessions(parallel_database: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on the module's database, a connection per thread; skipped on SQLite."""
    engine = make_engine(parallel_database, pool_size=THREADS, max_overflow=0)
    if engine.dialect.name == "sqlite":
        engine.dispose()
        pytest.skip("SQLite write transactions never interleave: nothing to race")
    yield make_session_factory(engine)
    engine.dispose()


def test_200_concurrent_issues_take_numbers_1_to_200_without_gap_or_duplicate(
    parallel_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    attempts = ISSUES + ISSUES // (FAIL_EVERY - 1)
    with parallel_sessions.begin() as session:
        complete_company(session)
        shop = make_shop(session, "concurrence")
        orders = [
            make_order(session, shop, [make_line("MUG", 1, "12.00")]) for _ in range(attempts)
        ]
        order_ids = [order.id for order in orders]
    storage = FailingStorage(tmp_path / "documents", every=FAIL_EVERY)
    renderer = Renderer(PrintedOnce())
    start = threading.Barrier(THREADS)
    errors: list[BaseException] = []
    refused: list[int] = []

    def issuer(ids: list[int]) -> None:
        start.wait()
        for order_id in ids:
            try:
                with parallel_sessions.begin() as session:
                    order = session.get_one(Order, order_id)
                    invoices.issue_invoice(
                        session, order, ACTOR, storage=storage, renderer=renderer
                    )
            except StorageError:
                refused.append(order_id)
            except BaseException as exc:  # reported below, with the thread's other failures
                errors.append(exc)

    threads = [
        threading.Thread(target=issuer, args=(order_ids[index::THREADS],))
        for index in range(THREADS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert storage.failed == len(refused) == attempts - ISSUES
    with parallel_sessions() as session:
        rows = session.execute(
            select(Document.number, Document.reference, Document.order_id).where(
                Document.kind == DocumentKind.INVOICE
            )
        ).all()
        series = session.scalars(select(NumberSeries)).all()
    numbers = sorted(number for number, _reference, _order in rows)
    assert numbers == list(range(1, ISSUES + 1))
    assert len({reference for _number, reference, _order in rows}) == ISSUES
    assert {order for _number, _reference, order in rows} == set(order_ids) - set(refused)
    assert [(row.kind, row.last_number) for row in series] == [(DocumentKind.INVOICE, ISSUES)]


# --- A failure mid-issue gives its number back (both databases) ---------------------------


def _last_number(session: Session) -> int:
    query = select(NumberSeries.last_number).where(NumberSeries.kind == DocumentKind.INVOICE)
    return session.scalar(query) or 0


def _order_to_invoice(session: Session) -> Order:
    complete_company(session)
    shop = make_shop(session, "echec")
    order = make_order(session, shop, [make_line("THE", 2, "5.50")])
    session.commit()  # the order stays when the failed issue is rolled back
    return order


@pytest.mark.parametrize(
    "failure",
    ["render", "storage"],
)
def test_a_failure_mid_issue_consumes_no_number(
    db_session: Session, tmp_path: Path, failure: str
) -> None:
    order = _order_to_invoice(db_session)
    before = _last_number(db_session)
    good = LocalStorage(tmp_path / "documents")
    if failure == "render":
        kwargs: dict[str, object] = {"renderer": Renderer(BrokenEngine()), "storage": good}
        expected: type[Exception] = ResourceRefused
    else:
        kwargs = {"storage": FailingStorage(tmp_path / "broken")}
        expected = StorageError

    with pytest.raises(expected):
        invoices.issue_invoice(db_session, order, ACTOR, **kwargs)  # type: ignore[arg-type]
    db_session.rollback()  # what the view, the job and the API do with the exception

    assert db_session.scalars(select(Document).where(Document.order_id == order.id)).all() == []
    assert _last_number(db_session) == before
    assert list(good.root.rglob("*.pdf")) == []
    document = invoices.issue_invoice(db_session, order, ACTOR, storage=good)
    assert document.number == before + 1
    assert document.total_gross == Decimal("11.00")
