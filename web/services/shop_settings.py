"""Shop settings: edit a shop, its mappings, talk to it from the settings page, start syncs.

Secrets are write-only: a blank field keeps the stored value, and only the webhook secret
is ever shown back (the merchant pastes it into the shop). The API credentials belong to the
shop's address: changing the address clears them, so they are never sent to the new one.
A mapping change re-queues the latest delivery of every order parked on a mapping, so the
order flows as soon as the sync loop picks it up.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from web import queue
from web.connectors.base import (
    AddressRefused,
    AuthFailed,
    BadPayload,
    Connector,
    ConnectorError,
    NotFoundAtShop,
    PlatformUnavailable,
    RateLimited,
    Redirected,
    ShopChoice,
    TimedOut,
    TlsFailed,
)
from web.i18n import N_
from web.models import (
    CarrierMapping,
    InboxEvent,
    Job,
    MilestoneMapping,
    Order,
    PaymentMethodMapping,
    ShippingMode,
    Shop,
    StatusMapping,
    User,
    utcnow,
)
from web.models.enums import (
    InboxState,
    IssuePolicy,
    JobState,
    Milestone,
    Platform,
    ShopStatusMeaning,
)
from web.services import intake, shops
from web.services.audit import record_audit
from web.services.errors import NotFound, ValidationFailed
from web.services.order_queries import DESK_TZ
from web.textfold import fold_text

log = logging.getLogger(__name__)

MIN_POLL_INTERVAL = 30  # web.services.sync.due_shops polls no shop more often
# Platforms whose webhooks Comptoir can subscribe to through the shop's API.
REGISTERED_PLATFORMS = (Platform.SHOPIFY, Platform.WOOCOMMERCE)
MAX_POLL_INTERVAL = 86_400
BACKFILL_MAX_DAYS = 366
SECRET_FIELDS = ("api_key", "api_secret", "webhook_secret")
# Sent to the shop with every API call, so they go with its address. The webhook secret
# stays: Comptoir never sends it with a call, it checks what the shop sends us.
API_CREDENTIALS = ("api_key", "api_secret")
FLAG_FIELDS = (
    "is_active",
    "push_statuses",
    "push_tracking",
    "notify_shipments",
    "push_comments",
    "push_internal_comments",
    "show_documents_in_account",
)
EDITABLE_FIELDS = frozenset(
    (
        "name",
        "base_url",
        "import_from",
        "poll_interval_seconds",
        "invoice_policy",
        "api_calls_per_second",
        *SECRET_FIELDS,
        *FLAG_FIELDS,
    )
)
SYNC_JOB = "sync.shop"
BACKFILL_JOB = "sync.backfill"


# --- The shop itself -------------------------------------------------------------------------


def _clean_interval(value: Any) -> int:
    try:
        seconds = int(str(value).strip())
    except ValueError as exc:
        raise ValueError(N_("Enter a number of seconds.")) from exc
    if seconds < MIN_POLL_INTERVAL:
        raise ValueError(N_("The shop cannot be polled more often than every 30 seconds."))
    if seconds > MAX_POLL_INTERVAL:
        raise ValueError(N_("Poll the shop at least once a day (86400 seconds)."))
    return seconds


def _clean_date(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(N_("Enter a date as YYYY-MM-DD.")) from exc


MAX_CALLS_PER_SECOND = Decimal("1000")


def _clean_calls_per_second(value: Any) -> Decimal | None:
    """Blank: the platform's default pace; else requests per second, up to two decimals."""
    text = str(value or "").strip().replace(",", ".")
    if not text:
        return None
    try:
        rate = Decimal(text)
    except InvalidOperation as exc:
        raise ValueError(N_("Enter a number of requests per second, such as 2 or 20.")) from exc
    if not rate.is_finite() or rate <= 0 or rate > MAX_CALLS_PER_SECOND:
        raise ValueError(N_("Enter a number of requests per second, such as 2 or 20."))
    rate = rate.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if rate <= 0:
        raise ValueError(N_("Enter a number of requests per second, such as 2 or 20."))
    return rate


def _clean_name(value: Any) -> str:
    name = str(value or "").strip()
    if not name:
        raise ValueError(N_("The shop needs a name."))
    if len(name) > 120:
        raise ValueError(N_("Keep the name under 120 characters."))
    return name


def _clean_policy(value: Any) -> IssuePolicy:
    try:
        return IssuePolicy(value)
    except ValueError as exc:
        raise ValueError(N_("Choose an invoicing policy from the list.")) from exc


def _clean_secret(value: Any) -> str:
    secret = str(value).strip()
    if len(secret) > 1000:
        raise ValueError(N_("This value is too long."))
    return secret


_CLEANERS: dict[str, Callable[[Any], Any]] = {
    "name": _clean_name,
    "base_url": shops.clean_base_url,
    "import_from": _clean_date,
    "poll_interval_seconds": _clean_interval,
    "invoice_policy": _clean_policy,
    "api_calls_per_second": _clean_calls_per_second,
    **{name: _clean_secret for name in SECRET_FIELDS},
    **{name: bool for name in FLAG_FIELDS},
}


def clean_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Check every field at once; ValidationFailed names each refused one.

    A blank or missing secret is left out of the result, so the stored one stays.
    """
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise TypeError(f"not editable: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, raw in fields.items():
        if name in SECRET_FIELDS and (raw is None or not str(raw).strip()):
            continue
        try:
            values[name] = _CLEANERS[name](raw)
        except ValueError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationFailed(N_("Some fields need fixing."), errors)
    return values


def update_shop(
    session: Session,
    shop: Shop,
    *,
    actor: User | None = None,
    address: str = "",
    **fields: Any,
) -> Shop:
    """Change the shop's settings; secrets only change when a new value is typed.

    A new address clears the API credentials not typed again with it, and is audited.
    """
    values = clean_fields(fields)
    new_url = values.get("base_url")
    if new_url is not None and new_url != shop.base_url:
        for name in API_CREDENTIALS:
            values.setdefault(name, None)
        record_audit(
            session,
            "shop.url_changed",
            actor=actor,
            address=address,
            params={"shop": shop.name, "old_url": shop.base_url, "new_url": new_url},
        )
    for name, value in values.items():
        setattr(shop, name, value)
    session.flush()
    return shop


def needs_credentials(shop: Shop) -> bool:
    """Whether the shop has no API key to call it with (never set, or cleared by a new address)."""
    return not shop.api_key


def add_shop(session: Session, platform: Platform | str, **fields: Any) -> Shop:
    """Create a shop from the settings form, with the platform's suggested mappings."""
    errors: dict[str, str] = {}
    try:
        platform = Platform(platform)
    except ValueError:
        errors["platform"] = N_("Choose the shop's platform.")
    fields = {"name": "", "base_url": "", **fields}
    try:
        values = clean_fields(fields)
    except ValidationFailed as exc:
        errors.update(exc.errors)
        values = {}
    if errors:
        raise ValidationFailed(N_("Some fields need fixing."), errors)
    shop = shops.create_shop(
        session,
        platform,
        values.pop("name"),
        values.pop("base_url"),
        webhook_secret=values.pop("webhook_secret", None),
        api_key=values.pop("api_key", None),
        api_secret=values.pop("api_secret", None),
        import_from=values.pop("import_from", None),
    )
    if shop.webhook_secret is None and platform_has_webhooks(shop):
        # The merchant pastes our secret into the shop (or the shop's into ours later).
        shop.webhook_secret = secrets.token_urlsafe(32)
    for name, value in values.items():
        setattr(shop, name, value)
    session.flush()
    return shop


def get_shop(session: Session, key: str) -> Shop:
    """The shop with this key; NotFound otherwise."""
    return shops.get_by_key(session, key)


def platform_has_webhooks(shop: Shop) -> bool:
    """Whether the shop's platform sends signed deliveries: every one does (PrestaShop and
    Magento through Comptoir's module: sends_notifications)."""
    return shop.platform in (*REGISTERED_PLATFORMS, *shops.NOTIFYING_PLATFORMS)


def sends_notifications(shop: Shop) -> bool:
    """Whether the shop's changes come as Comptoir's change notifications, from the module
    the merchant installs in the shop (PrestaShop, Magento)."""
    return shop.platform in shops.NOTIFYING_PLATFORMS


@dataclass(frozen=True)
class NotificationStatus:
    """What the settings page tells of a shop's change notifications and change probe."""

    last_at: dt.datetime | None
    last_event: str
    today: int
    probed_at: dt.datetime | None
    interval_seconds: int


def notification_status(
    shop: Shop, probed_at: dt.datetime | None, now: dt.datetime | None = None
) -> NotificationStatus:
    """The last notification verified (pings included), how many came today (Paris days),
    and when the change probe (the orders flow's poll) last ran."""
    today = (now or utcnow()).astimezone(DESK_TZ).date()
    return NotificationStatus(
        last_at=shop.notified_at,
        last_event=shop.notified_event,
        today=shop.notified_count if shop.notified_day == today else 0,
        probed_at=probed_at,
        interval_seconds=shop.poll_interval_seconds,
    )


def can_register_webhooks(shop: Shop) -> bool:
    """Whether Comptoir can subscribe to the shop's webhooks through its API."""
    return shop.platform in REGISTERED_PLATFORMS and bool(shop.api_key)


def regenerate_webhook_secret(session: Session, shop: Shop) -> str:
    """Give the shop a new random webhook secret and return it."""
    shop.webhook_secret = secrets.token_urlsafe(32)
    session.flush()
    return shop.webhook_secret


# --- Talking to the shop ---------------------------------------------------------------------


@dataclass(frozen=True)
class ShopAnswer:
    """What the shop answered: ok with a description, or the kind of failure.

    kind is one of ok, no_credentials, refused_address, unreachable, timeout, tls, redirect,
    status, auth, rate_limited, not_found, unsupported, error. A failure's detail is our own
    summary ("HTTP 502"), never what the other end said: the address may lead anywhere.
    """

    ok: bool
    kind: str
    detail: str = ""
    items: tuple[str, ...] = ()


# Checked in this order: a TimedOut is also a PlatformUnavailable.
_FAILURE_KINDS: tuple[tuple[type[Exception], str], ...] = (
    (AddressRefused, "refused_address"),
    (TimedOut, "timeout"),
    (TlsFailed, "tls"),
    (Redirected, "redirect"),
    (AuthFailed, "auth"),
    (RateLimited, "rate_limited"),
    (NotFoundAtShop, "not_found"),
    (BadPayload, "not_found"),
    (NotImplementedError, "unsupported"),
    (ImportError, "unsupported"),
)


def _failure(exc: Exception) -> ShopAnswer:
    status = exc.status if isinstance(exc, ConnectorError) else None
    kind = next((kind for cls, kind in _FAILURE_KINDS if isinstance(exc, cls)), None)
    if kind is None and status is not None:
        kind = "status"
    elif kind is None:
        kind = "unreachable" if isinstance(exc, PlatformUnavailable) else "error"
    return ShopAnswer(False, kind, f"HTTP {status}" if status is not None else "")


def _connect(shop: Shop) -> Connector:
    try:
        return shops.connector_for(shop)
    except ImportError as exc:  # a platform whose connector is not installed yet
        raise NotImplementedError(f"no connector for {shop.platform.value}") from exc


def _close(connector: Connector) -> None:
    close = getattr(connector, "close", None)
    if callable(close):
        close()


def test_connection(shop: Shop, connector: Connector | None = None) -> ShopAnswer:
    """Call a cheap authenticated endpoint of the shop and say how it went."""
    if needs_credentials(shop) and connector is None:
        return ShopAnswer(False, "no_credentials")
    try:
        connector = connector or _connect(shop)
        try:
            return ShopAnswer(True, "ok", connector.test_connection())
        finally:
            _close(connector)
    except (ConnectorError, NotImplementedError) as exc:
        log.info("connection test of shop %s failed: %s", shop.key, exc)
        return _failure(exc)


def register_webhooks(
    session: Session, shop: Shop, base_url: str, connector: Connector | None = None
) -> ShopAnswer:
    """Subscribe Comptoir's webhook URL to the shop's order topics through its API."""
    if shop.platform not in REGISTERED_PLATFORMS:
        return ShopAnswer(False, "unsupported", f"{shop.platform.value} sends no webhooks")
    if shop.platform == Platform.SHOPIFY and not shop.webhook_secret and shop.api_secret:
        # Webhooks created through the API are signed with the app's client secret.
        shop.webhook_secret = shop.api_secret
        session.flush()
    try:
        connector = connector or _connect(shop)
        register = getattr(connector, "register_webhooks", None)
        if register is None:
            raise NotImplementedError(f"{shop.platform.value} connector cannot register webhooks")
        try:
            created = register(shops.webhook_url(base_url, shop))
        finally:
            _close(connector)
    except (ConnectorError, NotImplementedError) as exc:
        log.info("webhook registration for shop %s failed: %s", shop.key, exc)
        return _failure(exc)
    return ShopAnswer(True, "ok", items=tuple(created))


# --- Mappings --------------------------------------------------------------------------------


def _required(value: str, field_name: str, max_length: int) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(N_("Required."), {field_name: N_("Required.")})
    if len(text) > max_length:
        raise ValidationFailed(
            N_("This value is too long."), {field_name: N_("This value is too long.")}
        )
    return text


def _meaning(value: ShopStatusMeaning | str) -> ShopStatusMeaning:
    try:
        return ShopStatusMeaning(value)
    except ValueError as exc:
        message = N_("Choose what this status means.")
        raise ValidationFailed(message, {"meaning": message}) from exc


def _owned(session: Session, model: type[Any], shop: Shop, mapping_id: int) -> Any:
    mapping = session.get(model, mapping_id)
    if mapping is None or mapping.shop_id != shop.id:
        raise NotFound(f"no {model.__name__} {mapping_id} for shop {shop.key}")
    return mapping


def set_status_mapping(
    session: Session,
    shop: Shop,
    shop_status: str,
    meaning: ShopStatusMeaning | str,
    label: str | None = None,
) -> StatusMapping:
    """Say what one of the shop's statuses means (added, or changed when it exists)."""
    shop_status = _required(shop_status, "shop_status", 120)
    chosen = _meaning(meaning)
    mapping = next((m for m in shop.status_mappings if m.shop_status == shop_status), None)
    if mapping is None:
        mapping = StatusMapping(shop_status=shop_status, meaning=chosen, label="")
        shop.status_mappings.append(mapping)
    mapping.meaning = chosen
    if label is not None:
        mapping.label = label.strip()[:120]
    session.flush()
    requeue_parked_orders(session, shop)
    return mapping


def delete_status_mapping(session: Session, shop: Shop, mapping_id: int) -> None:
    """Forget a status mapping; orders arriving with that status will park again."""
    mapping = _owned(session, StatusMapping, shop, mapping_id)
    shop.status_mappings.remove(mapping)
    session.flush()


def set_carrier_mapping(
    session: Session, shop: Shop, shop_label: str, shipping_mode_id: int | str
) -> CarrierMapping:
    """Resolve one of the shop's shipping labels to a shipping mode."""
    shop_label = _required(shop_label, "shop_label", 200)
    mode = None
    if str(shipping_mode_id).strip().isdigit():
        mode = session.get(ShippingMode, int(shipping_mode_id))
    mapping = next((m for m in shop.carrier_mappings if m.shop_label == shop_label), None)
    # A deactivated mode is no longer a choice; a mapping that has it may keep it.
    if mode is None or not (mode.is_active or (mapping and mapping.shipping_mode_id == mode.id)):
        message = N_("Choose a shipping mode.")
        raise ValidationFailed(message, {"shipping_mode_id": message})
    if mapping is None:
        mapping = CarrierMapping(shop_label=shop_label, shipping_mode=mode)
        shop.carrier_mappings.append(mapping)
    mapping.shipping_mode = mode
    session.flush()
    requeue_parked_orders(session, shop)
    return mapping


def delete_carrier_mapping(session: Session, shop: Shop, mapping_id: int) -> None:
    """Forget a carrier mapping."""
    mapping = _owned(session, CarrierMapping, shop, mapping_id)
    shop.carrier_mappings.remove(mapping)
    session.flush()


def set_payment_mapping(
    session: Session,
    shop: Shop,
    shop_method: str,
    label: str | None = None,
    counts_as_payment: bool = True,
) -> PaymentMethodMapping:
    """Name one of the shop's payment methods and say whether its money counts as paid."""
    shop_method = _required(shop_method, "shop_method", 120)
    mapping = next((m for m in shop.payment_mappings if m.shop_method == shop_method), None)
    if mapping is None:
        mapping = PaymentMethodMapping(shop_method=shop_method, label="")
        shop.payment_mappings.append(mapping)
    if label is not None:
        mapping.label = label.strip()[:120]
    mapping.counts_as_payment = counts_as_payment
    session.flush()
    requeue_parked_orders(session, shop)
    return mapping


def delete_payment_mapping(session: Session, shop: Shop, mapping_id: int) -> None:
    """Forget a payment method mapping."""
    mapping = _owned(session, PaymentMethodMapping, shop, mapping_id)
    shop.payment_mappings.remove(mapping)
    session.flush()


def set_milestone_mapping(
    session: Session,
    shop: Shop,
    milestone: Milestone | str,
    shop_status: str,
    enabled: bool = True,
) -> MilestoneMapping:
    """Choose the shop status a milestone is pushed as, and whether it is pushed."""
    try:
        chosen = Milestone(milestone)
    except ValueError as exc:
        message = N_("Choose a milestone from the list.")
        raise ValidationFailed(message, {"milestone": message}) from exc
    shop_status = _required(shop_status, "shop_status", 120)
    mapping = next((m for m in shop.milestone_mappings if m.milestone == chosen), None)
    if mapping is None:
        mapping = MilestoneMapping(milestone=chosen, shop_status=shop_status)
        shop.milestone_mappings.append(mapping)
    mapping.shop_status = shop_status
    mapping.enabled = enabled
    session.flush()
    return mapping


def delete_milestone_mapping(session: Session, shop: Shop, mapping_id: int) -> None:
    """Stop pushing a milestone to the shop at all."""
    mapping = _owned(session, MilestoneMapping, shop, mapping_id)
    shop.milestone_mappings.remove(mapping)
    session.flush()


MAPPING_MODELS: dict[str, type[Any]] = {
    "statuses": StatusMapping,
    "milestones": MilestoneMapping,
    "carriers": CarrierMapping,
    "payments": PaymentMethodMapping,
}


def get_mapping(session: Session, shop: Shop, kind: str, mapping_id: int) -> Any:
    """One mapping row of the shop, by kind (statuses, milestones, carriers, payments)."""
    if kind not in MAPPING_MODELS:
        raise NotFound(f"no mapping kind {kind!r}")
    return _owned(session, MAPPING_MODELS[kind], shop, mapping_id)


def save_mapping(session: Session, shop: Shop, kind: str, form: Mapping[str, str]) -> Any:
    """Add or change a mapping from a submitted form (checkboxes absent mean off)."""
    if kind == "statuses":
        return set_status_mapping(
            session, shop, form.get("shop_status", ""), form.get("meaning", ""), form.get("label")
        )
    if kind == "milestones":
        return set_milestone_mapping(
            session,
            shop,
            form.get("milestone", ""),
            form.get("shop_status", ""),
            enabled="enabled" in form,
        )
    if kind == "carriers":
        return set_carrier_mapping(
            session, shop, form.get("shop_label", ""), form.get("shipping_mode_id", "")
        )
    if kind == "payments":
        return set_payment_mapping(
            session,
            shop,
            form.get("shop_method", ""),
            form.get("label"),
            counts_as_payment="counts_as_payment" in form,
        )
    raise NotFound(f"no mapping kind {kind!r}")


def update_mapping(
    session: Session, shop: Shop, kind: str, mapping_id: int, form: Mapping[str, str]
) -> Any:
    """Change one mapping row from its form; the row's shop value (or milestone) stays."""
    mapping = get_mapping(session, shop, kind, mapping_id)
    fixed = {
        "statuses": "shop_status",
        "milestones": "milestone",
        "carriers": "shop_label",
        "payments": "shop_method",
    }[kind]
    return save_mapping(session, shop, kind, {**form, fixed: str(getattr(mapping, fixed))})


def delete_mapping(session: Session, shop: Shop, kind: str, mapping_id: int) -> None:
    """Remove one mapping row of the shop."""
    deleters: dict[str, Callable[[Session, Shop, int], None]] = {
        "statuses": delete_status_mapping,
        "milestones": delete_milestone_mapping,
        "carriers": delete_carrier_mapping,
        "payments": delete_payment_mapping,
    }
    if kind not in deleters:
        raise NotFound(f"no mapping kind {kind!r}")
    deleters[kind](session, shop, mapping_id)


def shipping_modes(session: Session) -> list[ShippingMode]:
    """The active shipping modes, by name."""
    return list(
        session.scalars(
            select(ShippingMode).where(ShippingMode.is_active.is_(True)).order_by(ShippingMode.name)
        )
    )


def requeue_parked_orders(session: Session, shop: Shop) -> int:
    """Replay the latest delivery of each order parked on a mapping; return how many."""
    external_ids = list(
        session.scalars(
            select(Order.external_id).where(Order.shop_id == shop.id, Order.needs_mapping.is_(True))
        )
    )
    count = 0
    for external_id in external_ids:
        event = session.scalar(
            select(InboxEvent)
            .where(
                InboxEvent.shop_id == shop.id,
                InboxEvent.external_order_id == external_id,
                InboxEvent.state != InboxState.REJECTED,
            )
            .order_by(InboxEvent.received_at.desc(), InboxEvent.id.desc())
            .limit(1)
        )
        if event is None or event.state == InboxState.PENDING:
            continue
        event.state = InboxState.PENDING
        event.attempts = 0
        event.next_attempt_at = None
        intake.announce_event(session, event.id, shop.id, event.external_order_id)
        count += 1
    session.flush()
    return count


# --- What the shop offers, and what blocks orders --------------------------------------------

# Checked in this order: "En attente de paiement" is awaiting payment, not paid.
_MEANING_WORDS: tuple[tuple[tuple[str, ...], ShopStatusMeaning], ...] = (
    (("annul", "cancel"), ShopStatusMeaning.CANCELLED),
    (("rembours", "refund"), ShopStatusMeaning.REFUNDED),
    (
        ("attente", "pending", "await", "failed", "echec", "erreur"),
        ShopStatusMeaning.AWAITING_PAYMENT,
    ),
    (("expedi", "ship"), ShopStatusMeaning.SHIPPED),
    (("livr", "deliver", "complete", "termin"), ShopStatusMeaning.COMPLETED),
    (("prepar", "process", "en cours"), ShopStatusMeaning.PROCESSING),
    (("pay", "paid", "paie", "accept"), ShopStatusMeaning.PAID),
    (("hold", "suspend", "fraud", "review", "bloqu"), ShopStatusMeaning.ON_HOLD),
    (("draft", "brouillon"), ShopStatusMeaning.IGNORE),
)


def suggest_meaning(*texts: str) -> ShopStatusMeaning | None:
    """Guess what a shop status means from its code and label (a suggestion only)."""
    folded = " ".join(fold_text(text) for text in texts if text)
    for words, meaning in _MEANING_WORDS:
        if any(word in folded for word in words):
            return meaning
    return None


@dataclass(frozen=True)
class StatusChoice:
    code: str
    label: str
    meaning: ShopStatusMeaning | None
    suggested: ShopStatusMeaning | None
    blocking: int = 0


@dataclass(frozen=True)
class CarrierChoice:
    label: str
    shipping_mode: ShippingMode | None
    suggested: ShippingMode | None
    blocking: int = 0


@dataclass(frozen=True)
class PaymentChoice:
    code: str
    label: str
    mapped: bool
    blocking: int = 0


@dataclass
class Blocking:
    """Values of parked orders that no mapping covers, with how many orders each blocks."""

    statuses: list[StatusChoice] = field(default_factory=list)
    carriers: list[CarrierChoice] = field(default_factory=list)
    payment_methods: list[PaymentChoice] = field(default_factory=list)
    orders: int = 0

    def __bool__(self) -> bool:
        return bool(self.statuses or self.carriers or self.payment_methods)


@dataclass
class Catalog:
    """The shop's own statuses, carriers and payment methods, each with its mapping state."""

    statuses: list[StatusChoice] = field(default_factory=list)
    carriers: list[CarrierChoice] = field(default_factory=list)
    payment_methods: list[PaymentChoice] = field(default_factory=list)
    errors: dict[str, ShopAnswer] = field(default_factory=dict)


def blocking_values(session: Session, shop: Shop) -> Blocking:
    """What the shop's parked orders carry that no mapping covers yet."""
    parked = session.execute(
        select(Order.shop_status, Order.shipping_label, Order.payment_method).where(
            Order.shop_id == shop.id, Order.needs_mapping.is_(True)
        )
    ).all()
    statuses = {m.shop_status for m in shop.status_mappings}
    carriers = {m.shop_label for m in shop.carrier_mappings}
    methods = {m.shop_method for m in shop.payment_mappings}
    status_counts = Counter(s for s, _, _ in parked if s and s not in statuses)
    carrier_counts = Counter(c for _, c, _ in parked if c and c not in carriers)
    method_counts = Counter(p for _, _, p in parked if p and p not in methods)
    modes = shipping_modes(session)
    return Blocking(
        statuses=[
            StatusChoice(code, code, None, suggest_meaning(code), count)
            for code, count in status_counts.most_common()
        ],
        carriers=[
            CarrierChoice(label, None, shops.suggest_shipping_mode(label, modes), count)
            for label, count in carrier_counts.most_common()
        ],
        payment_methods=[
            PaymentChoice(code, code, False, count) for code, count in method_counts.most_common()
        ],
        orders=len(parked),
    )


def _shop_list(
    name: str, fetch: Callable[[], list[ShopChoice]], errors: dict[str, ShopAnswer]
) -> list[ShopChoice]:
    try:
        return list(fetch())
    except (ConnectorError, NotImplementedError) as exc:
        errors[name] = _failure(exc)
        return []


def _merge(
    choices: Iterable[ShopChoice], blocked: Iterable[tuple[str, int]]
) -> list[tuple[str, str, int]]:
    counts = dict(blocked)
    rows = [(c.code, c.label or c.code, counts.pop(c.code, 0)) for c in choices]
    return rows + [(code, code, count) for code, count in counts.items()]


def shop_catalog(session: Session, shop: Shop, connector: Connector | None = None) -> Catalog:
    """Ask the shop for its statuses, carriers and payment methods, with suggestions."""
    catalog = Catalog()
    blocking = blocking_values(session, shop)
    try:
        connector = connector or _connect(shop)
    except NotImplementedError as exc:
        failure = _failure(exc)
        catalog.errors = {"statuses": failure, "carriers": failure, "payment_methods": failure}
        connector = None
    if connector is not None:
        try:
            statuses = _shop_list("statuses", connector.list_statuses, catalog.errors)
            carriers = _shop_list("carriers", connector.list_carriers, catalog.errors)
            methods = _shop_list("payment_methods", connector.list_payment_methods, catalog.errors)
        finally:
            _close(connector)
    else:
        statuses, carriers, methods = [], [], []
    meanings = {m.shop_status: m.meaning for m in shop.status_mappings}
    for code, label, count in _merge(statuses, ((s.code, s.blocking) for s in blocking.statuses)):
        catalog.statuses.append(
            StatusChoice(code, label, meanings.get(code), suggest_meaning(code, label), count)
        )
    modes = shipping_modes(session)
    by_label = {m.shop_label: m.shipping_mode for m in shop.carrier_mappings}
    # A carrier's code is what orders carry as their shipping label.
    for code, label, count in _merge(carriers, ((c.label, c.blocking) for c in blocking.carriers)):
        catalog.carriers.append(
            CarrierChoice(
                code, by_label.get(code), shops.suggest_shipping_mode(label, modes), count
            )
        )
    mapped_methods = {m.shop_method for m in shop.payment_mappings}
    for code, label, count in _merge(
        methods, ((p.code, p.blocking) for p in blocking.payment_methods)
    ):
        catalog.payment_methods.append(PaymentChoice(code, label, code in mapped_methods, count))
    return catalog


# --- Sync now and backfill -------------------------------------------------------------------


def _open_job(session: Session, kind: str, shop: Shop) -> Job | None:
    jobs = session.scalars(
        select(Job).where(Job.kind == kind, Job.state.in_((JobState.QUEUED, JobState.RUNNING)))
    )
    return next((job for job in jobs if job.payload.get("shop_id") == shop.id), None)


def open_jobs(session: Session, shop: Shop) -> list[Job]:
    """The shop's sync and backfill jobs still queued or running."""
    jobs = [_open_job(session, kind, shop) for kind in (SYNC_JOB, BACKFILL_JOB)]
    return [job for job in jobs if job is not None]


def start_sync(session: Session, shop: Shop, created_by_id: int | None = None) -> Job:
    """Queue a poll of the shop now (or return the one already waiting)."""
    existing = _open_job(session, SYNC_JOB, shop)
    if existing is not None:
        return existing
    return queue.enqueue(session, SYNC_JOB, {"shop_id": shop.id}, created_by_id)


def start_backfill(
    session: Session,
    shop: Shop,
    since: dt.date | str | None,
    created_by_id: int | None = None,
    today: dt.date | None = None,
) -> Job:
    """Queue an import of the shop's orders changed since a date, at most a year back."""
    today = today or utcnow().date()
    try:
        day = _clean_date(since)
    except ValueError as exc:
        raise _since_error(str(exc)) from exc
    if day is None:
        raise _since_error(N_("Choose the date to import from."))
    if day > today:
        raise _since_error(N_("The date is in the future."))
    if (today - day).days > BACKFILL_MAX_DAYS:
        raise _since_error(N_("Import at most one year back."))
    since_at = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return queue.enqueue(
        session, BACKFILL_JOB, {"shop_id": shop.id, "since": since_at.isoformat()}, created_by_id
    )


def _since_error(message: str) -> ValidationFailed:
    return ValidationFailed(message, {"since": message})


def get_job(session: Session, shop: Shop, job_id: int) -> Job:
    """A sync or backfill job of this shop; NotFound otherwise."""
    job = session.get(Job, job_id)
    if job is None or job.kind not in (SYNC_JOB, BACKFILL_JOB):
        raise NotFound(f"no job {job_id}")
    if job.payload.get("shop_id") != shop.id:
        raise NotFound(f"job {job_id} is not about shop {shop.key}")
    return job
