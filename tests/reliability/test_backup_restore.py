"""Backup and restore drill: a backup taken while orders keep arriving restores onto a fresh
database and documents folder with every order, event and document identical, PDFs included.

Plus the refusals: a tampered archive, an installation that is not empty, the other kind of
database — each refused before anything is written.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url, wait_until
from tests.documents.conftest import complete_company, relay_order, ship
from tests.factories import make_event, make_order
from tests.reliability.conftest import drill_size
from web.db import make_engine, make_session_factory
from web.documents import credit_notes, delivery_notes, invoices
from web.documents.storage import LocalStorage
from web.models import Base, Document, Order, Shop
from web.services import backup
from web.services.timeline import Actor

ACTOR = Actor.system("drill")


def fresh_database(tmp_path: Path, name: str) -> str:
    url = separate_database_url(tmp_path, name)
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    return url


@pytest.fixture()
def source(tmp_path: Path) -> Iterator[tuple[str, Engine]]:
    url = fresh_database(tmp_path, "backup_source")
    engine = make_engine(url)
    yield url, engine
    engine.dispose()


def populate(sessions: sessionmaker[Session], storage: LocalStorage, orders: int) -> None:
    """Orders with inbox events, invoices, credit notes and delivery notes (real PDFs)."""
    with sessions.begin() as session:
        complete_company(session)
    for n in range(orders):
        with sessions.begin() as session:
            order = relay_order(session)
            make_event(session, order.shop, external_order_id=order.external_id)
            invoice = invoices.issue_invoice(session, order, ACTOR, storage=storage)
            if n % 2 == 0:
                credit_notes.issue_credit_note(
                    session, invoice, ACTOR, reason="Retour client", storage=storage
                )
            shipment = ship(session, order, {"MUG-BLEU": 3, "THE-VERT": 2}, (f"TRK-{n}",))
            delivery_notes.issue_delivery_note(session, shipment, ACTOR, storage=storage)


def rows(engine: Engine) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Every table's rows by primary key (the Alembic bookkeeping aside)."""
    found: dict[str, dict[tuple[Any, ...], tuple[Any, ...]]] = {}
    with engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            keys = [column.name for column in table.primary_key.columns]
            found[table.name] = {
                tuple(getattr(row, key) for key in keys): tuple(row)
                for row in connection.execute(select(table))
            }
    return found


def file_hashes(root: Path) -> dict[str, str]:
    return {
        path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file()
    }


def test_a_backup_taken_while_orders_arrive_restores_everything_identical(
    tmp_path: Path, source: tuple[str, Engine]
) -> None:
    url, engine = source
    sessions = make_session_factory(engine)
    documents = tmp_path / "source" / "documents"
    storage = LocalStorage(documents)
    orders = drill_size(3, 40)
    populate(sessions, storage, orders)
    before = rows(engine)

    # Orders keep arriving, each with its inbox event, while the backup is taken.
    stop = threading.Event()
    written: list[int] = []

    def keep_writing() -> None:
        while not stop.is_set():
            with sessions.begin() as session:
                shop = session.scalars(select(Shop)).first()
                assert shop is not None
                order = make_order(session, shop, external_id=f"live-{len(written)}")
                make_event(session, shop, external_order_id=order.external_id)
                order_id = order.id
            written.append(order_id)

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        wait_until(lambda: len(written) >= 3, what="the writer's first orders")
        archive = backup.create(url, documents, tmp_path / "backups")
        during = len(written)
        wait_until(lambda: len(written) > during, what="an order after the backup")
    finally:
        stop.set()
        writer.join()

    target_url = fresh_database(tmp_path, "backup_target")
    target_documents = tmp_path / "target" / "documents"
    manifest = backup.restore(archive, target_url, target_documents)

    target = make_engine(target_url)
    try:
        after_source, restored = rows(engine), rows(target)
        with target.connect() as connection:
            stored = connection.execute(select(Document.pdf_storage_key, Document.pdf_sha256))
            pdfs = {key: digest for key, digest in stored}
    finally:
        target.dispose()

    # Everything there before the backup is restored identical, row for row.
    for table, before_rows in before.items():
        assert {k: restored[table].get(k) for k in before_rows} == before_rows, table
    # What arrived during it is restored as the source holds it, or not at all (a snapshot).
    for table, restored_rows in restored.items():
        assert restored_rows == {k: after_source[table][k] for k in restored_rows}, table
    assert len(before["orders"]) < len(restored["orders"]) < len(after_source["orders"])
    assert len(restored["orders"]) == manifest.counts["orders"]
    assert len(restored["inbox_events"]) == manifest.counts["inbox_events"]
    live = len(restored["orders"]) - len(before["orders"])
    assert len(restored["inbox_events"]) - len(before["inbox_events"]) == live

    # Every issued PDF is back, byte for byte: the hash the document row was issued with.
    # An invoice and a delivery note per order, a credit note for every other one.
    assert len(pdfs) == len(before["documents"]) == 2 * orders + (orders + 1) // 2
    restored_files = file_hashes(target_documents)
    assert restored_files == file_hashes(documents)
    for key, digest in pdfs.items():
        assert restored_files[key or ""] == digest


@pytest.fixture()
def small_archive(tmp_path: Path, source: tuple[str, Engine]) -> Path:
    url, engine = source
    storage = LocalStorage(tmp_path / "source" / "documents")
    populate(make_session_factory(engine), storage, 1)
    return backup.create(url, storage.root, tmp_path / "backups")


def rewrite(archive: Path, change: dict[str, bytes]) -> Path:
    """A copy of the archive with some members' bytes replaced (the manifest unchanged)."""
    tampered = archive.with_name("tampered.tar")
    with tarfile.open(archive) as original, tarfile.open(tampered, "w") as out:
        for info in original.getmembers():
            data = original.extractfile(info).read()  # type: ignore[union-attr]
            data = change.get(info.name, data)
            info.size = len(data)
            out.addfile(info, io.BytesIO(data))
    return tampered


def target_is_untouched(url: str, documents: Path) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            empty = connection.scalar(select(Order.id).limit(1)) is None
    finally:
        engine.dispose()
    return empty and not any(documents.rglob("*"))


def test_a_tampered_archive_is_refused_before_anything_is_written(
    tmp_path: Path, small_archive: Path
) -> None:
    with tarfile.open(small_archive) as tar:
        pdf = next(name for name in tar.getnames() if name.endswith(".pdf"))
        original = tar.extractfile(pdf).read()  # type: ignore[union-attr]
    tampered = rewrite(small_archive, {pdf: original.replace(b"%PDF", b"%PDX", 1)})
    target_url = fresh_database(tmp_path, "backup_target")
    target_documents = tmp_path / "target" / "documents"
    with pytest.raises(backup.BackupRefused, match="does not match its SHA-256"):
        backup.restore(tampered, target_url, target_documents)
    assert target_is_untouched(target_url, target_documents)


def test_an_archive_with_a_member_added_is_refused(tmp_path: Path, small_archive: Path) -> None:
    added = small_archive.with_name("added.tar")
    with tarfile.open(small_archive) as tar, tarfile.open(added, "w") as out:
        for info in tar.getmembers():
            out.addfile(info, tar.extractfile(info))
        extra = tarfile.TarInfo("documents/invoice/../../../evil.pdf")
        extra.size = 4
        out.addfile(extra, io.BytesIO(b"evil"))
    target_url = fresh_database(tmp_path, "backup_target")
    with pytest.raises(backup.BackupRefused, match="not in the manifest"):
        backup.restore(added, target_url, tmp_path / "target" / "documents")
    assert target_is_untouched(target_url, tmp_path / "target" / "documents")


def test_an_installation_with_orders_is_not_overwritten(
    tmp_path: Path, small_archive: Path, source: tuple[str, Engine]
) -> None:
    url, engine = source
    before = rows(engine)
    with pytest.raises(backup.BackupRefused, match="empty installation only.*the database has"):
        backup.restore(small_archive, url, tmp_path / "elsewhere" / "documents")
    assert rows(engine) == before
    assert not (tmp_path / "elsewhere").exists()


def test_a_documents_folder_with_files_is_not_overwritten(
    tmp_path: Path, small_archive: Path
) -> None:
    target_url = fresh_database(tmp_path, "backup_target")
    documents = tmp_path / "target" / "documents"
    documents.mkdir(parents=True)
    (documents / "kept.pdf").write_bytes(b"%PDF-1.7 kept")
    with pytest.raises(backup.BackupRefused, match="documents folder .* has files"):
        backup.restore(small_archive, target_url, documents)
    assert [p.name for p in documents.rglob("*")] == ["kept.pdf"]
    engine = make_engine(target_url)
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT count(*) FROM orders")) == 0
    engine.dispose()


def test_an_archive_of_the_other_kind_of_database_is_refused(
    tmp_path: Path, small_archive: Path, source: tuple[str, Engine]
) -> None:
    url, _ = source
    other = (
        "postgresql+psycopg://nobody@127.0.0.1:1/none"
        if url.startswith("sqlite")
        else f"sqlite:///{tmp_path / 'other.sqlite'}"
    )
    with pytest.raises(backup.BackupRefused, match="same kind of database"):
        backup.restore(small_archive, other, tmp_path / "target" / "documents")
    assert not (tmp_path / "target").exists()
