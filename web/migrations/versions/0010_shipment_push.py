"""shipments reach the shop: whether the shop e-mails the buyer; warehouse bins per SKU

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import web.models.base


revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("notify_shipments", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "warehouse_bins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=120), nullable=False),
        sa.Column("location", sa.String(length=40), nullable=False),
        sa.Column("updated_at", web.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warehouse_bins")),
        sa.UniqueConstraint("sku", name=op.f("uq_warehouse_bins_sku")),
    )


def downgrade() -> None:
    op.drop_table("warehouse_bins")
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("notify_shipments")
