"""Tracking numbers from a carrier's or label tool's CSV, onto the orders' shipments.

Reading: the file's encoding is found (UTF-8 with or without BOM, UTF-16 with a BOM, else
Windows-1252, else Latin-1) and its separator (`;` as Excel writes in French, `,`, tab,
`|`); blank lines are skipped; the first row is a header when it names a known column, in
French or English, else the columns are taken by position (order, tracking, mode, weight).

Each row, in a transaction of its own so a bad row never undoes the good ones:
- the order is found by its number in the shops (with or without `#`), else by the shop's
  own id for it; a number several shops use is refused with their names;
- a shipment of the order already holding the tracking number: nothing to do ("already
  there"), so the same file imported twice changes nothing;
- a shipment of ours that is not delivered and has no tracking number yet: the parcel is
  added and the shipment shipped when it was not ("completed");
- else everything that remains is shipped in one parcel with the row's mode (the order's
  own when the row names none) and weight, under the idempotency key
  `import:{order_id}:{tracking}` ("created"); a later row of the same file for the same
  order, once nothing remains, adds its parcel to the shipment this import made;
- anything else is refused with its reason (unknown order, cancelled, on hold, nothing
  remains to ship, unmapped shipping method and no mode in the file, bad weight…).

As a job, the outcomes are saved with the job's progress every few rows; a job run again
after a crash resumes from the last save, and the rows it goes through twice find their
tracking "already there".
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from web import queue
from web.i18n import N_
from web.models import Job, ShippingMode, User
from web.models.enums import ShipmentOrigin, ShipmentState
from web.models.orders import Order
from web.models.shipping import Shipment
from web.services import order_actions, shipments
from web.services.csvsafe import csv_writer
from web.services.errors import DomainError, InvalidTransition, NotFound, ValidationFailed
from web.services.timeline import Actor

log = logging.getLogger(__name__)

IMPORT_JOB = "shipping.import_tracking"

MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000
SAVE_EVERY = 25
# The page lists this many refused rows; the CSV of refusals holds them all.
MAX_REFUSALS_SHOWN = 200

SEPARATORS = (";", ",", "\t", "|")
COLUMNS = ("number", "reference", "tracking", "mode", "weight")
POSITIONAL = ("number", "tracking", "mode", "weight")

# Header names, lower case, accents and punctuation folded to single spaces.
# fmt: off
SYNONYMS = {
    "number": {
        "order", "order number", "order no", "order nr", "order num", "order name",
        "commande", "numero de commande", "numero commande", "n de commande", "n commande",
        "no commande", "no de commande", "num commande", "num de commande", "ndeg commande",
        "ndeg de commande", "reference commande", "ref commande", "order reference",
        "order ref", "reference", "ref",
    },
    "reference": {
        "shop reference", "shop ref", "order id", "id commande", "id de commande",
        "reference boutique", "external id", "shop order id", "reference externe",
    },
    "tracking": {
        "tracking", "tracking number", "tracking no", "tracking nr", "tracking code",
        "tracking id", "suivi", "numero de suivi", "numero suivi", "n de suivi", "n suivi",
        "no de suivi", "no suivi", "ndeg de suivi", "ndeg suivi", "code de suivi", "code suivi",
        "numero de colis", "n de colis", "numero colis", "parcel number", "awb",
        "numero d expedition", "lt", "numero lt",
    },
    "mode": {
        "mode", "shipping mode", "shipping method", "carrier", "transporteur",
        "mode de livraison", "mode d expedition", "mode de transport", "service",
        "livraison", "transport",
    },
    "weight": {
        "weight", "weight kg", "poids", "poids kg", "poids en kg", "weight in kg", "masse",
    },
}
# fmt: on

TOO_BIG = N_("The file is too big: 2 MB at most.")
TOO_MANY = N_("The file has too many rows: 5,000 at most; split it.")
EMPTY = N_("The file is empty.")
WORKBOOK = N_("This is a spreadsheet workbook, not a CSV file: save it as CSV first.")
NOT_TEXT = N_("This file is not text: send a CSV file.")
NO_COLUMNS = N_(
    "No usable column: the file needs an order number and a tracking number "
    "(a header such as “Commande;Suivi”, or those two columns first)."
)

UNKNOWN_ORDER = N_("unknown order")
AMBIGUOUS = N_("this order number is in several shops; use the shop's reference")
NO_ORDER = N_("no order number")
NO_TRACKING = N_("no tracking number")
UNKNOWN_MODE = N_("unknown shipping mode")
CANCELLED_TRACKING = N_("a cancelled shipment of the order holds this tracking number")
FAILED = N_("the change could not be saved; try again")
EXTRA_CELLS = N_(
    "this row has more cells than the first one: a value holds the separator "
    "(a decimal comma in a comma-separated file?)"
)

CREATED, COMPLETED, ALREADY, REFUSED = "created", "completed", "already_there", "refused"
OUTCOMES = (CREATED, COMPLETED, ALREADY, REFUSED)


@dataclass(frozen=True)
class Row:
    """One row of the file, as text, with its line number in the file."""

    line: int
    number: str = ""
    reference: str = ""
    tracking: str = ""
    mode: str = ""
    weight: str = ""
    # Why the row cannot be read as the header says (a msgid), found while parsing.
    problem: str = ""

    @property
    def order_text(self) -> str:
        return self.number or self.reference


@dataclass(frozen=True)
class ParsedFile:
    """The rows of a file and how it was read."""

    rows: list[Row]
    encoding: str
    separator: str
    header: bool


@dataclass(frozen=True)
class Outcome:
    """What became of one row: created, completed, already there or refused (with why)."""

    line: int
    order: str
    tracking: str
    outcome: str
    reason: str = ""
    detail: str = ""
    shipment: str = ""
    row: Row | None = None

    def as_list(self) -> list[Any]:
        row = self.row or Row(self.line)
        return [
            self.line, self.order, self.tracking, self.outcome, self.reason, self.detail,
            self.shipment, row.mode, row.weight,
        ]  # fmt: skip

    @classmethod
    def from_list(cls, values: Sequence[Any]) -> Outcome:
        line, order, tracking, outcome, reason, detail, shipment, mode, weight = values
        row = Row(int(line), str(order), "", str(tracking), str(mode), str(weight))
        return cls(int(line), order, tracking, outcome, reason, detail, shipment, row)


@dataclass
class Summary:
    """The outcomes of an import, in the file's order, with their counts."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for item in self.outcomes if item.outcome == outcome)

    @property
    def counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in OUTCOMES}

    @property
    def refused(self) -> list[Outcome]:
        return [item for item in self.outcomes if item.outcome == REFUSED]


class Refused(DomainError):
    """A row that cannot be applied: `reason` is a msgid, `detail` plain text."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# --- Reading the file ------------------------------------------------------------------------


def _refuse(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"file": message})


def decode(data: bytes) -> tuple[str, str]:
    """The file's text and the name of the encoding it was read with."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise _refuse(NOT_TEXT) from None
    if data.startswith(b"PK\x03\x04") or data.startswith(b"\xd0\xcf\x11\xe0"):
        raise _refuse(WORKBOOK)
    if b"\x00" in data:
        raise _refuse(NOT_TEXT)
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "cp1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "latin-1"


_KG = re.compile(r"\s*kg$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _fold(text: str) -> str:
    """A header cell as the synonyms are written: lower case, no accents, words only."""
    plain = unicodedata.normalize("NFKD", text.replace("°", "deg")).encode("ascii", "ignore")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain.decode().lower()).split())


def _split(lines: Sequence[str], separator: str) -> list[list[str]]:
    return list(csv.reader(lines, delimiter=separator))


def detect_separator(lines: Sequence[str]) -> str:
    """The separator that cuts the first lines into the same number of cells, the most."""
    sample = lines[:20]
    best, best_score = SEPARATORS[0], (-1.0, 0)
    for separator in SEPARATORS:
        widths = [len(cells) for cells in _split(sample, separator)]
        if not widths or widths[0] < 2:
            continue
        steady = sum(1 for width in widths if width == widths[0]) / len(widths)
        score = (steady, widths[0])
        if score > best_score:
            best, best_score = separator, score
    return best


def _header_columns(cells: Sequence[str]) -> dict[str, int]:
    columns: dict[str, int] = {}
    for index, cell in enumerate(cells):
        folded = _fold(cell)
        for name, names in SYNONYMS.items():
            if folded in names and name not in columns:
                columns[name] = index
    return columns


def parse(data: bytes) -> ParsedFile:
    """Read the rows of a tracking file; ValidationFailed when the file itself is unusable."""
    if len(data) > MAX_BYTES:
        raise _refuse(TOO_BIG)
    text, encoding = decode(data)
    if _CONTROL.search(text):
        raise _refuse(NOT_TEXT)
    numbered = [
        (number, line)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip(" \t;,|\"'")
    ]
    if not numbered:
        raise _refuse(EMPTY)
    separator = detect_separator([line for _number, line in numbered])
    first = _split([numbered[0][1]], separator)[0]
    columns = _header_columns(first)
    header = bool(columns)
    if not header:
        columns = {name: index for index, name in enumerate(POSITIONAL) if index < len(first)}
        if len(first) > 1 and not any(char.isdigit() for char in first[1]):
            # A tracking number always has digits: this first row is a header we do not know.
            raise _refuse(NO_COLUMNS)
    if "tracking" not in columns or not ({"number", "reference"} & columns.keys()):
        raise _refuse(NO_COLUMNS)
    body = numbered[1:] if header else numbered
    if len(body) > MAX_ROWS:
        raise _refuse(TOO_MANY)
    rows = []
    for line_number, line in body:
        cells = _split([line], separator)[0] if line else []

        def cell(name: str, cells: list[str] = cells) -> str:
            index = columns.get(name)
            value = cells[index] if index is not None and index < len(cells) else ""
            value = " ".join(value.split())
            return _KG.sub("", value) if name == "weight" else value

        extra = any(value.strip() for value in cells[len(first) :])
        row = Row(
            line_number,
            number=cell("number"),
            reference=cell("reference"),
            tracking=cell("tracking"),
            mode=cell("mode"),
            weight=cell("weight"),
            problem=EXTRA_CELLS if extra else "",
        )
        rows.append(row)
    return ParsedFile(rows, encoding, separator, header)


# --- Applying one row ------------------------------------------------------------------------


def _number_candidates(text: str) -> set[str]:
    bare = text.lstrip("#").strip()
    return {text, bare, f"#{bare}"} - {"", "#"}


def find_order(session: Session, text: str) -> Order:
    """The order a row names: by number in the shops, else by the shop's own id for it."""
    text = text.strip()
    if not text:
        raise Refused(NO_ORDER)
    by_number = list(
        session.scalars(select(Order).where(Order.number.in_(_number_candidates(text))))
    )
    found = by_number or list(session.scalars(select(Order).where(Order.external_id == text)))
    if not found:
        raise Refused(UNKNOWN_ORDER)
    if len(found) > 1:
        shops = sorted({order.shop.name for order in found})
        raise Refused(AMBIGUOUS, ", ".join(shops))
    return found[0]


def find_mode(session: Session, text: str) -> ShippingMode | None:
    """The shipping mode a row names by its code or name; None for an empty cell."""
    if not text:
        return None
    folded = text.strip().lower()
    mode = session.scalar(
        select(ShippingMode)
        .where(or_(ShippingMode.code == folded, func.lower(ShippingMode.name) == folded))
        .order_by(ShippingMode.is_active.desc(), ShippingMode.id)
        .limit(1)
    )
    if mode is None:
        raise Refused(UNKNOWN_MODE, text)
    return mode


def _same(a: str, b: str) -> bool:
    return a.casefold() == b.casefold()


def _holding(order: Order, tracking: str) -> list[Shipment]:
    return [
        shipment
        for shipment in order.shipments
        if any(_same(parcel.tracking_number, tracking) for parcel in shipment.parcels)
    ]


def _untracked(order: Order) -> Shipment | None:
    """Our shipment of the order that awaits its tracking number, if any."""
    waiting = {ShipmentState.DRAFT, ShipmentState.PACKED, ShipmentState.SHIPPED}
    for shipment in order.shipments:
        if (
            shipment.state in waiting
            and shipment.origin == ShipmentOrigin.COMPTOIR
            and shipment.lines
            and not any(parcel.tracking_number for parcel in shipment.parcels)
        ):
            return shipment
    return None


def idempotency_key(order: Order, tracking: str) -> str:
    """The key of the shipment an import creates for this order and tracking number."""
    return f"import:{order.id}:{tracking}"


def apply_row(
    session: Session,
    row: Row,
    actor: Actor,
    made_here: dict[int, int] | None = None,
) -> Outcome:
    """Apply one row in the caller's transaction; Refused (or another DomainError) if not.

    `made_here` maps order ids to the shipments this import created, so a second parcel
    of the same order in the same file joins the first one's shipment.
    """
    if row.problem:
        raise Refused(row.problem)
    order_text = row.order_text
    tracking = " ".join(row.tracking.split())
    found = find_order(session, order_text)
    if not tracking:
        raise Refused(NO_TRACKING)
    if len(tracking) > shipments.TRACKING_MAX_LENGTH:
        raise Refused(N_("Keep a tracking number under 80 characters."))
    order = order_actions.lock_order(session, found.id)
    if order is None:
        raise Refused(UNKNOWN_ORDER)

    def done(outcome: str, shipment: Shipment) -> Outcome:
        return Outcome(row.line, order.number, tracking, outcome, shipment=shipment.number, row=row)

    holding = _holding(order, tracking)
    made = shipments.shipment_for_key(session, idempotency_key(order, tracking))
    if made is not None and made.order_id == order.id:
        holding.append(made)  # an earlier import made it; its number was corrected since
    live = [s for s in holding if s.state != ShipmentState.CANCELLED]
    if live:
        return done(ALREADY, live[0])
    if holding:
        raise Refused(CANCELLED_TRACKING, holding[0].number)
    refusal = shipments.order_refusal(order)
    if refusal is not None:
        raise Refused(refusal)
    mode = find_mode(session, row.mode)
    waiting = _untracked(order)
    if waiting is not None:
        shipments.add_parcel(session, waiting, actor, tracking, row.weight or None)
        if waiting.state != ShipmentState.SHIPPED:
            shipments.ship_shipment(session, waiting, actor)
        return done(COMPLETED, waiting)
    remains = any(shipments.remaining_quantities(order).values())
    earlier_id = (made_here or {}).get(order.id)
    earlier = session.get(Shipment, earlier_id) if earlier_id is not None else None
    if not remains and earlier is not None and earlier.state == ShipmentState.SHIPPED:
        shipments.add_parcel(session, earlier, actor, tracking, row.weight or None)
        return done(COMPLETED, earlier)
    parcel = shipments.ParcelInput(tracking, row.weight or None)
    shipment = shipments.create_shipment(
        session,
        order,
        actor,
        None,
        [parcel],
        mode,
        ship=True,
        idempotency_key=idempotency_key(order, tracking),
    )
    if made_here is not None:
        made_here[order.id] = shipment.id
    return done(CREATED, shipment)


def _reason(exc: Exception) -> tuple[str, str]:
    if isinstance(exc, Refused):
        return exc.reason, exc.detail
    if isinstance(exc, InvalidTransition):
        return exc.reason, ""
    if isinstance(exc, ValidationFailed):
        messages = list(dict.fromkeys(exc.errors.values()))
        return (messages[0] if messages else str(exc)), ""
    if isinstance(exc, DomainError):
        return str(exc), ""
    return FAILED, ""


def run_rows(
    sessions: sessionmaker[Session],
    rows: Iterable[Row],
    actor: Actor,
    after_row: Callable[[Session, int, Outcome], object] | None = None,
) -> Summary:
    """Apply each row in a transaction of its own; a refused row is listed with its reason.

    `after_row(session, position, outcome)` runs in the row's transaction (a refused row
    gets a fresh one), so what it writes (a job's progress) commits with the row; it may
    run twice for a row whose commit failed, the second time with the refusal.
    """
    summary = Summary()
    made_here: dict[int, int] = {}
    for position, row in enumerate(rows, start=1):
        try:
            with sessions.begin() as unit:
                outcome = apply_row(unit, row, actor, made_here)
                if after_row is not None:
                    after_row(unit, position, outcome)
        except Exception as exc:  # one row must never stop the others
            if not isinstance(exc, DomainError):
                log.exception("tracking import: line %s failed", row.line)
            reason, detail = _reason(exc)
            outcome = Outcome(
                row.line, row.order_text, row.tracking, REFUSED, reason, detail, row=row
            )
            if after_row is not None:
                with sessions.begin() as unit:
                    after_row(unit, position, outcome)
        summary.outcomes.append(outcome)
    return summary


# --- As a job --------------------------------------------------------------------------------


def start_import(session: Session, data: bytes, filename: str, created_by_id: int | None) -> Job:
    """Read the file now (its problems are said at once) and queue its rows as a job."""
    parsed = parse(data)
    payload = {
        "filename": (filename or "")[:200],
        "encoding": parsed.encoding,
        "separator": parsed.separator,
        "header": parsed.header,
        "rows": [
            [getattr(row, name) for name in ("line", *COLUMNS, "problem")] for row in parsed.rows
        ],
    }
    return queue.enqueue(session, IMPORT_JOB, payload, created_by_id)


def get_job(session: Session, job_id: int) -> Job:
    """A tracking import job; NotFound for any other job."""
    job = session.get(Job, job_id)
    if job is None or job.kind != IMPORT_JOB:
        raise NotFound(f"no tracking import job {job_id}")
    return job


def job_summary(job: Job) -> Summary:
    """The outcomes a job saved so far."""
    return Summary([Outcome.from_list(values) for values in job.result.get("rows", [])])


def _result(summary: Summary, saved_upto: int) -> dict[str, Any]:
    refused = summary.refused
    return {
        "rows": [item.as_list() for item in summary.outcomes],
        "counts": summary.counts,
        "total": len(summary.outcomes),
        "saved_upto": saved_upto,
        "refused_count": len(refused),
    }


def import_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Apply the rows of an uploaded tracking file, saving the outcomes as it goes."""
    job_id = job.id
    user = session.get(User, job.created_by_id) if job.created_by_id is not None else None
    actor = Actor.for_user(user) if user is not None else Actor.system("tracking import")
    rows = [Row(*values) for values in job.payload["rows"]]
    summary = job_summary(job)
    start = int(job.result.get("saved_upto", 0))
    summary.outcomes = summary.outcomes[:start]
    with sessions.begin() as unit:
        unit.execute(update(Job).where(Job.id == job_id).values(total=len(rows), progress=start))

    done: dict[int, Outcome] = {}

    def so_far() -> Summary:
        return Summary(summary.outcomes + [done[key] for key in sorted(done)])

    def after_row(unit: Session, position: int, outcome: Outcome) -> None:
        done[position] = outcome
        values: dict[str, Any] = {"progress": start + position}
        if position % SAVE_EVERY == 0:
            values["result"] = _result(so_far(), start + position)
        unit.execute(update(Job).where(Job.id == job_id).values(**values))

    run_rows(sessions, rows[start:], actor, after_row)
    return _result(so_far(), len(rows))


# --- The refused rows, as a file to fix and import again ------------------------------------

REFUSED_HEADER = ("line", "order", "tracking", "mode", "weight", "reason", "detail")


def write_refused(out: Any, summary: Summary, translate: Callable[[str], str]) -> int:
    """Write the refused rows as CSV (`;`, importable again once fixed); return how many."""
    writer = csv_writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(REFUSED_HEADER)
    refused = summary.refused
    for item in refused:
        row = item.row or Row(item.line)
        writer.writerow(
            [item.line, item.order, item.tracking, row.mode, row.weight,
             translate(item.reason), item.detail]
        )  # fmt: skip
    return len(refused)


def refused_csv(summary: Summary, translate: Callable[[str], str]) -> bytes:
    """The refused rows as a UTF-8 CSV with a BOM, so Excel reads the accents."""
    out = io.StringIO()
    write_refused(out, summary, translate)
    return codecs.BOM_UTF8 + out.getvalue().encode("utf-8")
