"""The accountant's exports of issued invoices and credit notes, over a range of issue dates.

Three files, every figure summed by the database from the documents' lines (`DocumentLine`,
rounded to the cent on each line when issued), never re-read from a PDF:

- `csv`: one row per document with its totals excluding tax, the base and VAT of each rate
  present in the range, the VAT and the total with tax; credit notes as negative figures.
- `fec`: the sales journal in the layout of the *fichier des écritures comptables* (article
  A47 A-1 of the Livre des procédures fiscales): 18 columns, `|`-separated, dates YYYYMMDD,
  amounts with a decimal comma, ISO 8859-15. One entry per document: the customer debited
  with the total with tax, revenue credited per account and rate, the VAT collected per rate
  credited (a credit note the reverse). The customer's amount is the sum of the others, so
  every entry balances by construction. It is the sales journal only: the accountant merges
  it into the company's FEC, which holds every journal of the fiscal year.
- `ereporting`: the sales to consumers (a buyer that is not a business) per day, currency,
  VAT category and rate — taxable base, VAT and how many documents — credit notes deducted:
  the summary an approved platform (plateforme agréée) asks for under the 2027 e-reporting
  duty. It is not a transmission.
"""

from __future__ import annotations

import codecs
import datetime as dt
import io
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal_column, select
from sqlalchemy.orm import Session

from web.documents.company import company_settings
from web.documents.invoices import RATE_PLACES, ZERO, money
from web.i18n import N_
from web.models import Document, DocumentLine, Order
from web.models.enums import DocumentKind, DocumentState
from web.services.csvsafe import csv_writer, safe_cell
from web.services.errors import ValidationFailed

FORMATS = ("csv", "fec", "ereporting")
# A fiscal year lasts at most 24 months (the first one may be longer than 12): the widest
# range one export covers.
MAX_DAYS = 731

# --- The accounts of the FEC (French general chart of accounts, PCG) -----------------------
JOURNAL_CODE = "VE"
JOURNAL_LABEL = "Ventes"
CUSTOMER_ACCOUNT = "411000"
CUSTOMER_LABEL = "Clients"
# A buyer without a customer record of ours (a guest order): one auxiliary account for all.
MISC_CUSTOMER = "CDIVERS"
MISC_CUSTOMER_LABEL = "Clients divers"
# Revenue and VAT accounts end with the rate's code: 707020 sales of goods at 20 %,
# 708520 shipping charged at 20 %, 4457120 VAT collected at 20 %.
GOODS_ROOT = "7070"  # 707 Ventes de marchandises: products, fees, discounts, credits by amount
SHIPPING_ROOT = "7085"  # 7085 Ports et frais accessoires facturés
VAT_ROOT = "44571"  # 44571 TVA collectée
RATE_CODES = {
    Decimal("20.00"): "20",
    Decimal("10.00"): "10",
    Decimal("5.50"): "05",
    Decimal("2.10"): "02",
    Decimal("0.00"): "00",
}
ACCOUNT_LABELS = {
    GOODS_ROOT: "Ventes de marchandises",
    SHIPPING_ROOT: "Ports et frais accessoires facturés",
    VAT_ROOT: "TVA collectée",
}
FEC_COLUMNS = (
    "JournalCode",
    "JournalLib",
    "EcritureNum",
    "EcritureDate",
    "CompteNum",
    "CompteLib",
    "CompAuxNum",
    "CompAuxLib",
    "PieceRef",
    "PieceDate",
    "EcritureLib",
    "Debit",
    "Credit",
    "EcritureLet",
    "DateLet",
    "ValidDate",
    "Montantdevise",
    "Idevise",
)
# Article A47 A-1: a flat file in ASCII, ISO 8859-15 or EBCDIC.
FEC_ENCODING = "iso-8859-15"

CSV_HEAD = (
    "reference",
    "kind",
    "issue_date",
    "order_number",
    "shop",
    "buyer",
    "buyer_vat_number",
    "currency",
    "total_ht",
)
CSV_TAIL = ("total_tva", "total_ttc")
CSV_TYPE = "text/csv; charset=utf-8"
EREPORTING_COLUMNS = ("date", "currency", "category", "rate", "base", "vat", "documents")

SALES_KINDS = (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE)
CHOOSE_FORMAT = N_("Choose a format: CSV, FEC or e-reporting.")


@dataclass(frozen=True)
class Export:
    """A file ready to hand over: its name, type, bytes, and how many documents it covers."""

    filename: str
    content_type: str
    data: bytes
    documents: int


# --- The range ----------------------------------------------------------------------------


def parse_range(start: str, end: str) -> tuple[dt.date, dt.date]:
    """The issue dates from `start` to `end` (YYYY-MM-DD, both included), or why not.

    Raises ValidationFailed whose errors name the field (`from`, `to`) with a msgid.
    """
    errors: dict[str, str] = {}
    dates: dict[str, dt.date] = {}
    for field, value in (("from", start), ("to", end)):
        try:
            dates[field] = dt.date.fromisoformat(value.strip())
        except ValueError:
            errors[field] = N_("Enter a date as YYYY-MM-DD.")
    if not errors:
        if dates["from"] > dates["to"]:
            errors["to"] = N_("The end date is before the start date.")
        elif (dates["to"] - dates["from"]).days >= MAX_DAYS:
            errors["to"] = N_("An export covers at most 24 months (a fiscal year at most).")
    if errors:
        raise ValidationFailed("the export's dates are not valid", errors)
    return dates["from"], dates["to"]


def export(session: Session, fmt: str, start: dt.date, end: dt.date) -> Export:
    """Build the export `fmt` (csv, fec, ereporting) of the documents issued in the range."""
    if fmt == "csv":
        return documents_csv(session, start, end)
    if fmt == "fec":
        return sales_journal(session, start, end)
    if fmt == "ereporting":
        return consumer_sales(session, start, end)
    raise ValidationFailed("unknown export format", {"format": CHOOSE_FORMAT})


# --- What the database sums ---------------------------------------------------------------


def _issued_between(start: dt.date, end: dt.date) -> list[ColumnElement[bool]]:
    return [
        Document.state == DocumentState.ISSUED,
        Document.kind.in_(SALES_KINDS),
        Document.issue_date >= start,
        Document.issue_date <= end,
    ]


@dataclass(frozen=True)
class Issued:
    """One issued document as the exports name it (what it says, frozen when issued)."""

    id: int
    kind: DocumentKind
    reference: str
    issue_date: dt.date
    currency: str
    buyer: str
    customer_id: int | None
    order_number: str
    shop: str
    buyer_vat_number: str
    corrects: str

    @property
    def sign(self) -> int:
        return -1 if self.kind == DocumentKind.CREDIT_NOTE else 1


def _documents(session: Session, start: dt.date, end: dt.date) -> list[Issued]:
    """The documents issued in the range, in the order they were issued."""
    snap = Document.snapshot
    query = (
        select(
            Document.id,
            Document.kind,
            Document.reference,
            Document.issue_date,
            Document.currency,
            Document.buyer_name,
            Order.customer_id,
            snap[("order", "number")].as_string(),
            snap[("order", "shop")].as_string(),
            snap[("buyer", "vat_number")].as_string(),
            snap[("corrects", "reference")].as_string(),
        )
        .join(Order, Order.id == Document.order_id)
        .where(*_issued_between(start, end))
        .order_by(Document.issue_date, Document.issued_at, Document.id)
    )
    return [
        Issued(
            id=row[0],
            kind=row[1],
            reference=row[2] or "",
            issue_date=row[3],
            currency=row[4],
            buyer=row[5] or "",
            customer_id=row[6],
            order_number=row[7] or "",
            shop=row[8] or "",
            buyer_vat_number=row[9] or "",
            corrects=row[10] or "",
        )
        for row in session.execute(query)
    ]


@dataclass(frozen=True)
class Sum:
    """A document's lines of one family (goods or shipping), rate and category, summed."""

    family: str
    rate: Decimal
    category: str
    net: Decimal
    tax: Decimal


def _sums(session: Session, start: dt.date, end: dt.date) -> dict[int, list[Sum]]:
    """Per document, its lines summed per family, VAT rate and category (as issued: positive
    on a credit note)."""
    family = case((DocumentLine.kind == "shipping", SHIPPING_ROOT), else_=GOODS_ROOT)
    rate = _rounded_rate()
    query = (
        select(
            DocumentLine.document_id,
            family,
            rate,
            DocumentLine.tax_category,
            func.sum(DocumentLine.total_net),
            func.sum(DocumentLine.tax_amount),
        )
        .join(Document, Document.id == DocumentLine.document_id)
        .where(*_issued_between(start, end))
        .group_by(DocumentLine.document_id, family, rate, DocumentLine.tax_category)
    )
    sums: dict[int, list[Sum]] = defaultdict(list)
    for document_id, root, value, category, net, tax in session.execute(query):
        sums[document_id].append(Sum(root, _rate(value), category, _cents(net), _cents(tax)))
    return sums


def _rounded_rate() -> Any:
    """The line's rate to the hundredth, as the document prints it (a shop's 5.4999 is 5.50)."""
    return func.round(DocumentLine.tax_rate, literal_column("2"))


def _cents(value: Any) -> Decimal:
    """A sum from the database, to the cent; never "-0.00"."""
    return money(Decimal(value or 0)) + ZERO


def _rate(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(RATE_PLACES)


def _percent(rate: Decimal) -> str:
    """20.00 → "20", 5.50 → "5.5": a rate as people write it."""
    return f"{rate.normalize():f}"


def _day(value: dt.date | None) -> str:
    return value.isoformat() if value is not None else ""


# --- The CSV of documents -----------------------------------------------------------------


def documents_csv(session: Session, start: dt.date, end: dt.date) -> Export:
    """One row per invoice and credit note: HT, base and VAT per rate present, VAT, TTC."""
    documents = _documents(session, start, end)
    sums = _sums(session, start, end)
    columns = sorted(
        {(part.rate, part.category) for parts in sums.values() for part in parts},
        key=lambda key: (key[0], key[1] == "S"),
        reverse=True,
    )
    out = io.StringIO()
    writer = csv_writer(out)
    labels = [
        label
        for rate, category in columns
        for label in (_column("base HT", rate, category), _column("TVA", rate, category))
    ]
    writer.writerow([*CSV_HEAD, *labels, *CSV_TAIL])
    for document in documents:
        by_rate: dict[tuple[Decimal, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
        for part in sums.get(document.id, []):
            figures = by_rate[(part.rate, part.category)]
            figures[0] += part.net
            figures[1] += part.tax
        sign = document.sign
        net = sum((figures[0] for figures in by_rate.values()), ZERO)
        tax = sum((figures[1] for figures in by_rate.values()), ZERO)
        per_rate: list[Any] = []
        for key in columns:
            if key in by_rate:
                per_rate += [_signed(sign, by_rate[key][0]), _signed(sign, by_rate[key][1])]
            else:
                per_rate += ["", ""]
        writer.writerow(
            [
                document.reference,
                document.kind.value,
                _day(document.issue_date),
                document.order_number,
                document.shop,
                document.buyer,
                document.buyer_vat_number,
                document.currency,
                _signed(sign, net),
                *per_rate,
                _signed(sign, tax),
                _signed(sign, net + tax),
            ]
        )
    data = codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
    return Export(f"documents-{start}-{end}.csv", CSV_TYPE, data, len(documents))


def _signed(sign: int, value: Decimal) -> Decimal:
    """A credit note's amount negative; zero stays "0.00", never "-0.00"."""
    return sign * value + ZERO


def _column(name: str, rate: Decimal, category: str) -> str:
    """ "base HT 20 %", "TVA 5.5 %"; a category other than standard is named: "base HT 0 % E"."""
    label = f"{name} {_percent(rate)} %"
    return label if category == "S" else f"{label} {category}"


# --- The FEC sales journal ----------------------------------------------------------------


@dataclass(frozen=True)
class Posting:
    """One line of a FEC entry: an account debited or credited."""

    account: str
    label: str
    debit: Decimal
    credit: Decimal
    aux_account: str = ""
    aux_label: str = ""


def rate_code(rate: Decimal) -> str:
    """The two digits that end an account of this rate; an uncommon rate gets four."""
    return RATE_CODES.get(rate) or f"{int(rate * 100):04d}"


def account(root: str, rate: Decimal) -> str:
    """The revenue or VAT account of a rate: 707020, 708520, 4457120."""
    return root + rate_code(rate)


def entry(document: Issued, sums: Iterable[Sum]) -> list[Posting]:
    """A document's entry: the customer against revenue and VAT per rate, balanced.

    On an invoice the revenue and VAT accounts are credited and the customer debited with
    their sum; a credit note reverses each side. An amount that comes out negative (a
    discount larger than what it applies to) goes to the other side of the same account.
    """
    credits: dict[str, Decimal] = defaultdict(lambda: ZERO)
    labels: dict[str, str] = {}
    for part in sums:
        revenue = account(part.family, part.rate)
        credits[revenue] += part.net
        labels[revenue] = f"{ACCOUNT_LABELS[part.family]} {_percent(part.rate)} %"
        if part.tax:
            vat = account(VAT_ROOT, part.rate)
            credits[vat] += part.tax
            labels[vat] = f"{ACCOUNT_LABELS[VAT_ROOT]} {_percent(part.rate)} %"
    sign = Decimal(document.sign)
    if document.customer_id is not None:
        aux, aux_label = f"C{document.customer_id:06d}", document.buyer or CUSTOMER_LABEL
    else:
        aux, aux_label = MISC_CUSTOMER, MISC_CUSTOMER_LABEL
    owed = sign * sum(credits.values(), ZERO)
    postings = [_posting(CUSTOMER_ACCOUNT, CUSTOMER_LABEL, owed, aux, aux_label)]
    # Revenue accounts (7…) first, then VAT (4…), each by account number.
    for number in sorted(credits, key=lambda n: (n.startswith("4"), n)):
        if credits[number]:
            postings.append(_posting(number, labels[number], -sign * credits[number]))
    return postings


def _posting(
    number: str, label: str, debit: Decimal, aux: str = "", aux_label: str = ""
) -> Posting:
    """A posting of `debit` (a negative amount is a credit of its opposite)."""
    debit += ZERO  # -0.00 (a credit note of nothing) is 0.00
    if debit >= 0:
        return Posting(number, label, debit, ZERO, aux, aux_label)
    return Posting(number, label, ZERO, -debit, aux, aux_label)


def _fec_text(value: str) -> str:
    """A text field: no separator, no line break, never a formula in a spreadsheet."""
    flat = " ".join(value.replace("|", " ").split())
    return safe_cell(flat)


def fec_amount(value: Decimal) -> str:
    """12.5 → "12,50": the decimal comma of the FEC."""
    return f"{money(value):f}".replace(".", ",")


def _fec_date(value: dt.date) -> str:
    return value.strftime("%Y%m%d")


# Letters that Unicode does not decompose into a base letter and an accent.
UNDECOMPOSED = str.maketrans({"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "ı": "i", "Ħ": "H", "ħ": "h"})


def _latin9(text: str) -> str:
    """What ISO 8859-15 can hold: accents it lacks are dropped ("ź" → "z"), the rest is "?"."""
    out = []
    for char in text.translate(UNDECOMPOSED):
        try:
            char.encode(FEC_ENCODING)
            out.append(char)
        except UnicodeEncodeError:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            out.append(plain or "?")
    return "".join(out)


def fec_rows(session: Session, start: dt.date, end: dt.date) -> Iterator[list[str]]:
    """The journal's rows, header first: one entry per document, numbered 1, 2, 3…"""
    documents = _documents(session, start, end)
    foreign = [d.reference for d in documents if d.currency != "EUR"]
    if foreign:
        raise ValidationFailed(
            "the FEC is kept in euros; documents in another currency: " + ", ".join(foreign[:10]),
            {
                "format": N_("The FEC is kept in euros; these documents are in another currency:"),
                "references": ", ".join(foreign[:10]) + (" …" if len(foreign) > 10 else ""),
            },
        )
    sums = _sums(session, start, end)
    yield list(FEC_COLUMNS)
    for number, document in enumerate(documents, start=1):
        day = _fec_date(document.issue_date)
        if document.kind == DocumentKind.CREDIT_NOTE:
            wording = f"Avoir {document.reference}"
            if document.corrects:
                wording += f" sur {document.corrects}"
        else:
            wording = f"Facture {document.reference}"
        for posting in entry(document, sums.get(document.id, [])):
            yield [
                JOURNAL_CODE,
                JOURNAL_LABEL,
                str(number),
                day,
                posting.account,
                _fec_text(posting.label),
                posting.aux_account,
                _fec_text(posting.aux_label),
                _fec_text(document.reference),
                day,
                _fec_text(wording),
                fec_amount(posting.debit),
                fec_amount(posting.credit),
                "",
                "",
                day,  # issued means validated: the document can no longer change
                "",
                "",
            ]


def fec_filename(siren: str, end: dt.date) -> str:
    """`{SIREN}FEC{YYYYMMDD}.txt`, the date being the closing date (the range's end)."""
    return f"{siren}FEC{_fec_date(end)}.txt"


def sales_journal(session: Session, start: dt.date, end: dt.date) -> Export:
    """The sales journal in the FEC layout, named after the company's SIREN and the end date."""
    siren = company_settings(session).siren
    if not siren:
        raise ValidationFailed(
            "the FEC's name carries the SIREN, which the company settings lack",
            {"format": N_("Fill in the company's SIREN first: the FEC's name carries it.")},
        )
    lines = ["|".join(row) for row in fec_rows(session, start, end)]
    text = _latin9("\r\n".join(lines) + "\r\n")
    count = len({line.split("|")[2] for line in lines[1:]})
    return Export(
        fec_filename(siren, end),
        f"text/plain; charset={FEC_ENCODING}",
        text.encode(FEC_ENCODING, "replace"),
        count,
    )


# --- The e-reporting summary of sales to consumers ----------------------------------------


def consumer_sales(session: Session, start: dt.date, end: dt.date) -> Export:
    """Per day, currency, category and rate: base and VAT of sales to consumers, credit
    notes deducted, and how many documents."""
    sign = case((Document.kind == DocumentKind.CREDIT_NOTE, -1), else_=1)
    is_business = Document.snapshot[("buyer", "is_business")].as_boolean()
    rate = _rounded_rate()
    query = (
        select(
            Document.issue_date,
            Document.currency,
            DocumentLine.tax_category,
            rate,
            func.sum(DocumentLine.total_net * sign),
            func.sum(DocumentLine.tax_amount * sign),
            func.count(func.distinct(Document.id)),
        )
        .join(Document, Document.id == DocumentLine.document_id)
        .where(*_issued_between(start, end), is_business.is_not(True))
        .group_by(
            Document.issue_date,
            Document.currency,
            DocumentLine.tax_category,
            rate,
        )
        .order_by(
            Document.issue_date,
            Document.currency,
            DocumentLine.tax_category,
            rate.desc(),
        )
    )
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(EREPORTING_COLUMNS)
    for day, currency, category, value, base, tax, count in session.execute(query):
        writer.writerow(
            [
                _day(day),
                currency,
                category,
                _rate(value),
                _cents(base),
                _cents(tax),
                count,
            ]
        )
    documents_count = session.scalar(
        select(func.count(Document.id)).where(
            *_issued_between(start, end), is_business.is_not(True)
        )
    )
    data = codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
    return Export(f"e-reporting-{start}-{end}.csv", CSV_TYPE, data, int(documents_count or 0))
