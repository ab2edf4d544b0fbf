"""The intake Lambda against a real moto server: webhook → SQS → handler → order, once.

The app runs in the AWS mode (its committed inbox events go to the stack's intake queue) on a
database of this module's own, which the consumers' connections see; the handler is invoked
as Lambda's event source mapping does (sync_lambdas/driver.py): receive a batch, invoke,
delete what the handler did not report.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import driver, intake
from tests.aws.conftest import Stack
from tests.aws.lambda_support import *  # noqa: F403 (the fixtures: settings, lambdas, woo, …)
from tests.aws.lambda_support import (
    FIXTURES,
    count,
    events,
    make_shop,
    order_history,
    payments,
    post_webhook,
    switch_off,
    woo_order,
)
from tests.conftest import TEST_PASSWORD, log_in, wait_until
from tests.emulators.shopify import ShopifyEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from web import aws
from web.models import InboxEvent, Order, Shop
from web.models.enums import InboxState, Role
from web.services import users


def consume(stack: Stack, handler: Callable[..., Any] = intake.handler) -> tuple[int, int]:
    return driver.consume_once(stack.settings, aws.INTAKE, handler)


# --- The web never waits on a shop ---------------------------------------------------------


def test_a_webhook_is_stored_and_queued_by_the_web_then_applied_by_the_intake_lambda(
    aws_stack: Stack,
    web_client: FlaskClient,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    order_id = woo_emulator.add_order(woo_order())
    woo_emulator.requests.clear()

    assert post_webhook(web_client, woo, *woo_emulator.webhook("order.created", order_id)) == (
        "stored"
    )

    # Stored and announced; nothing applied, and the shop was not called.
    assert events(lambdas, woo) == [("order.created", InboxState.PENDING, 0)]
    assert count(lambdas, Order, woo) == 0
    assert woo_emulator.requests == []
    with lambdas() as session:
        event_id = session.scalar(select(InboxEvent.id).where(InboxEvent.shop_id == woo.id))
    message = aws_stack.sqs().receive_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=1,
        VisibilityTimeout=0,  # look, and leave it for the consumer
    )["Messages"]
    assert [json.loads(m["Body"]) for m in message] == [{"queue": "intake", "id": event_id}]
    assert message[0]["Attributes"]["MessageGroupId"] == f"{woo.id}:{order_id}"

    assert consume(aws_stack) == (1, 0)

    assert events(lambdas, woo) == [("order.created", InboxState.PROCESSED, 1)]
    assert aws_stack.messages_in(aws.INTAKE) == 0
    with lambdas.begin() as session:
        users.create_user(session, "desk@example.com", Role.MANAGER, TEST_PASSWORD, "Desk")
    log_in(web_client, "desk@example.com")
    with lambdas() as session:
        order = session.scalars(select(Order).where(Order.shop_id == woo.id)).one()
        assert order.grand_total == Decimal("73.03")
    assert f"/orders/{order.id}" in web_client.get("/orders/").get_data(as_text=True)
    page = web_client.get(f"/orders/{order.id}").get_data(as_text=True)
    assert "THE-SENCHA-100" in page and "TETSUBIN-08-NOIR" in page


# --- Per-record failures and redeliveries ---------------------------------------------------


def test_a_bad_record_is_reported_alone_and_the_others_of_its_batch_commit(
    aws_stack: Stack,
    web_client: FlaskClient,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    for _ in range(3):
        order_id = woo_emulator.add_order(woo_order())
        post_webhook(web_client, woo, *woo_emulator.webhook("order.created", order_id))
    sqs = aws_stack.sqs()
    bad = sqs.send_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MessageBody="{not ours}",
        MessageGroupId="someone-else",
        MessageDeduplicationId=uuid.uuid4().hex,
    )["MessageId"]
    reported: list[list[str]] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = intake.handler(event, context)
        reported.append([f["itemIdentifier"] for f in result["batchItemFailures"]])
        return result

    assert consume(aws_stack, handler) == (4, 1)

    assert reported == [[bad]]
    assert count(lambdas, Order, woo) == 3
    assert [state for _, state, _ in events(lambdas, woo)] == [InboxState.PROCESSED] * 3
    # Only the bad one is left on the queue: it comes back, fails again, and after
    # maxReceiveCount receives SQS moves it to the dead-letter queue.
    assert aws_stack.messages_in(aws.INTAKE) == 1

    def dead_lettered() -> bool:
        consume(aws_stack, handler)
        return aws_stack.messages_in(aws.INTAKE, dead_letters=True) == 1

    wait_until(dead_lettered, what="the bad record in the dead-letter queue")
    assert aws_stack.messages_in(aws.INTAKE) == 0
    assert {tuple(r) for r in reported} == {(bad,)}
    assert count(lambdas, Order, woo) == 3


def test_the_same_message_delivered_twice_is_applied_once(
    aws_stack: Stack,
    web_client: FlaskClient,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    order_id = woo_emulator.add_order(woo_order())
    post_webhook(web_client, woo, *woo_emulator.webhook("order.created", order_id))
    with lambdas() as session:
        event_id = session.scalar(select(InboxEvent.id).where(InboxEvent.shop_id == woo.id))
    # SQS delivers at least once: the same body a second time, in the same group.
    aws_stack.sqs().send_message(
        QueueUrl=aws.queue_url(aws_stack.settings, aws.INTAKE),
        MessageBody=json.dumps({"queue": "intake", "id": event_id}),
        MessageGroupId=f"{woo.id}:{order_id}",
        MessageDeduplicationId=uuid.uuid4().hex,
    )

    received = 0
    while received < 2:
        got, failed = consume(aws_stack)
        assert failed == 0
        received += got

    assert events(lambdas, woo) == [("order.created", InboxState.PROCESSED, 1)]
    history = order_history(lambdas, woo)
    assert len(history) == 1
    (kinds,) = history.values()
    assert kinds.count("order.received") == 1, kinds
    assert aws_stack.messages_in(aws.INTAKE) == 0


@pytest.fixture()
def shopify_emulator() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator() as emulator:
        yield emulator  # type: ignore[misc]


@pytest.fixture()
def shopify(lambdas: sessionmaker[Session], shopify_emulator: ShopifyEmulator) -> Iterator[Shop]:
    shop = make_shop(lambdas, "shopify", shopify_emulator, api_key=shopify_emulator.access_token)
    yield shop
    switch_off(lambdas, shop)


def test_a_redelivery_while_the_first_consumer_still_works_is_applied_once(
    aws_stack: Stack,
    web_client: FlaskClient,
    lambdas: sessionmaker[Session],
    shopify: Shop,
    shopify_emulator: ShopifyEmulator,
) -> None:
    """A paid order's body has no payments: its follow-up reads them from the shop, which
    answers slower than the queue's visibility timeout, so SQS hands the follow-up's message
    to a second consumer while the first is still waiting for the shop."""
    fixture = json.loads((FIXTURES / "shopify" / "order-fr-relay-point.json").read_text())
    stored = shopify_emulator.add_order(fixture.get("order", fixture))
    body, headers = shopify_emulator.webhook("orders/paid", stored["id"])
    assert post_webhook(web_client, shopify, body, headers) == "stored"
    assert consume(aws_stack) == (1, 0)  # the order; its follow-up is now on the queue
    assert [topic for topic, _, _ in events(lambdas, shopify)] == [
        "orders/paid",
        "fetch/transactions",
    ]
    # Longer than the visibility timeout (2 s), well within SQLite's busy timeout.
    shopify_emulator.slow_next(8.0, path_contains="/transactions.json")
    receives: list[tuple[str, bool]] = []
    first_done = threading.Event()

    second_returned: list[bool] = []  # whether the first was done when the second returned

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        counts = [record["attributes"]["ApproximateReceiveCount"] for record in event["Records"]]
        receives.extend((count, first_done.is_set()) for count in counts)
        result = intake.handler(event, context)
        if counts == ["2"]:
            second_returned.append(first_done.is_set())
        return result

    def first_consumer() -> None:
        try:
            consume(aws_stack, handler)
        finally:
            first_done.set()

    first = threading.Thread(target=first_consumer)
    first.start()
    wait_until(
        lambda: shopify_emulator.requests_to("GET", "/transactions.json"), what="the slow read"
    )
    # The message comes back once its visibility timeout has run out: a second consumer.
    second: list[tuple[int, int]] = []

    def second_consumer_received() -> bool:
        second.append(consume(aws_stack, handler))
        return second[-1][0] > 0

    wait_until(second_consumer_received, what="the redelivery")
    first.join(timeout=30)

    # Received again while the first consumer was still inside the handler.
    assert receives == [("1", False), ("2", False)]
    if lambdas.kw["bind"].dialect.name == "postgresql":
        # The event's row is locked by the first: the second skipped it without waiting.
        assert second_returned == [False]
    assert second[-1] == (1, 0)
    assert len(shopify_emulator.requests_to("GET", "/transactions.json")) == 1
    assert [(topic, state, attempts) for topic, state, attempts in events(lambdas, shopify)] == [
        ("orders/paid", InboxState.PROCESSED, 1),
        ("fetch/transactions", InboxState.PROCESSED, 1),
    ]
    (sale,) = payments(lambdas, shopify).values()
    assert sale == [("sale", Decimal("84.82"))]
    (kinds,) = order_history(lambdas, shopify).values()
    assert kinds.count("payment.details_received") == 1


# --- Consumers at once -----------------------------------------------------------------------

ORDERS = 40


def test_four_concurrent_consumers_apply_every_event_once(
    aws_stack: Stack,
    web_client: FlaskClient,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    ids = [woo_emulator.add_order(woo_order()) for _ in range(ORDERS)]
    for order_id in ids:
        post_webhook(web_client, woo, *woo_emulator.webhook("order.created", order_id))
    # A second version of every tenth order, in the same order group as its first.
    updated = ids[::10]
    for order_id in updated:
        woo_emulator.update_order(order_id, status="completed")
        post_webhook(web_client, woo, *woo_emulator.webhook("order.updated", order_id))
    total = ORDERS + len(updated)
    consumers = [
        driver.Consumer(aws_stack.settings, aws.INTAKE, intake.handler, batch_size=5)
        for _ in range(4)
    ]
    for consumer in consumers:
        consumer.start()
    try:
        wait_until(
            lambda: (
                count(lambdas, InboxEvent, woo, InboxEvent.state == InboxState.PROCESSED) == total
            ),
            seconds=120,
            what="every event processed",
        )
    finally:
        for consumer in consumers:
            consumer.stop()
        for consumer in consumers:
            consumer.join(timeout=30)

    assert sum(c.failed for c in consumers) == 0
    assert sum(1 for c in consumers if c.received) > 1  # the work was shared
    assert [attempts for _, _, attempts in events(lambdas, woo)] == [1] * total
    assert count(lambdas, Order, woo) == ORDERS
    history = order_history(lambdas, woo)
    assert sorted(history) == sorted(ids)
    assert all(kinds.count("order.received") == 1 for kinds in history.values())
    found = payments(lambdas, woo)
    assert len({tuple(lines) for lines in found.values()}) == 1  # the same, once, for each
    (lines,) = {tuple(lines) for lines in found.values()}
    assert len(lines) == len(set(lines)) and lines
    with lambdas() as session:
        statuses = dict(
            session.execute(
                select(Order.external_id, Order.shop_status).where(Order.shop_id == woo.id)
            ).all()
        )
    assert {statuses[order_id] for order_id in updated} == {"completed"}
    wait_until(lambda: aws_stack.messages_in(aws.INTAKE) == 0, what="the queue emptied")
