"""The web app and the Lambda runtime in AWS mode, on one database both see.

The app (create_app) and the handlers of sync_lambdas/ run in this process, each with its own
engine and instance folder, as the web function and the render or jobs function would on AWS:
what one writes, the other can only find in the database, on SQS or on S3.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy.orm import Session, sessionmaker

from sync_lambdas import runtime
from tests.aws.conftest import Stack
from tests.conftest import TEST_PASSWORD
from web.app import create_app
from web.models import User
from web.models.enums import Role
from web.services.users import create_user


@contextmanager
def aws_app(
    stack: Stack,
    database_url: str,
    encryption_key: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Flask]:
    """The app on `database_url` in the stack's AWS mode, the Lambda runtime beside it."""
    settings = stack.settings_on(database_url, encryption_key)
    # The Lambda's writable folder is not the web app's (on AWS, each function has its /tmp).
    monkeypatch.setenv("APP_INSTANCE_PATH", str(tmp_path / "lambda"))
    runtime.use(settings)
    app = create_app({**settings, "TESTING": True, "INSTANCE_PATH": str(tmp_path / "web")})
    try:
        yield app
    finally:
        runtime.use()
        app.extensions["comptoir.engine"].dispose()


def sessions_of(app: Flask) -> sessionmaker[Session]:
    factory: sessionmaker[Session] = app.extensions["comptoir.sessions"]
    return factory


def new_user(app: Flask, role: Role = Role.MANAGER) -> User:
    """A committed user of a unique email (the module's database is shared by its tests)."""
    with sessions_of(app).begin() as session:
        email = f"{role.value}-{uuid.uuid4().hex[:8]}@example.com"
        user, _ = create_user(session, email, role, TEST_PASSWORD, role.value.title())
        session.flush()
        session.expunge(user)
    return user
