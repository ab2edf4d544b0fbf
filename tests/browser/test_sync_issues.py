"""A WooCommerce shop was down and a status update was given up; the manager sees it on the
sync issues page with its cause and the red count, presses "Retry now", and the embedded
worker delivers it while the row watches: one write reaches the shop, no more."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from playwright.sync_api import expect
from sqlalchemy.orm import Session, sessionmaker

from tests.browser.conftest import assert_no_horizontal_scroll, log_in
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.factories import make_order
from web.models import OutboxMessage, Shop, SyncCursor, utcnow
from web.models.enums import OutboxState, Platform
from web.services import outbox

pytestmark = pytest.mark.browser

FIXTURE = (
    Path(__file__).resolve().parents[1] / "fixtures" / "woocommerce" / "woocommerce-order.json"
)
SHOP_KEY = "woo-panne"
CAUSE = "PlatformUnavailable: connection refused by the shop (it was down)"
_order_ids = itertools.count(8801)


@pytest.fixture(scope="module")
def woo() -> Iterator[WooCommerceEmulator]:
    with WooCommerceEmulator() as shop:
        yield shop  # type: ignore[misc]


def _sessions(live_app: Flask) -> sessionmaker[Session]:
    sessions: sessionmaker[Session] = live_app.extensions["comptoir.sessions"]
    return sessions


@pytest.fixture(scope="module")
def shop_id(live_app: Flask, woo: WooCommerceEmulator) -> int:
    """The shop, with a fresh cursor and a daily poll so the worker only pushes to it."""
    now = utcnow()
    with _sessions(live_app).begin() as session:
        shop = Shop(
            key=SHOP_KEY,
            platform=Platform.WOOCOMMERCE,
            name="Boutique Woo",
            base_url=woo.base_url,
            api_key=woo.consumer_key,
            api_secret=woo.consumer_secret,
            webhook_secret=woo.webhook_secret,
            poll_interval_seconds=86_400,
        )
        session.add(shop)
        session.flush()
        session.add(SyncCursor(shop=shop, flow="orders", last_run_at=now, last_success_at=now))
        return shop.id


@pytest.fixture()
def dead_message(live_app: Flask, woo: WooCommerceEmulator, shop_id: int) -> tuple[int, str, int]:
    """A processing order at the shop whose "completed" status Comptoir gave up sending."""
    external_id = str(next(_order_ids))
    woo.add_order(
        {**json.loads(FIXTURE.read_text()), "id": int(external_id), "number": external_id}
    )
    with _sessions(live_app).begin() as session:
        shop = session.get_one(Shop, shop_id)
        order = make_order(session, shop, external_id=external_id, number=f"#{external_id}")
        message = OutboxMessage(
            shop_id=shop.id,
            order_id=order.id,
            kind=outbox.STATUS,
            payload={"milestone": "completed", "status": "completed", "notify": True},
            idempotency_key=f"status:{order.id}:completed",
            state=OutboxState.DEAD,
            attempts=outbox.MAX_ATTEMPTS,
            next_attempt_at=utcnow() - dt.timedelta(minutes=1),
            last_error=CAUSE,
        )
        session.add(message)
        session.flush()
        return message.id, external_id, order.id


def writes(woo: WooCommerceEmulator, external_id: str) -> list[Any]:
    return [
        request
        for request in list(woo.requests)
        if request.method in ("POST", "PUT", "PATCH", "DELETE")
        and f"/orders/{external_id}" in request.path
    ]


def badge(page: Any) -> int:
    return int(page.locator("#sync-issues-count .nav-count").inner_text())


def test_retry_now_delivers_a_given_up_status_once(
    page: Any, woo: WooCommerceEmulator, dead_message: tuple[int, str, int]
) -> None:
    message_id, external_id, order_id = dead_message
    log_in(page, "manager@example.com")
    assert "/login" not in page.url
    page.goto("/sync/issues/")

    row = page.locator(f"#outbox-{message_id}")
    assert row.get_attribute("data-state") == "dead"
    assert CAUSE in row.inner_text() and "Boutique Woo" in row.inner_text()
    link = row.get_by_role("link", name=f"#{external_id}")
    assert link.get_attribute("href") == f"/orders/{order_id}"
    before = badge(page)
    assert before >= 1
    assert_no_horizontal_scroll(page)

    # The shop filter swaps the list without a reload and keeps its URL.
    page.select_option("#filter-shop", SHOP_KEY)
    page.wait_for_url(f"**/sync/issues/?shop={SHOP_KEY}")
    expect(page.locator("#issues tbody tr")).to_have_count(1)
    row = page.locator(f"#outbox-{message_id}")
    expect(row.locator(".issue-retry")).to_have_count(1)
    assert writes(woo, external_id) == []

    row.locator(".issue-retry").click()
    expect(row).to_have_attribute("data-state", "sent", timeout=10_000)
    # Delivered: nothing left to retry or ignore.
    expect(row.locator(".issue-retry")).to_have_count(0)
    expect(row.locator(".issue-ignore")).to_have_count(0)
    # The badge refreshed without a reload: this message no longer counts.
    page.wait_for_function(
        "n => Number(document.querySelector('#sync-issues-count .nav-count')?.textContent ?? 0)"
        " === n",
        arg=before - 1,
    )

    sent = writes(woo, external_id)
    assert len(sent) == 1 and sent[0].method == "PUT"
    assert sent[0].json() == {"status": "completed"}
    assert woo.orders[external_id]["status"] == "completed"
    assert_no_horizontal_scroll(page)
