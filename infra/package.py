#!/usr/bin/env python3
"""`make package`: build each Zappa stage's Lambda zip and check it against Lambda's limits.

    python3 infra/package.py [STAGE ...]       # every stage of infra/zappa_settings.json by default

Zappa packages the virtualenv it runs in, so the zips are built from a venv of their own
(build/package-venv: the app's dependencies and the `deploy` extra, none of the test tools of
.venv), with VIRTUAL_ENV pointing at it (otherwise Zappa falls back to pyenv's interpreter).
Zappa swaps compiled packages for manylinux wheels from PyPI (cached in /tmp/cached_wheels),
so the first run needs the network. The zips land in build/package/STAGE.zip.

Fails (exit 1) when a zip is above 50 MiB (direct upload) or unpacks above 250 MiB, or when a
stage's handler does not import from its unpacked zip alone (`python -S`: no site-packages;
only boto3 and what comes with it beside, as the Lambda runtime provides them). Not part of
`make test`: it takes minutes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "infra" / "zappa_settings.json"
VENV = ROOT / "build" / "package-venv"
OUTPUT = ROOT / "build" / "package"
MIB = 1024 * 1024
# What the Lambda Python runtime provides (so Zappa leaves it out of the zips).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six.py", "urllib3")
ZIPPED_LIMIT = 50 * MIB
UNZIPPED_LIMIT = 250 * MIB


def ensure_venv() -> Path:
    """The packaging venv, (re)installed when pyproject.toml changed since the last install."""
    python = VENV / "bin" / "python"
    stamp = VENV / ".installed"
    pyproject = ROOT / "pyproject.toml"
    if stamp.exists() and stamp.stat().st_mtime >= pyproject.stat().st_mtime:
        return python
    if not python.exists():
        print(f"creating {VENV.relative_to(ROOT)}", flush=True)
        venv.create(VENV, with_pip=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, "-e", f"{ROOT}[deploy]"], check=True)
    stamp.touch()
    return python


def package(stage: str) -> Path:
    """Run `zappa package STAGE` in the packaging venv; return the zip."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    archive = OUTPUT / f"{stage}.zip"
    archive.unlink(missing_ok=True)
    env = {
        **os.environ,
        "VIRTUAL_ENV": str(VENV),
        "PATH": f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # Packaging talks to no AWS service, but boto3 wants a region to build its clients.
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "eu-west-3"),
    }
    command = [str(VENV / "bin" / "zappa"), "package", stage, "-s", str(SETTINGS)]
    result = subprocess.run(
        [*command, "-o", str(archive)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if result.returncode != 0 or not archive.exists():
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"zappa package {stage} failed")
    return archive


def sizes(archive: Path) -> tuple[int, int]:
    """(zipped, unzipped) bytes of a zip."""
    with zipfile.ZipFile(archive) as zipped:
        return archive.stat().st_size, sum(info.file_size for info in zipped.infolist())


def entry_points(stage: str) -> list[str]:
    """What Lambda calls in this stage: our handler, or Zappa's and the WSGI app behind it."""
    settings = json.loads(SETTINGS.read_text())
    merged: dict[str, object] = {}
    name: object = stage
    while isinstance(name, str):
        merged = {**settings[name], **merged}
        name = settings[name].get("extends")
    if "lambda_handler" in merged:
        return [str(merged["lambda_handler"])]
    return ["handler.lambda_handler", str(merged["app_function"])]


def imports(archive: Path, stage: str) -> str | None:
    """None when the stage's entry points import from the unpacked zip alone, else the error."""
    with tempfile.TemporaryDirectory(prefix=f"comptoir-{stage}-") as folder:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(folder)
        runtime = Path(folder) / "_lambda_runtime"
        runtime.mkdir()
        site_packages = next((VENV / "lib").glob("python3.*/site-packages"))
        for name in RUNTIME_PACKAGES:
            if not (Path(folder) / name).exists():
                (runtime / name).symlink_to(site_packages / name)
        code = "import importlib, sys\n" + "".join(
            f"assert callable(getattr(importlib.import_module({module!r}), {attribute!r}))\n"
            for module, attribute in (p.rsplit(".", 1) for p in entry_points(stage))
        )
        environment = {
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": f"{folder}{os.pathsep}{runtime}",
            "APP_INSTANCE_PATH": f"{folder}/instance",
            "DATABASE_URL": f"sqlite:///{folder}/instance/check.sqlite",
            "APP_SECRET_KEY": "package-check",
        }
        result = subprocess.run(
            [sys.executable, "-S", "-c", code],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
        )
        return None if result.returncode == 0 else result.stderr.strip().splitlines()[-1]


def main(argv: list[str]) -> int:
    settings = json.loads(SETTINGS.read_text())
    stages = argv or list(settings)
    runtime = settings["production"]["runtime"]
    here = f"python{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        # Zappa fetches the compiled wheels of the interpreter it runs on.
        print(f"the zips are for {runtime}: run this with that Python, not {here}", file=sys.stderr)
        return 1
    ensure_venv()
    failed = []
    print(f"{'stage':<12} {'zipped':>10} {'unzipped':>10}", flush=True)
    for stage in stages:
        archive = package(stage)
        zipped, unzipped = sizes(archive)
        flag = ""
        if zipped > ZIPPED_LIMIT or unzipped > UNZIPPED_LIMIT:
            flag = "  TOO LARGE (50 MiB zipped / 250 MiB unzipped)"
        else:
            error = imports(archive, stage)
            flag = f"  DOES NOT IMPORT: {error}" if error else ""
        if flag:
            failed.append(stage)
        print(f"{stage:<12} {zipped / MIB:>6.1f} MiB {unzipped / MIB:>6.1f} MiB{flag}", flush=True)
    if failed:
        print(f"not deployable: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"zips in {OUTPUT.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
