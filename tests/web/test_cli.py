"""The command line as an operator uses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flask import Flask
from sqlalchemy import inspect

from web import config
from web.db import make_engine
from web.services.users import authenticate, create_api_token, user_for_token


def _flask(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flask", "--app", "web.wsgi", *args],
        capture_output=True,
        text=True,
        cwd=config.PROJECT_ROOT,
        env=env,
        timeout=120,
    )


def test_db_upgrade_builds_a_fresh_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite'}"
    env = {**os.environ, "DATABASE_URL": url, "APP_INSTANCE_PATH": str(tmp_path)}
    result = _flask("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    tables = set(inspect(make_engine(url)).get_table_names())
    assert {"orders", "shops", "inbox_events", "outbox_messages", "users"} <= tables
    created = _flask("users", "create", "--email", "Ops@Example.com", "--role", "admin", env=env)
    assert created.returncode == 0, created.stderr
    assert "created ops@example.com (admin)" in created.stdout
    assert "password: " in created.stdout


def test_users_create_and_token(app: Flask, db_session) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "users",
            "create",
            "--email",
            "a@example.com",
            "--role",
            "manager",
            "--password",
            "a long password",
        ]
    )
    assert result.exit_code == 0, result.output
    assert authenticate(db_session, "a@example.com", "a long password") is not None
    token_result = runner.invoke(args=["users", "token", "--email", "a@example.com"])
    assert token_result.exit_code == 0
    token = token_result.output.strip()
    assert token.startswith("cpt_")
    user = user_for_token(db_session, token)
    assert user is not None and user.email == "a@example.com"


def test_users_create_refuses_bad_input_with_a_reason(app: Flask) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["users", "create", "--email", "not-an-email", "--role", "viewer"])
    assert result.exit_code != 0
    assert "Invalid e-mail address" in result.output
    result = runner.invoke(args=["users", "create", "--email", "b@example.com", "--role", "boss"])
    assert result.exit_code != 0


def test_token_for_unknown_user_fails(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["users", "token", "--email", "ghost@example.com"])
    assert result.exit_code != 0
    assert "no user" in result.output


def test_revoked_token_no_longer_works(db_session, make_user) -> None:
    from web.models import utcnow

    user = make_user()
    token = create_api_token(db_session, user)
    user.tokens[0].revoked_at = utcnow()
    assert user_for_token(db_session, token) is None


def test_demo_seed_once_then_only_prints_the_logins(app: Flask, db_session) -> None:
    runner = app.test_cli_runner()
    first = runner.invoke(args=["demo", "seed", "--orders", "20", "--if-empty"])
    assert first.exit_code == 0, first.output
    assert "admin     admin@example.com" in first.output
    assert authenticate(db_session, "manager@example.com", "comptoir-demo") is not None
    second = runner.invoke(args=["demo", "seed", "--orders", "20", "--if-empty"])
    assert second.exit_code == 0
    assert "nothing seeded" in second.output
    assert "admin     admin@example.com" in second.output
    third = runner.invoke(args=["demo", "seed", "--orders", "20"])
    assert third.exit_code != 0
    assert "already present" in third.output
