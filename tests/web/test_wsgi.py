"""The server's entry point, in a fresh interpreter as gunicorn's worker imports it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_entry_point_builds_the_app_and_freezes_start_up_out_of_the_collector(
    tmp_path: Path,
) -> None:
    # A full collection walked every start-up object (about 80 ms on the 2-core machine, on
    # whichever request was running); frozen, they are skipped. Objects made later are not.
    code = (
        "import gc\n"
        "import web.wsgi\n"
        "frozen = gc.get_freeze_count()\n"
        "later = [[] for _ in range(1000)]\n"
        "print(type(web.wsgi.app).__name__, frozen, gc.get_freeze_count() - frozen)\n"
    )
    environment = {
        "PATH": "/usr/bin:/bin",
        "APP_INSTANCE_PATH": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'wsgi.sqlite'}",
        "APP_SECRET_KEY": "wsgi-check",
    }
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    name, frozen, added = result.stdout.split()
    assert name == "Flask"
    assert int(frozen) > 50_000  # the modules, the app and its settings
    assert int(added) == 0
