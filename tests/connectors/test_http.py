"""The connectors' HTTP client: each shop answer becomes the error type services act on."""

from __future__ import annotations

import email.utils
import ssl
import time
from base64 import b64encode
from collections.abc import Callable

import httpx
import pytest

from web.connectors import http as client_module
from web.connectors.base import (
    AddressRefused,
    AuthFailed,
    BadPayload,
    BucketReading,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    RateLimited,
    Redirected,
    TimedOut,
)
from web.connectors.http import USER_AGENT, ShopHttp, retry_after_seconds, shared_ssl_context


class RecordingPacer:
    """A pacer that remembers what the client told it."""

    def __init__(self) -> None:
        self.before = 0
        self.after: list[tuple[int, float | None, BucketReading | None]] = []

    def before_call(self) -> None:
        self.before += 1

    def after_call(
        self, status: int, retry_after: float | None, bucket: BucketReading | None
    ) -> None:
        self.after.append((status, retry_after, bucket))


def shop(answer: Callable[[httpx.Request], httpx.Response], **kwargs: object) -> ShopHttp:
    return ShopHttp("https://shop.example.com/", transport=httpx.MockTransport(answer), **kwargs)


def answering(status: int, body: str = "", headers: dict[str, str] | None = None) -> ShopHttp:
    return shop(lambda request: httpx.Response(status, text=body, headers=headers))


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds(" 1.5 ") == 1.5
    assert retry_after_seconds("-3") == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("") is None
    assert retry_after_seconds("soon") is None
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert retry_after_seconds(past) == 0.0
    later = email.utils.formatdate(time.time() + 60, usegmt=True)
    waited = retry_after_seconds(later)
    assert waited is not None and 55 <= waited <= 60


def test_a_2xx_answer_is_returned_with_our_user_agent_on_the_request() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, json={"id": 7})

    http = shop(answer, headers={"X-Shop": "thes"}, params={"lang": "fr"})
    assert http.base_url == "https://shop.example.com"
    assert http.json("POST", "/orders") == {"id": 7}
    [request] = seen
    assert request.url == "https://shop.example.com/orders?lang=fr"
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.headers["X-Shop"] == "thes"
    http.close()
    assert http._client is None
    http.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, AuthFailed),
        (403, AuthFailed),
        (404, NotFoundAtShop),
        (500, PlatformUnavailable),
        (503, PlatformUnavailable),
        (599, PlatformUnavailable),
    ],
)
def test_each_refusal_of_the_shop_has_its_type_and_says_what_was_asked(
    status: int, error: type[ConnectorError]
) -> None:
    with pytest.raises(error) as refused:
        answering(status, "x" * 400).request("GET", "/orders/12")
    assert type(refused.value) is error
    assert refused.value.status == status
    assert str(refused.value) == f"GET /orders/12: HTTP {status} {'x' * 300!r}"


@pytest.mark.parametrize("status", [400, 409, 422, 499])
def test_any_other_refusal_is_a_plain_connector_error(status: int) -> None:
    with pytest.raises(ConnectorError) as refused:
        answering(status, "no").request("PUT", "/orders/12")
    assert type(refused.value) is ConnectorError
    assert (str(refused.value), refused.value.status) == (
        f"PUT /orders/12: HTTP {status} 'no'",
        status,
    )


@pytest.mark.parametrize("status", [200, 204, 299])
def test_every_2xx_is_an_answer(status: int) -> None:
    assert answering(status).request("GET", "/").status_code == status


@pytest.mark.parametrize("status", [300, 301, 308, 399])
def test_a_redirect_is_named_never_followed(status: int) -> None:
    http = answering(status, headers={"Location": "https://elsewhere.example.com/"})
    with pytest.raises(Redirected) as moved:
        http.request("GET", "/orders")
    assert str(moved.value) == f"GET /orders: HTTP {status}, a redirect (not followed)"
    assert moved.value.status == status


def test_a_429_says_how_long_to_wait() -> None:
    with pytest.raises(RateLimited) as limited:
        answering(429, "slow down", {"Retry-After": "30"}).request("GET", "/orders")
    assert (limited.value.retry_after, limited.value.status) == (30.0, 429)
    assert str(limited.value) == "GET /orders: HTTP 429 'slow down'"
    with pytest.raises(RateLimited) as unsaid:
        answering(429).request("GET", "/orders")
    assert unsaid.value.retry_after is None


def test_timeouts_bad_addresses_and_broken_connections_are_typed() -> None:
    def timing_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    def breaking(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(TimedOut) as slow:
        shop(timing_out).request("GET", "/orders")
    assert str(slow.value) == "GET /orders: timed out"
    with pytest.raises(PlatformUnavailable) as down:
        shop(breaking).request("GET", "/orders")
    assert str(down.value) == "GET /orders: connection refused"
    with pytest.raises(AddressRefused) as invalid:
        answering(200).request("GET", "http://[::1")
    assert str(invalid.value).startswith("GET http://[::1: ")


def test_an_answer_that_is_not_json_is_a_bad_payload() -> None:
    with pytest.raises(BadPayload) as unreadable:
        answering(200, "<html>maintenance</html>").json("GET", "/orders")
    assert str(unreadable.value) == "GET /orders: the answer is not JSON"


def test_the_pacer_is_asked_first_and_told_each_answer_with_its_wait_and_bucket() -> None:
    pacer = RecordingPacer()
    answers = iter(
        [
            httpx.Response(200, headers={"X-Bucket": "3/40", "Retry-After": "9"}),
            httpx.Response(503, headers={"X-Bucket": "4/40", "Retry-After": "7"}),
            httpx.Response(429, headers={"Retry-After": "5"}),
            httpx.Response(500, headers={"Retry-After": "4"}),
        ]
    )

    def bucket(headers: httpx.Headers) -> BucketReading | None:
        value = headers.get("X-Bucket")
        if value is None:
            return None
        used, capacity = value.split("/")
        return BucketReading(int(used), int(capacity))

    http = shop(lambda request: next(answers), pacer=pacer, read_bucket=bucket)
    http.request("GET", "/a")
    for _ in range(3):
        with pytest.raises(ConnectorError):
            http.request("GET", "/b")
    assert pacer.before == 4
    assert pacer.after == [
        (200, None, BucketReading(3, 40)),
        (503, 7.0, BucketReading(4, 40)),
        (429, 5.0, None),
        (500, None, None),
    ]

    unread = RecordingPacer()
    answering_with_bucket = shop(
        lambda request: httpx.Response(200, headers={"X-Bucket": "1/40"}), pacer=unread
    )
    answering_with_bucket.request("GET", "/c")
    assert unread.after == [(200, None, None)]


def test_the_client_times_out_connecting_within_five_seconds_and_never_follows() -> None:
    client = ShopHttp("https://shop.example.com", timeout=30.0).client
    assert client.timeout == httpx.Timeout(30.0, connect=5.0)
    assert client.follow_redirects is False
    quick = ShopHttp("https://shop.example.com", timeout=2.0).client
    assert quick.timeout == httpx.Timeout(2.0, connect=2.0)


def test_every_request_carries_the_shops_credentials() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    shop(answer, auth=("ck_key", "cs_secret")).request("GET", "/orders")
    assert seen[0].headers["Authorization"] == "Basic " + b64encode(b"ck_key:cs_secret").decode()


def test_every_client_verifies_with_the_one_tls_context_of_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(client_module, "_ssl_context", None)  # as in a new process
    context = shared_ssl_context()
    assert isinstance(context, ssl.SSLContext) and context is shared_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
