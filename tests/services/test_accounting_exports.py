"""The accountant's exports: the CSV of documents, the FEC sales journal, the B2C summary.

The documents are issued through the invoicing service over two days (the service's clock
set to each day): an invoice at 20 % and 5.5 % with shipping to a consumer, an invoice at
10 % to a business, a partial credit note of the first, and an invoice under the VAT
franchise to a guest. Every figure below is worked out by hand.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company
from tests.factories import make_customer, make_line, make_order, make_shop
from web.documents import invoices
from web.documents.storage import LocalStorage
from web.models import Document
from web.models.enums import DocumentKind, VatRegime
from web.services import accounting_exports
from web.services.accounting_exports import FEC_COLUMNS, Issued, Sum, entry, fec_amount
from web.services.errors import ValidationFailed
from web.services.timeline import Actor

ACTOR = Actor.system("test")
DAY_1 = dt.date(2026, 3, 2)
DAY_2 = dt.date(2026, 3, 3)
AMOUNT = re.compile(r"^\d+,\d{2}$")


@dataclass
class Period:
    consumer: Document  # 20 % + 5.5 % + shipping, 51.10, day 1
    business: Document  # 10 %, 11.00, day 1, to a company with a VAT number
    credit: Document  # 1 mug of the consumer's invoice credited, 12.00, day 2
    franchise: Document  # under the franchise, 30.00, day 2, a guest
    customer_id: int


@pytest.fixture()
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "instance" / "documents")


def _clock(monkeypatch: pytest.MonkeyPatch, day: dt.date) -> None:
    moment = dt.datetime(day.year, day.month, day.day, 10, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(invoices, "utcnow", lambda: moment)


def issue_period(
    session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> Period:
    """The four documents of the module's docstring."""
    company = complete_company(session)
    shop = make_shop(session, "boutique", name="La Boutique du Thé")
    marie = make_customer(session, "marie@example.test", "Marie", "Curie")
    mug = make_line("MUG", 2, "12.00", name="Mug bleu")  # 20.00 + 4.00
    book = make_line(
        "LIVRE",
        1,
        "21.10",
        name="Livre",
        tax_rate=Decimal("5.5"),
        total_net=Decimal("20.00"),
        tax_amount=Decimal("1.10"),
    )
    consumer_order = make_order(
        session,
        shop,
        [mug, book],
        customer=marie,
        shipping_total=Decimal("6.00"),
        shipping_tax=Decimal("1.00"),
        grand_total=Decimal("51.10"),
    )
    tea = make_line(
        "THE",
        1,
        "11.00",
        name="Thé en vrac",
        tax_rate=Decimal("10"),
        total_net=Decimal("10.00"),
        tax_amount=Decimal("1.00"),
    )
    business_order = make_order(
        session,
        shop,
        [tea],
        billing_address={
            "company": "Salon de Thé SARL",
            "vat_id": "FR44732829320",
            "line1": "1 rue du Port",
            "postcode": "13002",
            "city": "Marseille",
            "country_code": "FR",
        },
    )
    _clock(monkeypatch, DAY_1)
    consumer = invoices.issue_invoice(session, consumer_order, ACTOR, storage=storage)
    business = invoices.issue_invoice(session, business_order, ACTOR, storage=storage)
    _clock(monkeypatch, DAY_2)
    one_mug = invoices.Line(
        "product",
        "Mug bleu",
        Decimal(1),
        Decimal("10.00"),
        Decimal("20.00"),
        Decimal("10.00"),
        Decimal("2.00"),
        order_line_id=mug.id,
        sku="MUG",
    )
    credit = invoices._issue(
        session,
        consumer_order,
        ACTOR,
        DocumentKind.CREDIT_NOTE,
        [one_mug],
        company,
        locale="fr",
        storage=storage,
        renderer=None,
        corrects=consumer,
        reason="Mug cassé",
    )
    complete_company(session, vat_regime=VatRegime.FRANCHISE, vat_number="")
    guest_order = make_order(
        session,
        shop,
        [make_line("BOITE", 1, "30.00", name="Boîte à thé")],
        billing_address={"first_name": "Łukasz", "last_name": "Nowak", "country_code": "PL"},
    )
    franchise = invoices.issue_invoice(session, guest_order, ACTOR, storage=storage)
    return Period(consumer, business, credit, franchise, marie.id)


def read_csv(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # Excel reads the UTF-8 as such
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def fec_rows(data: bytes) -> list[list[str]]:
    lines = data.decode(accounting_exports.FEC_ENCODING).split("\r\n")
    assert lines[-1] == ""
    return [line.split("|") for line in lines[:-1]]


def amount(text: str) -> Decimal:
    assert AMOUNT.match(text), text
    return Decimal(text.replace(",", "."))


# --- The CSV of documents -------------------------------------------------------------------


def test_the_csv_has_a_row_per_document_with_each_rate_present(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = issue_period(db_session, storage, monkeypatch)
    result = accounting_exports.documents_csv(db_session, DAY_1, DAY_2)
    assert result.filename == "documents-2026-03-02-2026-03-03.csv"
    assert result.documents == 4
    header = result.data.decode("utf-8-sig").splitlines()[0].split(",")
    assert header == [
        "reference",
        "kind",
        "issue_date",
        "order_number",
        "shop",
        "buyer",
        "buyer_vat_number",
        "currency",
        "total_ht",
        "base HT 20 %",
        "TVA 20 %",
        "base HT 10 %",
        "TVA 10 %",
        "base HT 5.5 %",
        "TVA 5.5 %",
        "base HT 0 % E",
        "TVA 0 % E",
        "total_tva",
        "total_ttc",
    ]
    rows = {row["reference"]: row for row in read_csv(result.data)}
    consumer = rows[period.consumer.reference or ""]
    assert consumer["kind"] == "invoice" and consumer["issue_date"] == "2026-03-02"
    assert consumer["buyer"] == "Marie Curie" and consumer["shop"] == "La Boutique du Thé"
    # The mugs and the shipping at 20 %, the book at 5.5 %.
    assert (consumer["base HT 20 %"], consumer["TVA 20 %"]) == ("25.00", "5.00")
    assert (consumer["base HT 5.5 %"], consumer["TVA 5.5 %"]) == ("20.00", "1.10")
    assert consumer["base HT 10 %"] == consumer["base HT 0 % E"] == ""
    assert (consumer["total_ht"], consumer["total_tva"], consumer["total_ttc"]) == (
        "45.00",
        "6.10",
        "51.10",
    )
    business = rows[period.business.reference or ""]
    assert business["buyer"] == "Salon de Thé SARL"
    assert business["buyer_vat_number"] == "FR44732829320"
    assert (business["base HT 10 %"], business["TVA 10 %"], business["total_ttc"]) == (
        "10.00",
        "1.00",
        "11.00",
    )
    credit = rows[period.credit.reference or ""]
    assert credit["kind"] == "credit_note" and credit["order_number"] == consumer["order_number"]
    assert (credit["base HT 20 %"], credit["TVA 20 %"]) == ("-10.00", "-2.00")
    assert (credit["total_ht"], credit["total_tva"], credit["total_ttc"]) == (
        "-10.00",
        "-2.00",
        "-12.00",
    )
    franchise = rows[period.franchise.reference or ""]
    assert (franchise["base HT 0 % E"], franchise["TVA 0 % E"]) == ("30.00", "0.00")
    assert (franchise["total_tva"], franchise["total_ttc"]) == ("0.00", "30.00")
    # Each row adds up: HT + TVA = TTC, and the per-rate columns make the totals.
    for row in rows.values():
        bases = [Decimal(row[name]) for name in row if name.startswith("base HT") and row[name]]
        vats = [Decimal(row[name]) for name in row if name.startswith("TVA") and row[name]]
        assert sum(bases) == Decimal(row["total_ht"]) and sum(vats) == Decimal(row["total_tva"])
        assert Decimal(row["total_ht"]) + Decimal(row["total_tva"]) == Decimal(row["total_ttc"])


def test_the_csv_keeps_only_the_range_and_neutralises_formulas(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, "formules", name='=HYPERLINK("http://evil.test","x")')
    order = make_order(
        db_session,
        shop,
        billing_address={"first_name": "@SUM(A1:A9)", "last_name": "x", "country_code": "FR"},
    )
    _clock(monkeypatch, DAY_1)
    invoices.issue_invoice(db_session, order, ACTOR, storage=storage)
    rows = read_csv(accounting_exports.documents_csv(db_session, DAY_1, DAY_1).data)
    assert rows[0]["shop"] == '\'=HYPERLINK("http://evil.test","x")'
    assert rows[0]["buyer"].startswith("'@SUM")
    assert read_csv(accounting_exports.documents_csv(db_session, DAY_2, DAY_2).data) == []


# --- The FEC sales journal ------------------------------------------------------------------


def test_the_fec_has_the_18_columns_and_a_balanced_entry_per_document(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    period = issue_period(db_session, storage, monkeypatch)
    result = accounting_exports.sales_journal(db_session, DAY_1, DAY_2)
    assert result.filename == "732829320FEC20260303.txt"
    assert result.documents == 4
    header, *rows = fec_rows(result.data)
    assert header == list(FEC_COLUMNS) and len(header) == 18
    assert FEC_COLUMNS[0] == "JournalCode" and FEC_COLUMNS[-1] == "Idevise"
    assert all(len(row) == 18 for row in rows)
    entries: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        entries[row[2]].append(dict(zip(FEC_COLUMNS, row, strict=True)))
    assert list(entries) == ["1", "2", "3", "4"]  # one entry per document, in issue order
    for lines in entries.values():
        debit = sum((amount(line["Debit"]) for line in lines), Decimal(0))
        credit = sum((amount(line["Credit"]) for line in lines), Decimal(0))
        assert debit == credit > 0
        assert len({line["PieceRef"] for line in lines}) == 1
        for line in lines:
            assert line["JournalCode"] == "VE"
            assert line["EcritureDate"] == line["PieceDate"] == line["ValidDate"]
            assert re.fullmatch(r"2026030[23]", line["EcritureDate"])

    def postings(number: str) -> set[tuple[str, str, str]]:
        return {(line["CompteNum"], line["Debit"], line["Credit"]) for line in entries[number]}

    assert entries["1"][0]["PieceRef"] == period.consumer.reference
    assert postings("1") == {
        ("411000", "51,10", "0,00"),
        ("707020", "0,00", "20,00"),  # the mugs
        ("708520", "0,00", "5,00"),  # the shipping
        ("707005", "0,00", "20,00"),  # the book
        ("4457120", "0,00", "5,00"),
        ("4457105", "0,00", "1,10"),
    }
    customer = entries["1"][0]
    assert customer["CompteNum"] == "411000"
    assert customer["CompAuxNum"] == f"C{period.customer_id:06d}"
    assert customer["CompAuxLib"] == "Marie Curie"
    assert customer["EcritureLib"] == f"Facture {period.consumer.reference}"
    assert postings("2") == {
        ("411000", "11,00", "0,00"),
        ("707010", "0,00", "10,00"),
        ("4457110", "0,00", "1,00"),
    }
    # The customer, then the revenue, then the VAT: the order an accountant reads an entry in.
    assert [line["CompteNum"] for line in entries["2"]] == ["411000", "707010", "4457110"]
    # The credit note reverses each side.
    assert entries["3"][0]["EcritureDate"] == "20260303"
    assert entries["3"][0]["EcritureLib"] == (
        f"Avoir {period.credit.reference} sur {period.consumer.reference}"
    )
    assert postings("3") == {
        ("411000", "0,00", "12,00"),
        ("707020", "10,00", "0,00"),
        ("4457120", "2,00", "0,00"),
    }
    # Under the franchise: revenue without VAT; a guest goes to the sundry customers.
    assert postings("4") == {("411000", "30,00", "0,00"), ("707000", "0,00", "30,00")}
    assert entries["4"][0]["CompAuxNum"] == "CDIVERS"


def test_the_fec_is_latin_9_with_no_separator_inside_a_field(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, "pipes")
    customer = make_customer(db_session, "pipe@example.test", "Ann|e", "Łódź\nKraków")
    order = make_order(db_session, shop, customer=customer)
    _clock(monkeypatch, DAY_1)
    invoices.issue_invoice(db_session, order, ACTOR, storage=storage)
    data = accounting_exports.sales_journal(db_session, DAY_1, DAY_1).data
    data.decode("iso-8859-15")  # every byte is Latin-9
    _header, *rows = fec_rows(data)
    assert all(len(row) == 18 for row in rows)
    assert rows[0][7] == "Ann e Lódz Kraków"


def test_the_fec_needs_the_siren_and_euros(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete_company(db_session)
    order = make_order(db_session, make_shop(db_session, "dollars"), currency="USD")
    _clock(monkeypatch, DAY_1)
    invoices.issue_invoice(db_session, order, ACTOR, storage=storage)
    with pytest.raises(ValidationFailed, match="another currency: FA-2026-") as foreign:
        accounting_exports.sales_journal(db_session, DAY_1, DAY_1)
    assert foreign.value.errors == {
        "format": "The FEC is kept in euros; these documents are in another currency:",
        "references": order.documents[0].reference,
    }
    complete_company(db_session, siren="")
    with pytest.raises(ValidationFailed) as refused:
        accounting_exports.sales_journal(db_session, DAY_1, DAY_1)
    assert "SIREN" in refused.value.errors["format"]


def test_the_fec_refusal_lists_ten_foreign_documents_then_an_ellipsis(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    complete_company(db_session)
    shop = make_shop(db_session, "dollars")
    _clock(monkeypatch, DAY_1)
    references = []
    for _ in range(11):
        order = make_order(db_session, shop, currency="USD")
        references.append(
            invoices.issue_invoice(db_session, order, ACTOR, storage=storage).reference
        )
        with pytest.raises(ValidationFailed) as refused:
            accounting_exports.sales_journal(db_session, DAY_1, DAY_1)
        if len(references) == 10:
            assert refused.value.errors["references"] == ", ".join(references)
    assert refused.value.errors["references"] == ", ".join(references[:10]) + " …"


SUMS = st.builds(
    Sum,
    family=st.sampled_from([accounting_exports.GOODS_ROOT, accounting_exports.SHIPPING_ROOT]),
    rate=st.sampled_from(
        [Decimal("20.00"), Decimal("10.00"), Decimal("5.50"), Decimal("2.10"), Decimal("0.00")]
    ),
    category=st.sampled_from(["S", "E"]),
    net=st.decimals(min_value=-500, max_value=5000, places=2),
    tax=st.decimals(min_value=-100, max_value=1000, places=2),
)


@settings(max_examples=300, deadline=None)
@given(
    documents=st.lists(
        st.tuples(st.sampled_from(list(accounting_exports.SALES_KINDS)), st.lists(SUMS)),
        min_size=1,
        max_size=8,
    )
)
def test_every_entry_balances_whatever_its_lines(
    documents: list[tuple[DocumentKind, list[Sum]]],
) -> None:
    for number, (kind, sums) in enumerate(documents, start=1):
        document = Issued(number, kind, f"X-{number}", DAY_1, "EUR", "B", None, "#1", "S", "", "")
        postings = entry(document, sums)
        debit = sum((p.debit for p in postings), Decimal(0))
        credit = sum((p.credit for p in postings), Decimal(0))
        assert debit == credit
        assert all(p.debit >= 0 and p.credit >= 0 and not (p.debit and p.credit) for p in postings)
        for p in postings:  # "0,00" and "12,50", never "-0,00"
            assert AMOUNT.match(fec_amount(p.debit)) and AMOUNT.match(fec_amount(p.credit))
        # The customer owes what the lines come to (a credit note: is owed it).
        owed = sum((s.net + s.tax for s in sums), Decimal(0))
        customer = postings[0]
        assert customer.account == "411000"
        sign = 1 if kind == DocumentKind.INVOICE else -1
        assert customer.debit - customer.credit == sign * owed


# --- The e-reporting summary ----------------------------------------------------------------


def test_the_ereporting_sums_consumer_sales_per_day_and_rate(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    issue_period(db_session, storage, monkeypatch)
    result = accounting_exports.consumer_sales(db_session, DAY_1, DAY_2)
    assert result.filename == "e-reporting-2026-03-02-2026-03-03.csv"
    assert result.documents == 3  # the business's invoice is left out
    rows = [
        (r["date"], r["currency"], r["category"], r["rate"], r["base"], r["vat"], r["documents"])
        for r in read_csv(result.data)
    ]
    assert rows == [
        ("2026-03-02", "EUR", "S", "20.00", "25.00", "5.00", "1"),
        ("2026-03-02", "EUR", "S", "5.50", "20.00", "1.10", "1"),
        # The next day: the franchise sale, and the credit note deducted.
        ("2026-03-03", "EUR", "E", "0.00", "30.00", "0.00", "1"),
        ("2026-03-03", "EUR", "S", "20.00", "-10.00", "-2.00", "1"),
    ]


def test_the_ereporting_nets_a_credit_note_of_the_same_day(
    db_session: Session, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = complete_company(db_session)
    order = make_order(db_session, make_shop(db_session, "jour"), [make_line("A", 3, "12.00")])
    _clock(monkeypatch, DAY_1)
    invoice = invoices.issue_invoice(db_session, order, ACTOR, storage=storage)
    line = invoices.Line(
        "product", "A", Decimal(1), Decimal("10.00"), Decimal("20.00"), Decimal("10.00"),
        Decimal("2.00"), order_line_id=order.lines[0].id,
    )  # fmt: skip
    invoices._issue(
        db_session,
        order,
        ACTOR,
        DocumentKind.CREDIT_NOTE,
        [line],
        company,
        locale="fr",
        storage=storage,
        renderer=None,
        corrects=invoice,
        reason="retour",
    )
    rows = read_csv(accounting_exports.consumer_sales(db_session, DAY_1, DAY_1).data)
    assert [(r["base"], r["vat"], r["documents"]) for r in rows] == [("20.00", "4.00", "2")]


# --- The range ------------------------------------------------------------------------------


def test_the_range_is_checked() -> None:
    assert accounting_exports.parse_range("2026-01-01", "2026-12-31") == (
        dt.date(2026, 1, 1),
        dt.date(2026, 12, 31),
    )
    with pytest.raises(ValidationFailed) as backwards:
        accounting_exports.parse_range("2026-03-02", "2026-03-01")
    assert backwards.value.errors == {"to": "The end date is before the start date."}
    with pytest.raises(ValidationFailed) as wide:
        accounting_exports.parse_range("2024-01-01", "2026-01-01")
    assert set(wide.value.errors) == {"to"}
    with pytest.raises(ValidationFailed) as garbled:
        accounting_exports.parse_range("02/03/2026", "")
    assert set(garbled.value.errors) == {"from", "to"}


# --- flask documents export -----------------------------------------------------------------


def test_the_cli_writes_each_export(
    app: Flask,
    db_session: Session,
    storage: LocalStorage,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    period = issue_period(db_session, storage, monkeypatch)
    db_session.commit()
    runner = app.test_cli_runner()
    dates = ["--from", "2026-03-02", "--to", "2026-03-03"]
    printed = runner.invoke(args=["documents", "export", "--format", "csv", *dates])
    assert printed.exit_code == 0, printed.output
    rows = read_csv(printed.stdout_bytes)
    assert [row["reference"] for row in rows] == [
        period.consumer.reference,
        period.business.reference,
        period.credit.reference,
        period.franchise.reference,
    ]
    # Into a folder: the FEC under its legal name, readable by its owner only.
    fec = runner.invoke(args=["documents", "export", "--format", "fec", *dates, "-o", tmp_path])
    assert fec.exit_code == 0, fec.output
    written = tmp_path / "732829320FEC20260303.txt"
    assert f"4 documents written to {written}" in fec.output
    assert written.stat().st_mode & 0o777 == 0o600
    assert fec_rows(written.read_bytes())[0] == list(FEC_COLUMNS)
    summary = tmp_path / "b2c.csv"
    done = runner.invoke(
        args=["documents", "export", "--format", "ereporting", *dates, "--output", summary]
    )
    assert done.exit_code == 0, done.output
    assert len(read_csv(summary.read_bytes())) == 4


def test_the_cli_names_what_is_wrong(app: Flask) -> None:
    runner = app.test_cli_runner()
    backwards = runner.invoke(
        args=[
            "documents",
            "export",
            "--format",
            "csv",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-01",
        ]
    )
    assert backwards.exit_code != 0
    assert "to: The end date is before the start date." in backwards.output
    unknown = runner.invoke(
        args=[
            "documents",
            "export",
            "--format",
            "pdf",
            "--from",
            "2026-03-02",
            "--to",
            "2026-03-03",
        ]
    )
    assert unknown.exit_code != 0 and "'pdf' is not one of" in unknown.output
