"""The one Protocol every shop platform implements, and the platform-neutral data it speaks.

Connectors translate platform JSON/XML into these dataclasses and never touch the
database; services persist them keyed on (shop, external_id).

Money conventions (every amount a Decimal parsed from the shop's string or number by
money(), never through a float, rounded half-up to the cent):
- ShopLine.unit_price is the price of one unit before the line's discount, in the
  order's price basis (tax included when ShopOrder.prices_include_tax, excluded
  otherwise), at the shop's own precision (price(), up to six decimals); discount_amount
  is the line's discount in the same basis; total_net / tax_amount / total_gross are the
  line's amounts after its discount, to the cent, as the shop gives them.
- One line per thing the buyer ordered: the components of a bundle (or the child of a
  configurable product) point at their parent with parent_external_id, carry the
  quantities to pick and no money of their own; needs_shipping is False for virtual,
  downloadable and gift-card lines.
- ShopOrder.subtotal is the sum of the lines tax included before discounts;
  discount_total the order's discounts tax included, each kept in `discounts` with its
  code and amount; shipping_total the shipping tax included and shipping_tax its tax;
  tax_total all tax; grand_total what the buyer pays. subtotal - discount_total +
  shipping_total == grand_total for the shops' own figures (wrapping and fees arrive as
  lines of kind fee / gift_wrap); an order whose figures do not add up is flagged, never
  silently corrected.
- Timestamps are timezone-aware UTC: connectors convert the shop's local times.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, ClassVar, Protocol

from web.models.base import trim_price
from web.models.enums import LineKind, TransactionKind, TransactionStatus

# --- Errors -------------------------------------------------------------------------------


class ConnectorError(Exception):
    """Root of everything a connector raises; `status` is the shop's HTTP status if it answered."""

    def __init__(self, *args: object, status: int | None = None) -> None:
        super().__init__(*args)
        self.status = status


class RetryableError(ConnectorError):
    """Trying again later may succeed."""


class RateLimited(RetryableError):
    """The shop asked us to slow down (HTTP 429); retry_after is in seconds."""

    def __init__(
        self, message: str, retry_after: float | None = None, *, status: int | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class PlatformUnavailable(RetryableError):
    """Timeout, connection failure or a 5xx from the shop."""


class TimedOut(PlatformUnavailable):
    """The shop did not answer in time."""


class TlsFailed(PlatformUnavailable):
    """The TLS handshake failed: a certificate that does not verify, or no TLS at all."""


class PermanentError(ConnectorError):
    """Trying again will not help until a person changes something."""


class AddressRefused(PermanentError):
    """The shop's address leads where Comptoir does not connect (web/connectors/addresses.py).

    `reason` is the message id saying why.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class Redirected(PermanentError):
    """The shop answered with a redirect (3xx), which Comptoir does not follow."""


class AuthFailed(PermanentError):
    """The shop refused our credentials (401/403)."""


class NotFoundAtShop(PermanentError):
    """The shop has no such order (404)."""


class BadPayload(PermanentError):
    """A payload we cannot understand; the message says what is wrong."""


class InvalidSignature(PermanentError):
    """A webhook whose signature is missing or does not match."""


class TopicMismatch(BadPayload):
    """A signed body under a topic that names another kind of body (or none we handle).

    The signature covers the body only: the topic header is whatever the sender wrote.
    """

    def __init__(self, topic: str, message: str) -> None:
        super().__init__(message)
        self.topic = topic


# --- Data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BucketReading:
    """What a shop said about its request bucket after a call: `used` of `capacity`."""

    used: int
    capacity: int


class Pacer(Protocol):
    """Paces the calls to one shop; services implement it (shared between processes).

    ShopHttp calls before_call() before every request and after_call() with every answer.
    """

    def before_call(self) -> None:
        """Wait for the shop's turn, or raise RateLimited(retry_after=…) if that is too long."""
        ...

    def after_call(
        self, status: int, retry_after: float | None, bucket: BucketReading | None
    ) -> None:
        """Record what the shop said: its answer's status, Retry-After and bucket level."""
        ...


@dataclass(frozen=True)
class ShopSettings:
    """What a connector needs to reach one shop (secrets already decrypted).

    `pacer` paces its calls (None: unpaced, for parsing tests and one-off calls).
    """

    base_url: str
    api_key: str = ""
    api_secret: str = ""
    webhook_secret: str = ""
    timeout: float = 15.0
    extra: Mapping[str, str] = field(default_factory=dict)
    pacer: Pacer | None = None


@dataclass(frozen=True)
class ShopAddress:
    first_name: str = ""
    last_name: str = ""
    company: str = ""
    line1: str = ""
    line2: str = ""
    postcode: str = ""
    city: str = ""
    region: str = ""
    country_code: str = ""
    phone: str = ""
    email: str = ""
    vat_id: str = ""
    relay_point_id: str = ""

    def as_dict(self) -> dict[str, str]:
        """The snapshot stored on the order (empty values left out)."""
        return {key: value for key, value in self.__dict__.items() if value}


@dataclass(frozen=True)
class ShopCustomer:
    external_id: str | None = None
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    phone: str = ""
    company: str = ""


@dataclass(frozen=True)
class ShopDiscount:
    """A discount as the shop applied it: the code typed (empty for an automatic one), the
    shop's title for it, and its amount, tax included."""

    code: str
    amount: Decimal
    label: str = ""


@dataclass(frozen=True)
class ShopLine:
    external_id: str
    name: str
    quantity: int
    unit_price: Decimal
    sku: str = ""
    ean: str = ""
    options: str = ""
    tax_rate: Decimal = Decimal("0")
    discount_amount: Decimal = Decimal("0.00")
    total_net: Decimal = Decimal("0.00")
    tax_amount: Decimal = Decimal("0.00")
    total_gross: Decimal = Decimal("0.00")
    kind: LineKind = LineKind.PRODUCT
    parent_external_id: str | None = None
    needs_shipping: bool = True


@dataclass(frozen=True)
class ShopTransaction:
    external_id: str
    kind: TransactionKind
    amount: Decimal
    currency: str
    occurred_at: dt.datetime
    status: TransactionStatus = TransactionStatus.SUCCESS
    method: str = ""
    reference: str = ""


@dataclass(frozen=True)
class PaymentSummary:
    """What an order payload says of its money when it carries no transactions.

    Read from the payload's payment status and totals; `exact` is False when the status
    says money was refunded by an amount the payload does not give (a partial refund
    without its refund records). The transactions themselves are read later, by a
    follow-up.
    """

    paid: Decimal = Decimal("0.00")
    refunded: Decimal = Decimal("0.00")
    authorized: Decimal = Decimal("0.00")
    exact: bool = True


@dataclass(frozen=True)
class ShopRefund:
    """A refund delivered on its own (Shopify refunds/create): its order and its money."""

    order_external_id: str
    transactions: tuple[ShopTransaction, ...]


@dataclass(frozen=True)
class ShopParcel:
    """One tracking number of a shipment made or known at the shop."""

    tracking_number: str
    carrier: str = ""
    tracking_url: str = ""
    external_id: str = ""


@dataclass(frozen=True)
class ShopShipment:
    """A shipment as the shop records it (a Shopify fulfillment, a Magento shipment...).

    `lines` pairs the shop's line ids with quantities; None when the platform records no
    lines for it (WooCommerce tracking items, PrestaShop's order carrier): it then stands
    for everything that remained to ship. `cancelled` when the shop cancelled it.
    """

    external_id: str
    parcels: tuple[ShopParcel, ...] = ()
    lines: tuple[tuple[str, int], ...] | None = None
    carrier: str = ""
    shipped_at: dt.datetime | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class ShipmentLineToPush:
    """One line of a shipment Comptoir sends: the shop's line id and the quantity."""

    line_external_id: str
    quantity: int
    sku: str = ""
    name: str = ""


@dataclass(frozen=True)
class ParcelToPush:
    """One tracking number to send; `external_id` is the shop's id for it once told."""

    tracking_number: str
    tracking_url: str = ""
    weight_kg: Decimal | None = None
    # The shop's id of this parcel's tracking entry from an earlier push ("" before); it
    # still names the old entry after a correction, so the shop's copy can be replaced.
    external_id: str = ""


@dataclass(frozen=True)
class ShipmentToPush:
    """A shipment as the shop must show it now, read when the message is sent.

    `reference` is Comptoir's number for it (EXP-12-1); `external_id` the shop's id once
    an earlier push or the shop's own copy gave it ("" before). `carrier_code` is the
    shipping mode's code for this platform ("" when none is set), `carrier_name` its name.
    `cancelled`: the shipment was cancelled in Comptoir and the shop must drop it where it
    can. `whole_order`: the shipment holds everything the order ships (nothing before or
    after it), for platforms that only know "shipped" for a whole order. `notify`: the
    shop may e-mail the buyer.
    """

    reference: str
    external_id: str
    lines: tuple[ShipmentLineToPush, ...]
    parcels: tuple[ParcelToPush, ...]
    carrier_code: str = ""
    carrier_name: str = ""
    cancelled: bool = False
    whole_order: bool = False
    notify: bool = True
    shipped_at: dt.datetime | None = None
    # The shop's ids the order's other shipments already stand for: never this one's.
    others_external_ids: tuple[str, ...] = ()

    @property
    def tracking_numbers(self) -> tuple[str, ...]:
        return tuple(p.tracking_number for p in self.parcels if p.tracking_number)


@dataclass(frozen=True)
class ShopOrder:
    """One order as the shop sees it now."""

    external_id: str
    number: str
    placed_at: dt.datetime
    updated_at: dt.datetime
    currency: str
    status: str
    customer: ShopCustomer
    billing: ShopAddress
    shipping: ShopAddress | None
    lines: tuple[ShopLine, ...]
    grand_total: Decimal
    subtotal: Decimal = Decimal("0.00")
    discount_total: Decimal = Decimal("0.00")
    shipping_total: Decimal = Decimal("0.00")
    shipping_tax: Decimal = Decimal("0.00")
    tax_total: Decimal = Decimal("0.00")
    prices_include_tax: bool = True
    status_label: str = ""
    email: str = ""
    shipping_label: str = ""
    payment_method: str = ""
    payment_method_label: str = ""
    discount_codes: tuple[str, ...] = ()
    discounts: tuple[ShopDiscount, ...] = ()
    buyer_note: str = ""
    marketplace_ref: str = ""
    cancelled_at: dt.datetime | None = None
    cancel_reason: str = ""
    # None: the payload does not carry payments; fetch_transactions() reads them, and
    # payment_summary says what the payload itself tells of them meanwhile.
    transactions: tuple[ShopTransaction, ...] | None = None
    payment_summary: PaymentSummary | None = None
    # None: this copy does not say which shipments the shop holds (not read); () none.
    shipments: tuple[ShopShipment, ...] | None = None


@dataclass(frozen=True)
class WebhookDelivery:
    """What a verified webhook is about, read before storing it."""

    topic: str
    dedupe_key: str
    external_order_id: str | None = None
    is_ping: bool = False
    # What the body is, whatever the topic and delivery id it came with: an order at one
    # modification time, a refund, or a deletion. A body already stored is a duplicate.
    content_key: str | None = None


@dataclass(frozen=True)
class RejectedOrder:
    """An order of a page that could not be understood: parked alone, the page goes on."""

    external_id: str
    error: str
    raw: bytes


@dataclass(frozen=True)
class OrderBatch:
    """One page of orders changed since a time, and how to ask for the next page."""

    orders: tuple[ShopOrder, ...]
    next_page: str | None = None
    rejected: tuple[RejectedOrder, ...] = ()


@dataclass(frozen=True)
class ChangeBatch:
    """One page of the change probe: (order id, modification time in UTC) pairs, oldest
    change first, and how to ask for the next page."""

    changes: tuple[tuple[str, dt.datetime], ...]
    next_page: str | None = None
    # False when a row could not be read: the full poll reads the page and parks that order.
    readable: bool = True


@dataclass(frozen=True)
class ShopChoice:
    """A status, carrier or payment method as the shop names it."""

    code: str
    label: str


@dataclass(frozen=True)
class PushOutcome:
    """What a write-back did at the shop.

    - written: the call changed the shop; remote_ref names what it created (note id...).
    - already there (written=False, skipped=""): reading the shop first showed the fact was
      already known (a retry after a crash, or a change made at the shop itself); nothing
      was written.
    - skipped: the platform cannot receive this fact; the text says why, for the timeline.
    """

    written: bool = True
    remote_ref: str = ""
    skipped: str = ""
    # For a shipment: the shop's ids of its tracking numbers, (tracking number, id) pairs.
    parcel_refs: tuple[tuple[str, str], ...] = ()

    @classmethod
    def already_there(
        cls, remote_ref: str = "", parcel_refs: tuple[tuple[str, str], ...] = ()
    ) -> PushOutcome:
        return cls(written=False, remote_ref=remote_ref, parcel_refs=parcel_refs)

    @classmethod
    def cannot(cls, why: str) -> PushOutcome:
        return cls(written=False, skipped=why)


# --- The Protocol -------------------------------------------------------------------------


class Connector(Protocol):
    platform: ClassVar[str]
    api_version: ClassVar[str]
    webhook_topics: ClassVar[tuple[str, ...]]
    has_webhooks: ClassVar[bool]

    def __init__(self, settings: ShopSettings) -> None: ...

    def verify_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise InvalidSignature unless the raw body is signed with our secret."""
        ...

    def describe_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookDelivery:
        """Read topic, dedupe and content keys and order id of a verified delivery.

        BadPayload if the body cannot be read; TopicMismatch if the topic names another
        kind of body than the one signed (a full order under a delete topic).
        """
        ...

    def parse_order(self, payload: bytes) -> ShopOrder:
        """Translate one order payload (webhook body or API answer) into a ShopOrder."""
        ...

    def fetch_order(self, external_id: str) -> ShopOrder:
        """Read one order from the shop."""
        ...

    def fetch_transactions(self, external_id: str) -> tuple[ShopTransaction, ...]:
        """Read the payments of one order."""
        ...

    def list_orders(self, changed_since: dt.datetime, page: str | None = None) -> OrderBatch:
        """One page of orders changed at or after `changed_since`, oldest change first."""
        ...

    def list_statuses(self) -> list[ShopChoice]:
        """The shop's own order statuses, for the mapping screens."""
        ...

    def list_carriers(self) -> list[ShopChoice]:
        """The shop's carriers or shipping methods, for the mapping screens."""
        ...

    def list_payment_methods(self) -> list[ShopChoice]:
        """The shop's payment methods, for the mapping screens."""
        ...

    def test_connection(self) -> str:
        """Call a cheap authenticated endpoint; return a short description of the shop."""
        ...

    # Write-backs. None of the platforms' write calls is idempotent: each method reads the
    # shop's current state first and writes only what is missing, so that a retry after a
    # crash between the write and our bookkeeping never writes twice.

    def push_status(
        self, external_id: str, status: str, *, notify: bool = True, reason: str = ""
    ) -> PushOutcome:
        """Make the shop show `status`, a value from the shop's milestone mapping.

        `notify` asks the shop to e-mail the buyer where the platform lets the caller choose;
        `reason` accompanies a cancellation where the platform keeps one.
        """
        ...

    def push_comment(
        self,
        external_id: str,
        text: str,
        *,
        customer_visible: bool,
        notify: bool = False,
        since: dt.datetime | None = None,
        ref: str = "",
    ) -> PushOutcome:
        """Add a comment to the order at the shop unless this very comment is already there.

        `since` is when Comptoir queued the comment (aware UTC): only entries the shop dates
        at or after it, less CLOCK_SKEW, may be this comment written by an earlier attempt,
        so an older comment with the same text never hides a new one. `ref` is Comptoir's
        reference of the comment ("c123"), for platforms whose comments carry no date.
        Without either, any entry with the same text counts as already there.
        """
        ...

    def push_shipment(
        self, external_id: str, shipment: ShipmentToPush, *, since: dt.datetime | None = None
    ) -> PushOutcome:
        """Make the shop show this shipment (created, tracking completed, or cancelled).

        Reads the shop first: a shipment it already holds (known by `shipment.external_id`,
        or found by its lines and tracking numbers among those the shop dates at or after
        `since` less CLOCK_SKEW, after an answer that was lost) is completed or left alone,
        never written twice. Returns the shop's id of the shipment as `remote_ref` and its
        tracking numbers' ids as `parcel_refs`; `PushOutcome.cannot` for what the platform
        cannot hold (the timeline says why).
        """
        ...

    def close(self) -> None:
        """Release the HTTP connections; the connector is not used afterwards."""
        ...


# --- Helpers shared by the connectors ----------------------------------------------------

CENT = Decimal("0.01")
# The text before a cancellation reason where the shop keeps it as a note or message.
CANCEL_REASON = "Cancellation reason: "
# How much earlier than Comptoir's queue time a shop may date the comment we wrote: the
# shop's clock may be behind ours by this much.
CLOCK_SKEW = dt.timedelta(minutes=2)

_ORDER_ID = re.compile(r"[0-9]{1,20}")


def body_signature(secret: str, body: bytes) -> bytes:
    """base64(HMAC-SHA256(secret, raw body)), standard alphabet with padding: how Shopify
    and Comptoir's PrestaShop and Magento modules sign what they send."""
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest())


def check_body_signature(secret: str, body: bytes, received: str, header: str) -> None:
    """Raise InvalidSignature unless `received` (the `header` sent) is the body's signature
    with `secret`, compared in constant time."""
    if not secret:
        raise InvalidSignature("no webhook secret is configured for this shop")
    if not received:
        raise InvalidSignature(f"the {header} header is missing")
    expected = body_signature(secret, body)
    if not hmac.compare_digest(expected, received.strip().encode("utf-8", "replace")):
        raise InvalidSignature(f"the {header} signature does not match")


def numeric_order_id(external_id: str, platform: str) -> str:
    """The order id as the shop's API takes it; NotFoundAtShop when it is not all digits."""
    value = (external_id or "").strip()
    if not _ORDER_ID.fullmatch(value):
        raise NotFoundAtShop(f"{external_id!r} is not a {platform} order id")
    return value


def same_text(left: str, right: str) -> bool:
    """Compare comment texts as a reader sees them (line endings and spacing aside)."""
    return " ".join(left.split()) == " ".join(right.split())


def may_be_ours(created_at: dt.datetime | None, since: dt.datetime | None) -> bool:
    """Whether a shop entry created at `created_at` may be the write of a comment queued at
    `since`. Without `since`, or when the shop gives the entry no date, it may."""
    if since is None or created_at is None:
        return True
    return created_at >= to_utc(since) - CLOCK_SKEW


def money(value: Any, field_name: str = "amount") -> Decimal:
    """Parse an amount sent as a string or a number, never through float."""
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, bool):
        raise BadPayload(f"{field_name}: expected an amount, got {value!r}")
    try:
        # str() of a JSON number keeps its decimal digits; float never enters.
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise BadPayload(f"{field_name}: {value!r} is not an amount") from exc
    if not amount.is_finite():
        raise BadPayload(f"{field_name}: {value!r} is not an amount")
    # PrestaShop sends six decimals ("12.500000"); amounts are kept to the cent.
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


PRICE_PRECISION = Decimal("0.000001")


def price(value: Any, field_name: str = "price") -> Decimal:
    """Parse a unit price at the shop's precision (up to six decimals, at least two)."""
    if value is None or value == "":
        return Decimal("0.00")
    if isinstance(value, bool):
        raise BadPayload(f"{field_name}: expected an amount, got {value!r}")
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise BadPayload(f"{field_name}: {value!r} is not an amount") from exc
    if not amount.is_finite():
        raise BadPayload(f"{field_name}: {value!r} is not an amount")
    return trim_price(amount.quantize(PRICE_PRECISION, rounding=ROUND_HALF_UP))


def rate(value: Any, field_name: str = "tax rate") -> Decimal:
    """Parse a tax rate in percent (20 or "20.000")."""
    if value is None or value == "":
        return Decimal("0")
    try:
        parsed = Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise BadPayload(f"{field_name}: {value!r} is not a rate") from exc
    if not parsed.is_finite() or parsed < 0 or parsed > 100:
        raise BadPayload(f"{field_name}: {value!r} is not a rate")
    return parsed.quantize(Decimal("0.0001"))


def reject(item: Any, exc: BadPayload) -> RejectedOrder:
    """Describe one unreadable order of a page (its id when there is one, and its raw data)."""
    external_id = ""
    if isinstance(item, Mapping):
        external_id = str(item.get("id") or item.get("entity_id") or "")
    raw = item if isinstance(item, bytes) else json.dumps(item, default=str).encode()
    return RejectedOrder(external_id=external_id, error=str(exc), raw=raw)


def to_utc(value: dt.datetime) -> dt.datetime:
    """Convert an aware datetime to UTC; a naive one is refused."""
    if value.tzinfo is None:
        raise BadPayload(f"timestamp {value.isoformat()} has no timezone")
    return value.astimezone(dt.UTC)
