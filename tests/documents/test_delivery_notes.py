"""Delivery notes as a reader sees them: the PDF's text, its number, its one copy."""

from __future__ import annotations

import io
import re

import pypdf
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.documents.conftest import pdf_text, relay_order, ship
from web.documents import delivery_notes, issued
from web.documents.storage import LocalStorage, sha256
from web.models import Document, OrderEvent
from web.models.enums import DocumentKind, DocumentState, ShipmentState
from web.services.errors import InvalidTransition
from web.services.timeline import Actor

ACTOR = Actor.system("test")


def test_the_note_shows_what_the_carrier_and_the_buyer_need_and_no_prices(
    db_session: Session, storage: LocalStorage
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 2, "THE-VERT": 2}, ("6A0001", "6A0002"))

    note = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)

    assert note.kind == DocumentKind.DELIVERY_NOTE and note.state == DocumentState.ISSUED
    assert re.fullmatch(r"BL-20\d\d-000001", note.reference or "")
    assert note.series == note.reference[:7] and note.number == 1
    assert note.shipment_id == shipment.id and note.order_id == order.id
    data = storage.get(note.pdf_storage_key or "")
    assert data.startswith(b"%PDF") and sha256(data) == note.pdf_sha256
    text = pdf_text(data)
    for expected in (
        "Bon de livraison",
        note.reference,
        "La Boutique du Thé",
        order.number,
        "2 mars 2026",  # the order's date
        shipment.number,
        "Mondial Relay Point Relais",
        "Marie Curie",
        "11 rue Pierre et Marie Curie",  # the buyer
        "2 place de la Gare",  # where the parcels go
        "69002 Lyon",
        "Point relais FR-004242",
        "6A0001",
        "6A0002",
    ):
        assert expected in text, expected
    # Ordered / in this shipment / remaining, line by line.
    assert re.search(r"MUG-BLEU\s+Mug bleu\s+3\s+2\s+1", text), text
    assert re.search(r"THE-VERT\s+Thé vert Sencha\s+2\s+2\s+0", text), text
    assert "Carte cadeau" not in text  # nothing to ship
    assert "€" not in text and "12,00" not in text
    assert "Page 1 / 1" in text


def test_prices_are_printed_only_when_asked(db_session: Session, storage: LocalStorage) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 2}, ("6A0003",))

    note = delivery_notes.issue_delivery_note(
        db_session, shipment, ACTOR, with_prices=True, storage=storage
    )

    text = pdf_text(storage.get(note.pdf_storage_key or ""))
    assert "12,00\xa0€" in text and "24,00\xa0€" in text  # unit price, amount
    assert "Total de cette expédition : 24,00\xa0€" in text


def test_the_note_reads_in_english_when_asked(db_session: Session, storage: LocalStorage) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1}, ("6A0004",))

    note = delivery_notes.issue_delivery_note(
        db_session, shipment, ACTOR, locale="en", storage=storage
    )

    text = pdf_text(storage.get(note.pdf_storage_key or ""))
    for expected in ("Delivery note", "March 2, 2026", "In this shipment", "Relay point FR-004242"):
        assert expected in text, expected
    assert "Page 1 / 1" in text and "Bon de livraison" not in text
    assert note.snapshot is not None and note.snapshot["locale"] == "en"


def test_what_remains_counts_earlier_shipments_but_not_cancelled_ones(
    db_session: Session, storage: LocalStorage
) -> None:
    order = relay_order(db_session)
    ship(db_session, order, {"MUG-BLEU": 1}, state=ShipmentState.CANCELLED)
    ship(db_session, order, {"MUG-BLEU": 1})
    second = ship(db_session, order, {"MUG-BLEU": 1, "THE-VERT": 1})

    note = delivery_notes.issue_delivery_note(db_session, second, ACTOR, storage=storage)

    assert note.snapshot is not None
    rows = {line["sku"]: line for line in note.snapshot["lines"]}
    assert (rows["MUG-BLEU"]["ordered"], rows["MUG-BLEU"]["shipped"]) == (3, 1)
    assert rows["MUG-BLEU"]["remaining"] == 1  # 3 ordered, 2 shipped, the cancelled one not
    assert (rows["THE-VERT"]["shipped"], rows["THE-VERT"]["remaining"]) == (1, 1)


def test_one_note_per_shipment_and_a_reprint_is_the_stored_file(
    db_session: Session, storage: LocalStorage
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 3}, ("6A0005",))
    first = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)
    stored = storage.get(first.pdf_storage_key or "")

    again = delivery_notes.issue_delivery_note(
        db_session, shipment, ACTOR, with_prices=True, storage=storage
    )

    assert again.id == first.id
    count = select(func.count()).select_from(Document).where(Document.order_id == order.id)
    assert db_session.scalar(count) == 1
    events = select(OrderEvent.details).where(
        OrderEvent.order_id == order.id, OrderEvent.kind == "delivery_note.issued"
    )
    assert db_session.scalars(events).all() == [
        {"reference": first.reference, "shipment": shipment.number, "via": "test"}
    ]
    # The order changes afterwards: the reprint still says what was issued.
    order.shipping_address = {**order.shipping_address, "city": "Marseille"}
    document, data = issued.stored_pdf(db_session, first.id, storage)
    assert document.id == first.id and data == stored


def test_a_damaged_file_is_not_served(db_session: Session, storage: LocalStorage) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1})
    note = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)
    path = storage.root / (note.pdf_storage_key or "")
    path.write_bytes(path.read_bytes().replace(b"%PDF", b"%PDX", 1))

    with pytest.raises(issued.DocumentDamaged, match="does not match its hash"):
        issued.stored_pdf(db_session, note.id, storage)


def test_a_cancelled_shipment_gets_no_note_and_no_number(
    db_session: Session, storage: LocalStorage
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 1}, state=ShipmentState.CANCELLED)

    with pytest.raises(InvalidTransition):
        delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)

    assert db_session.scalar(select(func.count()).select_from(Document)) == 0
    other = ship(db_session, order, {"MUG-BLEU": 1})
    note = delivery_notes.issue_delivery_note(db_session, other, ACTOR, storage=storage)
    assert note.number == 1


def test_many_notes_print_as_one_pdf_in_the_order_asked(
    db_session: Session, storage: LocalStorage
) -> None:
    order = relay_order(db_session)
    notes = [
        delivery_notes.issue_delivery_note(
            db_session,
            ship(db_session, order, {"MUG-BLEU": 1}, (f"6A900{n}",)),
            ACTOR,
            storage=storage,
        )
        for n in range(3)
    ]

    combined = issued.combined_pdf(db_session, [notes[2].id, notes[0].id], storage)

    reader = pypdf.PdfReader(io.BytesIO(combined))
    assert len(reader.pages) == 2
    assert notes[2].reference in reader.pages[0].extract_text()
    assert notes[0].reference in reader.pages[1].extract_text()
    assert notes[1].reference not in pdf_text(combined)
