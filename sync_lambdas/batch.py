"""An SQS batch as Lambda delivers it, worked record by record with partial failures.

Lambda's event source mapping is configured with `ReportBatchItemFailures`
(infra/cloudformation.json): the handler returns the ids of the records that failed, Lambda
deletes the others, and only the failed ones come back after the visibility timeout (and
move to the dead-letter queue after `maxReceiveCount` deliveries). One bad record never fails
its batch.

FIFO queues (intake, push) group work by order: after a record of a group fails, the later
records of that group in the batch are not worked and are reported too, so one order's work is
never applied out of order; other groups go on (Powertools' "skip group on error").
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from web.queue import BadMessage, Work

log = logging.getLogger(__name__)


def records(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The SQS records of an event; empty for anything else (a schedule, a test ping)."""
    found = event.get("Records")
    if not isinstance(found, list):
        return []
    return [r for r in found if isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs"]


def is_scheduled_event(event: Mapping[str, Any]) -> bool:
    """An EventBridge schedule's event ("Scheduled Event" from aws.events)."""
    return event.get("source") == "aws.events" and event.get("detail-type") == "Scheduled Event"


def process(
    event: Mapping[str, Any], queue: str, work: Callable[[Work], object]
) -> dict[str, list[dict[str, str]]]:
    """Work each record's id; return Lambda's partial batch response."""
    failures: list[dict[str, str]] = []
    failed_groups: set[str] = set()
    for record in records(event):
        message_id = str(record.get("messageId", ""))
        group = str((record.get("attributes") or {}).get("MessageGroupId") or "")
        if group and group in failed_groups:
            failures.append({"itemIdentifier": message_id})
            continue
        try:
            work(Work.parse(str(record.get("body", "")), queue))
        except BadMessage as exc:
            log.error("message %s on the %s queue is not ours: %s", message_id, queue, exc)
            failures.append({"itemIdentifier": message_id})
        except Exception:
            log.exception("message %s on the %s queue failed", message_id, queue)
            failures.append({"itemIdentifier": message_id})
        else:
            continue
        if group:
            failed_groups.add(group)
    return {"batchItemFailures": failures}


def running_out(context: Any, reserve: float) -> Callable[[], bool]:
    """Whether the invocation has less than `reserve` seconds left: a scheduled handler asks
    before each unit of work and leaves the rest to the next tick rather than being cut off
    by Lambda's timeout in the middle of one. Without a context (a person calling the
    handler), never."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:
        return lambda: False
    return lambda: remaining() < reserve * 1000
