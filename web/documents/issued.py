"""Issued documents' files, read back as stored: a reprint is never a new rendering."""

from __future__ import annotations

import datetime as dt
import io
import logging
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.documents.storage import (
    DocumentStorage,
    KeyChanged,
    KeyMissing,
    StorageError,
    configured,
    sha256,
)
from web.models import Document
from web.models.enums import DocumentKind, DocumentState
from web.services.errors import NotFound
from web.services.paging import Page

log = logging.getLogger(__name__)


class DocumentDamaged(Exception):
    """The stored bytes are missing or no longer match the SHA-256 kept at issue."""


def document_with_pdf(session: Session, document_id: int) -> Document:
    """The issued document, if it has a stored PDF (NotFound otherwise); nothing is read."""
    document = session.get(Document, document_id)
    if document is None or document.state != DocumentState.ISSUED or not document.pdf_storage_key:
        raise NotFound(f"document {document_id} does not exist or has no PDF")
    return document


def stored_pdf(
    session: Session, document_id: int, storage: DocumentStorage | None = None
) -> tuple[Document, bytes]:
    """The issued document and its PDF, checked against the hash kept in its row."""
    document = document_with_pdf(session, document_id)
    try:
        data = (storage or configured()).get(str(document.pdf_storage_key))
    except KeyMissing as exc:
        log.error("document %s: its PDF is missing from storage", document.id)
        raise DocumentDamaged(f"the PDF of {document.reference} is missing") from exc
    if sha256(data) != document.pdf_sha256:
        log.error("document %s: the stored PDF does not match its SHA-256", document.id)
        raise DocumentDamaged(f"the PDF of {document.reference} does not match its hash")
    return document, data


def pdf_url(
    document: Document, *, inline: bool = False, storage: DocumentStorage | None = None
) -> str | None:
    """A short-lived URL to the document's stored PDF, if the storage gives them (S3).

    None with the local folder: the caller serves the bytes of `stored_pdf`. The storage
    vouches for the hash kept at issue before giving a URL, so a missing or altered file
    is DocumentDamaged here as it is when its bytes are read.
    """
    key = str(document.pdf_storage_key)
    filename = pdf_filename(document)
    try:
        return (storage or configured()).read_url(
            key, filename, sha256=document.pdf_sha256, inline=inline
        )
    except KeyMissing as exc:
        log.error("document %s: its PDF is missing from storage", document.id)
        raise DocumentDamaged(f"the PDF of {document.reference} is missing") from exc
    except KeyChanged as exc:
        log.error("document %s: the stored PDF does not match its SHA-256", document.id)
        raise DocumentDamaged(f"the PDF of {document.reference} does not match its hash") from exc


def delivery_note_ids(session: Session, order_id: int) -> list[int]:
    """The order's issued delivery notes, in the order they were issued."""
    query = (
        select(Document.id)
        .where(
            Document.order_id == order_id,
            Document.kind == DocumentKind.DELIVERY_NOTE,
            Document.state == DocumentState.ISSUED,
        )
        .order_by(Document.id)
    )
    return list(session.scalars(query))


def pdf_filename(document: Document) -> str:
    """The download's name: the document's reference."""
    return f"{document.reference or document.id}.pdf"


def issued_documents(
    session: Session,
    kind: DocumentKind | None = None,
    issued_from: dt.date | None = None,
    issued_to: dt.date | None = None,
    *,
    page: int = 1,
    per_page: int = 25,
) -> Page[Document]:
    """One page of the issued documents, in the order they were issued (oldest first).

    Issued documents only grow at the end of this order, so a client paging through it
    never skips one; the dates are issue dates, both bounds included.
    """
    conditions = [Document.state == DocumentState.ISSUED]
    if kind is not None:
        conditions.append(Document.kind == kind)
    if issued_from is not None:
        conditions.append(Document.issue_date >= issued_from)
    if issued_to is not None:
        conditions.append(Document.issue_date <= issued_to)
    total = session.scalar(select(func.count(Document.id)).where(*conditions)) or 0
    items = session.scalars(
        select(Document)
        .where(*conditions)
        .order_by(Document.id)
        .offset((page - 1) * per_page)
        .limit(per_page)
    ).all()
    return Page(list(items), total, page, per_page)


def combined_pdf(
    session: Session, document_ids: list[int], storage: DocumentStorage | None = None
) -> bytes:
    """The documents' stored PDFs one after another, as one PDF to print at once."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for document_id in document_ids:
        _document, data = stored_pdf(session, document_id, storage)
        writer.append(io.BytesIO(data))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# --- Verifying every stored document -------------------------------------------------------

VERIFY_BATCH = 500


@dataclass(frozen=True)
class Damage:
    """One issued document whose stored PDF is missing or no longer matches its hash."""

    reference: str
    key: str
    problem: str  # "missing" | "mismatch" | "unreadable"
    detail: str = field(default="", compare=False)  # why it is unreadable, for the operator


@dataclass
class VerifyReport:
    """What `verify_all` checked and what it found wrong."""

    checked: int = 0
    damaged: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damaged


def verify_all(session: Session, storage: DocumentStorage | None = None) -> VerifyReport:
    """Re-hash every issued document's stored PDF against the SHA-256 kept at issue.

    The rows are read a batch at a time (never all at once) and one file is held in
    memory at a time.
    """
    storage = storage or configured()
    report = VerifyReport()
    query = (
        select(Document.reference, Document.id, Document.pdf_storage_key, Document.pdf_sha256)
        .where(Document.state == DocumentState.ISSUED, Document.pdf_storage_key.is_not(None))
        .order_by(Document.id)
        .execution_options(yield_per=VERIFY_BATCH)
    )
    for reference, document_id, key, digest in session.execute(query):
        report.checked += 1
        name, key = reference or f"#{document_id}", str(key)
        try:
            data = storage.get(key)
        except KeyMissing:
            report.damaged.append(Damage(name, key, "missing"))
            continue
        except (StorageError, OSError) as exc:
            # Access denied, no bucket, no connection: said for this document, then the next.
            log.error("document %s: its PDF cannot be read: %s", document_id, exc)
            report.damaged.append(Damage(name, key, "unreadable", str(exc)))
            continue
        if sha256(data) != digest:
            report.damaged.append(Damage(name, key, "mismatch"))
    return report
