"""Poll: an EventBridge schedule → the shops whose poll interval has elapsed are polled.

Polling is the reconciliation behind webhooks (a delivery the shop never sent, a shop without
webhooks): `sync.poll_shop` stores each changed order as an inbox event under a stable dedupe
key, and `intake.store_event` announces each new one to the intake queue once its page
commits, where the intake function applies it. Nothing is applied here.

A shop is polled while the invocation has time left; the others wait for the next tick, when
they are still due (their cursor's last run is unchanged). EventBridge delivers at least once:
a second invocation finds the shop's last run just stamped and skips it, and should both poll
it, the dedupe keys store each order version once.
"""

from __future__ import annotations

import logging
from typing import Any

from sync_lambdas import batch, runtime
from web.models import Shop, utcnow
from web.services import sync

log = logging.getLogger(__name__)

# Seconds kept in hand before polling one more shop: a poll reads page after page.
RESERVE_SECONDS = 120.0


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sessions = runtime.sessions()
    out_of_time = batch.running_out(context, RESERVE_SECONDS)
    now = utcnow()
    with sessions.begin() as session:
        due = [
            (shop_id, session.get_one(Shop, shop_id).key)
            for shop_id in sync.due_shops(session, now)
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
                "error": result.error,
            }
        )
    return {"polled": polled, "left": left}
