"""Shop settings rules: validation, write-only secrets, mappings that unpark orders, the shop's
own lists with suggestions, connection tests and the sync jobs."""

from __future__ import annotations

import datetime as dt
import socket
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_shop
from web.connectors.base import (
    PlatformUnavailable,
    ShopAddress,
    ShopChoice,
    ShopCustomer,
    ShopLine,
    ShopOrder,
)
from web.connectors.codec import encode_order
from web.models import InboxEvent, Order, ShippingMode, Shop
from web.models.enums import InboxState, IssuePolicy, JobState, ShopStatusMeaning
from web.services import intake, shop_settings, sync
from web.services.errors import NotFound, ValidationFailed

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
