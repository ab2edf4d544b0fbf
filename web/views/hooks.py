"""Webhook intake: check the signature on the raw body, store the delivery, answer at once.

Authenticated by HMAC, not by login or CSRF. No shop API call and no order processing
happens here: the worker picks the inbox event up within a second.

The HMAC covers the body only. A signed body under a topic that names another kind of body
(an order re-posted as a deletion) is kept as a rejected event with its cause and answered
200 "refused": the same body would be refused again, so a 4xx would only make Shopify retry
it for 4 hours and then drop the subscription, and count towards WooCommerce disabling the
webhook after 5 failures — while a replayer is not the shop and gains nothing either way.

On SQLite the shop look-up is a read of its own (no lock) and the insert a write
transaction of its own, so the database's single write lock is held for one insert and
its commit, not while the body is checked and parsed.
"""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from web.connectors.base import BadPayload, InvalidSignature, TopicMismatch
from web.db import end_read, read_only
from web.services import intake, shops
from web.views.base import db

bp = Blueprint("hooks", __name__, url_prefix="/hooks")
log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024


def _error(status: int, message: str) -> ResponseReturnValue:
    return jsonify(error=message), status


@bp.post("/<platform>/<shop_key>")
def receive(platform: str, shop_key: str) -> ResponseReturnValue:
    shop = shops.find_for_webhook(read_only(db()), shop_key)
    end_read(db())
    if shop is None or shop.platform.value != platform:
        return _error(404, "unknown shop")
    if not shop.is_active:
        return _error(404, "this shop is switched off in Comptoir")
    request.max_content_length = MAX_BODY_BYTES
    try:
        body = request.get_data(cache=False)
    except RequestEntityTooLarge:
        return _error(413, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        received = intake.receive_webhook(db(), shop, body, dict(request.headers))
    except InvalidSignature as exc:
        log.warning("webhook for shop %s refused: %s", shop.key, exc)
        return _error(401, f"signature refused: {exc}")
    except TopicMismatch as exc:
        db().commit()  # the refused delivery, with its cause, for the sync log
        return jsonify(status="refused", reason=str(exc))
    except BadPayload as exc:
        db().commit()  # keeps the rejected-event record, with its cause, for the sync log
        return _error(400, f"unreadable delivery: {exc}")
    db().commit()
    status = "ping" if received.ping else "duplicate" if received.duplicate else "stored"
    return jsonify(status=status)
