"""What a Lambda handler needs before its first record: settings, services, a database.

Built once per Lambda container (a cold start) and reused by every invocation after it. The
settings come from the environment exactly as for the web app (DATABASE_URL, APP_*; secrets
are put there from SSM Parameter Store by the deployment, see infra/README.md), and
web/runtime.py configures the same services: storage, queue backend, encryption, links, jobs.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from web import config as app_config
from web import runtime
from web.db import make_engine, make_session_factory

log = logging.getLogger(__name__)

_lock = threading.Lock()
_sessions: sessionmaker[Session] | None = None
_config: dict[str, Any] = {}
_overrides: dict[str, Any] = {}


def instance_path() -> Path:
    """A writable folder: Lambda's file system is read-only except /tmp."""
    return Path(os.environ.get("APP_INSTANCE_PATH") or "/tmp/comptoir-instance")


def sessions() -> sessionmaker[Session]:
    """The session factory of this container, configuring everything on first use."""
    global _sessions, _config
    with _lock:
        if _sessions is None:
            config = app_config.load(_overrides, instance_path=instance_path())
            _config = config
            runtime.configure(config, instance_path())
            # One invocation at a time per container: a small pool is plenty, and RDS counts
            # connections per container.
            engine = make_engine(config["DATABASE_URL"], pool_size=2, max_overflow=2)
            _sessions = make_session_factory(engine)
            log.info("runtime configured: queue=%s storage=%s", config["QUEUE"], config["STORAGE"])
        return _sessions


def config() -> dict[str, Any]:
    """The settings this container was configured with (`sessions()` loads them)."""
    sessions()
    return _config


def use(overrides: Mapping[str, Any] | None = None) -> None:
    """Forget the configured runtime; the next `sessions()` builds it again with these settings
    over the environment's (`make aws-local`'s driver and the tests point it at their database
    and moto server)."""
    global _sessions, _overrides
    with _lock:
        if _sessions is not None:
            engine = _sessions.kw.get("bind")
            if engine is not None:
                engine.dispose()
        _sessions = None
        _overrides = dict(overrides or {})
