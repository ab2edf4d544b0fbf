"""The renderer fetches nothing: a loopback server that counts requests gets none.

What a buyer or a shop types reaches the PDF (names, addresses, product names), and a
template could be edited by mistake: neither may make Comptoir read a file or call a host.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from tests.documents.conftest import pdf_text, relay_order, ship
from web.documents import delivery_notes
from web.documents.render import (
    Renderer,
    ResourceRefused,
    WeasyPrintEngine,
    default_renderer,
    render_html,
)
from web.documents.storage import LocalStorage
from web.services.timeline import Actor


class Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "text/css")
        self.end_headers()
        self.wfile.write(b"body { color: red }")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def loopback() -> Iterator[str]:
    Counter.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Counter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_loopback_server_counts_what_it_is_asked(loopback: str) -> None:
    import urllib.request

    urllib.request.urlopen(f"{loopback}/probe").read()  # the counter itself works
    assert Counter.hits == ["/probe"]


@pytest.mark.parametrize(
    "html",
    [
        '<img src="{url}/logo.png">',
        '<link rel="stylesheet" href="{url}/print.css">',
        "<style>@import url({url}/imported.css);</style>",
        "<style>body {{ background: url({url}/bg.png) }}</style>",
        "<style>@font-face {{ font-family: X; src: url({url}/font.woff) }} p {{ font-family: X }}"
        "</style><p>x</p>",
        '<link rel="attachment" href="{url}/attached.txt">',
        '<object data="{url}/object.svg"></object>',
        '<svg><image href="{url}/svg.png" width="10" height="10"/></svg>',
    ],
)
def test_network_urls_are_refused_and_never_fetched(loopback: str, html: str) -> None:
    renderer = Renderer(WeasyPrintEngine())
    with pytest.raises(ResourceRefused) as refused:
        renderer.engine.pdf(html.format(url=loopback), renderer.assets)
    assert refused.value.url.startswith(loopback)
    assert Counter.hits == []


@pytest.mark.parametrize(
    "html",
    [
        '<img src="file:///etc/passwd">',
        '<link rel="stylesheet" href="file:///etc/passwd">',
        '<link rel="attachment" href="file:///etc/passwd">',
        '<img src="/etc/passwd">',  # relative to no base: still not the disk
        '<img src="../../../../etc/passwd">',
        '<img src="ftp://127.0.0.1/x.png">',
    ],
)
def test_files_are_refused(html: str) -> None:
    renderer = default_renderer()
    with pytest.raises(ResourceRefused):
        renderer.engine.pdf(html, renderer.assets)


def test_our_assets_and_data_uris_are_allowed() -> None:
    renderer = default_renderer()
    html = (
        '<link rel="stylesheet" href="asset:document.css"><img src="asset:logo.svg" alt="">'
        '<img alt="" src="data:image/svg+xml;utf8,<svg xmlns=%22http://www.w3.org/2000/svg%22/>">'
        "<p>Bonjour</p>"
    )
    assert "Bonjour" in pdf_text(renderer.engine.pdf(html, renderer.assets))


def test_a_hostile_name_is_printed_as_text_and_fetches_nothing(
    db_session: Session, storage: LocalStorage, loopback: str
) -> None:
    order = relay_order(db_session)
    hostile = f'<img src="{loopback}/x.png"><link rel=stylesheet href="file:///etc/passwd">'
    order.shipping_address = {**order.shipping_address, "company": hostile}
    order.lines[0].name = f"<style>@import url({loopback}/y.css);</style>Mug"
    shipment = ship(db_session, order, {"MUG-BLEU": 1})

    note = delivery_notes.issue_delivery_note(db_session, shipment, Actor.system(), storage=storage)

    text = pdf_text(storage.get(note.pdf_storage_key or ""))
    assert f'<img src="{loopback}/x.png">' in text
    assert "@import" in text
    assert Counter.hits == []


def test_a_long_note_numbers_its_pages() -> None:
    lines = [
        {
            "sku": f"SKU-{n}",
            "ean": "",
            "name": f"Article {n}",
            "options": "",
            "ordered": 2,
            "shipped": 1,
            "remaining": 1,
        }
        for n in range(120)
    ]
    doc = {
        "reference": "BL-2026-000009",
        "issue_date": "2026-03-02",
        "with_prices": False,
        "currency": "EUR",
        "prices_include_tax": True,
        "seller": {"name": "Boutique", "address_lines": [], "email": "", "phone": ""},
        "buyer": {"name": "A", "address_lines": [], "email": "", "phone": ""},
        "delivery": {
            "name": "B",
            "address_lines": [],
            "email": "",
            "phone": "",
            "relay_point": None,
        },
        "order": {"number": "#1", "placed_on": "2026-03-01", "marketplace_ref": ""},
        "shipment": {"number": "EXP-1", "shipped_on": None},
        "shipping_mode": {"name": "Colissimo", "carrier": "", "service": ""},
        "parcels": [],
        "lines": lines,
    }
    text = pdf_text(default_renderer().render("delivery_note.html", {"doc": doc}, "en"))
    pages = int(text.split("Page 1 / ")[1].split()[0])
    assert pages >= 3
    for page in range(1, pages + 1):
        assert f"BL-2026-000009 Page {page} / {pages}" in text
    assert "SKU-119" in text


def test_an_unknown_language_is_refused() -> None:
    with pytest.raises(Exception, match="no documents in the language"):
        render_html("delivery_note.html", {}, "de")
