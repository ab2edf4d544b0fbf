"""Every HX-* request and response rule in one place."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request

VARY_HEADERS = ("HX-Request", "HX-Boosted")


def is_htmx_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def is_partial_request() -> bool:
    """True for htmx requests that swap a fragment; boosted navigation wants full pages."""
    return is_htmx_request() and request.headers.get("HX-Boosted") != "true"


def render(page: str, fragment: str | None = None, status: int = 200, **context: Any) -> Response:
    """Render the fragment for partial requests and the whole page otherwise."""
    template = fragment if fragment and is_partial_request() else page
    response = Response(render_template(template, **context), status=status)
    response.vary.update(VARY_HEADERS)
    return response


def redirect_after_post(url: str) -> Response:
    """End a non-GET: htmx follows HX-Location, plain forms get a 303."""
    if is_htmx_request():
        response = Response(status=204)
        response.headers["HX-Location"] = url
        return response
    response = Response(status=303)
    response.headers["Location"] = url
    return response


def trigger(response: Response, event: str) -> Response:
    """Raise a client-side event once the response is swapped."""
    existing = response.headers.get("HX-Trigger")
    response.headers["HX-Trigger"] = f"{existing}, {event}" if existing else event
    return response
