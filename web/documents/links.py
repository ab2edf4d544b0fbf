"""Signed, expiring links to issued documents: the buyer opens them without an account.

A link is `BASE_URL/d/<token>`. The token is an itsdangerous URLSafeTimedSerializer dump of
`[document id, first 16 hex digits of its SHA-256]`, stamped with the time it was made and
signed (HMAC-SHA256) with the app's SECRET_KEY under a salt of its own, so a value signed
for anything else with the same key (the session cookie, the known-device cookie) never
verifies here. The hash prefix ties the link to the bytes that were issued: whatever
happens to a document row, a link serves the PDF it was made for or nothing.

A link is valid `CompanySettings.link_days` days (default 90) from its stamp, counted when
it is opened: shortening the setting shortens the links already sent too. Changing
SECRET_KEY ends every link.

Invoices, credit notes and delivery notes have links (a buyer may want the delivery note
too); only invoices and credit notes are sent to the shop by the outbox.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
from typing import Any

from babel.support import NullTranslations, Translations
from itsdangerous import BadData, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from web.documents.company import company_settings
from web.documents.render import LANGUAGES, TRANSLATIONS
from web.i18n import N_
from web.models import Document
from web.models.enums import DocumentKind, DocumentState
from web.services.errors import NotFound

SALT = "comptoir.document-link"
HASH_PREFIX = 16
DEFAULT_DAYS = 90
# A real token is about 110 characters; anything much longer is not worth decoding.
MAX_TOKEN_LENGTH = 300
# What URLSafeTimedSerializer writes. Its base64 decoding skips any other character (an
# "é" inside the signature): checked first, so a link has one spelling only.
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9_.-]+")
LINKED_KINDS = (DocumentKind.INVOICE, DocumentKind.CREDIT_NOTE, DocumentKind.DELIVERY_NOTE)
# What the buyer reads at the shop, in the document's language.
LINK_TEXTS = {
    DocumentKind.INVOICE: N_("Your invoice %(reference)s: %(link)s"),
    DocumentKind.CREDIT_NOTE: N_("Your credit note %(reference)s: %(link)s"),
    DocumentKind.DELIVERY_NOTE: N_("Your delivery note %(reference)s: %(link)s"),
}

_secret_key: str | None = None
_base_url = ""


class LinksNotConfigured(RuntimeError):
    """No secret key was configured before a link was made or read."""


def configure(secret_key: str, base_url: str) -> None:
    """Set the key that signs links and the public address they start with (create_app)."""
    global _secret_key, _base_url
    _secret_key = secret_key
    _base_url = base_url.rstrip("/")


def _signer_at(now: dt.datetime) -> type[TimestampSigner]:
    """A signer whose clock reads `now`: links made or checked at a given time."""
    stamp = int(now.timestamp())

    class FixedClock(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return FixedClock


def _serializer(now: dt.datetime | None) -> URLSafeTimedSerializer:
    if not _secret_key:
        raise LinksNotConfigured("call web.documents.links.configure() first (create_app does)")
    return URLSafeTimedSerializer(
        _secret_key,
        salt=SALT,
        signer=TimestampSigner if now is None else _signer_at(now),
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def has_link(document: Document) -> bool:
    """Tell whether the document can be reached by a link: issued, stored, of a linked kind."""
    return (
        document.kind in LINKED_KINDS
        and document.state == DocumentState.ISSUED
        and bool(document.pdf_sha256)
    )


def token_for(document: Document, *, now: dt.datetime | None = None) -> str:
    """The signed token naming the document and its bytes, stamped `now` (default: now).

    The same document and stamp always give the same token.
    """
    if not has_link(document):
        raise ValueError(f"document {document.id} has no link (not an issued {LINKED_KINDS})")
    digest = document.pdf_sha256 or ""
    return str(_serializer(now).dumps([document.id, digest[:HASH_PREFIX]]))


def document_link(document: Document, *, now: dt.datetime | None = None) -> str:
    """The absolute link to the document's PDF for its buyer, valid link_days from `now`."""
    return f"{_base_url}/d/{token_for(document, now=now)}"


def link_days(session: Session) -> int:
    """How many days a link stays valid."""
    return company_settings(session).link_days or DEFAULT_DAYS


def linked_document(session: Session, token: str, *, now: dt.datetime | None = None) -> Document:
    """The document a token names, if the token is ours, unexpired and its bytes match.

    Raises NotFound for every failure alike (forged, altered, expired, malformed, another
    salt's signature, unknown or unlinked document): the answer tells nothing. The
    signature is checked before the database is read.
    """
    if len(token) > MAX_TOKEN_LENGTH or not TOKEN_CHARACTERS.fullmatch(token):
        raise NotFound("no such document link")
    max_age = link_days(session) * 86400
    try:
        payload: Any = _serializer(now).loads(token, max_age=max_age)
    except BadData as exc:
        raise NotFound("no such document link") from exc
    if (
        not isinstance(payload, list)
        or len(payload) != 2
        or type(payload[0]) is not int  # not a bool either
        or not 0 < payload[0] < 2**31
        or not isinstance(payload[1], str)
    ):
        raise NotFound("no such document link")
    document = session.get(Document, payload[0])
    if (
        document is None
        or not has_link(document)
        or (document.pdf_sha256 or "")[:HASH_PREFIX] != payload[1]
    ):
        raise NotFound("no such document link")
    return document


@functools.lru_cache(maxsize=len(LANGUAGES))
def _translations(locale: str) -> NullTranslations:
    return Translations.load(str(TRANSLATIONS), [locale], domain="messages")


def link_text(document: Document, *, now: dt.datetime | None = None) -> str:
    """ "Votre facture FA-2026-000001 : <link>", in the document's language (French default)."""
    locale = str((document.snapshot or {}).get("locale") or LANGUAGES[0])
    if locale not in LANGUAGES:
        locale = LANGUAGES[0]
    message = _translations(locale).gettext(LINK_TEXTS[document.kind])
    return message % {"reference": document.reference, "link": document_link(document, now=now)}
