"""The benchmark scripts still run end to end (tiny sizes): a figure nobody can reproduce is
no figure. They measure nothing here; they must start, finish and check their own results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]


def run_bench(*args: str, results: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    if results is not None:
        env["BENCH_RESULTS"] = str(results)
    result = subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_webhook_intake_bench_stores_every_delivery_once() -> None:
    out = run_bench("bench/webhook_intake.py", "--deliveries", "40", "--healthz", "40")
    assert "ratio deliveries/healthz" in out
    assert "missing 0, more than once 0, unexpected 0) OK" in out


def test_outbox_latency_bench_delivers_to_the_emulated_shop() -> None:
    out = run_bench("bench/outbox_latency.py", "--changes", "3")
    assert "commit -> shop received" in out


def test_tracking_import_bench_ships_then_finds_everything_already_there() -> None:
    out = run_bench("bench/tracking_import.py", "--count", "5")
    assert "{'created': 5, 'completed': 0, 'already_there': 0, 'refused': 0}" in out
    assert "{'created': 0, 'completed': 0, 'already_there': 5, 'refused': 0}" in out


def test_delivery_notes_bench_renders_against_its_baseline() -> None:
    out = run_bench("bench/delivery_notes.py", "--count", "3", "--repeat", "2")
    assert "x the empty page" in out
    assert "issue 3 delivery notes" in out


def test_invoices_bench_renders_factur_x_against_the_delivery_note() -> None:
    out = run_bench("bench/invoices.py", "--lines", "12", "--repeat", "1", "--count", "2")
    assert "invoice of  12 order lines (17 lines, " in out
    assert "x the delivery note" in out
    assert "issue 2 invoices" in out


def test_aws_bench_times_imports_and_moves_every_event_through_sqs_once() -> None:
    out = run_bench("bench/aws.py", "--repeat", "1", "--events", "12")
    assert "import flask (baseline)" in out and "import sync_lambdas.intake" in out
    assert "SQS → intake Lambda, 4 consumer(s)" in out
    assert "every delivery made exactly one order in each run (36 orders) OK" in out


def test_desk_scale_bench_measures_every_page_against_its_raw_sql(tmp_path: Path) -> None:
    database = "postgresql" if os.environ.get("TEST_DATABASE_URL") else "sqlite"
    args = ["--database", database, "--orders", "120", "--repeat", "1", "--budget", "0"]
    if database == "postgresql":
        args += ["--database-url", os.environ["TEST_DATABASE_URL"]]
    run_bench("bench/desk_scale.py", *args, results=tmp_path)
    report = json.loads((tmp_path / "desk_scale.json").read_text())
    label = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[database]
    figures = {figure["name"]: figure for figure in report["figures"]}
    targets = {target["description"] for target in report["targets"]}
    for page in DESK_PAGES:
        name = f"{label}: {page}"
        assert figures[f"{name} raw SQL"]["value"] > 0, name
        assert figures[f"{name} p50"]["ratio"] > 0, name
        assert figures[f"{name} p95"]["value"] >= figures[f"{name} p50"]["value"], name
        assert figures[f"{name} SQL statements"]["value"] >= 2, name
        assert f"{name}: p50 ≤ 2× raw SQL" in targets, name
    assert f"{label}: search tracking number: finds the order" in targets
    assert figures[f"{label}: load rate"]["unit"] == "rows/s"


DESK_PAGES = (
    "order list, first page",
    "filter shop",
    "filter commercial=new",
    "filter commercial=validated",
    "filter fulfilment=unfulfilled",
    "filter payment=unpaid",
    "filter paid + unfulfilled",
    "filter on hold",
    "filter needs mapping",
    "filter ready to prepare",
    "filter dates (this month)",
    "sort placed_at",
    "sort number",
    "sort -number",
    "sort total",
    "sort -total",
    "sort customer",
    "sort -customer",
    "page 200",
    "last page",
    "search order number",
    "search buyer name",
    "search e-mail",
    "search SKU",
    "search tracking number",
    "order page",
    "dashboard",
    "warehouse queue",
    "API list, search e-mail",
)
