"""Request ids and structured logs, for the web process and the worker alike (no Flask here).

A request gets an id (the client's X-Request-ID when it is sane, else a new one); it is in
every log line written while the request runs, in the X-Request-ID response header, and in
the jobs the request queues (`jobs.request_id`), so that the worker's lines for that work
carry it too.

With APP_LOG_FORMAT=json (the default of gunicorn.conf.py and bin/comptoir-run), each log line
is one JSON object: time, level, logger, message, request_id, then any `extra=` fields and
the exception's traceback. `flask run` and the tests keep plain text.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

HEADER = "X-Request-ID"
# A proxy's or a client's id is kept if it is plain: no spaces, quotes or control characters
# to forge a log line with, and not so long that it bloats every line.
SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{7,99}")

_request_id: ContextVar[str | None] = ContextVar("comptoir_request_id", default=None)

# What every LogRecord has: the rest of its attributes came from `extra=`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id", "taskName"}
)


def new_request_id() -> str:
    return uuid.uuid4().hex


def request_id_from(header: str | None) -> str:
    """The client's id when it is sane, else a new one."""
    if header and SANE_ID.fullmatch(header):
        return header
    return new_request_id()


def current_request_id() -> str | None:
    """The id of the request (or of the job's request) this code runs for, if any."""
    return _request_id.get()


@contextmanager
def bound(request_id: str | None) -> Iterator[None]:
    """Log under this request id while the block runs (a job run for a request's sake)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        _request_id.reset(token)


def bind(request_id: str | None) -> Any:
    """Set the id until `unbind(token)` (the request's before and teardown hooks)."""
    return _request_id.set(request_id)


def unbind(token: Any) -> None:
    _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Give each record the current request id (plain-text formats may print it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, then extras."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or _request_id.get(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_"):
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(log_format: str, level: str | int = logging.INFO) -> None:
    """Send the root logger's lines to stderr, as JSON when `log_format` is "json".

    Plain text (or nothing set) leaves logging as it was: `flask run` and pytest keep theirs.
    """
    if str(log_format).lower() != "json":
        return
    root = logging.getLogger()
    for handler in root.handlers:
        if getattr(handler, "comptoir_json", False):
            return  # configured already (create_app called twice in one process)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.comptoir_json = True  # type: ignore[attr-defined]
    root.handlers = [handler]
    root.setLevel(level)
    # Alembic (1.17+) writes seven "setup plugin …" lines at INFO whenever it is imported: a
    # page of noise in `make run`'s output and in production logs. Its "Running upgrade …"
    # lines stay.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
