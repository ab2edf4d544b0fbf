"""The shop modules' own test suites: each modules/*/ folder's PHPUnit suite passes
(tests/tools/phpunit.sh, with PrestaShop's or Magento's classes stubbed), and every PHP file
of modules/ parses.

Database-independent: PHP never touches Comptoir's database, so this file runs in the SQLite
pass of the suite only."""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# The PHP suites touch no database: they run in the SQLite pass of make test only.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")), reason="database-independent"
)


@pytest.fixture(autouse=True)
def php_is_there() -> None:
    """make test installs PHP and PHPUnit (the Makefile's system-deps): without them, fail."""
    missing = [tool for tool in ("php", "phpunit") if shutil.which(tool) is None]
    assert not missing, f"{missing} missing: `make system-deps` installs php-cli and phpunit"


ROOT = Path(__file__).resolve().parents[2]
MODULES = sorted(config.parent for config in (ROOT / "modules").glob("*/phpunit.xml"))


def test_every_module_has_a_suite() -> None:
    assert {module.name for module in MODULES} >= {"prestashop"}


@pytest.mark.parametrize("module", MODULES, ids=[module.name for module in MODULES])
def test_phpunit_suite_passes(module: Path) -> None:
    result = subprocess.run(
        ["tests/tools/phpunit.sh", str(module.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "No tests executed" not in output, output


def lint(path: Path) -> str:
    """php -l's complaint about the file, '' when it parses."""
    result = subprocess.run(["php", "-l", str(path)], capture_output=True, text=True)
    if result.returncode == 0:
        return ""
    return f"{path.relative_to(ROOT)}: {result.stdout}{result.stderr}".strip()


def test_every_php_file_parses() -> None:
    files = sorted((ROOT / "modules").rglob("*.php"))
    assert files
    with ThreadPoolExecutor(max_workers=4) as pool:
        broken = [complaint for complaint in pool.map(lint, files) if complaint]
    assert not broken, "\n".join(broken)
