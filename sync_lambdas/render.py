"""Render: SQS batches of job ids whose work makes PDFs (bulk delivery notes and invoices,
invoices issued automatically, document bundles) → each job run once.

A function of its own because it needs Pango and its fonts (WeasyPrint) and more memory and
time than the others (infra/README.md). Issued PDFs go to the documents storage (S3, locked);
bundles for a user to download to `downloads/` in the same bucket (web/job_outputs.py), as
this function's /tmp is not the web function's. A message whose job is gone, done or taken is
acknowledged; a job that fails is queued and announced again by web/queue.py, up to
MAX_ATTEMPTS.
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws, queue


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    return batch.process(event, aws.RENDER, lambda work: queue.run_job(sessions, work.id))
