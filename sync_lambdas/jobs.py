"""Jobs: SQS batches of job ids (bulk actions, exports, tracking imports, shop syncs) → each job
run once (web/queue.py `run_job`: a job no longer queued is left alone, a failed one is queued
and announced again up to MAX_ATTEMPTS). Exports go to `downloads/` on S3 (web/job_outputs.py).
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws, queue


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    return batch.process(event, aws.JOBS, lambda work: queue.run_job(sessions, work.id))
