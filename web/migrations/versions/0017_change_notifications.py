"""Change notifications from PrestaShop and Magento, and their 30-second change probe

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from web.models.base import UTCDateTime

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROBED = ("prestashop", "magento")
OLD_DEFAULT = 300
PROBE_INTERVAL = 30
"""web.services.shops.PROBE_INTERVAL_SECONDS when this migration was written. The settings
form refused less than 60 s before it, so a shop at 30 s came from here."""

_shops = sa.table(
    "shops",
    sa.column("platform", sa.String()),
    sa.column("poll_interval_seconds", sa.Integer()),
)


def _move(old: int, new: int) -> None:
    op.execute(
        _shops.update()
        .where(_shops.c.platform.in_(PROBED), _shops.c.poll_interval_seconds == old)
        .values(poll_interval_seconds=new)
    )


def upgrade() -> None:
    op.add_column("shops", sa.Column("notified_at", UTCDateTime(timezone=True), nullable=True))
    op.add_column(
        "shops", sa.Column("notified_event", sa.String(40), nullable=False, server_default="")
    )
    op.add_column("shops", sa.Column("notified_day", sa.Date(), nullable=True))
    op.add_column(
        "shops", sa.Column("notified_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.add_column(
        "sync_cursors", sa.Column("reconciled_at", UTCDateTime(timezone=True), nullable=True)
    )
    _move(OLD_DEFAULT, PROBE_INTERVAL)


def downgrade() -> None:
    _move(PROBE_INTERVAL, OLD_DEFAULT)
    # Not in batch mode: SQLite drops a plain column in place.
    op.drop_column("sync_cursors", "reconciled_at")
    for name in ("notified_count", "notified_day", "notified_event", "notified_at"):
        op.drop_column("shops", name)
