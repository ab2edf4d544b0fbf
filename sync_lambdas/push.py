"""Push: outbox message ids from SQS → each delivered to its shop once; on a schedule, the
messages due for a retry.

From SQS (`outbox.deliver`): a message no longer due (sent already, claimed by another
consumer, held back by an older open message of its order) does nothing and is acknowledged.
Once a message is sent, ignored or given up, the next open message of its order is announced
in the same transaction, so an order's second change does not wait for the schedule.

A failed attempt is recorded on the message with its next attempt time and acknowledged; the
EventBridge schedule (`outbox.dispatch_due`) delivers what is due, while the invocation has
time left, and leaves the rest to the next tick.
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws
from web.services import outbox

# Seconds kept in hand before starting one more delivery: one push may make a few calls of
# PUSH_TIMEOUT each. The function's timeout must be well above it (infra/).
RESERVE_SECONDS = 3 * outbox.PUSH_TIMEOUT
SWEEP_LIMIT = 1000


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    if batch.is_scheduled_event(event):
        out_of_time = batch.running_out(context, RESERVE_SECONDS)
        tried = outbox.dispatch_due(sessions, limit=SWEEP_LIMIT, out_of_time=out_of_time)
        return {"tried": tried, "out_of_time": out_of_time()}
    return batch.process(event, aws.PUSH, lambda work: outbox.deliver(sessions, work.id))
