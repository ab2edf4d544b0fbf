"""A Comptoir served for real on a loopback port, its worker running: for the tests that talk to
it over HTTP (tests/browser, tests/modules) and for the benches (bench/shop_propagation.py)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from flask import Flask
from werkzeug.serving import make_server

from web.jobs import start_worker


@contextmanager
def serving(app: Flask) -> Iterator[str]:
    """Serve the app on a free loopback port with its background worker, as `make run` does
    (jobs, inbox and due polls); yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    worker = start_worker(app)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        worker.stop()
        worker.join(timeout=10)
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["comptoir.engine"].dispose()
