"""Intake: an SQS batch of inbox event ids → each event applied to its order, once.

The webhook route (or a poll) stored the event and sent its id; this applies it exactly as the
local worker does (web/services/sync.py `process_one`). A record whose event is no longer due
(a redelivery, another consumer has it) does nothing; one that raises is reported alone.
"""

from __future__ import annotations

from typing import Any

from sync_lambdas import batch, runtime
from web import aws
from web.services import sync


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    return batch.process(event, aws.INTAKE, lambda work: sync.process_one(sessions, work.id))
