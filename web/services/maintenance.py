"""Maintenance: what keeps the queues honest and the inbox small, on a schedule.

On AWS the `maintenance` Lambda (sync_lambdas/maintenance.py) runs it from an EventBridge
schedule; in the embedded mode `flask sync maintenance` runs the parts that apply there (the
local worker finds due rows itself, and there are no dead-letter queues):

- drain the dead-letter queues into `dead_letters` (the sync issues page shows them);
- queue again the jobs whose Lambda stopped without finishing (their lease expired; locally
  the worker does it when it starts);
- announce due work nobody was told of (a send to SQS that failed, a retry time that came);
- empty the bodies of inbox deliveries applied longer ago than the retention;
- fold the dashboard's state counts (web/state_counts.py) once they have many rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from web import aws, queue, state_counts
from web.models import utcnow
from web.services import dead_letters, intake

# New work is announced when it commits; only what waited longer than this is announced again.
UNANNOUNCED_AFTER = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class MaintenanceReport:
    dead_letters: int = 0
    jobs_requeued: int = 0
    events_announced: int = 0
    jobs_announced: int = 0
    payloads_purged: int = 0
    counts_compacted: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def summary(self) -> str:
        return ", ".join(
            f"{name.replace('_', ' ')}: {value}" for name, value in asdict(self).items()
        )


def run(sessions: sessionmaker[Session], config: Mapping[str, Any]) -> MaintenanceReport:
    """One maintenance pass with the settings' queue (QUEUE=sqs: the AWS parts too)."""
    on_sqs = str(config.get("QUEUE") or "local").lower() == "sqs"
    drained = dead_letters.drain(sessions, aws.AwsSettings.from_config(config)) if on_sqs else 0
    # Locally the worker queues again what a stop cut off when it starts (a job may run for
    # longer than a Lambda's lease there: requeueing it would run it twice at once).
    requeued = queue.requeue_expired(sessions) if on_sqs else 0
    events = jobs = 0
    if on_sqs:
        events, jobs = announce_unannounced(sessions)
    purged = purge_payloads(sessions, int(config.get("INBOX_RETENTION_DAYS") or 0))
    compacted = int(state_counts.compact_if_needed(sessions))
    return MaintenanceReport(drained, requeued, events, jobs, purged, compacted)


def announce_unannounced(
    sessions: sessionmaker[Session], waited: dt.timedelta = UNANNOUNCED_AFTER
) -> tuple[int, int]:
    """Announce due inbox events and queued jobs that waited longer than `waited`; return
    how many of each. A consumer does nothing for a row no longer due, so announcing one
    twice costs a message."""
    waiting_since = utcnow() - waited
    with sessions.begin() as session:
        events = intake.unannounced_due_events(session, waiting_since)
        for event_id, shop_id, external_order_id in events:
            intake.announce_event(session, event_id, shop_id, external_order_id)
        jobs = queue.due_jobs(session, limit=500, queued_before=waiting_since)
        for job in jobs:
            queue.announce(session, queue.Work(queue.job_queue(job.kind), job.id))
    return len(events), len(jobs)


def purge_payloads(sessions: sessionmaker[Session], days: int) -> int:
    """Empty the payloads of inbox deliveries done more than `days` ago (0: keep them)."""
    with sessions.begin() as session:
        return intake.purge_payloads(session, days)
