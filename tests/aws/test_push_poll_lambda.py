"""The push and poll Lambdas against a real moto server: EventBridge schedules and SQS batches
in their real shapes, shops on loopback emulators, the module's own database."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import driver, intake, poll, push
from tests.aws.conftest import Stack
from tests.aws.lambda_support import *  # noqa: F403 (the fixtures: settings, lambdas, woo, …)
from tests.aws.lambda_support import count, events, switch_off, woo_order
from tests.emulators.prestashop import DEFAULT_KEY, PrestaShopEmulator
from tests.emulators.woocommerce import WooCommerceEmulator
from tests.sync.test_prestashop_e2e import FIXTURES, RELATED
from web import aws
from web.models import Order, OutboxMessage, Shop, SyncCursor, utcnow
from web.models.enums import InboxState, OutboxState
from web.services import comments, outbox, shops
from web.services import intake as intake_service
from web.services.timeline import Actor

PERSON = Actor.system("test")


def drain(stack: Stack, queue: str, handler: driver.Handler) -> int:
    """Consume until the queue answers empty; return how many records were handled."""
    handled = 0
    while True:
        received, failed = driver.consume_once(stack.settings, queue, handler)
        assert failed == 0
        if not received:
            return handled
        handled += received


def import_order(sessions: sessionmaker[Session], shop: Shop, external_id: str) -> int:
    """The shop's order, brought in through the real intake; its id."""
    with sessions.begin() as session:
        shop = session.get_one(Shop, shop.id)
        incoming = shops.connector_for(shop).fetch_order(external_id)
        outcome = intake_service.upsert_order(session, shop, incoming, Actor.shop(shop.name))
        assert outcome.order is not None
        session.flush()
        return outcome.order.id


def messages(sessions: sessionmaker[Session], order_id: int) -> list[tuple[str, OutboxState, int]]:
    with sessions() as session:
        query = (
            select(OutboxMessage.kind, OutboxMessage.state, OutboxMessage.attempts)
            .where(OutboxMessage.order_id == order_id)
            .order_by(OutboxMessage.id)
        )
        return [(kind, state, attempts) for kind, state, attempts in session.execute(query)]


def notes_written(emulator: WooCommerceEmulator) -> list[str]:
    return [r.json()["note"] for r in emulator.requests_to("POST", "/notes") if r.handled]


def add_comments(sessions: sessionmaker[Session], order_id: int, *texts: str) -> None:
    with sessions.begin() as session:
        order = session.get_one(Order, order_id)
        for text in texts:
            comments.add_comment(session, order, PERSON, text, "customer")


# --- Poll -------------------------------------------------------------------------------------


def test_the_poll_schedule_polls_the_due_shop_and_its_orders_arrive_through_the_intake_queue(
    aws_stack: Stack,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    ids = [woo_emulator.add_order(woo_order()) for _ in range(3)]
    tick = driver.scheduled_event("comptoir-poll")

    # Too little time left for a poll: the shop waits for the next tick, untouched.
    short = driver.LambdaContext("poll", timeout_ms=int(poll.RESERVE_SECONDS * 1000) - 1000)
    assert poll.handler(tick, short) == {"polled": [], "left": [woo.key], "half_tick": False}
    assert woo_emulator.requests == []

    summary = poll.handler(tick, driver.LambdaContext("poll"))

    assert summary["left"] == []
    [polled] = summary["polled"]
    assert (
        polled["shop"],
        polled["seen"],
        polled["stored"],
        polled["probed"],
        polled["error"],
    ) == (
        woo.key,
        3,
        3,
        False,  # WooCommerce has no change probe
        "",
    )
    # Stored and announced, applied by nobody yet.
    assert [state for _, state, _ in events(lambdas, woo)] == [InboxState.PENDING] * 3
    assert count(lambdas, Order, woo) == 0
    assert drain(aws_stack, aws.INTAKE, intake.handler) == 3
    with lambdas() as session:
        found = session.scalars(select(Order.external_id).where(Order.shop_id == woo.id))
        assert sorted(found) == sorted(ids)

    # The next tick finds the shop polled a moment ago: not due.
    assert poll.handler(driver.scheduled_event("comptoir-poll"), driver.LambdaContext("poll")) == {
        "polled": [],
        "left": [],
        "half_tick": False,
    }


@pytest.fixture()
def presta_emulator() -> Iterator[PrestaShopEmulator]:
    with PrestaShopEmulator() as emulator:
        for name in RELATED:
            emulator.load((FIXTURES / name).read_bytes())  # type: ignore[attr-defined]
        order_id = emulator.add_order((FIXTURES / "fr-order-101.xml").read_bytes())  # type: ignore[attr-defined]
        emulator.update_order(order_id)  # type: ignore[attr-defined]  # changed just now
        yield emulator  # type: ignore[misc]


@pytest.fixture()
def presta(lambdas: sessionmaker[Session], presta_emulator: PrestaShopEmulator) -> Iterator[Shop]:
    """A PrestaShop shop without the module: probed every 30 s, its default."""
    with lambdas.begin() as session:
        shop = shops.create_shop(
            session, "prestashop", "Maison Lumière", presta_emulator.base_url, api_key=DEFAULT_KEY
        )
        session.flush()
        session.expunge(shop)
    assert shop.poll_interval_seconds == 30
    yield shop
    switch_off(lambdas, shop)


def poll_queue(stack: Stack) -> dict[str, int]:
    """The poll queue's messages as SQS counts them: visible, in flight, delayed."""
    attributes = stack.sqs().get_queue_attributes(
        QueueUrl=aws.queue_url(stack.settings, aws.POLL),
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return {
        "visible": int(attributes["ApproximateNumberOfMessages"]),
        "in flight": int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        "delayed": int(attributes["ApproximateNumberOfMessagesDelayed"]),
    }


def test_a_tick_asks_for_one_half_tick_which_polls_the_due_shop_and_asks_for_nothing(
    aws_stack: Stack,
    lambdas: sessionmaker[Session],
    presta: Shop,
    presta_emulator: PrestaShopEmulator,
) -> None:
    """EventBridge runs the schedule once a minute: a shop probed every 30 s gets a second
    poll in between from one delayed message on the poll queue."""
    tick = driver.scheduled_event("comptoir-poll")
    summary = poll.handler(tick, driver.LambdaContext("poll"))

    assert summary["half_tick"] is True
    [polled] = summary["polled"]
    # The first poll of a shop is the full poll: the probe has no cursor to start from.
    assert (polled["shop"], polled["stored"], polled["probed"]) == (presta.key, 1, False)
    # One message, held back by SQS: a receive now gets nothing, and still nothing a second on.
    sqs = aws_stack.sqs()
    url = aws.queue_url(aws_stack.settings, aws.POLL)
    assert "Messages" not in sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
    assert poll_queue(aws_stack) == {"visible": 0, "in flight": 0, "delayed": 1}

    # Half a minute later (the shop's last run set back, the delayed message sent again now),
    # an order changed meanwhile: SQS invokes the function with the message.
    with lambdas.begin() as session:
        session.execute(
            update(SyncCursor)
            .where(SyncCursor.shop_id == presta.id)
            .values(last_run_at=utcnow() - dt.timedelta(seconds=poll.HALF_TICK_SECONDS))
        )
    later = presta_emulator.clock() + dt.timedelta(seconds=1)
    presta_emulator.clock = lambda: later
    presta_emulator.update_order("101", current_state="4")  # type: ignore[attr-defined]
    presta_emulator.requests.clear()
    sqs.send_message(
        QueueUrl=url, MessageBody=json.dumps({"queue": aws.POLL, "tick": tick["time"]})
    )
    results: list[dict[str, Any]] = []

    def invoked(event: dict[str, Any], context: Any) -> dict[str, Any]:
        results.append(poll.handler(event, context))
        return results[-1]

    assert driver.consume_once(aws_stack.settings, aws.POLL, invoked, batch_size=1) == (1, 0)

    [half_tick] = results
    assert half_tick["batchItemFailures"] == [] and "half_tick" not in half_tick
    [polled] = half_tick["polled"]
    assert (polled["shop"], polled["stored"], polled["probed"], polled["error"]) == (
        presta.key,
        1,
        True,
        "",
    )
    assert [r.path for r in presta_emulator.requests] == ["/api/orders"]  # the probe alone
    # Nothing more asked: only the tick's own message still waits.
    assert poll_queue(aws_stack) == {"visible": 0, "in flight": 0, "delayed": 1}


def test_a_tick_with_no_shop_polled_more_often_than_a_minute_asks_for_no_half_tick(
    aws_stack: Stack,
    lambdas: sessionmaker[Session],
    woo: Shop,
    presta: Shop,
) -> None:
    with lambdas.begin() as session:
        session.get_one(Shop, woo.id).poll_interval_seconds = 60
    switch_off(lambdas, presta)  # at 30 s, but switched off

    summary = poll.handler(driver.scheduled_event("comptoir-poll"), driver.LambdaContext("poll"))

    assert summary["half_tick"] is False
    assert [p["shop"] for p in summary["polled"]] == [woo.key]
    assert poll_queue(aws_stack) == {"visible": 0, "in flight": 0, "delayed": 0}


# --- Push -------------------------------------------------------------------------------------


def test_the_push_schedule_delivers_a_message_due_for_retry_once(
    aws_stack: Stack,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    order_id = import_order(lambdas, woo, woo_emulator.add_order(woo_order()))
    drain(aws_stack, aws.PUSH, push.handler)  # whatever the import queued
    woo_emulator.requests.clear()
    woo_emulator.fail_next(503, path_contains="/notes", method="POST")
    add_comments(lambdas, order_id, "Votre colis part demain.")

    assert drain(aws_stack, aws.PUSH, push.handler) == 1
    assert messages(lambdas, order_id)[-1] == ("comment", OutboxState.FAILED, 1)
    assert notes_written(woo_emulator) == []
    # Its retry time comes; SQS holds nothing for it: the schedule's sweep sends it.
    with lambdas.begin() as session:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.order_id == order_id)
            .values(next_attempt_at=utcnow() - dt.timedelta(seconds=1))
        )
    tick = driver.scheduled_event("comptoir-push")
    short = driver.LambdaContext("push", timeout_ms=int(push.RESERVE_SECONDS * 1000) - 1000)
    assert push.handler(tick, short)["tried"] == 0
    assert notes_written(woo_emulator) == []

    assert push.handler(tick, driver.LambdaContext("push"))["tried"] == 1

    assert notes_written(woo_emulator) == ["Votre colis part demain."]
    assert messages(lambdas, order_id)[-1] == ("comment", OutboxState.SENT, 2)
    assert push.handler(driver.scheduled_event("comptoir-push"), None)["tried"] == 0
    assert notes_written(woo_emulator) == ["Votre colis part demain."]


def test_once_a_message_is_sent_the_next_of_its_order_goes_out_without_the_schedule(
    aws_stack: Stack,
    lambdas: sessionmaker[Session],
    woo: Shop,
    woo_emulator: WooCommerceEmulator,
) -> None:
    """The second comment waits behind the first, which failed; when a person retries the
    first and it is sent, the second is announced and follows through SQS alone."""
    order_id = import_order(lambdas, woo, woo_emulator.add_order(woo_order()))
    drain(aws_stack, aws.PUSH, push.handler)
    woo_emulator.requests.clear()
    woo_emulator.fail_next(503, path_contains="/notes", method="POST")
    add_comments(lambdas, order_id, "Premier message", "Second message")

    assert drain(aws_stack, aws.PUSH, push.handler) == 2
    assert [m[1:] for m in messages(lambdas, order_id)[-2:]] == [
        (OutboxState.FAILED, 1),
        (OutboxState.PENDING, 0),  # held back by the first: its message was acknowledged
    ]
    assert aws_stack.messages_in(aws.PUSH) == 0

    with lambdas.begin() as session:
        first = session.scalars(
            select(OutboxMessage).where(
                OutboxMessage.order_id == order_id, OutboxMessage.state == OutboxState.FAILED
            )
        ).one()
        outbox.retry(session, first, PERSON)

    drain(aws_stack, aws.PUSH, push.handler)

    assert notes_written(woo_emulator) == ["Premier message", "Second message"]
    assert [m[1] for m in messages(lambdas, order_id)[-2:]] == [OutboxState.SENT] * 2
