"""One HTTP client for every connector: timeouts on every call, errors mapped to types."""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Mapping
from typing import Any

import httpx

from web.connectors.base import (
    AuthFailed,
    BadPayload,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    RateLimited,
)

log = logging.getLogger(__name__)

USER_AGENT = "Comptoir/0.1 (+https://github.com/comptoir)"

_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """The one TLS context of this process, built (CA bundle loaded) on first use.

    Loading the CA bundle costs tens of milliseconds; every connector's client verifies
    with this context instead of building its own.
    """
    global _ssl_context
    if _ssl_context is None:
        with _ssl_lock:
            if _ssl_context is None:
                _ssl_context = httpx.create_ssl_context()
    return _ssl_context


def retry_after_seconds(value: str | None) -> float | None:
    """Read Retry-After as seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class ShopHttp:
    """A small wrapper over httpx.Client bound to one shop's base URL and auth."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.auth = auth
        self.headers = {"User-Agent": USER_AGENT, **(headers or {})}
        self.params = params
        self.transport = transport
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        """The httpx client, created on first use: a webhook's connector never needs one."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self.base_url,
                timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
                auth=self.auth,
                headers=self.headers,
                params=self.params,
                transport=self.transport,
                verify=shared_ssl_context(),
                follow_redirects=False,
            )
        return self._client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise a typed ConnectorError for anything but a 2xx."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise PlatformUnavailable(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            raise PlatformUnavailable(f"{method} {path}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return response
        summary = f"{method} {path}: HTTP {status} {response.text[:300]!r}"
        if status == 429:
            raise RateLimited(summary, retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise AuthFailed(summary)
        if status == 404:
            raise NotFoundAtShop(summary)
        if status >= 500:
            raise PlatformUnavailable(summary)
        raise ConnectorError(summary)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send a request and decode its JSON body (BadPayload when it is not JSON)."""
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError as exc:
            raise BadPayload(f"{method} {path}: the answer is not JSON") from exc

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
