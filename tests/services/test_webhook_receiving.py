"""Receiving a webhook stays cheap: no HTTP client, no API credentials, one insert."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.orm import Session

from web.connectors.base import BadPayload, ShopSettings, TopicMismatch, WebhookDelivery
from web.connectors.registry import make_connector
from web.connectors.woocommerce import WooCommerceConnector
from web.models import InboxEvent
from web.models.enums import InboxState
from web.services import intake, shops

FIXTURE = Path(__file__).parents[1] / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"
SECRET = "receiving-secret"


def delivery(order_id: int) -> tuple[bytes, dict[str, str]]:
    order = json.loads(FIXTURE.read_text())
    order["id"] = order_id
    body = json.dumps(order).encode()
    return body, {
        "X-WC-Webhook-Topic": "order.created",
        "X-WC-Webhook-Signature": WooCommerceConnector.signature(SECRET, body),
    }


def test_a_webhook_is_stored_without_an_http_client_or_the_api_keys(
    db_session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    created = shops.create_shop(
        db_session,
        "woocommerce",
        "Atelier",
        "https://atelier.example",
        webhook_secret=SECRET,
        api_key="ck_secret",
        api_secret="cs_secret",
    )
    db_session.commit()
    db_session.expunge_all()
    clients: list[Any] = []
    original = httpx.Client.__init__

    def counting(self: httpx.Client, *args: Any, **kwargs: Any) -> None:
        clients.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(httpx.Client, "__init__", counting)

    shop = shops.find_for_webhook(db_session, created.key)
    assert shop is not None and shop.webhook_secret == SECRET
    with pytest.raises(InvalidRequestError):
        _ = shop.api_key  # never loaded, never decrypted
    body, headers = delivery(80_001)
    first = intake.receive_webhook(db_session, shop, body, headers)
    again = intake.receive_webhook(db_session, shop, body, headers)
    db_session.commit()

    assert clients == []
    assert not first.duplicate and again.duplicate and again.event_id == first.event_id
    stored = db_session.scalars(select(InboxEvent).where(InboxEvent.shop_id == shop.id)).all()
    assert [(e.topic, e.external_order_id, e.raw_body) for e in stored] == [
        ("order.created", "80001", body)
    ]
    assert first.event is not None and first.event.dedupe_key.startswith("80001:")
    assert (first.event.content_key or "").startswith("order:80001:")
    assert first.event.headers == {"x-wc-webhook-topic": "order.created"}  # no signature
    assert shops.find_for_webhook(db_session, "no-such-shop") is None


def test_connectors_build_their_client_on_first_use_with_one_tls_context() -> None:
    connectors = [
        make_connector("shopify", ShopSettings(base_url=f"https://shop{n}.myshopify.com"))
        for n in range(2)
    ]
    assert all(connector.http._client is None for connector in connectors)  # type: ignore[attr-defined]
    contexts = {
        id(connector.http.client._transport._pool._ssl_context)  # type: ignore[attr-defined]
        for connector in connectors
    }
    assert len(contexts) == 1  # the CA bundle is loaded once per process


def test_inbox_counts_stay_exact_when_the_same_delivery_comes_twice_in_one_transaction(
    db_session: Session,
) -> None:
    shop = shops.create_shop(
        db_session, "woocommerce", "Atelier", "https://atelier.example", webhook_secret=SECRET
    )
    for order_id in (80_010, 80_011, 80_010):
        body, headers = delivery(order_id)
        intake.receive_webhook(db_session, shop, body, headers)
    count = db_session.scalar(
        select(func.count()).select_from(InboxEvent).where(InboxEvent.shop_id == shop.id)
    )
    assert count == 2


def test_one_insert_gives_way_to_either_unique_key_and_finds_the_event_it_met(
    db_session: Session,
) -> None:
    shop = shops.create_shop(
        db_session, "woocommerce", "Atelier", "https://atelier.example", webhook_secret=SECRET
    )

    def store(dedupe_key: str, content_key: str | None) -> intake.Received:
        return intake.store_event(
            db_session, shop, "order.updated", dedupe_key, "1", b"{}", {}, content_key=content_key
        )

    first = store("delivery-1", "order:1:2026-11-20T09:00:00")
    same_body = store("delivery-2", "order:1:2026-11-20T09:00:00")
    same_delivery = store("delivery-1", "order:1:2026-11-20T10:00:00")
    later = store("delivery-3", "order:1:2026-11-20T10:00:00")
    both = store("delivery-3", "order:1:2026-11-20T09:00:00")  # meets two events
    no_body_key = [store(f"fetch-{n}", None) for n in range(2)]  # NULLs never conflict

    assert not first.duplicate and not later.duplicate
    assert same_body.duplicate and same_body.event_id == first.event_id
    assert same_delivery.duplicate and same_delivery.event_id == first.event_id
    assert both.duplicate and both.event_id == later.event_id  # the same delivery first
    assert [r.duplicate for r in no_body_key] == [False, False]
    count = db_session.scalar(
        select(func.count()).select_from(InboxEvent).where(InboxEvent.shop_id == shop.id)
    )
    assert count == 4


# --- What no column can hold (PostgreSQL refuses NUL in text; lengths are enforced) ---------


@pytest.fixture()
def woo_shop(db_session: Session) -> Any:
    created = shops.create_shop(
        db_session, "woocommerce", "Atelier", "https://atelier.example", webhook_secret=SECRET
    )
    db_session.commit()
    return shops.find_for_webhook(db_session, created.key)


def signed(order: dict[str, Any], **headers: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(order).encode()
    return body, {
        "X-WC-Webhook-Topic": "order.created",
        **headers,
        "X-WC-Webhook-Signature": WooCommerceConnector.signature(SECRET, body),
    }


def rejected(session: Session, shop: Any) -> InboxEvent:
    return session.scalars(select(InboxEvent).where(InboxEvent.shop_id == shop.id)).one()


def test_a_signed_topic_holding_nul_is_kept_refused_with_its_cause_shown(
    db_session: Session, woo_shop: Any
) -> None:
    body, headers = signed(json.loads(FIXTURE.read_text()), **{"X-WC-Webhook-Topic": "order\x00x"})
    with pytest.raises(TopicMismatch):
        intake.receive_webhook(db_session, woo_shop, body, headers)
    db_session.commit()  # as the view does: the refused delivery is kept for the sync log

    event = rejected(db_session, woo_shop)
    assert event.state == InboxState.REJECTED and event.cause_kind == "topic_mismatch"
    assert event.cause_params["topic"] == "order\ufffdx"
    assert "\x00" not in event.error and event.headers["x-wc-webhook-topic"] == "order\ufffdx"


def test_an_order_id_longer_than_its_column_is_refused_not_stored_pending(
    db_session: Session, woo_shop: Any
) -> None:
    order = json.loads(FIXTURE.read_text())
    order["id"] = int("9" * 65)
    body, headers = signed(order)
    with pytest.raises(BadPayload, match="longer than 64"):
        intake.receive_webhook(db_session, woo_shop, body, headers)
    db_session.commit()

    event = rejected(db_session, woo_shop)
    assert event.state == InboxState.REJECTED and event.cause_kind == "unreadable"
    assert event.external_order_id is None


def test_a_delivery_id_holding_nul_is_refused_with_its_cause() -> None:
    delivery = WebhookDelivery("order.deleted", "7:deleted:\x00", "7", content_key="deleted:7")
    with pytest.raises(BadPayload, match="delivery id holds a NUL"):
        intake.check_storable(delivery)
    intake.check_storable(WebhookDelivery("order.deleted", "7:deleted:x", "7"))


@pytest.mark.parametrize("key", ["\x00", "shop-\x00", "k" * 33])
def test_a_webhook_key_no_shop_can_have_finds_none(db_session: Session, key: str) -> None:
    assert shops.find_for_webhook(db_session, key) is None
