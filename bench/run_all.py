"""`make bench`: every bench script, each against its baseline and targets, then the table.

    .venv/bin/python bench/run_all.py [SCRIPT ...] [--doc docs/PERFORMANCE.md] [--no-postgres]

Runs every bench/*.py (except files starting with `_`, this one and datagen.py), or the
scripts named, one after another, each in its own process with BENCH_RESULTS set to a
temporary folder (where each writes `<script>.json` through bench/_report.py) and, unless
--no-postgres, BENCH_DATABASE_URL naming a throwaway PostgreSQL started once for the whole
run (tests/tools/postgres.sh). Quick sizes by default; BENCH_FULL=1 passes the full sizes on.

Each script's output is printed as it comes; then a summary (every figure with its baseline
and ratio, every target HOLDS / MISSED), which also replaces the table in the doc between
`<!-- bench:begin -->` and `<!-- bench:end -->`, with the date, the machine and the mode.
A script that crashes (exits non-zero or times out) is reported as such and the others still
run; the exit status is then 1. A script that exits 0 without writing results is listed as
such. A missed target is a finding, not a failure: exit 0.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

from _report import full_mode  # noqa: E402

BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"
NOT_SCRIPTS = {"run_all.py", "datagen.py"}
TIMEOUT_SECONDS = {False: 900, True: 6 * 3600}


def scripts(names: list[str]) -> list[Path]:
    if names:
        found = []
        for name in names:
            path = Path(name) if name.endswith(".py") else BENCH / f"{name}.py"
            if not path.is_file():
                raise SystemExit(f"no bench script {name}")
            found.append(path.resolve())
        return found
    return sorted(
        path
        for path in BENCH.glob("*.py")
        if not path.name.startswith("_") and path.name not in NOT_SCRIPTS
    )


# --- the machine --------------------------------------------------------------------------


def _first(path: str, pattern: str) -> str:
    try:
        match = re.search(pattern, Path(path).read_text(), re.MULTILINE)
    except OSError:
        return ""
    return match.group(1).strip() if match else ""


def postgres_version(url: str) -> str:
    if url:
        from sqlalchemy import text

        from web.db import make_engine

        engine = make_engine(url)
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar())
        finally:
            engine.dispose()
    return "not measured"


def machine(load: tuple[float, float, float], pg_url: str) -> dict[str, str]:
    mem_kb = _first("/proc/meminfo", r"^MemTotal:\s+(\d+)")
    return {
        "CPU": _first("/proc/cpuinfo", r"^model name\s*:\s*(.+)$") or platform.processor(),
        "cores": str(os.cpu_count()),
        "RAM": f"{int(mem_kb) / 1024 / 1024:.1f} GiB" if mem_kb else "unknown",
        "load average before the run": " ".join(f"{value:.2f}" for value in load),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "PostgreSQL": postgres_version(pg_url),
        "OS": platform.platform(terse=True),
    }


# --- running ------------------------------------------------------------------------------


def run_script(path: Path, env: dict[str, str], timeout: int) -> tuple[int | str, float]:
    """Run one script, its output straight to ours; its exit status (or "timeout")."""
    print(f"\n##### {path.name}", flush=True)
    started = time.perf_counter()
    try:
        status: int | str = subprocess.run(
            [sys.executable, str(path)], cwd=ROOT, env=env, timeout=timeout, check=False
        ).returncode
    except subprocess.TimeoutExpired:
        status = "timeout"
    return status, time.perf_counter() - started


def outcome(path: Path, status: int | str, results: Path) -> dict[str, Any]:
    data_path = results / f"{path.stem}.json"
    data: dict[str, Any] = {"script": path.stem, "figures": [], "targets": [], "notes": []}
    if data_path.is_file():
        data = json.loads(data_path.read_text())
    if status == "timeout":
        data["crash"] = f"timed out after {TIMEOUT_SECONDS[full_mode()]} s"
    elif status != 0:
        data["crash"] = f"exited with status {status}"
    elif not data_path.is_file():
        data["silent"] = "ran, but wrote no results (not on bench/_report.py yet)"
    return data


# --- the table ----------------------------------------------------------------------------


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return f"{value:,.2f}" if abs(value) < 1000 else f"{value:,.0f}"


def table(runs: list[dict[str, Any]], facts: dict[str, str], mode: str, when: str) -> str:
    lines = [
        f"Run of {when}, {mode} mode (`make bench`"
        + (" with `BENCH_FULL=1`" if mode == "full" else "")
        + ").",
        "",
        "Machine: " + "; ".join(f"{name} {value}" for name, value in facts.items()) + ".",
        "",
        "| script | figure | value | baseline | ratio |",
        "|---|---|---:|---|---:|",
    ]
    for run in runs:
        if run.get("crash"):
            lines.append(f"| {run['script']} | **CRASHED**: {run['crash']} | | | |")
        if run.get("silent"):
            lines.append(f"| {run['script']} | *{run['silent']}* | | | |")
        for fig in run["figures"]:
            ratio = f"{fig['ratio']:.2f}×" if fig.get("ratio") is not None else ""
            lines.append(
                f"| {run['script']} | {fig['name']} | {_number(fig['value'])} {fig['unit']} "
                f"| {fig.get('baseline') or ''} | {ratio} |"
            )
    lines += ["", "| script | target | verdict | measured |", "|---|---|---|---|"]
    for run in runs:
        for target in run["targets"]:
            verdict = "HOLDS" if target["holds"] else "**MISSED**"
            lines.append(
                f"| {run['script']} | {target['description']} | {verdict} | {target['detail']} |"
            )
    notes = [(run["script"], note) for run in runs for note in run.get("notes", [])]
    if notes:
        lines += ["", "Notes:", ""]
        lines += [f"- {script}: {note}" for script, note in notes]
    return "\n".join(lines)


def rewrite(doc: Path, body: str) -> None:
    text = doc.read_text() if doc.is_file() else f"# Performance\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{doc} has no {BEGIN} … {END} markers")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    doc.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")


def summary(runs: list[dict[str, Any]]) -> None:
    print("\n##### summary", flush=True)
    for run in runs:
        if run.get("crash"):
            print(f"{run['script']:<18} CRASHED: {run['crash']}")
        if run.get("silent"):
            print(f"{run['script']:<18} {run['silent']}")
        for fig in run["figures"]:
            ratio = f"{fig['ratio']:8.2f}x {fig['baseline']}" if fig.get("ratio") else ""
            print(
                f"{run['script']:<18} {fig['name']:<52} {fig['value']:12.2f} {fig['unit']:<8}"
                f" {ratio}"
            )
    for run in runs:
        for target in run["targets"]:
            verdict = "HOLDS" if target["holds"] else "MISSED"
            print(f"{run['script']:<18} {verdict:<7} {target['description']}  {target['detail']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scripts", nargs="*", help="names (or paths) of scripts; default: all")
    parser.add_argument("--doc", default=str(ROOT / "docs" / "PERFORMANCE.md"))
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()

    full = full_mode()
    load = os.getloadavg()
    started = dt.datetime.now(dt.UTC)
    with ExitStack() as stack:
        results = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-results.")))
        pg_url = ""
        if not args.no_postgres:
            from _common import throwaway_postgres

            pg_url = stack.enter_context(throwaway_postgres())
        env = {key: value for key, value in os.environ.items() if not key.startswith("APP_")}
        env["BENCH_RESULTS"] = str(results)
        env["BENCH_FULL"] = "1" if full else "0"
        env["PYTHONPATH"] = os.pathsep.join([str(BENCH), str(ROOT)])
        env.pop("BENCH_DATABASE_URL", None)
        if pg_url:
            env["BENCH_DATABASE_URL"] = pg_url
        facts = machine(load, pg_url)
        runs = []
        for path in scripts(args.scripts):
            status, seconds = run_script(path, env, TIMEOUT_SECONDS[full])
            run = outcome(path, status, results)
            run["seconds"] = seconds
            runs.append(run)
            print(f"##### {path.name}: {seconds:.0f} s", flush=True)

    summary(runs)
    when = started.strftime("%Y-%m-%d %H:%M UTC")
    rewrite(Path(args.doc), table(runs, facts, "full" if full else "quick", when))
    total = (dt.datetime.now(dt.UTC) - started).total_seconds()
    crashed = [run["script"] for run in runs if run.get("crash")]
    print(f"\n{len(runs)} scripts in {total:.0f} s; table written to {args.doc}")
    if crashed:
        print(f"CRASHED: {', '.join(crashed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
