"""What every hostile-input drill checks: no 5xx, a clear 4xx with its reason, nothing stored.

`row_counts` counts every table in one statement, so a drill compares the whole database
before and after a request it expects to be refused.
"""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.reliability.conftest import drill_size
from web.models import Base

# Text a hostile client sends: any character (NUL included), over-long runs, NUL alone.
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
HOSTILE_TEXT = st.one_of(
    ANY_TEXT,
    st.just("\x00"),
    ANY_TEXT.map(lambda text: f"{text}\x00{text}"),
    st.integers(200, 5_000).map(lambda n: "é" * n),
    st.integers(65, 400).map(lambda n: "9" * n),
)
# What an HTTP header can carry (latin-1, no line breaks): NUL and control characters too.
HEADER_TEXT = st.text(
    st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=60
) | st.just("\x00")


def fuzz_settings(reduced: int, full: int, *, slow_data: bool = False) -> settings:
    """Reproducible in `make test` (derandomized, small), DRILLS_FULL=1 for the full count.

    No deadline: two cores shared by several runs make timings meaningless. The function-
    scoped fixtures are shared on purpose (one database transaction per test, rows counted
    before and after each example). `slow_data`: the examples are megabytes on purpose.
    Not shrunk: a failing example is reported as found, in seconds rather than minutes.
    """
    checks = [HealthCheck.function_scoped_fixture]
    if slow_data:
        checks += [HealthCheck.too_slow, HealthCheck.data_too_large]
    return settings(
        max_examples=drill_size(reduced, full),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=checks,
        phases=(Phase.explicit, Phase.reuse, Phase.generate),
    )


def row_counts(session: Session, skip: Iterable[str] = ()) -> dict[str, int]:
    """Rows of every table but `skip`, read in one statement."""
    tables = [table for table in Base.metadata.sorted_tables if table.name not in set(skip)]
    counts = [select(func.count()).select_from(table).scalar_subquery() for table in tables]
    values = session.execute(select(*counts)).one()
    return {table.name: int(value) for table, value in zip(tables, values, strict=True)}


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The tables whose row count changed, with the change."""
    return {name: after[name] - before[name] for name in before if after[name] != before[name]}
