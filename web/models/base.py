"""Declarative base, column types and helpers shared by every model module."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, DateTime, Enum, MetaData, Numeric, String, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no offset, so naive values read from it are UTC by construction;
    naive values written by callers are refused rather than guessed.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: timestamps must be timezone-aware")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


Money = Numeric(14, 2, asdecimal=True)
"""Amounts in an order's currency, to the cent."""


class UnitPrice(TypeDecorator[Decimal]):
    """A unit price at the shop's own precision (PrestaShop keeps six decimals), read back
    with at least two decimals and no trailing zeros beyond them: 12.00, 3.225."""

    impl = Numeric(18, 6, asdecimal=True)
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        return trim_price(Decimal(value))


def trim_price(amount: Decimal) -> Decimal:
    """Drop the zeros past the cent: 12.500000 reads 12.50, 3.225000 reads 3.225."""
    for places in range(2, 6):
        shorter = amount.quantize(Decimal(1).scaleb(-places))
        if shorter == amount:
            return shorter
    return amount


Rate = Numeric(7, 4, asdecimal=True)
"""Tax rates in percent (20.0000 for 20 %)."""

Quantity = Numeric(12, 3, asdecimal=True)
"""Weights and other measured quantities."""


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        dt.datetime: UTCDateTime(),
        Decimal: Money,
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        str: String(255),
    }


def enum_column(enum: type[StrEnum], *, name: str, default: StrEnum | None = None, **kw: Any):
    """Map a StrEnum to a VARCHAR with a named CHECK constraint listing its values."""
    column_type = Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum) + 8,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
    if default is not None:
        kw.setdefault("server_default", default.value)
        kw.setdefault("default", default)
    return mapped_column(column_type, **kw)
