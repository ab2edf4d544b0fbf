"""The Content-Security-Policy: on every response, and pages that need nothing it forbids.

Every GET route the app has is requested, as a full page and as an htmx fragment, with ids
of objects built here; each answer must carry the strict policy, and each HTML answer must
hold no inline script, no on* handler, no style attribute, no hx-on handler and no htmx
feature that needs eval. The browser side (Chromium reporting no violation while the pages
are used) is tests/browser/test_csp.py and the `page` fixture.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token
from tests.documents.conftest import complete_company
from tests.factories import make_event, make_message, make_order, make_shop
from web import queue
from web.app import CONTENT_SECURITY_POLICY, WASM_CONTENT_SECURITY_POLICY, WASM_ENDPOINTS
from web.documents import links
from web.documents.delivery_notes import issue_delivery_note
from web.documents.invoices import issue_invoice
from web.models import Job, Shipment, ShipmentLine, ShippingMode, User
from web.models.enums import InboxState, JobState, Role
from web.services import tracking_import
from web.services.shop_settings import SYNC_JOB
from web.services.timeline import Actor
from web.services.users import create_api_token

PARTIAL = {"HX-Request": "true"}
PLACEHOLDER = re.compile(r"<(?:[^:>]+:)?([^>]+)>")


def directives(policy: str) -> dict[str, str]:
    return {
        part.split()[0]: " ".join(part.split()[1:])
        for part in (piece.strip() for piece in policy.split(";"))
        if part
    }


class InlineCode(HTMLParser):
    """Collects what a strict policy would refuse, or what needs htmx's eval."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and not values.get("src"):
            self._in_inline_script = True
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            text = value or ""
            if name.startswith("on"):
                self.found.append(f"{tag} {name}=")
            elif name == "style":
                self.found.append(f"{tag} style={text!r}")
            elif name.startswith(("hx-on", "data-hx-on")):
                self.found.append(f"{tag} {name}= (an htmx handler is eval'd)")
            elif name in ("hx-trigger", "data-hx-trigger") and "[" in text:
                self.found.append(f"{tag} hx-trigger filter {text!r} (needs eval)")
            elif name in ("hx-vals", "hx-headers", "hx-vars") and text.lstrip().startswith(
                ("js:", "javascript:")
            ):
                self.found.append(f"{tag} {name}={text!r} (needs eval)")
            elif text.strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={text!r}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_inline_script = False


def inline_code(html: str) -> list[str]:
    parser = InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_policy_is_strict() -> None:
    policy = directives(CONTENT_SECURITY_POLICY)
    assert policy["default-src"] == "'self'"
    for name in ("script-src", "style-src", "font-src", "connect-src", "form-action", "base-uri"):
        assert policy[name] == "'self'", name
    assert policy["img-src"] == "'self' data:"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["object-src"] == "'none'"
    assert "unsafe" not in CONTENT_SECURITY_POLICY


def test_only_the_pack_screen_may_compile_webassembly() -> None:
    # The barcode polyfill's WebAssembly: 'wasm-unsafe-eval' allows that and no JS eval.
    policy = directives(WASM_CONTENT_SECURITY_POLICY)
    assert policy["script-src"] == "'self' 'wasm-unsafe-eval'"
    assert {**policy, "script-src": "'self'"} == directives(CONTENT_SECURITY_POLICY)
    assert WASM_ENDPOINTS == {"warehouse.pack", "warehouse.confirm", "warehouse.missing"}


def test_the_inline_code_finder_finds_what_the_policy_refuses() -> None:
    found = inline_code(
        '<script>alert(1)</script><script src="/static/js/app.js"></script>'
        '<img src=x onerror="alert(1)"><p style="color: red">'
        '<div hx-on::config-request="x()" hx-trigger="every 1s [ok()]"></div>'
        '<a href="javascript:alert(1)">x</a><span hx-vals="js:{a: 1}"></span>'
    )
    assert len(found) == 7, found


def _objects(
    client: FlaskClient,
    db_session: Session,
    session_factory: sessionmaker[Session],
    admin: User,
) -> dict[str, Any]:
    """An object behind every kind of URL parameter, and the API token of the admin."""
    # Its URL answers nothing, at once: the shop-lists route asks the shop.
    shop = make_shop(db_session, "csp-shop", base_url="http://127.0.0.1:9")
    order = make_order(db_session, shop)
    event = make_event(db_session, shop, state=InboxState.FAILED, error="BadPayload: no id")
    message = make_message(db_session, order)
    sync = Job(kind=SYNC_JOB, payload={"shop_id": shop.id}, state=JobState.DONE)
    db_session.add(sync)
    mode = ShippingMode(code="csp", name="CSP", carrier="CSP", tracking_url_template="")
    db_session.add(mode)
    token = create_api_token(db_session, admin, "csp")
    shipment = Shipment(
        order=order, number="CSP-1", lines=[ShipmentLine(order_line=order.lines[0], quantity=1)]
    )
    db_session.add(shipment)
    note = issue_delivery_note(db_session, shipment, Actor.system())  # a PDF download
    complete_company(db_session)
    invoice = issue_invoice(db_session, order, Actor.system())  # its credit-note form
    tracking = tracking_import.start_import(db_session, b"1001;6A1\n", "suivi.csv", admin.id)
    db_session.commit()
    # A real export, so its download is a file.
    posted = client.post(
        "/orders/bulk",
        data={"op": "export_csv", "ids": [str(order.id)]},
        headers={**PARTIAL, "X-CSRFToken": csrf_token(client, "/orders/")},
    )
    assert posted.status_code == 200
    # And a real documents download, so its file is one too.
    posted = client.post(
        "/documents/download",
        data={"format": "zip", "ids": [str(note.id)]},
        headers={**PARTIAL, "X-CSRFToken": csrf_token(client, "/documents/")},
    )
    assert posted.status_code == 200
    # The export, the documents download and the tracking import.
    assert queue.run_pending(session_factory) == 3
    db_session.expire_all()
    export = db_session.scalars(select(Job).where(Job.kind == "orders.export")).one()
    assert export.state == JobState.DONE
    download = db_session.scalars(select(Job).where(Job.kind == "documents.download")).one()
    assert download.state == JobState.DONE
    return {
        "values": {
            "order_id": order.id,
            "job_id": export.id,
            "key": shop.key,
            "event_id": event.id,
            "message_id": message.id,
            "mode_id": mode.id,
            "document_id": note.id,
            "token": links.token_for(note),  # the buyer's link: the same PDF
            "filename": "js/app.js",
            "path": "no-such-route",
        },
        # Where one parameter name means another object.
        "by_endpoint": {
            "shops.job_status": {"job_id": sync.id},
            "sync_issues.outbox_row": {"message_id": message.id},
            "tracking.job_status": {"job_id": tracking.id},
            "tracking.refused_csv": {"job_id": tracking.id},
            "credit_notes.new": {"document_id": invoice.id},
            "documents.download_status": {"job_id": download.id},
            "documents.download_file": {"job_id": download.id},
        },
        # Query strings a route needs to answer with what it is for (a file, not its form).
        "query": {
            "document_exports.download": "?format=csv&from=2026-01-01&to=2026-12-31",
        },
        "token": token,
    }


def test_every_get_route_sends_the_policy_and_no_inline_code(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
) -> None:
    admin = login_as(Role.ADMIN)
    built = _objects(client, db_session, session_factory, admin)
    app.config["METRICS_TOKEN"] = "metrics-token"  # /metrics exists only with a token
    rules = [rule for rule in app.url_map.iter_rules() if "GET" in (rule.methods or ())]
    assert len(rules) > 20  # the whole map, not a handful
    seen: list[tuple[str, int, str]] = []
    for rule in rules:
        values = {**built["values"], **built["by_endpoint"].get(rule.endpoint, {})}
        path = PLACEHOLDER.sub(lambda match, values=values: str(values[match[1]]), rule.rule)
        path += built["query"].get(rule.endpoint, "")
        for headers in ({}, PARTIAL):
            if rule.endpoint.startswith("api."):
                headers = {**headers, "Authorization": f"Bearer {built['token']}"}
            if rule.endpoint == "metrics.index":
                headers = {**headers, "Authorization": "Bearer metrics-token"}
            response = client.get(path, headers=headers)
            where = f"{rule.endpoint} {path} {headers}"
            expected = (
                WASM_CONTENT_SECURITY_POLICY
                if rule.endpoint in WASM_ENDPOINTS
                else CONTENT_SECURITY_POLICY
            )
            assert response.headers.get("Content-Security-Policy") == expected, where
            seen.append((rule.endpoint, response.status_code, response.mimetype))
            if response.mimetype == "text/html":
                assert response.status_code < 400 or rule.endpoint == "api.unknown", where
                found = inline_code(response.get_data(as_text=True))
                assert not found, f"{where}: {found}"
    # Every kind of answer was met: pages, fragments, JSON, a file download, a static file.
    kinds = {mimetype for _endpoint, _status, mimetype in seen}
    assert {"text/html", "application/json", "text/csv", "application/pdf"} <= kinds, kinds
    assert "application/zip" in kinds, kinds
    assert "text/javascript" in kinds, kinds
    # The ids resolved: nothing but the API's catch-all answered "not found".
    missing = {endpoint for endpoint, status, _ in seen if status == 404}
    assert missing <= {"api.unknown"}, missing


def test_pages_without_a_login_and_error_pages_send_the_policy(
    client: FlaskClient, login_as: Callable[..., User]
) -> None:
    login = client.get("/login")
    assert login.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert not inline_code(login.get_data(as_text=True))
    assert client.get("/orders/").headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    # The page a buyer gets for a document link that leads nowhere.
    unavailable = client.get("/d/not-a-link")
    assert unavailable.status_code == 404
    assert unavailable.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert not inline_code(unavailable.get_data(as_text=True))
    login_as(Role.VIEWER)
    for path, status in (("/no-such-page", 404), ("/admin/users", 403)):
        response = client.get(path)
        assert response.status_code == status
        assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
        assert not inline_code(response.get_data(as_text=True))
    hook = client.post("/hooks/shopify/nobody", data=b"{}")
    assert hook.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY


def test_htmx_is_configured_for_the_policy(client: FlaskClient) -> None:
    html = client.get("/login").get_data(as_text=True)
    match = re.search(r"<meta name=\"htmx-config\" content='([^']+)'>", html)
    assert match
    config = json.loads(match[1])
    # Its own <style> and eval'd code would be refused; scripts in swapped markup are dropped.
    assert config["includeIndicatorStyles"] is False
    assert config["allowEval"] is False
    assert config["allowScriptTags"] is False
    assert '<script src="/static/js/app.js" defer></script>' in html
