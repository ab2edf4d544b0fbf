"""Error pages: a fragment for htmx swaps, a whole page otherwise."""

from __future__ import annotations

import logging

from flask import Flask, Response, g, jsonify, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from web import htmx

log = logging.getLogger(__name__)

# Seconds a client is asked to wait when the database does not answer (a restart, a failover).
DATABASE_RETRY_AFTER = 5


def _page(status: int, title: str, message: str) -> Response:
    return htmx.render(
        "errors/page.html",
        "errors/_message.html",
        status=status,
        status_code=status,
        title=title,
        message=message,
    )


def _roll_back() -> None:
    """Undo the request's unit of work; a dead connection is dropped, not an error."""
    session = g.get("db_session")
    if session is None:
        return
    try:
        session.rollback()
    except DBAPIError:
        session.invalidate()


def register(app: Flask) -> None:
    from web.documents.issued import DocumentDamaged

    @app.errorhandler(CSRFError)
    def csrf_failed(exc: CSRFError) -> ResponseReturnValue:
        return _page(
            400, _("Form expired"), _("The form had expired. Reload the page and try again.")
        )

    @app.errorhandler(403)
    def forbidden(exc: HTTPException) -> ResponseReturnValue:
        return _page(403, _("Not allowed"), _("Your role does not give access to this page."))

    @app.errorhandler(404)
    def not_found(exc: HTTPException) -> ResponseReturnValue:
        # A path the API's own catch-all cannot match (a control character in it).
        if request.path.startswith("/api/"):
            return jsonify(error=f"no such API route: {request.path!r}"), 404
        return _page(404, _("Page not found"), _("This page does not exist or was removed."))

    @app.errorhandler(405)
    def not_allowed(exc: HTTPException) -> ResponseReturnValue:
        return _page(405, _("Not allowed"), _("This action is not available here."))

    @app.errorhandler(413)
    def too_large(exc: HTTPException) -> ResponseReturnValue:
        return _page(413, _("Too large"), _("What was sent is too large to be read."))

    @app.errorhandler(DocumentDamaged)
    def document_damaged(exc: DocumentDamaged) -> ResponseReturnValue:
        # Logged by web.documents.issued; the bytes kept at issue are gone or changed.
        if request.path.startswith("/api/"):
            return jsonify(error=f"{exc}: the administrator must restore it"), 500
        return _page(
            500,
            _("Document damaged"),
            _(
                "The stored file of this document is missing or no longer matches what was "
                "issued. It was logged; an administrator must restore it from a backup "
                "(flask documents verify lists every damaged document)."
            ),
        )

    @app.errorhandler(OperationalError)
    def database_unavailable(exc: OperationalError) -> ResponseReturnValue:
        """The database does not answer: 503 and Retry-After, so shops and clients come back
        (a webhook refused this way is stored when it is sent again), never a 500."""
        _roll_back()
        log.error("database unavailable: %s", exc.orig if exc.orig is not None else exc)
        retry = {"Retry-After": str(DATABASE_RETRY_AFTER)}
        if request.blueprint in ("hooks", "api", "health") or request.path.startswith("/api/"):
            return jsonify(error="database unavailable, try again shortly"), 503, retry
        page = _page(
            503,
            _("Try again in a moment"),
            _("The database does not answer right now. Nothing was saved; try again shortly."),
        )
        page.headers.update(retry)
        return page

    @app.errorhandler(500)
    def server_error(exc: Exception) -> ResponseReturnValue:
        _roll_back()
        log.error("unhandled error", exc_info=exc)
        return _page(
            500, _("Something went wrong"), _("The error was logged. Nothing was saved; try again.")
        )
