"""gunicorn as gunicorn.conf.py runs it: kept-alive connections shared out between its workers
(web/gunicorn_worker.py), and a stopped worker not holding the others back."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import wait_until
from tests.deploy.conftest import (
    ROOT,
    children_of,
    free_port,
    server_env,
    stop,
    wait_for_healthz,
)
from web.gunicorn_worker import STALE

pytestmark = pytest.mark.server

BIN = Path(sys.executable).parent


@contextmanager
def served(database: str, tmp_path: Path, key: str) -> Iterator[tuple[int, Path, list[int]]]:
    """gunicorn with the project's settings (2 workers × 2 threads here), its access lines
    naming the worker's pid and the connection's X-Connection header; its port, log, workers."""
    port = free_port()
    env = server_env(database, tmp_path, key, COMPTOIR_BIND=f"127.0.0.1:{port}")
    migrate = subprocess.run(
        [str(BIN / "flask"), "--app", "web.wsgi", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
    )
    assert migrate.returncode == 0, migrate.stderr.decode()
    log = tmp_path / "web.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                str(BIN / "gunicorn"),
                "--config",
                str(ROOT / "gunicorn.conf.py"),
                "--access-logformat",
                "%(p)s %({x-connection}i)s",
                "web.wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_healthz(f"http://127.0.0.1:{port}", server)
        workers = children_of(server.pid)
        assert len(workers) == 2, log.read_text()
        yield port, log, workers
        assert stop(server) == 0, log.read_text()[-3000:]
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def answered_by(log: Path) -> list[tuple[int, str]]:
    """(worker pid, X-Connection) of every request in the access log so far."""
    found = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("logger") == "gunicorn.access":
            pid, _, connection = record["message"].partition(" ")
            found.append((int(pid.strip("<>")), connection))
    return found


def get(connection: http.client.HTTPConnection, name: str) -> None:
    connection.request("GET", "/healthz", headers={"X-Connection": name})
    response = connection.getresponse()
    response.read()
    assert response.status == 200
    assert response.getheader("Connection", "").lower() != "close"


def open_connections(port: int, names: list[str]) -> list[http.client.HTTPConnection]:
    """Connections opened together, before any sends a request."""
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in names]
    for connection in connections:
        connection.connect()
    return connections


def both_workers_answer(port: int, log: Path, workers: list[int]) -> None:
    """Fresh connections until each worker has answered one: both have booted the app."""
    tries = iter(range(10_000))

    def answered() -> bool:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", "/healthz", headers={"X-Connection": f"boot-{next(tries)}"})
        connection.getresponse().read()
        connection.close()
        time.sleep(0.05)
        return {pid for pid, _ in answered_by(log)} >= set(workers)

    wait_until(answered, 60, "both gunicorn workers to answer")


def test_connections_opened_together_are_shared_out_and_a_stopped_worker_holds_none_back(
    server_database: str, tmp_path: Path, encryption_key: str
) -> None:
    with served(server_database, tmp_path, encryption_key) as (port, log, workers):
        both_workers_answer(port, log, workers)

        # Eight kept-alive connections opened at once, two requests on each: each stays with
        # one worker, and each worker has four. gthread alone gave most of them to whichever
        # worker woke first (5 runs: 3/5, 3/5, 2/6, 1/7, 2/6).
        names = [f"together-{n}" for n in range(8)]
        connections = open_connections(port, names)
        for _ in range(2):
            for connection, name in zip(connections, names, strict=True):
                get(connection, name)
        served_by: dict[str, set[int]] = {}
        for pid, name in answered_by(log):
            served_by.setdefault(name, set()).add(pid)
        assert all(len(served_by[name]) == 1 for name in names), served_by
        per_worker = sorted(sum(1 for name in names if served_by[name] == {pid}) for pid in workers)
        assert per_worker == [4, 4], served_by

        # One worker stopped (as if stuck) with its four connections: past STALE the other
        # takes every new connection, beyond its own threads and the stopped one's count.
        frozen = next(iter(served_by[names[0]]))
        other = next(pid for pid in workers if pid != frozen)
        for connection, name in zip(connections, names, strict=True):
            if served_by[name] != {frozen}:
                connection.close()
        os.kill(frozen, signal.SIGSTOP)
        try:
            time.sleep(STALE + 0.5)
            later = [f"later-{n}" for n in range(6)]
            opened = open_connections(port, later)
            for connection, name in zip(opened, later, strict=True):
                get(connection, name)  # times out (5 s) if no worker accepts it
            for connection in opened:
                connection.close()
        finally:
            os.kill(frozen, signal.SIGCONT)
        assert {pid for pid, name in answered_by(log) if name in later} == {other}
        for connection in connections:
            connection.close()
