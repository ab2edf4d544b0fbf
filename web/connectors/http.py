"""One HTTP client for every connector: timeouts on every call, errors mapped to types."""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from web.connectors.base import (
    AuthFailed,
    BadPayload,
    BucketReading,
    ConnectorError,
    NotFoundAtShop,
    Pacer,
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
    """A small wrapper over httpx.Client bound to one shop's base URL and auth.

    With a pacer, every request waits for the shop's turn first and reports the answer's
    Retry-After (429, or 503 carrying one) and bucket level (`read_bucket` reads the
    platform's header) afterwards.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 15.0,
        auth: httpx.Auth | tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        pacer: Pacer | None = None,
        read_bucket: Callable[[httpx.Headers], BucketReading | None] | None = None,
    ) -> None:
        self.pacer = pacer
        self.read_bucket = read_bucket
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
        if self.pacer is not None:
            self.pacer.before_call()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise PlatformUnavailable(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            raise PlatformUnavailable(f"{method} {path}: {exc}") from exc
        status = response.status_code
        if self.pacer is not None:
            self._report(status, response.headers)
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

    def _report(self, status: int, headers: httpx.Headers) -> None:
        assert self.pacer is not None
        retry_after = None
        if status in (429, 503):
            retry_after = retry_after_seconds(headers.get("Retry-After"))
        bucket = self.read_bucket(headers) if self.read_bucket is not None else None
        self.pacer.after_call(status, retry_after, bucket)

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
