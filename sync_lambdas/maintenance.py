"""Maintenance (EventBridge schedule): dead-letter queues drained onto the sync issues page,
jobs whose worker stopped queued again, due work nobody was told of announced again, old inbox
payloads purged (web/services/maintenance.py). Returns the counts."""

from __future__ import annotations

from typing import Any

from sync_lambdas import runtime
from web.services import maintenance


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    sessions = runtime.sessions()
    return maintenance.run(sessions, runtime.config()).as_dict()
