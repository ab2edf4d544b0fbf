"""Pages of a list, and the whole numbers read from query strings to reach them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_ID = 2_147_483_647
"""The largest id an integer column holds (PostgreSQL `integer`); larger ones cannot exist."""

MAX_PAGE = 1_000_000
"""The highest page a list accepts in its query string."""

T = TypeVar("T")


@dataclass
class Page(Generic[T]):
    """One page of a list and where it sits among all of it."""

    items: list[T]
    total: int
    page: int
    per_page: int
    more: bool | None = field(default=None, kw_only=True)
    """Set when the page knows whether a next page has items (a capped count, a cursor)."""
    capped: bool = field(default=False, kw_only=True)
    """`total` is a floor: more items match than it says."""
    after: str | None = field(default=None, kw_only=True)
    """A cursor to the next page (keyset pagination), when the list offers one."""
    before: str | None = field(default=None, kw_only=True)
    """A cursor to the previous page, when the list offers one."""

    @property
    def pages(self) -> int:
        return page_count(self.total, self.per_page)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.more if self.more is not None else self.page < self.pages


def page_count(total: int, per_page: int) -> int:
    """How many pages `total` items fill; an empty list still has its first page."""
    return max(1, math.ceil(total / per_page))


def whole_number(text: str | None, low: int, high: int) -> int | None:
    """Read a whole number from `low` to `high` written in decimal digits; None otherwise."""
    text = (text or "").strip()
    # Length first: int() of thousands of digits is slow, and refused past 4,300 of them.
    if not text.isdecimal() or len(text) > len(str(high)):
        return None
    number = int(text)
    return number if low <= number <= high else None


def parse_page(args: Mapping[str, str], errors: dict[str, str]) -> int:
    """Read `page` from query arguments: 1 when absent, 1 and a note in `errors` when bad."""
    text = (args.get("page") or "").strip()
    if not text:
        return 1
    page = whole_number(text, 1, MAX_PAGE)
    if page is None:
        errors["page"] = f"expected a page number from 1 to {MAX_PAGE}, got {text[:20]!r}"
        return 1
    return page
