"""The tracking import: reading real-world CSV files, applying rows, run twice, and the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.factories import make_line, make_order, make_shop
from web import queue
from web.models import Job, OutboxMessage
from web.models.enums import CommercialState, FulfilmentState, JobState, ShipmentState
from web.models.orders import Order
from web.models.shipping import Parcel, Shipment
from web.services import shipments, tracking_import
from web.services.errors import ValidationFailed
from web.services.shipping_modes import ensure_default_shipping_modes
from web.services.timeline import Actor

# What a merchant's Excel saves: BOM, `;`, CRLF, a French header, blank and empty rows.
MESSY_ROWS = [
    "N° de commande;N° de suivi;Transporteur;Poids (kg);Référence boutique",
    "1001;6A0001;;1,2;",  # shipped now, a comma decimal weight
    "",
    "#1002;6A0002;;;",  # already shipped with this very number
    "1003;6A0003;;;",  # shipped without tracking: the number completes it
    ";;;;",
    "9999;6A9999;;;",  # unknown order
    "1004;6A0004;;;",  # cancelled
    "1001;6A0001;;1,2;",  # the same row again
    "1005;6A0005;;;",  # unmapped shipping method, no mode in the file
    "1006;6A0006;Colissimo Domicile;0,75;",  # unmapped, but the file names the mode
    ";6A0007;;;5007",  # by the shop's own reference
    "1008;6A0008;;abc;",  # a weight that is not one
    "1009;6A0009;;;",  # on hold
    "   ",
]
MESSY = ("\ufeff" + "\r\n".join(MESSY_ROWS) + "\r\n").encode("utf-8")

FIRST_RUN = {"created": 3, "completed": 1, "already_there": 2, "refused": 5}
SECOND_RUN = {"created": 0, "completed": 0, "already_there": 6, "refused": 5}
REASONS = {
    7: "unknown order",
    8: "the order is cancelled",
    10: "the order's shipping method is not mapped to a shipping mode",
    13: "Give the weight in kilograms, such as 1.25.",
    14: "the order is on hold",
}


def make_messy_orders(session: Session) -> dict[str, Order]:
    """The orders the messy file names, #1001 to #1009, in the states its comments say."""
    modes = ensure_default_shipping_modes(session)
    shop = make_shop(session, "boutique")
    made: dict[str, Order] = {}
    for number in range(1001, 1010):
        mapped = number not in (1005, 1006)
        made[str(number)] = make_order(
            session,
            shop,
            [make_line("MUG", 2, "12.00"), make_line("TEA", 1, "5.50")],
            commercial_state=CommercialState.VALIDATED,
            shipping_label="Colissimo" if mapped else "Livraison maison",
            shipping_mode=modes["colissimo"] if mapped else None,
            shipping_address={"first_name": "Ana", "postcode": "69001"},
        )
    actor = Actor.system()
    shipments.ship_everything(session, made["1002"], actor, "6A0002")
    shipments.ship_everything(session, made["1003"], actor)
    made["1004"].commercial_state = CommercialState.CANCELLED
    made["1009"].on_hold = True
    made["1009"].hold_reason = "address to check"
    session.commit()
    return made


def state_of(session: Session) -> tuple[int, int, int]:
    """Shipments, parcels and outbox messages: what an import changes."""
    session.expire_all()
    count = session.scalar
    return (
        count(select(func.count()).select_from(Shipment)) or 0,
        count(select(func.count()).select_from(Parcel)) or 0,
        count(select(func.count()).select_from(OutboxMessage)) or 0,
    )


def refusals(outcomes: Any) -> dict[int, str]:
    return {item.line: item.reason for item in outcomes if item.outcome == "refused"}


def assert_first_run_applied(session: Session, made: dict[str, Order]) -> None:
    session.expire_all()
    first = session.get_one(Order, made["1001"].id)
    assert first.fulfilment_state == FulfilmentState.SHIPPED
    (shipment,) = first.shipments
    assert shipment.idempotency_key == f"import:{first.id}:6A0001"
    assert [(p.tracking_number, str(p.weight_kg)) for p in shipment.parcels] == [
        ("6A0001", "1.200")
    ]
    assert shipment.parcels[0].tracking_url.endswith("code=6A0001")
    completed = session.get_one(Order, made["1003"].id)
    (only,) = completed.shipments
    assert [p.tracking_number for p in only.parcels] == ["6A0003"]
    by_name = session.get_one(Order, made["1006"].id).shipments[0]
    assert by_name.shipping_mode is not None and by_name.shipping_mode.code == "colissimo"
    by_reference = session.get_one(Order, made["1007"].id)
    assert [p.tracking_number for p in by_reference.shipments[0].parcels] == ["6A0007"]
    for untouched in ("1004", "1005", "1008", "1009"):
        assert session.get_one(Order, made[untouched].id).shipments == []


# --- Reading files ---------------------------------------------------------------------------


def test_the_messy_file_is_read_with_its_header_and_line_numbers() -> None:
    parsed = tracking_import.parse(MESSY)
    assert (parsed.encoding, parsed.separator, parsed.header) == ("utf-8-sig", ";", True)
    assert [row.line for row in parsed.rows] == [2, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14]
    first = parsed.rows[0]
    assert (first.number, first.tracking, first.mode, first.weight) == ("1001", "6A0001", "", "1,2")
    assert parsed.rows[8].reference == "5007" and parsed.rows[8].number == ""


def test_windows_1252_with_tabs_and_an_english_header() -> None:
    text = "Tracking number\tOrder\tCarrier\tWeight\r\n6A1\tCommande-é\tDPD Predict\t2.5 kg\r\n"
    parsed = tracking_import.parse(text.encode("cp1252"))
    assert (parsed.encoding, parsed.separator) == ("cp1252", "\t")
    row = parsed.rows[0]
    expected = ("Commande-é", "6A1", "DPD Predict", "2.5")
    assert (row.number, row.tracking, row.mode, row.weight) == expected


def test_commas_with_a_quoted_comma_weight_and_pipes() -> None:
    commas = tracking_import.parse(b'order,tracking,weight\n1001,6A1,"1,5"\n1002,6A2,2\n')
    assert commas.separator == ","
    assert [(r.number, r.weight) for r in commas.rows] == [("1001", "1,5"), ("1002", "2")]
    pipes = tracking_import.parse("commande|suivi\n1001|6A1\n".encode("latin-1"))
    assert pipes.separator == "|" and pipes.rows[0].tracking == "6A1"


def test_an_unquoted_decimal_comma_in_a_comma_file_refuses_its_row(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    parsed = tracking_import.parse(b"order,tracking,weight\n1001,6A1,1,5\n1007,6A7,2\n,,,\n")
    assert parsed.separator == "," and len(parsed.rows) == 2
    summary = tracking_import.run_rows(session_factory, parsed.rows, Actor.system())
    assert refusals(summary.outcomes) == {2: tracking_import.EXTRA_CELLS}
    db_session.expire_all()
    assert db_session.get_one(Order, made["1001"].id).shipments == []  # never 1 kg for 1,5


def test_without_a_header_the_columns_are_taken_by_position() -> None:
    parsed = tracking_import.parse(b"1001;6A1;colissimo;1,2\n1002;6A2\n")
    assert parsed.header is False
    assert [(r.line, r.number, r.tracking, r.mode, r.weight) for r in parsed.rows] == [
        (1, "1001", "6A1", "colissimo", "1,2"),
        (2, "1002", "6A2", "", ""),
    ]


def test_utf16_as_excel_saves_unicode_text() -> None:
    parsed = tracking_import.parse("Commande\tSuivi\r\n1001\t6A1\r\n".encode("utf-16"))
    assert (parsed.encoding, parsed.rows[0].tracking) == ("utf-16", "6A1")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\r\n;;\r\n", "The file is empty."),
        (b"PK\x03\x04rest of a workbook", "This is a spreadsheet workbook"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "This file is not text"),
        (b"just one column\n1001\n", "No usable column"),
        (b"Nom;Adresse\nAna;1 rue\n", "No usable column"),
        (b"1" * (tracking_import.MAX_BYTES + 1), "The file is too big: 2 MB at most."),
        (b"1;2\n" * (tracking_import.MAX_ROWS + 1), "too many rows"),
    ],
)
def test_unusable_files_are_refused_with_a_clear_reason(data: bytes, message: str) -> None:
    with pytest.raises(ValidationFailed) as refused:
        tracking_import.parse(data)
    assert message in str(refused.value)
    assert refused.value.errors == {"file": str(refused.value)}  # the upload form's field


# --- Applying rows, twice --------------------------------------------------------------------


def test_the_messy_file_imported_twice_changes_nothing_the_second_time(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    rows = tracking_import.parse(MESSY).rows
    first = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert first.counts == FIRST_RUN
    assert refusals(first.outcomes) == REASONS
    assert_first_run_applied(db_session, made)
    after_first = state_of(db_session)

    second = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert second.counts == SECOND_RUN
    assert refusals(second.outcomes) == REASONS
    assert state_of(db_session) == after_first


def test_a_row_without_its_tracking_number_is_refused_saying_so(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    rows = tracking_import.parse(b"commande;suivi\n1001;\n1002;6A0002\n").rows
    summary = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert refusals(summary.outcomes) == {2: "no tracking number"}
    db_session.expire_all()
    assert db_session.get_one(Order, made["1001"].id).shipments == []


def test_an_order_numbered_in_letters_is_found_with_or_without_a_hash(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    """Some shops number their orders with letters only (a numbering plugin's prefix)."""
    modes = ensure_default_shipping_modes(db_session)
    shop = make_shop(db_session, "lettres")
    order = make_order(
        db_session,
        shop,
        number="XXXX",
        external_id="77",
        commercial_state=CommercialState.VALIDATED,
        shipping_mode=modes["colissimo"],
    )
    db_session.commit()
    rows = tracking_import.parse(b"XXXX;6A1\n#XXXX;6A2\n").rows
    summary = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert [(item.outcome, item.order) for item in summary.outcomes] == [
        ("created", "XXXX"),
        ("completed", "XXXX"),
    ]
    db_session.expire_all()
    (shipment,) = db_session.get_one(Order, order.id).shipments
    assert [p.tracking_number for p in shipment.parcels] == ["6A1", "6A2"]


def test_a_number_two_shops_use_is_refused_naming_them(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    modes = ensure_default_shipping_modes(db_session)
    for key in ("alpha", "beta"):
        make_order(
            db_session,
            make_shop(db_session, key, name=f"Boutique {key}"),
            commercial_state=CommercialState.VALIDATED,
            shipping_mode=modes["colissimo"],
        )
    db_session.commit()
    rows = tracking_import.parse(b"1001;6A1\n").rows
    (outcome,) = tracking_import.run_rows(session_factory, rows, Actor.system()).outcomes
    assert outcome.outcome == "refused"
    assert outcome.reason == tracking_import.AMBIGUOUS
    assert outcome.detail == "Boutique alpha, Boutique beta"


def test_two_parcels_of_one_order_in_the_same_file_make_one_shipment(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    rows = tracking_import.parse(b"commande;suivi\n1001;6A1\n1001;6A2\n").rows
    summary = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert summary.counts == {"created": 1, "completed": 1, "already_there": 0, "refused": 0}
    db_session.expire_all()
    (shipment,) = db_session.get_one(Order, made["1001"].id).shipments
    assert [p.tracking_number for p in shipment.parcels] == ["6A1", "6A2"]
    again = tracking_import.run_rows(session_factory, rows, Actor.system())
    assert again.counts["already_there"] == 2


def test_a_draft_shipment_waiting_for_its_number_is_shipped_with_it(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    order = made["1001"]
    draft = shipments.create_shipment(db_session, order, Actor.system(), {order.lines[0].id: 1})
    db_session.commit()
    rows = tracking_import.parse(b"1001;6A1;;0.4\n").rows
    (outcome,) = tracking_import.run_rows(session_factory, rows, Actor.system()).outcomes
    assert (outcome.outcome, outcome.shipment) == ("completed", draft.number)
    db_session.expire_all()
    shipment = db_session.get_one(Shipment, draft.id)
    assert shipment.state == ShipmentState.SHIPPED
    assert db_session.get_one(Order, order.id).fulfilment_state == FulfilmentState.PARTIALLY_SHIPPED


def test_a_tracking_number_of_a_cancelled_shipment_is_refused_not_shipped_again(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    rows = tracking_import.parse(b"1001;6A1\n").rows
    tracking_import.run_rows(session_factory, rows, Actor.system())
    db_session.expire_all()
    shipment = db_session.get_one(Order, made["1001"].id).shipments[0]
    shipments.cancel(db_session, shipment, Actor.system(), "wrong parcel")
    db_session.commit()
    (outcome,) = tracking_import.run_rows(session_factory, rows, Actor.system()).outcomes
    assert (outcome.outcome, outcome.reason) == ("refused", tracking_import.CANCELLED_TRACKING)


# --- The command line ------------------------------------------------------------------------


def test_the_cli_imports_the_messy_file_twice(
    app: Flask, db_session: Session, tmp_path: Path
) -> None:
    made = make_messy_orders(db_session)
    path = tmp_path / "suivi.csv"
    path.write_bytes(MESSY)
    runner = app.test_cli_runner()
    first = runner.invoke(args=["shipping", "import-tracking", str(path)])
    assert first.exit_code == 0, first.output
    assert "11 rows (utf-8-sig, separator ';'): " in first.output
    assert "3 created, 1 completed, 2 already there, 5 refused" in first.output
    assert "line 7: 9999 6A9999: unknown order" in first.output
    assert "line 14: 1009 6A0009: the order is on hold" in first.output
    assert_first_run_applied(db_session, made)
    after_first = state_of(db_session)

    second = runner.invoke(args=["shipping", "import-tracking", str(path)])
    assert second.exit_code == 0, second.output
    assert "0 created, 0 completed, 6 already there, 5 refused" in second.output
    assert state_of(db_session) == after_first


def test_the_cli_fails_when_the_file_cannot_be_read(app: Flask, tmp_path: Path) -> None:
    runner = app.test_cli_runner()
    missing = runner.invoke(args=["shipping", "import-tracking", str(tmp_path / "none.csv")])
    assert missing.exit_code != 0 and "cannot read" in missing.output
    workbook = tmp_path / "suivi.xlsx"
    workbook.write_bytes(b"PK\x03\x04not a csv")
    refused = runner.invoke(args=["shipping", "import-tracking", str(workbook)])
    assert refused.exit_code != 0 and "spreadsheet workbook" in refused.output


# --- As a job --------------------------------------------------------------------------------


def test_a_job_run_again_after_a_crash_resumes_after_its_last_save(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    job = tracking_import.start_import(db_session, MESSY, "suivi.csv", None)
    db_session.commit()
    # What a run that died after its first row left: that row applied, its outcome saved.
    rows = tracking_import.parse(MESSY).rows
    crashed = tracking_import.run_rows(session_factory, rows[:1], Actor.system())
    job.result = {"rows": [item.as_list() for item in crashed.outcomes], "saved_upto": 1}
    db_session.commit()

    assert queue.run_pending(session_factory) == 1
    db_session.expire_all()
    finished = db_session.get_one(Job, job.id)
    assert finished.state == JobState.DONE
    assert (finished.progress, finished.total) == (11, 11)
    summary = tracking_import.job_summary(finished)
    assert summary.counts == FIRST_RUN  # row 1 stays "created", not "already there"
    assert [item.line for item in summary.outcomes] == [row.line for row in rows]
    assert refusals(summary.outcomes) == REASONS
    assert_first_run_applied(db_session, made)


def test_a_number_corrected_after_its_import_is_not_imported_again(
    db_session: Session, session_factory: sessionmaker[Session]
) -> None:
    made = make_messy_orders(db_session)
    rows = tracking_import.parse(b"1001;6A1\n").rows
    tracking_import.run_rows(session_factory, rows, Actor.system())
    db_session.expire_all()
    (shipment,) = db_session.get_one(Order, made["1001"].id).shipments
    shipments.correct_tracking(db_session, shipment.parcels[0], Actor.system(), "6A1-BIS")
    db_session.commit()
    (outcome,) = tracking_import.run_rows(session_factory, rows, Actor.system()).outcomes
    assert (outcome.outcome, outcome.shipment) == ("already_there", shipment.number)
    db_session.expire_all()
    (same,) = db_session.get_one(Order, made["1001"].id).shipments
    assert [p.tracking_number for p in same.parcels] == ["6A1-BIS"]
