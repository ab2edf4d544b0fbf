"""One HTTP client for every connector: timeouts on every call, errors mapped to types.

Every connection goes through GuardedTransport: only to addresses web/connectors/addresses.py
allows, checked after DNS, and never following a redirect.
"""

from __future__ import annotations

import email.utils
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpcore
import httpx

from web.connectors import addresses
from web.connectors.base import (
    AddressRefused,
    AuthFailed,
    BadPayload,
    BucketReading,
    ConnectorError,
    NotFoundAtShop,
    Pacer,
    PlatformUnavailable,
    RateLimited,
    Redirected,
    TimedOut,
    TlsFailed,
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


class _CheckedBackend(httpcore.NetworkBackend):
    """httpcore's own sockets, opened only to addresses the shop address policy allows.

    The host is resolved here, every address checked, and the socket connected to a checked
    address: the name is never resolved a second time, so it cannot change in between. TLS
    still verifies the certificate for the URL's name (httpcore passes it for SNI).
    """

    def __init__(self) -> None:
        self._sockets = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        if addresses.private_allowed():
            return self._sockets.connect_tcp(host, port, timeout, local_address, socket_options)
        try:
            checked = addresses.checked_addresses(host, port)
        except addresses.RefusedAddress as exc:
            reason = str(exc)
            raise AddressRefused(
                f"{host}: refused, {reason[0].lower()}{reason[1:]}", reason
            ) from exc
        if not checked:
            raise httpcore.ConnectError(f"{host} does not resolve")
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in checked:
            try:
                return self._sockets.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise AddressRefused(f"{path}: a shop is never a local socket", addresses.RESERVED)

    def sleep(self, seconds: float) -> None:
        self._sockets.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport, connecting only where the shop address policy allows, over https.

    Plain http is refused too unless private addresses are allowed: the shop's credentials
    travel in every request.
    """

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, trust_env=False)
        # httpx takes no network backend; its pool is rebuilt with ours (httpx's limits).
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=100,
            max_keepalive_connections=20,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "https" and not addresses.private_allowed():
            raise AddressRefused(f"{request.url.host}: refused, plain http", addresses.HTTPS_ONLY)
        return super().handle_request(request)


def _is_tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


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
                transport=self.transport or GuardedTransport(shared_ssl_context()),
                follow_redirects=False,
            )
        return self._client

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request; raise a typed ConnectorError for anything but a 2xx."""
        if self.pacer is not None:
            self.pacer.before_call()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.InvalidURL as exc:
            raise AddressRefused(f"{method} {path}: {exc}", addresses.ENTER_URL) from exc
        except httpx.TimeoutException as exc:
            raise TimedOut(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            if _is_tls_failure(exc):
                raise TlsFailed(f"{method} {path}: TLS failed: {exc}") from exc
            raise PlatformUnavailable(f"{method} {path}: {exc}") from exc
        status = response.status_code
        if self.pacer is not None:
            self._report(status, response.headers)
        if 200 <= status < 300:
            return response
        summary = f"{method} {path}: HTTP {status} {response.text[:300]!r}"
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("Retry-After"))
            raise RateLimited(summary, retry_after, status=status)
        if status in (401, 403):
            raise AuthFailed(summary, status=status)
        if status == 404:
            raise NotFoundAtShop(summary, status=status)
        if 300 <= status < 400:
            raise Redirected(
                f"{method} {path}: HTTP {status}, a redirect (not followed)", status=status
            )
        if status >= 500:
            raise PlatformUnavailable(summary, status=status)
        raise ConnectorError(summary, status=status)

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
