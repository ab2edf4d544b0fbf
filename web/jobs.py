"""Which service runs which background job: the registry the queue works from.

The queue (web/queue.py) knows no service; the app factory and the Lambda runtime call
`register_all()` so that every process that enqueues or runs jobs knows their handlers.
Kinds that render PDFs are marked: on AWS they go to the render function (sync_lambdas/render.py).
"""

from __future__ import annotations

from typing import Any

from web import queue
from web.services import (
    backup,
    bulk,
    documents_list,
    invoicing,
    shop_settings,
    sync,
    tracking_import,
)


def register_all() -> None:
    """Register every job kind's handler (idempotent)."""
    queue.register(shop_settings.SYNC_JOB, sync.sync_shop_job)
    queue.register(shop_settings.BACKFILL_JOB, sync.backfill_job)
    queue.register(bulk.ACTION_JOB, bulk.action_job)
    queue.register(bulk.COMMENT_JOB, bulk.comment_job)
    queue.register(bulk.EXPORT_JOB, bulk.export_job)
    queue.register(tracking_import.IMPORT_JOB, tracking_import.import_job)
    queue.register(bulk.DELIVER_JOB, bulk.deliver_job, renders=True)
    queue.register(bulk.INVOICE_JOB, bulk.invoice_job, renders=True)
    queue.register(invoicing.INVOICE_JOB, invoicing.invoice_order_job, renders=True)
    queue.register(documents_list.DOWNLOAD_JOB, documents_list.download_job, renders=True)


def start_worker(app: Any) -> queue.EmbeddedWorker:
    """The embedded worker thread of the local runtime: jobs, then the sync loop (and the
    daily backup when APP_BACKUP_DIR is set)."""
    sessions = app.extensions["comptoir.sessions"]
    backups = backup.schedule_from(app.config)

    def tick() -> None:
        sync.run_sync(sessions)
        if backups is not None:
            backups.run_if_due()

    return queue.start_embedded_worker(app, tick=tick)
