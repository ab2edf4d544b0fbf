"""orders: discounts with amounts, computed total, payment details pending, structured
mapping issues; lines: shop-precision unit price, needs shipping; inbox: structured cause

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("discounts", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
        batch_op.add_column(
            sa.Column("computed_total", sa.Numeric(precision=14, scale=2), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "payment_details_pending", sa.Boolean(), server_default=sa.false(), nullable=False
            )
        )
        batch_op.add_column(
            sa.Column("mapping_issues", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
        )
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.alter_column(
            "unit_price",
            existing_type=sa.Numeric(precision=14, scale=2),
            type_=sa.Numeric(precision=18, scale=6),
            existing_nullable=False,
        )
        batch_op.add_column(
            sa.Column("needs_shipping", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("cause_kind", sa.String(length=60), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("cause_params", sa.JSON(), server_default=sa.text("'{}'"), nullable=False)
        )
    # Orders already stored keep their codes; the amounts were not recorded then.
    orders = sa.table(
        "orders",
        sa.column("id", sa.Integer),
        sa.column("discount_codes", sa.JSON),
        sa.column("discounts", sa.JSON),
    )
    connection = op.get_bind()
    for row in connection.execute(sa.select(orders.c.id, orders.c.discount_codes)):
        codes = row.discount_codes
        if isinstance(codes, str):
            codes = json.loads(codes)
        if codes:
            connection.execute(
                orders.update()
                .where(orders.c.id == row.id)
                .values(discounts=[{"code": c, "label": "", "amount": None} for c in codes])
            )


def downgrade() -> None:
    with op.batch_alter_table("inbox_events", schema=None) as batch_op:
        batch_op.drop_column("cause_params")
        batch_op.drop_column("cause_kind")
    with op.batch_alter_table("order_lines", schema=None) as batch_op:
        batch_op.drop_column("needs_shipping")
        batch_op.alter_column(
            "unit_price",
            existing_type=sa.Numeric(precision=18, scale=6),
            type_=sa.Numeric(precision=14, scale=2),
            existing_nullable=False,
        )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("mapping_issues")
        batch_op.drop_column("payment_details_pending")
        batch_op.drop_column("computed_total")
        batch_op.drop_column("discounts")
