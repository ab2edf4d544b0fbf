"""The buyer's signed links: a document's PDF without an account, or a 404 that tells nothing.

No login (the blueprint is in web.app.PUBLIC_BLUEPRINTS): the signed token is the
authorisation. A token that is forged, altered, expired, malformed or names a document that
is gone gets one and the same page, so a link's holder learns nothing about any document.
There is no rate limit (Comptoir has none for public routes since flask-limiter was
dropped): guessing is hopeless against an HMAC-SHA256, and a forged token is refused
before the database is read.
"""

from __future__ import annotations

from flask import Blueprint, Response, render_template
from flask.typing import ResponseReturnValue

from web.documents import issued, links
from web.documents.issued import DocumentDamaged
from web.services.errors import NotFound
from web.views.base import db
from web.views.documents import stored_pdf_response

bp = Blueprint("public_documents", __name__)

# Neither kept by caches nor indexed, and the link never leaks through a Referer.
PRIVATE_HEADERS = {
    "Cache-Control": "private, no-store",
    "X-Robots-Tag": "noindex",
    "Referrer-Policy": "no-referrer",
}


@bp.get("/d/<anypath:token>")  # a slash or a line break in it: one more way to be wrong
def show(token: str) -> ResponseReturnValue:
    """The document's PDF as issued (its hash checked), shown in the browser."""
    try:
        document = links.linked_document(db(), token)
        document = issued.document_with_pdf(db(), document.id)
        # On S3 a redirect to a presigned URL; its Referrer-Policy keeps the token from S3.
        return stored_pdf_response(document, inline=True, headers=PRIVATE_HEADERS)
    except (NotFound, DocumentDamaged):  # a damaged file is logged by issued
        body = render_template("public/link_unavailable.html")
        return Response(body, 404, PRIVATE_HEADERS, mimetype="text/html")
