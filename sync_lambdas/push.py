"""Push: outbox message ids from SQS → each delivered to its shop once; on a schedule, every
message due for a retry.
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws
from web.services import outbox


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    if batch.is_scheduled_event(event):
        return {"tried": outbox.dispatch_due(sessions)}
    return batch.process(event, aws.PUSH, lambda work: outbox.deliver(sessions, work.id))
