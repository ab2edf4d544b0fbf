"""Health check for load balancers and deploys: the app and its database answer."""

from __future__ import annotations

import logging

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from web.views.base import db
from web.views.errors import DATABASE_RETRY_AFTER

bp = Blueprint("health", __name__)
log = logging.getLogger(__name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    try:
        db().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        log.error("health check: database unreachable: %s", exc)
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER)}
        return jsonify(status="error", database="unreachable"), 503, retry
    return jsonify(status="ok", database="ok")
