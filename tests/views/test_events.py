"""Events, causes and mapping issues: one stored row, a sentence in each reader's language."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from babel.messages.pofile import read_po
from flask import Flask
from flask.testing import FlaskClient
from flask_babel import force_locale
from markupsafe import escape
from sqlalchemy.orm import Session

from tests.conftest import csrf_token
from tests.factories import make_line, make_order, make_shop
from web.models import InboxEvent, OrderEvent, User
from web.models.enums import ActorType, InboxState
from web.views import events
from web.views.events import CAUSES, EVENTS, render_cause, render_event

ROOT = Path(__file__).resolve().parents[2]
OUTBOX_STATUS = {"message_id": 7, "kind": "status", "status": "wc-completed", "shop": "Lumière"}
OUTBOX_COMMENT = {"message_id": 8, "kind": "comment", "excerpt": "Colis parti", "shop": "Lumière"}
OUTBOX_SHIPMENT = {"message_id": 9, "kind": "shipment", "shipment": "EXP-4-1", "shop": "Lumière"}
FAILURE = "PlatformUnavailable: GET /orders/5: HTTP 503 'busy'"

# Every registered kind, and every wording a kind can take, with the parameters it is stored with.
EVENT_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("order.received", {"number": "#1042", "shop": "Lumière", "shop_status": "paid"}),
    ("order.imported", {}),
    ("order.needs_mapping", {"issues": [{"kind": "carrier", "value": "Drone", "label": ""}]}),
    ("order.validated", {}),
    ("order.validated", {"automatic": True, "why": "paid"}),
    ("order.validated", {"automatic": True, "why": "free"}),
    ("order.held", {"reason": "Adresse à vérifier"}),
    ("order.released", {"previous_reason": "Adresse à vérifier"}),
    ("order.preparation_started", {}),
    ("order.cancelled", {"reason": "Rupture de stock"}),
    ("order.cancelled", {"reason": "Cancelled in the shop"}),  # Comptoir's words, a msgid
    ("order.held", {"reason": "On hold in the shop"}),
    ("order.closed", {}),
    ("order.partially_shipped", {"from": "in_preparation", "to": "partially_shipped"}),
    ("order.shipped", {"from": "in_preparation", "to": "shipped"}),
    ("order.delivered", {"from": "shipped", "to": "delivered"}),
    ("order.updated_by_shop", {"status": "processing"}),
    ("order.updated_by_shop", {"status": ""}),
    (
        "order.edited_at_shop",
        {
            "changes": ["lines", "delivery_address", "total"],
            "total_was": "24.00",
            "total_now": "30.50",
            "currency": "EUR",
        },
    ),
    ("order.edit_needs_review", {"changes": ["billing_address", "shipping_method"]}),
    ("order.cancel_needs_review", {"reason": "the order is already shipped"}),
    ("order.deleted_at_shop", {}),
    ("inbox.stale", {"copy_updated_at": "2026-03-02T10:00:00+00:00"}),
    (
        "inbox.parked",
        {
            "inbox_event_id": 3,
            "topic": "orders/updated",
            "cause": "unreadable",
            "cause_params": {"detail": "line 3: no price"},
        },
    ),
    ("inbox.replayed", {"inbox_event_id": 3, "topic": "orders/updated"}),
    ("inbox.ignored", {"inbox_event_id": 3, "topic": "orders/updated"}),
    ("delivery_note.issued", {"reference": "BL-2026-000001", "shipment": "EXP-0001"}),
    ("invoice.issued", {"reference": "FA-2026-000001", "total": "49.00"}),
    (
        "invoice.issued",
        {
            "reference": "FA-2026-000002",
            "total": "608.94",
            "difference": "199.00",
            "shop_total": "409.94",
        },
    ),
    ("invoice.refused", {"reason": "nothing is left to invoice", "via": "invoicing"}),
    (
        "invoice.refused",
        {"reason": "the company settings are incomplete", "fields": ["siren", "vat_number"]},
    ),
    (
        "credit_note.issued",
        {"reference": "AV-2026-000001", "corrects": "FA-2026-000001", "total": "12.50"},
    ),
    (
        "credit_note.proposed",
        {"cancel": False, "invoices": "FA-2026-000001", "amount": "12.50", "currency": "EUR"},
    ),
    (
        "credit_note.proposed",
        {"cancel": True, "invoices": "FA-2026-000001", "amount": "49.00", "currency": "EUR"},
    ),
    ("payment.state_changed", {"from": "unpaid", "to": "partially_paid"}),
    ("payment.awaiting_details", {"paid": "84.82", "refunded": "0.00", "currency": "EUR"}),
    ("payment.awaiting_details", {"paid": None, "refunded": None, "currency": "EUR"}),
    ("payment.details_received", {"count": 2}),
    (
        "order.totals_mismatch",
        {"computed": "32.62", "stated": "32.61", "difference": "0.01", "currency": "EUR"},
    ),
    (
        "payment.changed",
        {"external_id": "T-9", "was": "10.00", "amount": "24.00", "currency": "EUR"}
        | {"status": "success"},
    ),
    ("payment.authorization", {"amount": "24.00", "currency": "EUR", "status": "pending"}),
    ("payment.capture", {"amount": "24.00", "currency": "EUR", "status": "success"}),
    ("payment.sale", {"amount": "24.00", "currency": "USD", "status": "success"}),
    ("payment.refund", {"amount": "5.00", "currency": "EUR", "status": "failure"}),
    ("payment.void", {"amount": "24.00", "currency": "EUR", "status": "success"}),
    ("payment.received", {"amount": "24.00", "currency": "EUR", "method_label": "PayPal"}),
    ("payment.captured", {"amount": "24.00", "currency": "EUR", "method_label": "PayPal"}),
    ("payment.recorded", {"amount": "24.00", "currency": "EUR", "source": "cheque"}),
    (
        "payment.recorded",
        {"amount": "24.00", "currency": "EUR", "source": "bank_transfer", "reference": "VIR-77"},
    ),
    ("payment.recorded", {"amount": "24.00", "currency": "EUR", "reason": "Acompte"}),
    ("payment.recorded", {"amount": "24.00", "currency": "EUR"}),
    ("payment.refunded", {"amount": "5.00", "currency": "EUR", "source": "cash"}),
    (
        "payment.refunded",
        {"amount": "5.00", "currency": "EUR", "source": "cheque", "reference": "CHQ-1"},
    ),
    ("payment.refunded", {"amount": "5.00", "currency": "EUR", "reason": "Colis abîmé"}),
    ("payment.refunded", {"amount": "5.00", "currency": "EUR"}),
    ("shipment.shipped", {"shipment": "EXP-0001", "carrier": "Colissimo"}),
    ("shipment.shipped", {"shipment": "EXP-0001", "carrier": ""}),
    (
        "shipment.shipped",
        {"shipment": "EXP-4-1", "carrier": "Colissimo", "tracking": ["6A123", "6A124"]},
    ),
    ("shipment.created", {"shipment": "EXP-4-1", "items": 3, "carrier": "Colissimo"}),
    ("shipment.created", {"shipment": "EXP-4-1", "items": 1, "carrier": ""}),
    ("shipment.packed", {"shipment": "EXP-4-1"}),
    ("shipment.delivered", {"shipment": "EXP-4-1"}),
    ("shipment.cancelled", {"shipment": "EXP-4-1", "reason": "Colis perdu", "was": "shipped"}),
    ("shipment.cancelled", {"shipment": "EXP-4-1", "reason": "", "was": "draft"}),
    ("shipment.parcel_added", {"shipment": "EXP-4-1", "tracking": "6A125"}),
    ("shipment.parcel_added", {"shipment": "EXP-4-1", "tracking": ""}),
    (
        "shipment.tracking_changed",
        {"shipment": "EXP-4-1", "tracking": "6A126", "previous": "6A125"},
    ),
    ("shipment.tracking_changed", {"shipment": "EXP-4-1", "tracking": "6A126", "previous": ""}),
    (
        "shipment.received_from_shop",
        {"shipment": "EXP-4-2", "items": 2, "tracking": ["LB1", "LB2"], "carrier": "Colissimo"},
    ),
    ("shipment.received_from_shop", {"shipment": "EXP-4-2", "items": 1, "tracking": []}),
    ("shipment.tracking_from_shop", {"shipment": "EXP-4-2", "tracking": ["LB3"]}),
    ("shipment.cancelled_in_shop", {"shipment": "EXP-4-2"}),
    ("shipment.shop_extra", {"external_id": "4711", "reason": "nothing remains to ship"}),
    ("order.fulfilment_withdrawn", {"from": "shipped", "to": "partially_shipped"}),
    ("outbox.queued", {**OUTBOX_STATUS, "milestone": "completed"}),
    ("outbox.queued", {**OUTBOX_COMMENT, "customer_visible": True}),
    ("outbox.queued", {**OUTBOX_COMMENT, "customer_visible": False}),
    ("outbox.queued", {**OUTBOX_SHIPMENT}),
    ("outbox.sent", {**OUTBOX_SHIPMENT, "written": True}),
    ("outbox.sent", {**OUTBOX_STATUS, "written": True}),
    ("outbox.sent", {**OUTBOX_COMMENT, "written": False}),
    ("outbox.ignored", {**OUTBOX_STATUS, "by_hand": True}),
    (
        "outbox.ignored",
        {**OUTBOX_STATUS, "reason": "Status pushes are switched off for this shop."},
    ),
    ("outbox.dead", {**OUTBOX_STATUS, "refused": True, "error": "AuthFailed: HTTP 401"}),
    ("outbox.dead", {**OUTBOX_COMMENT, "refused": False, "attempts": 12, "error": FAILURE}),
    (
        "outbox.failed",
        {**OUTBOX_STATUS, "attempts": 2, "next_attempt_at": "2026-03-02T10:00:00+00:00"}
        | {"error": FAILURE},
    ),
    ("outbox.retried", OUTBOX_STATUS),
]
# Words typed by a person: shown as typed, in every language.
VERBATIM_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("comment.customer", {"excerpt": "Votre colis part demain.", "notify": True}),
    ("comment.internal", {"excerpt": "Appeler avant 18 h.", "notify": False}),
    ("comment.edited", {"excerpt": "Appeler avant 17 h.", "previous": "Appeler avant 18 h."}),
    ("comment.deleted", {"excerpt": "Appeler", "text": "Appeler"}),
]
CAUSE_SAMPLES: list[tuple[str, dict[str, Any]]] = [
    ("shop_unavailable", {"status": 503, "detail": FAILURE}),
    ("shop_unavailable", {"status": None, "detail": "PlatformUnavailable: timed out"}),
    ("rate_limited", {"retry_after": 2.0, "detail": "RateLimited: HTTP 429"}),
    ("rate_limited", {"retry_after": None, "detail": "RateLimited: HTTP 429"}),
    ("auth_failed", {"status": 401, "detail": "AuthFailed: HTTP 401"}),
    ("not_found_at_shop", {"detail": "NotFoundAtShop: HTTP 404"}),
    ("unreadable", {"detail": "no line items"}),
    ("invalid_signature", {"detail": "InvalidSignature: bad HMAC"}),
    (
        "topic_mismatch",
        {"topic": "order.deleted", "detail": "order.deleted carries a deleted order's id"},
    ),
    ("refused", {"detail": "PermanentError: gone"}),
    ("failed", {"detail": "something odd"}),
    ("connector_error", {"status": 418, "detail": "ConnectorError: HTTP 418"}),
    ("gave_up", {"attempts": 8, "cause": "shop_unavailable", "status": 503, "detail": FAILURE}),
    ("needs_mapping", {"issues": [{"kind": "payment_method", "value": "crypto", "label": ""}]}),
    ("totals_mismatch", {"computed": "32.62", "stated": "32.61", "currency": "EUR"}),
]


def in_both(app: Flask, render: Callable[[], Any]) -> tuple[Any, Any]:
    with app.test_request_context():
        with force_locale("fr"):
            french = render()
        with force_locale("en"):
            english = render()
    return french, english


def test_the_samples_cover_every_registered_kind() -> None:
    assert {kind for kind, _ in EVENT_SAMPLES + VERBATIM_SAMPLES} == set(EVENTS)
    assert {kind for kind, _ in CAUSE_SAMPLES} == set(CAUSES)


@pytest.mark.parametrize(("kind", "params"), EVENT_SAMPLES, ids=lambda v: str(v)[:40])
def test_every_event_reads_in_french_and_in_english(
    app: Flask, kind: str, params: dict[str, Any]
) -> None:
    french, english = in_both(app, lambda: render_event(kind, params))
    assert french.text and english.text
    assert french.text != english.text
    assert english.text not in french.text and french.text not in english.text
    assert kind not in french.text and kind not in english.text  # a sentence, not a fallback
    assert "—" not in french.text.replace(" — ", "")  # every placeholder had its value
    assert french.detail == english.detail  # technical text is the same for everyone


@pytest.mark.parametrize(("kind", "params"), VERBATIM_SAMPLES, ids=lambda v: str(v)[:40])
def test_typed_words_are_shown_as_typed(app: Flask, kind: str, params: dict[str, Any]) -> None:
    french, english = in_both(app, lambda: render_event(kind, params).text)
    assert french == english == params["excerpt"]


@pytest.mark.parametrize(("kind", "params"), CAUSE_SAMPLES, ids=lambda v: str(v)[:40])
def test_every_cause_reads_in_french_and_in_english(
    app: Flask, kind: str, params: dict[str, Any]
) -> None:
    french, english = in_both(app, lambda: render_cause(kind, params))
    assert french.text != english.text
    assert english.text not in french.text and french.text not in english.text
    assert french.detail == english.detail == str(params.get("detail") or "")


def test_values_are_formatted_for_the_reader(app: Flask) -> None:
    params = {"amount": "1234.50", "currency": "EUR", "status": "success"}
    french, english = in_both(app, lambda: render_event("payment.capture", params).text)
    assert french == "Encaissement de 1\u202f234,50\xa0€ (Réussie)."
    assert english == "Capture of €1,234.50 (Succeeded)."
    changed = dict(EVENT_SAMPLES)["order.edited_at_shop"]
    french, english = in_both(app, lambda: render_event("order.edited_at_shop", changed).text)
    assert french == (
        "Modifiée dans la boutique : lignes, adresse de livraison et total 24,00\xa0€ → 30,50\xa0€."
    )
    assert english == "Edited in the shop: lines, delivery address, and total €24.00 → €30.50."
    slow = {"retry_after": 2.5, "detail": "RateLimited"}
    french, english = in_both(app, lambda: render_cause("rate_limited", slow).text)
    assert french.endswith("après 2,5 s.") and english.endswith("after 2.5 s.")


def test_unknown_kinds_and_old_sentences_render_readably(app: Flask) -> None:
    french, english = in_both(
        app, lambda: render_event("order.teleported", {"planet": "Mars", "via": "poll"}).text
    )
    assert french == english == "order.teleported (planet: Mars)"
    kept = {"text": "Order put on hold: awaiting a call back"}
    french, _ = in_both(app, lambda: render_event("order.held", kept).text)
    assert french == "Order put on hold: awaiting a call back"
    french, _ = in_both(app, lambda: render_cause("totally_new", {"detail": "x"}).text)
    assert french == "totally_new (detail: x)"


def _msgids(path: Path) -> set[str]:
    source = path.read_text(encoding="utf-8")
    found = set()
    for call in re.finditer(r"N_\(\s*((?:\"[^\"]*\"\s*)+)\)", source):
        found.add("".join(re.findall(r"\"([^\"]*)\"", call.group(1))))
    return found


def test_every_message_has_its_french_translation() -> None:
    with (ROOT / "web/translations/fr/LC_MESSAGES/messages.po").open("rb") as po:
        catalogue = {message.id: message.string for message in read_po(po) if message.id}
    msgids = _msgids(ROOT / "web/views/events.py") | _msgids(
        ROOT / "web/services/mapping_issues.py"
    )
    assert len(msgids) > 60
    untranslated = sorted(m for m in msgids if not catalogue.get(m))
    assert untranslated == []
    assert all(catalogue.get(m) for m in events.CHANGES.values())


# --- Through the pages --------------------------------------------------------------------


@pytest.fixture()
def eventful(db_session: Session) -> Any:
    """An order whose timeline holds one stored row of every kind and wording."""
    shop = make_shop(db_session, "lumiere", name="Lumière")
    order = make_order(db_session, shop, [make_line("MUG", 2, "12.00")])
    order.needs_mapping = True
    order.mapping_issues = [
        {"kind": "status", "value": "wc-awaiting", "label": "En attente d'expédition"},
        {"kind": "carrier", "value": "Drone", "label": ""},
    ]
    for kind, params in EVENT_SAMPLES + VERBATIM_SAMPLES:
        db_session.add(
            OrderEvent(order=order, actor_type=ActorType.SYSTEM, kind=kind, details=params)
        )
    db_session.commit()
    return order


def _switch(client: FlaskClient, lang: str) -> None:
    token = csrf_token(client, "/")
    client.post("/language", data={"lang": lang, "next": "/", "csrf_token": token})


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_the_order_page_speaks_one_language(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    eventful: Any,
    lang: str,
) -> None:
    login_as("viewer")
    _switch(client, lang)
    html = client.get(f"/orders/{eventful.id}").get_data(as_text=True)
    timeline = html[html.index('id="timeline"') :]
    other = "en" if lang == "fr" else "fr"
    for kind, params in EVENT_SAMPLES:
        with app.test_request_context(), force_locale(lang):
            mine = render_event(kind, params)
        with app.test_request_context(), force_locale(other):
            theirs = render_event(kind, params)
        assert str(escape(mine.text)) in timeline, (kind, mine.text)
        assert str(escape(theirs.text)) not in html, (kind, theirs.text)
        if mine.detail:
            assert str(escape(mine.detail)) in timeline
    for _kind, params in VERBATIM_SAMPLES:
        assert str(escape(params["excerpt"])) in timeline
    banner = {
        "fr": "statut de boutique inconnu « En attente d&#39;expédition » (wc-awaiting); "
        "mode de livraison inconnu « Drone »",
        "en": "unknown shop status “En attente d&#39;expédition” (wc-awaiting); "
        "unknown shipping method “Drone”",
    }
    assert banner[lang] in html


@pytest.mark.parametrize(
    ("lang", "cause", "not_shown"),
    [
        ("fr", "La boutique a répondu par une erreur (HTTP 503).", "The shop answered"),
        ("en", "The shop answered with an error (HTTP 503).", "La boutique a répondu"),
    ],
)
def test_the_sync_log_shows_the_cause_in_the_readers_language(
    client: FlaskClient,
    db_session: Session,
    login_as: Callable[..., User],
    lang: str,
    cause: str,
    not_shown: str,
) -> None:
    shop = make_shop(db_session, "lumiere", name="Lumière")
    event = InboxEvent(
        shop=shop,
        topic="orders/create",
        dedupe_key="wh-503",
        raw_body=b"{}",
        state=InboxState.FAILED,
        attempts=2,
        error=FAILURE,
        cause_kind="shop_unavailable",
        cause_params={"status": 503, "detail": FAILURE},
    )
    db_session.add(event)
    db_session.commit()
    login_as("manager")
    _switch(client, lang)
    for path in ("/sync/", f"/sync/events/{event.id}", "/sync/issues/"):
        html = client.get(path).get_data(as_text=True)
        assert cause in html, path
        assert not_shown not in html, path
        assert str(escape(FAILURE)) in html, path  # the technical detail, as it was
