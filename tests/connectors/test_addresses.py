"""Where a connector may connect: the shop address policy, checked again at every connection.

As in production (APP_ALLOW_PRIVATE_SHOP_URLS unset), a shop URL that leads to this server,
the private network or a metadata service is refused before any socket is opened, whatever
the URL looked like when it was saved, and a redirect is never followed.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.emulators.base import Emulator, RecordedRequest, Reply
from web.connectors import addresses
from web.connectors.base import AddressRefused, PlatformUnavailable, Redirected
from web.connectors.http import ShopHttp

real_getaddrinfo = socket.getaddrinfo


class Answering(Emulator):
    """A loopback server answering every request with the same reply."""

    def __init__(self, reply: Reply) -> None:
        super().__init__()
        self.reply = reply

    def route(self, request: RecordedRequest) -> Reply:
        return self.reply


class Listener:
    """A loopback TCP port that counts the connections made to it, whatever they carry."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.socket.getsockname()[1])
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self.socket.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        self.socket.close()
        self._thread.join(timeout=5)


@pytest.fixture()
def listener() -> Iterator[Listener]:
    listening = Listener()
    yield listening
    listening.close()


@pytest.fixture()
def server() -> Iterator[Answering]:
    with Answering(Reply.json({"ok": True})) as running:
        assert isinstance(running, Answering)
        yield running


@pytest.fixture()
def production() -> None:
    """As a production process: no private addresses, no plain http."""
    addresses.configure(allow_private=False)


def resolve_as(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """Make the system resolver answer these names with these addresses (others as usual)."""

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host not in names:
            return real_getaddrinfo(host, port, *args, **kwargs)
        return [
            (
                socket.AF_INET6 if ":" in ip else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (ip, port, 0, 0) if ":" in ip else (ip, port),
            )
            for ip in names[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", addresses.LOOPBACK),
        ("127.255.0.9", addresses.LOOPBACK),
        ("::1", addresses.LOOPBACK),
        ("10.0.0.7", addresses.PRIVATE),
        ("172.31.255.1", addresses.PRIVATE),
        ("192.168.0.10", addresses.PRIVATE),
        ("100.64.0.1", addresses.PRIVATE),
        ("fd12:3456::1", addresses.PRIVATE),
        ("fec0::1", addresses.PRIVATE),
        ("169.254.169.254", addresses.LINK_LOCAL),
        ("fe80::1", addresses.LINK_LOCAL),
        ("::ffff:169.254.169.254", addresses.LINK_LOCAL),
        ("::169.254.169.254", addresses.LINK_LOCAL),
        ("::ffff:0:a9fe:a9fe", addresses.LINK_LOCAL),
        ("2002:a9fe:a9fe::1", addresses.LINK_LOCAL),
        ("64:ff9b::a9fe:a9fe", addresses.LINK_LOCAL),
        ("64:ff9b::127.0.0.1", addresses.LOOPBACK),
        ("::ffff:10.0.0.1", addresses.PRIVATE),
        ("224.0.0.251", addresses.MULTICAST),
        ("ff02::1", addresses.MULTICAST),
        ("0.0.0.0", addresses.RESERVED),
        ("::", addresses.RESERVED),
        ("255.255.255.255", addresses.RESERVED),
        ("240.0.0.1", addresses.RESERVED),
        ("192.0.2.1", addresses.RESERVED),
        ("8.8.8.8", None),
        ("2606:4700::1111", None),
        ("::ffff:8.8.8.8", None),
    ],
)
def test_each_address_is_refused_for_what_it_is(address: str, reason: str | None) -> None:
    import ipaddress

    assert addresses.refusal(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    "host",
    ["localhost", "127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.1", "[::ffff:7f00:1]"],
)
def test_no_socket_is_opened_to_a_refused_address(listener: Listener, host: str) -> None:
    addresses.configure(allow_private=False)
    http = ShopHttp(f"https://{host}:{listener.port}")
    with pytest.raises(AddressRefused) as caught:
        http.request("GET", "/admin/api/2025-01/shop.json")
    http.close()
    assert caught.value.reason in (addresses.LOOPBACK, addresses.NUMERIC)
    assert listener.accepted == 0

    # The same call where private addresses are allowed does reach the port.
    addresses.configure(allow_private=True)
    http = ShopHttp(f"https://localhost:{listener.port}")
    with pytest.raises(PlatformUnavailable):  # the listener hangs up: no TLS, no HTTP
        http.request("GET", "/admin/api/2025-01/shop.json")
    http.close()
    assert listener.accepted == 1


def test_the_same_server_answers_when_private_addresses_are_allowed(server: Answering) -> None:
    port = server.base_url.rsplit(":", 1)[1]
    http = ShopHttp(f"http://localhost:{port}")
    assert http.json("GET", "/anything") == {"ok": True}
    http.close()
    assert [request.path for request in server.requests] == ["/anything"]


@pytest.mark.usefixtures("production")
def test_a_name_that_rebinds_to_loopback_after_it_was_saved_is_refused(
    server: Answering, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    resolve_as(monkeypatch, {"shop.rebinding.test": ["8.8.8.8"]})
    url = addresses.check_shop_url(f"https://shop.rebinding.test:{port}/")
    assert url == f"https://shop.rebinding.test:{port}"

    resolve_as(monkeypatch, {"shop.rebinding.test": ["127.0.0.1"]})
    http = ShopHttp(url)
    with pytest.raises(AddressRefused) as caught:
        http.request("GET", "/wp-json/wc/v3/system_status")
    http.close()
    assert caught.value.reason == addresses.LOOPBACK
    assert server.requests == []


@pytest.mark.usefixtures("production")
def test_one_private_address_among_public_ones_is_enough_to_refuse(
    server: Answering, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = int(server.base_url.rsplit(":", 1)[1])
    resolve_as(monkeypatch, {"shop.mixed.test": ["8.8.8.8", "::ffff:127.0.0.1"]})
    with pytest.raises(addresses.RefusedAddress, match="loopback"):
        addresses.check_shop_url(f"https://shop.mixed.test:{port}")
    http = ShopHttp(f"https://shop.mixed.test:{port}")
    with pytest.raises(AddressRefused):
        http.request("GET", "/")
    http.close()
    assert server.requests == []


@pytest.mark.usefixtures("production")
def test_the_socket_goes_to_the_checked_address_not_to_a_second_answer(
    server: Answering, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once: a resolver answering public, then loopback, never wins."""
    port = int(server.base_url.rsplit(":", 1)[1])
    answers = iter([["192.88.99.1"], ["127.0.0.1"], ["127.0.0.1"]])
    calls: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "shop.flipping.test":
            return real_getaddrinfo(host, port, *args, **kwargs)
        calls.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in next(answers)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    http = ShopHttp(f"https://shop.flipping.test:{port}", timeout=1.0)
    with pytest.raises(PlatformUnavailable):  # 192.88.99.1 is not our server
        http.request("GET", "/")
    http.close()
    assert calls == ["shop.flipping.test"]
    assert server.requests == []


@pytest.mark.usefixtures("production")
def test_plain_http_is_refused_before_connecting(monkeypatch: pytest.MonkeyPatch) -> None:
    resolve_as(monkeypatch, {"shop.public.test": ["8.8.8.8"]})
    http = ShopHttp("http://shop.public.test", auth=("ck_key", "cs_secret"))
    with pytest.raises(AddressRefused) as caught:
        http.request("GET", "/wp-json/wc/v3/system_status")
    http.close()
    assert caught.value.reason == addresses.HTTPS_ONLY


def test_a_redirect_is_reported_and_never_followed() -> None:
    with Answering(Reply.json({"secret": "inside"})) as inside:
        moved = Reply(302, b"", {"Location": f"{inside.base_url}/latest/meta-data/"})
        with Answering(moved) as outside:
            http = ShopHttp(outside.base_url, auth=("ck_key", "cs_secret"))
            with pytest.raises(Redirected) as caught:
                http.request("GET", "/wp-json/wc/v3/system_status")
            http.close()
            assert caught.value.status == 302
            assert len(outside.requests) == 1
        assert inside.requests == []


@pytest.mark.parametrize(
    "url",
    [
        "https://0xa9fea9fe/",
        "https://2852039166/",
        "https://0251.0376.0251.0376/",
        "https://169.254.43518/",
        "https://0xa9.0xfe.0xa9.0xfe/",
    ],
)
def test_numeric_spellings_of_the_metadata_address_are_read_as_it(url: str) -> None:
    addresses.configure(allow_private=False)
    with pytest.raises(addresses.RefusedAddress) as caught:
        addresses.check_shop_url(url)
    assert str(caught.value) == addresses.LINK_LOCAL
    # Even where private addresses are allowed, such spellings are no shop's address.
    addresses.configure(allow_private=True)
    with pytest.raises(addresses.RefusedAddress) as caught:
        addresses.check_shop_url(url)
    assert str(caught.value) == addresses.NUMERIC


@pytest.mark.usefixtures("production")
def test_the_socket_goes_to_the_checked_address_on_the_shops_port_within_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    resolve_as(monkeypatch, {"shop.public.test": ["192.88.99.7"]})
    opened: list[tuple[Any, Any]] = []

    def create_connection(address: Any, timeout: Any = None, *args: Any, **kwargs: Any) -> Any:
        opened.append((address, timeout))
        raise ConnectionRefusedError("no shop here")

    monkeypatch.setattr(socket, "create_connection", create_connection)
    http = ShopHttp("https://shop.public.test:8443", timeout=3.0)
    with pytest.raises(PlatformUnavailable):
        http.request("GET", "/")
    http.close()
    assert opened == [(("192.88.99.7", 8443), 3.0)]


@pytest.mark.usefixtures("production")
@pytest.mark.parametrize("host", ["256.1", "1.16777216", "1.2.65536", "0x100.1"])
def test_numbers_too_big_for_their_place_are_refused_as_numeric(host: str) -> None:
    with pytest.raises(addresses.RefusedAddress) as caught:
        addresses.check_shop_url(f"https://{host}/")
    assert str(caught.value) == addresses.NUMERIC


@pytest.mark.parametrize("url", ["https://admin@shop.example.com", "https://:pw@shop.example.com"])
def test_a_url_carrying_a_user_or_a_password_is_refused(url: str) -> None:
    with pytest.raises(addresses.RefusedAddress) as caught:
        addresses.check_shop_url(url)
    assert str(caught.value) == addresses.USERINFO


def test_only_the_trailing_slash_of_a_shop_url_goes() -> None:
    assert (
        addresses.check_shop_url(" https://127.0.0.1/BOUTIQUEX/ ") == "https://127.0.0.1/BOUTIQUEX"
    )
