"""Amounts and times as Babel writes them, at a fraction of its cost.

Babel formats each value through its whole pattern machinery: 30–70 µs an amount or a time,
two per row of a list, about 2 ms of a 25-order page. Here each language's currency pattern
and each date-time format is compiled once into a small function of the value, and that
function is checked against Babel on sample values when it is built: where it would write
anything else (a pattern it does not know, a rounding it does differently), Babel is used
as before. Babel stays the reference; this is a cache of what it would write.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal, cast

from babel import Locale
from babel.dates import (
    format_datetime as babel_format_datetime,
)
from babel.dates import (
    get_date_format,
    get_datetime_format,
    get_period_names,
    get_time_format,
    tokenize_pattern,
)
from babel.numbers import (
    format_currency as babel_format_currency,
)
from babel.numbers import (
    get_currency_precision,
    get_currency_symbol,
    get_decimal_symbol,
    get_group_symbol,
)

Money = Callable[[Decimal], str]
When = Callable[[dt.datetime], str]

NAMED_FORMATS = ("short", "medium", "long", "full")

# Values a compiled formatter must write exactly as Babel does before it is trusted: signs,
# zeros, rounding halves both ways, every group size, a large amount.
MONEY_SAMPLES = tuple(
    Decimal(text)
    for text in (
        "0", "-0", "0.004", "0.005", "0.015", "0.025", "1", "-1", "7.5", "12.345", "999.995",
        "1000", "-1234.5", "12345.678", "123456.7", "1234567.891", "-987654321.01",
        "100000000000", "-0.001",
    )
)  # fmt: skip
UTC = dt.UTC
WHEN_SAMPLES = tuple(
    dt.datetime(*fields, tzinfo=UTC)
    for fields in (
        (2026, 1, 1, 0, 0, 0),
        (2026, 3, 29, 0, 59, 59),  # the night the clocks go forward in Europe
        (2026, 3, 29, 1, 0, 0),
        (2025, 10, 26, 0, 30, 0),  # and back
        (2025, 10, 26, 1, 30, 0),
        (2024, 2, 29, 11, 5, 9),
        (2024, 7, 14, 12, 0, 0),
        (2023, 12, 31, 23, 59, 30),
        (2009, 9, 9, 9, 9, 9),
        (1999, 11, 30, 22, 45, 1),
    )
)

_money: dict[tuple[str, str], Money] = {}
_when: dict[tuple[str, str, str], When] = {}


def money(amount: Decimal, currency: str, locale: Locale) -> str:
    """`amount` in `currency` as Babel's `format_currency` writes it in `locale`."""
    key = (str(locale), currency)
    formatter = _money.get(key)
    if formatter is None:
        formatter = _money[key] = _money_formatter(currency, locale)
    return formatter(amount)


def when(value: dt.datetime, fmt: str, locale: Locale, tzinfo: dt.tzinfo) -> str:
    """`value` (naive = UTC) in `tzinfo` as Babel's `format_datetime` writes it."""
    key = (str(locale), fmt, str(tzinfo))
    formatter = _when.get(key)
    if formatter is None:
        formatter = _when[key] = _when_formatter(fmt, locale, tzinfo)
    return formatter(value)


# --- Amounts ---------------------------------------------------------------------------------


def _money_formatter(currency: str, locale: Locale) -> Money:
    def by_babel(amount: Decimal) -> str:
        return babel_format_currency(amount, currency, locale=locale)

    compiled = _compiled_money(currency, locale)
    if compiled is None or any(compiled(v) != by_babel(v) for v in MONEY_SAMPLES):
        return by_babel
    return compiled


def _compiled_money(currency: str, locale: Locale) -> Money | None:
    """The currency pattern of `locale` as one `format()` and two affixes, when it is the
    common kind: groups of three, the currency's own decimals, no scale or exponent."""
    pattern = locale.currency_formats["standard"]
    if (
        pattern.exp_prec
        or pattern.scale
        or "@" in pattern.pattern
        or pattern.grouping != (3, 3)
        or pattern.int_prec[0] != 1
    ):
        return None
    written = (*pattern.prefix, *pattern.suffix)
    if any("¤¤¤" in text or "'" in text for text in written):
        return None  # the currency's name, quoted text: Babel's
    symbol = get_currency_symbol(currency, locale)
    affixes = [text.replace("¤¤", currency.upper()).replace("¤", symbol) for text in written]
    plus, minus, plus_end, minus_end = affixes
    digits = get_currency_precision(currency)
    quantum = Decimal(1).scaleb(-digits)
    symbols = str.maketrans({",": get_group_symbol(locale), ".": get_decimal_symbol(locale)})

    def compiled(amount: Decimal) -> str:
        if not isinstance(amount, Decimal) or not amount.is_finite():
            return babel_format_currency(amount, currency, locale=locale)
        number = format(abs(amount).quantize(quantum), ",f").translate(symbols)
        if amount.is_signed():
            return f"{minus}{number}{minus_end}"
        return f"{plus}{number}{plus_end}"

    return compiled


# --- Times -----------------------------------------------------------------------------------


def _when_formatter(fmt: str, locale: Locale, tzinfo: dt.tzinfo) -> When:
    def by_babel(value: dt.datetime) -> str:
        return babel_format_datetime(value, fmt, tzinfo=tzinfo, locale=locale)

    compiled = _compiled_when(fmt, locale, tzinfo)
    if compiled is None or any(compiled(v) != by_babel(v) for v in WHEN_SAMPLES):
        return by_babel
    return compiled


# The numeric fields: (field letter, count) → how a local time writes it.
_FIELDS: dict[tuple[str, int], Callable[[dt.datetime], str]] = {
    ("y", 1): lambda t: str(t.year),
    ("y", 2): lambda t: f"{t.year % 100:02d}",
    ("y", 4): lambda t: f"{t.year:04d}",
    ("M", 1): lambda t: str(t.month),
    ("M", 2): lambda t: f"{t.month:02d}",
    ("d", 1): lambda t: str(t.day),
    ("d", 2): lambda t: f"{t.day:02d}",
    ("H", 1): lambda t: str(t.hour),
    ("H", 2): lambda t: f"{t.hour:02d}",
    ("h", 1): lambda t: str(t.hour % 12 or 12),
    ("h", 2): lambda t: f"{t.hour % 12 or 12:02d}",
    ("m", 1): lambda t: str(t.minute),
    ("m", 2): lambda t: f"{t.minute:02d}",
    ("s", 1): lambda t: str(t.second),
    ("s", 2): lambda t: f"{t.second:02d}",
}


def _period(am: str, pm: str) -> Callable[[dt.datetime], str]:
    return lambda t: pm if t.hour >= 12 else am


def _compiled_when(fmt: str, locale: Locale, tzinfo: dt.tzinfo) -> When | None:
    """A named format ("short"…) whose date and time patterns hold only numeric fields and
    AM/PM, as a list of pieces joined per value."""
    if fmt not in NAMED_FORMATS:
        return None
    named = cast(Literal["short", "medium", "long", "full"], fmt)
    joined = str(get_datetime_format(named, locale)).replace("'", "")
    pattern = joined.replace("{1}", "\0date\0").replace("{0}", "\0time\0")
    tokens: list[tuple[str, Any]] = []
    for part in pattern.split("\0"):
        if part == "date":
            tokens += tokenize_pattern(get_date_format(named, locale).pattern)
        elif part == "time":
            tokens += tokenize_pattern(get_time_format(named, locale).pattern)
        elif part:
            tokens.append(("chars", part))
    periods = get_period_names("abbreviated", "format", locale)
    pieces: list[str | Callable[[dt.datetime], str]] = []
    for kind, value in tokens:
        if kind == "chars":
            pieces.append(value)
        elif value == ("a", 1) and "am" in periods and "pm" in periods:
            pieces.append(_period(periods["am"], periods["pm"]))
        elif value in _FIELDS:
            pieces.append(_FIELDS[value])
        else:
            return None  # a name, a week, a zone: Babel's
    if "{" in pattern:
        return None

    def compiled(value: dt.datetime) -> str:
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        local = value.astimezone(tzinfo)
        return "".join(piece if isinstance(piece, str) else piece(local) for piece in pieces)

    return compiled
