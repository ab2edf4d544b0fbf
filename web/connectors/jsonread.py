"""Typed readers for platform JSON: every failure is a BadPayload naming the field."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from web.connectors.base import BadPayload


def loads(payload: bytes | str, what: str) -> Any:
    """Decode JSON with Decimals for fractions (ints stay exact, for 64-bit ids)."""

    def refuse_constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    try:
        return json.loads(payload, parse_float=Decimal, parse_constant=refuse_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise BadPayload(f"{what}: not valid JSON ({exc})") from exc


def obj(value: Any, field: str) -> dict[str, Any]:
    """The value as an object."""
    if not isinstance(value, dict):
        raise BadPayload(f"{field}: expected an object, got {type(value).__name__}")
    return value


def opt_obj(value: Any, field: str) -> dict[str, Any] | None:
    """The value as an object, or None when absent."""
    return None if value is None else obj(value, field)


def array(value: Any, field: str) -> list[Any]:
    """The value as a list (absent is empty)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadPayload(f"{field}: expected a list, got {type(value).__name__}")
    return value


def text(value: Any, field: str) -> str:
    """The value as stripped text (numbers written out, absent is empty)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise BadPayload(f"{field}: expected text, got {type(value).__name__}")


_DIGITS = re.compile(r"[0-9]+")


def digits_id(value: Any, field: str, platform: str) -> str:
    """A numeric id (int or digit string) as text: ids above 2**53 stay exact."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value.strip()):
        return value.strip()
    raise BadPayload(f"{field}: {value!r} is not a {platform} id")
