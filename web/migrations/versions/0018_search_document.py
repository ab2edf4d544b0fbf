"""The desk's search on PostgreSQL: one folded document per order, kept by triggers

Revision ID: 0018
Revises: 0017

Until now each source of the search (the order's fields, its customer, its lines' SKUs, its
parcels' tracking numbers) had its own trigram index over an expression, and a search was the
union of four index scans joined back to the orders: a broad term (a common name, a popular
SKU) read every match, folded each candidate row again in the index's recheck, then sorted
them all for one page. One document per order lets the planner walk the list's own index and
stop at the page. SQLite keeps its FTS5 tables (web/search_index.py).

Filling the column reads every order with its lines, parcels and customer: about 26 s per
200,000 orders on a 2-core machine.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from web import search_index

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    search_index.drop_source_indexes(connection)
    search_index.create(connection, punctuation=True)  # as it was until 0022


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    search_index.drop_document(connection)
    search_index.create_source_indexes(connection)
