"""wkhtmltopdf, chosen in the company settings, prints delivery notes and fetches nothing.

Run where the binary is installed (`make system-deps` installs Debian's wkhtmltopdf);
skipped elsewhere with the reason.
"""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Iterator

import pypdf
import pytest
from PIL import Image
from sqlalchemy.orm import Session

from tests.documents.conftest import complete_company, pdf_text, relay_order, ship
from web.documents import delivery_notes
from web.documents.render import (
    Renderer,
    RenderError,
    ResourceRefused,
    WkhtmltopdfEngine,
    configured_renderer,
    wkhtmltopdf_binary,
)
from web.documents.storage import LocalStorage
from web.services.timeline import Actor

pytestmark = pytest.mark.skipif(
    wkhtmltopdf_binary() is None,
    reason="wkhtmltopdf is not installed (make system-deps installs Debian's package)",
)

ACTOR = Actor.system("test")


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 40), (31, 78, 121)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


class Counter(http.server.BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        Counter.hits.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        self.wfile.write(PNG)

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


def _reader(data: bytes) -> pypdf.PdfReader:
    return pypdf.PdfReader(io.BytesIO(data))


def test_a_delivery_note_printed_with_wkhtmltopdf_has_its_text_and_the_logo(
    db_session: Session, storage: LocalStorage
) -> None:
    company = complete_company(db_session, pdf_engine="wkhtmltopdf")
    company.logo, company.logo_mime_type = PNG, "image/png"
    order = relay_order(db_session)
    shipment = ship(db_session, order, {"MUG-BLEU": 2, "THE-VERT": 2}, ("6A0001",))

    note = delivery_notes.issue_delivery_note(db_session, shipment, ACTOR, storage=storage)

    data = storage.get(note.pdf_storage_key or "")
    reader = _reader(data)
    assert str(reader.metadata.get("/Creator", "")).startswith("wkhtmltopdf")
    text = " ".join(pdf_text(data).split())  # wkhtmltopdf's words are split by tabs
    for expected in (
        "Bon de livraison",
        note.reference,
        "La Boutique du Thé",  # the trade name
        "12 rue des Lilas",
        "Marie Curie",
        "2 place de la Gare",
        "Point relais FR-004242",
        "Mug bleu",
        "Thé vert Sencha",
        "6A0001",
    ):
        assert expected in text, expected
    images = [image for page in reader.pages for image in page.images]
    assert images, "the company's logo is printed"


def test_weasyprint_prints_when_the_settings_keep_it(
    db_session: Session, storage: LocalStorage
) -> None:
    complete_company(db_session)  # pdf_engine left at weasyprint
    order = relay_order(db_session)
    note = delivery_notes.issue_delivery_note(
        db_session, ship(db_session, order, {"MUG-BLEU": 1}), ACTOR, storage=storage
    )
    reader = _reader(storage.get(note.pdf_storage_key or ""))
    assert str(reader.metadata.get("/Producer", "")).startswith("WeasyPrint")


@pytest.mark.parametrize(
    "html",
    [
        '<img src="{url}/logo.png">',
        '<link rel="stylesheet" href="{url}/print.css">',
        "<style>@import url({url}/imported.css);</style>",
        '<style>@import "{url}/quoted.css";</style>',
        '<p style="background: url({url}/bg.png)">x</p>',
        '<img srcset="data:image/png;base64,AA== 1x, {url}/2x.png 2x">',
        '<object data="{url}/object.svg"></object>',
        '<iframe src="{url}/frame.html"></iframe>',
        '<meta http-equiv="refresh" content="0; url={url}/elsewhere">',
        '<svg><image href="{url}/svg.png" width="10" height="10"/></svg>',
    ],
)
def test_a_page_asking_for_the_network_is_refused_and_nothing_is_fetched(
    loopback: str, html: str
) -> None:
    engine = WkhtmltopdfEngine()
    with pytest.raises(ResourceRefused) as refused:
        engine.pdf(f"<p>Bon de livraison</p>{html.format(url=loopback)}", {})
    assert refused.value.url.startswith(loopback)
    assert Counter.hits == []


@pytest.mark.parametrize(
    "url", ["file:///etc/hostname", "/etc/hostname", "logo.png", "asset:no-such-asset.png"]
)
def test_a_page_asking_for_a_file_is_refused(url: str) -> None:
    with pytest.raises(ResourceRefused) as refused:
        WkhtmltopdfEngine().pdf(f'<p>x</p><img src="{url}">', {})
    assert refused.value.url == url


def test_a_fetch_the_check_cannot_see_fails_the_print_and_reaches_no_one(loopback: str) -> None:
    # An iframe's srcdoc is a page of its own, which the check does not read: the binary's
    # own guards (a proxy on a closed loopback port, load errors abort) stop it.
    page = f'<p>x</p><iframe srcdoc="&lt;img src=&quot;{loopback}/inner.png&quot;&gt;"></iframe>'
    with pytest.raises(RenderError) as failed:
        WkhtmltopdfEngine().pdf(page, {})
    assert not isinstance(failed.value, ResourceRefused)
    assert Counter.hits == []


def test_the_page_cannot_pass_options_to_wkhtmltopdf() -> None:
    # pdfkit reads options from <meta name="pdfkit-…"> tags: the page's tags are ignored.
    page = (
        '<meta name="pdfkit-orientation" content="Landscape">'
        '<meta name="pdfkit-run-script" content="document.body.innerHTML = 1">'
        '<meta name="pdfkit-enable-local-file-access" content=""><p>x</p>'
    )
    box = _reader(WkhtmltopdfEngine().pdf(page, {})).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (595, 842)  # A4, upright


def test_our_assets_are_inlined(db_session: Session) -> None:
    complete_company(db_session, pdf_engine="wkhtmltopdf")
    renderer = configured_renderer(db_session)
    assert isinstance(renderer.engine, WkhtmltopdfEngine)
    page = '<link rel="stylesheet" href="asset:document.css"><img src="asset:logo.svg"><p>ok</p>'
    data = Renderer(renderer.engine, renderer.assets).engine.pdf(page, renderer.assets)
    assert "ok" in pdf_text(data)
