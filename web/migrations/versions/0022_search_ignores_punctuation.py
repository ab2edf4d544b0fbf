"""The desk's search ignores joining punctuation: "mt-vase-m" and "mtvasem" find the same orders

Revision ID: 0022
Revises: 0021

The searched texts (PostgreSQL's search document, SQLite's FTS5 tables) are rebuilt without
the punctuation that joins the parts of a reference (- . _ / and apostrophes), and the terms
lose theirs the same way (web.textfold.search_fold). PostgreSQL's trigram index splits a text
into words at punctuation: a SKU such as "MT-VASE-M" was three short words whose trigrams
most orders share, so its index scan returned 24,530 candidates
at 1,000,000 orders for 8,860 matches, each rechecked on the table. Without the dashes it is
one word and the index returns the matches alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from web import search_index

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    connection = op.get_bind()
    search_index.drop(connection)
    search_index.create(connection)


def downgrade() -> None:
    connection = op.get_bind()
    search_index.drop(connection)
    search_index.create(connection, punctuation=True)
