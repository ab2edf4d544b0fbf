"""Which shop URLs and network addresses Comptoir may connect to: shops on the public internet.

A shop's URL is typed by an administrator and Comptoir sends the shop's credentials to it, so
a URL leading to this server (loopback), the private network or a cloud metadata service
(169.254.169.254) would make "Test the connection" a way to read internal services
(server-side request forgery). Two checks, the same rules:

- when a URL is saved, `check_shop_url` refuses it with a message naming the reason;
- when a connection is opened, `checked_addresses` resolves the host and refuses it unless
  every address it resolves to is public (`GuardedTransport` in web/connectors/http.py then
  connects to a checked address), so a name re-pointed after it was saved (DNS rebinding)
  is refused too.

`configure(allow_private=True)` (APP_ALLOW_PRIVATE_SHOP_URLS=1: tests, local emulators) allows
private addresses and plain http. The process refuses them until told otherwise.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from web.i18n import N_

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ENTER_URL = N_("Enter the shop's address, starting with https://")
HTTPS_ONLY = N_(
    "Use an https:// address: Comptoir sends the shop's credentials over encrypted "
    "connections only."
)
USERINFO = N_(
    "Leave the user name and password out of the address: type the credentials in their own fields."
)
NUMERIC = N_(
    "Write an IP address as four numbers from 0 to 255 (such as 203.0.113.10), or better, "
    "use the shop's domain name."
)
LOOPBACK = N_(
    "This address leads to the Comptoir server itself (loopback). Comptoir connects only to "
    "shops on the public internet."
)
PRIVATE = N_(
    "This address leads to a private network. Comptoir connects only to shops on the "
    "public internet."
)
LINK_LOCAL = N_(
    "This address is link-local, where cloud metadata services answer. Comptoir connects "
    "only to shops on the public internet."
)
MULTICAST = N_(
    "This is a multicast address. Comptoir connects only to shops on the public internet."
)
RESERVED = N_(
    "This address is reserved or unspecified. Comptoir connects only to shops on the "
    "public internet."
)

# RFC 1918, shared address space (carrier-grade NAT, RFC 6598) and unique-local IPv6.
_PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
# IPv6 forms that carry an IPv4 address in their last 32 bits: IPv4-compatible (::/96),
# SIIT-translated (::ffff:0:0:0/96) and NAT64 (64:ff9b::/96, 64:ff9b:1::/48).
_EMBEDDING_IPV4 = tuple(
    ipaddress.ip_network(network)
    for network in ("::/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48")
)
_HEX = re.compile(r"0x[0-9a-f]*")
_DECIMAL = re.compile(r"[0-9]+")

_allow_private = False


def configure(*, allow_private: bool) -> None:
    """Say whether this process may reach private addresses and plain-http shops."""
    global _allow_private
    _allow_private = allow_private


def private_allowed() -> bool:
    """Whether private addresses and plain http are allowed (tests, local emulators)."""
    return _allow_private


class RefusedAddress(ValueError):
    """A shop URL or address Comptoir will not connect to; the message is a message id."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if any(address in network for network in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal(address: IPAddress) -> str | None:
    """Why Comptoir may not connect to this address (a message id), or None when it may."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.is_loopback:
            return LOOPBACK
        if address.is_unspecified:
            return RESERVED
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return refusal(embedded)
        if address.is_site_local:
            return PRIVATE
    if address.is_loopback:
        return LOOPBACK
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_multicast:
        return MULTICAST
    if any(address in network for network in _PRIVATE_NETWORKS):
        return PRIVATE
    if address.is_unspecified or address.is_reserved or not address.is_global:
        return RESERVED
    return None


def _ipv4_number(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a host names, read as browsers and inet_aton() do; None for a name.

    A host whose last label is a number is an address: `127.1`, `2852039166`, `0xa9fea9fe`
    and `0251.0376.0251.0376` all are, in decimal, hexadecimal or octal parts.
    """
    labels = host.removesuffix(".").split(".")
    if not (_DECIMAL.fullmatch(labels[-1]) or _HEX.fullmatch(labels[-1])):
        return None
    if len(labels) > 4:
        raise RefusedAddress(NUMERIC)
    numbers = []
    for label in labels:
        if _HEX.fullmatch(label):
            numbers.append(int(label[2:] or "0", 16))
        elif _DECIMAL.fullmatch(label):
            base = 8 if len(label) > 1 and label.startswith("0") else 10
            try:
                numbers.append(int(label, base))
            except ValueError as exc:  # 08, 09: not octal
                raise RefusedAddress(NUMERIC) from exc
        else:
            raise RefusedAddress(NUMERIC)
    *leading, last = numbers
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        raise RefusedAddress(NUMERIC)
    value = last
    for position, number in enumerate(leading):
        value += number << (8 * (3 - position))
    return ipaddress.IPv4Address(value)


def literal_address(host: str) -> IPAddress | None:
    """The IP address a URL's host is written as, or None for a name.

    Refuses (RefusedAddress) addresses written in any but the usual form.
    """
    host = host.lower()
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise RefusedAddress(ENTER_URL) from exc
    address = _ipv4_number(host)
    if address is not None and str(address) != host:
        reason = None if private_allowed() else refusal(address)
        raise RefusedAddress(reason or NUMERIC)
    return address


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the host resolves to (empty when it does not resolve)."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return []
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def checked_addresses(host: str, port: int) -> list[IPAddress]:
    """Resolve the host for a connection; refuse it unless every address is allowed.

    Every address, not only the first: a name answering with one public and one private
    address would otherwise be a coin toss.
    """
    literal = literal_address(host.strip("[]"))
    name = host.lower().removesuffix(".")
    if not private_allowed() and (name == "localhost" or name.endswith(".localhost")):
        raise RefusedAddress(LOOPBACK)  # RFC 6761, whatever this resolver makes of it
    addresses = [literal] if literal is not None else resolve(host, port)
    if not private_allowed():
        for address in addresses:
            reason = refusal(address)
            if reason is not None:
                raise RefusedAddress(reason)
    return addresses


def check_shop_url(value: object) -> str:
    """The shop URL without its trailing slash; RefusedAddress names what is wrong with it.

    A name that does not resolve yet is accepted: every connection checks again.
    """
    url = str(value or "").strip()
    parts = urlsplit(url)
    try:
        host, port = parts.hostname, parts.port
    except ValueError as exc:  # a port that is not a number
        raise RefusedAddress(ENTER_URL) from exc
    if parts.scheme not in ("http", "https") or not host or " " in url or len(url) > 500:
        raise RefusedAddress(ENTER_URL)
    if parts.username is not None or parts.password is not None:
        raise RefusedAddress(USERINFO)
    if not private_allowed():
        checked_addresses(host, port or (443 if parts.scheme == "https" else 80))
        if parts.scheme != "https":
            raise RefusedAddress(HTTPS_ONLY)
    else:
        literal_address(host)
    return url.rstrip("/")
