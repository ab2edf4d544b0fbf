"""shipments: cancelled state, who made them (Comptoir or the shop), the shop's ids,
idempotency keys, cancellation reason, when pushed

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import web.models.base


revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATES_BEFORE = "'draft', 'packed', 'shipped', 'delivered'"
STATES_NOW = STATES_BEFORE + ", 'cancelled'"


def upgrade() -> None:
    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))

    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "origin",
                sa.Enum(
                    "comptoir",
                    "shop",
                    name="shipment_origin",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                server_default="comptoir",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=120), nullable=True))
        batch_op.add_column(
            sa.Column("cancelled_at", web.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("cancel_reason", sa.String(length=500), server_default="", nullable=False)
        )
        batch_op.add_column(
            sa.Column("pushed_at", web.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_shipments_idempotency_key"), ["idempotency_key"]
        )
        batch_op.create_unique_constraint(
            batch_op.f("uq_shipments_order_id_external_id"), ["order_id", "external_id"]
        )
        batch_op.drop_constraint(batch_op.f("ck_shipments_shipment_state"), type_="check")
        batch_op.create_check_constraint("shipment_state", sa.text(f"state IN ({STATES_NOW})"))


def downgrade() -> None:
    op.execute("UPDATE shipments SET state = 'draft' WHERE state = 'cancelled'")
    with op.batch_alter_table("shipments", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_shipments_shipment_state"), type_="check")
        batch_op.create_check_constraint("shipment_state", sa.text(f"state IN ({STATES_BEFORE})"))
        batch_op.drop_constraint(batch_op.f("uq_shipments_order_id_external_id"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_shipments_idempotency_key"), type_="unique")
        batch_op.drop_column("pushed_at")
        batch_op.drop_column("cancel_reason")
        batch_op.drop_column("cancelled_at")
        batch_op.drop_column("idempotency_key")
        batch_op.drop_column("external_id")
        batch_op.drop_constraint(batch_op.f("ck_shipments_shipment_origin"), type_="check")
        batch_op.drop_column("origin")

    with op.batch_alter_table("parcels", schema=None) as batch_op:
        batch_op.drop_column("external_id")
