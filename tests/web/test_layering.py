"""Dependencies point one way: models, services, connectors and documents never load Flask."""

from __future__ import annotations

import subprocess
import sys

from web import config


def test_domain_packages_import_without_flask() -> None:
    code = (
        "import sys\n"
        "import web.models, web.services, web.connectors, web.documents, web.queue, web.db\n"
        "import web.services.order_state, web.services.users, web.services.timeline\n"
        "import web.services.order_queries, web.services.dashboard, web.services.demo\n"
        "loaded = sorted(m for m in sys.modules if m == 'flask' or m.startswith('flask.'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=config.PROJECT_ROOT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
