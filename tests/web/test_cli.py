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
from web.services.users import authenticate, create_api_token, find_api_token


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
    api_token = find_api_token(db_session, token)
    assert api_token is not None and api_token.user.email == "a@example.com"


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
    assert find_api_token(db_session, token) is None


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


def test_shops_add_prints_id_key_and_webhook_url(app: Flask, db_session) -> None:
    import json

    from web.models import Shop

    result = app.test_cli_runner().invoke(
        args=[
            "shops",
            "add",
            "--platform",
            "woocommerce",
            "--name",
            "Ma Boutique",
            "--url",
            "https://boutique.example.fr/",
            "--api-key",
            "ck_1",
            "--api-secret",
            "cs_1",
            "--import-from",
            "2026-11-01",
        ]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) == {"id", "key", "webhook_url"}
    assert data["webhook_url"] == f"http://comptoir.test/hooks/woocommerce/{data['key']}"
    shop = db_session.get(Shop, data["id"])
    assert shop.base_url == "https://boutique.example.fr"
    assert shop.api_key == "ck_1" and shop.webhook_secret  # generated for WooCommerce
    assert str(shop.import_from) == "2026-11-01"
    assert {m.shop_status for m in shop.status_mappings} >= {"processing", "completed"}


def test_shops_add_refuses_a_bad_url_or_date(app: Flask) -> None:
    runner = app.test_cli_runner()
    bad_url = runner.invoke(
        args=["shops", "add", "--platform", "magento", "--name", "M", "--url", "ftp://nope"]
    )
    assert bad_url.exit_code != 0 and "https://" in bad_url.output
    bad_date = runner.invoke(
        args=[
            "shops",
            "add",
            "--platform",
            "magento",
            "--name",
            "M",
            "--url",
            "https://m.example.fr",
            "--import-from",
            "01/11/2026",
        ]
    )
    assert bad_date.exit_code != 0 and "YYYY-MM-DD" in bad_date.output


def test_orders_export_json_and_csv(app: Flask, db_session) -> None:
    import csv
    import io
    import json

    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo", "seed", "--orders", "15"]).exit_code == 0
    as_json = runner.invoke(args=["orders", "export", "--format", "json"])
    assert as_json.exit_code == 0, as_json.output
    orders = json.loads(as_json.output)
    assert len(orders) == 15
    first = orders[0]
    assert {"lines", "transactions", "shipments", "grand_total", "number"} <= set(first)
    shipped = [o for o in orders if o["shipments"]]
    assert shipped and shipped[0]["shipments"][0]["parcels"][0]["tracking_number"]
    rates = {line["tax_rate"] for order in orders for line in order["lines"]}
    assert "20" in rates and not any("E" in rate for rate in rates)  # never "2E+1"
    only_presta = json.loads(
        runner.invoke(args=["orders", "export", "--format", "json", "--shop", "demo-presta"]).output
    )
    assert only_presta and all(o["shop"] == "demo-presta" for o in only_presta)
    as_csv = runner.invoke(args=["orders", "export", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert {row["number"] for row in rows} == {o["number"] for o in orders}
    assert len(rows) == sum(len(o["lines"]) for o in orders)
    unknown = runner.invoke(args=["orders", "export", "--shop", "nope"])
    assert unknown.exit_code != 0 and "no shop" in unknown.output
