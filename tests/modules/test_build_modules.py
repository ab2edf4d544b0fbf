"""`make modules` (bin/build-modules): zips a shop's back office installs as they are.

Database-independent: runs in the SQLite pass of the suite only."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

# Building zips touches no database: in the SQLite pass of make test only.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="database-independent"
)

ROOT = Path(__file__).resolve().parents[2]
PRESTASHOP = ROOT / "modules" / "prestashop" / "comptoir"


def build(out: Path, root: Path = ROOT) -> list[Path]:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bin" / "build-modules"),
            "--out",
            str(out),
            "--root",
            str(root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return [Path(line) for line in result.stdout.split()]


def names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        return archive.namelist()


def test_the_prestashop_zip_has_the_comptoir_folder_at_the_top(tmp_path: Path) -> None:
    version = re.search(r"\$this->version = '([^']+)'", (PRESTASHOP / "comptoir.php").read_text())
    assert version is not None

    built = build(tmp_path)

    target = tmp_path / f"comptoir-prestashop-{version.group(1)}.zip"
    assert target in built
    entries = names(target)
    # PrestaShop's uploader looks for exactly one top folder holding <folder>/<folder>.php.
    assert {entry.split("/")[0] for entry in entries} == {"comptoir"}
    assert {"comptoir/comptoir.php", "comptoir/logo.png", "comptoir/index.php"} <= set(entries)
    assert "comptoir/src/Notifier.php" in entries
    assert not [entry for entry in entries if "/tests/" in entry or "phpunit" in entry]
    with zipfile.ZipFile(target) as archive:
        shipped = archive.read("comptoir/comptoir.php")
    assert shipped == (PRESTASHOP / "comptoir.php").read_bytes()
    # Reproducible: the same sources give the same bytes.
    assert build(tmp_path / "again")[0].read_bytes() == built[0].read_bytes()


def test_the_magento_zip_holds_the_module_at_its_root_without_tests(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    shutil.copytree(PRESTASHOP, root / "modules" / "prestashop" / "comptoir")
    module = root / "modules" / "magento" / "Comptoir" / "Connector"
    for name in (
        "registration.php",
        "etc/module.xml",
        "Observer/OrderSaved.php",
        "Test/Unit/ATest.php",
    ):
        (module / name).parent.mkdir(parents=True, exist_ok=True)
        (module / name).write_text("<?php\n")
    (module / "composer.json").write_text(
        json.dumps({"name": "comptoir/module-connector", "version": "1.2.3"})
    )
    (root / "modules" / "magento" / "phpunit.xml").write_text("<phpunit/>")
    (root / "modules" / "magento" / "tests").mkdir()
    (root / "modules" / "magento" / "tests" / "bootstrap.php").write_text("<?php\n")

    built = build(tmp_path / "dist", root)

    target = tmp_path / "dist" / "comptoir-magento-1.2.3.zip"
    assert target in built
    files = [entry for entry in names(target) if not entry.endswith("/")]
    assert sorted(files) == [
        "Observer/OrderSaved.php",
        "composer.json",
        "etc/module.xml",
        "registration.php",
    ]


def test_the_repositorys_magento_module_builds(tmp_path: Path) -> None:
    built = build(tmp_path)

    magento = [path for path in built if path.name.startswith("comptoir-magento-")]
    assert len(magento) == 1
    entries = names(magento[0])
    assert "registration.php" in entries and "composer.json" in entries
    assert not [entry for entry in entries if entry.startswith(("tests/", "Test/"))]
