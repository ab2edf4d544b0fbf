"""What the tests across the languages share: a live Comptoir on a loopback port with its
worker (the modules' PHP drivers that send it notifications are in tests/modules/drivers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import separate_app
from tests.live import serving


@dataclass
class Live:
    """A Comptoir served on a free loopback port, its worker running."""

    base_url: str
    sessions: sessionmaker[Session]
    app: Flask


@pytest.fixture()
def live(tmp_path: Path, encryption_key: str) -> Iterator[Live]:
    """A Comptoir on a free loopback port with its worker, on a database of its own."""
    app = separate_app(tmp_path, "php", encryption_key)
    with serving(app) as base_url:
        yield Live(base_url, app.extensions["comptoir.sessions"], app)
