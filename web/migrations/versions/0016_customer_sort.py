"""The order list sorted by customer from an index: folded sort names kept on each order

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from web.search_index import folded

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LENGTH = 200
"""web.models.orders.SORT_NAME_LENGTH when this migration was written."""


def _backfill() -> None:
    # The expression the sort computed on every read until now, written once per order.
    orders = sa.table(
        "orders",
        sa.column("customer_id", sa.Integer()),
        sa.column("email", sa.String()),
        sa.column("billing_address", sa.JSON()),
        sa.column("sort_last", sa.String()),
        sa.column("sort_first", sa.String()),
    )
    customers = sa.table(
        "customers",
        sa.column("id", sa.Integer()),
        sa.column("first_name", sa.String()),
        sa.column("last_name", sa.String()),
    )

    def billing(key: str) -> sa.ColumnElement[str]:
        return sa.func.nullif(orders.c.billing_address[key].as_string(), "")

    def customer(name: str) -> sa.ScalarSelect[str]:
        return (
            sa.select(customers.c[name])
            .where(customers.c.id == orders.c.customer_id)
            .scalar_subquery()
        )

    last = sa.func.coalesce(billing("last_name"), customer("last_name"), orders.c.email)
    first = sa.func.coalesce(billing("first_name"), customer("first_name"), "")
    op.execute(
        orders.update().values(
            sort_last=sa.func.substr(folded(last), 1, LENGTH),
            sort_first=sa.func.substr(folded(first), 1, LENGTH),
        )
    )


def upgrade() -> None:
    for name in ("sort_last", "sort_first"):
        op.add_column(
            "orders",
            sa.Column(name, sa.String(LENGTH), nullable=False, server_default=""),
        )
    _backfill()
    op.create_index("ix_orders_sort_customer", "orders", ["sort_last", "sort_first", "id"])


def downgrade() -> None:
    op.drop_index("ix_orders_sort_customer", table_name="orders")
    # Not in batch mode: SQLite drops an unindexed column in place (a table rebuild would
    # lose the search's triggers and expression index).
    op.drop_column("orders", "sort_first")
    op.drop_column("orders", "sort_last")
