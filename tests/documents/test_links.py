"""The buyer's signed links: the stored PDF without a login, or one 404 that tells nothing.

Every request goes through the Flask test client, never logged in, as the buyer (or whoever
got hold of the link, or guesses at it) would send it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pytest
from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, relay_order, ship
from web.documents import invoices, links
from web.documents.delivery_notes import issue_delivery_note
from web.documents.storage import sha256
from web.models import Document, utcnow
from web.services.timeline import Actor
from web.views import known_device

ACTOR = Actor.system("test")
SECRET = "test-secret-key"  # the test app's SECRET_KEY (tests/conftest.py)


@pytest.fixture()
def invoice(app: Flask, db_session: Session) -> Document:
    """An issued invoice, committed, its PDF in the app's storage."""
    complete_company(db_session)
    document = invoices.issue_invoice(db_session, relay_order(db_session), ACTOR)
    db_session.commit()
    return document


def path_of(link: str) -> str:
    assert link.startswith("http://comptoir.test/d/"), link
    return link.removeprefix("http://comptoir.test")


def unknown_body(client: FlaskClient) -> bytes:
    response = client.get("/d/no-such-link")
    assert response.status_code == 404
    return response.get_data()


def days_ago(days: float) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)


def with_char_changed(token: str, index: int) -> str:
    # A character in the middle of a part: the last base64 character may only carry padding
    # bits, and changing those would give the same bytes.
    changed = "B" if token[index] != "B" else "C"
    return token[:index] + changed + token[index + 1 :]


def test_a_link_serves_the_stored_pdf_without_a_login(
    client: FlaskClient, invoice: Document
) -> None:
    response = client.get(path_of(links.document_link(invoice)))
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert sha256(response.get_data()) == invoice.pdf_sha256
    assert response.headers["Content-Disposition"] == f'inline; filename="{invoice.reference}.pdf"'
    assert response.headers["Cache-Control"] == "private, no-store"
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "Set-Cookie" not in response.headers  # nobody was logged in, nothing to remember


def test_a_delivery_note_has_a_link_too(
    app: Flask, client: FlaskClient, db_session: Session
) -> None:
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 3, "THE-VERT": 2}, ("6A123",))
    note = issue_delivery_note(db_session, shipment, ACTOR)
    db_session.commit()
    response = client.get(path_of(links.document_link(note)))
    assert response.status_code == 200
    assert sha256(response.get_data()) == note.pdf_sha256


def test_the_same_stamp_gives_the_same_link(invoice: Document) -> None:
    # What lets the outbox send the same words on every attempt.
    when = days_ago(1)
    assert links.document_link(invoice, now=when) == links.document_link(invoice, now=when)
    assert links.document_link(invoice, now=when) != links.document_link(invoice, now=days_ago(2))


def test_a_link_lasts_link_days_then_is_a_404_like_any_other(
    client: FlaskClient, db_session: Session, invoice: Document
) -> None:
    assert client.get(path_of(links.document_link(invoice, now=days_ago(89.9)))).status_code == 200
    expired = client.get(path_of(links.document_link(invoice, now=days_ago(90.01))))
    assert expired.status_code == 404
    assert expired.get_data() == unknown_body(client)
    # The setting is read when the link is opened: shorter days end older links.
    recent = path_of(links.document_link(invoice, now=days_ago(31)))
    assert client.get(recent).status_code == 200
    complete_company(db_session, link_days=30)
    db_session.commit()
    assert client.get(recent).status_code == 404
    # A stamp in the future is no way to make a link last longer.
    future = path_of(links.document_link(invoice, now=utcnow() + dt.timedelta(days=30)))
    assert client.get(future).status_code == 404


def test_tampered_tokens_are_404s_with_the_same_body_as_an_unknown_one(
    app: Flask, client: FlaskClient, db_session: Session, invoice: Document
) -> None:
    token = links.token_for(invoice)
    assert client.get(f"/d/{token}").status_code == 200
    expected = unknown_body(client)
    payload, stamp, signature = token.split(".")
    tampered = [
        with_char_changed(token, len(payload) // 2),
        with_char_changed(token, len(payload) + 1 + len(stamp) // 2),
        with_char_changed(token, len(token) - len(signature) // 2),
        token[:-1],
        token + "A",
        f"{payload}.{stamp}",
        token.replace(".", "", 1),
    ]
    # Another document of ours, named with this one's hash under a valid signature: the
    # hash no longer matches, so its bytes are never served.
    other = invoices.issue_invoice(db_session, relay_order(db_session), ACTOR)
    db_session.commit()
    ours = URLSafeTimedSerializer(
        SECRET, salt=links.SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    tampered.append(str(ours.dumps([other.id, (invoice.pdf_sha256 or "")[:16]])))
    # Validly signed, but naming no document, or not as the token names them.
    tampered.append(str(ours.dumps([other.id + 1000, (other.pdf_sha256 or "")[:16]])))
    tampered.append(str(ours.dumps({"id": invoice.id})))
    tampered.append(str(ours.dumps([str(invoice.id), (invoice.pdf_sha256 or "")[:16]])))
    # The right document under a valid signature of another salt (what Flask signs its
    # session cookie with, or anything else signed with the same key).
    named = [invoice.id, (invoice.pdf_sha256 or "")[:16]]
    for salt in ("itsdangerous", known_device.SALT):
        for digest in (hashlib.sha1, hashlib.sha256):
            foreign = URLSafeTimedSerializer(
                SECRET, salt=salt, signer_kwargs={"digest_method": digest}
            )
            tampered.append(str(foreign.dumps(named)))
    # Exactly what the app signs its session cookie with.
    interface = app.session_interface
    assert isinstance(interface, SecureCookieSessionInterface)
    session_cookie = interface.get_signing_serializer(app)
    assert session_cookie is not None
    tampered.append(str(session_cookie.dumps(named)))
    # A link signed by another instance's key.
    stranger = URLSafeTimedSerializer(
        "another-secret", salt=links.SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    tampered.append(str(stranger.dumps([invoice.id, (invoice.pdf_sha256 or "")[:16]])))
    for bad in tampered:
        response = client.get(f"/d/{bad}")
        assert response.status_code == 404, bad
        assert response.get_data() == expected, bad
        assert response.headers["Cache-Control"] == "private, no-store"
        assert response.headers["X-Robots-Tag"] == "noindex"
    assert client.get(f"/d/{links.token_for(other)}").status_code == 200


@pytest.mark.parametrize("noise", ["é", "%E2%80%8B"])  # a zero-width space a copy added
def test_a_link_with_noise_in_its_signature_is_a_404(
    client: FlaskClient, invoice: Document, noise: str
) -> None:
    """Base64 decoding skips what is not of its alphabet: a link has one spelling only."""
    token = links.token_for(invoice)
    noisy = f"{token[:-2]}{noise}{token[-2:]}"
    response = client.get(f"/d/{noisy}")
    assert response.status_code == 404, noisy
    assert response.get_data() == unknown_body(client)


@pytest.mark.parametrize(
    "path",
    [
        "/d/x",
        "/d/" + "A" * 5000,
        "/d/..%2F..%2Fetc%2Fpasswd",
        "/d/%C3%A9t%C3%A9",
        "/d/a.b.c",
        "/d/abc%0Adef",  # a link a mail client wrapped: the link's page, not the site's 404
        "/d/%0D%0A",
    ],
)
def test_malformed_tokens_are_the_same_404(
    client: FlaskClient, invoice: Document, path: str
) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_data() == unknown_body(client)


def test_the_404_says_nothing_about_the_document(client: FlaskClient, invoice: Document) -> None:
    expired = client.get(path_of(links.document_link(invoice, now=days_ago(365))))
    body = expired.get_data(as_text=True)
    assert expired.status_code == 404
    for secret in (invoice.reference or "", "Marie", "Curie", "Boutique", "pdf"):
        assert secret not in body
    assert expired.get_data() == unknown_body(client)
    assert "Document indisponible" in body  # the buyer's page, in French by default


def test_a_document_whose_stored_file_changed_is_not_served(
    app: Flask, client: FlaskClient, invoice: Document
) -> None:
    path = path_of(links.document_link(invoice))
    stored = Path(app.instance_path) / "documents" / (invoice.pdf_storage_key or "")
    stored.write_bytes(stored.read_bytes() + b"%% appended\n")
    response = client.get(path)
    assert response.status_code == 404
    assert response.get_data() == unknown_body(client)


def test_the_words_for_the_shop_are_in_the_documents_language(
    app: Flask, client: FlaskClient, db_session: Session, invoice: Document
) -> None:
    when = days_ago(1)
    link = links.document_link(invoice, now=when)
    assert links.link_text(invoice, now=when) == f"Votre facture {invoice.reference} : {link}"
    english = invoices.issue_invoice(db_session, relay_order(db_session), ACTOR, locale="en")
    db_session.commit()
    text = links.link_text(english, now=when)
    assert text == f"Your invoice {english.reference}: {links.document_link(english, now=when)}"
    assert client.get(path_of(text.rpartition(" ")[2])).status_code == 200
