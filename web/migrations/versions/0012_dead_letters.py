"""AWS: messages that kept failing, drained from the dead-letter queues for a person to replay

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import web.models.base


revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue", sa.String(length=20), nullable=False),
        sa.Column("message_id", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("receive_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("sent_at", web.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("moved_at", web.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("replayed_at", web.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("replayed_by_id", sa.Integer(), nullable=True),
        sa.Column("dismissed_at", web.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("dismissed_by_id", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["replayed_by_id"], ["users.id"], name=op.f("fk_dead_letters_replayed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["dismissed_by_id"], ["users.id"], name=op.f("fk_dead_letters_dismissed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letters")),
        sa.UniqueConstraint("message_id", name=op.f("uq_dead_letters_message_id")),
    )


def downgrade() -> None:
    op.drop_table("dead_letters")
