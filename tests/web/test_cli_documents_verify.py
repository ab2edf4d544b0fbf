"""`flask documents verify`: every stored PDF re-hashed, each damaged one named."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, relay_order, ship
from web.documents import delivery_notes, invoices
from web.documents.storage import LocalStorage
from web.models import Document
from web.services.timeline import Actor

ACTOR = Actor.system("test")


@pytest.fixture()
def storage(app: Flask) -> LocalStorage:
    """Where the app keeps the documents, and so where the command looks."""
    return LocalStorage(Path(app.instance_path) / "documents")


def issue_three(session: Session, storage: LocalStorage) -> list[Document]:
    complete_company(session)
    made = [
        invoices.issue_invoice(session, relay_order(session), ACTOR, storage=storage),
        invoices.issue_invoice(session, relay_order(session), ACTOR, storage=storage),
    ]
    order = relay_order(session)
    shipment = ship(session, order, {"MUG-BLEU": 1})
    made.append(delivery_notes.issue_delivery_note(session, shipment, ACTOR, storage=storage))
    session.commit()
    return made


def test_every_intact_document_is_counted_and_the_exit_code_is_zero(
    app: Flask, db_session: Session, storage: LocalStorage
) -> None:
    issue_three(db_session, storage)
    result = app.test_cli_runner().invoke(args=["documents", "verify"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().startswith("3 issued documents checked")


def test_a_tampered_and_a_missing_pdf_are_both_named_and_the_exit_code_is_not_zero(
    app: Flask, db_session: Session, storage: LocalStorage
) -> None:
    tampered, intact, missing = issue_three(db_session, storage)
    path = storage.root / (tampered.pdf_storage_key or "")
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit flipped
    path.write_bytes(bytes(data))
    (storage.root / (missing.pdf_storage_key or "")).unlink()

    result = app.test_cli_runner().invoke(args=["documents", "verify"])

    assert result.exit_code != 0
    lines = result.stderr.splitlines()
    assert f"{tampered.reference} ({tampered.pdf_storage_key}): its PDF does not match" in lines[0]
    assert f"{missing.reference} ({missing.pdf_storage_key}): its PDF is missing" in lines[1]
    assert intact.reference not in result.output
    assert "2 of 3 issued documents damaged or missing" in result.stderr


def test_with_nothing_issued_there_is_nothing_to_fail(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["documents", "verify"])
    assert result.exit_code == 0
    assert result.stdout.startswith("0 issued documents checked")
