"""The documents list: filters, search, paging, and the bulk download's bundles and refusals."""

from __future__ import annotations

import datetime as dt
import gc
import io
import os
import sys
import zipfile
from pathlib import Path

import pypdf
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, pdf_text, relay_order, ship
from tests.factories import make_customer, make_line, make_order, make_shop
from web.documents import delivery_notes, invoices, issued
from web.documents.storage import LocalStorage
from web.models import Document, Order, Shop
from web.models.enums import DocumentKind, DocumentState
from web.services import documents_list
from web.services.documents_list import DocumentFilters
from web.services.errors import ValidationFailed
from web.services.order_queries import DESK_TZ
from web.services.timeline import Actor

ACTOR = Actor.system("test")


def today() -> dt.date:
    return dt.datetime.now(DESK_TZ).date()


def order_of(session: Session, shop_key: str, number: str, first: str, last: str) -> Order:
    """An order of two mugs (24.00) by a named buyer, in the shop of that key."""
    shop = session.scalars(select(Shop).where(Shop.key == shop_key)).first()
    customer = make_customer(session, None, first, last)
    return make_order(
        session,
        shop or make_shop(session, shop_key),
        [make_line("MUG", 2, "12.00", name="Mug")],
        customer=customer,
        number=number,
        billing_address={
            "first_name": first,
            "last_name": last,
            "line1": "1 rue de la Paix",
            "postcode": "75002",
            "city": "Paris",
            "country_code": "FR",
        },
    )


def invoice(session: Session, order: Order, storage: LocalStorage) -> Document:
    return invoices.issue_invoice(session, order, ACTOR, storage=storage)


def references(page: documents_list.Page[Document]) -> list[str | None]:
    return [document.reference for document in page.items]


def listed(session: Session, **filters: object) -> list[str | None]:
    return references(documents_list.list_documents(session, DocumentFilters(**filters)))  # type: ignore[arg-type]


@pytest.fixture()
def issued_set(db_session: Session, storage: LocalStorage) -> dict[str, Document]:
    """Two invoices in two shops, one delivery note, one credit-note-free draft."""
    complete_company(db_session)
    first = invoice(
        db_session, order_of(db_session, "the-shop", "#A-1", "Élodie", "Martin"), storage
    )
    second = invoice(
        db_session, order_of(db_session, "autre-shop", "#B-7", "Paul", "Durand"), storage
    )
    order = relay_order(db_session)
    note = delivery_notes.issue_delivery_note(
        db_session, ship(db_session, order, {"MUG-BLEU": 1}), ACTOR, storage=storage
    )
    db_session.add(Document(order=order, kind=DocumentKind.INVOICE, state=DocumentState.DRAFT))
    db_session.flush()
    return {"first": first, "second": second, "note": note}


def test_every_issued_document_newest_first_and_never_a_draft(
    db_session: Session, issued_set: dict[str, Document]
) -> None:
    page = documents_list.list_documents(db_session, DocumentFilters())
    assert references(page) == [
        issued_set["note"].reference,
        issued_set["second"].reference,
        issued_set["first"].reference,
    ]
    assert page.total == 3
    assert all(document.state == DocumentState.ISSUED for document in page.items)


def test_kind_series_shop_and_dates_filter(
    db_session: Session, issued_set: dict[str, Document]
) -> None:
    first, second, note = issued_set["first"], issued_set["second"], issued_set["note"]
    year = today().year
    assert listed(db_session, kind=DocumentKind.DELIVERY_NOTE) == [note.reference]
    assert listed(db_session, kind=DocumentKind.CREDIT_NOTE) == []
    assert listed(db_session, series=f"FA-{year}") == [second.reference, first.reference]
    assert listed(db_session, series=f"BL-{year}") == [note.reference]
    assert listed(db_session, shop="autre-shop") == [second.reference]
    assert listed(db_session, date_from=today(), date_to=today()) == listed(db_session)
    assert listed(db_session, date_from=today() + dt.timedelta(days=1)) == []
    assert listed(db_session, date_to=today() - dt.timedelta(days=1)) == []
    assert documents_list.series(db_session) == [f"BL-{year}", f"FA-{year}"]


def test_a_new_prefix_is_its_own_series(db_session: Session, storage: LocalStorage) -> None:
    complete_company(db_session)
    old = invoice(db_session, order_of(db_session, "the-shop", "#A-1", "Ana", "Lima"), storage)
    complete_company(db_session, invoice_prefix="FAC")
    new = invoice(db_session, order_of(db_session, "the-shop", "#A-2", "Ana", "Lima"), storage)
    year = today().year
    assert listed(db_session, series=f"FAC-{year}") == [new.reference]
    assert listed(db_session, series=f"FA-{year}") == [old.reference]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("elodie", ["first"]),  # the buyer's name, accents and case folded
        ("MARTIN élodie", ["first"]),  # every term, anywhere
        ("durand", ["second"]),
        ("#B-7", ["second"]),  # the order's number
        ("BL-", ["note"]),  # the reference
        ("curie", ["note"]),  # a delivery note's buyer too
        ("martin durand", []),
        ("100%_", []),  # LIKE wildcards are text
    ],
)
def test_the_search_reads_the_buyer_the_reference_and_the_order_number(
    db_session: Session, issued_set: dict[str, Document], query: str, expected: list[str]
) -> None:
    assert listed(db_session, q=query) == [issued_set[name].reference for name in expected]


def test_the_filters_round_trip_through_the_query_string_and_bad_ones_are_reported() -> None:
    args = {
        "kind": "credit_note",
        "series": "AV-2026",
        "date_from": "2026-01-01",
        "date_to": "2026-03-31",
        "shop": "boutique",
        "q": "curie",
        "page": "2",
    }
    filters, refused = documents_list.parse_filters(args)
    assert refused == {}
    assert filters.page == 2
    assert filters.args() == {name: value for name, value in args.items() if name != "page"}

    filters, refused = documents_list.parse_filters(
        {"kind": "receipt", "date_from": "2026-13-01", "date_to": "1900-01-01", "page": "x"}
    )
    assert set(refused) == {"kind", "date_from", "date_to", "page"}
    assert filters == DocumentFilters()
    _, refused = documents_list.parse_filters({"date_from": "2026-03-02", "date_to": "2026-03-01"})
    assert "date_to" in refused


def test_pages_of_the_list_and_a_page_past_the_end_shows_the_last(
    db_session: Session, issued_set: dict[str, Document]
) -> None:
    one = documents_list.list_documents(db_session, DocumentFilters(), per_page=2)
    two = documents_list.list_documents(db_session, DocumentFilters(page=2), per_page=2)
    past = documents_list.list_documents(db_session, DocumentFilters(page=99), per_page=2)
    assert (one.pages, one.has_next, two.has_prev) == (2, True, True)
    assert references(two) == [issued_set["first"].reference] == references(past)


def test_all_matching_keeps_to_the_documents_the_list_had(
    db_session: Session, issued_set: dict[str, Document], storage: LocalStorage
) -> None:
    upto = documents_list.newest_document_id(db_session)
    later = invoice(db_session, order_of(db_session, "the-shop", "#A-9", "Léa", "Roux"), storage)
    selection = documents_list.select_documents(
        db_session, [], {"kind": "invoice", "upto": str(upto)}
    )
    assert selection == {"filters": {"kind": "invoice"}, "upto": upto}
    ids = documents_list.matching_ids(db_session, DocumentFilters(kind=DocumentKind.INVOICE), upto)
    assert ids == [issued_set["second"].id, issued_set["first"].id]
    assert later.id not in ids


def test_a_selection_of_nothing_is_refused(db_session: Session) -> None:
    with pytest.raises(ValidationFailed) as refused:
        documents_list.select_documents(db_session, ["", "0", "x"])
    assert str(refused.value) == "Select at least one document."
    assert refused.value.errors == {"ids": "Select at least one document."}
    with pytest.raises(ValidationFailed):
        documents_list.select_documents(db_session, [], {"kind": "invoice"})
    assert documents_list.select_documents(db_session, ["3", "3", "1"]) == {"ids": [3, 1]}


def test_a_selection_over_two_thousand_is_refused_on_its_field(db_session: Session) -> None:
    too_many = [str(number) for number in range(1, documents_list.MAX_SELECTION + 2)]
    with pytest.raises(ValidationFailed) as refused:
        documents_list.select_documents(db_session, too_many)
    message = "Select at most 2,000 documents at once; narrow the filters down first."
    assert str(refused.value) == message
    assert refused.value.errors == {"ids": message}
    assert len(documents_list.select_documents(db_session, too_many[:-1])["ids"]) == 2_000


def test_no_document_yet_is_a_newest_id_of_zero(db_session: Session) -> None:
    assert documents_list.newest_document_id(db_session) == 0


# --- The bundles -----------------------------------------------------------------------------


def test_a_zip_holds_each_stored_pdf_named_by_reference(
    db_session: Session, issued_set: dict[str, Document], storage: LocalStorage, tmp_path: Path
) -> None:
    chosen = [issued_set["first"], issued_set["note"]]
    path = tmp_path / "out.zip"
    written, refused = documents_list.bundle_documents(
        db_session, [d.id for d in chosen], "zip", path, storage
    )
    assert (written, refused) == (2, [])
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == sorted(f"{d.reference}.pdf" for d in chosen)
        for document in chosen:
            assert archive.read(f"{document.reference}.pdf") == storage.get(
                document.pdf_storage_key or ""
            )
    assert path.stat().st_mode & 0o777 == 0o600


def test_one_pdf_holds_every_page_in_the_order_chosen(
    db_session: Session, issued_set: dict[str, Document], storage: LocalStorage, tmp_path: Path
) -> None:
    chosen = [issued_set["second"], issued_set["first"]]
    path = tmp_path / "out.pdf"
    written, _ = documents_list.bundle_documents(
        db_session, [d.id for d in chosen], "pdf", path, storage
    )
    assert written == 2
    pages = sum(
        len(pypdf.PdfReader(io.BytesIO(storage.get(d.pdf_storage_key or ""))).pages) for d in chosen
    )
    merged = path.read_bytes()
    assert len(pypdf.PdfReader(io.BytesIO(merged)).pages) == pages
    text = pdf_text(merged)
    assert text.index(chosen[0].reference or "") < text.index(chosen[1].reference or "")


def test_a_damaged_or_missing_pdf_is_refused_with_its_reference_and_the_rest_written(
    db_session: Session, issued_set: dict[str, Document], storage: LocalStorage, tmp_path: Path
) -> None:
    first, second, note = issued_set["first"], issued_set["second"], issued_set["note"]
    tampered = storage.root / (first.pdf_storage_key or "")
    tampered.write_bytes(tampered.read_bytes().replace(b"%%EOF", b"%%EOF\n%extra"))
    (storage.root / (note.pdf_storage_key or "")).unlink()
    path = tmp_path / "out.zip"

    written, refused = documents_list.bundle_documents(
        db_session, [first.id, second.id, note.id, 2_000_000], "zip", path, storage
    )

    assert written == 1
    assert [(r["reference"], r["reason"]) for r in refused] == [
        (first.reference, documents_list.DAMAGED),
        (note.reference, documents_list.DAMAGED),
        ("", documents_list.GONE),
    ]
    # The page links a refusal to its order, or names a gone document by its id.
    assert [(r["id"], r.get("order_id")) for r in refused] == [
        (first.id, first.order_id),
        (note.id, note.order_id),
        (2_000_000, None),
    ]
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == [f"{second.reference}.pdf"]


@pytest.mark.parametrize("fmt", ["pdf", "zip"])
def test_nothing_is_written_when_every_document_is_refused(
    db_session: Session,
    issued_set: dict[str, Document],
    storage: LocalStorage,
    tmp_path: Path,
    fmt: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    note = issued_set["note"]
    (storage.root / (note.pdf_storage_key or "")).unlink()
    path = tmp_path / f"out.{fmt}"
    # An archive left open would write its directory into the closed file when collected.
    unraisable: list[object] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    written, refused = documents_list.bundle_documents(db_session, [note.id], fmt, path, storage)
    gc.collect()
    assert (written, len(refused)) == (0, 1)
    assert list(tmp_path.glob("out.*")) == []
    assert unraisable == []


def test_the_bundle_reports_its_progress_every_ten_documents(
    db_session: Session, storage: LocalStorage, tmp_path: Path
) -> None:
    seen: list[int] = []
    ids = list(range(1_000_001, 1_000_026))  # 25 documents, none there any more
    written, refused = documents_list.bundle_documents(
        db_session, ids, "pdf", tmp_path / "out.pdf", storage, progress=seen.append
    )
    assert (written, len(refused), seen) == (0, 25, [10, 20])


# --- Verifying every stored document ---------------------------------------------------------


def test_verify_names_each_tampered_and_missing_document(
    db_session: Session, issued_set: dict[str, Document], storage: LocalStorage
) -> None:
    assert issued.verify_all(db_session, storage) == issued.VerifyReport(checked=3)
    first, note = issued_set["first"], issued_set["note"]
    tampered = storage.root / (first.pdf_storage_key or "")
    tampered.write_bytes(tampered.read_bytes() + b"\n")
    (storage.root / (note.pdf_storage_key or "")).unlink()

    report = issued.verify_all(db_session, storage)

    assert report.checked == 3 and not report.ok
    assert report.damaged == [
        issued.Damage(first.reference or "", first.pdf_storage_key or "", "mismatch"),
        issued.Damage(note.reference or "", note.pdf_storage_key or "", "missing"),
    ]


def test_old_downloads_are_removed_and_other_files_of_the_folder_left(tmp_path: Path) -> None:
    old, fresh, other = (
        tmp_path / "documents-download-1.zip",
        tmp_path / "documents-download-2.pdf",
        tmp_path / "orders-3.csv",
    )
    for path in (old, fresh, other):
        path.write_bytes(b"x")
    stale = old.stat().st_mtime - 25 * 3600
    for path in (old, other):
        os.utime(path, (stale, stale))

    assert documents_list.remove_old_downloads(tmp_path) == 1
    assert sorted(path.name for path in tmp_path.iterdir()) == [fresh.name, other.name]
