"""Intake: an SQS batch of inbox event ids → each event applied to its order, once.

The webhook route (or a poll) stored the event and sent its id after its commit; this applies
it exactly as the local worker does (web/services/sync.py `process_one`), in one transaction.

At-least-once delivery: SQS may hand the same message over twice, or again once its visibility
timeout ran out while the first consumer is still working on it (a slow shop behind a
follow-up). Both find nothing to do: on PostgreSQL the event's row is locked (`SKIP LOCKED`)
by the consumer working on it, so the second skips it at once; on SQLite the write lock
serialises them and the second finds the event processed. Either way its record is
acknowledged, and only the first consumer's work counts.

What each outcome does to the message:
- applied, parked (a body that will never apply: the sync issues page shows it), or nothing to
  do → acknowledged (deleted);
- FAILED, to be retried later (the shop timed out, rate-limited us): acknowledged too. The row
  carries its next attempt time, which SQS cannot (a message's delay is 15 minutes at most,
  and a redelivery comes after the visibility timeout, not after the backoff); the maintenance
  schedule (sync_lambdas/maintenance.py) announces due events again, and after MAX_ATTEMPTS
  the event is parked;
- an unexpected error (a bug, the database gone) → reported in `batchItemFailures`: its
  transaction rolled back, the message comes back after the visibility timeout and, failing
  `maxReceiveCount` times, lands in the dead-letter queue (shown with "Replay" on the sync
  issues page). A body that is not one of ours is reported too and goes the same way.
Later records of a failed record's order (FIFO group) are reported with it, never applied out
of order (sync_lambdas/batch.py).
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws
from web.services import sync


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    return batch.process(event, aws.INTAKE, lambda work: sync.process_one(sessions, work.id))
