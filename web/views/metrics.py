"""/metrics for Prometheus, behind a bearer token (APP_METRICS_TOKEN).

No token configured: the page does not exist (404). A missing or wrong token: 401. The token
is compared in constant time. No login and no CSRF (a scraper has neither); every other rule
of the app (headers, the rate of the database's answers) holds.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request

from web.services import metrics
from web.views.base import db

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def index() -> Response:
    expected = str(current_app.config.get("METRICS_TOKEN") or "")
    if not expected:
        abort(404)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), expected.encode()
    ):
        return Response(
            "unauthorized\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    response = Response(metrics.exposition(db()), content_type=metrics.CONTENT_TYPE)
    response.headers["Cache-Control"] = "no-store"
    return response
