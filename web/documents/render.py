"""HTML templates to PDF: Jinja renders templates/pdf/ in a given language, an engine prints it.

The templates are ours and their values are escaped, but they carry what buyers and shops
typed (names, addresses, product names), so the engine is treated as a risky component: it
fetches nothing. Its URL fetcher answers `data:` URIs and the in-memory assets we give it
(the logo, fonts), and refuses every other URL — http(s), file, ftp — which stops the
rendering with ResourceRefused rather than printing a document with a hole in it.

Translations and formats come from Babel directly (no Flask here): the document's language
is the one asked for, not the reader's.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import html.parser
import logging
import mimetypes
import os
import re
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from web.config import PROJECT_ROOT

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

TEMPLATES = PROJECT_ROOT / "templates" / "pdf"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
ASSETS = TEMPLATES / "assets"
ASSET_SCHEME = "asset:"
LANGUAGES = ("fr", "en")
COMPANY_LOGO = ASSET_SCHEME + "company-logo"


class RenderError(Exception):
    """The document could not be printed."""


class ResourceRefused(RenderError):
    """The template asked for a URL the renderer must not fetch (network, file)."""

    def __init__(self, url: str) -> None:
        super().__init__(f"refused to fetch {url[:200]!r}: documents embed their resources")
        self.url = url


@dataclass(frozen=True)
class Asset:
    """A file the templates may use, held in memory: `asset:logo.svg`."""

    data: bytes
    mime_type: str


class PdfEngine(Protocol):
    """Prints HTML to PDF bytes, fetching nothing but the assets it is given."""

    name: str

    def pdf(self, html: str, assets: Mapping[str, Asset]) -> bytes: ...


def load_assets(folder: Path = ASSETS) -> dict[str, Asset]:
    """Our own assets (templates/pdf/assets), keyed by their `asset:` URL."""
    assets = {}
    for path in sorted(folder.iterdir()) if folder.is_dir() else []:
        if path.is_file():
            mime_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            assets[ASSET_SCHEME + path.name] = Asset(path.read_bytes(), mime_type)
    return assets


# --- Jinja, per language -------------------------------------------------------------------


def _money(value: Any, currency: str, locale: str) -> str:
    if value is None or value == "":
        return ""
    return format_currency(Decimal(str(value)), currency, locale=locale)


def _quantity(value: Any, locale: str) -> str:
    return format_decimal(Decimal(str(value)).normalize(), "#,##0.###", locale=locale)


def _day(value: Any, locale: str) -> str:
    if not value:
        return ""
    day = dt.date.fromisoformat(str(value)[:10]) if isinstance(value, str) else value
    return format_date(day, "long", locale=locale)


@functools.lru_cache(maxsize=len(LANGUAGES))
def environment(locale: str) -> jinja2.Environment:
    """The Jinja environment of templates/pdf in one language (gettext, formats)."""
    if locale not in LANGUAGES:
        raise RenderError(f"no documents in the language {locale!r}")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        extensions=["jinja2.ext.i18n"],
    )
    translations = Translations.load(str(TRANSLATIONS), [locale], domain="messages")
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    env.filters["money"] = lambda value, currency: _money(value, currency, locale)
    env.filters["quantity"] = lambda value: _quantity(value, locale)
    env.filters["day"] = lambda value: _day(value, locale)
    env.globals["locale"] = locale
    return env


def render_html(template: str, context: Mapping[str, Any], locale: str) -> str:
    """The template (a name under templates/pdf) rendered in the language."""
    return environment(locale).get_template(template).render(**context)


# --- Engines -------------------------------------------------------------------------------


@dataclass
class Renderer:
    """Templates to PDF through one engine, with our assets."""

    engine: PdfEngine
    assets: Mapping[str, Asset] = field(default_factory=load_assets)

    def render(self, template: str, context: Mapping[str, Any], locale: str) -> bytes:
        """Render the template in the language and print it to PDF bytes."""
        return self.engine.pdf(render_html(template, context, locale), self.assets)


class WeasyPrintEngine:
    """WeasyPrint, with a URL fetcher that allows only data: URIs and our assets."""

    name = "weasyprint"

    def __init__(self, pdf_variant: str | None = None) -> None:
        # Invoices will ask for "pdf/a-3b" (Factur-X); delivery notes need no variant.
        self.pdf_variant = pdf_variant

    def pdf(self, html: str, assets: Mapping[str, Asset]) -> bytes:
        import weasyprint
        from weasyprint.urls import FatalURLFetchingError

        fetcher = _fetcher_class()(assets)
        options: dict[str, Any] = {}
        if self.pdf_variant:
            options["pdf_variant"] = self.pdf_variant
        try:
            # base_url: relative URLs resolve to the asset scheme, never to the disk.
            document = weasyprint.HTML(string=html, base_url=ASSET_SCHEME, url_fetcher=fetcher)
            data = document.write_pdf(**options)
        except FatalURLFetchingError as exc:
            raise ResourceRefused(fetcher.refused[0] if fetcher.refused else "?") from exc
        if fetcher.refused:
            raise ResourceRefused(fetcher.refused[0])
        assert isinstance(data, bytes)
        return data


@functools.cache
def _fetcher_class() -> type:
    # Built on first use: importing WeasyPrint costs most of a second.
    from weasyprint.urls import URLFetcher, URLFetcherResponse

    class EmbeddedOnlyFetcher(URLFetcher):
        """Answers data: URIs and the given assets; refuses and remembers any other URL."""

        def __init__(self, assets: Mapping[str, Asset]) -> None:
            super().__init__(allowed_protocols=("data",), fail_on_errors=True)
            self.assets = assets
            self.refused: list[str] = []

        def fetch(self, url: str, headers: Any = None) -> Any:
            asset = self.assets.get(url)
            if asset is not None:
                return URLFetcherResponse(url, asset.data, {"Content-Type": asset.mime_type})
            if url.lower().startswith("data:"):
                return super().fetch(url, headers)
            self.refused.append(url)
            raise ResourceRefused(url)

    return EmbeddedOnlyFetcher


@functools.cache
def default_renderer() -> Renderer:
    """The renderer the services use: WeasyPrint with templates/pdf/assets."""
    return Renderer(WeasyPrintEngine())


# --- wkhtmltopdf ---------------------------------------------------------------------------
#
# wkhtmltopdf (Qt WebKit) has no URL fetcher to hand over, so the page it gets fetches
# nothing by construction: our assets are inlined as data: URIs first, any other URL a
# loading attribute or a stylesheet names is refused before printing (ResourceRefused, as
# WeasyPrint does), and the binary runs with JavaScript and local files off and every
# request sent to a proxy on a loopback port that nothing listens on — host names included
# (--proxy-hostname-lookup: without it WebKit asks the DNS before the proxy). A fetch that
# slipped past the check fails the print (load errors abort), never leaves a hole in it.

# Attributes that make a browser load something, per tag ("*": any tag).
_LOADING_ATTRIBUTES = {
    "*": ("src", "srcset", "background", "poster", "data", "xlink:href"),
    "link": ("href",),
    "image": ("href",),
    "use": ("href",),
    "feimage": ("href",),
}
_ASSET_URL = re.compile(
    r"""(?P<open>(?:src|href)\s*=\s*["']|url\(\s*["']?)(?P<url>asset:[\w.-]+)"""
)
_CSS_URLS = re.compile(r"""url\(\s*["']?\s*([^"')\s]*)|@import\s+["']([^"']*)""", re.IGNORECASE)
_DESCRIPTOR = re.compile(r"\d+(?:\.\d+)?[wx]")
_REFRESH_URL = re.compile(r"url\s*=\s*['\"]?([^'\";\s]+)", re.IGNORECASE)


def wkhtmltopdf_binary() -> str | None:
    """The wkhtmltopdf program on this machine, if it is installed."""
    return shutil.which("wkhtmltopdf")


def _data_uri(asset: Asset, assets: Mapping[str, Asset]) -> str:
    data = asset.data
    if asset.mime_type == "text/css":
        data = inline_assets(data.decode("utf-8"), assets).encode("utf-8")
    return f"data:{asset.mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def inline_assets(page: str, assets: Mapping[str, Asset]) -> str:
    """The page with each `asset:` URL it loads replaced by the asset as a data: URI.

    An asset:name we do not have is left as it is, for the check to refuse.
    """

    def replace(match: re.Match[str]) -> str:
        asset = assets.get(match["url"])
        if asset is None:
            return match[0]
        return match["open"] + _data_uri(asset, assets)

    return _ASSET_URL.sub(replace, page)


def _fetched(url: str) -> bool:
    url = url.strip()
    return bool(url) and not url.startswith("#") and not url.lower().startswith("data:")


class _LoadedUrls(html.parser.HTMLParser):
    """Collects the URLs a browser would load from the page (links to follow are not loaded)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        loading = _LOADING_ATTRIBUTES["*"] + _LOADING_ATTRIBUTES.get(tag, ())
        values = {name: value or "" for name, value in attrs}
        for name, value in values.items():
            if name == "srcset":
                # "url 1x, url 2x": every word but the descriptors (a data: URI has commas).
                words = (word.strip(",") for word in value.split())
                self.urls += [word for word in words if word and not _DESCRIPTOR.fullmatch(word)]
            elif name in loading:
                self.urls.append(value)
            if name == "style":
                self._css(value)
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            self.urls += _REFRESH_URL.findall(values.get("content", ""))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self._css(data)

    def _css(self, text: str) -> None:
        self.urls += [url or imported for url, imported in _CSS_URLS.findall(text)]


def refuse_external(page: str) -> None:
    """Raise ResourceRefused for the first URL the page would load that is not embedded."""
    parser = _LoadedUrls()
    parser.feed(page)
    parser.close()
    for url in parser.urls:
        if _fetched(url):
            raise ResourceRefused(url)


class WkhtmltopdfEngine:
    """wkhtmltopdf through pdfkit, on a page that embeds everything and may fetch nothing.

    For delivery notes and other prints without Factur-X: it makes no PDF/A, so invoices and
    credit notes always go through WeasyPrint. WeasyPrint's page rules (running footers,
    page numbers) are not understood here.
    """

    name = "wkhtmltopdf"

    def __init__(self, binary: str | None = None) -> None:
        found = binary or wkhtmltopdf_binary()
        if not found:
            raise RenderError("wkhtmltopdf is not installed")
        self.binary = found

    def pdf(self, html: str, assets: Mapping[str, Asset]) -> bytes:
        import pdfkit

        page = inline_assets(html, assets)
        refuse_external(page)
        environ = {key: value for key, value in os.environ.items() if "proxy" not in key.lower()}
        with _closed_port() as port, tempfile.TemporaryDirectory() as runtime:
            environ["XDG_RUNTIME_DIR"] = runtime  # Qt wants one; a private empty folder
            options = {
                "encoding": "UTF-8",
                "page-size": "A4",
                "margin-top": "18mm",
                "margin-bottom": "22mm",
                "margin-left": "16mm",
                "margin-right": "16mm",
                "disable-javascript": "",
                "disable-local-file-access": "",
                "proxy": f"http://127.0.0.1:{port}",
                "proxy-hostname-lookup": "",
                "load-error-handling": "abort",
                "load-media-error-handling": "abort",
            }
            configuration = pdfkit.configuration(
                wkhtmltopdf=self.binary,
                # pdfkit takes options from <meta name="PREFIXoption"> tags of the page: a
                # prefix nobody can guess keeps the page from choosing any.
                meta_tag_prefix=f"x-{secrets.token_hex(16)}-",
                environ=environ,
            )
            try:
                data = pdfkit.from_string(page, False, options=options, configuration=configuration)
            except OSError as exc:
                raise RenderError(f"wkhtmltopdf failed: {str(exc)[-500:]}") from exc
        if not isinstance(data, bytes) or not data.startswith(b"%PDF"):
            raise RenderError("wkhtmltopdf printed no PDF")
        return data


@contextlib.contextmanager
def _closed_port() -> Iterator[int]:
    """A loopback port held bound and not listening: a connection to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind(("127.0.0.1", 0))
        yield int(held.getsockname()[1])


# --- The renderer of the company's choice ---------------------------------------------------


def engine_named(name: str) -> PdfEngine:
    """The engine the settings name; WeasyPrint when wkhtmltopdf is chosen but missing."""
    if name == WkhtmltopdfEngine.name:
        if wkhtmltopdf_binary():
            return WkhtmltopdfEngine()
        log.warning("pdf_engine is wkhtmltopdf but it is not installed: printing with WeasyPrint")
    return WeasyPrintEngine()


def configured_renderer(session: Session) -> Renderer:
    """The renderer of prints without Factur-X (delivery notes): the company's engine and logo.

    Invoices and credit notes are PDF/A-3 with Factur-X, which only WeasyPrint makes.
    """
    from web.models import CompanySettings

    company = session.get(CompanySettings, 1)
    assets = dict(default_renderer().assets)
    if company is not None and company.logo:
        assets[COMPANY_LOGO] = Asset(company.logo, company.logo_mime_type or "image/png")
    name = company.pdf_engine if company is not None else WeasyPrintEngine.name
    if name == WeasyPrintEngine.name:
        return Renderer(default_renderer().engine, assets)
    return Renderer(engine_named(name), assets)
