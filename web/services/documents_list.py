"""The documents list: every issued document, filtered, and its bulk download as a job.

The list reads the columns of `documents` (kind, series, issue date, buyer name, totals)
and never the snapshots. "All matching" means among the documents up to `upto`, the newest
id the list had when it was shown: one issued afterwards was never seen, so it is left out.

The download job resolves the selection, reads each document's stored PDF checked against
its SHA-256 (`issued.stored_pdf`) and writes one merged PDF or a ZIP of the PDFs named by
reference to a file kept as long as the order exports (web/job_outputs.py: the instance
folder, or S3 on AWS). A document whose stored bytes are missing or altered is refused with
its reference; the others are still written.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import ColumnElement, Select, and_, func, select, update
from sqlalchemy.orm import Session, contains_eager, sessionmaker

from web import job_outputs, queue
from web.documents import issued
from web.documents.storage import DocumentStorage
from web.i18n import N_
from web.models import Document, Job, Shop
from web.models.enums import DocumentKind, DocumentState, JobState
from web.models.orders import Order
from web.private_files import open_private
from web.search_index import folded
from web.services import paging
from web.services.bulk import MAX_REFUSALS_SHOWN
from web.services.errors import NotFound, ValidationFailed
from web.services.paging import Page
from web.textfold import fold_text

log = logging.getLogger(__name__)

PER_PAGE = 50
MAX_QUERY_LENGTH = 200
EARLIEST_DAY = dt.date(1970, 1, 1)
LATEST_DAY = dt.date(9000, 12, 31)

DOWNLOAD_JOB = "documents.download"
FORMATS = ("pdf", "zip")
MAX_SELECTION = 2_000
FILE_PREFIX = "documents-download-"  # the exports folder holds other files too
PROGRESS_EVERY = 10

GONE = N_("the document no longer exists")
DAMAGED = N_("its stored PDF is missing or no longer matches its hash")


# --- Filters ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DocumentFilters:
    kind: DocumentKind | None = None
    series: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    shop: str | None = None
    q: str | None = None
    page: int = 1

    def args(self) -> dict[str, str]:
        """The filters as query arguments, page left out."""
        values = {
            "kind": self.kind.value if self.kind else None,
            "series": self.series,
            "date_from": self.date_from.isoformat() if self.date_from else None,
            "date_to": self.date_to.isoformat() if self.date_to else None,
            "shop": self.shop,
            "q": self.q,
        }
        return {name: value for name, value in values.items() if value}


def _text(args: Mapping[str, str], name: str, length: int) -> str | None:
    return (args.get(name) or "").strip()[:length] or None


def _day(args: Mapping[str, str], name: str, refused: dict[str, str]) -> dt.date | None:
    text = _text(args, name, 40)
    if text is None:
        return None
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        refused[name] = f"expected a date as YYYY-MM-DD, got {text!r}"
        return None
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        refused[name] = f"expected a date between {EARLIEST_DAY} and {LATEST_DAY}, got {text!r}"
        return None
    return day


def parse_filters(args: Mapping[str, str]) -> tuple[DocumentFilters, dict[str, str]]:
    """Read the filters from query arguments; return them and why refused ones were."""
    refused: dict[str, str] = {}
    kind = None
    if text := _text(args, "kind", 40):
        try:
            kind = DocumentKind(text)
        except ValueError:
            refused["kind"] = f"unknown kind {text!r}"
    date_from = _day(args, "date_from", refused)
    date_to = _day(args, "date_to", refused)
    if date_from and date_to and date_to < date_from:
        refused["date_to"] = "the end date is before the start date"
        date_to = None
    filters = DocumentFilters(
        kind=kind,
        series=_text(args, "series", 40),
        date_from=date_from,
        date_to=date_to,
        shop=_text(args, "shop", 32),
        q=_text(args, "q", MAX_QUERY_LENGTH),
        page=paging.parse_page(args, refused),
    )
    return filters, refused


# --- The query -------------------------------------------------------------------------------


def _search(q: str) -> ColumnElement[bool] | None:
    """Every term in the buyer's name, the document's reference or the order's number."""
    terms = [fold_text(term) for term in q.split()]
    if not terms:
        return None
    # Fields joined by a space: terms never contain one, so no term matches across two.
    haystack = folded(
        Document.buyer_name + " " + func.coalesce(Document.reference, "") + " " + Order.number
    )
    return and_(*[haystack.contains(term, autoescape=True) for term in terms])


def _filtered(query: Select[Any], filters: DocumentFilters, upto: int | None = None) -> Select[Any]:
    query = query.join(Order, Document.order_id == Order.id).where(
        Document.state == DocumentState.ISSUED
    )
    if filters.kind is not None:
        query = query.where(Document.kind == filters.kind)
    if filters.series:
        query = query.where(Document.series == filters.series)
    if filters.date_from is not None:
        query = query.where(Document.issue_date >= filters.date_from)
    if filters.date_to is not None:
        query = query.where(Document.issue_date <= filters.date_to)
    if filters.shop:
        query = query.join(Shop, Order.shop_id == Shop.id).where(Shop.key == filters.shop)
    if filters.q and (search := _search(filters.q)) is not None:
        query = query.where(search)
    if upto is not None:
        query = query.where(Document.id <= upto)
    return query


def list_documents(
    session: Session, filters: DocumentFilters, per_page: int = PER_PAGE
) -> Page[Document]:
    """Issued documents matching the filters, newest first, one page of them."""
    total = count_matching(session, filters)
    page = min(filters.page, paging.page_count(total, per_page))
    query = (
        _filtered(select(Document), filters)
        .options(contains_eager(Document.order))
        .order_by(Document.issue_date.desc(), Document.id.desc())
        .offset((page - 1) * per_page)
        .limit(per_page)
    )
    return Page(list(session.scalars(query)), total, page, per_page)


def count_matching(session: Session, filters: DocumentFilters, upto: int | None = None) -> int:
    """How many issued documents match the filters (up to the id `upto`, when given)."""
    query = _filtered(select(func.count(Document.id)), filters, upto)
    return session.scalar(query) or 0


def matching_ids(session: Session, filters: DocumentFilters, upto: int | None = None) -> list[int]:
    """The ids of the matching issued documents, newest first, as the list shows them."""
    query = _filtered(select(Document.id), filters, upto).order_by(
        Document.issue_date.desc(), Document.id.desc()
    )
    return list(session.scalars(query))


def newest_document_id(session: Session) -> int:
    """The highest id of an issued document (0 when there is none)."""
    query = select(func.max(Document.id)).where(Document.state == DocumentState.ISSUED)
    return session.scalar(query) or 0


def series(session: Session) -> list[str]:
    """Every series an issued document belongs to, for the filter list."""
    query = (
        select(Document.series)
        .where(Document.state == DocumentState.ISSUED, Document.series.is_not(None))
        .distinct()
        .order_by(Document.series)
    )
    return [name for name in session.scalars(query) if name]


# --- Bulk download (the view's transaction, then the worker) ----------------------------------


def select_documents(
    session: Session, raw_ids: Iterable[str], matching: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Name the documents to download: every one matching the filters, or the ids chosen."""
    if matching is not None:
        filters, _refused = parse_filters(matching)
        upto = paging.whole_number(matching.get("upto"), 0, paging.MAX_ID)
        if upto is None:
            upto = newest_document_id(session)
        count = count_matching(session, filters, upto)
        _check_count(count, "scope")
        return {"filters": filters.args(), "upto": upto}
    ids = [paging.whole_number(str(raw), 1, paging.MAX_ID) for raw in raw_ids]
    chosen = list(dict.fromkeys(document_id for document_id in ids if document_id is not None))
    _check_count(len(chosen), "ids")
    return {"ids": chosen}


def _check_count(count: int, field: str) -> None:
    if count == 0:
        message = N_("Select at least one document.")
        raise ValidationFailed(message, {field: message})
    if count > MAX_SELECTION:
        message = N_("Select at most 2,000 documents at once; narrow the filters down first.")
        raise ValidationFailed(message, {field: message})


def start_download(
    session: Session,
    selection: dict[str, Any],
    fmt: str,
    folder: Path | str,
    created_by_id: int | None = None,
) -> Job:
    """Queue the download of the selected documents as one PDF or a ZIP, written to `folder`."""
    if fmt not in FORMATS:
        message = N_("Choose one PDF or a ZIP of PDFs.")
        raise ValidationFailed(message, {"format": message})
    payload = {"selection": selection, "format": fmt, "folder": str(folder)}
    return queue.enqueue(session, DOWNLOAD_JOB, payload, created_by_id)


def get_job(session: Session, job_id: int) -> Job:
    """A documents download job; NotFound for any other job."""
    job = session.get(Job, job_id)
    if job is None or job.kind != DOWNLOAD_JOB:
        raise NotFound(f"no documents download job {job_id}")
    return job


def download_file(job: Job, now: dt.datetime | None = None) -> job_outputs.Kept | None:
    """The file a finished download job wrote, while it is kept (a local file, or a presigned
    URL on S3); None once removed.

    NotFound when the job is not finished or wrote no file (every document refused).
    """
    if job.kind != DOWNLOAD_JOB or job.state != JobState.DONE or not job.result.get("file"):
        raise NotFound(f"job {job.id} has no file to download")
    return job_outputs.configured().find(
        Path(job.payload["folder"]), job.result["file"], download_name(job), now
    )


def download_name(job: Job) -> str:
    """The file name offered to the browser, e.g. documents-20260302-1015.zip."""
    finished = job.finished_at or job.created_at
    return f"documents-{finished:%Y%m%d-%H%M}.{job.payload['format']}"


def remove_old_downloads(folder: Path, now: dt.datetime | None = None) -> int:
    """Delete the download files of a local folder older than the exports' time to live;
    return how many."""
    return job_outputs.LocalOutputs().remove_old(folder, FILE_PREFIX, now)


def _resolve(session: Session, selection: Mapping[str, Any]) -> list[int]:
    if "filters" in selection:
        filters, _refused = parse_filters(selection["filters"])
        return matching_ids(session, filters, upto=selection.get("upto"))
    return [int(document_id) for document_id in selection["ids"]]


def _progress(
    sessions: sessionmaker[Session], job_id: int, progress: int, total: int | None = None
) -> None:
    values: dict[str, int] = {"progress": progress}
    if total is not None:
        values["total"] = total
    with sessions.begin() as unit:
        unit.execute(update(Job).where(Job.id == job_id).values(**values))


class _Bundle:
    """One merged PDF or a ZIP of PDFs named by reference, written to an open file."""

    def __init__(self, fmt: str, out: IO[bytes]) -> None:
        from pypdf import PdfWriter

        self.out = out
        self.zip = zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) if fmt == "zip" else None
        self.pdf = PdfWriter() if fmt == "pdf" else None

    def add(self, document: Document, data: bytes) -> None:
        if self.zip is not None:
            self.zip.writestr(issued.pdf_filename(document), data)
        elif self.pdf is not None:
            self.pdf.append(io.BytesIO(data))

    def close(self, *, keep: bool = True) -> None:
        """Finish the file (`keep`), or only let go of the ZIP, which would otherwise write its
        directory into the closed file when collected."""
        if self.zip is not None:
            self.zip.close()
        elif self.pdf is not None and keep:
            self.pdf.write(self.out)


def bundle_documents(
    session: Session,
    ids: list[int],
    fmt: str,
    path: Path,
    storage: DocumentStorage | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, list[dict[str, Any]]]:
    """Write the documents' stored PDFs to `path`; return how many and the refused ones.

    Nothing is written when every document is refused.
    """
    refused: list[dict[str, Any]] = []
    written = 0
    partial = path.with_name(path.name + ".part")
    with open_private(partial, "wb") as out:
        bundle = _Bundle(fmt, out)
        for position, document_id in enumerate(ids, start=1):
            try:
                document, data = issued.stored_pdf(session, document_id, storage)
            except NotFound:
                refused.append({"id": document_id, "reference": "", "reason": GONE})
            except issued.DocumentDamaged:
                damaged = session.get_one(Document, document_id)
                refused.append(
                    {
                        "id": document_id,
                        "reference": damaged.reference or "",
                        "order_id": damaged.order_id,
                        "reason": DAMAGED,
                    }
                )
            else:
                bundle.add(document, data)
                written += 1
            if progress is not None and position % PROGRESS_EVERY == 0:
                progress(position)
        bundle.close(keep=written > 0)
    if written:
        partial.replace(path)
    else:
        partial.unlink(missing_ok=True)
    return written, refused


def download_job(session: Session, job: Job, sessions: sessionmaker[Session]) -> dict[str, Any]:
    """Write the selected documents as one PDF or a ZIP; list the refused ones."""
    job_id, fmt = job.id, job.payload["format"]
    folder = Path(job.payload["folder"])
    outputs = job_outputs.configured()
    outputs.remove_old(folder, FILE_PREFIX)
    ids = _resolve(session, job.payload["selection"])
    _progress(sessions, job_id, 0, len(ids))
    name = f"{FILE_PREFIX}{job_id}.{fmt}"
    with outputs.writing(folder, name) as path:
        written, refused = bundle_documents(
            session, ids, fmt, path, progress=lambda done: _progress(sessions, job_id, done)
        )
    _progress(sessions, job_id, len(ids))
    return {
        "total": len(ids),
        "done": written,
        "file": name if written else None,
        "refused_count": len(refused),
        "refused": refused[:MAX_REFUSALS_SHOWN],
    }
