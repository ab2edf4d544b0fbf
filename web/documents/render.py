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

import datetime as dt
import functools
import mimetypes
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import jinja2
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from web.config import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates" / "pdf"
TRANSLATIONS = Path(__file__).resolve().parent.parent / "translations"
ASSETS = TEMPLATES / "assets"
ASSET_SCHEME = "asset:"
LANGUAGES = ("fr", "en")


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
