"""Pages of a list: how many a total fills, and the page number read from a query string."""

from __future__ import annotations

import pytest

from web.services import paging
from web.services.paging import Page, page_count, parse_page, whole_number


def test_a_total_fills_whole_pages_and_an_empty_list_still_has_one() -> None:
    assert [page_count(total, 25) for total in (0, 1, 25, 26, 50, 51)] == [1, 1, 1, 2, 2, 3]
    page = Page(items=[1, 2], total=51, page=2, per_page=25)
    assert (page.pages, page.has_prev, page.has_next) == (3, True, True)
    assert Page(items=[], total=51, page=3, per_page=25).has_next is False
    assert Page(items=[], total=5, page=1, per_page=25, more=True).has_next is True


def test_a_whole_number_is_read_up_to_its_highest_value_included() -> None:
    assert whole_number(" 10 ", 1, 10) == 10
    assert whole_number("1", 1, 10) == 1
    assert whole_number("11", 1, 10) is None
    assert whole_number("0", 1, 10) is None
    assert whole_number("007", 1, 10) is None  # more digits than the highest value has
    assert whole_number(str(paging.MAX_ID), 1, paging.MAX_ID) == 2_147_483_647
    for text in (None, "", "-1", "1.5", "²", "1e3"):
        assert whole_number(text, 0, 10) is None


@pytest.mark.parametrize(
    ("args", "page"),
    [
        ({}, 1),
        ({"page": "1"}, 1),
        ({"page": ""}, 1),
        ({"page": "  "}, 1),
        ({"page": " 3 "}, 3),
        ({"page": "1000000"}, 1_000_000),
    ],
)
def test_a_page_number_is_read_from_the_query(args: dict[str, str], page: int) -> None:
    errors: dict[str, str] = {}
    assert parse_page(args, errors) == page and errors == {}


@pytest.mark.parametrize(
    ("text", "shown"),
    [("0", "'0'"), ("1000001", "'1000001'"), ("deux", "'deux'"), ("9" * 30, repr("9" * 20))],
)
def test_a_bad_page_number_is_refused_and_the_first_page_shown(text: str, shown: str) -> None:
    errors: dict[str, str] = {}
    assert parse_page({"page": text}, errors) == 1
    assert errors == {"page": f"expected a page number from 1 to 1000000, got {shown}"}
