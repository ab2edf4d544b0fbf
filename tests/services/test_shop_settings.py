"""Shop settings rules: validation, write-only secrets, mappings that unpark orders, the shop's
own lists with suggestions, connection tests and the sync jobs."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Sequence
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_shop
from web import aws, queue
from web.connectors.base import (
    AuthFailed,
    PlatformUnavailable,
    ShopAddress,
    ShopChoice,
    ShopCustomer,
    ShopLine,
    ShopOrder,
)
from web.connectors.codec import encode_order
from web.models import InboxEvent, Order, ShippingMode, Shop
from web.models.enums import InboxState, IssuePolicy, JobState, Role, ShopStatusMeaning
from web.services import intake, shop_settings, sync
from web.services.errors import NotFound, ValidationFailed
from web.services.users import create_user

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
M = ShopStatusMeaning


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def order_copy(external_id: str = "501", **changes: object) -> ShopOrder:
    """A small WooCommerce-like order as a connector hands it over."""
    values: dict[str, object] = {
        "external_id": external_id,
        "number": f"#{external_id}",
        "placed_at": T0,
        "updated_at": T0,
        "currency": "EUR",
        "status": "processing",
        "customer": ShopCustomer(email="lea@example.test", first_name="Léa"),
        "billing": ShopAddress(first_name="Léa", last_name="Roux", country_code="FR"),
        "shipping": None,
        "lines": (
            ShopLine(
                external_id="1",
                name="Savon",
                quantity=1,
                unit_price=Decimal("12.00"),
                total_gross=Decimal("12.00"),
            ),
        ),
        "grand_total": Decimal("12.00"),
        "payment_method": "bacs",
        "transactions": (),
    }
    values.update(changes)
    return ShopOrder(**values)  # type: ignore[arg-type]


def receive(
    session: Session, sessions: sessionmaker[Session], shop: Shop, copy: ShopOrder
) -> InboxEvent:
    """Store the order as a polled delivery and run the inbox, as the sync loop would."""
    received = intake.store_event(
        session,
        shop,
        intake.POLL_TOPIC,
        sync.poll_dedupe_key(copy.external_id, copy.updated_at),
        copy.external_id,
        encode_order(copy),
        {},
    )
    session.commit()
    sync.process_pending(sessions, shop.id)
    session.expire_all()
    assert received.event is not None
    return received.event


@pytest.fixture()
def woo(db_session: Session) -> Shop:
    return shop_settings.add_shop(
        db_session,
        "woocommerce",
        name="Atelier Paris",
        base_url="https://atelier.example.fr/",
        api_key="ck_old",
        api_secret="cs_old",
    )


# --- The shop --------------------------------------------------------------------------------


def test_add_shop_reports_every_bad_field_at_once(db_session: Session) -> None:
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.add_shop(
            db_session, "oscommerce", name=" ", base_url="ftp://x", poll_interval_seconds="10"
        )
    assert set(caught.value.errors) == {"platform", "name", "base_url", "poll_interval_seconds"}
    assert db_session.scalars(select(Shop)).all() == []


def test_add_shop_gives_webhook_platforms_a_secret_and_suggested_mappings(
    db_session: Session,
) -> None:
    shopify = shop_settings.add_shop(
        db_session, "shopify", name="Lumière", base_url="https://lumiere.myshopify.com"
    )
    presta = shop_settings.add_shop(
        db_session, "prestashop", name="Épicerie", base_url="https://epicerie.example.fr"
    )
    assert shopify.webhook_secret and len(shopify.webhook_secret) >= 32
    # Comptoir's PrestaShop module signs its change notifications with one too.
    assert presta.webhook_secret and len(presta.webhook_secret) >= 32
    assert presta.poll_interval_seconds == 30 and shopify.poll_interval_seconds == 300
    assert {m.shop_status for m in presta.status_mappings} >= {"1", "2", "6"}


def test_update_keeps_secrets_left_blank_and_replaces_typed_ones(
    db_session: Session, woo: Shop
) -> None:
    shop_settings.update_shop(db_session, woo, api_key="", api_secret="  cs_new  ", name="Paris")
    assert (woo.api_key, woo.api_secret, woo.name) == ("ck_old", "cs_new", "Paris")
    shop_settings.update_shop(db_session, woo, api_key=None, webhook_secret="")
    assert woo.api_key == "ck_old" and woo.webhook_secret


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_url", "atelier.example.fr"),
        ("base_url", "javascript:alert(1)"),
        ("poll_interval_seconds", "29"),
        ("poll_interval_seconds", "soon"),
        ("import_from", "02/03/2026"),
        ("invoice_policy", "whenever"),
        ("name", ""),
    ],
)
def test_update_refuses_bad_values_and_changes_nothing(
    db_session: Session, woo: Shop, field: str, value: str
) -> None:
    before = (woo.name, woo.base_url, woo.poll_interval_seconds, woo.import_from)
    # A valid change next to the refused one is not applied either.
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.update_shop(db_session, woo, **{"poll_interval_seconds": 120, field: value})
    assert field in caught.value.errors
    assert (woo.name, woo.base_url, woo.poll_interval_seconds, woo.import_from) == before


def test_update_accepts_form_values(db_session: Session, woo: Shop) -> None:
    shop_settings.update_shop(
        db_session,
        woo,
        base_url="http://127.0.0.1:8080/shop/",
        poll_interval_seconds="60",
        import_from="2026-01-15",
        invoice_policy="on_shipment",
        show_documents_in_account=True,
        is_active=False,
    )
    assert woo.base_url == "http://127.0.0.1:8080/shop"
    assert woo.poll_interval_seconds == 60
    assert woo.import_from == dt.date(2026, 1, 15)
    assert woo.invoice_policy == IssuePolicy.ON_SHIPMENT
    assert woo.show_documents_in_account and not woo.is_active


def test_update_refuses_fields_that_are_not_settings(db_session: Session, woo: Shop) -> None:
    with pytest.raises(TypeError):
        shop_settings.update_shop(db_session, woo, key="stolen")


# --- Mappings --------------------------------------------------------------------------------


def test_mapping_a_status_unparks_the_orders_waiting_for_it(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop
) -> None:
    event = receive(db_session, session_factory, woo, order_copy(status="wc-awaiting-shipment"))
    order = db_session.scalars(select(Order)).one()
    assert order.needs_mapping
    assert [i["value"] for i in order.mapping_issues] == ["wc-awaiting-shipment"]
    assert event.state == InboxState.PROCESSED

    shop_settings.set_status_mapping(
        db_session, woo, "wc-awaiting-shipment", "paid", "Awaiting shipment"
    )
    assert (event.state, event.attempts, event.next_attempt_at) == (InboxState.PENDING, 0, None)
    db_session.commit()
    sync.process_pending(session_factory, woo.id)
    db_session.expire_all()
    assert not order.needs_mapping and order.mapping_issues == []
    assert event.state == InboxState.PROCESSED


def test_requeue_takes_the_latest_delivery_of_each_parked_order(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop
) -> None:
    first = receive(db_session, session_factory, woo, order_copy(payment_method="lydia"))
    later = T0 + dt.timedelta(hours=1)
    second = receive(
        db_session, session_factory, woo, order_copy(payment_method="lydia", updated_at=later)
    )
    receive(db_session, session_factory, woo, order_copy("502"))  # fine, not parked

    shop_settings.set_payment_mapping(db_session, woo, "lydia", "Lydia", counts_as_payment=True)
    assert second.state == InboxState.PENDING
    assert first.state == InboxState.PROCESSED
    pending = db_session.scalars(
        select(InboxEvent).where(InboxEvent.state == InboxState.PENDING)
    ).all()
    assert pending == [second]


def test_status_mapping_is_added_then_changed_in_place(db_session: Session, woo: Shop) -> None:
    added = shop_settings.set_status_mapping(db_session, woo, "wc-packed", "processing", "Emballé")
    changed = shop_settings.set_status_mapping(db_session, woo, "wc-packed", M.SHIPPED)
    assert added is changed
    assert (changed.meaning, changed.label) == (M.SHIPPED, "Emballé")
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.set_status_mapping(db_session, woo, "wc-packed", "teleported")
    assert "meaning" in caught.value.errors
    with pytest.raises(ValidationFailed):
        shop_settings.set_status_mapping(db_session, woo, "  ", "paid")


def test_carrier_payment_and_milestone_mappings(db_session: Session, woo: Shop) -> None:
    mondial = db_session.scalars(
        select(ShippingMode).where(ShippingMode.code == "mondial_relay")
    ).one()
    carrier = shop_settings.set_carrier_mapping(db_session, woo, "Point Relais", str(mondial.id))
    assert carrier.shipping_mode is mondial
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.set_carrier_mapping(db_session, woo, "Point Relais", "")
    assert "shipping_mode_id" in caught.value.errors

    payment = shop_settings.set_payment_mapping(db_session, woo, "cod", counts_as_payment=False)
    assert payment.counts_as_payment is False

    milestone = shop_settings.set_milestone_mapping(
        db_session, woo, "completed", "wc-delivered", enabled=False
    )
    assert (milestone.shop_status, milestone.enabled) == ("wc-delivered", False)
    with pytest.raises(ValidationFailed):
        shop_settings.set_milestone_mapping(db_session, woo, "teleported", "x")

    shop_settings.delete_mapping(db_session, woo, "carriers", carrier.id)
    shop_settings.delete_mapping(db_session, woo, "milestones", milestone.id)
    assert woo.carrier_mappings == []
    assert "completed" not in {m.milestone for m in woo.milestone_mappings}


def test_a_mapping_of_another_shop_cannot_be_reached(db_session: Session, woo: Shop) -> None:
    other = make_shop(db_session, "other")
    mapping = shop_settings.set_status_mapping(db_session, other, "x", "paid")
    with pytest.raises(NotFound):
        shop_settings.get_mapping(db_session, woo, "statuses", mapping.id)
    with pytest.raises(NotFound):
        shop_settings.delete_mapping(db_session, woo, "statuses", mapping.id)
    with pytest.raises(NotFound):
        shop_settings.get_mapping(db_session, woo, "users", mapping.id)


@pytest.mark.parametrize(
    ("code", "label", "meaning"),
    [
        ("wc-cancel-request", "", M.CANCELLED),
        ("6", "Annulé", M.CANCELLED),
        ("10", "En attente de paiement par virement bancaire", M.AWAITING_PAYMENT),
        ("pending", "Pending payment", M.AWAITING_PAYMENT),
        ("2", "Paiement accepté", M.PAID),
        ("4", "Expédié", M.SHIPPED),
        ("wc-shipped", "Shipped", M.SHIPPED),
        ("5", "Livré", M.COMPLETED),
        ("3", "Préparation en cours", M.PROCESSING),
        ("7", "Remboursé", M.REFUNDED),
        ("wc-fraud-review", "", M.ON_HOLD),
        ("42", "Statut maison", None),
    ],
)
def test_meaning_suggestions(code: str, label: str, meaning: M | None) -> None:
    assert shop_settings.suggest_meaning(code, label) == meaning


# --- What blocks orders, and what the shop offers --------------------------------------------


def test_blocking_values_are_the_unmapped_values_of_parked_orders(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop
) -> None:
    receive(db_session, session_factory, woo, order_copy("1", status="wc-shipped"))
    receive(db_session, session_factory, woo, order_copy("2", status="wc-shipped"))
    receive(
        db_session,
        session_factory,
        woo,
        order_copy("3", shipping_label="Colissimo Point Retrait", payment_method="lydia"),
    )
    blocking = shop_settings.blocking_values(db_session, woo)
    assert blocking.orders == 3
    assert [(s.code, s.blocking, s.suggested) for s in blocking.statuses] == [
        ("wc-shipped", 2, M.SHIPPED)
    ]
    [carrier] = blocking.carriers
    assert carrier.label == "Colissimo Point Retrait"
    assert carrier.suggested is not None and carrier.suggested.code == "colissimo_relais"
    assert [(p.code, p.blocking) for p in blocking.payment_methods] == [("lydia", 1)]


class FakeConnector:
    """Answers the three list calls; carriers fail like an unreachable shop."""

    closed = False

    def list_statuses(self) -> list[ShopChoice]:
        return [
            ShopChoice("processing", "Processing"),
            ShopChoice("wc-awaiting-shipment", "En attente d'expédition"),
            ShopChoice("wc-delivered", "Livrée"),
        ]

    def list_carriers(self) -> list[ShopChoice]:
        raise PlatformUnavailable("GET /shipping/zones: timed out")

    def list_payment_methods(self) -> list[ShopChoice]:
        return [ShopChoice("bacs", "Virement"), ShopChoice("lydia", "Lydia")]

    def close(self) -> None:
        self.closed = True


def test_catalog_lists_the_shop_values_with_suggestions_and_blocked_ones(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop
) -> None:
    receive(db_session, session_factory, woo, order_copy("9", status="wc-custom-hold"))
    connector = FakeConnector()
    catalog = shop_settings.shop_catalog(db_session, woo, connector)  # type: ignore[arg-type]
    statuses = {s.code: s for s in catalog.statuses}
    assert statuses["processing"].meaning == M.PAID  # already mapped
    assert statuses["wc-awaiting-shipment"].meaning is None
    assert statuses["wc-awaiting-shipment"].suggested == M.AWAITING_PAYMENT
    assert statuses["wc-delivered"].suggested == M.COMPLETED
    assert statuses["wc-custom-hold"].blocking == 1  # only known from the parked order
    assert catalog.errors["carriers"].kind == "unreachable"
    assert catalog.carriers == []
    assert {(p.code, p.mapped) for p in catalog.payment_methods} == {
        ("bacs", True),
        ("lydia", False),
    }
    assert connector.closed


# --- Talking to the shop ---------------------------------------------------------------------


def test_connection_test_against_a_dead_port_says_the_shop_cannot_be_reached(
    db_session: Session,
) -> None:
    shop = make_shop(db_session, base_url=f"http://127.0.0.1:{closed_port()}", api_key="x")
    answer = shop_settings.test_connection(shop)
    assert (answer.ok, answer.kind) == (False, "unreachable")
    assert answer.detail == ""  # our summary only, never the socket's or the shop's words


def test_connection_test_and_webhook_registration_against_shopify(db_session: Session) -> None:
    emulator = ShopifyEmulator()
    base_url = emulator.start()
    try:
        shop = make_shop(
            db_session, base_url=base_url, api_key=emulator.access_token, api_secret="client"
        )
        answer = shop_settings.test_connection(shop)
        assert answer.ok and "Shopify" in answer.detail

        first = shop_settings.register_webhooks(db_session, shop, "https://comptoir.example")
        assert first.ok and "orders/create" in first.items
        addresses = {hook["address"] for hook in emulator.webhooks}
        assert addresses == {f"https://comptoir.example/hooks/shopify/{shop.key}"}
        # Webhooks created through the API are signed with the app's client secret.
        assert shop.webhook_secret == "client"
        again = shop_settings.register_webhooks(db_session, shop, "https://comptoir.example")
        assert again.ok and again.items == ()

        shop.api_key = "wrong-token"
        refused = shop_settings.test_connection(shop)
        assert (refused.ok, refused.kind) == (False, "auth")
    finally:
        emulator.stop()


def test_connection_test_the_shop_slows_down_says_so_with_its_status(db_session: Session) -> None:
    emulator = ShopifyEmulator()
    base_url = emulator.start()
    try:
        shop = make_shop(db_session, base_url=base_url, api_key=emulator.access_token)
        emulator.fail_next(429, retry_after="7")

        answer = shop_settings.test_connection(shop)

        assert (answer.ok, answer.kind, answer.detail) == (False, "rate_limited", "HTTP 429")
    finally:
        emulator.stop()


def test_woocommerce_webhooks_are_registered_with_our_secret(db_session: Session) -> None:
    emulator = WooCommerceEmulator()
    base_url = emulator.start()
    try:
        shop = shop_settings.add_shop(
            db_session,
            "woocommerce",
            name="Atelier",
            base_url=base_url,
            api_key=emulator.consumer_key,
            api_secret=emulator.consumer_secret,
        )
        assert shop_settings.test_connection(shop).ok
        answer = shop_settings.register_webhooks(db_session, shop, "https://comptoir.example")
        assert answer.ok and answer.items
        hooks = list(emulator.webhooks.values())
        assert {hook["topic"] for hook in hooks} >= {"order.created", "order.updated"}
        assert {hook["secret"] for hook in hooks} == {shop.webhook_secret}
        assert {hook["delivery_url"] for hook in hooks} == {
            f"https://comptoir.example/hooks/woocommerce/{shop.key}"
        }
    finally:
        emulator.stop()


def test_platforms_without_webhooks_cannot_register_them(db_session: Session) -> None:
    shop = make_shop(db_session, platform="prestashop", api_key="K")
    answer = shop_settings.register_webhooks(db_session, shop, "https://comptoir.example")
    assert (answer.ok, answer.kind) == (False, "unsupported")
    assert not shop_settings.can_register_webhooks(shop)


# --- Sync now and backfill -------------------------------------------------------------------


def test_sync_now_reuses_the_job_already_waiting(db_session: Session, woo: Shop) -> None:
    first = shop_settings.start_sync(db_session, woo)
    assert shop_settings.start_sync(db_session, woo) is first
    first.state = JobState.DONE
    assert shop_settings.start_sync(db_session, woo) is not first
    assert [job.kind for job in shop_settings.open_jobs(db_session, woo)] == ["sync.shop"]


@pytest.mark.parametrize(
    ("since", "error"),
    [
        ("", "Choose the date to import from."),
        ("2026-13-01", "Enter a date as YYYY-MM-DD."),
        ("2026-03-03", "The date is in the future."),
        ("2025-02-28", "Import at most one year back."),
    ],
)
def test_backfill_is_bounded(db_session: Session, woo: Shop, since: str, error: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.start_backfill(db_session, woo, since, today=dt.date(2026, 3, 2))
    assert caught.value.errors == {"since": error}


def test_backfill_job_carries_the_start_of_the_day(db_session: Session, woo: Shop) -> None:
    job = shop_settings.start_backfill(db_session, woo, "2026-01-05", today=dt.date(2026, 3, 2))
    assert job.kind == "sync.backfill"
    assert job.payload == {"shop_id": woo.id, "since": "2026-01-05T00:00:00+00:00"}
    assert shop_settings.get_job(db_session, woo, job.id) is job
    other = make_shop(db_session, "other")
    with pytest.raises(NotFound):
        shop_settings.get_job(db_session, other, job.id)


# --- What a person is told, and what follows -------------------------------------------------

PACE = "Enter a number of requests per second, such as 2 or 20."


@pytest.mark.parametrize("value", ["vite", "0", "-2", "0.004", "1001", "NaN"])
def test_a_pace_that_is_not_a_positive_rate_is_refused_saying_so(
    db_session: Session, woo: Shop, value: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        shop_settings.update_shop(db_session, woo, api_calls_per_second=value)
    assert caught.value.errors == {"api_calls_per_second": PACE}


def test_a_pace_is_kept_to_two_decimals_and_blank_means_the_platforms(
    db_session: Session, woo: Shop
) -> None:
    shop_settings.update_shop(db_session, woo, api_calls_per_second="2,505")
    assert woo.api_calls_per_second == Decimal("2.51")
    shop_settings.update_shop(db_session, woo, api_calls_per_second=" ")
    assert woo.api_calls_per_second is None


def test_mapping_refusals_name_the_field_and_what_to_do(db_session: Session, woo: Shop) -> None:
    with pytest.raises(ValidationFailed) as meaning:
        shop_settings.set_status_mapping(db_session, woo, "wc-packed", "teleported")
    assert str(meaning.value) == "Choose what this status means."
    assert meaning.value.errors == {"meaning": "Choose what this status means."}
    with pytest.raises(ValidationFailed) as method:
        shop_settings.set_payment_mapping(db_session, woo, "  ")
    assert method.value.errors == {"shop_method": "Required."}
    with pytest.raises(ValidationFailed) as unsaid:
        shop_settings.save_mapping(db_session, woo, "statuses", {"shop_status": "wc-packed"})
    assert unsaid.value.errors == {"meaning": "Choose what this status means."}


def test_a_payment_mapping_changes_its_own_row_only(db_session: Session, woo: Shop) -> None:
    before = {m.shop_method: (m.label, m.counts_as_payment) for m in woo.payment_mappings}
    changed = shop_settings.set_payment_mapping(
        db_session, woo, "cod", "À la livraison", counts_as_payment=False
    )
    assert (changed.shop_method, changed.label, changed.counts_as_payment) == (
        "cod",
        "À la livraison",
        False,
    )
    after = {m.shop_method: (m.label, m.counts_as_payment) for m in woo.payment_mappings}
    assert after == {**before, "cod": ("À la livraison", False)}


def test_a_milestone_is_mapped_again_from_the_form_after_it_was_deleted(
    db_session: Session, woo: Shop
) -> None:
    [completed] = [m for m in woo.milestone_mappings if m.milestone == "completed"]
    shop_settings.delete_mapping(db_session, woo, "milestones", completed.id)
    again = shop_settings.save_mapping(
        db_session, woo, "milestones", {"milestone": "completed", "shop_status": "wc-delivered"}
    )
    assert (again.milestone, again.shop_status, again.enabled) == (
        "completed",
        "wc-delivered",
        False,
    )
    assert again in woo.milestone_mappings


class RecordingBackend:
    """Where announced work would go: kept to be read."""

    def __init__(self) -> None:
        self.sent: list[queue.Work] = []

    def send(self, works: Sequence[queue.Work]) -> None:
        self.sent.extend(works)


def test_a_replayed_delivery_is_announced_to_the_intake_queue_in_its_orders_group(
    db_session: Session, session_factory: sessionmaker[Session], woo: Shop
) -> None:
    event = receive(db_session, session_factory, woo, order_copy("777", payment_method="lydia"))
    backend = RecordingBackend()
    queue.configure(backend)
    try:
        shop_settings.set_payment_mapping(db_session, woo, "lydia", "Lydia")
        db_session.commit()
    finally:
        queue.configure(queue.LocalBackend())
    assert backend.sent == [queue.Work(aws.INTAKE, event.id, f"{woo.id}:777")]


def test_the_catalog_says_which_list_the_shop_did_not_give(db_session: Session, woo: Shop) -> None:
    class NoStatuses(FakeConnector):
        def list_statuses(self) -> list[ShopChoice]:
            raise AuthFailed("GET /orders/statuses: HTTP 401", status=401)

    catalog = shop_settings.shop_catalog(db_session, woo, NoStatuses())  # type: ignore[arg-type]
    assert set(catalog.errors) == {"statuses", "carriers"}
    assert (catalog.errors["statuses"].kind, catalog.errors["statuses"].detail) == (
        "auth",
        "HTTP 401",
    )


def test_a_platform_without_webhooks_is_named_and_jobs_remember_who_asked(
    db_session: Session, woo: Shop
) -> None:
    presta = make_shop(db_session, platform="prestashop", api_key="K")
    answer = shop_settings.register_webhooks(db_session, presta, "https://comptoir.example")
    assert answer.detail == "prestashop sends no webhooks"
    user, _ = create_user(db_session, "lea@example.com", Role.ADMIN, "x" * 12, "Léa")
    job = shop_settings.start_sync(db_session, woo, created_by_id=user.id)
    assert job.created_by_id == user.id
    with pytest.raises(NotFound) as missing:
        shop_settings.get_job(db_session, woo, 987654)
    assert str(missing.value) == "no job 987654"


def test_a_payment_method_is_named_from_the_form_its_checkbox_saying_if_it_counts(
    db_session: Session, woo: Shop
) -> None:
    counted = shop_settings.save_mapping(
        db_session,
        woo,
        "payments",
        {"shop_method": "lydia", "label": " Lydia ", "counts_as_payment": "on"},
    )
    assert (counted.shop_method, counted.label, counted.counts_as_payment) == (
        "lydia",
        "Lydia",
        True,
    )
    unchecked = shop_settings.save_mapping(db_session, woo, "payments", {"shop_method": "lydia"})
    assert unchecked is counted and counted.counts_as_payment is False
    assert counted.label == "Lydia"  # no label in the form: the name stays
