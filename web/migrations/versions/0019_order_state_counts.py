"""The dashboard's counts per state kept by triggers instead of counted on every read

Revision ID: 0019
Revises: 0018

Counting the orders of each state read an index entry per order (about 100 ms at 200,000
orders on PostgreSQL). Triggers on `orders` now write +1/-1 per combination of states into
`order_state_counts` (web/state_counts.py); the dashboard adds those rows up.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from web import state_counts

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "order_state_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("commercial_state", sa.String(length=32), nullable=False),
        sa.Column("fulfilment_state", sa.String(length=32), nullable=False),
        sa.Column("payment_state", sa.String(length=32), nullable=False),
        sa.Column("on_hold", sa.Boolean(), nullable=False),
        sa.Column("needs_mapping", sa.Boolean(), nullable=False),
        sa.Column("needs_review", sa.Boolean(), nullable=False),
        sa.Column("delta", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_state_counts")),
    )
    state_counts.create(op.get_bind())


def downgrade() -> None:
    state_counts.drop(op.get_bind())
    op.drop_table("order_state_counts")
