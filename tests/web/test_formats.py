"""Amounts and times written as Babel writes them, by the compiled formatters the pages use."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
import pytz
from babel import Locale
from babel.dates import format_datetime
from babel.numbers import format_currency

from web.views import formats

PARIS = pytz.timezone("Europe/Paris")
CURRENCIES = ("EUR", "USD", "GBP", "CHF", "JPY", "BHD")


def _amounts(count: int) -> list[Decimal]:
    draw = random.Random(13)
    found = [Decimal("0.005"), Decimal("-0.005"), Decimal("0.0150"), Decimal("1E+3")]
    for _ in range(count):
        digits = draw.randint(0, 12)
        cents = draw.randint(0, 10 ** (digits + 3))
        value = Decimal(cents).scaleb(-draw.randint(0, 4))
        found.append(-value if draw.random() < 0.3 else value)
    return found


def _times(count: int) -> list[dt.datetime]:
    draw = random.Random(7)
    start = dt.datetime(1999, 1, 1, tzinfo=dt.UTC)
    found = [start + dt.timedelta(seconds=draw.randint(0, 30 * 365 * 86400)) for _ in range(count)]
    # Naive times are UTC, as the database gives them back on SQLite.
    return found + [value.replace(tzinfo=None) for value in found[:50]]


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("currency", CURRENCIES)
def test_amounts_are_written_exactly_as_babel_writes_them(language: str, currency: str) -> None:
    locale = Locale.parse(language)
    for amount in _amounts(400):
        assert formats.money(amount, currency, locale) == format_currency(
            amount, currency, locale=locale
        ), amount


@pytest.mark.parametrize("language", ["fr", "en"])
@pytest.mark.parametrize("fmt", ["short", "medium", "long"])
def test_times_are_written_exactly_as_babel_writes_them(language: str, fmt: str) -> None:
    locale = Locale.parse(language)
    for value in _times(400):
        expected = format_datetime(value, fmt, tzinfo=PARIS, locale=locale)
        assert formats.when(value, fmt, locale, PARIS) == expected, value


def test_the_languages_comptoir_speaks_get_the_compiled_formatters() -> None:
    # The point of the module: without it a list page spends ~2 ms in Babel per 25 orders.
    for language in ("fr", "en"):
        locale = Locale.parse(language)
        assert formats._money_formatter("EUR", locale).__name__ == "compiled"
        assert formats._when_formatter("short", locale, PARIS).__name__ == "compiled"
    assert formats.money(Decimal("-1234.5"), "EUR", Locale.parse("fr")) == "-1\u202f234,50\xa0€"
    assert formats.when(dt.datetime(2026, 7, 14, 12, 5), "short", Locale.parse("en"), PARIS) == (
        "7/14/26, 2:05\u202fPM"
    )


def test_patterns_it_does_not_know_are_left_to_babel() -> None:
    # Indian grouping (12,34,567.89), a time written with the month's name, a time zone.
    indian = Locale.parse("en_IN")
    assert formats._money_formatter("EUR", indian).__name__ == "by_babel"
    assert formats.money(Decimal("1234567.891"), "EUR", indian) == "€12,34,567.89"
    for language, fmt in (("fr", "medium"), ("en", "long")):
        chosen = formats._when_formatter(fmt, Locale.parse(language), PARIS)
        assert chosen.__name__ == "by_babel"


def test_a_compiled_formatter_that_would_differ_from_babel_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The check against Babel's samples is what keeps a wrong compilation off the pages: a
    # group separator read wrongly ("." in French) must send the currency back to Babel.
    monkeypatch.setattr(formats, "get_group_symbol", lambda locale: ".")
    chosen = formats._money_formatter("EUR", Locale.parse("fr"))
    assert chosen.__name__ == "by_babel"
    assert chosen(Decimal("1234.5")) == "1\u202f234,50\xa0€"
