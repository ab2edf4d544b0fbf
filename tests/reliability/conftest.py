"""Reliability drills: each ends with a count of lost and duplicated effects that must be zero.

`make test` runs them at reduced sizes; `make drills` sets DRILLS_FULL=1 for the sizes stated
in issue 13 (10,000 deliveries, kills again and again, ≥ 10,000 fuzz cases).
"""

from __future__ import annotations

import os

import pytest

FULL = os.environ.get("DRILLS_FULL") == "1"


def drill_size(reduced: int, full: int) -> int:
    """The reduced size in `make test`, the full one in `make drills`."""
    return full if FULL else reduced


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/reliability/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.drill)
