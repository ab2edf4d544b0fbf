"""Application factory: configuration, then extensions, then blueprints."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, Response, current_app, g, request, session, url_for
from flask_babel import Babel, gettext
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

from web import config as app_config
from web import htmx, observability, runtime
from web.db import make_engine, make_session_factory
from web.i18n import N_
from web.private_files import private_folder
from web.services import metrics

log = logging.getLogger(__name__)

csrf = CSRFProtect()
login_manager = LoginManager()
babel = Babel()

# Reached without a login: the login page itself, health checks, static files, the
# HMAC-authenticated webhooks, the bearer-token API and signed document links (/d/…).
# /metrics is authenticated by its own bearer token (APP_METRICS_TOKEN) instead.
PUBLIC_ENDPOINTS = {
    "auth.login",
    "health.healthz",
    "static",
    "auth.set_language",
    "metrics.index",
}
PUBLIC_BLUEPRINTS = {"hooks", "public_documents", "api"}

# Scripts, styles, fonts and requests from our own origin only: no inline script or style, no
# eval (htmx runs with allowEval off, see base.html), no framing, forms post only to us. Sent
# on every response, downloads and JSON included: a file a browser is talked into rendering
# gets no script either.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'self'",
        "object-src 'none'",
    )
)
# The warehouse's pack screen may run the barcode polyfill (static/vendor/barcode-detector),
# a WebAssembly module: those pages alone let the browser compile WebAssembly, which
# 'wasm-unsafe-eval' allows without allowing any JavaScript eval.
WASM_ENDPOINTS = frozenset({"warehouse.pack", "warehouse.confirm", "warehouse.missing"})
WASM_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'"
)


def create_app(overrides: Mapping[str, Any] | None = None) -> Flask:
    """Build the Comptoir web application."""
    root = app_config.PROJECT_ROOT
    instance_path = Path(
        (overrides or {}).get("INSTANCE_PATH")
        or os.environ.get("APP_INSTANCE_PATH")
        or app_config.DEFAULT_INSTANCE_PATH
    )
    app = Flask(
        __name__,
        instance_path=str(instance_path),
        template_folder=str(root / "templates"),
        static_folder=str(root / "static"),
    )
    app.config.update(app_config.load(overrides, instance_path=instance_path))
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = str(Path(__file__).parent / "translations")

    if app.config["PROXY_HOPS"]:
        # Behind the TLS proxy every client would be 127.0.0.1: read the address it forwards.
        hops = int(app.config["PROXY_HOPS"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops)  # type: ignore[method-assign]
    observability.configure_logging(app.config["LOG_FORMAT"])
    runtime.configure(app.config, instance_path)
    _init_database(app)
    _init_extensions(app)
    _register_blueprints(app)
    _register_hooks(app)
    from web import cli

    cli.register(app)
    return app


def _init_database(app: Flask) -> None:
    if app.config["DATABASE_URL"].startswith("sqlite:///"):
        # The database holds every name and address: its folder is ours alone.
        private_folder(Path(app.config["DATABASE_URL"].removeprefix("sqlite:///")).parent)
    size = int(app.config["DATABASE_POOL_SIZE"])
    engine = make_engine(app.config["DATABASE_URL"], pool_size=size, max_overflow=size)
    app.extensions["comptoir.engine"] = engine
    app.extensions["comptoir.sessions"] = make_session_factory(engine)


def _select_locale() -> str:
    languages = tuple(current_app.config["LANGUAGES"])
    chosen = session.get("lang")
    if chosen in languages:
        return str(chosen)
    if current_user.is_authenticated and current_user.locale in languages:
        return str(current_user.locale)
    return languages[0]


def _init_extensions(app: Flask) -> None:
    Htmx(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.session_protection = "strong"
    # Flask-Login's own notice, in the reader's language (its default is English).
    login_manager.login_message = N_("Please log in to access this page.")
    login_manager.login_message_category = "info"
    login_manager.localize_callback = gettext

    from web.views import sessions

    login_manager.user_loader(sessions.load_user)


def _register_blueprints(app: Flask) -> None:
    from web.views.converters import AnyPathConverter, IdConverter

    app.url_map.converters["id"] = IdConverter  # before the rules that use them
    app.url_map.converters["anypath"] = AnyPathConverter
    from web.views import (
        account,
        admin,
        api,
        audit,
        auth,
        bulk,
        company,
        credit_notes,
        dashboard,
        documents,
        errors,
        health,
        hooks,
        metrics,
        orders,
        public_documents,
        shipments,
        shipping_modes,
        shops,
        sync_issues,
        sync_log,
        tracking,
        warehouse,
    )

    for module in (auth, health, hooks, dashboard, orders, warehouse, admin, shops, sync_log, api):
        app.register_blueprint(module.bp)
    app.register_blueprint(sync_issues.bp)
    app.register_blueprint(bulk.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(audit.bp)
    app.register_blueprint(shipping_modes.bp)
    app.register_blueprint(shipments.bp)
    app.register_blueprint(documents.bp)
    from web.views import document_exports  # the accountant's exports, under /documents

    app.register_blueprint(document_exports.bp)
    app.register_blueprint(public_documents.bp)
    app.register_blueprint(credit_notes.bp)
    app.register_blueprint(tracking.bp)
    app.register_blueprint(company.bp)
    app.register_blueprint(metrics.bp)
    csrf.exempt(metrics.bp)  # a scraper's GET with a bearer token
    csrf.exempt(hooks.bp)  # authenticated by HMAC on the raw body instead
    csrf.exempt(api.bp)  # authenticated by a bearer token instead
    errors.register(app)
    from web.views import events, filters

    filters.register(app)
    events.register(app)


ENDPOINT_KINDS = {
    "hooks": "webhook",
    "api": "api",
    "public_documents": "document_link",
    "health": "health",
    "metrics": "metrics",
}


def _endpoint_kind() -> str:
    """The latency histogram's label: a handful of kinds, never a URL (unbounded)."""
    if request.endpoint is None:
        return "not_found"
    if request.endpoint == "static":
        return "static"
    kind = ENDPOINT_KINDS.get(request.blueprint or "")
    if kind:
        return kind
    if htmx.is_htmx_request():
        return "fragment"
    return "page" if request.method in ("GET", "HEAD") else "action"


def _register_hooks(app: Flask) -> None:
    from web.views import sessions as login_sessions

    def start_request() -> None:
        g.request_id = observability.request_id_from(request.headers.get(observability.HEADER))
        g.request_id_token = observability.bind(g.request_id)
        g.request_started = time.perf_counter()

    # First of all the hooks (CSRF's included): every log line of the request carries its id.
    app.before_request_funcs.setdefault(None, []).insert(0, start_request)

    @app.before_request
    def require_login() -> Any:
        endpoint = request.endpoint or ""
        # No route matched: the 404 follows (JSON under /api), whoever asks.
        if not endpoint or endpoint in PUBLIC_ENDPOINTS or request.blueprint in PUBLIC_BLUEPRINTS:
            return None
        if not current_user.is_authenticated:
            down = g.get(login_sessions.DATABASE_DOWN)
            if down is not None:
                raise down  # 503 with Retry-After (web/views/errors.py), the session kept
            if htmx.is_htmx_request():
                # A fragment swapped in place would show the login form inside the page.
                return htmx.login_required(url_for("auth.login", next=htmx.current_page_path()))
            return login_manager.unauthorized()
        return None

    @app.after_request
    def request_id_and_latency(response: Response) -> Response:
        if "request_id" in g:
            response.headers[observability.HEADER] = g.request_id
            elapsed = time.perf_counter() - g.request_started
            metrics.LATENCY.observe(_endpoint_kind(), elapsed)
        return response

    @app.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers["Content-Security-Policy"] = (
            WASM_CONTENT_SECURITY_POLICY
            if request.endpoint in WASM_ENDPOINTS
            else CONTENT_SECURITY_POLICY
        )
        if request.blueprint == "hooks":
            return response  # no login on webhooks: do not load a user to find out
        # The session's user id, not current_user: loading the user reads the database,
        # which may be the very thing that failed.
        if "_user_id" in session and "Cache-Control" not in response.headers:
            # Order data must not linger in shared or back-button caches.
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.teardown_request
    def end_request(_exc: BaseException | None) -> None:
        token = g.pop("request_id_token", None)
        if token is not None:
            observability.unbind(token)

    @app.teardown_appcontext
    def close_session(_exc: BaseException | None) -> None:
        db_session = g.pop("db_session", None)
        if db_session is not None:
            db_session.close()
