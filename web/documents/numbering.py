"""Gapless document numbers: one counter row per series, locked while a number is taken.

A PostgreSQL SEQUENCE is not gapless (nextval is never rolled back), so each series is a row
of `number_series` read with SELECT … FOR UPDATE: a second issuer of the same series waits
until the first one's transaction ends, then reads the number it left. A transaction that
rolls back gives its number back. On SQLite the units of work begin with BEGIN IMMEDIATE
(web/db.py), so the database's single write lock plays the row lock's part.

The lock is held until the caller's transaction ends: issue, render and store in it, then
commit soon.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from web.models import CompanySettings, NumberSeries
from web.models.enums import DocumentKind

# Each kind's default series prefix (the company settings may choose others); a series is
# named per year ("BL-2026") and counts from 1. A new prefix starts a new series.
PREFIXES: dict[DocumentKind, str] = {
    DocumentKind.INVOICE: "FA",
    DocumentKind.CREDIT_NOTE: "AV",
    DocumentKind.DELIVERY_NOTE: "BL",
}
DIGITS = 6


@dataclass(frozen=True)
class Number:
    """A number taken from a series, and the reference printed on the document."""

    series: str
    number: int
    reference: str


PREFIX_FIELDS: dict[DocumentKind, str] = {
    DocumentKind.INVOICE: "invoice_prefix",
    DocumentKind.CREDIT_NOTE: "credit_note_prefix",
    DocumentKind.DELIVERY_NOTE: "delivery_note_prefix",
}


def prefix(session: Session, kind: DocumentKind) -> str:
    """The kind's prefix: the company settings' choice, else the default."""
    company = session.get(CompanySettings, 1)
    chosen = getattr(company, PREFIX_FIELDS[kind]) if company is not None else ""
    return chosen or PREFIXES[kind]


def series_name(kind: DocumentKind, year: int, prefix: str | None = None) -> str:
    """The series of a kind for a year: BL-2026."""
    return f"{prefix or PREFIXES[kind]}-{year}"


def format_reference(series: str, number: int) -> str:
    """The printed reference: BL-2026-000042."""
    return f"{series}-{number:0{DIGITS}d}"


def next_number(session: Session, kind: DocumentKind, issue_date: dt.date) -> Number:
    """Take the next number of the kind's series for the issue date's year.

    The series row stays locked until the session's transaction ends.
    """
    name = series_name(kind, issue_date.year, prefix(session, kind))
    series = _locked_series(session, name, kind)
    series.last_number += 1
    series.last_issue_date = issue_date
    session.flush()
    return Number(name, series.last_number, format_reference(name, series.last_number))


def _locked_series(session: Session, name: str, kind: DocumentKind) -> NumberSeries:
    query = select(NumberSeries).where(NumberSeries.name == name).with_for_update()
    series = session.scalars(query).one_or_none()
    if series is not None:
        return series
    # The year's first document: two issuers may create the row at once; the unique name
    # lets one insert win, the other reads (and waits on) the winner's row.
    try:
        with session.begin_nested():
            session.add(NumberSeries(name=name, kind=kind, last_number=0))
    except IntegrityError:
        pass
    return session.scalars(query.execution_options(populate_existing=True)).one()
