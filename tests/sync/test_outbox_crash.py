"""A dispatcher killed in the middle of a delivery: on restart, the shop gets it once.

The dispatcher runs as a real `flask sync run` process against its own database; the
emulated shop holds the write for a moment, the process is killed with SIGKILL while it
waits, and the shop applies the write all the same. The next dispatcher must find the
change at the shop and write nothing.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url, wait_until
from tests.emulators.woocommerce import WooCommerceEmulator
from web.db import make_engine
from web.models import OrderEvent, OutboxMessage, utcnow
from web.models.enums import OutboxState
from web.services import intake, order_actions, outbox, shops
from web.services.timeline import Actor

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "woocommerce" / "fr-order-company-bundle.json"


@pytest.fixture()
def database(tmp_path: Path) -> Iterator[str]:
    url = separate_database_url(tmp_path, "crash")
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


def test_a_dispatcher_killed_mid_delivery_delivers_once_on_restart(
    database: str, encryption_key: str, tmp_path: Path
) -> None:
    engine = make_engine(database)
    sessions: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
    with WooCommerceEmulator() as emulator:
        payload = copy.deepcopy(json.loads(FIXTURE.read_text()))
        payload["status"] = "processing"
        external_id = emulator.add_order(payload)  # type: ignore[attr-defined]
        with sessions.begin() as session:
            shop = shops.create_shop(
                session,
                "woocommerce",
                "Thés & Fonte",
                emulator.base_url,
                api_key=emulator.consumer_key,  # type: ignore[attr-defined]
                api_secret=emulator.consumer_secret,  # type: ignore[attr-defined]
            )
            shop_key = shop.key
            incoming = shops.connector_for(shop).fetch_order(external_id)
            order = intake.upsert_order(session, shop, incoming, Actor.shop()).order
            assert order is not None
            order_actions.perform(session, order, "cancel", Actor.system("test"), reason="Vol")
            order_id = order.id
        path = f"/orders/{external_id}"
        # Held long enough that the kill surely lands while the dispatcher waits.
        emulator.slow_next(4.0, path_contains=path, method="PUT")

        env = {
            **os.environ,
            "DATABASE_URL": database,
            "APP_ENCRYPTION_KEY": encryption_key,
            "APP_SECRET_KEY": "crash-test",
            "APP_INSTANCE_PATH": str(tmp_path / "instance"),
            "APP_ALLOW_PRIVATE_SHOP_URLS": "1",  # the shop is a loopback emulator
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "web.wsgi", "sync", "run", "--shop", shop_key],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until(lambda: emulator.requests_to("PUT", path), 60, "the dispatcher's write")
        finally:
            process.kill()
            output = process.communicate()[0].decode(errors="replace")
        assert process.returncode == -9, output
        # The shop finishes the write the dead process was waiting for.
        emulator.wait_idle(15)
        assert emulator.orders[external_id]["status"] == "cancelled"  # type: ignore[attr-defined]

        with sessions() as session:
            message = session.scalars(
                select(OutboxMessage).where(OutboxMessage.order_id == order_id)
            ).one()
            assert message.state == OutboxState.PENDING and message.attempts == 1
            assert message.claimed_until is not None
            assert message.claimed_until > utcnow()  # the dead process's lease

        assert outbox.dispatch_due(sessions) == 0  # the lease still holds
        assert outbox.dispatch_due(sessions, now=utcnow() + outbox.LEASE) == 1

        with sessions() as session:
            message = session.scalars(
                select(OutboxMessage).where(OutboxMessage.order_id == order_id)
            ).one()
            assert message.state == OutboxState.SENT and message.attempts == 2
            written = session.scalars(
                select(OrderEvent.details).where(
                    OrderEvent.order_id == order_id, OrderEvent.kind == "outbox.sent"
                )
            ).all()
        assert len(emulator.requests_to("PUT", path)) == 1
        assert written and written[0]["written"] is False  # "already at the shop"
    engine.dispose()
