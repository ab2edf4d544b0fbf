"""A shipment's shop ids kept whole: shipments.external_id widened from 64 to 500 characters

Revision ID: 0020
Revises: 0019

A Shopify shipment whose lines leave from several locations is one fulfillment per location;
Comptoir keeps their ids as one comma-separated list. Five 13-digit ids take 69 characters, so
the 64-character column cut the fifth mid-id. 500 characters hold 35 of them.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _widen(before: int, after: int) -> None:
    # SQLite copies the table; reflecting it reflects `orders` (its foreign key), whose
    # expression indexes (web/search_index.py) SQLAlchemy cannot reflect and warns about.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        with op.batch_alter_table("shipments", schema=None) as batch_op:
            batch_op.alter_column(
                "external_id",
                existing_type=sa.String(length=before),
                type_=sa.String(length=after),
                existing_nullable=True,
            )


def upgrade() -> None:
    _widen(64, 500)


def downgrade() -> None:
    # Lists longer than 64 characters keep their whole ids that fit.
    bind = op.get_bind()
    shipments = sa.table("shipments", sa.column("id"), sa.column("external_id"))
    long = bind.execute(
        sa.select(shipments.c.id, shipments.c.external_id).where(
            sa.func.length(shipments.c.external_id) > 64
        )
    ).all()
    for row in long:
        kept = ""
        for part in row.external_id.split(","):
            if len(kept) + len(part) + (1 if kept else 0) > 64:
                break
            kept = f"{kept},{part}" if kept else part
        bind.execute(
            shipments.update().where(shipments.c.id == row.id).values(external_id=kept[:64])
        )
    _widen(500, 64)
