"""The benchmark harness and scripts still run end to end (tiny sizes): a figure nobody can
reproduce is no figure. They measure nothing here; they must start, finish, check their own
results and write them where `make bench` gathers them.

Database-independent: the scripts make their own databases (SQLite here; PostgreSQL only
when `make bench` hands them a server), so this file runs in the SQLite pass of the suite
only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(bool(os.environ.get("TEST_DATABASE_URL")), reason="database-independent"),
]

ROOT = Path(__file__).resolve().parents[2]


def bench_env(results: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("APP_", "BENCH_", "TEST_DATABASE_URL"))
    }
    env["BENCH_RESULTS"] = str(results)
    return env


def run_bench(results: Path, script: str, *args: str) -> dict[str, Any]:
    """Run one script at tiny sizes; its JSON results (it must exit 0)."""
    result = subprocess.run(
        [sys.executable, f"bench/{script}.py", *args],
        cwd=ROOT,
        env=bench_env(results),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data: dict[str, Any] = json.loads((results / f"{script}.json").read_text())
    assert data["script"] == script and data["mode"] == "quick"
    return data


def figures(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {figure["name"]: figure for figure in data["figures"]}


def targets(data: dict[str, Any]) -> dict[str, bool]:
    return {target["description"]: target["holds"] for target in data["targets"]}


TINY_SCRIPT = """
from _report import Report
report = Report("tiny")
report.baseline("the baseline", 4.0, "ms")
report.figure("the figure", 2.0, "ms", baseline="the baseline")
report.target("the figure ≤ 0.75× the baseline", True, "0.50×")
report.target("the figure ≤ 0.1× the baseline", False, "0.50×")
raise SystemExit(report.finish())
"""


def test_run_all_rewrites_the_table_between_the_markers_and_reports_a_crash(
    tmp_path: Path,
) -> None:
    (tmp_path / "tiny.py").write_text(TINY_SCRIPT)
    (tmp_path / "broken.py").write_text("raise RuntimeError('the bench broke')\n")
    doc = tmp_path / "PERFORMANCE.md"
    doc.write_text(
        "# Performance\n\nbefore\n<!-- bench:begin -->\nan old table\n<!-- bench:end -->\nafter\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "bench/run_all.py",
            "--no-postgres",
            "--doc",
            str(doc),
            str(tmp_path / "broken.py"),
            str(tmp_path / "tiny.py"),
        ],
        cwd=ROOT,
        env=bench_env(tmp_path / "unused"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out  # the crash fails the run ...
    assert "the bench broke" in out  # ... its output shown ...
    assert "broken             CRASHED: exited with status 1" in out
    assert "tiny               MISSED  the figure ≤ 0.1× the baseline" in out  # ... the rest ran

    text = doc.read_text()
    assert text.startswith("# Performance\n\nbefore\n<!-- bench:begin -->\n")
    assert text.endswith("<!-- bench:end -->\nafter\n")
    assert "an old table" not in text
    assert "quick mode" in text and "cores" in text and "SQLite" in text
    assert "PostgreSQL not measured" in text
    assert "| broken | **CRASHED**: exited with status 1 | | | |" in text
    assert "| tiny | the figure | 2.00 ms | the baseline | 0.50× |" in text
    assert "| tiny | the figure ≤ 0.75× the baseline | HOLDS | 0.50× |" in text
    assert "| tiny | the figure ≤ 0.1× the baseline | **MISSED** | 0.50× |" in text


def test_webhook_intake_bench_stores_every_delivery_once(tmp_path: Path) -> None:
    data = run_bench(
        tmp_path, "webhook_intake", "--deliveries", "40", "--healthz", "40", "--sqlite-only"
    )
    assert figures(data)["sqlite: signed deliveries (40 requests)"]["ratio"] > 0
    assert targets(data)["sqlite: every accepted delivery in the inbox once"] is True
    assert "sqlite: delivery p99 ≤ 25 ms" in targets(data)


def test_processing_bench_makes_one_order_per_event_against_a_bare_insert(
    tmp_path: Path,
) -> None:
    # With its warm-up: the bare insert copies those orders first (and their counts once broke it).
    data = run_bench(tmp_path, "processing", "--orders", "6", "--sqlite-only")
    found = figures(data)
    assert found["sqlite: inbox → orders, one worker (6 events)"]["ratio"] > 0
    assert found["sqlite: worker peak RSS"]["value"] > 10
    assert targets(data) == {"sqlite: every event processed into one order": True}


def test_propagation_bench_goes_both_ways(tmp_path: Path) -> None:
    data = run_bench(tmp_path, "outbox_latency", "--changes", "2", "--sqlite-only")
    found = figures(data)
    assert found["sqlite: desk commit → shop received, p95"]["ratio"] > 0
    assert found["sqlite: webhook sent → order in the API, p95"]["ratio"] > 0
    assert set(targets(data)) == {"sqlite: desk → shop p95 ≤ 1 s", "sqlite: shop → desk p95 ≤ 1 s"}


def test_document_benches_render_against_the_engines_alone(tmp_path: Path) -> None:
    invoices = run_bench(tmp_path, "invoices", "--lines", "3", "--repeat", "1", "--count", "1")
    names = [figure["name"] for figure in invoices["figures"]]
    assert any(name.startswith("a 3-line invoice (") for name in names)
    baselines = [f["baseline"] for f in invoices["figures"] if f["baseline"]]
    assert "one invoice: the same HTML, WeasyPrint alone" in baselines
    notes = run_bench(tmp_path, "delivery_notes", "--count", "2", "--repeat", "1")
    assert targets(notes) == {"2 notes issued, all in the one PDF": True}
    baselines = [f["baseline"] for f in notes["figures"] if f["baseline"]]
    assert "2 notes as one PDF: the same HTML, WeasyPrint alone, merged" in baselines


def test_startup_bench_times_every_handler_against_import_flask(tmp_path: Path) -> None:
    data = run_bench(tmp_path, "startup", "--repeat", "1", "--handlers", "intake")
    found = figures(data)
    assert found["import web.wsgi"]["ratio"] > 1
    assert "import sync_lambdas.intake ≤ 0.75× web.wsgi" in targets(data)


def test_aws_and_tracking_benches_check_their_own_counts(tmp_path: Path) -> None:
    aws = run_bench(tmp_path, "aws", "--events", "6", "--consumers", "2")
    assert targets(aws) == {"sqlite: every delivery made exactly one order (12 orders)": True}
    tracking = run_bench(tmp_path, "tracking_import", "--count", "5")
    assert list(targets(tracking).values()) == [True]


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


def test_desk_scale_bench_measures_every_page_against_its_raw_sql(tmp_path: Path) -> None:
    data = run_bench(
        tmp_path, "desk_scale", "--database", "sqlite", "--orders", "120", "--repeat", "1",
        "--budget", "0",
    )  # fmt: skip
    measured = figures(data)
    aims = targets(data)
    for page in DESK_PAGES:
        name = f"SQLite: {page}"
        assert measured[f"{name} raw SQL"]["value"] > 0, name
        assert measured[f"{name} p50"]["ratio"] > 0, name
        assert measured[f"{name} p95"]["value"] >= measured[f"{name} p50"]["value"], name
        assert measured[f"{name} SQL statements"]["value"] >= 2, name
        assert f"{name}: p50 ≤ 2× raw SQL" in aims, name
    assert "SQLite: search tracking number: finds the order" in aims
    assert measured["SQLite: load rate"]["unit"] == "rows/s"


def test_shop_propagation_bench_measures_the_module_and_the_probe(tmp_path: Path) -> None:
    data = run_bench(
        tmp_path, "shop_propagation", "--changes", "1", "--probe-changes", "1",
        "--probe-interval", "1", "--platforms", "prestashop", "--sqlite-only",
    )  # fmt: skip
    found = figures(data)
    assert found["sqlite prestashop: with the module, change → in the API, p95"]["ratio"] > 0
    assert found["sqlite prestashop: without the module (probe every 1 s), p95"]["value"] > 0
    assert set(targets(data)) == {
        "sqlite prestashop: with the module, p95 ≤ 1 s",
        "sqlite prestashop: without the module (probe every 1 s), p95 ≤ 6 s",
    }
