"""`flask worker`: applies what the web server stored, and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import migrate, wait_until
from tests.deploy.conftest import (
    FIXTURE,
    ROOT,
    WEBHOOK_SECRET,
    create_woocommerce_shop,
    server_env,
    stop,
    wait_for_order,
)
from tests.emulators.woocommerce import WooCommerceEmulator
from web.app import create_app
from web.connectors.woocommerce import WooCommerceConnector

pytestmark = pytest.mark.server


def test_the_worker_applies_a_stored_webhook_and_stops_on_sigterm(
    server_database: str, tmp_path: Path, encryption_key: str
) -> None:
    migrate(server_database)
    log = tmp_path / "worker.log"
    with WooCommerceEmulator() as shop:
        shop_key = create_woocommerce_shop(server_database, shop.base_url)
        with log.open("wb") as out:
            worker = subprocess.Popen(
                [sys.executable, "-m", "flask", "--app", "web.wsgi", "worker"],
                cwd=ROOT,
                env=server_env(server_database, tmp_path, encryption_key),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_until(lambda: "worker: started" in log.read_text(), 30, "the worker to start")
            # The web side, in this process: it stores the delivery and nothing wakes the
            # worker, which finds it by asking the database.
            app = create_app(
                {
                    "DATABASE_URL": server_database,
                    "INSTANCE_PATH": str(tmp_path / "web"),
                    "SECRET_KEY": "web",
                    "ENCRYPTION_KEY": encryption_key,
                }
            )
            body = FIXTURE.read_bytes()
            response = app.test_client().post(
                f"/hooks/woocommerce/{shop_key}",
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "X-WC-Webhook-Topic": "order.created",
                    "X-WC-Webhook-Signature": WooCommerceConnector.signature(WEBHOOK_SECRET, body),
                },
            )
            assert response.get_json() == {"status": "stored"}
            assert "comptoir.worker" not in app.extensions  # the web app runs no worker
            wait_for_order(server_database, "4133")
            assert stop(worker, signal.SIGTERM, 20) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
    output = log.read_text()
    assert "SIGTERM received, stopping" in output and "worker: stopped" in output
    assert "Traceback" not in output
