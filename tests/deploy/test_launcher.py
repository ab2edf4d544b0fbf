"""`make run`'s launcher: gunicorn serves, its worker applies a webhook, Ctrl+C stops both."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.deploy.conftest import (
    ROOT,
    alive,
    children_of,
    create_woocommerce_shop,
    free_port,
    post_woocommerce_order,
    server_env,
    stop,
    wait_for_healthz,
    wait_for_order,
)
from tests.emulators.woocommerce import WooCommerceEmulator

pytestmark = pytest.mark.server

LAUNCHER = ROOT / "bin" / "comptoir-run"


def test_the_launcher_serves_through_gunicorn_and_its_worker_applies_a_webhook(
    server_database: str, tmp_path: Path, encryption_key: str
) -> None:
    port = free_port()
    log = tmp_path / "launcher.log"
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--bind", f"127.0.0.1:{port}"],
            cwd=tmp_path,  # the launcher finds the project itself
            env=server_env(server_database, tmp_path, encryption_key),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_healthz(base_url, launcher)
        banner = re.search(r"gunicorn pid (\d+), worker pid (\d+)", log.read_text())
        assert banner, log.read_text()
        gunicorn_pid, worker_pid = int(banner.group(1)), int(banner.group(2))
        gunicorn_workers = children_of(gunicorn_pid)
        assert len(gunicorn_workers) == 2, log.read_text()
        assert "gunicorn" in Path(f"/proc/{gunicorn_pid}/cmdline").read_text()
        assert "worker" in Path(f"/proc/{worker_pid}/cmdline").read_text().split("\0")

        with WooCommerceEmulator() as shop:
            shop_key = create_woocommerce_shop(server_database, shop.base_url)
            response = post_woocommerce_order(base_url, shop_key, 424_242)
            assert response.status_code == 200 and response.json() == {"status": "stored"}
            wait_for_order(server_database, "424242")

        assert stop(launcher, signal.SIGINT) == 0, log.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
    wait_until(
        lambda: not any(alive(pid) for pid in (gunicorn_pid, worker_pid, *gunicorn_workers)),
        10,
        "gunicorn, its workers and the queue worker to end",
    )
    output = log.read_text()
    assert "worker: stopped" in output and "comptoir-run: stopped" in output
    # Served by gunicorn, not by Werkzeug's development server.
    assert "Booting worker" in output and "development server" not in output


def test_the_launcher_stops_the_server_when_the_worker_dies(
    server_database: str, tmp_path: Path, encryption_key: str
) -> None:
    port = free_port()
    log = tmp_path / "launcher.log"
    with log.open("wb") as out:
        launcher = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=server_env(server_database, tmp_path, encryption_key),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_healthz(f"http://127.0.0.1:{port}", launcher)
        banner = re.search(r"gunicorn pid (\d+), worker pid (\d+)", log.read_text())
        assert banner, log.read_text()
        gunicorn_pid, worker_pid = int(banner.group(1)), int(banner.group(2))
        subprocess.run(["kill", "-KILL", str(worker_pid)], check=True)
        assert launcher.wait(timeout=40) == 1, log.read_text()
    finally:
        if launcher.poll() is None:
            launcher.kill()
    wait_until(lambda: not alive(gunicorn_pid), 10, "gunicorn to end")
    assert "worker exited; stopping the rest" in log.read_text()
