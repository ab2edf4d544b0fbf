"""Start-up: the import of `web.wsgi` and of each Lambda handler, against a bare `import flask`.

    .venv/bin/python bench/startup.py [--full] [--repeat N]

Each import runs in a fresh interpreter (the interpreter's own start left out: every runtime
pays it alike), median of N; the modules take turns, so a burst of load on the machine falls
on all of them alike. `web.wsgi` is what the web process (gunicorn, or the web Lambda through
Zappa's app_function) imports: it builds the app. The handlers are the modules of
sync_lambdas/ that the Lambda functions of infra/cloudformation.json name (intake, push, jobs,
render, poll, maintenance — those this checkout has). Baseline, same run: `import flask`.

Target (proposed in issue 13): each handler ≤ 0.75× `web.wsgi` — a Lambda's cold start should
not pay for the web app it does not serve.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from _report import Report, full_mode  # noqa: E402

import sync_lambdas  # noqa: E402

HANDLERS = [
    "sync_lambdas.intake",
    "sync_lambdas.push",
    "sync_lambdas.jobs",
    "sync_lambdas.render",
    "sync_lambdas.poll",
    "sync_lambdas.maintenance",
]
IMPORT_TIMER = (
    "import time, importlib; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print(time.perf_counter() - t)"
)


def written(module: str) -> bool:
    """Whether this checkout has the handler module (the package's own folder only: an
    editable install shared with another checkout may offer modules this one lacks)."""
    spec = importlib.util.find_spec(module)
    folder = Path(sync_lambdas.__file__).resolve().parent
    return spec is not None and spec.origin is not None and Path(spec.origin).parent == folder


def import_seconds(module: str, env: dict[str, str]) -> float:
    """How long a fresh interpreter takes to import `module` (the interpreter's start aside)."""
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_TIMER.format(module=module)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"import {module} failed:\n{result.stderr}")
    return float(result.stdout.strip().splitlines()[-1])


def environment(tmp: str) -> dict[str, str]:
    """What a deployed process has: a database URL, its keys; no APP_ setting of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "PYTHONPATH"))}
    env.update(
        {
            "DATABASE_URL": f"sqlite:///{tmp}/db/bench.sqlite",
            "APP_SECRET_KEY": secrets.token_urlsafe(32),
            "APP_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "APP_INSTANCE_PATH": f"{tmp}/instance",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "eu-west-3",
        }
    )
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="full sizes (or BENCH_FULL=1)")
    parser.add_argument(
        "--repeat", type=int, default=0, help="imports per module; quick 3, full 15"
    )
    parser.add_argument(
        "--handlers", default="", help="comma-separated handler names (e.g. intake); default all"
    )
    args = parser.parse_args()
    full = full_mode(args.full)
    repeat = args.repeat or (15 if full else 3)
    report = Report("start-up imports", full=full)
    chosen = [f"sync_lambdas.{name}" for name in args.handlers.split(",") if name]
    wanted = [module for module in HANDLERS if not chosen or module in chosen]
    handlers = [module for module in wanted if written(module)]
    missing = [module for module in wanted if module not in handlers]
    if missing:
        report.note(f"not in this checkout, not measured: {', '.join(missing)}")
    modules = ["flask", "web.wsgi", *handlers]
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "db").mkdir()
        env = environment(tmp)
        for module in modules:  # one warm-up each: .pyc files written, disk cache warm
            import_seconds(module, env)
        samples: dict[str, list[float]] = {module: [] for module in modules}
        for _ in range(repeat):
            for module in modules:
                samples[module].append(import_seconds(module, env) * 1000)
    medians = {module: statistics.median(values) for module, values in samples.items()}
    base = f"import flask, fresh interpreter, median of {repeat}"
    report.baseline(base, medians["flask"], "ms")
    for module in modules[1:]:
        report.figure(f"import {module}", medians[module], "ms", base)
    web = medians["web.wsgi"]
    for module in handlers:
        ratio = medians[module] / web
        report.target(f"import {module} ≤ 0.75× web.wsgi", ratio <= 0.75, f"{ratio:.2f}×")
    sys.exit(report.finish())


if __name__ == "__main__":
    main()
