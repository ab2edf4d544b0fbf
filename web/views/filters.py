"""Jinja filters and globals: money, dates and labels in the user's language."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from babel import Locale
from babel.numbers import format_currency as babel_format_currency
from babel.support import NullTranslations
from flask import Flask, g, request, url_for
from flask_babel import (
    format_date,
    format_datetime,
    get_locale,
    get_timezone,
    get_translations,
)
from flask_wtf.csrf import generate_csrf

from web.models.enums import CommercialState, FulfilmentState, PaymentState
from web.views import formats
from web.views.base import has_role
from web.views.labels import KIND_LABELS, ROLE_LABELS, STATE_LABELS


def money(amount: Decimal | str | None, currency: str = "EUR") -> str:
    if amount is None or amount == "":
        return ""
    # Amounts kept in JSON (an order's discounts) are text.
    value = Decimal(amount) if isinstance(amount, str) else amount
    return formats.money(value, currency, request_formats()[0])


def unit_money(amount: Decimal | None, currency: str = "EUR") -> str:
    """A unit price at the shop's precision: 3.225 stays 3.225, 12.50 shows two decimals."""
    if amount is None:
        return ""
    return babel_format_currency(amount, currency, locale=get_locale(), decimal_quantization=False)


def when(value: dt.datetime | None, fmt: str = "short") -> str:
    if value is None:
        return ""
    if fmt not in formats.NAMED_FORMATS:
        return format_datetime(value, fmt)
    locale, tzinfo = request_formats()
    return formats.when(value, fmt, locale, tzinfo)


def day(value: dt.date | dt.datetime | None, fmt: str = "medium") -> str:
    return "" if value is None else format_date(value, fmt)


def label(value: Any) -> str:
    key = getattr(value, "value", value)
    text = STATE_LABELS.get(key) or KIND_LABELS.get(key) or ROLE_LABELS.get(key)
    return request_translations().ugettext(text) if text is not None else str(key)


def state_labels() -> dict[str, str]:
    """Each order state's label in the request's language, for a list that shows three per
    row: translated once per page rather than once per badge."""
    return {state.value: label(state) for axis in ORDER_STATES for state in axis}


def url_with(**changes: Any) -> str:
    """The current URL with some query arguments replaced (None removes one)."""
    args = request.args.to_dict()
    for name, value in changes.items():
        if value is None or value == "":
            args.pop(name, None)
        else:
            args[name] = str(value)
    values: dict[str, Any] = {**(request.view_args or {}), **args}
    return url_for(request.endpoint or "dashboard.index", **values)


def request_formats() -> tuple[Locale, dt.tzinfo]:
    """The request's language and time zone, looked up once per request (Flask-Babel finds
    them through several context-local proxies for every value). Keyed on the locale object,
    as `request_translations`."""
    locale = get_locale()
    found = g.get("_formats")
    if found is None or found[0] is not locale:
        found = (locale, get_timezone())
        g._formats = found
    return found


def request_translations() -> NullTranslations:
    """The catalogue of the language the request is answered in, looked up once per request.

    Flask-Babel finds it anew for every string, through several context-local proxies: a
    list page translates hundreds of strings. Keyed on the locale object, so a block under
    `force_locale` gets its own language's catalogue and the request's after it.
    """
    locale = get_locale()
    found = g.get("_translations")
    if found is None or found[0] is not locale:
        found = (locale, get_translations())
        g._translations = found
    return found[1]


ORDER_STATES = (CommercialState, PaymentState, FulfilmentState)


def register(app: Flask) -> None:
    # Flask-Babel installs the same callables over its slower lookup (Babel.init_app).
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=lambda s: request_translations().ugettext(s),
        ngettext=lambda s, p, n: request_translations().ungettext(s, p, n),
        pgettext=lambda c, s: request_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: request_translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    app.add_template_filter(money)
    app.add_template_filter(unit_money)
    app.add_template_filter(when)
    app.add_template_filter(day)
    app.add_template_filter(label)
    app.add_template_global(url_with)
    app.add_template_global(state_labels)
    app.add_template_global(has_role)
    app.add_template_global(generate_csrf, "csrf_token")
    app.add_template_global(lambda: str(get_locale()), "current_locale")
