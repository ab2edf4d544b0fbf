"""The desk at a million orders: search index, warehouse queue and dashboard indexes

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from web import search_index

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WAITING = (
    "commercial_state = 'validated' AND on_hold IS false"
    " AND fulfilment_state IN ('unfulfilled', 'in_preparation', 'partially_shipped')"
)
_FLAGS = {
    "on_hold": "on_hold IS true",
    "needs_mapping": "needs_mapping IS true",
    "needs_review": "needs_review IS true",
    "totals_mismatch": "computed_total IS NOT NULL",
}


def _partial(name: str, columns: list[str], where: str) -> None:
    sqlite_where = where.replace("IS false", "IS 0").replace("IS true", "IS 1")
    op.create_index(
        name,
        "orders",
        columns,
        postgresql_where=sa.text(where),
        sqlite_where=sa.text(sqlite_where),
    )


def upgrade() -> None:
    op.drop_index("ix_orders_states", table_name="orders")
    op.create_index(
        "ix_orders_state_counts",
        "orders",
        [
            "commercial_state",
            "fulfilment_state",
            "payment_state",
            "on_hold",
            "needs_mapping",
            "needs_review",
        ],
    )
    op.create_index(
        "ix_orders_placed_day", "orders", ["placed_at", "commercial_state", "grand_total"]
    )
    # Payment state and total too: the queue is counted from the index alone.
    paid = ["payment_state", "grand_total"]
    op.create_index("ix_orders_sort_total", "orders", ["grand_total", "id"])
    _partial("ix_orders_warehouse_queue", ["placed_at", "id", *paid], _WAITING)
    _partial("ix_orders_warehouse_mode", ["shipping_mode_id", "placed_at", "id", *paid], _WAITING)
    for name, where in _FLAGS.items():
        _partial(f"ix_orders_{name}_updated", ["updated_at", "id"], where)
    # PostgreSQL's one index per source, as this revision made them (0018 replaced them).
    search_index.create(op.get_bind(), postgresql_document=False, punctuation=True)


def downgrade() -> None:
    search_index.drop(op.get_bind())
    for name in _FLAGS:
        op.drop_index(f"ix_orders_{name}_updated", table_name="orders")
    op.drop_index("ix_orders_warehouse_mode", table_name="orders")
    op.drop_index("ix_orders_warehouse_queue", table_name="orders")
    op.drop_index("ix_orders_sort_total", table_name="orders")
    op.drop_index("ix_orders_placed_day", table_name="orders")
    op.drop_index("ix_orders_state_counts", table_name="orders")
    op.create_index(
        "ix_orders_states", "orders", ["commercial_state", "fulfilment_state", "payment_state"]
    )
