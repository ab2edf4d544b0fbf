"""Observability: JSON log lines with the request id, the id carried into the worker's lines
for a job the request queued, /metrics behind its token, and the inbox's lag in the nav."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import csrf_token, log_in
from tests.factories import make_event, make_message, make_order, make_shop
from web import queue
from web.app import create_app
from web.models import Job, SyncCursor, User, utcnow
from web.models.enums import InboxState, OutboxState, Role
from web.observability import JsonFormatter, RequestIdFilter, configure_logging

TOKEN = "metrics-token-0123456789"


@pytest.fixture()
def json_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The root logger's lines as production writes them (APP_LOG_FORMAT=json), parsed."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    root.removeHandler(handler)
    root.setLevel(level)


def test_a_log_line_is_one_json_object_with_the_request_id_and_extras(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    def logged() -> str:
        logging.getLogger("web.test").warning("stock low for %s", "MUG", extra={"sku": "MUG"})
        try:
            raise ValueError("boom")
        except ValueError:
            logging.getLogger("web.test").exception("it failed")
        return "ok"

    app.add_url_rule("/test/logged", "logged", logged)
    login_as(Role.MANAGER)
    response = client.get("/test/logged", headers={"X-Request-ID": "edge-4f2a9c81"})
    assert response.headers["X-Request-ID"] == "edge-4f2a9c81"

    lines = [line for line in json_lines() if line["logger"] == "web.test"]
    assert lines[0]["message"] == "stock low for MUG" and lines[0]["sku"] == "MUG"
    assert lines[0]["level"] == "WARNING" and lines[0]["request_id"] == "edge-4f2a9c81"
    assert dt.datetime.fromisoformat(lines[0]["time"]).tzinfo is not None
    assert lines[1]["request_id"] == "edge-4f2a9c81"
    assert "ValueError: boom" in lines[1]["exception"]


def test_a_request_gets_a_new_id_unless_the_one_given_is_sane(client: FlaskClient) -> None:
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    assert client.get("/healthz").headers["X-Request-ID"] != generated
    forged = client.get("/healthz", headers={"X-Request-ID": 'x" level=ERROR fake="line'})
    assert re.fullmatch(r"[0-9a-f]{32}", forged.headers["X-Request-ID"])
    assert client.get("/healthz", headers={"X-Request-ID": "short"}).headers["X-Request-ID"] != (
        "short"
    )


def test_the_request_id_reaches_the_log_lines_of_the_job_it_queued(
    client: FlaskClient,
    login_as: Callable[..., User],
    db_session: Session,
    session_factory: sessionmaker[Session],
    json_lines: Callable[[], list[dict[str, Any]]],
) -> None:
    shop = make_shop(db_session, "logs")
    order = make_order(db_session, shop)
    db_session.commit()
    login_as(Role.MANAGER)
    token = csrf_token(client, "/orders/")
    response = client.post(
        "/orders/bulk",
        data={"op": "export_csv", "ids": [str(order.id)], "csrf_token": token},
        headers={"X-Request-ID": "req-export-0001"},
    )
    assert response.status_code in (200, 303)
    job = db_session.scalars(select(Job)).one()
    assert job.request_id == "req-export-0001"

    assert queue.run_pending(session_factory) == 1
    done = [line for line in json_lines() if line["message"].startswith(f"job {job.id} ")]
    assert done and all(line["request_id"] == "req-export-0001" for line in done)
    assert done[-1]["job_id"] == job.id and done[-1]["job_kind"] == job.kind


def test_json_logging_is_turned_on_by_the_setting_only() -> None:
    root = logging.getLogger()
    kept = list(root.handlers), root.level
    try:
        configure_logging("text")
        assert root.handlers == kept[0]
        configure_logging("json")
        assert [type(h.formatter) for h in root.handlers] == [JsonFormatter]
        configure_logging("json")  # twice in one process: still one handler
        assert len(root.handlers) == 1
    finally:
        root.handlers, _ = kept
        root.setLevel(kept[1])


def test_json_logging_leaves_out_alembics_plugin_lines_and_keeps_its_migrations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, plugins = logging.getLogger(), logging.getLogger("alembic.runtime.plugins")
    kept = list(root.handlers), root.level, plugins.level
    try:
        configure_logging("json")
        plugins.info("setup plugin %s", "alembic.autogenerate.schemas")
        logging.getLogger("alembic.runtime.migration").info("Running upgrade 0021 -> 0022")
        messages = [json.loads(line)["message"] for line in capsys.readouterr().err.splitlines()]
        assert messages == ["Running upgrade 0021 -> 0022"]
    finally:
        root.handlers, _, _ = kept
        root.setLevel(kept[1])
        plugins.setLevel(kept[2])


# --- /metrics ---------------------------------------------------------------------------------

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text format, version 0.0.4: every sample by name and labels."""
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            types[name] = kind
            continue
        if line.startswith("#") or not line:
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        name, labels, value = match.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in types or family in types, f"{name} has no TYPE"
        key = (name, frozenset(LABEL.findall(labels or "")))
        assert key not in samples, f"{key} twice"
        samples[key] = float(value)
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture()
def metrics_app(app_overrides: dict[str, Any], session_factory: sessionmaker[Session]) -> Flask:
    app = create_app({**app_overrides, "METRICS_TOKEN": TOKEN})
    app.extensions["comptoir.sessions"] = session_factory
    return app


def test_metrics_need_the_token_and_do_not_exist_without_one(
    client: FlaskClient, metrics_app: Flask
) -> None:
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
    scraper = metrics_app.test_client()
    assert scraper.get("/metrics").status_code == 401
    wrong = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
    assert wrong.status_code == 401 and "Bearer" in wrong.headers["WWW-Authenticate"]
    assert scraper.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    right = scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 200 and right.content_type.startswith("text/plain; version=0.0.4")
    assert "Set-Cookie" not in right.headers  # no login, no session


def test_metrics_tell_the_queues_depth_and_age_poll_ages_issues_and_latency(
    metrics_app: Flask, db_session: Session
) -> None:
    shop = make_shop(db_session, "paris")
    quiet = make_shop(db_session, "lyon")
    order = make_order(db_session, shop)
    now = utcnow()
    # (The factories' clock is fixed in the past: every time here is set from now.)
    for state, age in ((InboxState.PENDING, 7 * 60), (InboxState.PENDING, 5)):
        make_event(db_session, shop, state=state).received_at = now - dt.timedelta(seconds=age)
    for state in (InboxState.FAILED, InboxState.PARKED):
        make_event(db_session, shop, state=state).received_at = now - dt.timedelta(seconds=1)
    make_message(db_session, order, state=OutboxState.DEAD)
    for delay in (-5, 300):  # one due, one not yet
        make_message(db_session, order, state=OutboxState.PENDING).next_attempt_at = (
            now + dt.timedelta(seconds=delay)
        )
    queue.enqueue(db_session, "orders.export", {"selection": {"ids": []}, "format": "csv"}, None)
    db_session.add(
        SyncCursor(shop=shop, flow="orders", last_success_at=now - dt.timedelta(seconds=90))
    )
    db_session.add(SyncCursor(shop=quiet, flow="orders", last_success_at=None))
    db_session.commit()

    scraper = metrics_app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    scraper.get("/healthz")
    samples = parse(scraper.get("/metrics", headers=headers).get_data(as_text=True))

    assert value(samples, "comptoir_inbox_events_waiting", state="pending") == 2
    assert value(samples, "comptoir_inbox_events_waiting", state="failed") == 1
    assert 7 * 60 <= value(samples, "comptoir_inbox_lag_seconds") < 8 * 60
    assert value(samples, "comptoir_outbox_due_messages") == 1
    assert value(samples, "comptoir_outbox_dead_messages") == 1
    assert value(samples, "comptoir_jobs", state="queued") == 1
    assert value(samples, "comptoir_jobs", state="running") == 0
    assert 90 <= value(samples, "comptoir_shop_poll_age_seconds", shop="paris") < 120
    assert ("comptoir_shop_poll_age_seconds", frozenset({("shop", "lyon")})) not in samples
    assert value(samples, "comptoir_sync_issues", kind="inbox") == 2  # failed + parked
    assert value(samples, "comptoir_sync_issues", kind="outbox") == 1
    health = value(samples, "comptoir_request_duration_seconds_count", kind="health")
    assert health >= 1
    assert value(samples, "comptoir_request_duration_seconds_bucket", kind="health", le="+Inf") == (
        health
    )


# --- The inbox's lag at a glance -------------------------------------------------------------


def test_the_nav_shows_how_long_the_oldest_delivery_has_waited_after_a_minute(
    app: Flask,
    client: FlaskClient,
    login_as: Callable[..., User],
    make_user: Callable[..., User],
    db_session: Session,
) -> None:
    shop = make_shop(db_session, "lag")
    event = make_event(db_session, shop, state=InboxState.PENDING)
    event.received_at = utcnow() - dt.timedelta(seconds=20)
    db_session.commit()
    login_as(Role.MANAGER)
    client.post("/language", data={"lang": "en", "csrf_token": csrf_token(client, "/orders/")})
    assert "behind" not in client.get("/sync/issues/").get_data(as_text=True)

    event.received_at = utcnow() - dt.timedelta(minutes=12)
    db_session.commit()
    page = client.get("/sync/issues/").get_data(as_text=True)
    assert re.search(r'class="nav-lag"[^>]*>12 minutes behind<', page)
    badge = client.get("/sync/issues/count").get_data(as_text=True)
    assert "12 minutes behind" in badge

    warehouse = app.test_client()
    log_in(warehouse, make_user(Role.WAREHOUSE).email)
    assert "behind" not in warehouse.get("/warehouse/").get_data(as_text=True)
