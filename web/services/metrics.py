"""What /metrics tells Prometheus: the queues' depth and age, each shop's poll age, the sync
issues, and how long requests take, in the text exposition format (version 0.0.4).

The database figures are a dozen COUNT/MIN/MAX queries on indexed columns (the inbox's
(state, received_at), the outbox's (state, next_attempt_at), the jobs' (state, run_after)),
cheap enough to scrape every 15 s. Request latency is counted in this process
(`LATENCY`): under gunicorn each worker process keeps its own histogram and a scrape reads
one of them, so run one web process (WEB_CONCURRENCY=1) where the latency must be exact, or
read it as a sample (docs/OPERATIONS.md).
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from web.models import InboxEvent, Job, OutboxMessage, Shop, SyncCursor, utcnow
from web.models.enums import JobState, OutboxState
from web.services import outbox, sync_issues

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Seconds: a page is expected within 0.1–0.5 s, a webhook within 0.05 s, an export may stream.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
WAITING_EVENTS = sync_issues.WAITING_EVENTS


@dataclass
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0


class LatencyHistogram:
    """Request durations by endpoint kind, in this process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, _Histogram] = {}

    def observe(self, kind: str, seconds: float) -> None:
        with self._lock:
            histogram = self._kinds.setdefault(kind, _Histogram())
            histogram.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
            histogram.total += seconds

    def lines(self) -> list[str]:
        name = "comptoir_request_duration_seconds"
        out = [
            f"# HELP {name} Time to answer a request, by endpoint kind (this process only).",
            f"# TYPE {name} histogram",
        ]
        with self._lock:
            for kind, histogram in sorted(self._kinds.items()):
                cumulative = 0
                for bound, count in zip((*BUCKETS, float("inf")), histogram.counts, strict=True):
                    cumulative += count
                    le = "+Inf" if bound == float("inf") else repr(bound)
                    out.append(f'{name}_bucket{{kind="{kind}",le="{le}"}} {cumulative}')
                out.append(f'{name}_sum{{kind="{kind}"}} {histogram.total!r}')
                out.append(f'{name}_count{{kind="{kind}"}} {cumulative}')
        return out


LATENCY = LatencyHistogram()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _gauge(
    name: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]
) -> list[str]:
    out = [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
    for labels, value in samples:
        label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
        out.append(f"{name}{{{label_text}}} {value!r}" if label_text else f"{name} {value!r}")
    return out


def _age(now: dt.datetime, then: dt.datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then is not None else 0.0


def oldest_waiting_event(session: Session) -> dt.datetime | None:
    """When the oldest delivery not yet applied (pending, or failed and to retry) arrived."""
    return session.scalar(sync_issues.oldest_waiting_query())


def exposition(session: Session, now: dt.datetime | None = None) -> str:
    """Every metric, as the text Prometheus scrapes."""
    now = now or utcnow()
    waiting = {
        state: session.scalar(select(func.count(InboxEvent.id)).where(InboxEvent.state == state))
        or 0
        for state in WAITING_EVENTS
    }
    due = session.scalar(
        select(func.count(OutboxMessage.id)).where(
            OutboxMessage.state.in_(outbox.OPEN_STATES), OutboxMessage.next_attempt_at <= now
        )
    )
    dead = session.scalar(
        select(func.count(OutboxMessage.id)).where(OutboxMessage.state == OutboxState.DEAD)
    )
    jobs = {
        state: session.scalar(select(func.count(Job.id)).where(Job.state == state)) or 0
        for state in (JobState.QUEUED, JobState.RUNNING)
    }
    polled = session.execute(
        select(Shop.key, func.max(SyncCursor.last_success_at))
        .join(SyncCursor, SyncCursor.shop_id == Shop.id)
        .where(Shop.is_active.is_(True))
        .group_by(Shop.key)
        .order_by(Shop.key)
    ).all()
    issues = sync_issues.counts(session)
    lines = [
        *_gauge(
            "comptoir_inbox_events_waiting",
            "Shop deliveries received and not applied yet, by state (failed ones retry).",
            [({"state": str(state)}, float(count)) for state, count in waiting.items()],
        ),
        *_gauge(
            "comptoir_inbox_lag_seconds",
            "Age of the oldest delivery not applied yet (0 when none waits).",
            [({}, _age(now, oldest_waiting_event(session)))],
        ),
        *_gauge(
            "comptoir_outbox_due_messages",
            "Changes for the shops whose sending time has come.",
            [({}, float(due or 0))],
        ),
        *_gauge(
            "comptoir_outbox_dead_messages",
            "Changes for the shops given up after every retry (sync issues).",
            [({}, float(dead or 0))],
        ),
        *_gauge(
            "comptoir_jobs",
            "Background jobs queued or running.",
            [({"state": str(state)}, float(count)) for state, count in jobs.items()],
        ),
        *_gauge(
            "comptoir_shop_poll_age_seconds",
            "Seconds since the shop's last successful poll (shops never polled are absent).",
            [({"shop": key}, _age(now, at)) for key, at in polled if at is not None],
        ),
        *_gauge(
            "comptoir_sync_issues",
            "Problems waiting for a person, as the sync issues page counts them.",
            [
                ({"kind": "outbox"}, float(issues.outbox)),
                ({"kind": "inbox"}, float(issues.inbox)),
                ({"kind": "dead_letters"}, float(issues.dead_letters)),
            ],
        ),
        *LATENCY.lines(),
    ]
    return "\n".join(lines) + "\n"
