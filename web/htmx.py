"""Every HX-* request and response rule in one place."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Response, render_template, request

VARY_HEADERS = ("HX-Request", "HX-Boosted")


def is_htmx_request() -> bool:
    return request.headers.get("HX-Request") == "true"


def is_partial_request() -> bool:
    """True for htmx requests that swap a fragment; boosted navigation wants full pages."""
    return is_htmx_request() and request.headers.get("HX-Boosted") != "true"


def is_swap_of(element_id: str) -> bool:
    """True for a partial request that swaps the element with this id (not, say, the body
    an HX-Location visit loads the page into)."""
    return is_partial_request() and request.headers.get("HX-Target") == element_id


# Requests htmx makes on its own, on a timer: they must not keep an idle login alive.
# An endpoint maps to the id of the polling element when the same endpoint also answers
# the user (HX-Trigger names the element that fired), to None when it only ever polls.
BACKGROUND_POLLS: dict[str, str | None] = {
    "sync_issues.count": None,
    "sync_issues.index": "issues",
    "bulk.arrivals": None,
    "bulk.job_status": None,
    "shops.job_status": None,
    "tracking.job_status": None,
}


def is_background_poll() -> bool:
    """True for a request a page sends on a timer, not because someone did something."""
    if not is_partial_request() or request.endpoint not in BACKGROUND_POLLS:
        return False
    element = BACKGROUND_POLLS[request.endpoint]
    return element is None or request.headers.get("HX-Trigger") == element


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


def login_required(url: str) -> Response:
    """Send an htmx request whose login has ended to the login page, not into a swap."""
    response = Response(status=401)
    response.headers["HX-Redirect"] = url
    return response


def current_page_path() -> str | None:
    """The path (and query) of the page an htmx request was sent from."""
    current = request.headers.get("HX-Current-URL", "")
    parts = urlsplit(current)
    if not current or parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def trigger(response: Response, event: str) -> Response:
    """Raise a client-side event once the response is swapped."""
    existing = response.headers.get("HX-Trigger")
    response.headers["HX-Trigger"] = f"{existing}, {event}" if existing else event
    return response
