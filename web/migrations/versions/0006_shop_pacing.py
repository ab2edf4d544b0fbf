"""shop pacing: each shop's API allowance shared between processes; shops: calls per second

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import web.models.base

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shop_pacing",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("shop_id", sa.Integer(), nullable=False),
        sa.Column("level", sa.Float(), server_default="0", nullable=False),
        sa.Column("capacity", sa.Integer(), server_default="0", nullable=False),
        sa.Column("leak_rate", sa.Float(), server_default="0", nullable=False),
        sa.Column("observed_at", web.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", web.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("refusals", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "last_refusal_at", web.models.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shops.id"],
            name=op.f("fk_shop_pacing_shop_id_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shop_pacing")),
        sa.UniqueConstraint("shop_id", name=op.f("uq_shop_pacing_shop_id")),
    )
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("api_calls_per_second", sa.Numeric(precision=7, scale=2), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("shops", schema=None) as batch_op:
        batch_op.drop_column("api_calls_per_second")
    op.drop_table("shop_pacing")
