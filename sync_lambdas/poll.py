"""Poll: an EventBridge schedule, and its half-ticks from the poll queue → the shops whose poll
interval has elapsed are polled.

Polling is the reconciliation behind webhooks (a delivery the shop never sent, a shop without
webhooks): `sync.poll_shop` stores each changed order as an inbox event under a stable dedupe
key, and `intake.store_event` announces each new one to the intake queue once its page
commits, where the intake function applies it. Nothing is applied here.

EventBridge runs the schedule once a minute at most, and PrestaShop and Magento shops are
probed every 30 s: when an active shop's interval is under a minute, the scheduled tick sends
one message to the poll queue, delayed 30 s, and that message invokes this function again (a
half-tick), which polls and sends nothing, so one tick makes exactly one half-tick. Both count
a shop due when its interval elapses within `LEEWAY` (the next run is half a minute away): the
half-tick lands a little more than 30 s after the tick's polls, and the next tick a little less
after the half-tick's.

A shop is polled while the invocation has time left; the others wait for the next tick, when
they are still due (their cursor's last run is unchanged). EventBridge and SQS deliver at
least once: a second invocation finds the shop's last run just stamped and skips it, and
should both poll it, the dedupe keys store each order version once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import batch, runtime
from web import aws
from web.models import Shop, utcnow
from web.services import sync

log = logging.getLogger(__name__)

# Seconds kept in hand before polling one more shop: a poll reads page after page.
RESERVE_SECONDS = 120.0
# EventBridge's smallest rate, the schedule's (infra/zappa_settings.json).
TICK_SECONDS = 60
HALF_TICK_SECONDS = TICK_SECONDS // 2
LEEWAY = dt.timedelta(seconds=HALF_TICK_SECONDS / 2)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    summary = poll_due(sessions, context)
    if batch.records(event):  # a half-tick: poll only, and every record is done
        return {**summary, "batchItemFailures": []}
    with sessions() as session:
        half_tick = sync.half_tick_needed(session, TICK_SECONDS)
    if half_tick:
        send_half_tick(aws.AwsSettings.from_config(runtime.config()), str(event.get("time", "")))
    return {**summary, "half_tick": half_tick}


def poll_due(sessions: sessionmaker[Session], context: Any) -> dict[str, Any]:
    """Poll the due shops while the invocation has time; what each poll did, and the shops
    left for the next run."""
    out_of_time = batch.running_out(context, RESERVE_SECONDS)
    now = utcnow()
    with sessions.begin() as session:
        due = [
            (shop_id, session.get_one(Shop, shop_id).key)
            for shop_id in sync.due_shops(session, now, LEEWAY)
        ]
    polled: list[dict[str, Any]] = []
    left: list[str] = []
    for shop_id, key in due:
        if out_of_time():
            left.append(key)
            continue
        try:
            result = sync.poll_shop(sessions, shop_id)
        except Exception as exc:  # one shop's bug must not keep the others from their poll
            log.exception("poll of shop %s failed", key)
            result = sync.PollResult(key, error=f"{type(exc).__name__}: {exc}")
        polled.append(
            {
                "shop": result.shop_key,
                "pages": result.pages,
                "seen": result.seen,
                "stored": result.stored,
                "rejected": result.rejected,
                "probed": result.probed,
                "error": result.error,
            }
        )
    return {"polled": polled, "left": left}


def send_half_tick(settings: aws.AwsSettings, tick: str) -> None:
    """Ask for one more run of the poll function HALF_TICK_SECONDS from now. A failed send
    is logged: the next tick is a minute away and asks again."""
    body = json.dumps({"queue": aws.POLL, "tick": tick}, separators=(",", ":"))
    try:
        aws.client("sqs", settings).send_message(
            QueueUrl=aws.queue_url(settings, aws.POLL),
            MessageBody=body,
            DelaySeconds=HALF_TICK_SECONDS,
        )
    except Exception:
        log.exception("could not send the poll's half-tick")
