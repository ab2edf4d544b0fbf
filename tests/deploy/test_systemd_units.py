"""The systemd units in deploy/, run as written: their command lines, their settings file."""

from __future__ import annotations

import configparser
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.deploy.conftest import (
    ROOT,
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

DEPLOY = ROOT / "deploy"
INSTALL_DIR = "/opt/comptoir"


def read_unit(name: str) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(DEPLOY / name)
    return dict(parser["Service"])


def read_environment_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def localised(command: str) -> list[str]:
    """The unit's command line with the install folder replaced by this checkout and venv."""
    venv_bin = str(Path(sys.executable).parent)
    command = command.replace(f"{INSTALL_DIR}/.venv/bin", venv_bin)
    return shlex.split(command.replace(INSTALL_DIR, str(ROOT)))


def test_the_units_name_the_same_install_and_settings() -> None:
    web, worker = read_unit("comptoir-web.service"), read_unit("comptoir-worker.service")
    for unit in (web, worker):
        assert unit["WorkingDirectory"] == INSTALL_DIR
        assert unit["EnvironmentFile"] == "/etc/comptoir/comptoir.env"
        assert unit["KillSignal"] == "SIGTERM"
    assert "gunicorn --config /opt/comptoir/gunicorn.conf.py web.wsgi:app" in web["ExecStart"]
    assert web["ExecStartPre"].endswith("db upgrade")
    assert worker["ExecStart"].endswith("flask --app web.wsgi worker")
    example = read_environment_file(DEPLOY / "comptoir.env.example")
    assert example["APP_BASE_URL"].startswith("https://")
    assert example["COMPTOIR_BIND"].startswith("127.0.0.1:")


def test_the_units_command_lines_serve_and_apply_a_webhook(
    server_database: str, tmp_path: Path, encryption_key: str
) -> None:
    web, worker = read_unit("comptoir-web.service"), read_unit("comptoir-worker.service")
    port = free_port()
    settings = read_environment_file(DEPLOY / "comptoir.env.example")
    settings.update(
        DATABASE_URL=server_database,
        APP_SECRET_KEY="units-test",
        APP_ENCRYPTION_KEY=encryption_key,
        APP_INSTANCE_PATH=str(tmp_path / "var-lib-comptoir"),
        COMPTOIR_BIND=f"127.0.0.1:{port}",
        COMPTOIR_THREADS="2",
    )
    env = server_env(server_database, tmp_path, encryption_key, **settings)
    cwd = web["WorkingDirectory"].replace(INSTALL_DIR, str(ROOT))

    pre = subprocess.run(localised(web["ExecStartPre"]), cwd=cwd, env=env, capture_output=True)
    assert pre.returncode == 0, pre.stderr.decode()
    logs = {name: (tmp_path / f"{name}.log").open("wb") for name in ("web", "worker")}
    processes = {
        name: subprocess.Popen(
            localised(unit["ExecStart"]), cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for (name, unit), log in zip((("web", web), ("worker", worker)), logs.values(), strict=True)
    }
    try:
        base_url = f"http://127.0.0.1:{port}"
        wait_for_healthz(base_url, processes["web"])
        with WooCommerceEmulator() as shop:
            shop_key = create_woocommerce_shop(server_database, shop.base_url)
            response = post_woocommerce_order(base_url, shop_key, 515_151)
            assert response.json() == {"status": "stored"}
            wait_for_order(server_database, "515151")
        # As systemd stops them: KillSignal=SIGTERM, within TimeoutStopSec.
        for name, unit in (("web", web), ("worker", worker)):
            assert stop(processes[name], signal.SIGTERM, float(unit["TimeoutStopSec"])) == 0
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.kill()
        for log in logs.values():
            log.close()
    access_log = (tmp_path / "web.log").read_text()
    assert f"POST /hooks/woocommerce/{shop_key} HTTP/1.1" in access_log
